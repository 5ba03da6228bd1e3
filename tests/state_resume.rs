//! Delivery state on a local folder: crash-resume (SIGKILL at chosen points), reruns,
//! replaced and new files, `--only-changed`, and a torn state document.
//!
//! Crashes use `STAGEPUSH_FAILPOINT=NAME[:N]` (host/src/failpoint.rs): the process sends
//! itself SIGKILL the N-th time it reaches the point, so the kill lands at a known place
//! without sleeps or timing races.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use stagepush::sample::{CustomerFileOptions, write_customer_file};

use crate::util::command::TestCommand;
use crate::util::{MockProcess, files_under, mock_records, plugin, read_report_at, temp_dir};

const TOKEN: &str = "state-token-51c2";

/// Writes `data_0_{n}_0.snappy.parquet` with ids `first..first+rows` (seed, tombstones as
/// given).
fn write_file(stage: &Path, n: u64, first: u64, rows: u64, options: &CustomerFileOptions) {
    std::fs::create_dir_all(stage).unwrap();
    let path = stage.join(format!("data_0_{n}_0.snappy.parquet"));
    write_customer_file(&path, first, rows, options).unwrap();
}

fn clean() -> CustomerFileOptions {
    CustomerFileOptions {
        tombstone_fraction: 0.0,
        null_id_fraction: 0.0,
        ..Default::default()
    }
}

/// A `run` of `stage` into endpoint `endpoint_id` of `mock`, state in `dir/state`.
fn run_cmd(
    dir: &Path,
    stage: &Path,
    mock: &MockProcess,
    endpoint_id: &str,
    report: &str,
) -> TestCommand {
    let mut cmd = TestCommand::new(dir);
    cmd.arg("run")
        .arg("--source")
        .arg(stage)
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", &mock.endpoint(endpoint_id)])
        .args(["--token-env", "STATE_TEST_TOKEN"])
        .env("STATE_TEST_TOKEN", TOKEN)
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

/// Records the mock stored for `endpoint_id`, counted by (type, externalId, deleted).
fn received(mock: &MockProcess, endpoint_id: &str) -> BTreeMap<(String, String, bool), u64> {
    let mut out = BTreeMap::new();
    for r in mock_records(&mock.store) {
        if r["endpointId"] != endpoint_id {
            continue;
        }
        let rec = &r["record"];
        let key = (
            rec["type"].as_str().unwrap().to_string(),
            rec["externalId"].as_str().unwrap().to_string(),
            rec["deleted"].as_bool().unwrap_or(false),
        );
        *out.entry(key).or_default() += 1;
    }
    out
}

fn ids(range: std::ops::RangeInclusive<u64>) -> BTreeSet<(String, String, bool)> {
    range
        .map(|id| ("Customer".to_string(), id.to_string(), false))
        .collect()
}

fn stage_with(dir: &Path, files: u64, rows: u64) -> PathBuf {
    let stage = dir.join("stage");
    for n in 0..files {
        write_file(&stage, n, 1 + n * rows, rows, &clean());
    }
    stage
}

#[test]
fn a_run_killed_at_any_point_is_finished_by_the_rerun_without_loss() {
    let dir = temp_dir();
    let stage = stage_with(dir.path(), 3, 4_000);
    let expected = ids(1..=12_000);
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let mut resumed_files = 0;
    // During listing; between a POST's answer and its state write (early and late); right
    // after a state write, mid-file.
    for (i, point) in [
        "listing",
        "after-post:3",
        "after-post:17",
        "after-checkpoint:6",
    ]
    .iter()
    .enumerate()
    {
        let case = dir.path().join(format!("case-{i}"));
        std::fs::create_dir_all(&case).unwrap();
        let endpoint = format!("crash-{i}");
        let killed = run_cmd(&case, &stage, &mock, &endpoint, "killed.json")
            .args(["--segment-rows", "500"])
            .env("STAGEPUSH_FAILPOINT", point)
            .run();
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "{point}: {}",
            killed.stderr
        );
        assert!(
            killed.stderr.contains("failpoint") && !case.join("killed.json").exists(),
            "{point}: {}",
            killed.stderr
        );
        // Rows of the segments the killed run had recorded as acknowledged.
        let acked_before: u64 = if case.join("state/files").exists() {
            // (a write the kill interrupted leaves a `….tmp-*` file beside them)
            files_under(&case.join("state/files"), Some("json"))
                .iter()
                .map(|p| {
                    let doc: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
                    doc["counts"]["rows"].as_u64().unwrap()
                })
                .sum()
        } else {
            0
        };

        let rerun = run_cmd(&case, &stage, &mock, &endpoint, "rerun.json")
            .args(["--segment-rows", "500"])
            .run();
        assert_eq!(rerun.status.code(), Some(0), "{point}: {}", rerun.stderr);
        let got = received(&mock, &endpoint);
        // Every record arrived, nothing else did.
        let keys: BTreeSet<_> = got.keys().cloned().collect();
        let missing: Vec<_> = expected.difference(&keys).take(5).collect();
        let unexpected: Vec<_> = keys.difference(&expected).take(5).collect();
        assert!(
            missing.is_empty() && unexpected.is_empty(),
            "{point}: missing {missing:?}, unexpected {unexpected:?}"
        );
        // Duplicates only from segments in flight at the crash, and the rerun counts them.
        let duplicates: u64 = got.values().map(|n| n - 1).sum();
        let r = report(&case, "rerun.json");
        let possible = r["possibleDuplicates"]["records"].as_u64().unwrap();
        assert!(
            duplicates <= possible,
            "{point}: {duplicates} duplicates, report says at most {possible}"
        );
        // Bounded: at most DISPATCH_WINDOW unacknowledged segments per file were in flight.
        let window = stagepush::state::checkpoint::DISPATCH_WINDOW;
        assert!(
            r["possibleDuplicates"]["segments"].as_u64().unwrap() <= window * 3,
            "{point}: {}",
            r["possibleDuplicates"]
        );
        // The rerun sent only what the killed run had not had acknowledged (its records
        // are those stored under the rerun's receipts).
        let receipts: BTreeSet<&str> = r["receipts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["receiptId"].as_str().unwrap())
            .collect();
        let sent_by_rerun = mock_records(&mock.store)
            .iter()
            .filter(|x| receipts.contains(x["receiptId"].as_str().unwrap_or("")))
            .count() as u64;
        assert_eq!(
            sent_by_rerun,
            r["recordsDelivered"].as_u64().unwrap(),
            "{point}"
        );
        // It resumed after the segments the state had recorded as acknowledged.
        assert_eq!(
            r["rows"]["read"].as_u64().unwrap(),
            12_000 - acked_before,
            "{point}: {acked_before} rows acknowledged before the rerun"
        );
        resumed_files += r["filesResumed"].as_u64().unwrap();
        // A third run has nothing left to do.
        let third = run_cmd(&case, &stage, &mock, &endpoint, "third.json").run();
        assert_eq!(third.status.code(), Some(0), "{}", third.stderr);
        let r = report(&case, "third.json");
        assert_eq!(r["recordsDelivered"], 0, "{point}");
        assert_eq!(r["filesSkipped"], 3, "{point}");
    }
    assert!(resumed_files > 0, "no case resumed a partly delivered file");
}

#[test]
fn a_rerun_skips_done_files_resends_replaced_ones_and_picks_up_new_ones() {
    let dir = temp_dir();
    let stage = stage_with(dir.path(), 2, 300);
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let first = run_cmd(dir.path(), &stage, &mock, "e", "r1.json").run();
    assert_eq!(first.status.code(), Some(0), "{}", first.stderr);
    assert_eq!(received(&mock, "e").len(), 600);

    // Nothing new: nothing sent, both files reported as skipped.
    let second = run_cmd(dir.path(), &stage, &mock, "e", "r2.json").run();
    assert_eq!(second.status.code(), Some(0), "{}", second.stderr);
    let r = report(dir.path(), "r2.json");
    assert_eq!(r["recordsDelivered"], 0);
    assert_eq!(r["requests"], 0);
    assert_eq!(r["filesSkipped"], 2);
    let outcomes: Vec<&str> = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["skipped", "skipped"]);
    assert!(
        second.stderr.contains("2 skipped (already delivered)"),
        "{}",
        second.stderr
    );

    // File 1 replaced (same key, new content: ids 1001..1100), file 2 added.
    write_file(&stage, 1, 1_001, 100, &clean());
    write_file(&stage, 2, 2_001, 50, &clean());
    let third = run_cmd(dir.path(), &stage, &mock, "e", "r3.json").run();
    assert_eq!(third.status.code(), Some(0), "{}", third.stderr);
    let r = report(dir.path(), "r3.json");
    assert_eq!(r["recordsDelivered"], 150);
    assert_eq!(r["filesSkipped"], 1);
    let got = received(&mock, "e");
    for id in (1_001..=1_100).chain(2_001..=2_050) {
        assert_eq!(
            got[&("Customer".into(), id.to_string(), false)],
            1,
            "id {id}"
        );
    }
    // The untouched file was not sent again.
    assert!(got.iter().all(|(_, n)| *n == 1));
}

#[test]
fn only_changed_sends_new_and_changed_records_and_always_tombstones() {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let only_changed = |report: &str| {
        let mut cmd = run_cmd(dir.path(), &stage, &mock, "oc", report);
        cmd.arg("--only-changed");
        cmd
    };
    // Day 1: ids 1..=200.
    write_file(&stage, 0, 1, 200, &clean());
    let out = only_changed("d1.json").run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert_eq!(report(dir.path(), "d1.json")["recordsDelivered"], 200);

    // Day 2: the same table unloaded again (a new file version, same content): nothing
    // is sent, every record counted as unchanged.
    std::fs::remove_dir_all(&stage).unwrap();
    write_file(&stage, 0, 1, 200, &clean());
    let out = only_changed("d2.json").run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let r = report(dir.path(), "d2.json");
    assert_eq!(r["filesSkipped"], 0, "the new file version is read");
    assert_eq!(r["recordsDelivered"], 0);
    assert_eq!(r["requests"], 0);
    assert_eq!(r["recordsUnchanged"], 200);
    assert_eq!(r["rows"]["unchanged"], 200);
    assert!(out.stderr.contains("200 unchanged"), "{}", out.stderr);

    // Day 3: id 150 changed (another generator seed gives it other values).
    std::fs::remove_dir_all(&stage).unwrap();
    write_file(&stage, 0, 1, 149, &clean());
    write_file(
        &stage,
        1,
        150,
        1,
        &CustomerFileOptions { seed: 7, ..clean() },
    );
    write_file(&stage, 2, 151, 50, &clean());
    let out = only_changed("d3.json").run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let r = report(dir.path(), "d3.json");
    assert_eq!(r["recordsDelivered"], 1);
    assert_eq!(r["recordsUnchanged"], 199);
    let got = received(&mock, "oc");
    assert_eq!(got[&("Customer".into(), "150".into(), false)], 2);
    assert_eq!(got.values().sum::<u64>(), 201);

    // Day 4 and 5: id 10 deleted, twice: a tombstone is always sent.
    let tombstone = CustomerFileOptions {
        tombstone_fraction: 1.0,
        ..clean()
    };
    for day in ["d4.json", "d5.json"] {
        std::fs::remove_dir_all(&stage).unwrap();
        write_file(&stage, 0, 10, 1, &tombstone);
        let out = only_changed(day).run();
        assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
        assert_eq!(report(dir.path(), day)["recordsDelivered"], 1, "{day}");
    }
    assert_eq!(
        received(&mock, "oc")[&("Customer".into(), "10".into(), true)],
        2
    );
    // The tombstone removed id 10's fingerprint: its old content is sent again.
    std::fs::remove_dir_all(&stage).unwrap();
    write_file(&stage, 0, 1, 20, &clean());
    let out = only_changed("d6.json").run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let r = report(dir.path(), "d6.json");
    assert_eq!(r["recordsDelivered"], 1);
    assert_eq!(r["recordsUnchanged"], 19);
    assert_eq!(
        received(&mock, "oc")[&("Customer".into(), "10".into(), false)],
        2
    );
}

#[test]
fn a_torn_state_document_stops_the_run_with_its_path() {
    let dir = temp_dir();
    let stage = stage_with(dir.path(), 1, 100);
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let out = run_cmd(dir.path(), &stage, &mock, "t", "r1.json").run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    // Truncate the file's state document as a torn write would.
    let files = dir.path().join("state/files");
    let doc = files_under(&files, Some("json"))
        .into_iter()
        .next()
        .expect("a file state document");
    let bytes = std::fs::read(&doc).unwrap();
    std::fs::write(&doc, &bytes[..bytes.len() / 2]).unwrap();

    let out = run_cmd(dir.path(), &stage, &mock, "t", "r2.json").run();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let relative = doc.strip_prefix(dir.path().join("state")).unwrap();
    assert!(
        out.stderr.contains("damaged") && out.stderr.contains(&*relative.to_string_lossy()),
        "{}",
        out.stderr
    );
    // Not treated as empty: nothing was sent again.
    assert_eq!(received(&mock, "t").values().sum::<u64>(), 100);
}

/// (file, row) of every dead letter in the state's chunks under `dir/state`.
fn state_dead_rows(dir: &Path) -> BTreeSet<(String, u64)> {
    files_under(&dir.join("state/dead-letters"), Some("ndjson"))
        .iter()
        .flat_map(|chunk| crate::util::read_ndjson(chunk))
        .map(|l| {
            (
                l["file"].as_str().unwrap().to_string(),
                l["row"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// (file, row) of every line of `dir/dead/dead-letters.ndjson`; every line must be whole.
fn local_dead_rows(dir: &Path) -> BTreeSet<(String, u64)> {
    let path = dir
        .join("dead")
        .join(stagepush::deadletter::DEAD_LETTER_FILE);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let l: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a cut line in {}: {e}: {line}", path.display()));
            (
                l["file"].as_str().unwrap().to_string(),
                l["row"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// A child process killed (and reaped) when dropped, so a failing test leaves none behind.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A stage of `files` customer files of `rows` rows in which 5 % of the CUSTOMER_IDs are
/// null, and the rows customer-rust rejects for it, as (file, row).
fn stage_with_rejections(dir: &Path, files: u64, rows: u64) -> (PathBuf, BTreeSet<(String, u64)>) {
    let stage = dir.join("stage");
    let options = CustomerFileOptions {
        null_id_fraction: 0.05,
        ..clean()
    };
    let mut rejected = BTreeSet::new();
    for n in 0..files {
        write_file(&stage, n, 1 + n * rows, rows, &options);
        let file = stage.join(format!("data_0_{n}_0.snappy.parquet"));
        for row in 0..rows {
            if stagepush::sample::customer(1 + n * rows + row, &options)
                .id
                .is_none()
            {
                rejected.insert((file.to_str().unwrap().to_string(), row));
            }
        }
    }
    (stage, rejected)
}

/// Asserts that `case/dead/dead-letters.ndjson` holds every dead letter of the state;
/// returns how many the state holds.
fn assert_file_holds_the_state_letters(case: &Path, when: &str) -> usize {
    let state = state_dead_rows(case);
    let local = local_dead_rows(case);
    let missing: Vec<_> = state.difference(&local).take(5).collect();
    assert!(
        missing.is_empty(),
        "{when}: {} of the state's {} dead letters are not in the file, e.g. {missing:?}",
        state.difference(&local).count(),
        state.len()
    );
    state.len()
}

#[test]
fn the_dead_letter_file_holds_every_dead_letter_the_state_holds_after_kill_or_sigterm() {
    // Answers are held, so nothing is acknowledged; every body fits in flight and in the
    // queue, so the workers transform every row. Once the state holds every rejected row,
    // the run gets SIGKILL or SIGTERM.
    let dir = temp_dir();
    let (stage, rejected) = stage_with_rejections(dir.path(), 3, 1_500);
    let gate = dir.path().join("gate");
    let mock = MockProcess::start(
        dir.path(),
        TOKEN,
        &["--hold-while-exists", gate.to_str().unwrap()],
    );
    for (name, signal) in [("SIGKILL", libc::SIGKILL), ("SIGTERM", libc::SIGTERM)] {
        let case = dir.path().join(name);
        std::fs::create_dir_all(&case).unwrap();
        std::fs::write(&gate, b"").unwrap();
        let endpoint = format!("dl-{name}");
        let mut child = Child(
            run_cmd(&case, &stage, &mock, &endpoint, "stopped.json")
                .into_command()
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start stagepush run"),
        );
        crate::util::wait_until(
            std::time::Duration::from_secs(60),
            "every rejected row in the state's dead letters",
            || state_dead_rows(&case) == rejected,
        );
        // SAFETY: kill with a valid pid and signal has no preconditions.
        unsafe {
            libc::kill(child.0.id() as i32, signal);
        }
        std::fs::remove_file(&gate).unwrap();
        crate::util::wait_until(
            std::time::Duration::from_secs(60),
            "the run to end after the signal",
            || child.0.try_wait().unwrap().is_some(),
        );
        assert_file_holds_the_state_letters(&case, &format!("after {name}"));
        let rerun = run_cmd(&case, &stage, &mock, &endpoint, "rerun.json").run();
        assert_eq!(rerun.status.code(), Some(3), "{name}: {}", rerun.stderr);
        assert_file_holds_the_state_letters(&case, &format!("after {name} and the rerun"));
        let local = local_dead_rows(&case);
        let missing: Vec<_> = rejected.difference(&local).take(5).collect();
        assert!(
            missing.is_empty(),
            "{name}: rejected rows not in the file: {missing:?}"
        );
    }
}

#[test]
fn the_dead_letter_file_holds_every_dead_letter_the_state_holds_at_any_crash_point() {
    let dir = temp_dir();
    let (stage, rejected) = stage_with_rejections(dir.path(), 3, 4_000);
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let mut in_state_at_crash = 0;
    for (i, point) in ["after-checkpoint:3", "after-checkpoint:6", "after-post:9"]
        .iter()
        .enumerate()
    {
        let case = dir.path().join(format!("kill-{i}"));
        std::fs::create_dir_all(&case).unwrap();
        let endpoint = format!("dl-kill-{i}");
        let killed = run_cmd(&case, &stage, &mock, &endpoint, "killed.json")
            .args(["--segment-rows", "500"])
            .env("STAGEPUSH_FAILPOINT", point)
            .run();
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "{point}: {}",
            killed.stderr
        );
        in_state_at_crash +=
            assert_file_holds_the_state_letters(&case, &format!("{point}, after the kill"));
        let rerun = run_cmd(&case, &stage, &mock, &endpoint, "rerun.json")
            .args(["--segment-rows", "500"])
            .run();
        assert_eq!(rerun.status.code(), Some(3), "{point}: {}", rerun.stderr);
        assert_file_holds_the_state_letters(&case, &format!("{point}, after the rerun"));
        let local = local_dead_rows(&case);
        let missing: Vec<_> = rejected.difference(&local).take(5).collect();
        assert!(
            missing.is_empty(),
            "{point}: rejected rows not in the file: {missing:?}"
        );
    }
    assert!(
        in_state_at_crash > 0,
        "no crash left dead letters in the state"
    );
}
