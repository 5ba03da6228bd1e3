//! `stagepush sample-stage`: a Snowflake-like customer stage for demos and benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use stagepush::sample::{CustomerFileOptions, write_customer_file};

#[derive(Args)]
pub struct SampleArgs {
    /// Folder to write `data_0_<n>_0.snappy.parquet` files into.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of files.
    #[arg(long, default_value_t = 4)]
    pub files: u64,
    /// Rows in all files together.
    #[arg(long, default_value_t = 100_000)]
    pub rows: u64,
    /// Fraction of tombstones (IS_DELETED = true).
    #[arg(long, default_value_t = 0.02)]
    pub tombstones: f64,
    /// Fraction of rows with a null CUSTOMER_ID (rows the example plugin rejects).
    #[arg(long, default_value_t = 0.001)]
    pub bad_rows: f64,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

pub fn run(args: SampleArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.files > 0, "--files must be at least 1");
    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    let options = CustomerFileOptions {
        seed: args.seed,
        tombstone_fraction: args.tombstones,
        null_id_fraction: args.bad_rows,
        ..CustomerFileOptions::default()
    };
    let per_file = args.rows.div_ceil(args.files);
    let mut next_id = 1;
    let mut remaining = args.rows;
    for n in 0..args.files {
        let rows = per_file.min(remaining);
        let path = args.out.join(format!("data_0_{n}_0.snappy.parquet"));
        let summary = write_customer_file(&path, next_id, rows, &options)?;
        eprintln!(
            "wrote {} ({} rows, {} tombstones, {} null ids, {} bytes)",
            path.display(),
            summary.rows,
            summary.tombstones,
            summary.null_ids,
            summary.bytes
        );
        next_id += rows;
        remaining -= rows;
    }
    Ok(super::exit::Outcome::Done.into())
}
