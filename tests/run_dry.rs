//! `run --dry-run`: nothing reaches the endpoint, no state, dead letters or report are
//! written, no token is needed, and the bodies it writes (`--write-bodies`) are the ones a
//! real run then sends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use stagepush::sample::{CustomerFileOptions, write_customer_file};

use crate::util::command::TestCommand;
use crate::util::{MockProcess, files_under, plugin, temp_dir};

const TOKEN: &str = "dry-token-9d41";

/// Two files of 700 rows (ids 1..=1400); with 500-row segments, 4 bodies.
fn stage(dir: &Path, options: &CustomerFileOptions) -> PathBuf {
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    for n in 0..2 {
        let path = stage.join(format!("data_0_{n}_0.snappy.parquet"));
        write_customer_file(&path, 1 + n * 700, 700, options).unwrap();
    }
    stage
}

fn clean() -> CustomerFileOptions {
    CustomerFileOptions {
        tombstone_fraction: 0.0,
        null_id_fraction: 0.0,
        ..Default::default()
    }
}

/// `run` without a token: only `dry` adds `--dry-run`; `real` adds the token.
fn cmd(dir: &Path, stage: &Path, mock: &MockProcess) -> TestCommand {
    let mut cmd = TestCommand::new(dir);
    cmd.arg("run")
        .arg("--source")
        .arg(stage)
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", &mock.endpoint("e")])
        .args(["--workers", "2", "--segment-rows", "500", "--no-progress"])
        .arg("--dead-letter")
        .arg(dir.join("dead"))
        .arg("--report")
        .arg(dir.join("report.json"))
        .env_remove("CLUEDIN_TOKEN");
    cmd
}

fn real(dir: &Path, stage: &Path, mock: &MockProcess) -> TestCommand {
    let mut c = cmd(dir, stage, mock);
    c.env("CLUEDIN_TOKEN", TOKEN);
    c
}

/// Every file under `dir` with its content (empty when `dir` does not exist).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(dir, None)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// The `N on the wire` of each `body` line of a dry run's stdout.
fn wire_sizes(stdout: &str) -> Vec<u64> {
    let mut sizes: Vec<u64> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("body "))
        .map(|l| {
            let before = l.split(" on the wire").next().unwrap();
            before.rsplit(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    sizes.sort();
    sizes
}

#[test]
fn a_dry_run_sends_nothing_writes_no_state_and_its_bodies_are_what_a_run_sends() {
    let dir = temp_dir();
    let stage = stage(dir.path(), &clean());
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let bodies = dir.path().join("bodies");

    let dry = cmd(dir.path(), &stage, &mock)
        .arg("--dry-run")
        .arg("--write-bodies")
        .arg(&bodies)
        .assert_exit(0);
    assert!(
        dry.stderr.contains("dry run: nothing sent"),
        "{}",
        dry.stderr
    );
    assert!(
        dry.stdout.contains(&format!(
            "endpoint {}: 4 bodies, 1400 records",
            mock.endpoint("e")
        )),
        "{}",
        dry.stdout
    );
    assert!(mock.requests().is_empty(), "the mock got requests");
    for left_alone in ["state", "dead", "report.json"] {
        assert!(
            !dir.path().join(left_alone).exists(),
            "the dry run wrote {left_alone}"
        );
    }
    let written = files_under(&bodies.join("e"), Some("json"));
    let names: Vec<_> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["000001.json", "000002.json", "000003.json", "000004.json"]
    );
    let summary: Vec<Value> =
        serde_json::from_slice(&std::fs::read(bodies.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary.len(), 4);
    assert_eq!(summary[0]["body"], "e/000001.json");
    assert_eq!(summary[0]["records"], 500);
    assert_eq!(summary[1]["records"], 200);
    assert_eq!(summary[1]["segment"], 1);
    let mut dry_bodies: Vec<Vec<Value>> = written
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();

    // The real run sends exactly those bodies (in some order).
    real(dir.path(), &stage, &mock).assert_exit(0);
    let mut sent: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in mock.records() {
        sent.entry(line["receiptId"].as_str().unwrap().to_string())
            .or_default()
            .push(line["record"].clone());
    }
    let mut sent: Vec<Vec<Value>> = sent.into_values().collect();
    let key = |body: &Vec<Value>| body[0]["externalId"].as_str().unwrap().to_string();
    dry_bodies.sort_by_key(key);
    sent.sort_by_key(key);
    assert_eq!(dry_bodies, sent);
    // Byte for byte on the wire, too (same framing, same gzip level).
    let mut sent_sizes: Vec<u64> = mock
        .requests()
        .iter()
        .map(|r| r["body_bytes"].as_u64().unwrap())
        .collect();
    sent_sizes.sort();
    assert_eq!(wire_sizes(&dry.stdout), sent_sizes);
}

#[test]
fn a_dry_run_after_a_run_leaves_delivered_files_out_unless_full_refresh() {
    let dir = temp_dir();
    let stage = stage(dir.path(), &clean());
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    real(dir.path(), &stage, &mock).assert_exit(0);
    let requests = mock.requests().len();
    let state = snapshot(&dir.path().join("state"));
    assert!(!state.is_empty());

    let dry = cmd(dir.path(), &stage, &mock)
        .arg("--dry-run")
        .assert_exit(0);
    assert!(
        dry.stderr.contains("2 skipped (already delivered)")
            && dry.stderr.contains("`run --full-refresh`"),
        "{}",
        dry.stderr
    );
    assert!(!dry.stdout.contains("body "), "{}", dry.stdout);

    let refresh = cmd(dir.path(), &stage, &mock)
        .args(["--dry-run", "--full-refresh"])
        .assert_exit(0);
    assert!(
        refresh.stdout.contains("4 bodies, 1400 records"),
        "{}",
        refresh.stdout
    );
    assert_eq!(mock.requests().len(), requests, "the dry runs sent nothing");
    assert_eq!(
        snapshot(&dir.path().join("state")),
        state,
        "the dry runs changed the state"
    );
}

#[test]
fn a_dry_run_shows_the_rows_a_run_would_dead_letter_and_writes_none() {
    let dir = temp_dir();
    let options = CustomerFileOptions {
        null_id_fraction: 0.05,
        ..clean()
    };
    let stage = stage(dir.path(), &options);
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let dry = cmd(dir.path(), &stage, &mock)
        .arg("--dry-run")
        .assert_exit(3);
    let failed: Vec<_> = dry
        .stderr
        .lines()
        .filter(|l| l.starts_with("summary: would be dead-lettered: "))
        .collect();
    assert!(!failed.is_empty(), "{}", dry.stderr);
    assert!(
        failed[0].contains("data_0_0_0.snappy.parquet row "),
        "{}",
        failed[0]
    );
    assert!(dry.stderr.contains("dry run: nothing sent"));
    assert!(!dir.path().join("dead").exists());
    assert!(!dir.path().join("state").exists());
    assert!(mock.requests().is_empty());
}
