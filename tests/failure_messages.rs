//! Failures that explain themselves (issue 17, item 4): dead letters grouped by message in
//! the run's summary, its report and `stagepush status`; plugin faults in the summary.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::util::command::TestCommand;
use crate::util::{MockProcess, Output, customer_file, plugin, read_report, temp_dir};

const TOKEN: &str = "failure-messages-token-3c9e";
const ROWS: u64 = 30;
/// Generous: these runs take well under a second.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// `run` of the misbehave plugin in `mode` over `stage`, with a report and dead letters
/// under `dir`.
fn misbehave_run(dir: &Path, stage: &Path, mock: &MockProcess, config: &[&str]) -> TestCommand {
    let mut cmd = TestCommand::new(dir);
    cmd.arg("run")
        .arg("--source")
        .arg(stage)
        .arg("--plugin")
        .arg(plugin("misbehave-rust"))
        .args(["--endpoint", &mock.endpoint("messages")])
        .args(["--token-env", "FAILURE_MESSAGES_TOKEN"])
        .env("FAILURE_MESSAGES_TOKEN", TOKEN)
        .args(["--no-progress"])
        .arg("--dead-letter")
        .arg(dir.join("dead"))
        .arg("--report")
        .arg(dir.join("report.json"));
    for c in config {
        cmd.args(["--plugin-config", c]);
    }
    cmd
}

/// The `(message, rows, example file, example row)` of each top message of `reason` in a
/// `byMessage` object.
fn top_messages(by_message: &Value, reason: &str) -> Vec<(String, u64, String, u64)> {
    by_message[reason]["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages for {reason}: {by_message}"))
        .iter()
        .map(|m| {
            (
                m["message"].as_str().unwrap().to_string(),
                m["rows"].as_u64().unwrap(),
                m["example"]["file"].as_str().unwrap().to_string(),
                m["example"]["row"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn dead_letters_are_grouped_by_message_in_the_summary_report_and_status() {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    customer_file(&stage, "data_0_0_0.snappy.parquet", ROWS);
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    // Rows 0, 3, …, 27: `row N is a multiple of three`; rows 5, 10, 20, 25: `no value for
    // this row`.
    let out = misbehave_run(dir.path(), &stage, &mock, &["mode=reject"]).run_within(RUN_TIMEOUT);
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);

    let report = read_report(dir.path());
    assert_eq!(
        report["rows"]["deadLetteredByReason"]["plugin/rejected"],
        14
    );
    let by_message = &report["rows"]["deadLetteredByMessage"];
    let file = top_messages(by_message, "plugin/rejected")[0].2.clone();
    assert!(file.ends_with("data_0_0_0.snappy.parquet"), "{file}");
    let expected = vec![
        (
            "row <n> is a multiple of three".to_string(),
            10,
            file.clone(),
            0,
        ),
        ("no value for this row".to_string(), 4, file.clone(), 5),
    ];
    assert_eq!(top_messages(by_message, "plugin/rejected"), expected);
    assert_eq!(
        by_message["plugin/rejected"]["messages"][0]["example"]["message"],
        "row 0 is a multiple of three"
    );
    assert_eq!(by_message["plugin/rejected"]["otherRows"], 0);

    // The summary shows the same groups, one line each.
    let lines = out.stderr_lines("summary:   plugin/rejected: ");
    assert_eq!(
        lines,
        [
            format!(
                "summary:   plugin/rejected: 10 rows: row <n> is a multiple of three (e.g. {file} row 0: row 0 is a multiple of three)"
            ),
            format!(
                "summary:   plugin/rejected: 4 rows: no value for this row (e.g. {file} row 5)"
            ),
        ],
        "{}",
        out.stderr
    );

    // And `status`, from the dead letters in the state.
    let status = status_json(dir.path());
    let letters = &status["deadLetters"];
    assert_eq!(
        top_messages(&letters["byMessage"], "plugin/rejected"),
        expected
    );
    assert_eq!(status["stages"][0]["deadLetters"], *letters);
    let text = run_status(dir.path(), &[]).stdout;
    assert!(
        text.contains(&format!(
            "    plugin/rejected: 14\n      10 rows: row <n> is a multiple of three (e.g. {file} row 0: row 0 is a multiple of three)\n      4 rows: no value for this row (e.g. {file} row 5)\n"
        )),
        "{text}"
    );
}

fn run_status(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = TestCommand::new(dir);
    cmd.arg("status").args(args);
    cmd.assert_exit(0)
}

fn status_json(dir: &Path) -> Value {
    let out = run_status(dir, &["--json"]);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}
