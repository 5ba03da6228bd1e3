//! `stagepush inspect`: what a stage holds, read from the files' footers only.
//!
//! [`inspect`] opens every selected file's footer (several at once) and reports, per file,
//! size, rows, row groups, modification time, the parsed Snowflake file name and the
//! partition values; the stage's schema (its first readable file's) with each column's
//! Parquet type, the Snowflake type it most likely came from and the type a plugin gets;
//! totals; and warnings about what trips users up: integers unloaded as decimals,
//! `HEADER=FALSE`'s `_COL_n` names, schemas that differ across files, unreadable files.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use parquet::basic::{ConvertedType, LogicalType, TimeUnit, Type as PhysicalType};
use parquet::schema::types::Type as ParquetType;
use serde::Serialize;

use super::parquet::contract_schema;
use super::stage::{Stage, StageFile, describe_column};
use crate::storage::url::StoreKind;

/// Footers read at once.
const FOOTERS_IN_FLIGHT: usize = 8;
/// Files named in one schema-difference warning before "and N more".
const MAX_NAMED_FILES: usize = 5;

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
    /// Rows, from the footer (`None` when unreadable).
    pub rows: Option<u64>,
    /// Row groups, from the footer.
    pub row_groups: Option<usize>,
    /// The footer's `created_by`.
    pub created_by: Option<String>,
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

/// What one footer says.
struct Footer {
    rows: u64,
    row_groups: usize,
    created_by: Option<String>,
    columns: Vec<ColumnReport>,
}

/// Reads the footers of `files` (a selection of `stage`) and reports on them.
pub fn inspect(stage: &Stage, files: &[StageFile]) -> StageReport {
    let footers = read_footers(stage, files);
    let mut reports = Vec::with_capacity(files.len());
    let mut totals = Totals {
        files: files.len(),
        bytes: files.iter().map(|file| file.size).sum(),
        ..Totals::default()
    };
    let mut warnings = Vec::new();
    let mut schema: Option<(Vec<ColumnReport>, String)> = None;
    let mut differing = Vec::new();
    let mut unreadable = Vec::new();
    let mut empty = Vec::new();
    for (file, footer) in files.iter().zip(footers) {
        let mut report = file_report(file);
        match footer {
            Ok(footer) => {
                totals.rows += footer.rows;
                totals.row_groups += footer.row_groups;
                report.rows = Some(footer.rows);
                report.row_groups = Some(footer.row_groups);
                report.created_by = footer.created_by;
                if footer.rows == 0 {
                    empty.push(file.relative.clone());
                }
                match &schema {
                    None => schema = Some((footer.columns, file.url.clone())),
                    Some((columns, _)) => {
                        if let Some(difference) = column_difference(columns, &footer.columns) {
                            report.schema_differs = true;
                            differing.push((file.relative.clone(), difference));
                        }
                    }
                }
            }
            Err(error) => {
                totals.unreadable += 1;
                unreadable.push(file.relative.clone());
                report.error = Some(error);
            }
        }
        reports.push(report);
    }
    if files.is_empty() {
        warnings.push(
            "no data files found (Snowflake writes no file for an empty result; check the URL \
             and the selection)"
                .into(),
        );
    }
    let (columns, schema_from) = match schema {
        Some((columns, from)) => (columns, Some(from)),
        None => (Vec::new(), None),
    };
    warnings.extend(schema_warnings(&columns));
    if !differing.is_empty() {
        let first = schema_from.as_deref().unwrap_or("the first file");
        let named: Vec<String> = differing
            .iter()
            .take(MAX_NAMED_FILES)
            .map(|(file, difference)| format!("{file} ({difference})"))
            .collect();
        let more = differing.len().saturating_sub(MAX_NAMED_FILES);
        warnings.push(format!(
            "{} file(s) have a schema different from {first}'s: {}{}; a run reads one \
             schema: such files are dead-lettered or stop the run (--on-bad-file)",
            differing.len(),
            named.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        ));
    }
    if !unreadable.is_empty() {
        warnings.push(format!(
            "{} file(s) cannot be read as Parquet: {}",
            unreadable.len(),
            name_list(&unreadable)
        ));
    }
    if !empty.is_empty() {
        warnings.push(format!(
            "{} file(s) have no rows: {}",
            empty.len(),
            name_list(&empty)
        ));
    }
    let query_ids: std::collections::BTreeSet<&str> = files
        .iter()
        .filter_map(|file| file.name.query_id.as_deref())
        .collect();
    if query_ids.len() > 1 {
        warnings.push(format!(
            "the files come from {} different unload queries (query ids in their names): a \
             retried or repeated COPY INTO can leave older files behind; select one with \
             --include '*<query id>*'",
            query_ids.len()
        ));
    }
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

fn name_list(names: &[String]) -> String {
    let mut text = names
        .iter()
        .take(MAX_NAMED_FILES)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > MAX_NAMED_FILES {
        text.push_str(&format!(" and {} more", names.len() - MAX_NAMED_FILES));
    }
    text
}

/// Reads the footers, several at once, in the files' order.
fn read_footers(stage: &Stage, files: &[StageFile]) -> Vec<Result<Footer, String>> {
    let results: Vec<Mutex<Option<Result<Footer, String>>>> =
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
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .unwrap_or_else(|| Err("not read".into()))
        })
        .collect()
}

fn read_footer(stage: &Stage, file: &StageFile) -> Result<Footer, String> {
    let source = stage.open_footer(file).map_err(|error| error.to_string())?;
    let parquet = source.parquet();
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
                    super::parquet::SourceError::UnsupportedColumn {
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
        rows: parquet.num_rows(),
        row_groups: parquet.row_groups().len(),
        created_by: parquet.created_by().map(str::to_owned),
        columns,
    })
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
        rows: None,
        row_groups: None,
        created_by: None,
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

/// How `actual` differs from `expected` (names, Parquet types), if it does.
fn column_difference(expected: &[ColumnReport], actual: &[ColumnReport]) -> Option<String> {
    if expected.len() != actual.len() {
        return Some(format!(
            "{} columns instead of {}",
            actual.len(),
            expected.len()
        ));
    }
    expected
        .iter()
        .zip(actual)
        .find(|(want, got)| want.name != got.name || want.parquet != got.parquet)
        .map(|(want, got)| {
            if want.name != got.name {
                format!("column `{}` instead of `{}`", got.name, want.name)
            } else {
                format!(
                    "`{}` is {} instead of {}",
                    got.name, got.parquet, want.parquet
                )
            }
        })
}

/// Warnings about the stage's schema.
fn schema_warnings(columns: &[ColumnReport]) -> Vec<String> {
    let mut warnings = Vec::new();
    let decimal_integers: Vec<&str> = columns
        .iter()
        .filter(|column| {
            column.snowflake.starts_with("NUMBER(") && column.snowflake.ends_with(",0)")
        })
        .filter(|column| column.parquet.contains("DECIMAL("))
        .map(|column| column.name.as_str())
        .collect();
    if !decimal_integers.is_empty() {
        warnings.push(format!(
            "integer column(s) {} were unloaded as DECIMAL (Snowflake writes NUMBER as a \
             decimal unless the query casts it): the plugin gets decimals; to get integers \
             cast them in the unload query, e.g. CAST({} AS BIGINT), if the values fit in \
             64 bits",
            decimal_integers.join(", "),
            decimal_integers[0]
        ));
    }
    let header_false: Vec<&str> = columns
        .iter()
        .map(|column| column.name.as_str())
        .filter(|name| is_positional_name(name))
        .collect();
    if !header_false.is_empty() {
        warnings.push(format!(
            "column(s) named {}: the unload ran with HEADER=FALSE (the default), which drops \
             the column names; add HEADER=TRUE to the COPY INTO to keep them, or map the \
             columns by position",
            if header_false.len() > 3 {
                format!(
                    "{} … {}",
                    header_false[0],
                    header_false[header_false.len() - 1]
                )
            } else {
                header_false.join(", ")
            }
        ));
    }
    let unsupported: Vec<&str> = columns
        .iter()
        .filter(|column| column.plugin.starts_with("not supported"))
        .map(|column| column.name.as_str())
        .collect();
    if !unsupported.is_empty() {
        warnings.push(format!(
            "column(s) {} have a type a plugin cannot receive: a run refuses this stage",
            unsupported.join(", ")
        ));
    }
    warnings
}

/// `_COL_0`, `_COL_1`, …: Snowflake's names under HEADER=FALSE.
fn is_positional_name(name: &str) -> bool {
    name.strip_prefix("_COL_")
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
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

/// `OPTIONAL FIXED_LEN_BYTE_ARRAY(16) DECIMAL(38,0)`, `REQUIRED INT64 TIMESTAMP_MILLIS
/// (converted type only)`, `OPTIONAL BYTE_ARRAY UTF8`, `OPTIONAL group LIST`: the logical
/// type when there is one, else the legacy converted type.
pub fn describe_parquet(column: &ParquetType) -> String {
    let info = column.get_basic_info();
    let repetition = if info.has_repetition() {
        format!("{:?} ", info.repetition())
    } else {
        String::new()
    };
    let physical = match column {
        ParquetType::PrimitiveType {
            physical_type,
            type_length,
            ..
        } => match physical_type {
            PhysicalType::FIXED_LEN_BYTE_ARRAY => format!("FIXED_LEN_BYTE_ARRAY({type_length})"),
            other => format!("{other:?}"),
        },
        ParquetType::GroupType { .. } => "group".to_owned(),
    };
    let annotation = match (info.logical_type_ref(), info.converted_type()) {
        (Some(logical), _) => Some(describe_logical(logical)),
        (None, ConvertedType::NONE) => None,
        (None, ConvertedType::DECIMAL) => {
            let (precision, scale) = precision_scale(column);
            Some(format!("DECIMAL({precision},{scale})"))
        }
        // How Snowflake writes TIMESTAMP_NTZ: the missing logical type is the point.
        (None, converted @ (ConvertedType::TIMESTAMP_MILLIS | ConvertedType::TIMESTAMP_MICROS)) => {
            Some(format!("{converted:?} (converted type only)"))
        }
        (None, converted) => Some(format!("{converted:?}")),
    };
    match annotation {
        Some(annotation) => format!("{repetition}{physical} {annotation}"),
        None => format!("{repetition}{physical}"),
    }
}

fn describe_logical(logical: &LogicalType) -> String {
    match logical {
        LogicalType::String => "STRING".into(),
        LogicalType::Map => "MAP".into(),
        LogicalType::List => "LIST".into(),
        LogicalType::Enum => "ENUM".into(),
        LogicalType::Decimal(decimal) => {
            format!("DECIMAL({},{})", decimal.precision, decimal.scale)
        }
        LogicalType::Date => "DATE".into(),
        LogicalType::Time(time) => format!(
            "TIME({}, adjustedToUTC={})",
            unit_name(&time.unit),
            time.is_adjusted_to_u_t_c
        ),
        LogicalType::Timestamp(timestamp) => format!(
            "TIMESTAMP({}, adjustedToUTC={})",
            unit_name(&timestamp.unit),
            timestamp.is_adjusted_to_u_t_c
        ),
        LogicalType::Integer(int) => format!(
            "INT({}, {})",
            int.bit_width,
            if int.is_signed { "signed" } else { "unsigned" }
        ),
        LogicalType::Json => "JSON".into(),
        LogicalType::Bson => "BSON".into(),
        LogicalType::Uuid => "UUID".into(),
        LogicalType::Float16 => "FLOAT16".into(),
        other => format!("{other:?}").to_uppercase(),
    }
}

fn unit_name(unit: &TimeUnit) -> &'static str {
    match unit {
        TimeUnit::MILLIS => "MILLIS",
        TimeUnit::MICROS => "MICROS",
        TimeUnit::NANOS => "NANOS",
    }
}

fn precision_scale(column: &ParquetType) -> (i32, i32) {
    match column {
        ParquetType::PrimitiveType {
            precision, scale, ..
        } => (*precision, *scale),
        ParquetType::GroupType { .. } => (0, 0),
    }
}

/// The Snowflake type a column most likely had, from its Parquet type (see `docs/reference/snowflake-unload.md`),
/// and a remark when there is one to make.
pub fn snowflake_type(column: &ParquetType) -> (String, Option<String>) {
    let info = column.get_basic_info();
    let logical = info.logical_type_ref();
    let converted = info.converted_type();
    let physical = match column {
        ParquetType::GroupType { .. } => {
            return match (logical, converted) {
                (Some(LogicalType::List), _) | (None, ConvertedType::LIST) => (
                    "ARRAY".into(),
                    Some("a Parquet LIST (not written by Snowflake)".into()),
                ),
                _ => (
                    "OBJECT".into(),
                    Some("a Parquet group (not written by Snowflake)".into()),
                ),
            };
        }
        ParquetType::PrimitiveType { physical_type, .. } => *physical_type,
    };
    let note = |text: &str| Some(text.to_owned());
    match (logical, converted) {
        (Some(LogicalType::Decimal(decimal)), _) => {
            let remark = (decimal.scale == 0 && physical == PhysicalType::FIXED_LEN_BYTE_ARRAY)
                .then(|| "an integer unloaded as a decimal".to_owned());
            (
                format!("NUMBER({},{})", decimal.precision, decimal.scale),
                remark,
            )
        }
        (None, ConvertedType::DECIMAL) => {
            let (precision, scale) = precision_scale(column);
            (format!("NUMBER({precision},{scale})"), None)
        }
        (Some(LogicalType::Timestamp(timestamp)), _) => {
            if timestamp.is_adjusted_to_u_t_c {
                (
                    "TIMESTAMP_LTZ".into(),
                    note(
                        "an instant in UTC (Snowflake does not unload TIMESTAMP_LTZ/TZ: another tool wrote this)",
                    ),
                )
            } else {
                ("TIMESTAMP_NTZ".into(), note("wall-clock time, no zone"))
            }
        }
        (None, ConvertedType::TIMESTAMP_MILLIS | ConvertedType::TIMESTAMP_MICROS) => (
            "TIMESTAMP_NTZ".into(),
            note("wall-clock time, no zone (legacy TIMESTAMP annotation, as Snowflake writes it)"),
        ),
        (Some(LogicalType::Date), _) | (None, ConvertedType::DATE) => ("DATE".into(), None),
        (Some(LogicalType::Time(_)), _)
        | (None, ConvertedType::TIME_MILLIS | ConvertedType::TIME_MICROS) => ("TIME".into(), None),
        (Some(LogicalType::Json), _) | (None, ConvertedType::JSON) => (
            "VARIANT".into(),
            note("JSON text: VARIANT, OBJECT or ARRAY"),
        ),
        (Some(LogicalType::String | LogicalType::Enum), _)
        | (None, ConvertedType::UTF8 | ConvertedType::ENUM) => ("VARCHAR".into(), None),
        (Some(LogicalType::Uuid), _) => ("VARCHAR".into(), note("a UUID")),
        (Some(LogicalType::Integer(int)), _) => (
            "NUMBER".into(),
            Some(format!(
                "a {}-bit integer: the unload query cast it",
                int.bit_width
            )),
        ),
        (
            None,
            ConvertedType::INT_8
            | ConvertedType::INT_16
            | ConvertedType::INT_32
            | ConvertedType::INT_64
            | ConvertedType::UINT_8
            | ConvertedType::UINT_16
            | ConvertedType::UINT_32
            | ConvertedType::UINT_64,
        ) => (
            "NUMBER".into(),
            note("an integer: the unload query cast it"),
        ),
        _ => match physical {
            PhysicalType::BOOLEAN => ("BOOLEAN".into(), None),
            PhysicalType::INT32 | PhysicalType::INT64 => (
                "NUMBER".into(),
                note("an integer: the unload query cast it"),
            ),
            PhysicalType::INT96 => (
                "TIMESTAMP_NTZ".into(),
                note("legacy INT96 timestamp (not written by Snowflake)"),
            ),
            PhysicalType::FLOAT | PhysicalType::DOUBLE => ("FLOAT".into(), None),
            PhysicalType::BYTE_ARRAY | PhysicalType::FIXED_LEN_BYTE_ARRAY => {
                ("BINARY".into(), None)
            }
        },
    }
}

/// The report as text for a terminal.
pub fn render_text(report: &StageReport) -> String {
    let mut out = String::new();
    let line = |out: &mut String, text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(
        &mut out,
        format!("stage:   {} ({})", report.stage, report.store),
    );
    let totals = &report.totals;
    line(
        &mut out,
        format!(
            "files:   {} ({}), {} rows in {} row groups{}",
            totals.files,
            human_bytes(totals.bytes),
            totals.rows,
            totals.row_groups,
            if totals.unreadable > 0 {
                format!(", {} unreadable", totals.unreadable)
            } else {
                String::new()
            }
        ),
    );
    if !report.files.is_empty() {
        line(&mut out, String::new());
        let rows: Vec<[String; 7]> = report
            .files
            .iter()
            .map(|file| {
                [
                    file.relative.clone(),
                    human_bytes(file.size),
                    file.rows.map_or("-".into(), |rows| rows.to_string()),
                    file.row_groups
                        .map_or("-".into(), |groups| groups.to_string()),
                    file.modified.clone(),
                    describe_name(&file.name),
                    describe_partitions(&file.partitions),
                ]
            })
            .collect();
        let header = [
            "FILE",
            "SIZE",
            "ROWS",
            "GROUPS",
            "MODIFIED",
            "SNOWFLAKE NAME",
            "PARTITIONS",
        ]
        .map(str::to_owned);
        render_table(&mut out, &header, &rows);
        for file in report.files.iter().filter(|file| file.error.is_some()) {
            line(
                &mut out,
                format!(
                    "  ! {}: {}",
                    file.relative,
                    file.error.as_deref().unwrap_or_default()
                ),
            );
        }
    }
    if !report.schema.is_empty() {
        line(&mut out, String::new());
        line(
            &mut out,
            format!(
                "schema ({} columns, from {}):",
                report.schema.len(),
                report.schema_from.as_deref().unwrap_or("?")
            ),
        );
        let rows: Vec<[String; 5]> = report
            .schema
            .iter()
            .map(|column| {
                [
                    column.name.clone(),
                    column.parquet.clone(),
                    column.snowflake.clone(),
                    column.plugin.clone(),
                    column.note.clone().unwrap_or_default(),
                ]
            })
            .collect();
        let header = [
            "COLUMN",
            "PARQUET",
            "SNOWFLAKE (LIKELY)",
            "PLUGIN GETS",
            "NOTE",
        ]
        .map(str::to_owned);
        render_table(&mut out, &header, &rows);
    }
    if !report.warnings.is_empty() {
        line(&mut out, String::new());
        line(&mut out, "warnings:".into());
        for warning in &report.warnings {
            line(&mut out, format!("  - {warning}"));
        }
    }
    out
}

fn render_table<const N: usize>(out: &mut String, header: &[String; N], rows: &[[String; N]]) {
    let mut widths = header.each_ref().map(|cell| cell.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(header).chain(rows) {
        let mut text = String::from("  ");
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            text.push_str(cell);
            if index + 1 < N {
                text.push_str(&" ".repeat(width - cell.chars().count() + 2));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
}

fn describe_name(name: &NameReport) -> String {
    let mut text = name.prefix.clone();
    if let Some(query_id) = &name.query_id {
        text.push_str(&format!(" query {query_id}"));
    }
    match &name.numbers {
        Some([a, b, c]) => text.push_str(&format!(" {a}_{b}_{c}")),
        None => text.push_str(" (single file)"),
    }
    text
}

fn describe_partitions(partitions: &[PartitionReport]) -> String {
    if partitions.is_empty() {
        return "-".into();
    }
    partitions
        .iter()
        .map(
            |partition| match (&partition.value, partition.name.is_empty()) {
                (Some(value), _) => format!("{}={value}", partition.name),
                (None, false) => format!("{}=NULL", partition.name),
                (None, true) => "NULL".into(),
            },
        )
        .collect::<Vec<_>>()
        .join(" ")
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::schema::parser::parse_message_type;

    fn columns(schema: &str) -> Vec<(String, String, String)> {
        let message = parse_message_type(schema).unwrap();
        message
            .get_fields()
            .iter()
            .map(|column| {
                (
                    column.name().to_owned(),
                    describe_parquet(column),
                    snowflake_type(column).0,
                )
            })
            .collect()
    }

    #[test]
    fn snowflake_types_from_parquet_types() {
        let found = columns(
            "message schema {
              optional fixed_len_byte_array(16) ID (DECIMAL(38,0));
              optional fixed_len_byte_array(4) PRICE (DECIMAL(6,2));
              required int64 UPDATED_AT (TIMESTAMP_MILLIS);
              optional int64 AT_UTC (TIMESTAMP(MICROS,true));
              optional int64 AT_LOCAL (TIMESTAMP(MICROS,false));
              optional binary NAME (UTF8);
              optional binary DOC (JSON);
              optional int32 DAY (DATE);
              optional double SCORE;
              optional boolean ACTIVE;
              optional int64 BIG;
              optional int32 SMALL (INTEGER(32,true));
              optional binary RAW;
              optional int96 OLD;
            }",
        );
        let expected = [
            (
                "ID",
                "OPTIONAL FIXED_LEN_BYTE_ARRAY(16) DECIMAL(38,0)",
                "NUMBER(38,0)",
            ),
            (
                "PRICE",
                "OPTIONAL FIXED_LEN_BYTE_ARRAY(4) DECIMAL(6,2)",
                "NUMBER(6,2)",
            ),
            (
                "UPDATED_AT",
                "REQUIRED INT64 TIMESTAMP_MILLIS (converted type only)",
                "TIMESTAMP_NTZ",
            ),
            (
                "AT_UTC",
                "OPTIONAL INT64 TIMESTAMP(MICROS, adjustedToUTC=true)",
                "TIMESTAMP_LTZ",
            ),
            (
                "AT_LOCAL",
                "OPTIONAL INT64 TIMESTAMP(MICROS, adjustedToUTC=false)",
                "TIMESTAMP_NTZ",
            ),
            ("NAME", "OPTIONAL BYTE_ARRAY UTF8", "VARCHAR"),
            ("DOC", "OPTIONAL BYTE_ARRAY JSON", "VARIANT"),
            ("DAY", "OPTIONAL INT32 DATE", "DATE"),
            ("SCORE", "OPTIONAL DOUBLE", "FLOAT"),
            ("ACTIVE", "OPTIONAL BOOLEAN", "BOOLEAN"),
            ("BIG", "OPTIONAL INT64", "NUMBER"),
            ("SMALL", "OPTIONAL INT32 INT(32, signed)", "NUMBER"),
            ("RAW", "OPTIONAL BYTE_ARRAY", "BINARY"),
            ("OLD", "OPTIONAL INT96", "TIMESTAMP_NTZ"),
        ];
        assert_eq!(found.len(), expected.len());
        for ((name, parquet, snowflake), (want_name, want_parquet, want_snowflake)) in
            found.iter().zip(expected)
        {
            assert_eq!(name, want_name);
            assert_eq!(snowflake, want_snowflake, "{name}");
            assert_eq!(parquet, want_parquet, "{name}");
        }
    }

    #[test]
    fn positional_names() {
        assert!(is_positional_name("_COL_0"));
        assert!(is_positional_name("_COL_12"));
        assert!(!is_positional_name("_COL_"));
        assert!(!is_positional_name("_COL_X"));
        assert!(!is_positional_name("COL_1"));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(16 * 1024 * 1024), "16.0 MiB");
    }
}
