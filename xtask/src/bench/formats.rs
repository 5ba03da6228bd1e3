//! `cargo xtask bench formats`: the bench stage's 1,000,000 rows as Parquet, CSV and JSON
//! (the same rows, each written once by `stagepush sample-stage --format …`), each through
//! `stagepush run` at its default settings with the customer-rust plugin to the local sink
//! `bench run` uses, `--repeat N` times (default 3): rows/s, CPU s, peak RSS, bytes on the
//! wire and the rate against Parquet's, then the same with `run --dry-run` (read → plugin
//! → gzip, no HTTP and no state), and issue 19's line: CSV at least half Parquet's rate
//! (printed, not asserted). The CSV and JSON stages, their configs (`[source.csv]
//! columns` as `sample-stage` prints them) are shared with `big_csv.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{
    ENDPOINT_ID, Measured, STAGE_FILES, STAGE_ROWS, TOKEN, bench_dir, measure, num, stage,
    stagepush_run,
};
use crate::mock::Mock;
use crate::{Result, build_plugins, plugin_dir, stagepush_bin};

/// Runs of each line when `--repeat` is not given.
const DEFAULT_REPEAT: usize = 3;

/// A text format `sample-stage` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    Csv,
    Json,
}

impl TextFormat {
    fn name(self) -> &'static str {
        match self {
            TextFormat::Csv => "csv",
            TextFormat::Json => "json",
        }
    }

    /// `sample-stage`'s name of file `n` (`data_0_<n>_0.csv.gz`).
    pub fn file_name(self, n: u64) -> String {
        format!("data_0_{n}_0.{}.gz", self.name())
    }
}

/// Makes (once) `rows` customer rows in `files` gzip files of `format` under `dir`, the
/// same rows (same seed, tombstones, no bad rows) as the Parquet bench stage. The files
/// are written to `<dir>.partial` and renamed, so an interrupted write is not taken for a
/// stage. Returns the measurement of the writing `sample-stage`, if it ran.
pub fn text_stage(
    bin: &Path,
    format: TextFormat,
    dir: &Path,
    files: u64,
    rows: u64,
) -> Result<Option<Measured>> {
    if dir.join(format.file_name(files - 1)).is_file() {
        return Ok(None);
    }
    let partial = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    eprintln!(
        "xtask: bench: writing {rows} rows in {files} {} file(s) to {}",
        format.name(),
        dir.display()
    );
    let measured = measure(
        Command::new(bin)
            .args(["sample-stage", "--format", format.name()])
            .args(["--files", &files.to_string(), "--rows", &rows.to_string()])
            .args(["--tombstones", "0.02", "--bad-rows", "0", "--out"])
            .arg(&partial),
    )?;
    std::fs::rename(&partial, dir)
        .map_err(|e| format!("{} → {}: {e}", partial.display(), dir.display()))?;
    Ok(Some(measured))
}

/// The `columns = [...]` line `stagepush sample-stage --format csv` prints for its files
/// (the customer table's Snowflake types), from a one-row sample.
fn declared_columns(bin: &Path) -> Result<String> {
    let probe = bench_dir().join("columns-probe");
    let out = Command::new(bin)
        .args([
            "sample-stage",
            "--format",
            "csv",
            "--files",
            "1",
            "--rows",
            "1",
        ])
        .arg("--out")
        .arg(&probe)
        .output()
        .map_err(|e| format!("cannot run stagepush sample-stage: {e}"))?;
    columns_line(&String::from_utf8_lossy(&out.stderr)).ok_or_else(|| {
        format!(
            "sample-stage --format csv printed no `columns = ` line:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The `columns = …` line after `[source.csv]` in `sample-stage`'s advice.
fn columns_line(stderr: &str) -> Option<String> {
    let (_, after) = stderr.split_once("[source.csv]")?;
    after
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("columns = "))
        .map(str::to_owned)
}

/// How a stage's types are known (and so the config its run gets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Types {
    /// Parquet: in the file.
    InFile,
    /// `[source.csv|json] columns`, as `sample-stage` prints them.
    Declared,
    /// JSON: inferred from the first file's rows.
    Inferred,
}

/// Writes the config file of a `format` stage whose types are `types` (`[source] format`,
/// and the declared columns) and returns its path; `None` for Parquet.
pub fn stage_config(
    bin: &Path,
    format: Option<TextFormat>,
    types: Types,
    name: &str,
) -> Result<Option<PathBuf>> {
    let Some(format) = format else {
        return Ok(None);
    };
    let mut text = format!("[source]\nformat = \"{}\"\n", format.name());
    if types == Types::Declared {
        let columns = declared_columns(bin)?;
        text.push_str(&format!("[source.{}]\n{columns}\n", format.name()));
    }
    let path = bench_dir().join(format!("{name}.toml"));
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(path))
}

/// One line of the table: a stage and how it is read.
struct Variant {
    label: &'static str,
    /// File names in reports and state (`formats-csv`).
    name: &'static str,
    stage: PathBuf,
    config: Option<PathBuf>,
}

/// The runs of one variant: the best (shortest wall) and the spread.
struct Runs {
    runs: Vec<(Measured, f64)>,
}

impl Runs {
    /// Rows/s of each run.
    fn rates(&self) -> impl Iterator<Item = f64> + '_ {
        self.runs.iter().map(|(m, rows)| rows / m.wall_secs)
    }

    fn best(&self) -> &(Measured, f64) {
        self.runs
            .iter()
            .min_by(|a, b| a.0.wall_secs.total_cmp(&b.0.wall_secs))
            .unwrap_or(&self.runs[0])
    }

    fn best_rate(&self) -> f64 {
        self.rates().fold(f64::NAN, f64::max)
    }

    /// `min–max` of `f` over the runs, formatted by `show`.
    fn spread(&self, f: impl Fn(&Measured, f64) -> f64, show: impl Fn(f64) -> String) -> String {
        let values: Vec<f64> = self.runs.iter().map(|(m, rows)| f(m, *rows)).collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{}–{}", show(lo), show(hi))
    }
}

fn thousands(rate: f64) -> String {
    format!("{:.0}k", rate / 1e3)
}

/// `cargo xtask bench formats [--repeat N]`.
pub fn bench_formats(args: &[String]) -> Result {
    let repeat = match args {
        [] => DEFAULT_REPEAT,
        [flag, n] if flag == "--repeat" => n
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("--repeat {n}: not a number of runs"))?,
        other => return Err(format!("bench formats: unknown arguments {other:?}")),
    };
    build_plugins()?;
    let bin = stagepush_bin()?;
    let bench = bench_dir();
    let parquet = stage(&bin)?;
    let text = |format: TextFormat| -> Result<PathBuf> {
        let dir = bench.join(format!(
            "stage-{STAGE_ROWS}x{STAGE_FILES}-{}",
            format.name()
        ));
        text_stage(&bin, format, &dir, STAGE_FILES, STAGE_ROWS)?;
        Ok(dir)
    };
    let (csv, json) = (text(TextFormat::Csv)?, text(TextFormat::Json)?);
    let variants = [
        (
            "Parquet (Snappy)",
            "formats-parquet",
            &parquet,
            None,
            Types::InFile,
        ),
        (
            "CSV .gz, declared columns",
            "formats-csv",
            &csv,
            Some(TextFormat::Csv),
            Types::Declared,
        ),
        (
            "JSON .gz, inferred",
            "formats-json",
            &json,
            Some(TextFormat::Json),
            Types::Inferred,
        ),
        (
            "JSON .gz, declared columns",
            "formats-json-declared",
            &json,
            Some(TextFormat::Json),
            Types::Declared,
        ),
    ]
    .into_iter()
    .map(|(label, name, stage, format, types)| {
        Ok(Variant {
            label,
            name,
            stage: stage.clone(),
            config: stage_config(&bin, format, types, name)?,
        })
    })
    .collect::<Result<Vec<_>>>()?;

    let mock = Mock::start(&bin, TOKEN, None, &["--accept-all"])?;
    let endpoint = mock.endpoint(ENDPOINT_ID);
    let mut results = Vec::new();
    for variant in &variants {
        let mut runs = Runs { runs: Vec::new() };
        let mut dry = Runs { runs: Vec::new() };
        let mut bytes = f64::NAN;
        for _ in 0..repeat {
            let (m, report) = delivered_run(&bin, variant, &endpoint)?;
            bytes = num(&report["bytesSent"]);
            let delivered = num(&report["recordsDelivered"]);
            runs.runs.push((m, num(&report["rows"]["read"])));
            let (m, records) = dry_run(&bin, variant, &endpoint)?;
            if records != delivered {
                return Err(format!(
                    "{}: the dry run made {records} records, the run delivered {delivered}",
                    variant.label
                ));
            }
            dry.runs.push((m, STAGE_ROWS as f64));
        }
        results.push((variant, runs, dry, bytes));
    }
    drop(mock);

    println!(
        "\nstage: {STAGE_ROWS} Snowflake-like customer rows in {STAGE_FILES} files per format (the same rows), \
         customer-rust plugin, default settings, local sink (mock-cluedin --accept-all on loopback)"
    );
    println!(
        "best of {repeat} runs by wall time (spread: the slowest–fastest run); CPU (user + system) and peak RSS of the whole \
         process; wire MB: gzipped request bodies; dry run: `run --dry-run` (read → plugin → gzip, no HTTP, no state)"
    );
    println!(
        "{:<28} {:>8} {:>13} {:>6} {:>11} {:>6} {:>7} {:>10} {:>8} {:>13} {:>8}",
        "format",
        "rows/s",
        "spread",
        "CPU s",
        "CPU spread",
        "RSS MB",
        "wire MB",
        "vs Parquet",
        "dry rows/s",
        "dry spread",
        "dry CPU s"
    );
    let parquet_rate = results[0].1.best_rate();
    for (variant, runs, dry, bytes) in &results {
        let (best, _) = runs.best();
        println!(
            "{:<28} {:>8} {:>13} {:>6.2} {:>11} {:>6.0} {:>7.1} {:>9.2}x {:>10} {:>13} {:>8.2}",
            variant.label,
            thousands(runs.best_rate()),
            runs.spread(|m, rows| rows / m.wall_secs, thousands),
            best.cpu_secs,
            runs.spread(|m, _| m.cpu_secs, |v| format!("{v:.2}")),
            best.peak_rss_bytes / 1e6,
            bytes / 1e6,
            runs.best_rate() / parquet_rate,
            thousands(dry.best_rate()),
            dry.spread(|m, rows| rows / m.wall_secs, thousands),
            dry.best().0.cpu_secs,
        );
    }
    let csv_rate = results[1].1.best_rate();
    let pass = csv_rate >= parquet_rate / 2.0;
    println!(
        "\nissue 19: CSV rate >= Parquet's / 2: {} (CSV {} rows/s = {:.2}x Parquet's {} rows/s)",
        if pass { "pass" } else { "FAIL" },
        thousands(csv_rate),
        csv_rate / parquet_rate,
        thousands(parquet_rate)
    );
    Ok(())
}

/// One delivering `stagepush run` of `variant`; a run that did not deliver every row it
/// read is an error.
fn delivered_run(bin: &Path, variant: &Variant, endpoint: &str) -> Result<(Measured, Value)> {
    let config = variant.config.as_ref().map(|c| c.display().to_string());
    let extra: Vec<&str> = match &config {
        Some(config) => vec!["--config", config],
        None => Vec::new(),
    };
    let (m, report) = stagepush_run(bin, &variant.stage, endpoint, variant.name, &extra)?;
    let (read, delivered) = (
        num(&report["rows"]["read"]),
        num(&report["rows"]["delivered"]),
    );
    if read != delivered || read != STAGE_ROWS as f64 {
        return Err(format!(
            "{}: {delivered} of {read} rows delivered ({})",
            variant.label, report["fatalError"]
        ));
    }
    Ok((m, report))
}

/// One `stagepush run --dry-run` of `variant`: its measurement and the records it would
/// send.
fn dry_run(bin: &Path, variant: &Variant, endpoint: &str) -> Result<(Measured, f64)> {
    eprintln!("xtask: bench: stagepush run --dry-run ({})", variant.name);
    let mut cmd = Command::new(bin);
    cmd.args(["run", "--dry-run", "--no-progress", "-q", "--source"])
        .arg(&variant.stage)
        .arg("--plugin")
        .arg(plugin_dir().join("customer-rust.wasm"))
        .args(["--endpoint", endpoint]);
    if let Some(config) = &variant.config {
        cmd.arg("--config").arg(config);
    }
    let m = measure(&mut cmd)?;
    let records = dry_run_records(&String::from_utf8_lossy(&m.stdout)).ok_or_else(|| {
        format!(
            "{}: the dry run printed no endpoint line:\n{}",
            variant.label,
            String::from_utf8_lossy(&m.stdout)
        )
    })?;
    Ok((m, records))
}

/// The records of a dry run's endpoint line (`endpoint URL: 1000 bodies, 980000 records,
/// …`).
fn dry_run_records(stdout: &str) -> Option<f64> {
    let line = stdout.lines().find(|l| l.starts_with("endpoint "))?;
    let (_, counts) = line.rsplit_once(": ")?;
    counts
        .split(", ")
        .find_map(|part| part.strip_suffix(" records"))?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_columns_line_is_found_after_the_csv_table() {
        let stderr = "wrote x (1 rows)\nthe CSV files have no header: read them with\n\n\
                      [source.csv]\ncolumns = [\"ID NUMBER(38,0)\", \"NAME VARCHAR\"]\n\n";
        assert_eq!(
            columns_line(stderr).as_deref(),
            Some("columns = [\"ID NUMBER(38,0)\", \"NAME VARCHAR\"]")
        );
        assert_eq!(columns_line("columns = [] but no table\n"), None);
    }

    #[test]
    fn a_dry_runs_records_are_read_from_its_endpoint_line() {
        let stdout = "endpoint http://127.0.0.1:9/upload/api/endpoint/B: 1000 bodies, \
                      980000 records, 123 bytes, 45 on the wire\n  body 000001: 1000 records\n";
        assert_eq!(dry_run_records(stdout), Some(980_000.0));
        assert_eq!(dry_run_records("summary: nothing\n"), None);
    }
}
