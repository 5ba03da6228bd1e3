//! Adaptive request concurrency against an endpoint with latency and a capacity: `run` at its
//! default settings climbs towards the capacity without a storm of 429s, loses nothing, and
//! reports what it did; `--concurrency N` pins it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::util::command::TestCommand;
use crate::util::{MockProcess, plugin, read_ndjson, temp_dir};

const TOKEN: &str = "concurrency-token-7c21";
const ENDPOINT_ID: &str = "0C0C0C0C-1111-4222-8333-444455556666";
/// Requests the mock answers at once; beyond it, 429. The figure: at a small
/// capacity the +1 / x0.9 probing itself refuses a larger share (at 8: 9 -> 8 and back
/// in two round trips, one 429 in ~17 requests), at 24 one in ~70.
const CAPACITY: usize = 24;
/// Every answer takes this long: a remote endpoint.
const LATENCY_MS: u64 = 40;
/// 1,000 bodies of 100 rows: enough round trips for the limit to find the capacity.
const ROWS: u64 = 100_000;
const BATCH_ROWS: u64 = 100;
/// A run of a few seconds; the deadline only catches a hang.
const RUN_DEADLINE: Duration = Duration::from_secs(300);

/// Rows of the runs that only check a pinned or capped limit.
const SHORT_ROWS: u64 = 20_000;

fn stage(dir: &Path, rows: u64) -> PathBuf {
    let stage = dir.join("stage");
    let out = TestCommand::new(dir)
        .args(["sample-stage", "--out"])
        .arg(&stage)
        .args([
            "--files",
            "4",
            "--rows",
            &rows.to_string(),
            "--bad-rows",
            "0",
        ])
        .run();
    assert!(out.status.success(), "{}", out.stderr);
    stage
}

fn capacity_mock(dir: &Path) -> MockProcess {
    MockProcess::start(
        dir,
        TOKEN,
        &[
            "--accept-all",
            "--slow-ms",
            &LATENCY_MS.to_string(),
            "--capacity",
            &CAPACITY.to_string(),
        ],
    )
}

/// Runs the stage against the mock with `extra` flags; returns the report.
fn run(dir: &Path, stage: &Path, mock: &MockProcess, extra: &[&str]) -> Value {
    let report = dir.join("report.json");
    let mut cmd = TestCommand::new(dir);
    cmd.arg("run")
        .arg("--source")
        .arg(stage)
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", &mock.endpoint(ENDPOINT_ID)])
        .args(["--token-env", "STAGEPUSH_CONCURRENCY_TOKEN"])
        .env("STAGEPUSH_CONCURRENCY_TOKEN", TOKEN)
        .args(["--batch-rows", &BATCH_ROWS.to_string(), "--no-progress"])
        .args(extra)
        .arg("--state")
        .arg(dir.join("state"))
        .arg("--dead-letter")
        .arg(dir.join("dead"))
        .arg("--report")
        .arg(&report);
    let out = cmd.run_within(RUN_DEADLINE);
    cmd.check_exit(&out, 0);
    serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
}

fn over_capacity_answers(mock: &MockProcess) -> usize {
    read_ndjson(&mock.store.join(stagepush::mock_cluedin::REQUESTS_FILE))
        .iter()
        .filter(|r| r["answer"] == "over-capacity")
        .count()
}

#[test]
fn adaptive_concurrency_climbs_towards_the_capacity_without_a_storm_of_429s() {
    let dir = temp_dir();
    let stage = stage(dir.path(), ROWS);
    let mock = capacity_mock(dir.path());
    let report = run(dir.path(), &stage, &mock, &[]);

    assert_eq!(report["rows"]["delivered"], ROWS, "nothing lost: {report}");
    let c = &report["concurrency"];
    assert_eq!(c["adaptive"], true, "{c}");
    let highest = c["highest"].as_u64().unwrap() as usize;
    assert!(
        highest >= CAPACITY,
        "the limit climbs from 4 to the capacity ({CAPACITY}): {c}"
    );
    assert!(
        c["increases"].as_u64().unwrap() >= (CAPACITY - 4) as u64,
        "{c}"
    );
    assert!(
        c["rttSamples"].as_u64().unwrap() >= 400,
        "every 2xx is a sample: {c}"
    );
    assert!(c["rttMeanMs"].as_f64().unwrap() >= LATENCY_MS as f64, "{c}");
    let requests = report["requests"].as_u64().unwrap();
    let refused = report["status"]["429"].as_u64().unwrap_or(0);
    assert_eq!(refused as usize, over_capacity_answers(&mock));
    assert!(
        (refused as f64) < 0.05 * requests as f64,
        "under 5 % of requests answered 429: {refused} of {requests}"
    );
}

#[test]
fn a_pinned_concurrency_stays_where_it_is_put() {
    let dir = temp_dir();
    let stage = stage(dir.path(), SHORT_ROWS);
    let mock = capacity_mock(dir.path());
    let report = run(dir.path(), &stage, &mock, &["--concurrency", "3"]);

    assert_eq!(report["rows"]["delivered"], SHORT_ROWS, "{report}");
    let c = &report["concurrency"];
    assert_eq!(
        (&c["adaptive"], &c["limit"], &c["highest"], &c["increases"]),
        (
            &Value::from(false),
            &Value::from(3),
            &Value::from(3),
            &Value::from(0)
        ),
        "{c}"
    );
    assert_eq!(over_capacity_answers(&mock), 0, "3 is under the capacity");
}

#[test]
fn max_concurrency_caps_the_adaptive_limit_and_conflicts_with_a_pinned_one() {
    let dir = temp_dir();
    let stage = stage(dir.path(), SHORT_ROWS);
    let mock = capacity_mock(dir.path());
    let report = run(dir.path(), &stage, &mock, &["--max-concurrency", "5"]);
    let c = &report["concurrency"];
    assert_eq!(
        (&c["max"], &c["highest"]),
        (&Value::from(5), &Value::from(5)),
        "{c}"
    );
    assert_eq!(over_capacity_answers(&mock), 0, "5 is under the capacity");

    let mut cmd = TestCommand::new(dir.path());
    cmd.args(["run", "--concurrency", "3", "--max-concurrency", "5"]);
    let out = cmd.assert_exit(2);
    assert!(out.stderr.contains("--max-concurrency"), "{}", out.stderr);
}
