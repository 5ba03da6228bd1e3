//! `stagepush run --event FILE|-` against SeaweedFS (S3 notifications) and Azurite (Event
//! Grid BlobCreated), and `--shard I/N` on a local stage.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::stage_servers::{
    AzureServer, RunningServer, S3Server, StorageServer, customer_file, put_file,
};
use crate::util::{MockProcess, mock_records, plugin, run, stagepush, temp_dir};

pub(crate) const TOKEN: &str = "event-token-3b7d";

/// Records the mock stored for `endpoint`, by external id.
fn received(mock: &MockProcess, endpoint: &str) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for r in mock_records(&mock.store) {
        if r["endpointId"] == endpoint {
            let id: u64 = r["record"]["externalId"].as_str().unwrap().parse().unwrap();
            *out.entry(id).or_default() += 1;
        }
    }
    out
}

/// `run --event -` with `payload` on stdin; stage flags from `flags`.
pub(crate) fn run_event(
    dir: &Path,
    stage: &str,
    flags: impl FnOnce(&mut Command) -> Vec<String>,
    mock: &MockProcess,
    endpoint: &str,
    payload: &[u8],
) -> crate::util::Output {
    let mut cmd = stagepush(dir);
    cmd.arg("run")
        .args(["--source", stage, "--event", "-"])
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", &mock.endpoint(endpoint)])
        .args(["--token-env", "EVENT_TEST_TOKEN", "--no-progress"])
        .env("EVENT_TEST_TOKEN", TOKEN)
        .arg("--dead-letter")
        .arg(dir.join("dead"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let flags: Vec<String> = flags(&mut cmd)
        .into_iter()
        .map(|f| {
            if f == "--endpoint" {
                "--stage-endpoint".into()
            } else {
                f
            }
        })
        .collect();
    let mut child = cmd.args(flags).spawn().unwrap();
    child.stdin.take().unwrap().write_all(payload).unwrap();
    let out = child.wait_with_output().unwrap();
    crate::util::Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// An S3 notification (the documented shape) for `keys` in bucket `stage`; keys are
/// form-URL-encoded as S3 sends them.
pub(crate) fn s3_event(keys: &[&str]) -> Vec<u8> {
    let records: Vec<Value> = keys
        .iter()
        .map(|key| {
            let encoded = key.replace('=', "%3D").replace(' ', "+");
            json!({
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2024-05-01T02:15:31.482Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "stagepush",
                    "bucket": {"name": "stage", "arn": "arn:aws:s3:::stage"},
                    "object": {"key": encoded, "size": 1, "sequencer": "0055AED6DCD90281E5"}
                }
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "Records": records })).unwrap()
}

/// An Event Grid BlobCreated array for `keys` in container `stage` on Azurite.
fn event_grid(server: &AzureServer, keys: &[&str]) -> Vec<u8> {
    let events: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(n, key)| {
            json!({
                "topic": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/devstoreaccount1",
                "subject": format!("/blobServices/default/containers/stage/blobs/{key}"),
                "eventType": "Microsoft.Storage.BlobCreated",
                "eventTime": "2024-05-01T02:15:31.4829315Z",
                "id": format!("event-{n}"),
                "data": {
                    "api": "PutBlob",
                    "contentType": "application/octet-stream",
                    "contentLength": 1,
                    "blobType": "BlockBlob",
                    "url": format!("{}/devstoreaccount1/stage/{key}", server.endpoint),
                    "sequencer": "0000000000000000000000000001A2B30000000000f1e2d3"
                },
                "dataVersion": "",
                "metadataVersion": "1"
            })
        })
        .collect();
    serde_json::to_vec(&events).unwrap()
}

const KEYS: [&str; 2] = [
    "unload/date=2024-05-01/data_0_0_0.snappy.parquet",
    "unload/date=2024-05-01/Q1 report/data_0_1_0.snappy.parquet",
];

fn upload(store: &std::sync::Arc<dyn object_store::ObjectStore>, dir: &Path) {
    for (n, key) in KEYS.iter().enumerate() {
        let path = customer_file(
            dir,
            &format!("local/{n}.parquet"),
            1 + n as u64 * 100,
            100,
            1_000,
        );
        put_file(store, key, &path);
    }
    // A file no event names: it must not be delivered.
    let other = customer_file(dir, "local/other.parquet", 10_001, 50, 1_000);
    put_file(
        store,
        "unload/date=2024-05-01/data_0_9_0.snappy.parquet",
        &other,
    );
}

fn expected() -> Vec<u64> {
    (1..=200).collect()
}

#[test]
fn s3_notifications_deliver_exactly_their_objects_once() {
    notifications_deliver_exactly_their_objects_once(StorageServer::S3);
}

#[test]
fn event_grid_notifications_deliver_exactly_their_blobs_once() {
    notifications_deliver_exactly_their_objects_once(StorageServer::Azure);
}

/// The store's notification for `keys`: S3's, or an Event Grid BlobCreated array.
fn notification(server: &RunningServer, keys: &[&str]) -> Vec<u8> {
    match server {
        RunningServer::S3(_) => s3_event(keys),
        RunningServer::Azure(azure) => event_grid(azure, keys),
    }
}

/// The same notification delivered three times (stores deliver at least once): exactly
/// the objects it names, each once.
fn notifications_deliver_exactly_their_objects_once(kind: StorageServer) {
    let dir = temp_dir();
    let server = kind.start();
    upload(&server.store(), dir.path());
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let endpoint = server.store_name();
    for attempt in 0..3 {
        let out = run_event(
            dir.path(),
            &server.url("unload/"),
            |c| server.cli(c),
            &mock,
            endpoint,
            &notification(&server, &KEYS),
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "attempt {attempt}: {}",
            out.stderr
        );
    }
    let got = received(&mock, endpoint);
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), expected());
    assert!(
        got.values().all(|n| *n == 1),
        "sent more than once: {got:?}"
    );
}

#[test]
fn s3_test_events_are_acknowledged_and_other_buckets_and_bad_json_refused() {
    let dir = temp_dir();
    let s3 = S3Server::start();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    // A test event is acknowledged, an event for another bucket names it.
    let test_event = br#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-05-01T02:15:31.000Z","Bucket":"stage","RequestId":"1","HostId":"2"}"#;
    let out = run_event(
        dir.path(),
        "s3://stage/unload/",
        |c| s3.cli(c),
        &mock,
        "s3",
        test_event,
    );
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let other = String::from_utf8(s3_event(&KEYS[..1]))
        .unwrap()
        .replace("\"stage\"", "\"elsewhere\"");
    let out = run_event(
        dir.path(),
        "s3://stage/unload/",
        |c| s3.cli(c),
        &mock,
        "s3",
        other.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("elsewhere"), "{}", out.stderr);
    // Not JSON: a one-line error.
    let out = run_event(
        dir.path(),
        "s3://stage/unload/",
        |c| s3.cli(c),
        &mock,
        "s3",
        b"{oops",
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert_eq!(
        out.stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1,
        "{}",
        out.stderr
    );
}

#[test]
fn shards_partition_a_stage_and_together_deliver_every_file_once() {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    for n in 0..7u64 {
        stagepush::sample::write_customer_file(
            stage.join(format!("data_0_{n}_0.snappy.parquet")),
            1 + n * 10,
            10,
            &stagepush::sample::CustomerFileOptions {
                tombstone_fraction: 0.0,
                null_id_fraction: 0.0,
                ..Default::default()
            },
        )
        .unwrap();
    }
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let shard_run = |name: &str, flags: &[&str], env: Option<&str>| {
        let work = dir.path().join(name);
        std::fs::create_dir_all(&work).unwrap();
        let mut cmd = stagepush(&work);
        cmd.arg("run")
            .arg("--source")
            .arg(&stage)
            .arg("--plugin")
            .arg(plugin("customer-rust"))
            .args(["--endpoint", &mock.endpoint(name)])
            .args(["--token-env", "EVENT_TEST_TOKEN", "--no-progress"])
            .env("EVENT_TEST_TOKEN", TOKEN)
            .arg("--dead-letter")
            .arg(work.join("dead"))
            .args(flags);
        if let Some(index) = env {
            cmd.env("JOB_COMPLETION_INDEX", index);
        }
        run(&mut cmd)
    };
    let mut all = BTreeMap::new();
    for i in 0..3 {
        let name = format!("shard-{i}");
        let out = shard_run(&name, &["--shard", &format!("{i}/3")], None);
        assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
        for (id, n) in received(&mock, &name) {
            *all.entry(id).or_insert(0) += n;
        }
    }
    assert_eq!(
        all.keys().copied().collect::<Vec<_>>(),
        (1..=70).collect::<Vec<_>>()
    );
    assert!(all.values().all(|n| *n == 1), "{all:?}");
    // The Indexed Job form picks the same files as --shard.
    let out = shard_run("job-1", &["--shard-count", "3"], Some("1"));
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert_eq!(received(&mock, "job-1"), received(&mock, "shard-1"));
    // Usage errors.
    let out = shard_run("bad", &["--shard", "3/3"], None);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("not below the shard count"),
        "{}",
        out.stderr
    );
    let out = shard_run("bad2", &["--shard-count", "3"], None);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("JOB_COMPLETION_INDEX"),
        "{}",
        out.stderr
    );
}

/// Keys S3 can hold and notifications can name, but no stage file can have (as S3 sends
/// them, form-encoded), with what they decode to.
pub(crate) const UNUSABLE_KEYS: [(&str, &str); 4] = [
    ("unload/sub//x.parquet", "unload/sub//x.parquet"),
    ("unload/../x.parquet", "unload/../x.parquet"),
    ("unload/a%00b.parquet", "unload/a\0b.parquet"),
    ("/unload/x.parquet", "/unload/x.parquet"),
];

#[test]
fn an_s3_notification_with_unusable_keys_still_delivers_its_good_objects() {
    let dir = temp_dir();
    let s3 = S3Server::start();
    upload(&s3.store(), dir.path());
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let mut keys = vec![KEYS[0]];
    keys.extend(UNUSABLE_KEYS.iter().map(|(sent, _)| *sent));
    keys.push(KEYS[1]);
    let out = run_event(
        dir.path(),
        "s3://stage/unload/",
        |c| s3.cli(c),
        &mock,
        "bad-keys",
        &s3_event(&keys),
    );
    // The good objects are delivered; the run says some of what it was asked for is not.
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    let got = received(&mock, "bad-keys");
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), expected());
    for (_, key) in UNUSABLE_KEYS {
        let shown = format!("event: refused {key:?}: ");
        assert!(out.stderr.contains(&shown), "{shown} in\n{}", out.stderr);
    }
    // Each is a pending error of the stage, with its reason, in `status`.
    let status = run(stagepush(dir.path()).args(["status", "--json"]));
    assert_eq!(status.status.code(), Some(0), "{}", status.stderr);
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    let mut refused: Vec<(String, String)> = status["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["pendingErrors"].as_array().unwrap().clone())
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_owned(),
                e["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    refused.sort();
    let mut expected_keys: Vec<&str> = UNUSABLE_KEYS.iter().map(|(_, key)| *key).collect();
    expected_keys.sort();
    assert_eq!(
        refused.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        expected_keys
    );
    assert!(
        refused
            .iter()
            .all(|(_, reason)| reason.contains("stagepush cannot read it")),
        "{refused:?}"
    );
}

/// `aws sqs receive-message` output (`{"Messages": [...]}`), piped into `run --event -`:
/// the S3 notifications in the bodies (direct, and wrapped by SNS) are delivered, the
/// `s3:TestEvent` acknowledged; was refused as an unknown shape before.
#[test]
fn sqs_receive_message_output_delivers_the_objects_its_bodies_name() {
    let dir = temp_dir();
    let s3 = S3Server::start();
    upload(&s3.store(), dir.path());
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let (first, rest) = KEYS.split_at(1);
    let direct = String::from_utf8(s3_event(first)).unwrap();
    let sns = json!({"Type": "Notification", "MessageId": "m-2",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:stage",
        "Message": String::from_utf8(s3_event(rest)).unwrap()})
    .to_string();
    let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"stage"}"#;
    let output = json!({"Messages": [
        {"MessageId": "m-1", "ReceiptHandle": "r-1", "MD5OfBody": "x", "Body": direct},
        {"MessageId": "m-2", "ReceiptHandle": "r-2", "MD5OfBody": "x", "Body": sns},
        {"MessageId": "m-3", "ReceiptHandle": "r-3", "MD5OfBody": "x", "Body": test_event},
    ]});
    let out = run_event(
        dir.path(),
        "s3://stage/unload/",
        |c| s3.cli(c),
        &mock,
        "s3",
        &serde_json::to_vec(&output).unwrap(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("s3:TestEvent"), "{}", out.stderr);
    let got = received(&mock, "s3");
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), expected());
    assert!(
        got.values().all(|n| *n == 1),
        "sent more than once: {got:?}"
    );
}

/// An `aws sqs receive-message` batch whose messages name only keys stagepush cannot read
/// (a leading `/`, a `//`), while the objects those keys would be read as if the `/` were
/// dropped do exist (SeaweedFS even stores such keys that way; S3 keeps them apart): nothing
/// is read or sent, each key is a pending error naming it with its reason, and the run
/// finishes (3), so whatever wraps it deletes the messages. Run again (a redelivery), it
/// does the same and the pending errors stay one per key: no retry loop, no pile-up
/// (docs/unusable-keys.md).
#[test]
fn a_batch_naming_only_unusable_keys_finishes_with_pending_errors_and_reads_nothing() {
    let dir = temp_dir();
    let s3 = S3Server::start();
    upload(&s3.store(), dir.path());
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let leading = format!("/{}", KEYS[0]);
    let doubled = KEYS[0].replacen("unload/", "unload//", 1);
    let unusable = [leading.as_str(), doubled.as_str()];
    let messages: Vec<Value> = unusable
        .iter()
        .enumerate()
        .map(|(n, key)| {
            json!({"MessageId": format!("m-{n}"), "ReceiptHandle": format!("r-{n}"),
                   "MD5OfBody": "x",
                   "Body": String::from_utf8(s3_event(&[key])).unwrap()})
        })
        .collect();
    let payload = serde_json::to_vec(&json!({ "Messages": messages })).unwrap();
    let pending_errors = || -> Vec<(String, String)> {
        let status = run(stagepush(dir.path()).args(["status", "--json"]));
        assert_eq!(status.status.code(), Some(0), "{}", status.stderr);
        let status: Value = serde_json::from_str(&status.stdout).unwrap();
        let mut errors: Vec<(String, String)> = status["stages"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["pendingErrors"].as_array().unwrap().clone())
            .map(|e| {
                (
                    e["key"].as_str().unwrap().to_owned(),
                    e["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        errors.sort();
        errors
    };
    for attempt in ["first delivery", "redelivery"] {
        let out = run_event(
            dir.path(),
            "s3://stage/unload/",
            |c| s3.cli(c),
            &mock,
            "unusable",
            &payload,
        );
        assert_eq!(out.status.code(), Some(3), "{attempt}: {}", out.stderr);
        for key in unusable {
            let shown = format!("event: refused {key:?}: ");
            assert!(
                out.stderr.contains(&shown),
                "{attempt}: {shown} in\n{}",
                out.stderr
            );
        }
        assert!(
            received(&mock, "unusable").is_empty(),
            "{attempt}: read and sent another object than the one named"
        );
        let errors = pending_errors();
        let keys: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
        let mut expected_keys = unusable.to_vec();
        expected_keys.sort();
        assert_eq!(keys, expected_keys, "{attempt}: one pending error per key");
        let reason = |key: &str| &errors.iter().find(|(k, _)| k == key).unwrap().1;
        assert!(
            reason(&leading).contains("starts with `/`"),
            "{}",
            reason(&leading)
        );
        assert!(reason(&doubled).contains("`//`"), "{}", reason(&doubled));
        for (_, reason) in &errors {
            assert!(reason.contains("stagepush cannot read it"), "{reason}");
        }
    }
}
