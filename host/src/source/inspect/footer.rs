//! Reading the footers of a stage's files, several at once, into what `inspect` reports
//! of each: rows, row groups, `created_by`, codecs, INT96 statistics and the columns (a
//! text file's: its columns, from `super::text`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use parquet::schema::types::Type as ParquetType;

use super::ColumnReport;
use super::parquet_types::{describe_parquet, snowflake_type};
use crate::source::format::{Compression, FileFormat};
use crate::source::parquet::{SourceError, contract_schema};
use crate::source::schema::describe_column;
use crate::source::stage::{Stage, StageError, StageFile};

/// Footers read at once.
const FOOTERS_IN_FLIGHT: usize = 8;

/// What one footer says.
pub(super) struct Footer {
    /// `None` for a text file (known only once read).
    pub(super) rows: Option<u64>,
    pub(super) row_groups: Option<usize>,
    pub(super) created_by: Option<String>,
    /// The column chunks' codecs, each once.
    pub(super) codecs: Vec<String>,
    /// INT96 columns whose statistics show values outside years 0001–9999, with why.
    pub(super) int96_out_of_range: Vec<(String, String)>,
    pub(super) columns: Vec<ColumnReport>,
    pub(super) format: FileFormat,
    /// A text file's whole-file compression.
    pub(super) compression: Option<Compression>,
    /// Where a text file's columns come from.
    pub(super) columns_from: Option<String>,
}

/// Reads the footers, several at once, in the files' order.
pub(super) fn read_footers(stage: &Stage, files: &[StageFile]) -> Vec<Result<Footer, StageError>> {
    let results: Vec<Mutex<Option<Result<Footer, StageError>>>> =
        files.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let threads = FOOTERS_IN_FLIGHT.min(files.len());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(index) else {
                        break;
                    };
                    let footer = read_footer(stage, file);
                    *results[index]
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(footer);
                }
            });
        }
    });
    results
        .into_iter()
        .zip(files)
        .map(|(slot, file)| {
            slot.into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .unwrap_or_else(|| {
                    Err(StageError::Read {
                        object: file.url.clone(),
                        reason: "not read".into(),
                    })
                })
        })
        .collect()
}

fn read_footer(stage: &Stage, file: &StageFile) -> Result<Footer, StageError> {
    let source = stage.open_footer(file)?;
    let Some(parquet) = source.parquet() else {
        return Ok(super::text::footer(&source));
    };
    let contract = contract_schema(
        parquet.name(),
        parquet.parquet_schema(),
        parquet.arrow_schema(),
    );
    let roots = parquet.parquet_schema().root_schema().get_fields();
    let columns = roots
        .iter()
        .enumerate()
        .map(|(index, column)| {
            let plugin = match &contract {
                Ok(columns) => columns
                    .get(index)
                    .map(describe_column)
                    .unwrap_or_else(|| "?".into()),
                Err(error) => match error {
                    SourceError::UnsupportedColumn {
                        column: name,
                        reason,
                        ..
                    } if name == column.name() => {
                        format!("not supported: {reason}")
                    }
                    _ => "?".into(),
                },
            };
            column_report(column, plugin)
        })
        .collect();
    Ok(Footer {
        rows: Some(parquet.num_rows()),
        row_groups: Some(parquet.row_groups().len()),
        created_by: parquet.created_by().map(str::to_owned),
        codecs: parquet.codecs().into_iter().map(str::to_owned).collect(),
        int96_out_of_range: parquet.int96_statistics_problems(),
        columns,
        format: FileFormat::Parquet,
        compression: None,
        columns_from: None,
    })
}

fn column_report(column: &ParquetType, plugin: String) -> ColumnReport {
    let (snowflake, note) = snowflake_type(column);
    ColumnReport {
        name: column.name().to_owned(),
        parquet: describe_parquet(column),
        snowflake,
        plugin,
        note,
    }
}
