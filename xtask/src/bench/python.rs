//! The Python side of the benches: a virtualenv with pinned packages under the bench
//! folder, and the scripts in `host/benches/` run in it as measured processes.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{Measured, TOKEN, last_json_line, measure};
use crate::{Result, root};

/// Versions of the Python scripts' packages (PyPI).
const PY_PACKAGES: &[&str] = &["duckdb==2.0.1", "pyarrow==26.0.1", "requests==2.32.5"];

/// The seed guide's stored-procedure pattern (`host/benches/seed_pattern.py`).
pub const SEED_PATTERN: &str = "seed_pattern.py";
/// The DuckDB peer (`host/benches/duckdb_peer.py`).
pub const DUCKDB_PEER: &str = "duckdb_peer.py";

/// A virtualenv with [`PY_PACKAGES`], made under `bench` and remade when the list changes.
pub fn python_env(bench: &Path) -> Result<PathBuf> {
    let venv = bench.join("py");
    let python = venv.join("bin").join("python");
    let marker = venv.join(".installed");
    let wanted = PY_PACKAGES.join("\n");
    if std::fs::read_to_string(&marker).is_ok_and(|have| have == wanted) {
        return Ok(python);
    }
    if !python.is_file() {
        crate::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    crate::run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .arg("--disable-pip-version-check")
            .args(PY_PACKAGES),
    )?;
    std::fs::write(&marker, wanted).map_err(|e| format!("{}: {e}", marker.display()))?;
    Ok(python)
}

/// Runs `host/benches/<script> STAGE ENDPOINT LEVEL` (token in `SEED_TOKEN` and
/// `PEER_TOKEN`), measured; returns the measurement and the script's JSON result line.
pub fn run_script(
    python: &Path,
    script: &str,
    stage: &Path,
    endpoint: &str,
    level: u32,
) -> Result<(Measured, Value)> {
    eprintln!("xtask: bench: {script} at gzip {level}");
    let measured = measure(
        Command::new(python)
            .arg(root().join("host/benches").join(script))
            .arg(stage)
            .arg(endpoint)
            .arg(level.to_string())
            .env("SEED_TOKEN", TOKEN)
            .env("PEER_TOKEN", TOKEN),
    )
    .map_err(|e| format!("{script}: {e}"))?;
    let result = last_json_line(&measured.stdout)
        .ok_or_else(|| format!("{script} printed no result line"))?;
    Ok((measured, result))
}

/// Writes the DuckDB peer's records for `stage` to `out` as NDJSON, without sending them.
pub fn dump_peer_records(python: &Path, stage: &Path, out: &Path) -> Result {
    crate::run(
        Command::new(python)
            .arg(root().join("host/benches").join(DUCKDB_PEER))
            .arg(stage)
            .args(["-", "1", "--dump"])
            .arg(out),
    )
}
