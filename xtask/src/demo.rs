//! `cargo xtask demo`: the whole pipeline on built-in defaults — a generated
//! Snowflake-like stage, the example plugin, the local CluedIn stand-in.

use std::ffi::OsStr;
use std::process::Command;

use crate::mock::Mock;
use crate::{Result, build_plugins, stagepush_bin, target_dir};

const DEMO_TOKEN: &str = "demo-token";
const DEMO_ENDPOINT_ID: &str = "6F5B0C1D-2E3F-4A5B-8C9D-0E1F2A3B4C5D";

pub fn demo() -> Result {
    let plugins = build_plugins()?;
    let bin = stagepush_bin()?;
    let plugin = plugins
        .iter()
        .find(|p| p.file_stem() == Some(OsStr::new("customer-rust")))
        .ok_or("the customer-rust plugin was not built")?;
    let demo = target_dir().join("demo");
    let _ = std::fs::remove_dir_all(&demo);
    let stage = demo.join("stage");
    let received = demo.join("received");
    let dead = demo.join("dead-letters");
    let report = demo.join("report.json");

    eprintln!(
        "\n== 1. a Snowflake-like stage: 4 files, 100,000 customers, some tombstones and bad rows"
    );
    crate::run(
        Command::new(&bin)
            .args([
                "sample-stage",
                "--files",
                "4",
                "--rows",
                "100000",
                "--tombstones",
                "0.02",
                "--bad-rows",
                "0.001",
                "--out",
            ])
            .arg(&stage),
    )?;

    eprintln!("\n== 2. what the example plugin makes of the first rows");
    crate::run(
        Command::new(&bin)
            .args(["plugin", "test"])
            .arg(plugin)
            .arg(&stage)
            .args(["--limit", "3"]),
    )?;

    eprintln!("\n== 3. the local CluedIn stand-in");
    let mock = Mock::start(&bin, DEMO_TOKEN, Some(&received), &[])?;
    let endpoint = mock.endpoint(DEMO_ENDPOINT_ID);
    eprintln!("listening at {endpoint}");

    eprintln!("\n== 4. stagepush run");
    let status = Command::new(&bin)
        .arg("run")
        .arg("--source")
        .arg(&stage)
        .arg("--plugin")
        .arg(plugin)
        .args([
            "--endpoint",
            &endpoint,
            "--token-env",
            "STAGEPUSH_DEMO_TOKEN",
        ])
        .env("STAGEPUSH_DEMO_TOKEN", DEMO_TOKEN)
        .arg("--dead-letter")
        .arg(&dead)
        .arg("--state")
        .arg(demo.join("state"))
        .arg("--report")
        .arg(&report)
        .status()
        .map_err(|e| format!("cannot run stagepush: {e}"))?;
    drop(mock);
    // 3 = finished with dead-lettered rows: the sample stage has bad rows on purpose.
    if !matches!(status.code(), Some(0 | 3)) {
        return Err(format!("stagepush run failed ({status})"));
    }
    eprintln!("\n== done");
    eprintln!(
        "records received by the stand-in: {}",
        received.join("records.ndjson").display()
    );
    eprintln!(
        "requests it saw:                  {}",
        received.join("requests.ndjson").display()
    );
    eprintln!(
        "dead letters (rows with reasons): {}",
        dead.join("dead-letters.ndjson").display()
    );
    eprintln!("run report:                       {}", report.display());
    Ok(())
}
