//! CSV and JSON stages (issue 19): read in-process, the same rows as the Parquet unload of
//! the same table, a mixed-format stage refused, a truncated `.csv.gz` a typed bad-file
//! error naming the file; through `stagepush run` and `check`, a mixed-format stage refused
//! (exit 2) unless `[source] format` names one, and invalid `[source.csv]` settings refused
//! (exit 2) naming the key.

use arrow_array::RecordBatch;
use stagepush::sample::{CustomerFileOptions, write_customer_file};
use stagepush::sample_text::{CUSTOMER_CSV_COLUMNS, file_name, write_customer_text_file};
use stagepush::source::format::FileFormat;
use stagepush::source::{ReadOptions, Selection, SourceError, Stage, StageConfig, StageError};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::util::command::TestCommand;
use crate::util::{MockProcess, mock_records, plugin, read_report, temp_dir};

const ROWS: u64 = 2_500;

fn options() -> CustomerFileOptions {
    CustomerFileOptions {
        null_id_fraction: 0.01,
        ..CustomerFileOptions::default()
    }
}

fn csv_stage(dir: &std::path::Path) -> Stage {
    let mut config = StageConfig::from_url(dir.display().to_string());
    config.csv.columns = CUSTOMER_CSV_COLUMNS.iter().map(|c| c.to_string()).collect();
    Stage::new(&config).unwrap()
}

fn read_all(stage: &Stage) -> Vec<RecordBatch> {
    let files = stage.select(&Selection::default()).unwrap();
    let mut batches = Vec::new();
    for file in &files {
        let source = stage.open(file).unwrap();
        let read = ReadOptions {
            batch_rows: 1_000,
            projection: None,
            start_row: 0,
        };
        for batch in source.batches(&read).unwrap() {
            batches.push(batch.unwrap().batch);
        }
    }
    batches
}

#[test]
fn a_csv_unload_reads_as_the_parquet_unload_of_the_same_rows() {
    let dir = temp_dir();
    let parquet = dir.path().join("parquet");
    let csv = dir.path().join("csv");
    std::fs::create_dir_all(&parquet).unwrap();
    std::fs::create_dir_all(&csv).unwrap();
    write_customer_file(
        parquet.join(file_name(FileFormat::Parquet, 0)),
        1,
        ROWS,
        &options(),
    )
    .unwrap();
    write_customer_text_file(
        csv.join(file_name(FileFormat::Csv, 0)),
        FileFormat::Csv,
        1,
        ROWS,
        &options(),
    )
    .unwrap();
    let from_parquet = read_all(&Stage::from_url(&parquet.display().to_string()).unwrap());
    let from_csv = read_all(&csv_stage(&csv));
    let rows: usize = from_csv.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows as u64, ROWS);
    // Both are cut at 1,000 rows: the same batches, with the same values column by column
    // (the Parquet file's REQUIRED columns are nullable in CSV: compare the data).
    assert_eq!(from_parquet.len(), from_csv.len());
    for (expected, actual) in from_parquet.iter().zip(&from_csv) {
        assert_eq!(expected.num_rows(), actual.num_rows());
        for (index, field) in expected.schema().fields().iter().enumerate() {
            assert_eq!(
                expected.column(index).data_type(),
                actual.column(index).data_type(),
                "{}",
                field.name()
            );
            assert_eq!(
                expected.column(index).to_data(),
                actual.column(index).to_data(),
                "{}",
                field.name()
            );
        }
    }
}

#[test]
fn a_stage_of_two_formats_is_refused_naming_a_file_of_each() {
    let dir = temp_dir();
    write_customer_file(
        dir.path().join(file_name(FileFormat::Parquet, 0)),
        1,
        10,
        &options(),
    )
    .unwrap();
    write_customer_text_file(
        dir.path().join(file_name(FileFormat::Csv, 1)),
        FileFormat::Csv,
        11,
        10,
        &options(),
    )
    .unwrap();
    let stage = Stage::from_url(&dir.path().display().to_string()).unwrap();
    let error = stage.select(&Selection::default()).unwrap_err();
    assert!(matches!(error, StageError::MixedFormats { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("data_0_0_0.snappy.parquet"), "{message}");
    assert!(message.contains("data_0_1_0.csv.gz"), "{message}");
    assert!(message.contains("[source] format = "), "{message}");
    // Naming a format reads that format's files only.
    let mut config = StageConfig::from_url(dir.path().display().to_string());
    config.format = stagepush::source::format::FormatSetting::Csv;
    let files = Stage::new(&config)
        .unwrap()
        .select(&Selection::default())
        .unwrap();
    assert_eq!(files.len(), 1);
    assert!(files[0].key.ends_with("data_0_1_0.csv.gz"));
}

#[test]
fn a_truncated_csv_gz_is_a_bad_file_naming_it() {
    let dir = temp_dir();
    let path = dir.path().join(file_name(FileFormat::Csv, 0));
    write_customer_text_file(&path, FileFormat::Csv, 1, 20_000, &options()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let stage = csv_stage(dir.path());
    let file = stage.select(&Selection::default()).unwrap().remove(0);
    let source = stage.open(&file).unwrap();
    assert_eq!(source.num_rows(), None);
    let read = ReadOptions {
        batch_rows: 1_000,
        projection: None,
        start_row: 0,
    };
    let mut rows = 0;
    let mut failure = None;
    for batch in source.batches(&read).unwrap() {
        match batch {
            Ok(batch) => rows += batch.batch.num_rows(),
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    let error = failure.expect("the truncated file ends in an error");
    assert!(rows < 20_000, "{rows}");
    assert!(error.is_bad_file(), "{error}");
    assert!(
        matches!(error, StageError::Source(SourceError::Decompress { .. })),
        "{error:?}"
    );
    assert!(error.to_string().contains("data_0_0_0.csv.gz"), "{error}");
    assert!(error.to_string().contains("gzip"), "{error}");
}

const TOKEN: &str = "stage-text-token-41c";

/// `stagepush run` of `stage` into `endpoint` of `mock` with the customer plugin, the
/// config `config` (if any), state and report under `dir`.
fn run_cmd(
    dir: &Path,
    stage: &Path,
    config: Option<&Path>,
    mock: &MockProcess,
    endpoint: &str,
) -> TestCommand {
    let mut cmd = TestCommand::new(dir);
    cmd.arg("run");
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    cmd.arg("--source")
        .arg(stage)
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", &mock.endpoint(endpoint)])
        .args(["--token-env", "STAGE_TEXT_TOKEN", "--no-progress"])
        .env("STAGE_TEXT_TOKEN", TOKEN)
        .arg("--dead-letter")
        .arg(dir.join("dead"))
        .arg("--report")
        .arg(dir.join("report.json"));
    cmd
}

/// Writes `text` as the config file `dir/name`.
fn config_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `[source] format = "csv"` with the customer table's declared columns.
fn csv_config(dir: &Path) -> PathBuf {
    let columns: Vec<String> = CUSTOMER_CSV_COLUMNS
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect();
    config_file(
        dir,
        "csv.toml",
        &format!(
            "[source]\nformat = \"csv\"\n[source.csv]\ncolumns = [{}]\n",
            columns.join(", ")
        ),
    )
}

/// The external ids the mock stored for `endpoint`, each checked to be stored once.
fn received_once(mock: &MockProcess, endpoint: &str) -> BTreeSet<u64> {
    let ids: Vec<u64> = mock_records(&mock.store)
        .iter()
        .filter(|r| r["endpointId"] == endpoint)
        .map(|r| r["record"]["externalId"].as_str().unwrap().parse().unwrap())
        .collect();
    let set: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(set.len(), ids.len(), "sent twice: {ids:?}");
    set
}

#[test]
fn run_refuses_a_stage_of_two_formats_unless_the_config_names_one() {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    let clean = CustomerFileOptions {
        tombstone_fraction: 0.0,
        null_id_fraction: 0.0,
        ..CustomerFileOptions::default()
    };
    write_customer_file(stage.join(file_name(FileFormat::Parquet, 0)), 1, 10, &clean).unwrap();
    write_customer_text_file(
        stage.join(file_name(FileFormat::Csv, 1)),
        FileFormat::Csv,
        11,
        10,
        &clean,
    )
    .unwrap();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    // `format = "auto"` (the default): refused before any row, naming a file of each
    // format and the setting that fixes it.
    let auto = dir.path().join("auto");
    let out = run_cmd(&auto, &stage, None, &mock, "auto").run();
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    let error = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {}", out.stderr));
    for part in [
        "data_0_0_0.snappy.parquet",
        "data_0_1_0.csv.gz",
        "more than one format",
        "[source] format = ",
    ] {
        assert!(error.contains(part), "{part} not in: {error}");
    }
    assert!(received_once(&mock, "auto").is_empty());
    // A named format reads that format's files only; the other file is not in the run.
    for (name, config, ids, file) in [
        ("csv", csv_config(dir.path()), 11..=20, "data_0_1_0.csv.gz"),
        (
            "parquet",
            config_file(
                dir.path(),
                "parquet.toml",
                "[source]\nformat = \"parquet\"\n",
            ),
            1..=10,
            "data_0_0_0.snappy.parquet",
        ),
    ] {
        let case = dir.path().join(name);
        let out = run_cmd(&case, &stage, Some(&config), &mock, name).run();
        assert_eq!(out.status.code(), Some(0), "{name}: {}", out.stderr);
        assert_eq!(received_once(&mock, name), ids.collect(), "{name}");
        let report = read_report(&case);
        let files: Vec<&str> = report["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["file"].as_str().unwrap())
            .collect();
        assert_eq!(files.len(), 1, "{name}: {files:?}");
        assert!(files[0].ends_with(file), "{name}: {files:?}");
    }
}

/// Invalid `[source.csv]` settings: `run` and `check` refuse them with the usage status
/// (2) before reading a file or sending a record, the message naming the key.
#[test]
fn invalid_csv_settings_are_refused_naming_the_key() {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    write_customer_text_file(
        stage.join(file_name(FileFormat::Csv, 0)),
        FileFormat::Csv,
        1,
        10,
        &options(),
    )
    .unwrap();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    for (case, settings, named) in [
        (
            "empty-delimiter",
            "field_delimiter = \"\"",
            "field_delimiter",
        ),
        (
            "two-characters",
            "field_delimiter = \";;\"",
            "field_delimiter",
        ),
        ("unknown-key", "field_delimeter = \";\"", "field_delimeter"),
        (
            "unknown-type",
            "columns = [\"CUSTOMER_ID NUMBER(38,0)\", \"NAME BLOB\"]",
            "NAME BLOB",
        ),
    ] {
        let work = dir.path().join(case);
        std::fs::create_dir_all(&work).unwrap();
        let config = config_file(
            &work,
            "stagepush.toml",
            &format!("[source.csv]\n{settings}\n"),
        );
        let out = run_cmd(&work, &stage, Some(&config), &mock, case).run();
        assert_eq!(out.status.code(), Some(2), "{case}: {}", out.stderr);
        let error = out
            .stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_else(|| panic!("{case}: no error line: {}", out.stderr));
        assert!(error.contains(named), "{case}: {named} not in: {error}");
        assert!(
            !work.join("report.json").exists(),
            "{case}: the run started"
        );
        let out = TestCommand::new(&work)
            .args(["check", "--config"])
            .arg(&config)
            .arg("--source")
            .arg(&stage)
            .arg("--plugin")
            .arg(plugin("customer-rust"))
            .args(["--endpoint", &mock.endpoint(case)])
            .env("CLUEDIN_TOKEN", TOKEN)
            .run();
        assert_eq!(out.status.code(), Some(2), "{case}: {}", out.stdout);
        // The `config` check, the first: before the token or the endpoint is looked at.
        let fail = out
            .stdout
            .lines()
            .find(|l| l.starts_with("FAIL"))
            .unwrap_or_else(|| panic!("{case}: no FAIL line: {}", out.stdout));
        assert!(fail.starts_with("FAIL config: "), "{case}: {}", out.stdout);
        assert!(fail.contains(named), "{case}: {fail}");
    }
    assert!(mock_records(&mock.store).is_empty());
}
