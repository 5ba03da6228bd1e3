//! `stagepush inspect`: what a stage holds, read from the files' footers only.
//!
//! [`inspect`] opens every selected file's footer (several at once) and reports, per file,
//! size, rows, row groups, modification time, the parsed Snowflake file name and the
//! partition values; the stage's schema (its first readable file's) with each column's
//! Parquet type, the Snowflake type it most likely came from and the type a plugin gets;
//! each file's codecs; totals; and warnings about what trips users up: integers unloaded as
//! decimals, `HEADER=FALSE`'s `_COL_n` names, schemas that differ across files, unreadable
//! files, files in a codec a run refuses (LZO), INT96 values a run cannot read.
//!
//! The core returns the typed [`StageReport`] (`--json` prints it as it is); the terminal
//! rendering is the command line's. Parts: `footer` (reading the footers), [`parquet_types`]
//! (a column's Parquet type in words and the Snowflake type it likely had), `warnings`.

use serde::Serialize;

use super::format::FileFormat;
use super::parquet::SourceError;
use super::schema::{SchemaColumn, describe_difference};
use super::stage::{Stage, StageError, StageFile};
use crate::storage::url::StoreKind;

mod footer;
pub mod parquet_types;
mod text;
mod warnings;

pub use self::parquet_types::{describe_parquet, snowflake_type};

/// What `inspect` found.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// The stage URL.
    pub stage: String,
    /// The kind of store.
    pub store: StoreKind,
    /// The files, sorted by key.
    pub files: Vec<FileReport>,
    /// The stage's schema: its first readable file's columns.
    pub schema: Vec<ColumnReport>,
    /// The file the schema was read from.
    pub schema_from: Option<String>,
    /// Sums over the readable files.
    pub totals: Totals,
    /// What the user should know.
    pub warnings: Vec<String>,
}

/// One file of the stage.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The object key (or local path).
    pub key: String,
    /// The key relative to the stage URL.
    pub relative: String,
    /// The object as a URL.
    pub url: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, RFC 3339 in UTC to the second (`2024-05-01T12:34:56Z`).
    pub modified: String,
    /// The ETag, if the store gave one.
    pub e_tag: Option<String>,
    /// `parquet`, `csv` or `json` (as the name or the first bytes say).
    pub format: String,
    /// A CSV or JSON file's whole-file compression (`none`, `gzip`, `bz2`, `zstd`).
    pub compression: Option<String>,
    /// Where a CSV or JSON file's columns come from (declared, the header line, `_COL_n`,
    /// inferred).
    pub columns_from: Option<String>,
    /// Rows, from the footer (`None` when unreadable, and for a CSV or JSON file: known
    /// only once read).
    pub rows: Option<u64>,
    /// Row groups, from the footer.
    pub row_groups: Option<usize>,
    /// The footer's `created_by`.
    pub created_by: Option<String>,
    /// The codecs of its column chunks (`SNAPPY`, `ZSTD`, `LZO`, …), each once; for a file
    /// refused for its codec, that codec.
    pub codecs: Vec<String>,
    /// The parsed Snowflake file name.
    pub name: NameReport,
    /// `PARTITION BY` values in path order; `value` is `null` for a NULL partition.
    pub partitions: Vec<PartitionReport>,
    /// Why the file cannot be read, if it cannot.
    pub error: Option<String>,
    /// True when its columns differ from the stage's schema.
    pub schema_differs: bool,
}

/// The parts of a Snowflake unload file name.
#[derive(Debug, Clone, Serialize)]
pub struct NameReport {
    /// `data`, or the unload path's file-name part.
    pub prefix: String,
    /// The query id of `INCLUDE_QUERY_ID=TRUE`/`PARTITION BY` names.
    pub query_id: Option<String>,
    /// The three numbers, as written; `null` for a `SINGLE=TRUE` file.
    pub numbers: Option<[String; 3]>,
    /// Everything after the first dot.
    pub extension: String,
    /// The compression the extension names.
    pub compression: Option<String>,
    /// A `SINGLE=TRUE` file (no numbers).
    pub single: bool,
}

/// One `key=value` partition folder.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionReport {
    /// The partition name (empty for a bare `_NULL_` folder).
    pub name: String,
    /// The value; `null` for SQL NULL.
    pub value: Option<String>,
}

/// One column of the stage's schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnReport {
    /// The column name.
    pub name: String,
    /// The Parquet type: repetition, physical type, annotation
    /// (`OPTIONAL FIXED_LEN_BYTE_ARRAY(16) DECIMAL(38,0)`).
    pub parquet: String,
    /// The Snowflake type the column most likely had (`NUMBER(38,0)`, `TIMESTAMP_NTZ`).
    pub snowflake: String,
    /// What the plugin receives (`nullable decimal(38,0)`), or why it cannot.
    pub plugin: String,
    /// A remark on the column, if any.
    pub note: Option<String>,
}

/// Sums over the stage.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Files selected.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Rows of the readable files.
    pub rows: u64,
    /// Row groups of the readable files.
    pub row_groups: usize,
    /// Files that could not be read.
    pub unreadable: usize,
}

impl SchemaColumn for ColumnReport {
    fn column_name(&self) -> &str {
        &self.name
    }

    /// Files differ in their Parquet types (two Parquet types may give a plugin the same
    /// contract type, and still be two schemas).
    fn same_type(&self, other: &Self) -> bool {
        self.parquet == other.parquet
    }

    fn type_words(&self) -> String {
        self.parquet.clone()
    }
}

/// Reads the footers of `files` (a selection of `stage`) and reports on them.
pub fn inspect(stage: &Stage, files: &[StageFile]) -> StageReport {
    let footers = footer::read_footers(stage, files);
    let mut reports = Vec::with_capacity(files.len());
    let mut totals = Totals {
        files: files.len(),
        bytes: files.iter().map(|file| file.size).sum(),
        ..Totals::default()
    };
    let mut schema: Option<(Vec<ColumnReport>, String)> = None;
    let mut found = warnings::Findings::default();
    for (file, footer) in files.iter().zip(footers) {
        let mut report = file_report(file);
        match footer {
            Ok(footer) => {
                totals.rows += footer.rows.unwrap_or(0);
                totals.row_groups += footer.row_groups.unwrap_or(0);
                report.rows = footer.rows;
                report.row_groups = footer.row_groups;
                report.created_by = footer.created_by;
                report.format = footer.format.as_str().to_owned();
                report.compression = footer.compression.map(|c| c.as_str().to_owned());
                report.columns_from = footer.columns_from;
                report.codecs = footer.codecs;
                for (column, problem) in footer.int96_out_of_range {
                    found.int96.push((file.relative.clone(), column, problem));
                }
                if footer.rows == Some(0) {
                    found.empty.push(file.relative.clone());
                }
                match &schema {
                    None => schema = Some((footer.columns, file.url.clone())),
                    Some((columns, _)) => {
                        if let Some(difference) = describe_difference(columns, &footer.columns) {
                            report.schema_differs = true;
                            found.differing.push((file.relative.clone(), difference));
                        }
                    }
                }
            }
            Err(error) => {
                totals.unreadable += 1;
                match &error {
                    StageError::Source(SourceError::Codec { codec, fix, .. }) => {
                        report.codecs = vec![codec.clone()];
                        found
                            .codecs
                            .push((file.relative.clone(), codec.clone(), fix.clone()));
                    }
                    _ => found.unreadable.push(file.relative.clone()),
                }
                report.error = Some(error.to_string());
            }
        }
        reports.push(report);
    }
    let (columns, schema_from) = match schema {
        Some((columns, from)) => (columns, Some(from)),
        None => (Vec::new(), None),
    };
    let warnings = warnings::warnings(files, &columns, schema_from.as_deref(), &found);
    StageReport {
        stage: stage.url(),
        store: stage.kind(),
        files: reports,
        schema: columns,
        schema_from,
        totals,
        warnings,
    }
}

fn file_report(file: &StageFile) -> FileReport {
    FileReport {
        key: file.key.clone(),
        relative: file.relative.clone(),
        url: file.url.clone(),
        size: file.size,
        modified: file
            .last_modified
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        e_tag: file.e_tag.clone(),
        format: file
            .format
            .map_or("unknown", |(format, _)| format.as_str())
            .to_owned(),
        compression: file
            .format
            .filter(|(format, _)| *format != FileFormat::Parquet)
            .map(|(_, compression)| compression.as_str().to_owned()),
        columns_from: None,
        rows: None,
        row_groups: None,
        created_by: None,
        codecs: Vec::new(),
        name: NameReport {
            prefix: file.name.prefix.clone(),
            query_id: file.name.query_id.clone(),
            numbers: file.name.numbers.clone(),
            extension: file.name.extension.clone(),
            compression: file.name.compression().map(str::to_owned),
            single: file.name.is_single(),
        },
        partitions: file
            .partitions
            .iter()
            .map(|(name, value)| PartitionReport {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        error: None,
        schema_differs: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, parquet: &str, plugin: &str) -> ColumnReport {
        ColumnReport {
            name: name.into(),
            parquet: parquet.into(),
            snowflake: "NUMBER".into(),
            plugin: plugin.into(),
            note: None,
        }
    }

    #[test]
    fn files_differ_by_their_parquet_types_in_the_one_diffs_words() {
        let stage = [column("BIG", "OPTIONAL INT64", "nullable integer")];
        let file = [column("BIG", "OPTIONAL INT32", "nullable integer")];
        assert_eq!(
            describe_difference(&stage, &file).as_deref(),
            Some("column `BIG` is OPTIONAL INT32 instead of OPTIONAL INT64")
        );
        // Only the Parquet type counts: the same one is the same schema.
        let same = [column("BIG", "OPTIONAL INT64", "?")];
        assert_eq!(describe_difference(&stage, &same), None);
    }
}
