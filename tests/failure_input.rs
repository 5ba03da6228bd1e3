//! `run` with bad input (issue 14): a bad file wherever it sorts, a file that breaks after
//! its first row group, counts that add up after unreadable files, and dead letters whose
//! input row is always a JSON object (Snowflake's TIMESTAMP_NTZ encoding included).
//!
//! Bad files are made from good ones: truncated to half (no footer: the row count is
//! unknown), or a later row group's first page overwritten (the footer is intact, the
//! first row group reads).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use stagepush::sample::{CustomerFileOptions, customer, write_customer_file};

use crate::util::command::TestCommand;
use crate::util::read_report as report;
use crate::util::{MockProcess, Output, mock_records, plugin, read_ndjson, temp_dir};

const TOKEN: &str = "failure-input-token-3b9e";
const ROWS: u64 = 500;

fn clean() -> CustomerFileOptions {
    CustomerFileOptions {
        tombstone_fraction: 0.0,
        null_id_fraction: 0.0,
        ..Default::default()
    }
}

/// `data_0_{n}_0.snappy.parquet` with ids `n * ROWS + 1 ..= (n + 1) * ROWS`.
fn write_file(stage: &Path, n: u64, options: &CustomerFileOptions) -> PathBuf {
    std::fs::create_dir_all(stage).unwrap();
    let path = stage.join(format!("data_0_{n}_0.snappy.parquet"));
    write_customer_file(&path, n * ROWS + 1, ROWS, options).unwrap();
    path
}

/// Cuts the file to half its size: its footer (and row count) is gone.
fn truncate(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
}

/// Overwrites the first page header of row group `group` with garbage; the footer stays
/// intact, so the row groups before it read.
fn damage_row_group(path: &Path, group: usize) {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let column = reader.metadata().row_group(group).column(0);
    let start = column
        .dictionary_page_offset()
        .unwrap_or(column.data_page_offset()) as usize;
    drop(reader);
    let mut bytes = std::fs::read(path).unwrap();
    bytes[start..start + 32].fill(0xFF);
    std::fs::write(path, bytes).unwrap();
}

/// A `run` of `stage` into endpoint `endpoint_id` of `mock`; state, dead letters and the
/// report under `dir`; JSON log lines.
fn run_cmd(dir: &Path, stage: &Path, mock: &MockProcess, endpoint_id: &str) -> TestCommand {
    let mut cmd = TestCommand::new(dir);
    cmd.args(["--log-format", "json", "run"])
        .arg("--source")
        .arg(stage)
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", &mock.endpoint(endpoint_id)])
        .args(["--token-env", "FAILURE_INPUT_TOKEN"])
        .env("FAILURE_INPUT_TOKEN", TOKEN)
        .args(["--no-progress"])
        .arg("--dead-letter")
        .arg(dir.join("dead"))
        .arg("--report")
        .arg(dir.join("report.json"));
    cmd
}

fn dead_letters(dir: &Path) -> Vec<Value> {
    read_ndjson(
        &dir.join("dead")
            .join(stagepush::deadletter::DEAD_LETTER_FILE),
    )
}

/// The external ids the mock stored for `endpoint_id`.
fn received(mock: &MockProcess, endpoint_id: &str) -> BTreeSet<u64> {
    mock_records(&mock.store)
        .iter()
        .filter(|r| r["endpointId"] == endpoint_id)
        .map(|r| r["record"]["externalId"].as_str().unwrap().parse().unwrap())
        .collect()
}

fn ids_of_file(n: u64) -> BTreeSet<u64> {
    (n * ROWS + 1..=(n + 1) * ROWS).collect()
}

/// The JSON log lines at `level`.
fn log_lines(out: &Output, level: &str) -> Vec<Value> {
    out.stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["level"] == level)
        .collect()
}

/// The row counts add up: every row read is delivered, filtered, unchanged or
/// dead-lettered, and every dead letter is counted.
fn assert_counts_add_up(r: &Value, letters: usize) {
    let rows = &r["rows"];
    let n = |k: &str| {
        rows[k]
            .as_u64()
            .unwrap_or_else(|| panic!("rows.{k}: {rows}"))
    };
    assert_eq!(
        n("read"),
        n("delivered") + n("filtered") + n("unchanged") + n("deadLettered"),
        "read = delivered + filtered + unchanged + dead-lettered: {rows}"
    );
    assert_eq!(n("deadLettered"), letters as u64, "{rows}");
    let by_reason: u64 = rows["deadLetteredByReason"]
        .as_object()
        .map(|m| m.values().map(|v| v.as_u64().unwrap()).sum())
        .unwrap_or(0);
    assert_eq!(by_reason, n("deadLettered"), "{rows}");
}

#[test]
fn a_bad_file_first_in_the_middle_or_last_is_dead_lettered_and_the_others_delivered() {
    let dir = temp_dir();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    for (case, bad) in [("first", 0), ("middle", 1), ("last", 2)] {
        let case_dir = dir.path().join(case);
        let stage = case_dir.join("stage");
        let mut bad_path = PathBuf::new();
        for n in 0..3 {
            let path = write_file(&stage, n, &clean());
            if n == bad {
                truncate(&path);
                bad_path = path;
            }
        }
        let out = run_cmd(&case_dir, &stage, &mock, case).run();
        assert_eq!(out.status.code(), Some(3), "{case}: {}", out.stderr);
        // Every other file is delivered.
        let expected: BTreeSet<u64> = (0..3).filter(|n| *n != bad).flat_map(ids_of_file).collect();
        assert_eq!(received(&mock, case), expected, "{case}");
        // The bad file is dead-lettered as unread, with the reason.
        let letters = dead_letters(&case_dir);
        assert_eq!(letters.len(), 1, "{case}: {letters:?}");
        let letter = &letters[0];
        assert_eq!(letter["file"], bad_path.to_str().unwrap(), "{case}");
        assert_eq!(letter["stage"], "read", "{case}");
        let message = letter["message"].as_str().unwrap();
        assert!(
            message.contains("corrupt or truncated"),
            "{case}: {message}"
        );
        // The report says so.
        let r = report(&case_dir);
        assert!(r["fatalError"].is_null(), "{case}: {}", r["fatalError"]);
        let outcomes: Vec<(&str, &str)> = r["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["file"].as_str().unwrap(), f["outcome"].as_str().unwrap()))
            .collect();
        for (file, outcome) in &outcomes {
            let want = if *file == bad_path.to_str().unwrap() {
                "bad-file"
            } else {
                "done"
            };
            assert_eq!(*outcome, want, "{case}: {file}");
        }
        assert_eq!(outcomes.len(), 3, "{case}");
        assert_eq!(r["recordsDelivered"], 2 * ROWS, "{case}");
        assert_counts_add_up(&r, letters.len());
        // The ERROR line names the file and the reason, once.
        let errors: Vec<Value> = log_lines(&out, "ERROR")
            .into_iter()
            .filter(|l| l.to_string().contains(bad_path.to_str().unwrap()))
            .collect();
        assert_eq!(errors.len(), 1, "{case}: {}", out.stderr);
        assert!(
            errors[0].to_string().contains("corrupt or truncated"),
            "{case}: {}",
            errors[0]
        );
    }
}

#[test]
fn on_bad_file_fail_still_stops_at_a_bad_file() {
    let dir = temp_dir();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    for (case, bad) in [("first", 0), ("middle", 1)] {
        let case_dir = dir.path().join(case);
        let stage = case_dir.join("stage");
        let mut bad_path = PathBuf::new();
        for n in 0..3 {
            let path = write_file(&stage, n, &clean());
            if n == bad {
                truncate(&path);
                bad_path = path;
            }
        }
        let out = run_cmd(&case_dir, &stage, &mock, case)
            .args(["--on-bad-file", "fail", "--workers", "1"])
            .run();
        assert_eq!(out.status.code(), Some(1), "{case}: {}", out.stderr);
        let bad_name = bad_path.file_name().unwrap().to_str().unwrap();
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with("error:") && l.contains(bad_name)),
            "{case}: {}",
            out.stderr
        );
        // Nothing of the bad file or after it was sent.
        let got = received(&mock, case);
        assert!(
            (bad..3).all(|n| ids_of_file(n).is_disjoint(&got)),
            "{case}: {} records",
            got.len()
        );
    }
}

#[test]
fn a_stage_without_a_readable_file_is_a_clear_error() {
    let dir = temp_dir();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let stage = dir.path().join("stage");
    for n in 0..2 {
        truncate(&write_file(&stage, n, &clean()));
    }
    let out = run_cmd(dir.path(), &stage, &mock, "none").run();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let error = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {}", out.stderr));
    assert!(
        error.contains("none of the 2 files") && error.contains("data_0_0_0.snappy.parquet"),
        "{error}"
    );
    assert!(received(&mock, "none").is_empty());
}

#[test]
fn a_file_failing_after_its_first_row_group_is_logged_and_counted_by_reason() {
    let dir = temp_dir();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let stage = dir.path().join("stage");
    // Three row groups of 1,000 rows (2 segments each at 500 rows); the second is damaged.
    let path = stage.join("data_0_0_0.snappy.parquet");
    std::fs::create_dir_all(&stage).unwrap();
    let options = CustomerFileOptions {
        row_group_rows: 1_000,
        ..clean()
    };
    write_customer_file(&path, 1, 3_000, &options).unwrap();
    damage_row_group(&path, 1);
    let out = run_cmd(dir.path(), &stage, &mock, "partway")
        .args(["--segment-rows", "500"])
        .run();
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    // The first row group is delivered; the rest is dead-lettered as unread.
    assert_eq!(received(&mock, "partway"), (1..=1_000).collect());
    let letters = dead_letters(dir.path());
    let rows: BTreeSet<u64> = letters.iter().map(|l| l["row"].as_u64().unwrap()).collect();
    assert_eq!(rows, (1_000..3_000).collect(), "rows dead-lettered");
    assert!(letters.iter().all(|l| l["stage"] == "read"));
    let kind = letters[0]["kind"].as_str().unwrap().to_string();
    assert!(letters.iter().all(|l| l["kind"] == kind));
    let reason = letters[0]["message"].as_str().unwrap().to_string();
    assert!(reason.contains("row group 1"), "{reason}");
    // One ERROR line names the file and the reason.
    let file = path.to_str().unwrap();
    let errors: Vec<Value> = log_lines(&out, "ERROR")
        .into_iter()
        .filter(|l| l.to_string().contains(file))
        .collect();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert!(errors[0].to_string().contains(&reason), "{}", errors[0]);
    // The summary and the report count the dead letters by reason.
    let key = format!("read/{kind}");
    let r = report(dir.path());
    assert_eq!(
        r["rows"]["deadLetteredByReason"][&key], 2_000,
        "{}",
        r["rows"]
    );
    assert_counts_add_up(&r, letters.len());
    let summary = out
        .stderr_lines("summary: ")
        .into_iter()
        .find(|l| l.contains("rows read"))
        .unwrap_or_else(|| panic!("no summary: {}", out.stderr));
    assert!(
        summary.contains(&format!("{key} 2000")),
        "the summary counts by reason: {summary}"
    );
}

#[test]
fn counts_add_up_after_unreadable_files() {
    let dir = temp_dir();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let stage = dir.path().join("stage");
    // Two good files, two without a footer, one that breaks after its first row group,
    // and rows the plugin rejects.
    for n in [0, 2] {
        write_file(
            &stage,
            n,
            &CustomerFileOptions {
                null_id_fraction: 0.05,
                ..clean()
            },
        );
    }
    for n in [1, 3] {
        truncate(&write_file(&stage, n, &clean()));
    }
    let partway = write_file(
        &stage,
        4,
        &CustomerFileOptions {
            row_group_rows: 200,
            ..clean()
        },
    );
    damage_row_group(&partway, 1);
    let out = run_cmd(dir.path(), &stage, &mock, "counts").run();
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    let r = report(dir.path());
    let letters = dead_letters(dir.path());
    assert_counts_add_up(&r, letters.len());
    let by_reason = &r["rows"]["deadLetteredByReason"];
    assert!(
        by_reason["plugin/rejected"].as_u64().unwrap() > 0,
        "{by_reason}"
    );
    // The unreadable files count one row each (their row count is unknown), the
    // part-way file its unread rows.
    let read_letters = letters.iter().filter(|l| l["stage"] == "read").count() as u64;
    assert_eq!(read_letters, 2 + (ROWS - 200), "{by_reason}");
    assert_eq!(
        r["rows"]["delivered"].as_u64().unwrap(),
        received(&mock, "counts").len() as u64
    );
    // The summary line says the same.
    let rows = &r["rows"];
    let line = format!(
        "summary: {} rows read: {} delivered, {} filtered, {} unchanged, {} dead-lettered",
        rows["read"], rows["delivered"], rows["filtered"], rows["unchanged"], rows["deadLettered"]
    );
    assert!(out.stderr.contains(&line), "{line}\n{}", out.stderr);
}

#[test]
fn dead_letters_of_snowflake_timestamp_rows_show_the_input_row() {
    // `UPDATED_AT` is INT64 TIMESTAMP_MILLIS without a logical type, as Snowflake unloads
    // TIMESTAMP_NTZ (and `sample-stage` writes): arrow sees a timestamp in zone "UTC".
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    let options = CustomerFileOptions {
        null_id_fraction: 0.1,
        ..clean()
    };
    write_file(&stage, 0, &options);
    // A record the endpoint rejects, too: its input row is read back from the file.
    let rejected_id = (1..=ROWS)
        .find(|id| customer(*id, &options).id.is_some())
        .unwrap();
    let mock = MockProcess::start(
        dir.path(),
        TOKEN,
        &["--reject-external-id", &rejected_id.to_string()],
    );
    let out = run_cmd(dir.path(), &stage, &mock, "ntz").run();
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    let letters = dead_letters(dir.path());
    let stages: BTreeSet<&str> = letters
        .iter()
        .map(|l| l["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        BTreeSet::from(["endpoint", "plugin"]),
        "{letters:?}"
    );
    for letter in &letters {
        let row = letter["row"].as_u64().unwrap();
        let want = customer(row + 1, &options);
        let input = letter["input"]
            .as_object()
            .unwrap_or_else(|| panic!("row {row}: input is not an object: {}", letter["input"]));
        let text = input["UPDATED_AT"]
            .as_str()
            .unwrap_or_else(|| panic!("row {row}: UPDATED_AT is not text: {letter}"));
        let at = chrono::DateTime::parse_from_rfc3339(text)
            .unwrap_or_else(|e| panic!("row {row}: {text}: {e}"));
        assert_eq!(
            at.timestamp_millis(),
            want.updated_at_ms,
            "row {row}: {text}"
        );
        assert_eq!(input["NAME"], want.name.as_str(), "row {row}");
        if letter["stage"] == "plugin" {
            assert!(input["CUSTOMER_ID"].is_null(), "row {row}: {letter}");
        }
    }
}
