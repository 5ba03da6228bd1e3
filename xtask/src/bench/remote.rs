//! `cargo xtask bench remote`: the bench stage to a slow endpoint, the way a CluedIn across a
//! network answers: `mock-cluedin --accept-all --slow-ms 50 --capacity 24` (every answer
//! takes 50 ms; 429 beyond 24 requests in flight), `stagepush run` at its default settings.
//! Prints rows/s, the share of requests answered 429 and the request concurrency the run
//! report records, against issue 16's remote targets. Arguments after `remote` go to
//! `stagepush run` (e.g. `--concurrency 20`, to compare with a pinned concurrency); the
//! targets are about the default settings.

use std::process::Command;

use serde_json::Value;

use super::{ENDPOINT_ID, STAGE_FILES, STAGE_ROWS, TOKEN, check, num, stage, stagepush_run};
use crate::mock::Mock;
use crate::{Result, build_plugins, stagepush_bin};

/// Milliseconds every answer of the remote endpoint takes.
const SLOW_MS: u32 = 50;
/// Requests the remote endpoint serves at once; more are answered 429.
const CAPACITY: u32 = 24;

pub fn bench_remote(run_args: &[String]) -> Result {
    build_plugins()?;
    let bin = stagepush_bin()?;
    let stage = stage(&bin)?;
    let slow = SLOW_MS.to_string();
    let capacity = CAPACITY.to_string();
    let mut flags = vec!["--accept-all", "--slow-ms", &slow];
    let has_capacity = mock_has_capacity(&bin)?;
    if has_capacity {
        flags.extend(["--capacity", &capacity]);
    }
    let mock = Mock::start(&bin, TOKEN, None, &flags)?;
    let run_args: Vec<&str> = run_args.iter().map(String::as_str).collect();
    let endpoint = mock.endpoint(ENDPOINT_ID);
    let (m, report) = stagepush_run(&bin, &stage, &endpoint, "remote", &run_args)?;
    drop(mock);

    let rows = num(&report["rows"]["read"]);
    let delivered = num(&report["rows"]["delivered"]);
    let rows_per_sec = rows / m.wall_secs;
    let (answered_429, requests) = answers_429(&report);
    let share_429 = answered_429 / requests;
    println!(
        "\nstage: {STAGE_ROWS} Snowflake-like customer rows in {STAGE_FILES} Snappy files; endpoint: mock-cluedin {}",
        flags.join(" ")
    );
    if !has_capacity {
        println!("(this mock-cluedin has no --capacity yet: no request is refused with 429)");
    }
    let settings = if run_args.is_empty() {
        "default settings".to_string()
    } else {
        run_args.join(" ")
    };
    println!("stagepush run, {settings}:");
    println!(
        "  rows {rows:.0} ({delivered:.0} delivered), wall {:.2} s, CPU {:.2} s, peak RSS {:.0} MB",
        m.wall_secs,
        m.cpu_secs,
        m.peak_rss_bytes / 1e6
    );
    println!(
        "  requests {requests:.0} (retries {:.0}), answers by status {}, bytes sent {:.1} MB",
        num(&report["retries"]),
        report["status"],
        num(&report["bytesSent"]) / 1e6
    );
    for (key, value) in concurrency_figures(&report) {
        println!("  {key}: {value}");
    }
    println!("\ntargets (issue 16):");
    check(
        &format!("remote, {settings} >= 200,000 rows/s"),
        rows_per_sec >= 200_000.0 && delivered == rows,
        format!("{rows_per_sec:.0} rows/s"),
    );
    check(
        "requests answered 429 < 5 %",
        share_429 < 0.05,
        format!(
            "{:.2} % ({answered_429:.0} of {requests:.0})",
            share_429 * 100.0
        ),
    );
    Ok(())
}

/// Requests answered 429 and all requests (every attempt counts) of a run report, whose
/// `status` maps each status code (as text, JSON keys being strings) to its count.
fn answers_429(report: &Value) -> (f64, f64) {
    let answered = report["status"]["429"].as_f64().unwrap_or(0.0);
    (answered, num(&report["requests"]))
}

/// Whether this build's `mock-cluedin` takes `--capacity`.
fn mock_has_capacity(bin: &std::path::Path) -> Result<bool> {
    let out = Command::new(bin)
        .args(["mock-cluedin", "--help"])
        .output()
        .map_err(|e| format!("cannot run mock-cluedin --help: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).contains("--capacity"))
}

/// The run report's figures about request concurrency, wherever the sink puts them: a
/// `sink` object, or top-level keys naming concurrency.
fn concurrency_figures(report: &Value) -> Vec<(String, String)> {
    let Some(fields) = report.as_object() else {
        return Vec::new();
    };
    fields
        .iter()
        .filter(|(k, _)| *k == "sink" || k.to_ascii_lowercase().contains("concurrency"))
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_429_are_read_from_the_status_counts() {
        let report = serde_json::json!({"requests": 40, "status": {"200": 38, "429": 2}});
        assert_eq!(answers_429(&report), (2.0, 40.0));
        let none = serde_json::json!({"requests": 10, "status": {"200": 10}});
        assert_eq!(answers_429(&none), (0.0, 10.0));
    }

    #[test]
    fn concurrency_figures_are_found_by_name() {
        let report = serde_json::json!({
            "rows": {"read": 1},
            "sink": {"concurrencyMax": 24},
            "requestConcurrency": {"final": 20},
        });
        let keys: Vec<String> = concurrency_figures(&report)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["requestConcurrency", "sink"]);
        assert!(concurrency_figures(&serde_json::json!({"rows": 1})).is_empty());
    }
}
