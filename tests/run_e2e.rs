//! `stagepush run` end to end: real binary, real HTTP, the local endpoint stand-in with
//! fault injection. Every input row must end delivered, filtered or dead-lettered.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use stagepush::sample::{CustomerFileOptions, write_customer_file};

use crate::util::command::TestCommand;
use crate::util::read_report as report;
use crate::util::{MockProcess, mock_records, mock_requests, plugin, read_ndjson, temp_dir};

const TOKEN: &str = "test-token-7f3a";
const ENDPOINT_ID: &str = "6F5B0C1D-2E3F-4A5B-8C9D-0E1F2A3B4C5D";

/// A stage of `files` Snowflake-like files with tombstones and null ids (bad rows).
fn stage(dir: &Path, files: u64, rows_per_file: u64) -> PathBuf {
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    let options = CustomerFileOptions {
        tombstone_fraction: 0.05,
        null_id_fraction: 0.01,
        ..Default::default()
    };
    for n in 0..files {
        let path = stage.join(format!("data_0_{n}_0.snappy.parquet"));
        write_customer_file(&path, 1 + n * rows_per_file, rows_per_file, &options).unwrap();
    }
    stage
}

/// Fast retries for tests (the defaults wait up to 30 s between attempts).
const FAST_RETRIES: &str =
    "[sink.retry]\ninitial_backoff_ms = 10\nmax_backoff_secs = 1\nmax_attempts = 30\n";

fn run_cmd(dir: &Path, stage: &Path, mock: &MockProcess, config: &str) -> TestCommand {
    let config_path = dir.join("stagepush.toml");
    std::fs::write(
        &config_path,
        format!(
            "[sink]\nendpoint = \"{}\"\n{config}",
            mock.endpoint(ENDPOINT_ID)
        ),
    )
    .unwrap();
    let mut cmd = TestCommand::new(dir);
    cmd.arg("run")
        .arg("--config")
        .arg(&config_path)
        .arg("--source")
        .arg(stage)
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--token-env", "STAGEPUSH_E2E_TOKEN"])
        .env("STAGEPUSH_E2E_TOKEN", TOKEN)
        .arg("--dead-letter")
        .arg(dir.join("dead"))
        .arg("--report")
        .arg(dir.join("report.json"));
    cmd
}

/// What `plugin test` says the plugin makes of the stage: the records that must arrive,
/// and the rows it rejects.
fn expected(dir: &Path, stage: &Path) -> (BTreeSet<String>, BTreeSet<(String, u64)>) {
    let out = TestCommand::new(dir)
        .args(["plugin", "test"])
        .arg(plugin("customer-rust"))
        .arg(stage)
        .run();
    assert!(out.status.success(), "{}", out.stderr);
    let records = out
        .stdout_lines()
        .iter()
        .map(|l| canonical(&serde_json::from_str(l).unwrap()))
        .collect();
    let errors = out
        .stderr_lines("error: ")
        .iter()
        .map(|l| {
            let rest = l.strip_prefix("error: ").unwrap();
            let (file, rest) = rest.split_once(" row ").unwrap();
            let row: u64 = rest.split_once(':').unwrap().0.parse().unwrap();
            (file.to_string(), row)
        })
        .collect();
    (records, errors)
}

fn canonical(v: &serde_json::Value) -> String {
    serde_json::to_string(v).unwrap()
}

fn received(mock: &MockProcess) -> Vec<String> {
    mock_records(&mock.store)
        .iter()
        .map(|l| canonical(&l["record"]))
        .collect()
}

fn dead_letters(dir: &Path) -> Vec<serde_json::Value> {
    read_ndjson(&dir.join("dead/dead-letters.ndjson"))
}

#[test]
fn every_row_is_delivered_filtered_or_dead_lettered_under_faults() {
    let dir = temp_dir();
    let stage = stage(dir.path(), 3, 1_500);
    let (expected_records, expected_errors) = expected(dir.path(), &stage);
    assert!(!expected_errors.is_empty(), "the stage must hold bad rows");
    let mock = MockProcess::start(
        dir.path(),
        TOKEN,
        &[
            "--rate-429",
            "0.1",
            "--retry-after",
            "1",
            "--rate-503",
            "0.1",
            "--rate-drop",
            "0.05",
            "--max-body-bytes",
            "30000",
            "--seed",
            "7",
        ],
    );
    let out = run_cmd(dir.path(), &stage, &mock, FAST_RETRIES)
        .args(["--batch-rows", "1000"])
        .run();
    // Bad rows were dead-lettered: exit status 3.
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);

    // Exactly the expected records arrived, each at least once; duplicates only from
    // retried requests whose answer was lost (dropped connections).
    let got = received(&mock);
    let distinct: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(distinct, expected_records);
    // Every bad row is a dead letter naming its file, row and reason; nothing else is.
    let letters = dead_letters(dir.path());
    let dead: BTreeSet<(String, u64)> = letters
        .iter()
        .map(|l| {
            (
                l["file"].as_str().unwrap().to_string(),
                l["row"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(dead, expected_errors);
    for l in &letters {
        assert_eq!(l["stage"], "plugin");
        assert_eq!(l["message"], "CUSTOMER_ID is null");
        assert_eq!(l["input"]["CUSTOMER_ID"], serde_json::Value::Null, "{l}");
    }
    // The accounting adds up, and the faults really happened.
    let r = report(dir.path());
    let rows = &r["rows"];
    assert_eq!(rows["read"], 4_500);
    assert_eq!(
        rows["delivered"].as_u64().unwrap()
            + rows["filtered"].as_u64().unwrap()
            + rows["deadLettered"].as_u64().unwrap(),
        4_500
    );
    assert_eq!(
        rows["deadLettered"].as_u64().unwrap(),
        expected_errors.len() as u64
    );
    assert_eq!(
        r["recordsDelivered"].as_u64().unwrap(),
        expected_records.len() as u64
    );
    let statuses: Vec<u64> = mock_requests(&mock.store)
        .iter()
        .filter_map(|l| l["status"].as_u64())
        .collect();
    for status in [429, 503, 413, 200] {
        assert!(
            statuses.contains(&status),
            "no {status} answer was exercised: {statuses:?}"
        );
    }
    assert!(r["retries"].as_u64().unwrap() > 0);
    assert!(!r["receipts"].as_array().unwrap().is_empty());
    // Every request carried gzip and the documented headers.
    for req in mock_requests(&mock.store)
        .iter()
        .filter(|l| l["status"] == 200)
    {
        assert_eq!(req["content_encoding"], "gzip");
        assert_eq!(req["content_type"], "application/json");
        assert!(req["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    }
    assert!(
        !out.stderr.contains(TOKEN)
            && !std::fs::read_to_string(dir.path().join("report.json"))
                .unwrap()
                .contains(TOKEN)
    );
}

#[test]
fn a_refused_token_stops_the_run_after_one_request() {
    let dir = temp_dir();
    let stage = stage(dir.path(), 2, 300);
    let mock = MockProcess::start(dir.path(), "the-real-token", &[]);
    let out = run_cmd(dir.path(), &stage, &mock, FAST_RETRIES)
        .args(["--concurrency", "1"])
        .run();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("refused the API token (401"),
        "{}",
        out.stderr
    );
    let requests = mock_requests(&mock.store);
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["status"], 401);
    assert!(received(&mock).is_empty());
    assert!(!out.stderr.contains(TOKEN));
}

#[test]
fn ndjson_bodies_and_the_flat_shape_are_sent_as_documented() {
    let dir = temp_dir();
    let stage = stage(dir.path(), 1, 1_000);
    let (_, bad_rows) = expected(dir.path(), &stage);
    assert!(!bad_rows.is_empty());
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let out = run_cmd(dir.path(), &stage, &mock, "")
        .args(["--body", "ndjson", "--shape", "flat", "--gzip-level", "0"])
        .run();
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    let requests = mock_requests(&mock.store);
    assert!(!requests.is_empty());
    for req in &requests {
        assert_eq!(req["content_type"], "application/x-ndjson");
        assert_eq!(req["content_encoding"], serde_json::Value::Null);
    }
    let records = mock_records(&mock.store);
    let live = records
        .iter()
        .find(|r| r["record"]["deleted"].is_null())
        .unwrap();
    assert_eq!(live["record"]["type"], "Customer");
    assert!(
        live["record"]["name"].is_string() && live["record"].get("properties").is_none(),
        "{live}"
    );
    assert!(
        records.iter().any(|r| r["record"]["deleted"] == true),
        "tombstones are sent"
    );
}

#[test]
fn configuration_errors_are_one_line_and_name_the_problem() {
    let dir = temp_dir();
    let stage = stage(dir.path(), 1, 10);
    let base = |extra: &[&str], config: Option<&str>| {
        let mut cmd = TestCommand::new(dir.path());
        cmd.arg("run")
            .arg("--source")
            .arg(&stage)
            .arg("--plugin")
            .arg(plugin("customer-rust"));
        cmd.env("STAGEPUSH_E2E_TOKEN", TOKEN);
        if !extra.contains(&"--token-env") {
            cmd.args(["--token-env", "STAGEPUSH_E2E_TOKEN"]);
        }
        if let Some(text) = config {
            let path = dir.path().join("bad.toml");
            std::fs::write(&path, text).unwrap();
            cmd.arg("--config").arg(path);
        }
        cmd.args(extra);
        cmd.run()
    };
    let cases: Vec<(crate::util::Output, &str)> = vec![
        (
            base(
                &[],
                Some(
                    "[sink]\nendpoint = \"http://127.0.0.1:9/upload/api/endpoint/x\"\nbatch_size = 3\n",
                ),
            ),
            "unknown field `batch_size`",
        ),
        (
            base(&[], None),
            "no endpoint: set --endpoint or [sink] endpoint",
        ),
        (
            base(
                &[
                    "--endpoint",
                    "http://127.0.0.1:9/upload/api/endpoint/x",
                    "--token-env",
                    "STAGEPUSH_E2E_UNSET",
                ],
                None,
            ),
            "the token environment variable STAGEPUSH_E2E_UNSET is not set",
        ),
        (
            base(
                &[
                    "--endpoint",
                    "http://127.0.0.1:9/upload/api/endpoint/x",
                    "--batch-rows",
                    "100001",
                ],
                None,
            ),
            "batch.max_rows must be 1..=100000",
        ),
        (
            base(
                &[
                    "--endpoint",
                    "http://127.0.0.1:9/upload/api/endpoint/x",
                    "--gzip-level",
                    "13",
                ],
                None,
            ),
            "gzip_level must be 0..=12 (libdeflate's scale), got 13",
        ),
    ];
    for (out, expected) in cases {
        assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "one line expected: {}", out.stderr);
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(expected),
            "{}",
            lines[0]
        );
    }
}

/// Runs the stage at `source` (with `flags` and `cmd` environment from `setup`) into a
/// fresh stand-in and returns the records it received, sorted.
fn deliver(
    dir: &Path,
    source: &str,
    setup: impl FnOnce(&mut std::process::Command) -> Vec<String>,
) -> (Vec<String>, crate::util::Output) {
    let sub = dir.join(format!(
        "run-{}",
        source
            .split("://")
            .next()
            .unwrap_or("local")
            .replace('/', "_")
    ));
    std::fs::create_dir_all(&sub).unwrap();
    let mock = MockProcess::start(&sub, TOKEN, &[]);
    let mut cmd = run_cmd(&sub, Path::new(source), &mock, FAST_RETRIES);
    // `run` names the object store's endpoint `--stage-endpoint` (`--endpoint` is CluedIn's).
    let flags: Vec<String> = setup(cmd.command())
        .into_iter()
        .map(|f| {
            if f == "--endpoint" {
                "--stage-endpoint".to_string()
            } else {
                f
            }
        })
        .collect();
    let out = cmd.args(&flags).run();
    let mut records = received(&mock);
    records.sort();
    (records, out)
}

#[test]
fn runs_from_s3_and_azure_deliver_exactly_what_a_local_run_delivers() {
    use crate::stage_servers::{AzureServer, S3Server, put_file};
    let dir = temp_dir();
    let local = stage(dir.path(), 3, 700);
    let s3 = S3Server::start();
    let azure = AzureServer::start();
    for entry in std::fs::read_dir(&local).unwrap() {
        let path = entry.unwrap().path();
        let key = format!(
            "unload/customers/{}",
            path.file_name().unwrap().to_string_lossy()
        );
        put_file(&s3.store(), &key, &path);
        put_file(&azure.store(), &key, &path);
    }
    let (from_local, out) = deliver(dir.path(), local.to_str().unwrap(), |_| Vec::new());
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    assert!(from_local.len() > 2_000, "{}", from_local.len());
    let (from_s3, out) = deliver(dir.path(), "s3://stage/unload/customers/", |cmd| {
        s3.cli(cmd)
    });
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    assert_eq!(from_s3, from_local);
    let (from_azure, out) = deliver(dir.path(), "az://stage/unload/customers/", |cmd| {
        azure.cli(cmd)
    });
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    assert_eq!(from_azure, from_local);
    // Dead letters name the object by its URL.
    let letters = read_ndjson(&dir.path().join("run-s3/dead/dead-letters.ndjson"));
    assert!(!letters.is_empty());
    assert!(
        letters.iter().all(|l| l["file"]
            .as_str()
            .unwrap()
            .starts_with("s3://stage/unload/customers/data_0_")),
        "{letters:?}"
    );
}

#[test]
fn an_empty_stage_delivers_nothing_and_succeeds() {
    // Snowflake writes no file at all for an empty result.
    let dir = temp_dir();
    let stage = dir.path().join("empty-stage");
    std::fs::create_dir_all(&stage).unwrap();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let out = run_cmd(dir.path(), &stage, &mock, "").run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("summary: 0 rows read"),
        "{}",
        out.stderr
    );
    assert!(mock_requests(&mock.store).is_empty());
}
