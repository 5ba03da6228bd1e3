//! End-to-end benchmarks (`cargo xtask bench run | remote | gzip | formats | big-csv`): the
//! bench stage, running `stagepush run` and the Python peers as measured child processes
//! (wall, CPU seconds of the process and its children, peak RSS), the gzip-alone floor,
//! and the target lines. `run.rs` is the local comparison, `remote.rs` the slow endpoint,
//! `python.rs` the virtualenv and the Python scripts, `formats.rs` Parquet beside CSV and
//! JSON, `big_csv.rs` one multi-GB `.csv.gz` in bounded memory.

mod big_csv;
mod formats;
mod measure;
mod python;
mod remote;
mod run;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

pub use big_csv::bench_big_csv;
pub use formats::bench_formats;
pub use measure::{Measured, measure, measure_sampled};
pub use remote::bench_remote;
pub use run::bench_run;

use crate::{Result, build_plugins, plugin_dir, stagepush_bin, target_dir};

/// The bench stage: 1,000,000 Snowflake-like customer rows in 8 Snappy files, the shape of
/// issue 16's table (2,000,000 rows doubled the seed pattern's ~11 s without changing any
/// ratio).
const STAGE_ROWS: u64 = 1_000_000;
const STAGE_FILES: u64 = 8;
const TOKEN: &str = "bench-token";
const ENDPOINT_ID: &str = "BENCH";
/// The environment variable the bench passes the token in.
const TOKEN_ENV: &str = "STAGEPUSH_BENCH_TOKEN";

/// The bench folder under the target directory (stages, venv, state, reports).
fn bench_dir() -> PathBuf {
    target_dir().join("bench")
}

/// Makes (once) the bench stage and returns its folder.
fn stage(bin: &Path) -> Result<PathBuf> {
    let stage = bench_dir().join(format!("stage-{STAGE_ROWS}x{STAGE_FILES}"));
    let last = stage.join(format!("data_0_{}_0.snappy.parquet", STAGE_FILES - 1));
    if !last.is_file() {
        crate::run(
            Command::new(bin)
                .args(["sample-stage", "--files", &STAGE_FILES.to_string()])
                .args(["--rows", &STAGE_ROWS.to_string()])
                .args(["--tombstones", "0.02", "--bad-rows", "0", "--out"])
                .arg(&stage),
        )?;
    }
    Ok(stage)
}

/// One `stagepush run` of the stage with a fresh delivery state, measured; returns the
/// measurement and the run report. `name` names its state and report files.
fn stagepush_run(
    bin: &Path,
    stage: &Path,
    endpoint: &str,
    name: &str,
    extra: &[&str],
) -> Result<(Measured, Value)> {
    stagepush_run_with(bin, stage, endpoint, name, extra, None)
}

/// [`stagepush_run`], its RSS also sampled every `every` ([`Measured::rss_samples`]).
fn stagepush_run_sampled(
    bin: &Path,
    stage: &Path,
    endpoint: &str,
    name: &str,
    extra: &[&str],
    every: Duration,
) -> Result<(Measured, Value)> {
    stagepush_run_with(bin, stage, endpoint, name, extra, Some(every))
}

fn stagepush_run_with(
    bin: &Path,
    stage: &Path,
    endpoint: &str,
    name: &str,
    extra: &[&str],
    sample_every: Option<Duration>,
) -> Result<(Measured, Value)> {
    let bench = bench_dir();
    let report_path = bench.join(format!("{name}-report.json"));
    // A fresh delivery state: a kept one would skip the files delivered last time.
    let state = bench.join(format!("{name}-state"));
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_file(&report_path);
    eprintln!("xtask: bench: stagepush run ({name})");
    let mut cmd = Command::new(bin);
    cmd.arg("run")
        .arg("--source")
        .arg(stage)
        .arg("--plugin")
        .arg(plugin_dir().join("customer-rust.wasm"))
        .args(["--endpoint", endpoint, "--token-env", TOKEN_ENV])
        .args(["--no-progress", "-q"])
        .args(extra)
        .env(TOKEN_ENV, TOKEN)
        .arg("--dead-letter")
        .arg(bench.join(format!("{name}-dead-letters")))
        .arg("--state")
        .arg(&state)
        .arg("--report")
        .arg(&report_path);
    let measured = match sample_every {
        Some(every) => measure_sampled(&mut cmd, every)?,
        None => measure(&mut cmd)?,
    };
    let report = read_json(&report_path)?;
    Ok((measured, report))
}

/// Prints one target line: name, met / NOT met, the measured value.
fn check(name: &str, met: bool, value: String) {
    println!(
        "  {:<54} {:<8} {value}",
        name,
        if met { "met" } else { "NOT met" }
    );
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn read_json(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The last line of `stdout` that is a JSON value (the scripts' and bench's result line).
fn last_json_line(stdout: &[u8]) -> Option<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
}

/// The CPU cost of the sink's gzip alone at `level` on the wire JSON of `file`'s records
/// (the plugin bench's `gzip LEVEL FILE`): `{rows, json_bytes, gzip_bytes, cpu_seconds}`.
fn gzip_alone(level: u32, file: &Path) -> Result<Value> {
    let out = crate::plugin_bench()
        .args(["--", "gzip"])
        .arg(level.to_string())
        .arg(file)
        .output()
        .map_err(|e| format!("cannot run the gzip measurement: {e}"))?;
    last_json_line(&out.stdout).ok_or_else(|| {
        format!(
            "gzip measurement printed no result: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Gzip levels `bench gzip` measures (libdeflate's scale).
const GZIP_LEVELS: &[u32] = &[1, 2, 3, 4, 6, 9, 12];

/// `cargo xtask bench gzip`: each request-body gzip level's ratio and CPU per row on the
/// wire JSON of one 250,000-row file of the bench stage (the table behind
/// `DEFAULT_GZIP_LEVEL`).
pub fn bench_gzip() -> Result {
    build_plugins()?;
    let bin = stagepush_bin()?;
    let stage = bench_dir().join("stage-gzip");
    let file = stage.join("data_0_0_0.snappy.parquet");
    if !file.is_file() {
        crate::run(
            Command::new(&bin)
                .args(["sample-stage", "--files", "1", "--rows", "250000"])
                .args(["--tombstones", "0.02", "--bad-rows", "0", "--out"])
                .arg(&stage),
        )?;
    }
    println!("| level | ratio | µs CPU/row |\n|---|---|---|");
    for &level in GZIP_LEVELS {
        let gz = gzip_alone(level, &file)?;
        println!(
            "| {level} | {:.2}x | {:.2} |",
            num(&gz["json_bytes"]) / num(&gz["gzip_bytes"]),
            num(&gz["cpu_seconds"]) * 1e6 / num(&gz["rows"])
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_json_line_is_the_result() {
        let out = b"warming up\n{\"rows\":1}\nnoise\n{\"rows\":2}\ntrailing text\n";
        assert_eq!(last_json_line(out), Some(serde_json::json!({"rows": 2})));
        assert_eq!(last_json_line(b"no result\n"), None);
    }
}
