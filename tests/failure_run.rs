//! `stagepush run` when things go wrong mid-run: a fatal endpoint answer with bodies in
//! flight, retries that run out, SIGINT and SIGTERM. Real processes: the binary, the mock
//! endpoint holding its answers behind a gate file, a stage written by `sample-stage`.
//!
//! Every such run must stop within seconds, release its leases, write its report (with the
//! real cause and the requests the endpoint saw), and give watermarks only for records
//! CluedIn acknowledged, marked as from a run that stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::command::{Background as Running, TestCommand};
use crate::util::read_report;
use crate::util::{
    MockProcess, files_under, mock_records, mock_requests, plugin, read_ndjson, temp_dir,
};

const TOKEN: &str = "failure-token-3b8d";
const ENDPOINT_ID: &str = "5E6F7A8B-9C0D-4E1F-8A2B-3C4D5E6F7A8B";
/// How long a run may take to stop once its cause is there (the fix stops it in seconds;
/// the bug it guards against hung forever).
const STOP_DEADLINE: Duration = Duration::from_secs(45);
/// How long a test waits for a run to get its first bodies out.
const START_DEADLINE: Duration = Duration::from_secs(120);
/// Bodies in flight at once before any answer (the adaptive limit starts there).
const CONCURRENCY: usize = stagepush::sink::concurrency::INITIAL_CONCURRENCY;

/// A stage of `rows` rows in all written by `stagepush sample-stage` (no null ids, so that
/// a finished run has no dead letters).
fn sample_stage(dir: &Path, files: u64, rows: u64) -> PathBuf {
    let stage = dir.join("stage");
    let out = TestCommand::new(dir)
        .args(["sample-stage", "--out"])
        .arg(&stage)
        .args(["--files", &files.to_string(), "--rows", &rows.to_string()])
        .args(["--bad-rows", "0"])
        .run();
    assert!(out.status.success(), "{}", out.stderr);
    stage
}

/// A `run` of `stage` against `mock` (default concurrency, two workers), its report in
/// `dir/report.json`, its log in `dir/run.log`.
fn run_cmd(dir: &Path, stage: &Path, mock: &MockProcess, config: &str) -> TestCommand {
    let config_path = dir.join("stagepush.toml");
    std::fs::write(
        &config_path,
        format!(
            "[sink]\nendpoint = \"{}\"\n{config}",
            mock.endpoint(ENDPOINT_ID)
        ),
    )
    .unwrap();
    let mut cmd = TestCommand::new(dir);
    cmd.current_dir(dir)
        .arg("run")
        .arg("--config")
        .arg(&config_path)
        .arg("--source")
        .arg(stage)
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--token-env", "STAGEPUSH_FAILURE_TOKEN"])
        .env("STAGEPUSH_FAILURE_TOKEN", TOKEN)
        .args(["--workers", "2", "--no-progress"])
        .arg("--dead-letter")
        .arg(dir.join("dead"))
        .arg("--report")
        .arg(dir.join("report.json"));
    cmd
}

/// The requests that reached the mock (body read), answered or still held.
fn arrivals(mock: &MockProcess) -> usize {
    read_ndjson(&mock.store.join(stagepush::mock_cluedin::ARRIVALS_FILE)).len()
}

/// Waits until `n` requests are held at the gate.
fn wait_for_arrivals(mock: &MockProcess, running: &Running, n: usize) {
    let started = Instant::now();
    while arrivals(mock) < n {
        assert!(
            started.elapsed() < START_DEADLINE,
            "timed out waiting for {n} requests at the endpoint:\n{}",
            running.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every file state document of the local state `dir/state`.
fn file_states(dir: &Path) -> Vec<Value> {
    files_under(&dir.join("state/files"), Some("json"))
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

/// Asserts that no file of the state is claimed any more (leases released).
fn assert_leases_released(dir: &Path, log: &str) {
    let docs = file_states(dir);
    assert!(!docs.is_empty(), "the run claimed no file:\n{log}");
    for doc in &docs {
        assert!(
            doc.get("lease").is_none_or(Value::is_null),
            "a lease was left behind: {doc}\n{log}"
        );
    }
}

/// `stagepush status` of `dir/state`.
fn status_text(dir: &Path) -> String {
    let out = TestCommand::new(dir).current_dir(dir).arg("status").run();
    assert!(out.status.success(), "{}", out.stderr);
    out.stdout
}

/// An RFC 3339 time as nanoseconds since 1970.
fn nanos(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
        .timestamp_nanos_opt()
        .unwrap()
}

/// The latest record timestamp per entity type among the records the mock stored.
fn stored_watermarks(mock: &MockProcess) -> BTreeMap<String, i64> {
    let mut marks: BTreeMap<String, i64> = BTreeMap::new();
    for line in mock_records(&mock.store) {
        let record = &line["record"];
        let (Some(t), Some(ts)) = (record["type"].as_str(), record["timestamp"].as_str()) else {
            continue;
        };
        let mark = marks.entry(t.to_string()).or_insert(i64::MIN);
        *mark = (*mark).max(nanos(ts));
    }
    marks
}

/// The report's watermarks, as nanoseconds since 1970.
fn report_watermarks(report: &Value) -> BTreeMap<String, i64> {
    report["watermarks"]
        .as_object()
        .unwrap_or_else(|| panic!("no watermarks in {report}"))
        .iter()
        .map(|(t, v)| (t.clone(), nanos(v.as_str().unwrap())))
        .collect()
}

/// The run's `error: the run stopped: …` line.
fn stop_line(log: &str) -> &str {
    log.lines()
        .find(|l| l.starts_with("error: the run stopped"))
        .unwrap_or_else(|| panic!("no `error: the run stopped` line:\n{log}"))
}

#[test]
fn fatal_401_mid_run_stops_and_releases_leases() {
    let dir = temp_dir();
    let stage = sample_stage(dir.path(), 2, 200_000);
    let gate = dir.path().join("gate");
    std::fs::write(&gate, b"").unwrap();
    let mock = MockProcess::start(
        dir.path(),
        TOKEN,
        &[
            "--sequence",
            "401",
            "--hold-while-exists",
            gate.to_str().unwrap(),
        ],
    );
    let mut running = Running::start(
        run_cmd(dir.path(), &stage, &mock, ""),
        &dir.path().join("run.log"),
    );
    // Every delivery slot holds a body at the gate (and more wait behind them).
    wait_for_arrivals(&mock, &running, CONCURRENCY);
    std::fs::remove_file(&gate).unwrap();
    let (status, log) = running.wait(STOP_DEADLINE, "after the endpoint answered 401");
    assert_eq!(status.code(), Some(1), "{log}");

    // The real cause, not a follower's "the sink stopped".
    let line = stop_line(&log);
    assert!(
        line.contains("the endpoint refused the API token (401"),
        "{line}\n{log}"
    );
    assert!(!line.contains("the sink stopped"), "{line}");
    assert!(!log.contains(TOKEN), "the token leaked into the log");
    assert_leases_released(dir.path(), &log);

    let report = read_report(dir.path());
    let fatal = report["fatalError"].as_str().unwrap_or_default();
    assert!(fatal.contains("refused the API token (401"), "{report}");
    // Every request the endpoint answered is counted, the refused one and those in flight.
    let seen = mock_requests(&mock.store).len() as u64;
    assert_eq!(report["requests"], seen, "{report}");
    assert!(seen >= CONCURRENCY as u64, "{report}");

    // Watermarks only from what the endpoint stored, marked as from a stopped run.
    let stored = stored_watermarks(&mock);
    assert!(!stored.is_empty(), "the endpoint stored nothing:\n{log}");
    assert_eq!(report_watermarks(&report), stored, "{report}");
    assert_eq!(report["watermarksFromStoppedRun"], true, "{report}");
    for (entity_type, mark) in report["watermarks"].as_object().unwrap() {
        let mark = mark.as_str().unwrap();
        let line = log
            .lines()
            .find(|l| l.starts_with(&format!("summary: watermark {entity_type}: {mark}")))
            .unwrap_or_else(|| panic!("no watermark line for {entity_type}:\n{log}"));
        assert!(line.contains("stopped"), "{line}");
    }

    let status = status_text(dir.path());
    assert!(
        status.contains("fatal error: the endpoint refused the API token (401"),
        "{status}"
    );
    for line in status.lines().filter(|l| l.contains("watermark ")) {
        assert!(line.contains("stopped"), "{line}\n{status}");
    }
}

#[test]
fn exhausted_retries_mid_run_stop_with_their_cause_and_count_every_request() {
    let dir = temp_dir();
    let stage = sample_stage(dir.path(), 2, 100_000);
    // The fault mix; 3 quick attempts so that some body runs out of them at once
    // (the default back-off takes minutes to run out; the hang does not depend on it).
    let mock = MockProcess::start(
        dir.path(),
        TOKEN,
        &[
            "--rate-503",
            "0.3",
            "--rate-429",
            "0.2",
            "--retry-after",
            "0",
            "--rate-drop",
            "0.1",
            "--seed",
            "14",
        ],
    );
    let retry = "[sink.retry]\nmax_attempts = 3\ninitial_backoff_ms = 1\nmax_backoff_secs = 1\n";
    let mut running = Running::start(
        run_cmd(dir.path(), &stage, &mock, retry),
        &dir.path().join("run.log"),
    );
    let (status, log) = running.wait(START_DEADLINE, "after retries ran out");
    assert_eq!(status.code(), Some(1), "{log}");
    let line = stop_line(&log);
    assert!(line.contains("gave up on"), "{line}\n{log}");
    assert!(line.contains("after 3 attempts"), "{line}");
    assert!(!line.contains("the sink stopped"), "{line}");
    assert_leases_released(dir.path(), &log);

    let report = read_report(dir.path());
    assert!(
        report["fatalError"]
            .as_str()
            .is_some_and(|e| e.contains("gave up on")),
        "{report}"
    );
    assert_eq!(
        report["requests"],
        mock_requests(&mock.store).len() as u64,
        "{report}"
    );
    let stored = stored_watermarks(&mock);
    for (entity_type, mark) in report_watermarks(&report) {
        assert!(
            stored.get(&entity_type).is_some_and(|s| *s >= mark),
            "the watermark {mark} of {entity_type} is past every stored record"
        );
    }
    assert_eq!(report["watermarksFromStoppedRun"], true, "{report}");
}

#[test]
fn wrong_token_gives_no_watermark() {
    let dir = temp_dir();
    // Three bodies: fewer than the delivery slots, so nothing else can go wrong.
    let stage = sample_stage(dir.path(), 1, 3_000);
    let mock = MockProcess::start(dir.path(), "the-endpoint-s-real-token", &[]);
    let mut running = Running::start(
        run_cmd(dir.path(), &stage, &mock, ""),
        &dir.path().join("run.log"),
    );
    let (status, log) = running.wait(STOP_DEADLINE, "after the token was refused");
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(mock_records(&mock.store).is_empty());
    assert!(
        stop_line(&log).contains("the endpoint refused the API token (401"),
        "{log}"
    );
    assert!(!log.contains("watermark"), "{log}");
    let report = read_report(dir.path());
    assert_eq!(report["watermarks"], serde_json::json!({}), "{report}");
    assert_eq!(report["recordsDelivered"], 0, "{report}");
    // Every body in flight was refused: each request counts.
    assert_eq!(
        report["requests"],
        mock_requests(&mock.store).len() as u64,
        "{report}"
    );
    let status = status_text(dir.path());
    assert!(!status.contains("watermark"), "{status}");
    assert!(
        status.contains("fatal error: the endpoint refused"),
        "{status}"
    );
}

/// Rows of the stage of [`interrupted_run`].
const INTERRUPTED_ROWS: u64 = 40_000;

/// A run stopped by `signal` while its first bodies are held at the endpoint; `open_gate`:
/// let the held requests be answered right after the signal. Returns the run's exit
/// status, its log, and the mock.
fn interrupted_run(
    dir: &Path,
    signal: libc::c_int,
    open_gate: bool,
) -> (ExitStatus, String, MockProcess) {
    let stage = sample_stage(dir, 2, INTERRUPTED_ROWS);
    let gate = dir.join("gate");
    std::fs::write(&gate, b"").unwrap();
    let mock = MockProcess::start(dir, TOKEN, &["--hold-while-exists", gate.to_str().unwrap()]);
    let mut running = Running::start(run_cmd(dir, &stage, &mock, ""), &dir.join("run.log"));
    wait_for_arrivals(&mock, &running, CONCURRENCY);
    running.signal(signal);
    if open_gate {
        // Once the run has taken the signal, the held requests may be answered.
        let started = Instant::now();
        while !running.log().contains("stopping at the next batch") {
            assert!(
                started.elapsed() < STOP_DEADLINE,
                "the run did not take the signal:\n{}",
                running.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::remove_file(&gate).unwrap();
    }
    let (status, log) = running.wait(STOP_DEADLINE, "after the signal");
    let _ = std::fs::remove_file(&gate);
    (status, log, mock)
}

#[test]
fn sigint_stops_a_run_at_the_next_batch_checkpoints_what_was_acknowledged_and_exits_130() {
    let dir = temp_dir();
    let (status, log, mock) = interrupted_run(dir.path(), libc::SIGINT, true);
    assert_eq!(status.code(), Some(130), "{log}");
    assert!(log.contains("SIGINT"), "{log}");
    assert_leases_released(dir.path(), &log);
    let report = read_report(dir.path());
    assert_eq!(report["interrupted"], "SIGINT", "{report}");
    assert!(report["fatalError"].is_null(), "{report}");
    // Not finished: far fewer records than rows, every one the endpoint stored counted.
    let stored = mock_records(&mock.store).len() as u64;
    assert!(
        stored > 0 && stored < INTERRUPTED_ROWS,
        "{stored} records stored\n{log}"
    );
    assert_eq!(report["recordsDelivered"], stored, "{report}");
    assert_eq!(
        report["requests"],
        mock_requests(&mock.store).len() as u64,
        "{report}"
    );
    // What was acknowledged is in the state: the rerun does not start over.
    let acked: u64 = file_states(dir.path())
        .iter()
        .map(|d| d["counts"]["recordsDelivered"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        acked, stored,
        "the state must hold every acknowledged record"
    );
    assert_eq!(report["watermarksFromStoppedRun"], true, "{report}");
    assert_eq!(
        report_watermarks(&report),
        stored_watermarks(&mock),
        "{report}"
    );

    // The next run delivers the rest: every row arrives.
    let stage = dir.path().join("stage");
    let out = run_cmd(dir.path(), &stage, &mock, "").run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let ids: std::collections::BTreeSet<String> = mock_records(&mock.store)
        .iter()
        .map(|r| r["record"]["externalId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len() as u64, INTERRUPTED_ROWS);
    let report = read_report(dir.path());
    assert_eq!(report["watermarksFromStoppedRun"], false, "{report}");
}

#[test]
fn sigterm_stops_a_run_whose_requests_are_held_releases_leases_and_exits_143() {
    let dir = temp_dir();
    let (status, log, mock) = interrupted_run(dir.path(), libc::SIGTERM, false);
    assert_eq!(status.code(), Some(143), "{log}");
    assert!(log.contains("SIGTERM"), "{log}");
    assert_leases_released(dir.path(), &log);
    let report = read_report(dir.path());
    assert_eq!(report["interrupted"], "SIGTERM", "{report}");
    // The held requests were sent: they count, though they never got an answer.
    assert_eq!(report["requests"], arrivals(&mock) as u64, "{report}");
    assert_eq!(report["recordsDelivered"], 0, "{report}");
    assert_eq!(report["watermarks"], serde_json::json!({}), "{report}");
}
