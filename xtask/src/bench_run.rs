//! `cargo xtask bench run`: stagepush end to end against the seed guide's Python pattern,
//! on the same 2,000,000-row stage, to the same local sink, at the same gzip level, in one
//! invocation; plus the CPU cost of gzip alone on the same JSON (the floor).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::mock::Mock;
use crate::{Result, build_plugins, plugin_dir, root, stagepush_bin, target_dir};

const ROWS: u64 = 2_000_000;
const FILES: u64 = 8;
const GZIP_LEVEL: u32 = 6;
const TOKEN: &str = "bench-token";
const ENDPOINT_ID: &str = "BENCH";
/// Versions of the Python baseline's packages (PyPI).
const PY_PACKAGES: &[&str] = &["pyarrow==26.0.1", "requests==2.32.5"];

pub fn bench_run() -> Result {
    build_plugins()?;
    let bin = stagepush_bin()?;
    let bench = target_dir().join("bench");
    let stage = bench.join(format!("stage-{ROWS}"));
    if !stage
        .join(format!("data_0_{}_0.snappy.parquet", FILES - 1))
        .is_file()
    {
        crate::run(
            Command::new(&bin)
                .args([
                    "sample-stage",
                    "--files",
                    &FILES.to_string(),
                    "--rows",
                    &ROWS.to_string(),
                ])
                .args(["--tombstones", "0.02", "--bad-rows", "0", "--out"])
                .arg(&stage),
        )?;
    }
    let python = python_env(&bench)?;
    let mock = Mock::start(&bin, TOKEN, None, &["--accept-all"])?;
    let endpoint = mock.endpoint(ENDPOINT_ID);

    // 1. stagepush, every core.
    let report_path = bench.join("run-report.json");
    // A fresh delivery state: a kept one would skip the files delivered last time.
    let state = bench.join("state");
    let _ = std::fs::remove_dir_all(&state);
    crate::run(
        Command::new(&bin)
            .arg("run")
            .arg("--source")
            .arg(&stage)
            .arg("--plugin")
            .arg(plugin_dir().join("customer-rust.wasm"))
            .args([
                "--endpoint",
                &endpoint,
                "--token-env",
                "STAGEPUSH_BENCH_TOKEN",
                "--no-progress",
                "-q",
            ])
            .args(["--gzip-level", &GZIP_LEVEL.to_string()])
            .env("STAGEPUSH_BENCH_TOKEN", TOKEN)
            .arg("--dead-letter")
            .arg(bench.join("dead-letters"))
            .arg("--state")
            .arg(&state)
            .arg("--report")
            .arg(&report_path),
    )?;
    let report: Value = read_json(&report_path)?;
    let sp_rows = num(&report["rows"]["read"]);
    let sp_wall = num(&report["durationSecs"]);
    let sp_cpu = num(&report["cpuSeconds"]);
    let sp_rss = num(&report["peakRssBytes"]);

    // 2. The seed guide's Python pattern.
    let out = Command::new(&python)
        .arg(root().join("host/benches/seed_pattern.py"))
        .arg(&stage)
        .arg(&endpoint)
        .arg(GZIP_LEVEL.to_string())
        .env("SEED_TOKEN", TOKEN)
        .output()
        .map_err(|e| format!("cannot run the Python baseline: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "Python baseline failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let py: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("Python output: {e}"))?;
    let (py_rows, py_wall, py_cpu, py_rss) = (
        num(&py["rows"]),
        num(&py["wall_seconds"]),
        num(&py["cpu_seconds"]),
        num(&py["peak_rss_bytes"]),
    );
    drop(mock);

    // 3. gzip alone on the same JSON (one file's records), one core.
    let gz = gzip_alone(GZIP_LEVEL, &stage.join("data_0_0_0.snappy.parquet"))?;
    let gz_cpu_per_row = num(&gz["cpu_seconds"]) / num(&gz["rows"]);

    let sp_cpu_per_row = sp_cpu / sp_rows;
    let py_cpu_per_row = py_cpu / py_rows;
    println!(
        "\nstage: {ROWS} Snowflake-like customer rows in {FILES} Snappy files; gzip level {GZIP_LEVEL}; local sink on loopback"
    );
    println!(
        "{:<34} {:>10} {:>14} {:>12} {:>10}",
        "", "rows/s", "rows/CPU-s", "µs CPU/row", "peak RSS"
    );
    let line = |name: &str, rows: f64, wall: f64, cpu: f64, rss: f64| {
        println!(
            "{name:<34} {:>10.0} {:>14.0} {:>12.2} {:>7.0} MB",
            rows / wall,
            rows / cpu,
            cpu / rows * 1e6,
            rss / 1e6
        );
    };
    line("stagepush run (2 cores)", sp_rows, sp_wall, sp_cpu, sp_rss);
    line(
        "seed guide pattern (Python)",
        py_rows,
        py_wall,
        py_cpu,
        py_rss,
    );
    println!(
        "{:<34} {:>10} {:>14.0} {:>12.2}",
        "gzip alone (floor), one core",
        "",
        1.0 / gz_cpu_per_row,
        gz_cpu_per_row * 1e6
    );
    let wall_ratio = (sp_rows / sp_wall) / (py_rows / py_wall);
    let cpu_ratio = py_cpu_per_row / sp_cpu_per_row;
    let floor_ratio = sp_cpu_per_row / gz_cpu_per_row;
    println!("\ntargets:");
    check(
        "end to end >= 250,000 rows/s",
        sp_rows / sp_wall >= 250_000.0,
        format!("{:.0} rows/s", sp_rows / sp_wall),
    );
    check(
        "CPU per row <= 1.5x gzip alone",
        floor_ratio <= 1.5,
        format!("{floor_ratio:.2}x"),
    );
    check(
        ">= 4x the Python pattern per CPU-second",
        cpu_ratio >= 4.0,
        format!("{cpu_ratio:.1}x"),
    );
    check(
        ">= 8x the Python pattern in wall time",
        wall_ratio >= 8.0,
        format!("{wall_ratio:.1}x"),
    );
    check(
        "peak RSS <= 300 MB",
        sp_rss <= 300e6,
        format!("{:.0} MB", sp_rss / 1e6),
    );
    Ok(())
}

fn check(name: &str, met: bool, value: String) {
    println!(
        "  {:<44} {:<8} {value}",
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

/// A virtualenv with the Python baseline's packages, made once under the bench folder.
fn python_env(bench: &Path) -> Result<std::path::PathBuf> {
    let venv = bench.join("py");
    let python = venv.join("bin").join("python");
    let marker = venv.join(".installed");
    if marker.is_file() {
        return Ok(python);
    }
    crate::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    crate::run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(PY_PACKAGES),
    )?;
    std::fs::write(&marker, PY_PACKAGES.join("\n")).map_err(|e| e.to_string())?;
    Ok(python)
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
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| {
            format!(
                "gzip measurement printed no result: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// Gzip levels `bench gzip` measures (libdeflate's scale).
const GZIP_LEVELS: &[u32] = &[1, 2, 4, 6, 9, 12];

/// `cargo xtask bench gzip`: each request-body gzip level's ratio and CPU per row on the
/// wire JSON of one 250,000-row file of the bench stage (the table behind
/// `DEFAULT_GZIP_LEVEL`).
pub fn bench_gzip() -> Result {
    build_plugins()?;
    let bin = stagepush_bin()?;
    let stage = target_dir().join("bench").join("stage-gzip");
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
