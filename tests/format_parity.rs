//! Plugin parity across unload formats (issue 19): the same plugin, unchanged, makes the same
//! records of a table from its Parquet, CSV and JSON unloads, for customer-rust,
//! customer-python and customer-js, through `stagepush run` to the mock CluedIn and through
//! `stagepush plugin test`.
//!
//! Each format's stage holds the same rows: two `sample-stage` files (same rows, seed and
//! files: tombstones, null emails) and two files written here as Snowflake writes them
//! (Parquet with the unload's physical types; CSV with every option at its default; NDJSON
//! of `OBJECT_CONSTRUCT(*)`, NULL keys left out). Their edge cases: ids of 2^53 + 1 and the
//! 64-bit extremes, negative ids, NUMBER(38,0) ids beyond 64 bits, a NULL in every nullable
//! column, tombstones with NULLs, an empty string, a literal `\N`, quotes, a newline, a
//! delimiter and a backslash in text, timestamps before 1970 and in year 9999. CSV is read
//! with `[source.csv] columns = CUSTOMER_CSV_COLUMNS`, JSON both inferred and declared with
//! the same columns.
//!
//! Two differences are inherent and documented, and asserted exactly as documented:
//! - `docs/json.md`: inferred columns are typed from the stage's first rows, where
//!   CUSTOMER_ID holds "integers that fit 64 bits" (INTEGER); a later value that does not
//!   fit its column is a row error naming the column, the value and the type ("declare the
//!   columns … large integers beyond 64 bits"). So inferred JSON dead-letters the three ids
//!   beyond 64 bits (the run exits 3) and delivers every other record as Parquet does;
//!   declared JSON delivers them all;
//! - `docs/reference/snowflake-unload.md` ("Empty strings and NULL"): without enclosure an
//!   empty string and NULL cannot be told apart in a CSV unload, and `EMPTY_FIELD_AS_NULL`
//!   reads the empty field as NULL: the default CSV's empty email is no email. With
//!   `FIELD_OPTIONALLY_ENCLOSED_BY = '"'` (Snowflake's recommendation) it is the empty string
//!   again, and every record is identical (checked through `plugin test`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use parquet::file::properties::WriterProperties;
use stagepush::deadletter::DEAD_LETTER_FILE;
use stagepush::sample::CUSTOMER_SCHEMA;
use stagepush::sample_text::CUSTOMER_CSV_COLUMNS;

use crate::util::command::TestCommand;
use crate::util::{
    Chunk, MockProcess, Output, Values, decimal_bytes, plugin, read_ndjson, shared_plugin_cache,
    temp_dir, write_parquet,
};

const TOKEN: &str = "format-parity-token-3b8";
/// Rows of the two `sample-stage` files together: a few thousand, as CI has 2 cores.
const SAMPLE_ROWS: u64 = 3_000;
/// The NUMBER(38,0) maximum.
const MAX38: i128 = 10i128.pow(38) - 1;
/// The file of NUMBER(38,0) ids beyond 64 bits.
const BIG_IDS_FILE: u64 = 3;

/// How a stage is read: its format and, for text, the `[source.*]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Parquet,
    /// `[source.csv] columns = CUSTOMER_CSV_COLUMNS`, every other option at its default.
    Csv,
    /// The same, with `field_optionally_enclosed_by = '"'` (the edge files only).
    CsvEnclosed,
    /// `[source.json]` inferring the columns.
    JsonInferred,
    /// `[source.json] columns = CUSTOMER_CSV_COLUMNS`.
    JsonDeclared,
}

impl Read {
    fn name(self) -> &'static str {
        match self {
            Read::Parquet => "parquet",
            Read::Csv => "csv",
            Read::CsvEnclosed => "csv-enclosed",
            Read::JsonInferred => "json-inferred",
            Read::JsonDeclared => "json-declared",
        }
    }

    /// The `sample-stage --format` and file extension of the files it reads.
    fn format(self) -> &'static str {
        match self {
            Read::Parquet => "parquet",
            Read::Csv | Read::CsvEnclosed => "csv",
            Read::JsonInferred | Read::JsonDeclared => "json",
        }
    }

    /// The config file's `[source]` tables.
    fn config(self) -> String {
        let columns = toml_list(&CUSTOMER_CSV_COLUMNS);
        let mut text = format!("[source]\nformat = \"{}\"\n", self.format());
        match self {
            Read::Parquet | Read::JsonInferred => {}
            Read::Csv => text.push_str(&format!("[source.csv]\ncolumns = {columns}\n")),
            Read::CsvEnclosed => text.push_str(&format!(
                "[source.csv]\nfield_optionally_enclosed_by = '\"'\ncolumns = {columns}\n"
            )),
            Read::JsonDeclared => text.push_str(&format!("[source.json]\ncolumns = {columns}\n")),
        }
        text
    }
}

fn toml_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|c| format!("\"{c}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// One customer row as the table holds it.
#[derive(Clone, Copy)]
struct Row {
    id: Option<i128>,
    name: Option<&'static str>,
    email: Option<&'static str>,
    country: Option<&'static str>,
    active: Option<bool>,
    /// TIMESTAMP_NTZ(3), wall-clock milliseconds.
    updated_ms: i64,
    /// IS_DELETED, NOT NULL as in the sample's table.
    deleted: bool,
}

#[allow(clippy::too_many_arguments)]
const fn row(
    id: Option<i128>,
    name: Option<&'static str>,
    email: Option<&'static str>,
    country: Option<&'static str>,
    active: Option<bool>,
    updated_ms: i64,
    deleted: bool,
) -> Row {
    Row {
        id,
        name,
        email,
        country,
        active,
        updated_ms,
        deleted,
    }
}

/// 9999-12-31 23:59:59.999
const YEAR_9999_MS: i64 = 253_402_300_799_999;

// The rows below: CUSTOMER_ID, NAME, EMAIL, COUNTRY, IS_ACTIVE, UPDATED_AT (ms), IS_DELETED.

/// Edge rows whose ids fit 64 bits (ids away from the sample's 1..=3000).
#[rustfmt::skip]
const EDGE_ROWS: &[Row] = &[
    row(Some(100_001), Some("Ada Lovelace"), Some("  Ada@Example.COM "), Some("GB"), Some(true), 1_714_566_896_789, false),
    row(Some(100_002), Some("Émile Zola"), None, Some("FR"), Some(false), 0, false),
    row(Some(-7), Some("He said \"hi\"\nand left"), Some(""), Some("NO"), Some(true), -86_400_000, false),
    row(Some(9_007_199_254_740_993), Some("Past, a double\\"), Some("a,b@x.y"), Some("SE"), None, YEAR_9999_MS, false),
    row(Some(i64::MAX as i128), None, Some("MAX@X.Y"), None, Some(true), 1_700_000_000_000, false),
    row(Some(i64::MIN as i128), Some("\\N"), None, Some("US"), Some(false), 1_700_000_000_001, false),
    row(Some(100_005), Some("Gone"), Some("g@x.y"), Some("NO"), Some(true), 1_700_000_000_000, true),
    row(Some(100_006), None, None, None, None, 1_600_000_000_000, true),
];

/// Edge rows with NUMBER(38,0) ids beyond 64 bits (and one within, beside them).
#[rustfmt::skip]
const BIG_ID_ROWS: &[Row] = &[
    row(Some(MAX38), Some("Big"), Some("BIG@EXAMPLE.COM"), None, None, 1_714_566_896_789, false),
    row(Some(-MAX38), Some("Small"), Some("s@x.y"), Some("DK"), Some(true), 1_714_566_896_790, false),
    row(Some(1 << 64), Some("Two to the 64th"), None, Some("IT"), Some(false), 1_714_566_896_791, true),
    row(Some(100_010), Some("Small id"), Some("i@x.y"), Some("ES"), Some(true), 1_714_566_896_792, false),
];

/// A row whose id is NULL: the plugins' row error (the `plugin test` check only: a run
/// dead-letters it and exits 3).
#[rustfmt::skip]
const NULL_ID_ROWS: &[Row] = &[
    row(Some(100_020), Some("Before"), Some("b@x.y"), Some("GB"), Some(true), 1_714_566_896_789, false),
    row(None, Some("No Id"), Some("x@y.z"), Some("US"), Some(true), 1_714_566_896_789, false),
];

fn texts(values: &[Option<&str>]) -> Chunk {
    let present: Vec<bool> = values.iter().map(Option::is_some).collect();
    let values = values
        .iter()
        .flatten()
        .map(|v| v.as_bytes().to_vec())
        .collect();
    Chunk::optional(Values::Bytes(values), &present)
}

fn flags(values: &[Option<bool>]) -> Chunk {
    let present: Vec<bool> = values.iter().map(Option::is_some).collect();
    Chunk::optional(
        Values::Bool(values.iter().flatten().copied().collect()),
        &present,
    )
}

fn write_parquet_rows(path: &Path, rows: &[Row]) {
    let ids: Vec<Option<i128>> = rows.iter().map(|r| r.id).collect();
    let present: Vec<bool> = ids.iter().map(Option::is_some).collect();
    let chunks = vec![
        Chunk::optional(
            Values::Fixed(
                ids.iter()
                    .flatten()
                    .map(|&v| decimal_bytes(v, 16))
                    .collect(),
            ),
            &present,
        ),
        texts(&rows.iter().map(|r| r.name).collect::<Vec<_>>()),
        texts(&rows.iter().map(|r| r.email).collect::<Vec<_>>()),
        texts(&rows.iter().map(|r| r.country).collect::<Vec<_>>()),
        flags(&rows.iter().map(|r| r.active).collect::<Vec<_>>()),
        Chunk::required(Values::Int64(rows.iter().map(|r| r.updated_ms).collect())),
        Chunk::required(Values::Bool(rows.iter().map(|r| r.deleted).collect())),
    ];
    write_parquet(
        path,
        CUSTOMER_SCHEMA,
        WriterProperties::builder().build(),
        vec![chunks],
    );
}

/// `TIMESTAMP_NTZ(3)` as Snowflake's default output format writes it.
fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("a timestamp in range")
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

/// A CSV field: unenclosed with `\` escaping the delimiter, itself and line breaks
/// (Snowflake's defaults), or, `enclosed`, in `"` with `"` doubled.
fn csv_text(value: Option<&str>, enclosed: bool) -> String {
    match value {
        None => "\\N".into(),
        Some(text) if enclosed => format!("\"{}\"", text.replace('"', "\"\"")),
        Some(text) => text
            .replace('\\', "\\\\")
            .replace(',', "\\,")
            .replace('\n', "\\n"),
    }
}

fn csv_scalar(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "\\N".into(), |v| v.to_string())
}

fn csv_text_file(rows: &[Row], enclosed: bool) -> String {
    let mut out = String::new();
    for r in rows {
        let fields = [
            csv_scalar(r.id),
            csv_text(r.name, enclosed),
            csv_text(r.email, enclosed),
            csv_text(r.country, enclosed),
            csv_scalar(r.active),
            timestamp(r.updated_ms),
            r.deleted.to_string(),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// NDJSON of `OBJECT_CONSTRUCT(*)`: keys sorted, NULL keys left out, NUMBER(38,0) as a JSON
/// number with every digit.
fn json_text_file(rows: &[Row]) -> String {
    let mut out = String::new();
    for r in rows {
        let mut members: Vec<(&str, String)> = Vec::new();
        let text = |v: &str| serde_json::to_string(v).unwrap();
        members.extend(r.country.map(|v| ("COUNTRY", text(v))));
        members.extend(r.id.map(|v| ("CUSTOMER_ID", v.to_string())));
        members.extend(r.email.map(|v| ("EMAIL", text(v))));
        members.extend(r.active.map(|v| ("IS_ACTIVE", v.to_string())));
        members.push(("IS_DELETED", r.deleted.to_string()));
        members.extend(r.name.map(|v| ("NAME", text(v))));
        members.push(("UPDATED_AT", text(&timestamp(r.updated_ms))));
        let members: Vec<String> = members
            .iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        out.push('{');
        out.push_str(&members.join(","));
        out.push_str("}\n");
    }
    out
}

fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

/// Writes `rows` as unload file `data_0_<n>_0` of `read`'s format into `stage`.
fn write_rows(stage: &Path, read: Read, n: u64, rows: &[Row]) -> PathBuf {
    let path = match read.format() {
        "parquet" => stage.join(format!("data_0_{n}_0.snappy.parquet")),
        format => stage.join(format!("data_0_{n}_0.{format}.gz")),
    };
    match read {
        Read::Parquet => write_parquet_rows(&path, rows),
        Read::Csv => std::fs::write(&path, gzip(&csv_text_file(rows, false))).unwrap(),
        Read::CsvEnclosed => std::fs::write(&path, gzip(&csv_text_file(rows, true))).unwrap(),
        Read::JsonInferred | Read::JsonDeclared => {
            std::fs::write(&path, gzip(&json_text_file(rows))).unwrap()
        }
    }
    path
}

/// The stage of `read`'s format under `dir`: the two sample files, then the edge rows
/// (file 2) and the ids beyond 64 bits (file 3).
fn stage(dir: &Path, read: Read) -> PathBuf {
    let stage = dir.join(format!("stage-{}", read.format()));
    if stage.exists() {
        return stage;
    }
    let out = TestCommand::new(dir)
        .args(["sample-stage", "--format", read.format(), "--out"])
        .arg(&stage)
        .args(["--files", "2", "--rows", &SAMPLE_ROWS.to_string()])
        .args(["--tombstones", "0.05", "--bad-rows", "0", "--seed", "7"])
        .run();
    assert!(out.status.success(), "{}", out.stderr);
    write_rows(&stage, read, 2, EDGE_ROWS);
    write_rows(&stage, read, BIG_IDS_FILE, BIG_ID_ROWS);
    stage
}

fn config_file(dir: &Path, read: Read) -> PathBuf {
    let path = dir.join(format!("{}.toml", read.name()));
    std::fs::write(&path, read.config()).unwrap();
    path
}

/// What a run of one read delivered: the records stored for its endpoint with their external
/// ids, sorted, and its dead letters as (file name, row, message).
struct Delivery {
    records: Vec<(String, String)>,
    dead: Vec<(String, u64, String)>,
}

/// `stagepush run` of `read`'s stage with `plugin` to endpoint `<plugin>-<read>` of the
/// mock; asserts it exits `code`.
fn delivered(dir: &Path, mock: &MockProcess, name: &str, read: Read, code: i32) -> Delivery {
    let case = dir.join(format!("run-{}", read.name()));
    std::fs::create_dir_all(&case).unwrap();
    let endpoint = format!("{name}-{}", read.name());
    let out = TestCommand::new(&case)
        .env("STAGEPUSH_CACHE_DIR", shared_plugin_cache())
        .arg("run")
        .arg("--config")
        .arg(config_file(&case, read))
        .arg("--source")
        .arg(stage(dir, read))
        .arg("--plugin")
        .arg(plugin(name))
        .args(["--endpoint", &mock.endpoint(&endpoint)])
        .args(["--token-env", "FORMAT_PARITY_TOKEN"])
        .env("FORMAT_PARITY_TOKEN", TOKEN)
        .args(["--no-progress", "--batch-rows", "500"])
        .arg("--dead-letter")
        .arg(case.join("dead"))
        .run();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{name} {}: {}",
        read.name(),
        out.stderr
    );
    let mut records: Vec<(String, String)> = mock
        .records()
        .iter()
        .filter(|r| r["endpointId"] == endpoint.as_str())
        .map(|r| {
            let id = r["record"]["externalId"].as_str().unwrap().to_string();
            (id, serde_json::to_string(&r["record"]).unwrap())
        })
        .collect();
    records.sort();
    let dead = read_ndjson(&case.join("dead").join(DEAD_LETTER_FILE))
        .iter()
        .map(|l| {
            let file = l["file"].as_str().unwrap();
            (
                file.rsplit('/').next().unwrap().to_string(),
                l["row"].as_u64().unwrap(),
                l["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    Delivery { records, dead }
}

/// Runs every read of the stage with `name` and asserts the records are the Parquet
/// unload's, but for the documented differences.
fn records_match_across_formats(name: &str) {
    let dir = temp_dir();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let parquet = delivered(dir.path(), &mock, name, Read::Parquet, 0).records;
    let rows = SAMPLE_ROWS as usize + EDGE_ROWS.len() + BIG_ID_ROWS.len();
    assert_eq!(parquet.len(), rows, "{name}: a record per row");
    let ids: BTreeSet<&str> = parquet.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), rows, "{name}: one record per external id");
    for row in BIG_ID_ROWS {
        let id = row.id.unwrap().to_string();
        assert!(ids.contains(id.as_str()), "{name}: {id} from Parquet");
    }
    // Tombstones and the empty string are among them.
    assert!(parquet.iter().any(|(_, r)| r.contains("\"deleted\":true")));
    assert!(parquet.iter().any(|(_, r)| r.contains("\"email\":\"\"")));

    // The default CSV: the empty email is NULL (documented), every other record the same.
    let csv = delivered(dir.path(), &mock, name, Read::Csv, 0).records;
    let without_empty_email: Vec<(String, String)> = parquet
        .iter()
        .map(|(id, r)| (id.clone(), r.replace(",\"email\":\"\"", "")))
        .collect();
    assert_ne!(without_empty_email, parquet);
    assert!(
        csv == without_empty_email,
        "{name} csv: {}",
        diff(&without_empty_email, &csv)
    );

    let declared = delivered(dir.path(), &mock, name, Read::JsonDeclared, 0).records;
    assert!(
        declared == parquet,
        "{name} json-declared: {}",
        diff(&parquet, &declared)
    );

    // Inferred from the stage's first rows, CUSTOMER_ID is INTEGER: an id beyond 64 bits is
    // a row error naming the column, the value and the type (documented), exit 3; every
    // other record is the same.
    let inferred = delivered(dir.path(), &mock, name, Read::JsonInferred, 3);
    let big: Vec<String> = BIG_ID_ROWS
        .iter()
        .filter_map(|r| r.id.filter(|&id| i64::try_from(id).is_err()))
        .map(|id| id.to_string())
        .collect();
    let fitting: Vec<(String, String)> = parquet
        .iter()
        .filter(|(id, _)| !big.contains(id))
        .cloned()
        .collect();
    assert_eq!(fitting.len(), parquet.len() - 3);
    assert!(
        inferred.records == fitting,
        "{name} json-inferred: {}",
        diff(&fitting, &inferred.records)
    );
    let file = format!("data_0_{BIG_IDS_FILE}_0.json.gz");
    let expected_dead: Vec<(String, u64)> = (0..3).map(|row| (file.clone(), row)).collect();
    let dead: Vec<(String, u64)> = inferred
        .dead
        .iter()
        .map(|(file, row, _)| (file.clone(), *row))
        .collect();
    assert_eq!(dead, expected_dead, "{name}: {:?}", inferred.dead);
    for ((_, _, message), id) in inferred.dead.iter().zip(&big) {
        assert!(
            message.contains(&format!("column `CUSTOMER_ID`: `{id}` is not a INTEGER")),
            "{name}: {message}"
        );
    }
}

/// The first records that differ, for a failure message.
fn diff(expected: &[(String, String)], actual: &[(String, String)]) -> String {
    let missing: Vec<&String> = expected
        .iter()
        .filter(|r| !actual.contains(r))
        .map(|(_, r)| r)
        .take(5)
        .collect();
    let extra: Vec<&String> = actual
        .iter()
        .filter(|r| !expected.contains(r))
        .map(|(_, r)| r)
        .take(5)
        .collect();
    format!("\nexpected but not delivered: {missing:#?}\ndelivered but not expected: {extra:#?}")
}

#[test]
fn customer_rust_makes_the_same_records_of_every_format() {
    records_match_across_formats("customer-rust");
}

#[test]
fn customer_python_makes_the_same_records_of_every_format() {
    records_match_across_formats("customer-python");
}

#[test]
fn customer_js_makes_the_same_records_of_every_format() {
    records_match_across_formats("customer-js");
}

/// `stagepush plugin test PLUGIN FILE… --config FILE` of `read`'s files under `stage`.
fn plugin_test(dir: &Path, name: &str, read: Read, files: &[PathBuf]) -> Output {
    let out = TestCommand::new(dir)
        .env("STAGEPUSH_CACHE_DIR", shared_plugin_cache())
        .args(["plugin", "test"])
        .arg(plugin(name))
        .args(files)
        .arg("--config")
        .arg(config_file(dir, read))
        .run();
    assert!(
        out.status.success(),
        "{name} {}: {}",
        read.name(),
        out.stderr
    );
    out
}

/// Row errors without the file names (which differ by extension).
fn row_errors(out: &Output, files: &[PathBuf]) -> Vec<String> {
    out.stderr_lines("error:")
        .iter()
        .map(|line| {
            files
                .iter()
                .enumerate()
                .fold(line.to_string(), |line, (i, f)| {
                    line.replace(&f.display().to_string(), &format!("<file {i}>"))
                })
        })
        .collect()
}

#[test]
fn plugin_test_reads_csv_and_json_files_as_it_reads_the_parquet_file() {
    let dir = temp_dir();
    let files = |read: Read| -> Vec<PathBuf> {
        let stage = dir.path().join(format!("files-{}", read.name()));
        std::fs::create_dir_all(&stage).unwrap();
        vec![
            write_rows(&stage, read, 0, EDGE_ROWS),
            write_rows(&stage, read, 1, NULL_ID_ROWS),
        ]
    };
    let parquet_files = files(Read::Parquet);
    let text_files: Vec<(Read, Vec<PathBuf>)> =
        [Read::CsvEnclosed, Read::JsonInferred, Read::JsonDeclared]
            .into_iter()
            .map(|read| (read, files(read)))
            .collect();
    for name in ["customer-rust", "customer-python", "customer-js"] {
        let parquet = plugin_test(dir.path(), name, Read::Parquet, &parquet_files);
        assert_eq!(
            parquet.stdout_lines().len(),
            EDGE_ROWS.len() + NULL_ID_ROWS.len() - 1
        );
        let errors = row_errors(&parquet, &parquet_files);
        assert_eq!(
            errors,
            [
                "error: <file 1> row 1: plugin `customer` rejected the row (rejected): CUSTOMER_ID is null"
            ]
        );
        for (read, read_files) in &text_files {
            let out = plugin_test(dir.path(), name, *read, read_files);
            assert_eq!(out.stdout, parquet.stdout, "{name} {}", read.name());
            assert_eq!(
                row_errors(&out, read_files),
                errors,
                "{name} {}",
                read.name()
            );
        }
    }
}
