//! `stagepush retry` (and `run --retry-rejected`) end to end: runs that leave dead letters
//! in the delivery state, then retries against the endpoint stand-in.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use stagepush::sample::{CustomerFileOptions, write_customer_file};

use crate::util::command::TestCommand;
use crate::util::{
    MockProcess, Output, customer_file, files_under, mock_records, mock_requests, plugin,
    read_ndjson, temp_dir,
};

const TOKEN: &str = "retry-token-5d1e";
const ENDPOINT_ID: &str = "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D";
const FILE: &str = "data_0_0_0.snappy.parquet";
/// Fast retries of transient failures (the defaults wait up to 30 s between attempts).
const FAST_RETRIES: &str =
    "[sink.retry]\ninitial_backoff_ms = 10\nmax_backoff_secs = 1\nmax_attempts = 30\n";

/// `stagepush <command>` against `mock`, with the plugin `plugin_name`, the state in
/// `dir/state`, dead letters in `dir/dead` and the report in `dir/<command>-report.json`.
fn command(
    dir: &Path,
    command: &str,
    stage: &Path,
    mock: &MockProcess,
    plugin_name: &str,
) -> TestCommand {
    let config = dir.join("stagepush.toml");
    std::fs::write(
        &config,
        format!(
            "[sink]\nendpoint = \"{}\"\n{FAST_RETRIES}",
            mock.endpoint(ENDPOINT_ID)
        ),
    )
    .unwrap();
    let mut cmd = TestCommand::new(dir);
    cmd.arg(command)
        .arg("--config")
        .arg(&config)
        .arg("--source")
        .arg(stage)
        .arg("--plugin")
        .arg(plugin(plugin_name))
        .args(["--token-env", "STAGEPUSH_RETRY_TOKEN"])
        .env("STAGEPUSH_RETRY_TOKEN", TOKEN)
        .arg("--dead-letter")
        .arg(dir.join("dead"))
        .arg("--report")
        .arg(dir.join(format!("{command}-report.json")));
    cmd
}

fn report(dir: &Path, command: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join(format!("{command}-report.json"))).unwrap())
        .unwrap()
}

/// Every dead-letter chunk in the state under `dir/state`.
fn state_chunks(dir: &Path) -> Vec<PathBuf> {
    files_under(&dir.join("state/dead-letters"), Some("ndjson"))
}

/// Every dead letter kept in the state.
fn state_letters(dir: &Path) -> Vec<serde_json::Value> {
    state_chunks(dir)
        .iter()
        .flat_map(|c| read_ndjson(c))
        .collect()
}

/// The one file state document of the stage.
fn file_state(dir: &Path) -> serde_json::Value {
    let folder = std::fs::read_dir(dir.join("state/files"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let doc = std::fs::read_dir(folder)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    serde_json::from_slice(&std::fs::read(doc).unwrap()).unwrap()
}

/// The external ids the mock stored.
fn received_ids(mock: &MockProcess) -> Vec<String> {
    mock_records(&mock.store)
        .iter()
        .map(|l| l["record"]["externalId"].as_str().unwrap().to_string())
        .collect()
}

fn summary(out: &Output) -> &str {
    out.stderr_lines("retry: ")
        .first()
        .copied()
        .unwrap_or_else(|| panic!("no retry summary: {}", out.stderr))
}

#[test]
fn retry_after_the_endpoint_stand_in_stops_rejecting_a_row_delivers_it_and_empties_the_dead_letters()
 {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    customer_file(&stage, FILE, 20);

    // Run 1: the stand-in refuses customer 7 (row 6).
    let rejecting = MockProcess::start(
        &dir.path().join("first"),
        TOKEN,
        &["--reject-external-id", "7"],
    );
    let out = command(dir.path(), "run", &stage, &rejecting, "customer-rust").run();
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    let mut first = received_ids(&rejecting);
    first.sort_by_key(|id| id.parse::<u64>().unwrap());
    let expected: Vec<String> = (1..=20)
        .filter(|&i| i != 7)
        .map(|i| i.to_string())
        .collect();
    assert_eq!(first, expected);
    drop(rejecting);
    let letters = state_letters(dir.path());
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["row"], 6);
    assert_eq!(letter["stage"], "endpoint");
    assert_eq!(letter["kind"], "http-400");
    assert_eq!(letter["record"]["externalId"], "7");
    assert!(
        letter["message"]
            .as_str()
            .unwrap()
            .contains("rejected-external-id"),
        "{letter}"
    );
    assert_eq!(file_state(dir.path())["counts"]["rowsDeadLettered"], 1);

    // An endpoint that refuses the token stops the retry (exit 1); the letter stays as is.
    let chunks = state_chunks(dir.path());
    let refusing = MockProcess::start(&dir.path().join("refusing"), "another-token", &[]);
    let out = command(dir.path(), "retry", &stage, &refusing, "customer-rust").run();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("refused the API token (401"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(TOKEN));
    assert_eq!(state_chunks(dir.path()), chunks);
    assert_eq!(
        report(dir.path(), "retry")["files"][0]["outcome"],
        "not-finished"
    );
    drop(refusing);

    // The stand-in accepts everything now: the row is delivered, the dead letters empty.
    let accepting = MockProcess::start(&dir.path().join("second"), TOKEN, &[]);
    let out = command(dir.path(), "retry", &stage, &accepting, "customer-rust").run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert_eq!(
        summary(&out),
        "retry: 1 rows retried: 1 delivered, 0 filtered, 0 still rejected, 0 superseded, 0 file gone"
    );
    assert_eq!(received_ids(&accepting), ["7"]);
    let record = &mock_records(&accepting.store)[0]["record"];
    assert_eq!(record, &letter["record"], "the same record is sent again");
    assert!(
        state_chunks(dir.path()).is_empty(),
        "{:?}",
        state_chunks(dir.path())
    );
    let r = report(dir.path(), "retry");
    assert_eq!(r["rows"]["delivered"], 1);
    assert_eq!(r["remaining"], 0);
    assert_eq!(r["recordsDelivered"], 1);
    assert_eq!(r["receipts"].as_array().unwrap().len(), 1);
    // The file's counts moved from dead-lettered to delivered.
    let counts = &file_state(dir.path())["counts"];
    assert_eq!(counts["rowsDeadLettered"], 0);
    assert_eq!(counts["recordsDelivered"], 20);
    assert!(!out.stderr.contains(TOKEN));

    // Nothing is left to do.
    let requests = mock_requests(&accepting.store).len();
    let out = command(dir.path(), "retry", &stage, &accepting, "customer-rust").run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert_eq!(
        summary(&out),
        "retry: 0 rows retried: 0 delivered, 0 filtered, 0 still rejected, 0 superseded, 0 file gone"
    );
    assert_eq!(mock_requests(&accepting.store).len(), requests);
}

/// A stage of one customer file in which some CUSTOMER_IDs are null (customer-rust
/// rejects those rows); returns the stage and the rows with a null id.
fn stage_with_null_ids(dir: &Path) -> (PathBuf, BTreeSet<u64>) {
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    let options = CustomerFileOptions {
        tombstone_fraction: 0.0,
        null_id_fraction: 0.2,
        ..Default::default()
    };
    write_customer_file(stage.join(FILE), 1, 60, &options).unwrap();
    let out = TestCommand::new(dir)
        .args(["plugin", "test"])
        .arg(plugin("customer-rust"))
        .arg(&stage)
        .run();
    assert!(out.status.success(), "{}", out.stderr);
    let rows: BTreeSet<u64> = out
        .stderr_lines("error: ")
        .iter()
        .map(|l| {
            let (_, rest) = l.split_once(" row ").unwrap();
            rest.split_once(':').unwrap().0.parse().unwrap()
        })
        .collect();
    assert!(!rows.is_empty(), "the file must hold null ids");
    (stage, rows)
}

#[test]
fn a_plugin_rejection_fixed_by_a_new_plugin_version_is_re_transformed() {
    let dir = temp_dir();
    let (stage, bad_rows) = stage_with_null_ids(dir.path());
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let out = command(dir.path(), "run", &stage, &mock, "customer-rust").run();
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    let rows = |letters: &[serde_json::Value]| -> BTreeSet<u64> {
        letters.iter().map(|l| l["row"].as_u64().unwrap()).collect()
    };
    let letters = state_letters(dir.path());
    assert_eq!(rows(&letters), bad_rows);
    assert!(letters.iter().all(|l| l["stage"] == "plugin"));
    let logged = read_ndjson(&dir.path().join("dead/dead-letters.ndjson")).len();
    let delivered = mock_records(&mock.store).len();

    // The same plugin rejects them again: they stay, rewritten into one chunk, and are
    // logged again; nothing is sent.
    let out = command(dir.path(), "retry", &stage, &mock, "customer-rust").run();
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    let n = bad_rows.len();
    assert_eq!(
        summary(&out),
        format!(
            "retry: {n} rows retried: 0 delivered, 0 filtered, {n} still rejected, 0 superseded, 0 file gone"
        )
    );
    assert_eq!(state_chunks(dir.path()).len(), 1);
    let letters = state_letters(dir.path());
    assert_eq!(rows(&letters), bad_rows);
    for l in &letters {
        assert_eq!(l["stage"], "plugin");
        assert_eq!(l["message"], "CUSTOMER_ID is null");
        assert_eq!(l["plugin"], "customer");
        assert_eq!(l["input"]["CUSTOMER_ID"], serde_json::Value::Null, "{l}");
    }
    assert_eq!(
        read_ndjson(&dir.path().join("dead/dead-letters.ndjson")).len(),
        logged + n
    );
    assert_eq!(mock_records(&mock.store).len(), delivered);

    // A plugin that accepts those rows (echo: id = the row number) delivers them.
    let out = command(dir.path(), "retry", &stage, &mock, "echo-rust").run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert_eq!(
        summary(&out),
        format!(
            "retry: {n} rows retried: {n} delivered, 0 filtered, 0 still rejected, 0 superseded, 0 file gone"
        )
    );
    let echoed: BTreeSet<u64> = mock_records(&mock.store)[delivered..]
        .iter()
        .map(|l| {
            assert_eq!(l["record"]["type"], "Echo");
            l["record"]["externalId"].as_str().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(echoed, bad_rows);
    assert!(state_chunks(dir.path()).is_empty());
    assert_eq!(report(dir.path(), "retry")["plugin"]["name"], "echo");
}

#[test]
fn dead_letters_of_a_replaced_file_are_superseded_and_nothing_is_sent_for_them() {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    customer_file(&stage, FILE, 20);
    let rejecting = MockProcess::start(
        &dir.path().join("first"),
        TOKEN,
        &["--reject-external-id", "3", "--reject-external-id", "9"],
    );
    let out = command(dir.path(), "run", &stage, &rejecting, "customer-rust").run();
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    drop(rejecting);
    assert_eq!(state_letters(dir.path()).len(), 2);

    // The file is replaced by another version (more rows: another size).
    customer_file(&stage, FILE, 25);
    let mock = MockProcess::start(&dir.path().join("second"), TOKEN, &[]);
    let out = command(dir.path(), "retry", &stage, &mock, "customer-rust").run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert_eq!(
        summary(&out),
        "retry: 0 rows retried: 0 delivered, 0 filtered, 0 still rejected, 2 superseded, 0 file gone"
    );
    assert!(mock_requests(&mock.store).is_empty());
    assert!(state_chunks(dir.path()).is_empty());
    assert_eq!(
        report(dir.path(), "retry")["files"][0]["outcome"],
        "superseded"
    );
}

#[test]
fn dead_letters_of_a_deleted_file_are_kept_and_a_damaged_chunk_is_named() {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    customer_file(&stage, FILE, 10);
    customer_file(&stage, "data_0_1_0.snappy.parquet", 10);
    let rejecting = MockProcess::start(
        &dir.path().join("first"),
        TOKEN,
        &["--reject-external-id", "4"],
    );
    let out = command(dir.path(), "run", &stage, &rejecting, "customer-rust").run();
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    drop(rejecting);
    // Customer 4 is in both files (both have ids 1..=10).
    let chunks = state_chunks(dir.path());
    assert_eq!(chunks.len(), 2, "{chunks:?}");

    std::fs::remove_file(stage.join(FILE)).unwrap();
    let mock = MockProcess::start(&dir.path().join("second"), TOKEN, &[]);
    let out = command(dir.path(), "retry", &stage, &mock, "customer-rust").run();
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    assert_eq!(
        summary(&out),
        "retry: 1 rows retried: 1 delivered, 0 filtered, 0 still rejected, 0 superseded, 1 file gone"
    );
    assert_eq!(received_ids(&mock), ["4"]);
    let letters = state_letters(dir.path());
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0]["file"].as_str().unwrap().ends_with(FILE),
        "{letters:?}"
    );

    // A damaged chunk stops the retry with a message naming it; nothing is sent.
    let chunk = state_chunks(dir.path()).pop().unwrap();
    let mut text = std::fs::read_to_string(&chunk).unwrap();
    text.push_str("{\"file\": oops\n");
    std::fs::write(&chunk, text).unwrap();
    let requests = mock_requests(&mock.store).len();
    let out = command(dir.path(), "retry", &stage, &mock, "customer-rust").run();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let name = chunk.file_name().unwrap().to_str().unwrap();
    assert!(
        out.stderr.contains(name) && out.stderr.contains("line 2"),
        "{}",
        out.stderr
    );
    assert_eq!(mock_requests(&mock.store).len(), requests);
}

#[test]
fn run_with_retry_rejected_retries_the_dead_letters_first() {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    customer_file(&stage, FILE, 12);
    let rejecting = MockProcess::start(
        &dir.path().join("first"),
        TOKEN,
        &["--reject-external-id", "12"],
    );
    let out = command(dir.path(), "run", &stage, &rejecting, "customer-rust").run();
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    drop(rejecting);

    let mock = MockProcess::start(&dir.path().join("second"), TOKEN, &[]);
    let out = command(dir.path(), "run", &stage, &mock, "customer-rust")
        .arg("--retry-rejected")
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert_eq!(
        summary(&out),
        "retry: 1 rows retried: 1 delivered, 0 filtered, 0 still rejected, 0 superseded, 0 file gone"
    );
    // The run itself skips the file, which is done.
    assert_eq!(received_ids(&mock), ["12"]);
    assert_eq!(report(dir.path(), "run")["filesSkipped"], 1);
    assert!(state_chunks(dir.path()).is_empty());
}

#[test]
fn a_401_mid_retry_stops_the_retry_and_keeps_the_letters_not_retried() {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    let options = CustomerFileOptions {
        tombstone_fraction: 0.0,
        null_id_fraction: 0.0,
        ..Default::default()
    };
    write_customer_file(stage.join("data_0_0_0.snappy.parquet"), 1, 20, &options).unwrap();
    write_customer_file(stage.join("data_0_1_0.snappy.parquet"), 21, 20, &options).unwrap();
    // Run 1: one row of each file is refused.
    let rejecting = MockProcess::start(
        &dir.path().join("first"),
        TOKEN,
        &["--reject-external-id", "7", "--reject-external-id", "27"],
    );
    let out = command(dir.path(), "run", &stage, &rejecting, "customer-rust").run();
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    drop(rejecting);
    assert_eq!(state_letters(dir.path()).len(), 2);

    // The retry: the endpoint stores the first file's row, then refuses the token.
    let mock = MockProcess::start(
        &dir.path().join("second"),
        TOKEN,
        &["--sequence", "200,401"],
    );
    let out = command(dir.path(), "retry", &stage, &mock, "customer-rust")
        .run_within(Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("error: the retry stopped: the endpoint refused the API token (401"),
        "{}",
        out.stderr
    );
    let delivered = received_ids(&mock);
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    // The letter of the file not finished is kept as it was.
    let kept: Vec<String> = state_letters(dir.path())
        .iter()
        .map(|l| l["record"]["externalId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let mut both = [delivered[0].clone(), kept[0].clone()];
    both.sort();
    assert_eq!(both, ["27", "7"]);
    let report = report(dir.path(), "retry");
    assert!(
        report["fatalError"]
            .as_str()
            .is_some_and(|e| e.contains("401")),
        "{report}"
    );
    assert_eq!(report["requests"], mock_requests(&mock.store).len() as u64);
}
