//! `stagepush init` (the commented config file: parses, refuses to overwrite) and
//! `stagepush check` (one line per check; each failure class with its exit status; an
//! all-ok check against the mock that sends no record and shows no token).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::command::TestCommand;
use crate::util::{MockProcess, customer_file, fixture, plugin, temp_dir};

const TOKEN: &str = "check-secret-token-55aa";

/// Bound on every check: an unreachable host must not keep it longer.
const CHECK_DEADLINE: Duration = Duration::from_secs(30);

fn stage(dir: &Path) -> PathBuf {
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    customer_file(&stage, "data_0_0_0.snappy.parquet", 100);
    stage
}

/// `check` of `stage` into `endpoint` with the customer plugin, token set, state under
/// `dir/state` (the test command's default).
fn check(dir: &Path, stage: &Path, endpoint: &str) -> TestCommand {
    let mut cmd = TestCommand::new(dir);
    cmd.arg("check")
        .arg("--source")
        .arg(stage)
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", endpoint])
        .env("CLUEDIN_TOKEN", TOKEN);
    cmd
}

/// The check lines (`ok   name: …` / `FAIL name: …`) as (status, name).
fn lines(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| {
            let (status, rest) = l.split_once(' ')?;
            let name = rest.trim_start().split(':').next()?;
            Some((status.to_string(), name.to_string()))
        })
        .collect()
}

/// Asserts the checks before `failing` passed and `failing` failed, last.
fn fails_at(stdout: &str, failing: &str) {
    let got = lines(stdout);
    let (last, before) = got.split_last().expect("check lines");
    assert_eq!(last, &("FAIL".to_string(), failing.to_string()), "{stdout}");
    assert!(before.iter().all(|(s, _)| s == "ok"), "{stdout}");
}

#[test]
fn init_writes_a_config_that_parses_and_refuses_to_overwrite_it() {
    let dir = temp_dir();
    let file = dir.path().join("stagepush.toml");
    TestCommand::new(dir.path())
        .current_dir(dir.path())
        .arg("init")
        .assert_exit(0);
    let text = std::fs::read_to_string(&file).unwrap();
    let config = stagepush::config::RunConfig::load(&file).expect("the real parser reads it");
    assert_eq!(
        config.sink.unwrap().batch.max_rows,
        stagepush::sink::config::DEFAULT_BATCH_MAX_ROWS
    );
    assert!(text.contains("# [mapping]") && text.contains("docs/mapping.md"));

    std::fs::write(&file, "# mine\n").unwrap();
    let refused = TestCommand::new(dir.path())
        .arg("init")
        .arg("--output")
        .arg(&file)
        .assert_exit(1);
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "# mine\n");
    TestCommand::new(dir.path())
        .arg("init")
        .arg("--output")
        .arg(&file)
        .arg("--force")
        .assert_exit(0);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
}

#[test]
fn check_passes_against_the_mock_sends_no_record_and_leaves_no_trace() {
    let dir = temp_dir();
    let stage = stage(dir.path());
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    // From a config file written by `init`, the placeholders replaced by flags.
    let config = dir.path().join("stagepush.toml");
    TestCommand::new(dir.path())
        .arg("init")
        .arg("--output")
        .arg(&config)
        .assert_exit(0);
    let out = check(dir.path(), &stage, &mock.endpoint("e"))
        .arg("--config")
        .arg(&config)
        .run_within(CHECK_DEADLINE);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", out.stdout, out.stderr);
    let names: Vec<_> = lines(&out.stdout)
        .into_iter()
        .map(|(status, name)| {
            assert_eq!(status, "ok", "{}", out.stdout);
            name
        })
        .collect();
    assert_eq!(
        names,
        ["config", "token", "endpoint", "stage", "plugin", "state"]
    );
    assert!(!out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN));
    assert!(mock.records().is_empty(), "a record was sent");
    assert!(
        mock.requests().iter().all(|r| r["method"] != "POST"),
        "{:?}",
        mock.requests()
    );
    // The state folder the check created for its probe is gone again.
    assert!(!dir.path().join("state").exists());
}

#[test]
fn check_without_a_token_fails_with_the_usage_status() {
    let dir = temp_dir();
    let stage = stage(dir.path());
    let out = check(
        dir.path(),
        &stage,
        "http://127.0.0.1:9/upload/api/endpoint/e",
    )
    .env_remove("CLUEDIN_TOKEN")
    .run_within(CHECK_DEADLINE);
    assert_eq!(out.status.code(), Some(2), "{}", out.stdout);
    fails_at(&out.stdout, "token");
    assert!(
        out.stdout.contains("CLUEDIN_TOKEN is not set"),
        "{}",
        out.stdout
    );
}

#[test]
fn check_with_a_malformed_endpoint_url_fails_with_the_usage_status() {
    let dir = temp_dir();
    let stage = stage(dir.path());
    let out = check(dir.path(), &stage, "htps:/nowhere here").run_within(CHECK_DEADLINE);
    assert_eq!(out.status.code(), Some(2), "{}", out.stdout);
    fails_at(&out.stdout, "endpoint");
    assert!(out.stdout.contains("htps:/nowhere here"), "{}", out.stdout);
}

#[test]
fn check_of_an_unreachable_host_fails_quickly() {
    let dir = temp_dir();
    let stage = stage(dir.path());
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = std::time::Instant::now();
    let out = check(
        dir.path(),
        &stage,
        &format!("http://127.0.0.1:{port}/upload/api/endpoint/e"),
    )
    .run_within(CHECK_DEADLINE);
    assert_eq!(out.status.code(), Some(1), "{}", out.stdout);
    fails_at(&out.stdout, "endpoint");
    assert!(out.stdout.contains("Connection refused"), "{}", out.stdout);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn check_of_an_empty_or_unlistable_stage_fails() {
    let dir = temp_dir();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = check(dir.path(), &empty, &mock.endpoint("e")).run_within(CHECK_DEADLINE);
    assert_eq!(out.status.code(), Some(1), "{}", out.stdout);
    fails_at(&out.stdout, "stage");
    assert!(out.stdout.contains("no data files"), "{}", out.stdout);

    let missing = dir.path().join("no-such-stage");
    let out = check(dir.path(), &missing, &mock.endpoint("e")).run_within(CHECK_DEADLINE);
    assert_ne!(out.status.code(), Some(0), "{}", out.stdout);
    fails_at(&out.stdout, "stage");
}

#[test]
fn check_of_a_plugin_that_refuses_the_schema_fails() {
    let dir = temp_dir();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    // Snowflake's HEADER=FALSE names (_COL_0, …): no CUSTOMER_ID for the customer plugin.
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::copy(
        fixture("snowflake-unload/header-false/comments/data_0_0_0.snappy.parquet"),
        stage.join("data_0_0_0.snappy.parquet"),
    )
    .unwrap();
    let out = check(dir.path(), &stage, &mock.endpoint("e")).run_within(CHECK_DEADLINE);
    assert_eq!(out.status.code(), Some(1), "{}", out.stdout);
    fails_at(&out.stdout, "plugin");
    assert!(out.stdout.contains("CUSTOMER_ID"), "{}", out.stdout);
}

#[test]
fn check_of_a_state_that_cannot_be_written_fails() {
    let dir = temp_dir();
    let stage = stage(dir.path());
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    // A file where the state folder should be (permissions do not stop root).
    let state = dir.path().join("state-is-a-file");
    std::fs::write(&state, "not a folder").unwrap();
    let out = check(dir.path(), &stage, &mock.endpoint("e"))
        .arg("--state")
        .arg(&state)
        .run_within(CHECK_DEADLINE);
    assert_eq!(out.status.code(), Some(1), "{}", out.stdout);
    fails_at(&out.stdout, "state");
}
