//! `cargo xtask bench big-csv [--gb N]`: one ~N GB (default 2) `.csv.gz` file (written
//! once by `stagepush sample-stage --format csv --files 1`, which streams, and cached
//! under the bench folder) through `stagepush run` at its default settings with the
//! customer-rust plugin to the local sink `bench run` uses (the delivering path: state,
//! dispatch window, report; `--dry-run` keeps a line per body, so it is not used here).
//! Prints rows, rows/s, CPU, peak RSS and the RSS sampled through the run, beside the
//! 1,000,000-row CSV stage's run: constant memory means the big run's peak RSS is about
//! the small run's, not proportional to the file.

use std::path::Path;
use std::time::Duration;

use super::formats::{TextFormat, Types, stage_config, text_stage};
use super::{
    ENDPOINT_ID, Measured, STAGE_FILES, STAGE_ROWS, TOKEN, bench_dir, num, stagepush_run_sampled,
};
use crate::mock::Mock;
use crate::{Result, build_plugins, stagepush_bin};

/// The big file's size in GB (10^9 bytes, compressed) when `--gb` is not given.
const DEFAULT_GB: f64 = 2.0;
/// How often the runs' RSS is sampled.
const RSS_EVERY: Duration = Duration::from_millis(500);

/// `cargo xtask bench big-csv [--gb N]`.
pub fn bench_big_csv(args: &[String]) -> Result {
    let gb = match args {
        [] => DEFAULT_GB,
        [flag, n] if flag == "--gb" => n
            .parse::<f64>()
            .ok()
            .filter(|&gb| gb > 0.0)
            .ok_or_else(|| format!("--gb {n}: not a size in GB"))?,
        other => return Err(format!("bench big-csv: unknown arguments {other:?}")),
    };
    build_plugins()?;
    let bin = stagepush_bin()?;
    let bench = bench_dir();
    let small = bench.join(format!("stage-{STAGE_ROWS}x{STAGE_FILES}-csv"));
    text_stage(&bin, TextFormat::Csv, &small, STAGE_FILES, STAGE_ROWS)?;
    // The rows of N GB, from the bytes per row of the same rows in the small stage.
    let bytes_per_row = dir_bytes(&small)? / STAGE_ROWS as f64;
    let rows = (gb * 1e9 / bytes_per_row).round() as u64;
    let big = bench.join(format!("big-csv-{gb}gb"));
    let written = text_stage(&bin, TextFormat::Csv, &big, 1, rows)?;
    let big_bytes = dir_bytes(&big)?;
    let config = stage_config(&bin, Some(TextFormat::Csv), Types::Declared, "big-csv")?;
    let config = config.map(|c| c.display().to_string()).unwrap_or_default();
    let extra = ["--config", config.as_str()];

    let mock = Mock::start(&bin, TOKEN, None, &["--accept-all"])?;
    let endpoint = mock.endpoint(ENDPOINT_ID);
    let (small_m, small_report) =
        stagepush_run_sampled(&bin, &small, &endpoint, "big-csv-small", &extra, RSS_EVERY)?;
    let (big_m, big_report) =
        stagepush_run_sampled(&bin, &big, &endpoint, "big-csv", &extra, RSS_EVERY)?;
    drop(mock);

    println!(
        "\nbig CSV: one {:.2} GB .csv.gz file (data_0_0_0.csv.gz, {rows} rows, {bytes_per_row:.1} bytes per row \
         compressed); customer-rust plugin, default settings, local sink (mock-cluedin --accept-all)",
        big_bytes / 1e9
    );
    if let Some(w) = &written {
        println!(
            "  written by sample-stage in {:.0} s, its peak RSS {:.0} MB",
            w.wall_secs,
            w.peak_rss_bytes / 1e6
        );
    }
    let small_line = line("1M rows in 8 .csv.gz files", &small_m, &small_report)?;
    let big_line = line("the big file", &big_m, &big_report)?;
    println!(
        "{:<30} {:>11} {:>9} {:>8} {:>8} {:>7} {:>9}",
        "", "rows", "rows/s", "wall s", "CPU s", "RSS MB", "wire MB"
    );
    println!("{small_line}\n{big_line}");
    println!(
        "  RSS through the big run (MB at % of its wall time): {}",
        trajectory(&big_m)
    );
    println!(
        "  RSS through the 1M run:                            {}",
        trajectory(&small_m)
    );
    println!(
        "  constant memory: the big run's peak RSS is {:.2}x the 1M run's, for {:.0}x the rows",
        big_m.peak_rss_bytes / small_m.peak_rss_bytes,
        rows as f64 / STAGE_ROWS as f64
    );
    Ok(())
}

/// One line of the table; a run that did not deliver every row it read is an error.
fn line(label: &str, m: &Measured, report: &serde_json::Value) -> Result<String> {
    let (read, delivered) = (
        num(&report["rows"]["read"]),
        num(&report["rows"]["delivered"]),
    );
    if read != delivered {
        return Err(format!(
            "{label}: {delivered} of {read} rows delivered ({})",
            report["fatalError"]
        ));
    }
    Ok(format!(
        "{label:<30} {read:>11.0} {:>9.0} {:>8.1} {:>8.1} {:>7.0} {:>9.1}",
        read / m.wall_secs,
        m.wall_secs,
        m.cpu_secs,
        m.peak_rss_bytes / 1e6,
        num(&report["bytesSent"]) / 1e6
    ))
}

/// The sampled RSS at 10, 25, 50, 75 and 90 % of the run's wall time, in MB.
fn trajectory(m: &Measured) -> String {
    [0.10, 0.25, 0.50, 0.75, 0.90]
        .iter()
        .filter_map(|&share| {
            let at = share * m.wall_secs;
            let (_, rss) = m
                .rss_samples
                .iter()
                .min_by(|a, b| (a.0 - at).abs().total_cmp(&(b.0 - at).abs()))?;
            Some(format!("{:.0} %: {:.0}", share * 100.0, rss / 1e6))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The bytes of the files in `dir`.
fn dir_bytes(dir: &Path) -> Result<f64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let meta = entry
            .and_then(|e| e.metadata())
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        total += meta.len();
    }
    Ok(total as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trajectory_takes_the_sample_nearest_each_share() {
        let m = Measured {
            stdout: Vec::new(),
            wall_secs: 10.0,
            cpu_secs: 1.0,
            peak_rss_bytes: 60e6,
            rss_samples: (0..=10)
                .map(|s| (s as f64, (s as f64 + 10.0) * 1e6))
                .collect(),
        };
        assert_eq!(
            trajectory(&m),
            "10 %: 11, 25 %: 12, 50 %: 15, 75 %: 17, 90 %: 19"
        );
    }
}
