//! Endpoint answers that are not CluedIn's (issue 14, items 2 and 11), with the real binary
//! and `stagepush mock-cluedin` processes: redirects (a proxy's sign-in page, a moved host),
//! 2xx answers whose body is not CluedIn's JSON, and a 200 with `success:false`.
//!
//! The rules under test: a 3xx is a fatal endpoint error and is never followed (nothing is
//! counted delivered, the state does not mark the files done, a rerun delivers everything,
//! and a 307/308 never re-POSTs records to the other host); a 2xx that is not CluedIn's JSON is
//! counted delivered but warned about once per endpoint and counted in the report.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use stagepush::sample::{CustomerFileOptions, write_customer_file};

use crate::util::command::TestCommand;
use crate::util::read_report as report;
use crate::util::{
    MockProcess, Output, mock_records, mock_requests, plugin, read_ndjson, temp_dir,
};

const TOKEN: &str = "redirect-token-4c2e";
const ENDPOINT_ID: &str = "9A8B7C6D-5E4F-4A3B-8C2D-1E0F9A8B7C6D";
/// Rows per stage file; the stage has [`FILES`] of them, ids `1..=FILES*ROWS`.
const ROWS: u64 = 1_500;
const FILES: u64 = 2;
/// Rows per request body.
const BODY_ROWS: u64 = 1_000;
/// A value in the redirect's query that must never be printed.
const QUERY_SECRET: &str = "SAML-secret-81f3";
/// How long one `stagepush` command may take before the test fails (it is killed).
const DEADLINE: Duration = Duration::from_secs(120);

/// A stage of [`FILES`] customer files of [`ROWS`] rows.
fn stage(dir: &Path) -> PathBuf {
    stage_of(dir, FILES, ROWS)
}

/// A stage of `files` customer files of `rows` rows without bad rows: every row becomes one
/// record.
fn stage_of(dir: &Path, files: u64, rows: u64) -> PathBuf {
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    let options = CustomerFileOptions {
        tombstone_fraction: 0.0,
        null_id_fraction: 0.0,
        ..Default::default()
    };
    for n in 0..files {
        let path = stage.join(format!("data_0_{n}_0.snappy.parquet"));
        write_customer_file(&path, 1 + n * rows, rows, &options).unwrap();
    }
    stage
}

/// Every id of [`stage`].
fn all_ids() -> BTreeSet<String> {
    (1..=FILES * ROWS).map(|i| i.to_string()).collect()
}

/// `stagepush run` of `stage` into `endpoint`, 1,000-row bodies, one in flight, state and
/// report under `dir`.
fn run_cmd(dir: &Path, stage: &Path, endpoint: &str) -> TestCommand {
    command(dir, "run", stage, endpoint)
}

/// `stagepush <sub>` (`run` or `retry`) of `stage` into `endpoint`, 1,000-row bodies, one in
/// flight, state, dead letters and the report (`report.json`) under `dir`.
fn command(dir: &Path, sub: &str, stage: &Path, endpoint: &str) -> TestCommand {
    let config = dir.join("stagepush.toml");
    std::fs::write(
        &config,
        format!(
            "[sink]\nendpoint = \"{endpoint}\"\n[sink.retry]\ninitial_backoff_ms = 10\nmax_backoff_secs = 1\n"
        ),
    )
    .unwrap();
    let mut cmd = TestCommand::new(dir);
    cmd.arg(sub)
        .arg("--config")
        .arg(&config)
        .arg("--source")
        .arg(stage)
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--token-env", "STAGEPUSH_REDIRECT_TOKEN"])
        .env("STAGEPUSH_REDIRECT_TOKEN", TOKEN)
        .args(["--concurrency", "1"]);
    if sub == "run" {
        cmd.args(["--batch-rows", &BODY_ROWS.to_string(), "--no-progress"]);
    }
    cmd.arg("--dead-letter")
        .arg(dir.join("dead"))
        .arg("--report")
        .arg(dir.join("report.json"));
    cmd
}

/// The external ids the mock stored, each once, and how many records it stored.
fn received(mock: &MockProcess) -> (BTreeSet<String>, usize) {
    let records = mock_records(&mock.store);
    let ids = records
        .iter()
        .map(|l| l["record"]["externalId"].as_str().unwrap().to_string())
        .collect();
    (ids, records.len())
}

/// Asserts that the run stopped on a redirect: exit 1, the explained error naming the
/// (redacted) target, no secret printed, nothing counted delivered, no file done.
fn assert_stopped_on_redirect(dir: &Path, out: &Output, status: u16, target: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let expected = format!("the endpoint answered {status} redirecting to {target}");
    assert!(out.stderr.contains(&expected), "{expected}\n{}", out.stderr);
    assert!(
        out.stderr
            .contains("check the URL; stagepush does not follow redirects"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(QUERY_SECRET), "{}", out.stderr);
    assert!(!out.stderr.contains(TOKEN), "{}", out.stderr);
    let report = report(dir);
    assert_eq!(report["recordsDelivered"], 0, "{report}");
    assert_eq!(report["rows"]["delivered"], 0, "{report}");
    // The run stopped, and its report names the redirect as the cause.
    let fatal = report["fatalError"].as_str().unwrap_or_default();
    assert!(fatal.contains(&expected), "{report}");
    assert!(!fatal.contains("the sink stopped"), "{report}");
    let files = report["files"].as_array().unwrap();
    assert!(
        files.iter().all(|f| f["outcome"] != "done"),
        "no file is done after a redirect: {report}"
    );
}

/// Asserts that a rerun against `mock` (now answering normally) delivers every record
/// exactly once: nothing was marked done by the stopped run.
fn assert_rerun_delivers_everything(dir: &Path, stage: &Path, mock: &MockProcess) {
    let out = run_cmd(dir, stage, &mock.endpoint(ENDPOINT_ID)).run_within(DEADLINE);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let (ids, count) = received(mock);
    assert_eq!(ids, all_ids());
    assert_eq!(count, ids.len(), "each record once");
    assert_eq!(report(dir)["recordsDelivered"], (FILES * ROWS));
}

#[test]
fn a_301_302_or_303_to_a_sign_in_page_stops_the_run_and_delivers_nothing() {
    for status in [301, 302, 303] {
        let dir = temp_dir();
        let stage = stage(dir.path());
        let location = format!("/login?next=%2Fupload&SAMLRequest={QUERY_SECRET}");
        let mock = MockProcess::start(
            dir.path(),
            TOKEN,
            &["--sequence", &format!("redirect{status}:{location}")],
        );
        let out = run_cmd(dir.path(), &stage, &mock.endpoint(ENDPOINT_ID)).run_within(DEADLINE);
        let target = format!(
            "{}/login?next=[redacted]&SAMLRequest=[redacted]",
            mock.base_url
        );
        assert_stopped_on_redirect(dir.path(), &out, status, &target);
        // The redirect was not followed: the sign-in page was never asked for, and the one
        // request made is the redirected POST.
        let requests = mock_requests(&mock.store);
        let answers: Vec<(&str, &str)> = requests
            .iter()
            .map(|r| (r["method"].as_str().unwrap(), r["answer"].as_str().unwrap()))
            .collect();
        assert_eq!(answers, [("POST", "redirect")], "status {status}");
        assert_eq!(received(&mock).1, 0);

        assert_rerun_delivers_everything(dir.path(), &stage, &mock);
    }
}

#[test]
fn a_307_or_308_redirect_never_reposts_records_to_the_other_host() {
    for status in [307, 308] {
        let dir = temp_dir();
        let stage = stage(dir.path());
        let other = MockProcess::start(&dir.path().join("other-host"), TOKEN, &[]);
        let location = other.endpoint(ENDPOINT_ID);
        let mock = MockProcess::start(
            dir.path(),
            TOKEN,
            &["--sequence", &format!("redirect{status}:{location}")],
        );
        let out = run_cmd(dir.path(), &stage, &mock.endpoint(ENDPOINT_ID)).run_within(DEADLINE);
        assert_stopped_on_redirect(dir.path(), &out, status, &location);
        assert!(
            mock_requests(&other.store).is_empty(),
            "the other host received requests: {:?}",
            mock_requests(&other.store)
        );
        assert_eq!(mock_requests(&mock.store).len(), 1);
        assert_eq!(received(&mock).1, 0);

        assert_rerun_delivers_everything(dir.path(), &stage, &mock);
        assert!(mock_requests(&other.store).is_empty());
    }
}

#[test]
fn a_2xx_that_is_not_cluedin_json_is_warned_about_once_and_counted_in_the_report() {
    let dir = temp_dir();
    // One file of three full bodies: the first two are answered by "a proxy" (an HTML page,
    // then an empty body), the third by the endpoint.
    let stage = stage_of(dir.path(), 1, 3 * BODY_ROWS);
    let mock = MockProcess::start(dir.path(), TOKEN, &["--sequence", "html200,empty200"]);
    let endpoint = mock.endpoint(ENDPOINT_ID);
    let out = run_cmd(dir.path(), &stage, &endpoint).run_within(DEADLINE);
    // The rule: a 2xx from the URL posted to is the server's acknowledgement, so the run
    // succeeds, but not silently.
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("not CluedIn's JSON"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning per run:\n{}", out.stderr);
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    assert!(warnings[0].contains(&endpoint), "{}", warnings[0]);
    let report = report(dir.path());
    assert_eq!(report["responsesNotCluedinJson"], 2, "{report}");
    assert_eq!(report["recordsDelivered"], 3 * BODY_ROWS, "{report}");
    let requests = mock_requests(&mock.store);
    let answers: Vec<&str> = requests
        .iter()
        .map(|r| r["answer"].as_str().unwrap())
        .collect();
    assert_eq!(answers, ["html200", "empty200", "normal"]);
    let (ids, count) = received(&mock);
    assert_eq!(count as u64, BODY_ROWS);
    assert_eq!(ids.len(), count);
}

#[test]
fn a_200_with_success_false_and_no_message_says_so_in_the_dead_letter() {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    crate::util::customer_file(&stage, "data_0_0_0.snappy.parquet", 1);
    let mock = MockProcess::start(dir.path(), TOKEN, &["--sequence", "false200"]);
    let out = run_cmd(dir.path(), &stage, &mock.endpoint(ENDPOINT_ID)).run_within(DEADLINE);
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    let letters = read_ndjson(&dir.path().join("dead/dead-letters.ndjson"));
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["stage"], "endpoint");
    assert_eq!(letters[0]["status"], 200);
    assert_eq!(
        letters[0]["message"],
        "the endpoint answered 200 with success:false and no message"
    );
    assert!(received(&mock).0.is_empty());
}

#[test]
fn retry_does_not_follow_a_redirect_and_keeps_the_dead_letter() {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    crate::util::customer_file(&stage, "data_0_0_0.snappy.parquet", 20);
    // Run 1: the endpoint refuses customer 7; the state keeps its dead letter.
    let rejecting = MockProcess::start(
        &dir.path().join("rejecting"),
        TOKEN,
        &["--reject-external-id", "7"],
    );
    let out = run_cmd(dir.path(), &stage, &rejecting.endpoint(ENDPOINT_ID)).run_within(DEADLINE);
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    drop(rejecting);

    // The retry meets a redirect to a sign-in page: it stops, and the letter stays.
    let redirecting = MockProcess::start(
        &dir.path().join("redirecting"),
        TOKEN,
        &["--sequence", "redirect302:/login"],
    );
    let out = command(
        dir.path(),
        "retry",
        &stage,
        &redirecting.endpoint(ENDPOINT_ID),
    )
    .run_within(DEADLINE);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let expected = format!(
        "the endpoint answered 302 redirecting to {}/login",
        redirecting.base_url
    );
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
    let answers: Vec<String> = mock_requests(&redirecting.store)
        .iter()
        .map(|r| r["answer"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(answers, ["redirect"]);
    let retry_report = report(dir.path());
    assert_eq!(retry_report["recordsDelivered"], 0, "{retry_report}");
    assert_eq!(retry_report["remaining"], 1, "{retry_report}");
    drop(redirecting);

    // A retry against a working endpoint delivers the row.
    let working = MockProcess::start(&dir.path().join("working"), TOKEN, &[]);
    let out =
        command(dir.path(), "retry", &stage, &working.endpoint(ENDPOINT_ID)).run_within(DEADLINE);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let (ids, _) = received(&working);
    assert_eq!(ids, BTreeSet::from(["7".to_string()]));
}
