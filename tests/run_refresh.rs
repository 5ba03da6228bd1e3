//! `run --full-refresh`: files already delivered are sent again (and the run says so at its
//! start), a normal rerun afterwards skips them, an interrupted full refresh is finished by
//! the next run, and a rerun's summary says how to resend, and which files another plugin
//! delivered.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use serde_json::Value;

use crate::util::command::TestCommand;
use crate::util::{MockProcess, customer_file, plugin, temp_dir};

const TOKEN: &str = "refresh-token-3b7e";

/// `files` customer files of 1,000 rows (ids 1..=1000 each, so the mock counts per id
/// `files` times per delivery of the stage).
fn stage(dir: &Path, files: u64) -> std::path::PathBuf {
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    for n in 0..files {
        customer_file(&stage, &format!("data_0_{n}_0.snappy.parquet"), 1_000);
    }
    stage
}

fn run_cmd(dir: &Path, stage: &Path, mock: &MockProcess, plugin_name: &str) -> TestCommand {
    let mut cmd = TestCommand::new(dir);
    cmd.arg("run")
        .arg("--source")
        .arg(stage)
        .arg("--plugin")
        .arg(plugin(plugin_name))
        .args(["--endpoint", &mock.endpoint("e")])
        .args(["--token-env", "REFRESH_TEST_TOKEN"])
        .env("REFRESH_TEST_TOKEN", TOKEN)
        .args(["--workers", "1", "--segment-rows", "500", "--no-progress"])
        .arg("--dead-letter")
        .arg(dir.join("dead"))
        .arg("--report")
        .arg(dir.join("report.json"));
    cmd
}

fn report(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

/// Times the mock stored each id 1..=1000, summed over the stage's files.
fn counts(mock: &MockProcess) -> Vec<u64> {
    let got = mock.received();
    (1..=1_000)
        .map(|id| got.get(&id.to_string()).copied().unwrap_or(0))
        .collect()
}

#[test]
fn a_full_refresh_sends_delivered_files_again_and_a_rerun_then_skips_them() {
    let dir = temp_dir();
    let stage = stage(dir.path(), 2);
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    run_cmd(dir.path(), &stage, &mock, "customer-rust").assert_exit(0);
    assert!(counts(&mock).iter().all(|n| *n == 2));

    // A rerun skips both files and says how to send them again.
    let rerun = run_cmd(dir.path(), &stage, &mock, "customer-rust").assert_exit(0);
    assert_eq!(report(dir.path())["recordsDelivered"], 0);
    assert!(
        rerun.stderr.contains(
            "summary: 2 files already delivered were not read again; `run --full-refresh` sends them again"
        ),
        "{}",
        rerun.stderr
    );
    // The log line of each skipped file says it too.
    let verbose = run_cmd(dir.path(), &stage, &mock, "customer-rust")
        .arg("-v")
        .assert_exit(0);
    assert!(
        verbose
            .stderr
            .contains("already delivered: skipped (`run --full-refresh` sends it again)"),
        "{}",
        verbose.stderr
    );

    // A full refresh is of the whole stage: a selection is refused, nothing sent.
    let partial = run_cmd(dir.path(), &stage, &mock, "customer-rust")
        .args(["--full-refresh", "--include", "data_0_0_*"])
        .assert_exit(2);
    assert!(
        partial.stderr.contains("cannot be limited by"),
        "{}",
        partial.stderr
    );
    assert!(counts(&mock).iter().all(|n| *n == 2));

    let refresh = run_cmd(dir.path(), &stage, &mock, "customer-rust")
        .arg("--full-refresh")
        .assert_exit(0);
    assert!(
        refresh
            .stderr
            .contains("full refresh: 2 files already delivered will be sent again"),
        "{}",
        refresh.stderr
    );
    let r = report(dir.path());
    assert_eq!(r["recordsDelivered"], 2_000);
    assert_eq!(r["filesSkipped"], 0);
    assert!(counts(&mock).iter().all(|n| *n == 4));

    // After the refresh, a normal run skips everything again.
    run_cmd(dir.path(), &stage, &mock, "customer-rust").assert_exit(0);
    let r = report(dir.path());
    assert_eq!(r["recordsDelivered"], 0);
    assert_eq!(r["filesSkipped"], 2);
    assert!(counts(&mock).iter().all(|n| *n == 4));
}

#[test]
fn an_interrupted_full_refresh_is_finished_by_the_next_normal_run() {
    let dir = temp_dir();
    // 3 files of 10 segments: the one worker is still on the first file (at most
    // DISPATCH_WINDOW segments of it in flight) when the kill lands, the last is untouched.
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    for n in 0..3 {
        customer_file(&stage, &format!("data_0_{n}_0.snappy.parquet"), 5_000);
    }
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    run_cmd(dir.path(), &stage, &mock, "customer-rust").assert_exit(0);
    let per_id = |mock: &MockProcess| {
        let got = mock.received();
        (1..=5_000)
            .map(|id| got.get(&id.to_string()).copied().unwrap_or(0))
            .collect::<Vec<u64>>()
    };
    assert!(per_id(&mock).iter().all(|n| *n == 3));

    // Killed after the 2nd body of the refresh was acknowledged.
    let killed = run_cmd(dir.path(), &stage, &mock, "customer-rust")
        .arg("--full-refresh")
        .env("STAGEPUSH_FAILPOINT", "after-post:2")
        .run();
    assert_eq!(killed.status.signal(), Some(9), "{}", killed.stderr);
    assert!(
        killed
            .stderr
            .contains("full refresh: 3 files already delivered will be sent again"),
        "{}",
        killed.stderr
    );
    assert!(mock.records().len() >= 15_000 + 1_000);

    // A normal rerun finishes the refresh: it says so and sends again every file the
    // refresh had not delivered.
    let rerun = run_cmd(dir.path(), &stage, &mock, "customer-rust").assert_exit(0);
    assert!(
        rerun
            .stderr
            .contains("full refresh: an earlier full refresh did not finish"),
        "{}",
        rerun.stderr
    );
    let c = per_id(&mock);
    assert!(
        c.iter().all(|n| *n >= 6),
        "some rows were not sent again: {:?}",
        &c[..10]
    );
    // Then nothing is left.
    run_cmd(dir.path(), &stage, &mock, "customer-rust").assert_exit(0);
    let r = report(dir.path());
    assert_eq!(r["recordsDelivered"], 0);
    assert_eq!(r["filesSkipped"], 3);
}

#[test]
fn files_delivered_by_another_plugin_are_skipped_and_named_in_the_summary() {
    let dir = temp_dir();
    let stage = stage(dir.path(), 2);
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    run_cmd(dir.path(), &stage, &mock, "customer-rust").assert_exit(0);
    let first = report(dir.path())["plugin"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();

    let other = run_cmd(dir.path(), &stage, &mock, "customer-v0-1-0").assert_exit(0);
    let r = report(dir.path());
    assert_eq!(r["recordsDelivered"], 0, "not resent automatically");
    assert_eq!(r["filesSkippedOtherPlugin"][&first], 2);
    let second = r["plugin"]["sha256"].as_str().unwrap();
    assert_ne!(first, second);
    let expected = format!(
        "summary: warning: 2 files were delivered by another plugin (sha256 {}… → {}…): skipped; `run --full-refresh` sends them again",
        &first[..12],
        &second[..12]
    );
    assert!(other.stderr.contains(&expected), "{}", other.stderr);
}
