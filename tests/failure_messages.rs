//! Failures that explain themselves (issue 17, item 4): dead letters grouped by message in
//! the run's summary, its report and `stagepush status`; plugin faults in the summary.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::util::command::TestCommand;
use crate::util::{
    MockProcess, Output, customer_file, plugin, read_report, shared_plugin_cache, temp_dir,
};

const TOKEN: &str = "failure-messages-token-3c9e";
const ROWS: u64 = 30;
/// Generous: these runs take well under a second.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// `run` of the misbehave plugin (Rust) with plugin settings `config` over `stage`, with a
/// report and dead letters under `dir`.
fn misbehave_run(dir: &Path, stage: &Path, mock: &MockProcess, config: &[&str]) -> TestCommand {
    misbehave_run_of("misbehave-rust", dir, stage, mock, config)
}

/// As [`misbehave_run`], with the plugin `name`.
fn misbehave_run_of(
    name: &str,
    dir: &Path,
    stage: &Path,
    mock: &MockProcess,
    config: &[&str],
) -> TestCommand {
    let mut cmd = TestCommand::new(dir);
    cmd.arg("run")
        .arg("--source")
        .arg(stage)
        .arg("--plugin")
        .arg(plugin(name))
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

/// A plugin that runs out of memory on one row: the faults (one per call that hit the row
/// while the batch was bisected) are in the summary by kind with an example, as in the
/// report, and only the row itself is dead-lettered.
#[test]
fn plugin_faults_are_in_the_summary_by_kind_with_an_example() {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    customer_file(&stage, "data_0_0_0.snappy.parquet", ROWS);
    let config = dir.path().join("stagepush.toml");
    std::fs::write(
        &config,
        "[plugin]\nmemory_mib = 64\ntimeout_ms = 60000\nbatch_rows = 8\n",
    )
    .unwrap();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let out = misbehave_run(dir.path(), &stage, &mock, &["mode=alloc", "row=5"])
        .arg("--config")
        .arg(&config)
        .run_within(RUN_TIMEOUT);
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);

    let report = read_report(dir.path());
    assert_eq!(
        report["rows"]["deadLetteredByReason"]["plugin/memory-limit"],
        1
    );
    // Rows 0 to 7, then 4 to 7, 4 and 5, and 5 alone.
    let plugin = &report["plugin"];
    assert_eq!(plugin["faults"], 4, "{plugin}");
    let faults = &plugin["faultsByKind"];
    assert_eq!(faults.as_object().unwrap().len(), 1, "{faults}");
    assert_eq!(faults["memory-limit"]["count"], 4, "{faults}");
    let example = faults["memory-limit"]["example"].as_str().unwrap();
    assert!(
        example.contains("data_0_0_0.snappy.parquet rows 0 to 7: ")
            && example.contains("memory limit of 64 MiB"),
        "{example}"
    );

    let lines = out.stderr_lines("summary:");
    let at = lines
        .iter()
        .position(|l| l.starts_with("summary: plugin faults: 4 in "))
        .unwrap_or_else(|| panic!("no plugin faults in the summary:\n{}", out.stderr));
    assert_eq!(
        lines[at + 1],
        format!("summary:   memory-limit: 4, e.g. {example}"),
        "{}",
        out.stderr
    );
}

/// The case of the issue: an interpreted plugin whose heap fills runs out of memory on good
/// rows; the host reruns them on a fresh instance and every row is delivered, so no dead
/// letter tells of it. The summary does.
#[test]
fn recovered_faults_of_an_interpreted_plugin_are_in_the_summary() {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    customer_file(&stage, "data_0_0_0.snappy.parquet", ROWS);
    let config = dir.path().join("stagepush.toml");
    std::fs::write(
        &config,
        "[plugin]\nmemory_mib = 128\ntimeout_ms = 60000\nbatch_rows = 8\n",
    )
    .unwrap();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let mut cmd = misbehave_run_of(
        "misbehave-python",
        dir.path(),
        &stage,
        &mock,
        &["mode=heap-full", "row=11"],
    );
    cmd.arg("--config")
        .arg(&config)
        .env("STAGEPUSH_CACHE_DIR", shared_plugin_cache());
    let out = cmd.run_within(RUN_TIMEOUT);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);

    let report = read_report(dir.path());
    assert_eq!(report["rows"]["delivered"], ROWS, "{}", report["rows"]);
    let faults = report["plugin"]["faults"].as_u64().unwrap();
    assert!(faults > 0, "{}", report["plugin"]);
    let trap = &report["plugin"]["faultsByKind"]["trap"];
    assert_eq!(trap["count"], faults, "{}", report["plugin"]);
    let example = trap["example"].as_str().unwrap();
    assert!(example.contains("MemoryError"), "{example}");
    let lines = out.stderr_lines("summary:");
    assert!(
        lines.contains(&format!("summary:   trap: {faults}, e.g. {example}").as_str())
            && lines
                .iter()
                .any(|l| l.starts_with(&format!("summary: plugin faults: {faults} in "))),
        "{}",
        out.stderr
    );
}

/// A run against `endpoint`, whose host cannot be connected to, with the default retry
/// policy (which waits minutes for transient failures): it stops within `bound`, exit 1,
/// nothing delivered, and the report's `fatalError` and the error line name `cause`.
fn assert_cannot_connect(endpoint: &str, cause: &str) {
    /// Generous: the connect retries take ~7.5 s, the default retry budget 10 minutes.
    const BOUND: Duration = Duration::from_secs(60);
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    customer_file(&stage, "data_0_0_0.snappy.parquet", ROWS);
    let mut cmd = TestCommand::new(dir.path());
    cmd.arg("run")
        .arg("--source")
        .arg(&stage)
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", endpoint])
        .args(["--token-env", "FAILURE_MESSAGES_TOKEN"])
        .env("FAILURE_MESSAGES_TOKEN", TOKEN)
        .args(["--no-progress"])
        .arg("--dead-letter")
        .arg(dir.path().join("dead"))
        .arg("--report")
        .arg(dir.path().join("report.json"));
    let started = std::time::Instant::now();
    let out = cmd.run_within(RUN_TIMEOUT);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(took < BOUND, "took {took:?}:\n{}", out.stderr);

    let report = read_report(dir.path());
    let fatal = report["fatalError"].as_str().unwrap_or_default();
    assert!(fatal.contains(cause), "{cause:?} not in {fatal:?}");
    assert_eq!(report["recordsDelivered"], 0, "{report}");
    assert_eq!(report["rows"]["delivered"], 0, "{report}");
    let error = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{}", out.stderr));
    assert!(error.contains(cause), "{error}");
    assert!(!out.stderr.contains("transient failure"), "{}", out.stderr);
    // The state marks nothing done: a rerun sends every row.
    let status = status_json(dir.path());
    assert_eq!(status["stages"][0]["files"]["done"], 0, "{status}");
}

#[test]
fn a_refused_connection_stops_the_run_in_seconds_with_that_cause() {
    // A port nothing listens on: bound, then closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    assert_cannot_connect(
        &format!("http://127.0.0.1:{port}/upload/api/endpoint/messages"),
        &format!("cannot connect to 127.0.0.1:{port}: connection refused"),
    );
}

#[test]
fn a_host_name_that_does_not_resolve_stops_the_run_in_seconds_with_that_cause() {
    // `.invalid` never resolves (RFC 2606), whether or not outside DNS is reachable.
    assert_cannot_connect(
        "https://stagepush-test.invalid/upload/api/endpoint/messages",
        "stagepush-test.invalid: DNS lookup failed: ",
    );
}

/// The customer plugin warns at `init` about each optional column the stage lacks; however
/// many times it is started (two files, workers), the summary and the report say so once
/// each.
#[test]
fn plugin_warnings_at_init_are_in_the_summary_and_report_once() {
    use crate::util::{Chunk, Values, write_parquet};

    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    for n in 0..2 {
        write_parquet(
            &stage.join(format!("data_0_{n}_0.snappy.parquet")),
            "message schema { required int64 CUSTOMER_ID; required binary NAME (STRING); }",
            Default::default(),
            vec![vec![
                Chunk::required(Values::Int64(vec![1 + n, 10 + n])),
                Chunk::required(Values::Bytes(vec![b"Ann".to_vec(), b"Bo".to_vec()])),
            ]],
        );
    }
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let mut cmd = misbehave_run_of("customer-rust", dir.path(), &stage, &mock, &[]);
    let out = cmd.run_within(RUN_TIMEOUT);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let report = read_report(dir.path());
    let expected: Vec<String> = ["COUNTRY", "EMAIL", "IS_ACTIVE", "UPDATED_AT"]
        .iter()
        .map(|c| format!("no column {c}: property left out"))
        .collect();
    assert_eq!(
        report["plugin"]["initWarnings"],
        serde_json::json!(expected),
        "{}",
        report["plugin"]
    );
    let lines = out.stderr_lines("summary: plugin warning at init: ");
    let shown: Vec<String> = expected
        .iter()
        .map(|w| format!("summary: plugin warning at init: {w}"))
        .collect();
    assert_eq!(lines, shown, "{}", out.stderr);
}

/// A misspelt optional column (`E_MAIL` where the plugin looks for `EMAIL`): the Rust SDK's
/// `schema.column` warns naming the similar column, and the run reports it once.
#[test]
fn a_column_the_plugin_looks_for_that_is_misspelt_is_named_with_the_similar_one() {
    use crate::util::{Chunk, Values, write_parquet};

    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    write_parquet(
        &stage.join("data_0_0_0.snappy.parquet"),
        "message schema { required int64 CUSTOMER_ID; required binary E_MAIL (STRING); }",
        Default::default(),
        vec![vec![
            Chunk::required(Values::Int64(vec![1, 2])),
            Chunk::required(Values::Bytes(vec![b"a@b.c".to_vec(), b"d@e.f".to_vec()])),
        ]],
    );
    // The Rust, Python and JavaScript SDKs all name the similar column.
    for plugin in ["customer-rust", "customer-python", "customer-js"] {
        let run = dir.path().join(plugin);
        std::fs::create_dir_all(&run).unwrap();
        let mock = MockProcess::start(&run, TOKEN, &[]);
        let out = misbehave_run_of(plugin, &run, &stage, &mock, &[]).run_within(RUN_TIMEOUT);
        assert_eq!(out.status.code(), Some(0), "{plugin}: {}", out.stderr);
        let report = read_report(&run);
        let warnings = report["plugin"]["initWarnings"].as_array().unwrap();
        assert!(
            warnings.contains(&Value::from("no column EMAIL (did you mean E_MAIL?)")),
            "{plugin}: {warnings:?}"
        );
        // Columns with no similar name are not guessed at.
        assert!(
            !warnings
                .iter()
                .any(|w| w.as_str().unwrap().contains("NAME (did you mean")),
            "{plugin}: {warnings:?}"
        );
        assert!(
            out.stderr.contains(
                "summary: plugin warning at init: no column EMAIL (did you mean E_MAIL?)"
            ),
            "{plugin}: {}",
            out.stderr
        );
    }
}
