//! `run --queue` and `serve --queue` against SQS (moto in server mode), with the stage on
//! SeaweedFS and `stagepush mock-cluedin` as the endpoint: a message is deleted only once
//! every object it names is delivered, kept invisible while that takes, and left in the
//! queue when the delivery fails.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::stage_servers::{S3Server, customer_file, put_file};
use crate::util::command::{Background, TestCommand};
use crate::util::moto::Moto;
use crate::util::serve::ServeProcess;
use crate::util::{MockProcess, files_under, plugin, read_report, temp_dir, wait_until};

const TOKEN: &str = "queue-token-5c1e";
/// Longest time a consumer run may take in these tests.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// An S3 notification for `keys` of bucket `bucket`.
fn s3_event(bucket: &str, keys: &[String]) -> String {
    let records: Vec<Value> = keys
        .iter()
        .map(|key| {
            json!({
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2024-05-01T02:15:31.482Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
                    "object": {"key": key, "size": 1, "sequencer": "0055AED6DCD90281E5"}
                }
            })
        })
        .collect();
    json!({ "Records": records }).to_string()
}

/// The key of file `n` of the stage.
fn key(n: u64) -> String {
    format!("unload/data_0_{n}_0.snappy.parquet")
}

/// Uploads `files` files of `rows` rows each (ids `n * rows + 1 ..`): the ids expected.
fn upload(s3: &S3Server, dir: &Path, files: u64, rows: u64) -> Vec<String> {
    let store = s3.store();
    for n in 0..files {
        let path = customer_file(
            dir,
            &format!("local/{n}.parquet"),
            1 + n * rows,
            rows,
            1_000,
        );
        put_file(&store, &key(n), &path);
    }
    (1..=files * rows).map(|id| id.to_string()).collect()
}

/// `stagepush run --queue QUEUE` (or `serve`, as `command` says) on the stage of `s3`.
fn consumer(
    dir: &Path,
    command: &str,
    s3: &S3Server,
    mock: &MockProcess,
    queue: &str,
    flags: &[&str],
) -> TestCommand {
    let mut cmd = TestCommand::new(dir);
    cmd.arg(command);
    let stage_flags = s3.cli(cmd.command());
    cmd.args(["--source", "s3://stage/unload/"])
        .args(stage_flags)
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", &mock.endpoint("queue")])
        .args(["--token-env", "QUEUE_TEST_TOKEN", "--no-progress"])
        .env("QUEUE_TEST_TOKEN", TOKEN)
        .args(["--queue", queue, "--queue-kind", "sqs", "--wait-secs", "1"])
        .arg("--dead-letter")
        .arg(dir.join("dead"))
        .arg("--report")
        .arg(dir.join("report.json"))
        .args(flags);
    cmd
}

/// externalId → times stored, of the records the mock stored.
fn received(mock: &MockProcess) -> BTreeMap<String, u64> {
    mock.received()
}

fn assert_each_once(mock: &MockProcess, expected: &[String]) {
    let got = received(mock);
    let mut want: Vec<&String> = expected.iter().collect();
    want.sort();
    assert_eq!(got.keys().collect::<Vec<_>>(), want, "records delivered");
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
}

/// The report's `queue` object.
fn queue_counts(dir: &Path) -> Value {
    read_report(dir)["queue"].clone()
}

#[test]
fn fifty_messages_with_duplicates_deliver_each_file_once_and_are_all_deleted() {
    let dir = temp_dir();
    let s3 = S3Server::start();
    let moto = Moto::start();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let expected = upload(&s3, dir.path(), 10, 20);
    let queue = moto.create_queue("exactly-once");
    // 50 messages over 10 files: each names one to three files, every file several times.
    for m in 0..50u64 {
        let keys: Vec<String> = (0..=(m % 3)).map(|k| key((m * 7 + k * 3) % 10)).collect();
        moto.send(&queue, &s3_event("stage", &keys));
    }
    let out = consumer(
        dir.path(),
        "run",
        &s3,
        &mock,
        &queue,
        &["--max-messages", "7"],
    )
    .run_within(RUN_TIMEOUT);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert_each_once(&mock, &expected);
    let counts = queue_counts(dir.path());
    assert_eq!(counts["received"], 50, "{counts}");
    assert_eq!(counts["deleted"], 50, "{counts}");
    assert_eq!(counts["left"], 0, "{counts}");
    assert!(
        out.stderr.contains("50 messages received: 50 deleted"),
        "{}",
        out.stderr
    );
    assert_eq!(moto.counts(&queue), (0, 0), "the queue is empty");
    assert!(moto.receive(&queue, 1).is_empty());
}

#[test]
fn a_consumer_killed_mid_delivery_leaves_its_messages_and_the_rerun_sends_nothing_twice() {
    let dir = temp_dir();
    let s3 = S3Server::start();
    let moto = Moto::start();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let expected = upload(&s3, dir.path(), 4, 400);
    let queue = moto.create_queue("killed");
    for n in 0..4 {
        moto.send(&queue, &s3_event("stage", &[key(n)]));
    }
    // One request of 20 records at a time, a segment each.
    let flags = [
        "--visibility-secs",
        "3",
        "--concurrency",
        "1",
        "--segment-rows",
        "20",
        "--batch-rows",
        "20",
    ];
    let mut first = consumer(dir.path(), "run", &s3, &mock, &queue, &flags);
    first.env("STAGEPUSH_FAILPOINT", "after-checkpoint:6");
    let out = first.run_within(RUN_TIMEOUT);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(libc::SIGKILL),
        "{}",
        out.stderr
    );
    let before = received(&mock);
    assert!(
        !before.is_empty() && before.len() < expected.len(),
        "killed mid-delivery: {} of {} records",
        before.len(),
        expected.len()
    );
    // Rows of the segments the killed run had recorded as acknowledged.
    let acked_before: u64 = files_under(&dir.path().join("state/files"), Some("json"))
        .iter()
        .map(|p| {
            let doc: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            doc["counts"]["rows"].as_u64().unwrap()
        })
        .sum();
    assert!(acked_before > 0, "the kill came after a checkpoint");
    // Nothing was deleted: the messages come back once their visibility timeout lapses.
    wait_until(Duration::from_secs(30), "the messages to reappear", || {
        moto.counts(&queue) == (4, 0)
    });
    let out = consumer(dir.path(), "run", &s3, &mock, &queue, &flags).run_within(RUN_TIMEOUT);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let got = received(&mock);
    let mut want: Vec<&String> = expected.iter().collect();
    want.sort();
    assert_eq!(got.keys().collect::<Vec<_>>(), want, "every row delivered");
    // The rerun resumed after what the state had recorded as acknowledged, and repeated
    // only bodies in flight at the kill (acknowledged by the endpoint, not yet recorded),
    // which its report counts as possible duplicates.
    let report = read_report(dir.path());
    assert_eq!(
        report["rows"]["read"].as_u64().unwrap(),
        expected.len() as u64 - acked_before,
        "{acked_before} rows recorded as acknowledged before the rerun"
    );
    let duplicates: u64 = got.values().map(|n| n - 1).sum();
    let possible = report["possibleDuplicates"]["records"].as_u64().unwrap();
    assert!(
        duplicates <= possible,
        "{duplicates} duplicates, the report says at most {possible}"
    );
    assert_eq!(queue_counts(dir.path())["deleted"], 4);
    assert_eq!(moto.counts(&queue), (0, 0));
}

#[test]
fn a_slow_delivery_keeps_its_message_invisible_past_the_visibility_timeout() {
    let dir = temp_dir();
    let s3 = S3Server::start();
    let moto = Moto::start();
    let gate = dir.path().join("gate");
    std::fs::write(&gate, b"held").unwrap();
    let gate_flag = gate.display().to_string();
    let mock = MockProcess::start(dir.path(), TOKEN, &["--hold-while-exists", &gate_flag]);
    let expected = upload(&s3, dir.path(), 1, 50);
    let queue = moto.create_queue("slow");
    moto.send(&queue, &s3_event("stage", &[key(0)]));
    let cmd = consumer(
        dir.path(),
        "run",
        &s3,
        &mock,
        &queue,
        &["--visibility-secs", "2"],
    );
    let mut run = Background::start(cmd, &dir.path().join("run.log"));
    wait_until(Duration::from_secs(30), "the consumer to receive", || {
        moto.counts(&queue) == (0, 1)
    });
    // Three visibility timeouts: another consumer polling all along receives nothing.
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(6) {
        let got = moto.receive(&queue, 1);
        assert!(
            got.is_empty(),
            "another consumer received {got:?}:\n{}",
            run.log()
        );
    }
    std::fs::remove_file(&gate).unwrap();
    let (status, log) = run.wait(RUN_TIMEOUT, "after the gate opened");
    assert_eq!(status.code(), Some(0), "{log}");
    assert_each_once(&mock, &expected);
    let counts = queue_counts(dir.path());
    assert!(counts["extended"].as_u64().unwrap() > 0, "{counts}");
    assert_eq!(counts["deleted"], 1, "{counts}");
    assert_eq!(moto.counts(&queue), (0, 0));
}

#[test]
fn an_endpoint_outage_leaves_every_message_in_the_queue() {
    let dir = temp_dir();
    let s3 = S3Server::start();
    let moto = Moto::start();
    // The endpoint refuses the token: a fatal error, nothing is acknowledged.
    let mock = MockProcess::start(dir.path(), "another-token", &[]);
    upload(&s3, dir.path(), 3, 10);
    let queue = moto.create_queue("outage");
    let bodies: Vec<String> = (0..3).map(|n| s3_event("stage", &[key(n)])).collect();
    for body in &bodies {
        moto.send(&queue, body);
    }
    let out = consumer(dir.path(), "run", &s3, &mock, &queue, &[]).run_within(RUN_TIMEOUT);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("stay in the queue"), "{}", out.stderr);
    let counts = queue_counts(dir.path());
    assert_eq!(counts["deleted"], 0, "{counts}");
    assert_eq!(counts["left"], 3, "{counts}");
    // Left visible at once: the test receives every message back.
    let mut back = Vec::new();
    wait_until(Duration::from_secs(30), "the messages back", || {
        back.extend(moto.receive(&queue, 30));
        back.len() >= 3
    });
    back.sort();
    let mut sent = bodies.clone();
    sent.sort();
    assert_eq!(back, sent);
    // The queue is not reachable at all: a clear error, soon.
    drop(moto);
    let out = consumer(dir.path(), "run", &s3, &mock, &queue, &[]).run_within(RUN_TIMEOUT);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("cannot connect"), "{}", out.stderr);
}

#[test]
fn messages_that_can_never_be_delivered_are_deleted_and_dead_lettered() {
    let dir = temp_dir();
    let s3 = S3Server::start();
    let moto = Moto::start();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let expected = upload(&s3, dir.path(), 1, 10);
    let queue = moto.create_queue("rule");
    moto.send(&queue, "{oops not json");
    moto.send(&queue, &s3_event("elsewhere", &[key(0)]));
    moto.send(
        &queue,
        r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-05-01T02:15:31.000Z","Bucket":"stage","RequestId":"1","HostId":"2"}"#,
    );
    moto.send(&queue, &s3_event("stage", &[key(0)]));
    let out = consumer(dir.path(), "run", &s3, &mock, &queue, &[]).run_within(RUN_TIMEOUT);
    // Delivered what could be; two messages are dead letters: exit 3 as for rows.
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    assert_each_once(&mock, &expected);
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("can never be delivered"))
        .collect();
    assert_eq!(errors.len(), 2, "{}", out.stderr);
    let counts = queue_counts(dir.path());
    assert_eq!(counts["received"], 4, "{counts}");
    assert_eq!(counts["deleted"], 4, "{counts}");
    assert_eq!(counts["deadLettered"], 2, "{counts}");
    assert_eq!(moto.counts(&queue), (0, 0));
    // `status` shows both, with their reasons.
    let mut status = TestCommand::new(dir.path());
    status.arg("status");
    let stage_flags = s3.cli(status.command());
    let out = status
        .args(["--source", "s3://stage/unload/"])
        .args(stage_flags)
        .run_within(RUN_TIMEOUT);
    assert!(
        out.stdout.contains("2 queue messages dead-lettered"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("not JSON"), "{}", out.stdout);
    assert!(out.stdout.contains("elsewhere"), "{}", out.stdout);
}

#[test]
fn serve_delivers_messages_sent_while_it_runs_and_stops_on_sigterm() {
    let dir = temp_dir();
    let s3 = S3Server::start();
    let moto = Moto::start();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let expected = upload(&s3, dir.path(), 2, 10);
    let queue = moto.create_queue("serve");
    let mut cmd = consumer(dir.path(), "serve", &s3, &mock, &queue, &[]);
    cmd.args(["--listen", "127.0.0.1:0"]);
    let serve = ServeProcess::start(cmd, &dir.path().join("serve.log"));
    for n in 0..2 {
        moto.send(&queue, &s3_event("stage", &[key(n)]));
    }
    serve.wait_until(
        "serve to deliver both files and delete their messages",
        || {
            received(&mock).len() == expected.len()
                && serve.metric_or_zero("stagepush_queue_messages_total{event=\"deleted\"}") == 2.0
        },
    );
    assert_each_once(&mock, &expected);
    assert_eq!(moto.counts(&queue), (0, 0));
    assert_eq!(
        serve.metric("stagepush_queue_messages_total{event=\"received\"}"),
        2.0
    );
    let log = serve.stop();
    assert!(log.contains("queue consumer stopped"), "{log}");
}

#[test]
fn a_queue_cannot_be_combined_with_other_selections_and_retry_refuses_it() {
    let dir = temp_dir();
    let queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/q";
    let base = |command: &str| {
        let mut cmd = TestCommand::new(dir.path());
        cmd.arg(command)
            .arg("--source")
            .arg(dir.path())
            .args(["--endpoint", "http://127.0.0.1:9/upload/api/endpoint/1"])
            .env("CLUEDIN_TOKEN", TOKEN);
        cmd
    };
    for other in [
        &["--event", "e.json"][..],
        &["--keys-from", "k.txt"],
        &["--shard", "0/2"],
        &["--shard-count", "2"],
    ] {
        let out = base("run")
            .args(["--queue", queue])
            .args(other)
            .assert_exit(2);
        assert!(out.stderr.contains("cannot be used with"), "{}", out.stderr);
    }
    // The same from the config file.
    let config = dir.path().join("queue.toml");
    std::fs::write(&config, format!("[trigger]\nqueue = \"{queue}\"\n")).unwrap();
    let out = base("run")
        .arg("--config")
        .arg(&config)
        .args(["--shard", "0/2"])
        .assert_exit(2);
    assert!(
        out.stderr
            .contains("cannot be combined with --event, --keys-from, --shard"),
        "{}",
        out.stderr
    );
    let out = base("retry").args(["--queue", queue]).assert_exit(2);
    assert!(
        out.stderr.contains("does not consume a --queue"),
        "{}",
        out.stderr
    );
    let out = base("run")
        .args(["--queue", queue, "--max-messages", "11"])
        .assert_exit(2);
    assert!(
        out.stderr
            .contains("[trigger] max_messages (--max-messages) is 11"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_sigterm_stops_the_run_and_leaves_its_messages_in_the_queue() {
    let dir = temp_dir();
    let s3 = S3Server::start();
    let moto = Moto::start();
    let gate = dir.path().join("gate");
    std::fs::write(&gate, b"held").unwrap();
    let gate_flag = gate.display().to_string();
    let mock = MockProcess::start(dir.path(), TOKEN, &["--hold-while-exists", &gate_flag]);
    upload(&s3, dir.path(), 1, 200);
    let queue = moto.create_queue("sigterm");
    let body = s3_event("stage", &[key(0)]);
    moto.send(&queue, &body);
    let cmd = consumer(
        dir.path(),
        "run",
        &s3,
        &mock,
        &queue,
        &["--batch-rows", "20", "--concurrency", "1"],
    );
    let mut run = Background::start(cmd, &dir.path().join("run.log"));
    wait_until(Duration::from_secs(30), "the consumer to receive", || {
        moto.counts(&queue) == (0, 1)
    });
    run.signal(libc::SIGTERM);
    wait_until(Duration::from_secs(30), "the SIGTERM to be seen", || {
        run.log().contains("SIGTERM: stopping")
    });
    std::fs::remove_file(&gate).unwrap();
    let (status, log) = run.wait(RUN_TIMEOUT, "after SIGTERM");
    assert_eq!(status.code(), Some(143), "{log}");
    assert!(log.contains("messages not done stay in the queue"), "{log}");
    // The file is not finished: its message is visible again at once.
    let mut back = Vec::new();
    wait_until(Duration::from_secs(30), "the message back", || {
        back.extend(moto.receive(&queue, 30));
        !back.is_empty()
    });
    assert_eq!(back, vec![body]);
    assert_eq!(queue_counts(dir.path())["left"], 1);
}

/// `--exclude` (and `--include`, `--modified-since`) filter the files messages name as they
/// filter `serve`'s events: an excluded file is not delivered and its message is deleted
/// (nothing to deliver); before, every named file was delivered.
#[test]
fn files_the_selection_excludes_are_not_delivered_and_their_messages_deleted() {
    let dir = temp_dir();
    let s3 = S3Server::start();
    let moto = Moto::start();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let ids = upload(&s3, dir.path(), 2, 10);
    let queue = moto.create_queue("selected");
    moto.send(&queue, &s3_event("stage", &[key(0)]));
    moto.send(&queue, &s3_event("stage", &[key(1)]));
    let out = consumer(
        dir.path(),
        "run",
        &s3,
        &mock,
        &queue,
        &["--exclude", "data_0_1_0.snappy.parquet"],
    )
    .run_within(RUN_TIMEOUT);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("is not selected"), "{}", out.stderr);
    // File 0 holds ids 1..=10; file 1 (excluded) ids 11..=20.
    assert_each_once(&mock, &ids[..10]);
    let counts = queue_counts(dir.path());
    assert_eq!(counts["received"], 2, "{counts}");
    assert_eq!(counts["deleted"], 2, "{counts}");
}
