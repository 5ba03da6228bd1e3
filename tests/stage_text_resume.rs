//! CSV and JSON stages through the pipeline's failure paths: a run killed at any point is
//! finished by the rerun without loss (a text file's segments are found by reading it
//! again from its start, its segment count once it is read to its end), and a row the
//! reader cannot read is one dead letter naming the column, the value and the type while
//! the rows around it are delivered.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use stagepush::sample::CustomerFileOptions;
use stagepush::sample_text::{CUSTOMER_CSV_COLUMNS, file_name, write_customer_text_file};
use stagepush::source::format::FileFormat;

use crate::util::command::TestCommand;
use crate::util::{
    MockProcess, files_under, mock_records, plugin, read_ndjson, read_report_at, temp_dir,
};

const TOKEN: &str = "text-resume-token-7e1";

fn clean() -> CustomerFileOptions {
    CustomerFileOptions {
        tombstone_fraction: 0.0,
        null_id_fraction: 0.0,
        ..Default::default()
    }
}

/// `files` gzip files of `rows` customers each, ids from 1, in `format`.
fn stage_with(dir: &Path, format: FileFormat, files: u64, rows: u64) -> PathBuf {
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    for n in 0..files {
        let path = stage.join(file_name(format, n));
        write_customer_text_file(&path, format, 1 + n * rows, rows, &clean()).unwrap();
    }
    stage
}

/// The config of a `format` stage: CSV with the customer table's declared columns.
fn config(dir: &Path, format: FileFormat) -> PathBuf {
    let path = dir.join("stagepush.toml");
    let mut text = format!("[source]\nformat = \"{}\"\n", format.as_str());
    if format == FileFormat::Csv {
        let columns: Vec<String> = CUSTOMER_CSV_COLUMNS
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect();
        text.push_str(&format!(
            "[source.csv]\ncolumns = [{}]\n",
            columns.join(", ")
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn run_cmd(
    dir: &Path,
    stage: &Path,
    format: FileFormat,
    mock: &MockProcess,
    endpoint_id: &str,
    report: &str,
) -> TestCommand {
    let mut cmd = TestCommand::new(dir);
    cmd.arg("run")
        .arg("--config")
        .arg(config(dir, format))
        .arg("--source")
        .arg(stage)
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", &mock.endpoint(endpoint_id)])
        .args(["--token-env", "TEXT_RESUME_TOKEN"])
        .env("TEXT_RESUME_TOKEN", TOKEN)
        .args(["--workers", "2", "--no-progress"])
        .arg("--dead-letter")
        .arg(dir.join("dead"))
        .arg("--report")
        .arg(dir.join(report));
    cmd
}

fn report(dir: &Path, name: &str) -> Value {
    read_report_at(&dir.join(name))
}

/// Records stored for `endpoint_id`, counted by externalId.
fn received(mock: &MockProcess, endpoint_id: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for r in mock_records(&mock.store) {
        if r["endpointId"] == endpoint_id {
            let id = r["record"]["externalId"].as_str().unwrap().to_string();
            *out.entry(id).or_default() += 1;
        }
    }
    out
}

/// Rows of the segments a run recorded as acknowledged, from the state's file documents
/// (a write the kill interrupted leaves a `….tmp-*` file beside them).
fn acked_rows(case: &Path) -> u64 {
    let files = case.join("state/files");
    if !files.exists() {
        return 0;
    }
    files_under(&files, Some("json"))
        .iter()
        .map(|p| {
            let doc: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            doc["counts"]["rows"].as_u64().unwrap()
        })
        .sum()
}

fn killed_and_rerun(format: FileFormat) {
    let dir = temp_dir();
    let stage = stage_with(dir.path(), format, 3, 4_000);
    let expected: BTreeSet<String> = (1..=12_000u64).map(|id| id.to_string()).collect();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let mut resumed_files = 0;
    for (i, point) in ["after-post:3", "after-post:17", "after-checkpoint:6"]
        .iter()
        .enumerate()
    {
        let case = dir.path().join(format!("case-{i}"));
        std::fs::create_dir_all(&case).unwrap();
        let endpoint = format!("{}-crash-{i}", format.as_str());
        let killed = run_cmd(&case, &stage, format, &mock, &endpoint, "killed.json")
            .args(["--segment-rows", "500"])
            .env("STAGEPUSH_FAILPOINT", point)
            .run();
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "{point}: {}",
            killed.stderr
        );
        let acked_before = acked_rows(&case);
        let rerun = run_cmd(&case, &stage, format, &mock, &endpoint, "rerun.json")
            .args(["--segment-rows", "500"])
            .run();
        assert_eq!(rerun.status.code(), Some(0), "{point}: {}", rerun.stderr);
        let got = received(&mock, &endpoint);
        let keys: BTreeSet<String> = got.keys().cloned().collect();
        let missing: Vec<_> = expected.difference(&keys).take(5).collect();
        let unexpected: Vec<_> = keys.difference(&expected).take(5).collect();
        assert!(
            missing.is_empty() && unexpected.is_empty(),
            "{point}: missing {missing:?}, unexpected {unexpected:?}"
        );
        let duplicates: u64 = got.values().map(|n| n - 1).sum();
        let r = report(&case, "rerun.json");
        let possible = r["possibleDuplicates"]["records"].as_u64().unwrap();
        assert!(
            duplicates <= possible,
            "{point}: {duplicates} duplicates, report says at most {possible}"
        );
        // It resumed after the segments the killed run had recorded as acknowledged.
        assert_eq!(
            r["rows"]["read"].as_u64().unwrap(),
            12_000 - acked_before,
            "{point}: {acked_before} rows acknowledged before the rerun"
        );
        resumed_files += r["filesResumed"].as_u64().unwrap();
        // Every file is done: a third run has nothing to do.
        let third = run_cmd(&case, &stage, format, &mock, &endpoint, "third.json").run();
        assert_eq!(third.status.code(), Some(0), "{}", third.stderr);
        let r = report(&case, "third.json");
        assert_eq!(r["recordsDelivered"], 0, "{point}");
        assert_eq!(r["filesSkipped"], 3, "{point}");
    }
    assert!(resumed_files > 0, "no case resumed a partly delivered file");
}

#[test]
fn a_csv_run_killed_at_any_point_is_finished_by_the_rerun_without_loss() {
    killed_and_rerun(FileFormat::Csv);
}

#[test]
fn a_json_run_killed_at_any_point_is_finished_by_the_rerun_without_loss() {
    killed_and_rerun(FileFormat::Json);
}

/// Writes `text` gzipped to `path`.
fn write_gz(path: &Path, text: &str) {
    let mut out = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    out.write_all(text.as_bytes()).unwrap();
    out.finish().unwrap();
}

#[test]
fn a_csv_value_that_is_not_its_declared_type_is_one_dead_letter_and_the_rows_around_it_go() {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    // Row 1's UPDATED_AT is not a timestamp; row 3 has a field too many.
    write_gz(
        &stage.join("data_0_0_0.csv.gz"),
        "1,Ann,ann@example.com,NL,true,2024-05-01 12:00:00.000,false\n\
         2,Bob,bob@example.com,NL,true,yesterday,false\n\
         3,Cy,cy@example.com,\\N,false,2024-05-02 08:30:00.250,false\n\
         4,Di,di@example.com,BE,true,2024-05-03 00:00:00.000,false,extra\n\
         5,Ed,ed@example.com,DE,true,2024-05-04 00:00:00.000,false\n",
    );
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let out = run_cmd(
        dir.path(),
        &stage,
        FileFormat::Csv,
        &mock,
        "rows",
        "report.json",
    )
    .run();
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    let got: BTreeSet<String> = received(&mock, "rows").into_keys().collect();
    assert_eq!(
        got,
        ["1", "3", "5"].iter().map(|s| s.to_string()).collect(),
        "{}",
        out.stderr
    );
    let letters = read_ndjson(
        &dir.path()
            .join("dead")
            .join(stagepush::deadletter::DEAD_LETTER_FILE),
    );
    let rows: Vec<(u64, &str, &str)> = letters
        .iter()
        .map(|l| {
            (
                l["row"].as_u64().unwrap(),
                l["stage"].as_str().unwrap(),
                l["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [(1, "read", "unreadable-row"), (3, "read", "unreadable-row")],
        "{letters:?}"
    );
    let message = letters[0]["message"].as_str().unwrap();
    for part in ["UPDATED_AT", "yesterday", "TIMESTAMP_NTZ(3)"] {
        assert!(message.contains(part), "{part} not in: {message}");
    }
    assert!(
        letters[0]["input"].as_str().unwrap().contains("2,Bob"),
        "the row's text is the letter's input: {}",
        letters[0]
    );
    let r = report(dir.path(), "report.json");
    assert_eq!(r["rows"]["read"], 5, "{r}");
    assert_eq!(r["rows"]["deadLettered"], 2, "{r}");
    // Done: a rerun sends nothing.
    let again = run_cmd(
        dir.path(),
        &stage,
        FileFormat::Csv,
        &mock,
        "rows",
        "again.json",
    )
    .run();
    assert_eq!(again.status.code(), Some(0), "{}", again.stderr);
    assert_eq!(received(&mock, "rows").values().sum::<u64>(), 3);
}

/// How a bad `.gz` stage file is made from a good one.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Cut to half its size: its first rows read, then the gzip stream ends early.
    Truncated,
    /// Its text uncompressed under the `.gz` name: not one row reads.
    NotGzip,
}

/// Damages the gzip file at `path`; returns the external ids of the rows a reader can
/// still take from it: the complete lines its stream gives before the error (a partial
/// last line must not be read as a row).
fn damage(path: &Path, format: FileFormat, how: Damage) -> Vec<u64> {
    use std::io::Read;
    let bytes = std::fs::read(path).unwrap();
    let text = match how {
        Damage::Truncated => {
            std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
            let mut text = Vec::new();
            flate2::read::MultiGzDecoder::new(&bytes[..bytes.len() / 2])
                .read_to_end(&mut text)
                .expect_err("a truncated gzip stream ends in an error");
            text
        }
        Damage::NotGzip => {
            let mut text = Vec::new();
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_end(&mut text)
                .unwrap();
            std::fs::write(path, &text).unwrap();
            Vec::new()
        }
    };
    let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    std::str::from_utf8(&text[..complete])
        .unwrap()
        .lines()
        .map(|line| match format {
            FileFormat::Csv => line.split(',').next().unwrap().parse().unwrap(),
            _ => serde_json::from_str::<Value>(line).unwrap()["CUSTOMER_ID"]
                .as_u64()
                .unwrap(),
        })
        .collect()
}

/// A stage of a damaged file sorting first (ids from 10,001; the stage's schema, JSON's
/// inferred columns included, then comes from the good file when none of it reads) and a
/// good one (ids 1..=2,000); returns the stage, the damaged file and the ids of its
/// readable rows.
fn stage_with_a_bad_file(
    dir: &Path,
    format: FileFormat,
    how: Damage,
) -> (PathBuf, PathBuf, Vec<u64>) {
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    let bad = stage.join(file_name(format, 0));
    write_customer_text_file(&bad, format, 10_001, 20_000, &clean()).unwrap();
    let readable = damage(&bad, format, how);
    match how {
        Damage::Truncated => assert!(
            !readable.is_empty() && readable.len() < 20_000,
            "{} rows readable",
            readable.len()
        ),
        Damage::NotGzip => assert!(readable.is_empty()),
    }
    write_customer_text_file(stage.join(file_name(format, 1)), format, 1, 2_000, &clean()).unwrap();
    (stage, bad, readable)
}

fn bad_gzip_file_is_dead_lettered_from_its_first_unreadable_row(format: FileFormat, how: Damage) {
    let dir = temp_dir();
    let (stage, bad, readable) = stage_with_a_bad_file(dir.path(), format, how);
    let bad_name = bad.file_name().unwrap().to_str().unwrap().to_owned();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let endpoint = format!("{}-{how:?}", format.as_str());
    let out = run_cmd(dir.path(), &stage, format, &mock, &endpoint, "report.json")
        .args(["--segment-rows", "500"])
        .run();
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    // The good file and the bad file's readable rows, each once.
    let got = received(&mock, &endpoint);
    let expected: BTreeSet<String> = (1..=2_000u64)
        .chain(readable.iter().copied())
        .map(|id| id.to_string())
        .collect();
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(got.values().all(|n| *n == 1), "sent twice: {got:?}");
    // The rest of the bad file is one dead letter (its row count is not known), at the
    // first row not read, naming the file and the cause.
    let letters = read_ndjson(
        &dir.path()
            .join("dead")
            .join(stagepush::deadletter::DEAD_LETTER_FILE),
    );
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["file"], bad.to_str().unwrap(), "{letter}");
    assert_eq!(letter["row"], readable.len() as u64, "{letter}");
    assert_eq!(
        (&letter["stage"], &letter["kind"]),
        (&"read".into(), &"corrupt-file".into())
    );
    let message = letter["message"].as_str().unwrap();
    assert!(
        message.contains(&bad_name) && message.contains("gzip"),
        "{message}"
    );
    let r = report(dir.path(), "report.json");
    let rows = &r["rows"];
    assert_eq!(rows["read"], 2_000 + readable.len() as u64 + 1, "{rows}");
    assert_eq!(rows["delivered"], 2_000 + readable.len() as u64, "{rows}");
    assert_eq!(rows["deadLettered"], 1, "{rows}");
    assert_eq!(
        rows["deadLetteredByReason"],
        serde_json::json!({"read/corrupt-file": 1}),
        "{rows}"
    );
    // One ERROR line names the file and the cause.
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains(&bad_name))
        .collect();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert!(errors[0].contains("gzip"), "{}", errors[0]);
    // A rerun sends nothing new: the bad file stays skipped until it is replaced.
    let again = run_cmd(dir.path(), &stage, format, &mock, &endpoint, "again.json").run();
    assert_eq!(again.status.code(), Some(0), "{}", again.stderr);
    assert_eq!(received(&mock, &endpoint), got);
    assert_eq!(report(dir.path(), "again.json")["recordsDelivered"], 0);

    // `--on-bad-file fail`: the run stops naming the file and the cause, and counts as
    // delivered only what the endpoint acknowledged.
    let case = dir.path().join("fail");
    std::fs::create_dir_all(&case).unwrap();
    let endpoint = format!("{endpoint}-fail");
    let out = run_cmd(&case, &stage, format, &mock, &endpoint, "report.json")
        .args(["--segment-rows", "500", "--on-bad-file", "fail"])
        .run();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let error = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error:") && l.contains(&bad_name))
        .unwrap_or_else(|| panic!("no error line naming {bad_name}: {}", out.stderr));
    assert!(error.contains("gzip"), "{error}");
    assert_eq!(error.matches(&bad_name).count(), 1, "named once: {error}");
    let got = received(&mock, &endpoint);
    assert!(got.values().all(|n| *n == 1), "sent twice: {got:?}");
    let sent: BTreeSet<String> = got.keys().cloned().collect();
    assert!(
        sent.is_subset(&expected),
        "{:?}",
        sent.difference(&expected)
    );
    let r = report(&case, "report.json");
    assert_eq!(r["recordsDelivered"], got.len() as u64, "{r}");
    assert!(acked_rows(&case) <= got.len() as u64);
}

#[test]
fn a_truncated_csv_gz_is_dead_lettered_from_its_first_unread_row() {
    bad_gzip_file_is_dead_lettered_from_its_first_unreadable_row(
        FileFormat::Csv,
        Damage::Truncated,
    );
}

#[test]
fn a_truncated_json_gz_is_dead_lettered_from_its_first_unread_row() {
    bad_gzip_file_is_dead_lettered_from_its_first_unreadable_row(
        FileFormat::Json,
        Damage::Truncated,
    );
}

#[test]
fn a_csv_gz_that_is_not_gzip_is_one_dead_letter() {
    bad_gzip_file_is_dead_lettered_from_its_first_unreadable_row(FileFormat::Csv, Damage::NotGzip);
}

#[test]
fn a_json_gz_that_is_not_gzip_is_one_dead_letter() {
    bad_gzip_file_is_dead_lettered_from_its_first_unreadable_row(FileFormat::Json, Damage::NotGzip);
}
