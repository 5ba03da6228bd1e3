//! Failure paths around identity: the same stage spelled differently is the same stage
//! (its delivery state is found whatever the spelling, also a state an older version wrote
//! under its own spelling), and a lease taken over from a crashed worker says why.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use stagepush::state::files::stage_id;

use crate::stage_servers::{S3Server, customer_file, put_file};
use crate::util::command::TestCommand;
use crate::util::read_report as report;
use crate::util::{MockProcess, files_under, mock_records, plugin, temp_dir};

const TOKEN: &str = "identity-token-2e8b";
const FILES: u64 = 2;
const ROWS: u64 = 150;
/// How long the rerun after a crash may take (the crashed worker's lease is far longer).
const RERUN_DEADLINE: Duration = Duration::from_secs(120);

/// A `run` of `source` from the working folder `dir` (state `dir/state`), report
/// `dir/report.json`.
fn run_cmd(dir: &Path, source: &str, mock: &MockProcess) -> TestCommand {
    let mut cmd = TestCommand::new(dir);
    cmd.current_dir(dir)
        .arg("run")
        .args(["--source", source])
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", &mock.endpoint("identity")])
        .args(["--token-env", "IDENTITY_TEST_TOKEN"])
        .env("IDENTITY_TEST_TOKEN", TOKEN)
        .args(["--workers", "1", "--no-progress"])
        .arg("--dead-letter")
        .arg(dir.join("dead"))
        .arg("--report")
        .arg(dir.join("report.json"));
    cmd
}

/// `dir/stage` with [`FILES`] files of [`ROWS`] rows.
fn local_stage(dir: &Path) {
    let stage = dir.join("stage");
    for n in 0..FILES {
        let name = format!("data_0_{n}_0.snappy.parquet");
        customer_file(&stage, &name, 1 + n * ROWS, ROWS, 1_000);
    }
}

/// Runs `source` and asserts it delivered nothing again: every file skipped as done.
fn assert_nothing_resent(dir: &Path, source: &str, mock: &MockProcess) {
    let out = run_cmd(dir, source, mock).run();
    assert_eq!(out.status.code(), Some(0), "{source}: {}", out.stderr);
    let r = report(dir);
    assert_eq!(r["recordsDelivered"], 0, "{source} sent records again: {r}");
    assert_eq!(r["filesSkipped"], FILES, "{source}: {r}");
    assert_eq!(
        mock_records(&mock.store).len() as u64,
        FILES * ROWS,
        "{source}"
    );
}

#[test]
fn every_spelling_of_a_local_stage_finds_its_delivery_state() {
    let dir = temp_dir();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    local_stage(&root);
    std::fs::create_dir(root.join("other")).unwrap();
    std::os::unix::fs::symlink(root.join("stage"), root.join("link")).unwrap();
    let mock = MockProcess::start(&root, TOKEN, &[]);

    let out = run_cmd(&root, "stage", &mock).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert_eq!(mock_records(&mock.store).len() as u64, FILES * ROWS);

    let abs = root.join("stage").display().to_string();
    for source in [
        "stage/".to_string(),
        "./stage".into(),
        "stage//".into(),
        "other/../stage".into(),
        "link".into(),
        "link/".into(),
        abs.clone(),
        format!("{abs}/"),
        format!("file://{abs}/"),
        format!("file://localhost{abs}"),
    ] {
        assert_nothing_resent(&root, &source, &mock);
    }
    // One stage in the state.
    let stages: Vec<_> = std::fs::read_dir(root.join("state/files"))
        .unwrap()
        .collect();
    assert_eq!(stages.len(), 1, "{stages:?}");
    // `status` finds it whatever the spelling.
    let out = TestCommand::new(&root)
        .current_dir(&root)
        .args(["status", "--json", "--source", "link/"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let status: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(status["stages"][0]["files"]["done"], FILES, "{status}");
    assert_eq!(status["stages"][0]["files"]["pending"], 0, "{status}");
}

/// Moves the state written for the stage under `from` to the stage id of `to`, with the
/// stage named `to` in its documents: what a version that hashed the spelling `to` wrote.
fn rekey_state(state: &Path, from: &str, to: &str) {
    let old = state.join("files").join(stage_id(from));
    let new = state.join("files").join(stage_id(to));
    std::fs::rename(&old, &new).unwrap();
    for path in files_under(&new, Some("json")) {
        let mut doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(doc["stage"], from);
        doc["stage"] = Value::String(to.to_owned());
        std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    }
}

#[test]
fn a_state_written_under_an_older_spelling_is_still_found() {
    // Versions before the identity was canonical hashed `std::path::absolute(--source)`:
    // `DIR` and `DIR/` were two stages.
    for old_spelling in ["stage", "stage/"] {
        let dir = temp_dir();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        local_stage(&root);
        let mock = MockProcess::start(&root, TOKEN, &[]);
        let out = run_cmd(&root, old_spelling, &mock).run();
        assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
        let canonical = root.join("stage").display().to_string();
        let legacy = std::path::absolute(root.join(old_spelling))
            .unwrap()
            .display()
            .to_string();
        if legacy != canonical {
            rekey_state(&root.join("state"), &canonical, &legacy);
        }

        for source in ["stage", "stage/", "./stage/"] {
            assert_nothing_resent(&root, source, &mock);
        }
        // The state stays where the older version wrote it.
        let stages: Vec<String> = std::fs::read_dir(root.join("state/files"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(stages, [stage_id(&legacy)], "{old_spelling}");
    }
}

#[test]
fn every_spelling_of_an_s3_stage_finds_its_delivery_state() {
    let s3 = S3Server::start();
    let dir = temp_dir();
    for n in 0..FILES {
        let path = customer_file(
            dir.path(),
            &format!("local/{n}.parquet"),
            1 + n * ROWS,
            ROWS,
            1_000,
        );
        put_file(
            &s3.store(),
            &format!("unload/data_0_{n}_0.snappy.parquet"),
            &path,
        );
    }
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let s3_run = |source: &str| {
        let mut cmd = run_cmd(dir.path(), source, &mock);
        let flags: Vec<String> = s3
            .cli(cmd.command())
            .into_iter()
            .map(|f| {
                if f == "--endpoint" {
                    "--stage-endpoint".into()
                } else {
                    f
                }
            })
            .collect();
        cmd.args(flags);
        cmd.run()
    };
    let out = s3_run("s3://stage/unload/");
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert_eq!(mock_records(&mock.store).len() as u64, FILES * ROWS);
    for source in [
        "s3://stage/unload",
        "s3a://stage/unload/",
        "S3://stage/unload",
        "https://s3.amazonaws.com/stage/unload/",
        "https://stage.s3.us-east-1.amazonaws.com:443/%75nload",
    ] {
        let out = s3_run(source);
        assert_eq!(out.status.code(), Some(0), "{source}: {}", out.stderr);
        let r = report(dir.path());
        assert_eq!(r["recordsDelivered"], 0, "{source} sent records again: {r}");
        assert_eq!(r["filesSkipped"], FILES, "{source}: {r}");
    }
    assert_eq!(mock_records(&mock.store).len() as u64, FILES * ROWS);
}

#[test]
fn a_lease_of_a_killed_worker_on_this_machine_is_taken_over_at_once_saying_why() {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    customer_file(&stage, "data_0_0_0.snappy.parquet", 1, 2_000, 1_000);
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let worker = || {
        let mut cmd = run_cmd(dir.path(), "stage", &mock).into_command();
        cmd.env("HOSTNAME", "identity-test-machine")
            .args(["--segment-rows", "100", "--batch-rows", "100"])
            // Far longer than the rerun may take: only a dead owner lets it take the file.
            .args(["--lease-secs", "600"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    // kill -9 while it holds the file's lease.
    let killed = worker()
        .env("STAGEPUSH_FAILPOINT", "after-checkpoint:3")
        .spawn()
        .unwrap();
    let pid = killed.id();
    let killed = killed.wait_with_output().unwrap();
    assert_eq!(
        killed.status.signal(),
        Some(9),
        "{}",
        String::from_utf8_lossy(&killed.stderr)
    );
    assert!(
        (mock_records(&mock.store).len() as u64) < 2_000,
        "killed mid-file"
    );

    // The rerun takes the file over at once: well within the lease, or it is killed.
    let mut rerun = worker().spawn().unwrap();
    let started = Instant::now();
    while rerun.try_wait().unwrap().is_none() {
        if started.elapsed() > RERUN_DEADLINE {
            let _ = rerun.kill();
            let out = rerun.wait_with_output().unwrap();
            panic!(
                "the rerun waited for the dead worker's lease:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = rerun.wait_with_output().unwrap();
    let out = crate::util::Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("taking over the file"))
        .unwrap_or_else(|| panic!("no takeover line:\n{}", out.stderr));
    assert!(
        line.contains(&format!(
            "whose process is gone (pid {pid} no longer runs on this machine, identity-test-machine)"
        )) && line.contains("its lease would have run until"),
        "{line}"
    );
    assert!(!line.contains("lease expired"), "{line}");
    assert_eq!(report(dir.path())["filesResumed"], 1);
    let mut ids: Vec<String> = mock_records(&mock.store)
        .iter()
        .map(|r| r["record"]["externalId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2_000, "every record arrived");
}

#[test]
fn a_full_disk_is_named_once_in_the_error() {
    // The dead-letter file on a full disk: `/dev/full` answers every write with ENOSPC.
    let dir = temp_dir();
    local_stage(dir.path());
    let dead = dir.path().join("dead");
    std::fs::create_dir(&dead).unwrap();
    std::os::unix::fs::symlink("/dev/full", dead.join("dead-letters.ndjson")).unwrap();
    // The endpoint refuses one record, which is then dead-lettered.
    let mock = MockProcess::start(dir.path(), TOKEN, &["--reject-external-id", "5"]);
    let out = run_cmd(dir.path(), "stage", &mock).run();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{}", out.stderr));
    let full = std::io::Error::from_raw_os_error(libc::ENOSPC).to_string();
    assert_eq!(
        line,
        format!(
            "error: dead-letter output {}: {full}",
            dead.join("dead-letters.ndjson").display()
        )
    );
}
