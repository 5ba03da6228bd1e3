//! Several `stagepush run` processes on one stage with the state in the object store
//! (SeaweedFS for S3, Azurite for Azure): files are claimed with leases (conditional
//! writes), so each file is delivered by exactly one worker, and a dead worker's file is
//! finished by another once its lease lapses.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::stage_servers::{AzureServer, S3Server, customer_file, put_file};
use crate::util::{MockProcess, mock_records, plugin, stagepush, temp_dir};

const TOKEN: &str = "workers-token-9d1e";
const FILES: u64 = 6;
const ROWS: u64 = 400;

/// Which object store the stage and the state live in.
enum Server {
    S3(S3Server),
    Azure(AzureServer),
}

impl Server {
    fn scheme(&self) -> &'static str {
        match self {
            Server::S3(_) => "s3",
            Server::Azure(_) => "az",
        }
    }

    fn store(&self) -> std::sync::Arc<dyn object_store::ObjectStore> {
        match self {
            Server::S3(s) => s.store(),
            Server::Azure(s) => s.store(),
        }
    }

    /// Stage flags for `run` (the object store's endpoint is `--stage-endpoint`).
    fn flags(&self, cmd: &mut Command) -> Vec<String> {
        let flags = match self {
            Server::S3(s) => s.cli(cmd),
            Server::Azure(s) => s.cli(cmd),
        };
        flags
            .into_iter()
            .map(|f| {
                if f == "--endpoint" {
                    "--stage-endpoint".into()
                } else {
                    f
                }
            })
            .collect()
    }
}

fn upload_stage(server: &Server, dir: &Path, files: u64, rows: u64) {
    for n in 0..files {
        let name = format!("data_0_{n}_0.snappy.parquet");
        let path = customer_file(dir, &format!("local/{name}"), 1 + n * rows, rows, 1_000);
        put_file(&server.store(), &format!("unload/{name}"), &path);
    }
}

/// A worker's command: `name` is its working folder (report, dead letters) and its
/// machine name (lease owners are `host:pid:run`); the state is in the object store.
fn worker(server: &Server, dir: &Path, name: &str, mock: &MockProcess, extra: &[&str]) -> Command {
    let work = dir.join(name);
    std::fs::create_dir_all(&work).unwrap();
    let mut cmd = stagepush(&work);
    let scheme = server.scheme();
    cmd.arg("run")
        .arg("--source")
        .arg(format!("{scheme}://stage/unload/"))
        .arg("--state")
        .arg(format!("{scheme}://stage/state/"))
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", &mock.endpoint("workers")])
        .args(["--token-env", "WORKERS_TOKEN"])
        .env("WORKERS_TOKEN", TOKEN)
        .env("HOSTNAME", format!("machine-{name}"))
        .args(["--workers", "1", "--segment-rows", "100", "--no-progress"])
        .arg("--dead-letter")
        .arg(work.join("dead"))
        .arg("--report")
        .arg(work.join("report.json"))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let flags = server.flags(&mut cmd);
    cmd.args(flags);
    cmd
}

fn received(mock: &MockProcess) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for r in mock_records(&mock.store) {
        let id = r["record"]["externalId"].as_str().unwrap().to_string();
        *out.entry(id).or_default() += 1;
    }
    out
}

fn report(dir: &Path, name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join(name).join("report.json")).unwrap()).unwrap()
}

fn two_workers_deliver_each_file_once(server: Server) {
    let dir = temp_dir();
    upload_stage(&server, dir.path(), FILES, ROWS);
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let a = worker(&server, dir.path(), "a", &mock, &[])
        .spawn()
        .unwrap();
    let b = worker(&server, dir.path(), "b", &mock, &[])
        .spawn()
        .unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert_eq!(b.status.code(), Some(0), "{}", stderr(&b));
    // Every record exactly once between the two.
    let got = received(&mock);
    assert_eq!(got.len() as u64, FILES * ROWS);
    assert!(
        got.values().all(|n| *n == 1),
        "duplicates: {:?}",
        got.iter()
            .filter(|(_, n)| **n > 1)
            .take(5)
            .collect::<Vec<_>>()
    );
    // Each file was done by exactly one of them.
    let mut done = BTreeMap::<String, u32>::new();
    for name in ["a", "b"] {
        for f in report(dir.path(), name)["files"].as_array().unwrap() {
            if f["outcome"] == "done" {
                *done
                    .entry(f["file"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
    }
    assert_eq!(done.len() as u64, FILES, "{done:?}");
    assert!(done.values().all(|n| *n == 1), "{done:?}");
}

fn a_dead_workers_file_is_finished_after_its_lease_lapses(server: Server) {
    // Enough rows that A cannot have sent them all by its 4th checkpoint: checkpoints are
    // grouped (up to 6 segments of 100 rows each) and at most 8 segments are out at once,
    // so A has sent at most ~3,200 when it is killed (with 2,000 rows it sometimes had
    // sent every one, and the test failed).
    const ROWS: u64 = 20_000;
    let dir = temp_dir();
    upload_stage(&server, dir.path(), 1, ROWS);
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    // Worker A (on "machine-a") is killed mid-file while it holds the lease.
    let a = worker(&server, dir.path(), "a", &mock, &["--lease-secs", "4"])
        .env("STAGEPUSH_FAILPOINT", "after-checkpoint:4")
        .output()
        .unwrap();
    assert_eq!(
        a.status.signal(),
        Some(9),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    let delivered_by_a = received(&mock).len() as u64;
    assert!(delivered_by_a < ROWS, "A was killed mid-file");

    // Worker B (on "machine-b") finds the file claimed, waits for the lease to lapse,
    // takes it over and finishes it from A's last acknowledged segment.
    let b = worker(&server, dir.path(), "b", &mock, &["--lease-secs", "4"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&b.stderr);
    assert_eq!(b.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("another worker is on this file")
            && stderr.contains("taking over the file from a worker whose lease expired"),
        "{stderr}"
    );
    let got = received(&mock);
    assert_eq!(got.len() as u64, ROWS, "every record arrived");
    let r = report(dir.path(), "b");
    assert_eq!(r["filesResumed"], 1, "{r}");
    let duplicates: u64 = got.values().map(|n| n - 1).sum();
    assert!(
        duplicates <= r["possibleDuplicates"]["records"].as_u64().unwrap(),
        "{duplicates} duplicates, {}",
        r["possibleDuplicates"]
    );
    assert!(
        r["recordsDelivered"].as_u64().unwrap() < ROWS,
        "B resumed instead of starting over: {r}"
    );
}

#[test]
fn two_workers_with_state_in_s3_deliver_each_file_once() {
    two_workers_deliver_each_file_once(Server::S3(S3Server::start()));
}

#[test]
fn two_workers_with_state_in_azure_deliver_each_file_once() {
    two_workers_deliver_each_file_once(Server::Azure(AzureServer::start()));
}

#[test]
fn a_dead_workers_file_in_s3_is_finished_by_another_after_the_lease() {
    a_dead_workers_file_is_finished_after_its_lease_lapses(Server::S3(S3Server::start()));
}

#[test]
fn a_dead_workers_file_in_azure_is_finished_by_another_after_the_lease() {
    a_dead_workers_file_is_finished_after_its_lease_lapses(Server::Azure(AzureServer::start()));
}
