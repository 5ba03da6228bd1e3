//! `stagepush sample-stage`: a Snowflake-like customer stage for demos and benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use stagepush::sample::{CustomerFileOptions, write_customer_file};
use stagepush::sample_text::{CUSTOMER_CSV_COLUMNS, file_name, write_customer_text_file};
use stagepush::source::format::FileFormat;

/// The format of the sample's files (as `[source] format` names it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum SampleFormat {
    /// `data_0_<n>_0.snappy.parquet` (`TYPE = PARQUET`).
    #[default]
    Parquet,
    /// `data_0_<n>_0.csv.gz` (`TYPE = CSV`, Snowflake's defaults).
    Csv,
    /// `data_0_<n>_0.json.gz` (`TYPE = JSON` of `OBJECT_CONSTRUCT(*)`).
    Json,
}

#[derive(Args)]
pub struct SampleArgs {
    /// Folder to write `data_0_<n>_0.snappy.parquet` (`.csv.gz`, `.json.gz`) files into.
    #[arg(long)]
    pub out: PathBuf,
    /// The files' format: the same rows as Snowflake unloads them in each.
    #[arg(long, value_enum, default_value_t = SampleFormat::Parquet)]
    pub format: SampleFormat,
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
        let format = match args.format {
            SampleFormat::Parquet => FileFormat::Parquet,
            SampleFormat::Csv => FileFormat::Csv,
            SampleFormat::Json => FileFormat::Json,
        };
        let path = args.out.join(file_name(format, n));
        let summary = match format {
            FileFormat::Parquet => write_customer_file(&path, next_id, rows, &options)?,
            _ => write_customer_text_file(&path, format, next_id, rows, &options)?,
        };
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
    if args.format == SampleFormat::Csv {
        eprintln!(
            "the CSV files have no header and no types: read them as the Parquet unload's \
             types with\n\n[source.csv]\ncolumns = {}\n",
            toml::Value::try_from(CUSTOMER_CSV_COLUMNS)
                .map(|v| v.to_string())
                .unwrap_or_default()
        );
    }
    Ok(super::exit::Outcome::Done.into())
}
