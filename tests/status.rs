//! `stagepush status` after real runs: the runs, the files by status and the dead letters
//! by reason agree with the run report; a damaged state document fails the status.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use stagepush::sample::{CustomerFileOptions, write_customer_file};

use crate::util::{MockProcess, Output, plugin, read_ndjson, run, stagepush, temp_dir};

const TOKEN: &str = "status-token-5d1e";
const ENDPOINT_ID: &str = "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D";
const ROWS: u64 = 400;

/// Writes stage file `n` (rows `1 + n*ROWS ..`); `bad` files have rows with a null
/// CUSTOMER_ID, which the customer plugin rejects.
fn stage_file(stage: &Path, n: u64, bad: bool) -> PathBuf {
    let path = stage.join(format!("data_0_{n}_0.snappy.parquet"));
    let options = CustomerFileOptions {
        tombstone_fraction: 0.0,
        null_id_fraction: if bad { 0.05 } else { 0.0 },
        ..Default::default()
    };
    write_customer_file(&path, 1 + n * ROWS, ROWS, &options).unwrap();
    path
}

/// A two-file stage (one with rejected rows) delivered by one run into `dir/state`.
/// Returns the stage folder and the run report.
fn delivered_stage(dir: &Path) -> (PathBuf, Value) {
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    stage_file(&stage, 0, true);
    stage_file(&stage, 1, false);
    let mock = MockProcess::start(dir, TOKEN, &[]);
    let out = run(stagepush(dir)
        .arg("run")
        .arg("--source")
        .arg(&stage)
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", &mock.endpoint(ENDPOINT_ID)])
        .args(["--token-env", "STAGEPUSH_STATUS_TOKEN"])
        .env("STAGEPUSH_STATUS_TOKEN", TOKEN)
        .arg("--dead-letter")
        .arg(dir.join("dead"))
        .arg("--report")
        .arg(dir.join("report.json")));
    // Rows were dead-lettered: exit status 3.
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    assert!(report["rows"]["deadLettered"].as_u64().unwrap() > 0);
    (stage, report)
}

fn status(dir: &Path, args: &[&str]) -> Output {
    run(stagepush(dir).arg("status").args(args))
}

fn status_json(dir: &Path, args: &[&str]) -> Value {
    let out = status(dir, &[args, &["--json"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}\n{}", out.stdout, out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[test]
fn status_shows_the_run_the_files_and_dead_letters_by_reason() {
    let dir = temp_dir();
    let (stage, report) = delivered_stage(dir.path());
    let s = status_json(dir.path(), &[]);
    assert_eq!(s["format"], "stagepush-status/1");
    assert_eq!(s["damaged"], serde_json::json!([]));

    // The run, as its report says.
    assert_eq!(s["runsTotal"], 1);
    let runs = s["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_eq!(r["runId"], report["runId"]);
    assert_eq!(r["startedAt"], report["startedAt"]);
    for field in ["read", "delivered", "filtered", "unchanged", "deadLettered"] {
        assert_eq!(r["rows"][field], report["rows"][field], "{field}");
    }
    assert_eq!(r["rows"]["read"], 2 * ROWS);
    for field in [
        "recordsDelivered",
        "filesSkipped",
        "filesResumed",
        "watermarks",
    ] {
        assert_eq!(r[field], report[field], "{field}");
    }
    assert_eq!(r["fatalError"], Value::Null);

    // Both files done.
    let stages = s["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 1);
    let st = &stages[0];
    assert_eq!(r["stageId"], st["stageId"]);
    assert_eq!(st["stage"], stage.to_str().unwrap());
    assert_eq!(
        st["files"],
        serde_json::json!({"done": 2, "partial": 0, "claimed": 0, "pending": 0,
            "damaged": 0, "total": 2})
    );
    assert_eq!(st["listed"], Value::Null);

    // Dead letters by reason: the run's dead-letter file grouped by stage/kind, and the
    // report's counts by stage.
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for letter in read_ndjson(&dir.path().join("dead/dead-letters.ndjson")) {
        let reason = format!(
            "{}/{}",
            letter["stage"].as_str().unwrap(),
            letter["kind"].as_str().unwrap()
        );
        *expected.entry(reason).or_default() += 1;
    }
    let by_reason: BTreeMap<String, u64> =
        serde_json::from_value(s["deadLetters"]["byReason"].clone()).unwrap();
    assert_eq!(by_reason, expected);
    assert!(by_reason.contains_key("plugin/rejected"), "{by_reason:?}");
    let mut by_stage: BTreeMap<String, u64> = BTreeMap::new();
    for (reason, n) in &by_reason {
        *by_stage
            .entry(reason.split_once('/').unwrap().0.to_string())
            .or_default() += n;
    }
    let report_by_stage: BTreeMap<String, u64> =
        serde_json::from_value(report["rows"]["deadLetteredByStage"].clone()).unwrap();
    assert_eq!(by_stage, report_by_stage);
    assert_eq!(s["deadLetters"]["total"], report["rows"]["deadLettered"]);
    assert_eq!(st["deadLetters"], s["deadLetters"]);

    // The human form names the same numbers.
    let out = status(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let text = &out.stdout;
    let rows = &report["rows"];
    for line in [
        format!("run {}", report["runId"].as_str().unwrap()),
        format!(
            "rows: {} read, {} delivered, {} filtered, {} unchanged, {} dead-lettered",
            rows["read"],
            rows["delivered"],
            rows["filtered"],
            rows["unchanged"],
            rows["deadLettered"]
        ),
        format!(
            "files: {} skipped, {} resumed",
            report["filesSkipped"], report["filesResumed"]
        ),
        format!("stage {}", stage.display()),
        "files: 2 done, 0 partial, 0 claimed, 0 pending".to_string(),
        format!("dead letters in total: {}", rows["deadLettered"]),
    ]
    .iter()
    .chain(
        expected
            .iter()
            .map(|(reason, n)| format!("{reason}: {n}"))
            .collect::<Vec<_>>()
            .iter(),
    ) {
        assert!(
            text.contains(line.as_str()),
            "{line:?} missing from:\n{text}"
        );
    }
}

#[test]
fn status_with_source_counts_a_new_file_as_pending() {
    let dir = temp_dir();
    let (stage, _) = delivered_stage(dir.path());
    stage_file(&stage, 2, false);
    let source = stage.to_str().unwrap();
    let s = status_json(dir.path(), &["--source", source, "--runs", "0"]);
    assert_eq!(s["runs"], serde_json::json!([]));
    assert_eq!(s["runsTotal"], 1);
    let stages = s["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 1);
    assert_eq!(
        stages[0]["files"],
        serde_json::json!({"done": 2, "partial": 0, "claimed": 0, "pending": 1,
            "damaged": 0, "total": 3})
    );
    assert_eq!(stages[0]["listed"], 3);
    assert_eq!(stages[0]["notListed"], 0);

    // The same through a config file's [source] and [state].
    let config = dir.path().join("status.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nurl = {source:?}\n[state]\nlocation = {:?}\n",
            dir.path().join("state").to_str().unwrap()
        ),
    )
    .unwrap();
    let out = run(stagepush(dir.path())
        .env_remove("STAGEPUSH_STATE")
        .current_dir(dir.path())
        .arg("status")
        .arg("--config")
        .arg(&config));
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("files: 2 done, 0 partial, 0 claimed, 1 pending; 3 in the stage listing"),
        "{}",
        out.stdout
    );
}

#[test]
fn status_names_a_damaged_state_document_and_fails() {
    let dir = temp_dir();
    delivered_stage(dir.path());
    let files_dir = dir.path().join("state/files");
    let stage_dir = std::fs::read_dir(&files_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(&stage_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    docs.sort();
    assert_eq!(docs.len(), 2);
    // A torn write: the document cut in the middle.
    let bytes = std::fs::read(&docs[0]).unwrap();
    std::fs::write(&docs[0], &bytes[..bytes.len() / 2]).unwrap();
    let relative = docs[0]
        .strip_prefix(dir.path().join("state"))
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();

    let out = status(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!("damaged: {relative}: ")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("1 done, 0 partial, 0 claimed, 0 pending, 1 damaged"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains(&format!("error: state document {relative} is damaged")),
        "{}",
        out.stderr
    );

    let out = status(dir.path(), &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let s: Value = serde_json::from_str(&out.stdout).unwrap();
    let damaged = s["damaged"].as_array().unwrap();
    assert_eq!(damaged.len(), 1);
    assert_eq!(damaged[0]["path"], relative.as_str());
    assert!(
        damaged[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not a state document")
    );
    assert_eq!(s["stages"][0]["files"]["damaged"], 1);
    assert_eq!(s["stages"][0]["files"]["done"], 1);
}
