//! `cargo xtask bench run`: in one invocation, on the same stage, to the same local sink
//! (`mock-cluedin --accept-all` on loopback): stagepush at its default settings and at
//! gzip 6, and the default and `--concurrency 4` pinned twice each, alternated (the
//! adaptive limit must not slow a fast endpoint down); the DuckDB peer at gzip 1 and 6,
//! the seed guide's Python pattern at gzip 6, and gzip alone (libdeflate) on the same
//! JSON; one table and issue 16's local targets.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::python::{DUCKDB_PEER, SEED_PATTERN, dump_peer_records, python_env, run_script};
use super::{
    ENDPOINT_ID, Measured, STAGE_FILES, STAGE_ROWS, TOKEN, bench_dir, check, gzip_alone, num,
    stage, stagepush_run,
};
use crate::mock::Mock;
use crate::{Result, build_plugins, plugin_dir, stagepush_bin};

/// stagepush's default request-body gzip level (`DEFAULT_GZIP_LEVEL`), for the gzip-alone
/// line that goes with the default run.
const DEFAULT_GZIP_LEVEL: u32 = 1;
/// The level of the like-for-like comparisons.
const GZIP_6: u32 = 6;

/// One line of the table.
struct Line {
    name: String,
    rows: f64,
    /// Records the endpoint acknowledged.
    records: f64,
    /// `None` for the CPU-only gzip line.
    wall: Option<f64>,
    cpu: f64,
    rss: Option<f64>,
    bytes: f64,
}

impl Line {
    fn process(name: &str, m: &Measured, rows: f64, records: f64, bytes: f64) -> Line {
        Line {
            name: name.to_string(),
            rows,
            records,
            wall: Some(m.wall_secs),
            cpu: m.cpu_secs,
            rss: Some(m.peak_rss_bytes),
            bytes,
        }
    }

    fn rows_per_sec(&self) -> f64 {
        self.rows / self.wall.unwrap_or(self.cpu)
    }

    fn print(&self) {
        let opt = |v: Option<f64>, scale: f64, digits: usize| match v {
            Some(v) => format!("{:.digits$}", v / scale),
            None => "-".to_string(),
        };
        println!(
            "{:<44} {:>10.0} {:>9} {:>8.2} {:>9} {:>9.1} {:>9}",
            self.name,
            self.rows_per_sec(),
            opt(self.wall, 1.0, 2),
            self.cpu,
            opt(self.rss, 1e6, 0),
            self.bytes / 1e6,
            if self.records.is_nan() {
                "-".to_string()
            } else {
                format!("{:.0}", self.records)
            },
        );
    }
}

pub fn bench_run() -> Result {
    build_plugins()?;
    let bin = stagepush_bin()?;
    let stage = stage(&bin)?;
    let python = python_env(&bench_dir())?;
    check_peer_records(&bin, &python)?;
    let mock = Mock::start(&bin, TOKEN, None, &["--accept-all"])?;
    let endpoint = mock.endpoint(ENDPOINT_ID);

    let sp = |name: &str, label: &str, extra: &[&str]| -> Result<Line> {
        let (m, report) = stagepush_run(&bin, &stage, &endpoint, name, extra)?;
        stagepush_line(label, &m, &report)
    };
    let sp_default = sp("default", "stagepush run, default settings", &[])?;
    let sp_6 = sp(
        "gzip6",
        "stagepush run, gzip 6",
        &["--gzip-level", &GZIP_6.to_string()],
    )?;
    // The adaptive concurrency must not slow a fast endpoint down: the old fixed default.
    // Two runs of each, alternated, compared by their faster run: this machine's speed
    // drifts within minutes, and single runs moved the ratio by a quarter either way.
    let pinned = ["--concurrency", "4"];
    let sp_pinned = sp(
        "pinned4",
        "stagepush run, --concurrency 4 (pinned)",
        &pinned,
    )?;
    let sp_default_2 = sp("default-2", "stagepush run, default settings (2nd)", &[])?;
    let sp_pinned_2 = sp(
        "pinned4-2",
        "stagepush run, --concurrency 4 (pinned, 2nd)",
        &pinned,
    )?;
    let py = |script: &str, label: &str, level: u32| -> Result<Line> {
        let (m, out) = run_script(&python, script, &stage, &endpoint, level)?;
        let rows = num(&out["rows"]);
        let records = num(&out["records"]);
        if records != rows {
            return Err(format!(
                "{script}: {records} records acknowledged of {rows} rows"
            ));
        }
        Ok(Line::process(
            label,
            &m,
            rows,
            records,
            num(&out["bytes_sent"]),
        ))
    };
    let peer_1 = py(DUCKDB_PEER, "DuckDB peer, gzip 1 (zlib, 4 connections)", 1)?;
    let peer_6 = py(
        DUCKDB_PEER,
        "DuckDB peer, gzip 6 (zlib, 4 connections)",
        GZIP_6,
    )?;
    let seed_6 = py(SEED_PATTERN, "seed guide's Python pattern, gzip 6", GZIP_6)?;
    drop(mock);
    let file = stage.join("data_0_0_0.snappy.parquet");
    let gz_default = gzip_line(DEFAULT_GZIP_LEVEL, &file)?;
    let gz_6 = gzip_line(GZIP_6, &file)?;

    println!(
        "\nstage: {STAGE_ROWS} Snowflake-like customer rows in {STAGE_FILES} Snappy files; local sink on loopback (mock-cluedin --accept-all)"
    );
    println!(
        "wall, CPU (user + system of the process and its children) and peak RSS of each whole process; MB on the wire: gzipped request bodies"
    );
    println!(
        "{:<44} {:>10} {:>9} {:>8} {:>9} {:>9} {:>9}",
        "", "rows/s", "wall s", "CPU s", "RSS MB", "wire MB", "acked"
    );
    for line in [
        &sp_default,
        &sp_6,
        &sp_pinned,
        &sp_default_2,
        &sp_pinned_2,
        &peer_1,
        &peer_6,
        &seed_6,
        &gz_default,
        &gz_6,
    ] {
        line.print();
    }
    println!(
        "(gzip alone: libdeflate on one core, CPU only, measured on the first file and scaled to the stage; rows/s per CPU-second)"
    );

    let cpu_ratio = sp_default.cpu / peer_6.cpu;
    let bytes_ratio = sp_default.bytes / peer_6.bytes;
    let wall_ratio = seed_6.wall.unwrap_or(f64::NAN) / sp_6.wall.unwrap_or(f64::NAN);
    let rss = sp_default
        .rss
        .unwrap_or(f64::NAN)
        .max(sp_6.rss.unwrap_or(f64::NAN));
    println!("\ntargets (issue 16):");
    check(
        "stagepush default >= 1,000,000 rows/s end to end",
        sp_default.rows_per_sec() >= 1_000_000.0,
        format!("{:.0} rows/s", sp_default.rows_per_sec()),
    );
    check(
        "CPU: stagepush default / DuckDB peer gzip 6 <= 0.4",
        cpu_ratio <= 0.4,
        format!("{cpu_ratio:.2}"),
    );
    check(
        "bytes: stagepush default / DuckDB peer gzip 6 <= 1.05",
        bytes_ratio <= 1.05,
        format!("{bytes_ratio:.2}"),
    );
    check(
        "wall: seed pattern gzip 6 / stagepush gzip 6 >= 8",
        wall_ratio >= 8.0,
        format!("{wall_ratio:.1}x"),
    );
    let fastest = |a: &Line, b: &Line| a.wall.unwrap_or(f64::NAN).min(b.wall.unwrap_or(f64::NAN));
    let pinned_ratio = fastest(&sp_default, &sp_default_2) / fastest(&sp_pinned, &sp_pinned_2);
    check(
        "wall: default (adaptive) / pinned 4, faster of 2 each, <= 1.1",
        pinned_ratio <= 1.1,
        format!("{pinned_ratio:.2}"),
    );
    check(
        "stagepush peak RSS <= 300 MB",
        rss <= 300e6,
        format!("{:.0} MB", rss / 1e6),
    );
    Ok(())
}

/// A stagepush line from its measurement and run report; a run that did not deliver every
/// row is an error, not a line.
fn stagepush_line(label: &str, m: &Measured, report: &Value) -> Result<Line> {
    let rows = num(&report["rows"]["read"]);
    let delivered = num(&report["rows"]["delivered"]);
    if delivered != rows || report.get("fatalError").is_some() {
        return Err(format!(
            "{label}: {delivered} of {rows} rows delivered ({})",
            report["fatalError"]
        ));
    }
    Ok(Line::process(
        label,
        m,
        rows,
        num(&report["recordsDelivered"]),
        num(&report["bytesSent"]),
    ))
}

/// gzip alone at `level` on `file`'s wire JSON, scaled from the file to the stage.
fn gzip_line(level: u32, file: &Path) -> Result<Line> {
    eprintln!("xtask: bench: gzip alone at level {level}");
    let gz = gzip_alone(level, file)?;
    let scale = STAGE_ROWS as f64 / num(&gz["rows"]);
    Ok(Line {
        name: format!("gzip alone, level {level} (libdeflate)"),
        rows: STAGE_ROWS as f64,
        records: f64::NAN,
        wall: None,
        cpu: num(&gz["cpu_seconds"]) * scale,
        rss: None,
        bytes: num(&gz["gzip_bytes"]) * scale,
    })
}

/// The DuckDB peer must send what the customer plugin sends: on a small stage of its own
/// (tombstones, null emails, null ids), the peer's records and `stagepush plugin test`'s
/// are the same bytes in the same order.
fn check_peer_records(bin: &Path, python: &Path) -> Result {
    let dir = bench_dir().join("peer-check");
    let stage = dir.join("stage");
    if !stage.join("data_0_1_0.snappy.parquet").is_file() {
        crate::run(
            Command::new(bin)
                .args(["sample-stage", "--files", "2", "--rows", "5000"])
                .args(["--tombstones", "0.05", "--bad-rows", "0.01", "--out"])
                .arg(&stage),
        )?;
    }
    let dump = dir.join("peer.ndjson");
    dump_peer_records(python, &stage, &dump)?;
    let peer = std::fs::read(&dump).map_err(|e| format!("{}: {e}", dump.display()))?;
    let plugin = Command::new(bin)
        .args(["plugin", "test"])
        .arg(plugin_dir().join("customer-rust.wasm"))
        .arg(&stage)
        .output()
        .map_err(|e| format!("cannot run stagepush plugin test: {e}"))?;
    let (peer, plugin) = (String::from_utf8_lossy(&peer), plugin.stdout);
    let plugin = String::from_utf8_lossy(&plugin);
    if let Some((i, (a, b))) = plugin
        .lines()
        .zip(peer.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
    {
        return Err(format!(
            "the DuckDB peer's record {i} differs from the plugin's:\n  plugin: {a}\n  peer:   {b}"
        ));
    }
    let (n_plugin, n_peer) = (plugin.lines().count(), peer.lines().count());
    if n_plugin != n_peer || n_plugin == 0 {
        return Err(format!(
            "the plugin wrote {n_plugin} records, the DuckDB peer {n_peer}"
        ));
    }
    eprintln!("xtask: bench: the DuckDB peer's {n_peer} records are the plugin's, byte for byte");
    Ok(())
}
