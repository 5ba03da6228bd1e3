//! `stagepush run --queue URL --queue-kind azure` end to end: Event Grid BlobCreated messages
//! (base64, as Event Grid writes them) in Azurite's queue service for blobs of an Azurite blob
//! stage, delivered to `stagepush mock-cluedin`, each message deleted only once its blob is done.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;

use crate::stage_servers::{AzureQueueServer, AzureServer, customer_file, put_file};
use crate::util::{MockProcess, plugin, run, stagepush, temp_dir, wait_until};

const TOKEN: &str = "queue-azure-token-5c1e";
const QUEUE: &str = "stage-events";
/// Rows per staged file.
const ROWS: u64 = 20;

/// A BlobCreated event for `key` in container `stage`, base64-encoded as Event Grid writes
/// it to a Storage Queue (one event per message).
fn event_grid_message(blobs: &AzureServer, key: &str, id: &str) -> String {
    let event = json!({
        "topic": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/devstoreaccount1",
        "subject": format!("/blobServices/default/containers/stage/blobs/{key}"),
        "eventType": "Microsoft.Storage.BlobCreated",
        "eventTime": "2026-12-07T19:00:00.0000000Z",
        "id": id,
        "data": {
            "api": "PutBlob",
            "contentType": "application/octet-stream",
            "contentLength": 1,
            "blobType": "BlockBlob",
            "url": format!("{}/devstoreaccount1/stage/{key}", blobs.endpoint),
            "sequencer": "0000000000000000000000000001A2B30000000000f1e2d3"
        },
        "dataVersion": "",
        "metadataVersion": "1"
    });
    base64::engine::general_purpose::STANDARD.encode(event.to_string())
}

/// `files` staged files `unload/data_0_N_0.snappy.parquet` (ids `N*ROWS+1 ..= (N+1)*ROWS`),
/// `rows_per_group` rows per row group; returns their keys.
fn stage_files(blobs: &AzureServer, dir: &Path, files: u64, rows: u64) -> Vec<String> {
    let store = blobs.store();
    (0..files)
        .map(|n| {
            let key = format!("unload/data_0_{n}_0.snappy.parquet");
            let path = customer_file(dir, &format!("local/{n}.parquet"), 1 + n * rows, rows, 5);
            put_file(&store, &key, &path);
            key
        })
        .collect()
}

/// `stagepush run --queue` over the blob stage, delivering to `endpoint`; `extra` flags last
/// (`--wait-secs` is 1 unless they say).
fn queue_run(
    dir: &Path,
    blobs: &AzureServer,
    queue: &AzureQueueServer,
    endpoint: &str,
    extra: &[&str],
) -> Command {
    let mut cmd = stagepush(dir);
    let stage_flags = blobs.cli(&mut cmd);
    cmd.arg("run")
        .args(["--source", "az://stage/unload/"])
        .args(stage_flags)
        .args(["--queue", &queue.queue_url(QUEUE), "--queue-kind", "azure"])
        .args(
            ["--wait-secs", "1"]
                .iter()
                .filter(|_| !extra.contains(&"--wait-secs")),
        )
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", endpoint])
        .args(["--token-env", "QUEUE_TEST_TOKEN", "--no-progress"])
        .env("QUEUE_TEST_TOKEN", TOKEN)
        .arg("--dead-letter")
        .arg(dir.join("dead"))
        .args(extra);
    cmd
}

fn ids(mock: &MockProcess) -> std::collections::BTreeMap<u64, u64> {
    mock.received()
        .into_iter()
        .map(|(id, n)| (id.parse().expect("a numeric externalId"), n))
        .collect()
}

#[test]
fn azure_queue_run_delivers_the_blobs_of_50_messages_with_duplicates_exactly_once() {
    let dir = temp_dir();
    let blobs = AzureServer::start();
    let queue = AzureQueueServer::start();
    queue.create_queue(QUEUE);
    let keys = stage_files(&blobs, dir.path(), 20, ROWS);
    // A staged file no message names: never delivered.
    let other = customer_file(dir.path(), "local/other.parquet", 90_001, ROWS, 5);
    put_file(&blobs.store(), "unload/data_0_99_0.snappy.parquet", &other);
    // 50 messages: every file once, 30 duplicates (Event Grid delivers at least once).
    for n in 0..50 {
        let key = &keys[n % keys.len()];
        queue.send(
            QUEUE,
            &event_grid_message(&blobs, key, &format!("event-{n}")),
        );
    }
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let out = run(queue_run(
        dir.path(),
        &blobs,
        &queue,
        &mock.endpoint("azure-queue"),
        &["--max-messages", "32", "--visibility-secs", "60"],
    )
    .arg("--report")
    .arg(dir.path().join("report.json")));
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let counts = &crate::util::read_report(dir.path())["queue"];
    assert_eq!(counts["received"], 50, "{counts}");
    assert_eq!(counts["deleted"], 50, "{counts}");
    assert_eq!(counts["left"], 0, "{counts}");
    let got = ids(&mock);
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (1..=20 * ROWS).collect::<Vec<_>>()
    );
    assert!(
        got.values().all(|n| *n == 1),
        "sent more than once: {got:?}"
    );
    assert_eq!(queue.message_count(QUEUE), 0, "every message is deleted");
    // A second run finds nothing to do.
    let again = run(&mut queue_run(
        dir.path(),
        &blobs,
        &queue,
        &mock.endpoint("azure-queue"),
        &[],
    ));
    assert_eq!(again.status.code(), Some(0), "{}", again.stderr);
    assert_eq!(ids(&mock), got);
}

#[test]
fn azure_queue_run_with_the_endpoint_down_leaves_every_message_in_the_queue() {
    let dir = temp_dir();
    let blobs = AzureServer::start();
    let queue = AzureQueueServer::start();
    queue.create_queue(QUEUE);
    let keys = stage_files(&blobs, dir.path(), 5, ROWS);
    for (n, key) in keys.iter().enumerate() {
        queue.send(
            QUEUE,
            &event_grid_message(&blobs, key, &format!("event-{n}")),
        );
    }
    // Nothing listens on the endpoint's port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}/upload/api/endpoint/azure-queue");
    let out = run(&mut queue_run(
        dir.path(),
        &blobs,
        &queue,
        &endpoint,
        &["--visibility-secs", "5"],
    ));
    assert_ne!(out.status.code(), Some(0), "{}", out.stderr);
    assert_eq!(
        queue.message_count(QUEUE),
        keys.len() as u64,
        "{}",
        out.stderr
    );
    // Once the endpoint is back, a run delivers them all and empties the queue.
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    wait_until(
        Duration::from_secs(30),
        "the messages to be visible again",
        || queue.peek(QUEUE).len() == keys.len(),
    );
    let out = run(&mut queue_run(
        dir.path(),
        &blobs,
        &queue,
        &mock.endpoint("azure-queue"),
        &[],
    ));
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert_eq!(
        ids(&mock).keys().copied().collect::<Vec<_>>(),
        (1..=5 * ROWS).collect::<Vec<_>>()
    );
    assert_eq!(queue.message_count(QUEUE), 0);
}

#[test]
fn azure_queue_run_keeps_a_slow_objects_message_hidden_past_the_initial_visibility() {
    let dir = temp_dir();
    let blobs = AzureServer::start();
    let queue = AzureQueueServer::start();
    queue.create_queue(QUEUE);
    let keys = stage_files(&blobs, dir.path(), 1, ROWS);
    queue.send(QUEUE, &event_grid_message(&blobs, &keys[0], "event-slow"));
    // The endpoint holds its answers while the gate file exists.
    let gate = dir.path().join("hold");
    std::fs::write(&gate, b"").unwrap();
    let mock = MockProcess::start(
        dir.path(),
        TOKEN,
        &["--hold-while-exists", gate.to_str().unwrap()],
    );
    let visibility = Duration::from_secs(2);
    let mut child = queue_run(
        dir.path(),
        &blobs,
        &queue,
        &mock.endpoint("azure-queue"),
        &["--visibility-secs", "2"],
    )
    .arg("--report")
    .arg(dir.path().join("report.json"))
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(dir.path().join("run.stderr")).unwrap())
    .spawn()
    .unwrap();
    // The run has received the message once it is no longer visible...
    wait_until(
        Duration::from_secs(60),
        "the run to receive the message",
        || queue.peek(QUEUE).is_empty(),
    );
    // ...and keeps it hidden while its blob is held, well past the 2 s it was received with.
    let held = Instant::now();
    wait_until(
        Duration::from_secs(60),
        "three initial visibility timeouts to pass",
        || {
            let visible = queue.peek(QUEUE);
            assert!(
                visible.is_empty(),
                "the message became visible after {:?} while its blob was being delivered",
                held.elapsed()
            );
            held.elapsed() > 3 * visibility
        },
    );
    assert_eq!(queue.message_count(QUEUE), 1);
    std::fs::remove_file(&gate).unwrap();
    let status = wait_with_timeout(&mut child, Duration::from_secs(120));
    let stderr = std::fs::read_to_string(dir.path().join("run.stderr")).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let got = ids(&mock);
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (1..=ROWS).collect::<Vec<_>>()
    );
    assert!(got.values().all(|n| *n == 1), "{got:?}");
    assert_eq!(queue.message_count(QUEUE), 0);
    // Hidden by heartbeats (each a new pop receipt), and deleted with the newest receipt.
    let counts = &crate::util::read_report(dir.path())["queue"];
    assert!(counts["extended"].as_u64().unwrap() >= 3, "{counts}");
    assert_eq!(counts["deleted"], 1, "{counts}");
}

/// SIGKILL right after the run recorded its 3rd file as delivered (a failpoint: no timing):
/// the messages of the files not done stay in the queue, reappear, and the rerun delivers the
/// rest without resending what the state had recorded as acknowledged.
#[test]
fn azure_queue_run_killed_mid_delivery_leaves_its_messages_and_the_rerun_sends_nothing_twice() {
    use std::os::unix::process::ExitStatusExt;
    let dir = temp_dir();
    let blobs = AzureServer::start();
    let queue = AzureQueueServer::start();
    queue.create_queue(QUEUE);
    let keys = stage_files(&blobs, dir.path(), 10, ROWS);
    for (n, key) in keys.iter().enumerate() {
        queue.send(
            QUEUE,
            &event_grid_message(&blobs, key, &format!("event-{n}")),
        );
    }
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let killed = run(queue_run(
        dir.path(),
        &blobs,
        &queue,
        &mock.endpoint("azure-queue"),
        &["--visibility-secs", "3", "--max-messages", "32"],
    )
    .env("STAGEPUSH_FAILPOINT", "after-checkpoint:3"));
    assert_eq!(killed.status.signal(), Some(9), "{}", killed.stderr);
    let left = queue.message_count(QUEUE);
    assert!(
        (1..=10).contains(&left),
        "{left} messages left after the kill (the files not done must keep theirs)"
    );
    // The messages reappear after their visibility timeout; the rerun delivers the rest.
    let report = dir.path().join("report.json");
    let out = run(queue_run(
        dir.path(),
        &blobs,
        &queue,
        &mock.endpoint("azure-queue"),
        &["--wait-secs", "10"],
    )
    .arg("--report")
    .arg(&report));
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let got = ids(&mock);
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (1..=10 * ROWS).collect::<Vec<_>>()
    );
    // Duplicates only from what was in flight at the kill, and the rerun's report counts them.
    let duplicates: u64 = got.values().map(|n| n - 1).sum();
    let report = crate::util::read_report(dir.path());
    assert_eq!(report["queue"]["deleted"], left, "{}", report["queue"]);
    let possible = report["possibleDuplicates"]["records"].as_u64().unwrap();
    assert!(
        duplicates <= possible,
        "{duplicates} duplicates, the report says at most {possible}"
    );
    assert_eq!(queue.message_count(QUEUE), 0);
}

/// Waits for `child` up to `limit`; kills it and fails the test after.
fn wait_with_timeout(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("stagepush run --queue did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// No SAS, no key, no Entra ID identity, and no managed identity endpoint (nothing listens on
/// the one configured): the run says at once that no Azure credentials were found and where
/// it looked, and names no secret.
#[test]
fn azure_queue_run_without_credentials_says_so_at_once() {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = stagepush(dir.path());
    for (name, _) in std::env::vars() {
        if name.starts_with("AZURE_") {
            cmd.env_remove(name);
        }
    }
    cmd.env(
        "AZURE_MSI_ENDPOINT",
        format!("http://127.0.0.1:{port}/metadata/identity/oauth2/token"),
    )
    .arg("run")
    .arg("--source")
    .arg(&stage)
    .args(["--queue", "https://acct.queue.core.windows.net/events"])
    .arg("--plugin")
    .arg(plugin("customer-rust"))
    .args(["--endpoint", "http://127.0.0.1:9/upload/api/endpoint/x"])
    .args(["--token-env", "QUEUE_TEST_TOKEN", "--no-progress"])
    .env("QUEUE_TEST_TOKEN", TOKEN);
    let started = Instant::now();
    let out = run(&mut cmd);
    assert_ne!(out.status.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("no Azure credentials found")
            && out.stderr.contains("AZURE_FEDERATED_TOKEN_FILE"),
        "{}",
        out.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

/// `serve --queue` on an Azure queue: messages sent while it runs are delivered and deleted,
/// its metrics count them, and a SIGTERM stops the consumer.
#[test]
fn azure_queue_serve_delivers_messages_sent_while_it_runs() {
    let dir = temp_dir();
    let blobs = AzureServer::start();
    let queue = AzureQueueServer::start();
    queue.create_queue(QUEUE);
    let keys = stage_files(&blobs, dir.path(), 2, ROWS);
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let mut cmd = crate::util::command::TestCommand::new(dir.path());
    cmd.arg("serve");
    let stage_flags = blobs.cli(cmd.command());
    cmd.args(["--source", "az://stage/unload/"])
        .args(stage_flags)
        .args(["--queue", &queue.queue_url(QUEUE), "--queue-kind", "azure"])
        .args(["--wait-secs", "1", "--listen", "127.0.0.1:0"])
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", &mock.endpoint("azure-queue")])
        .args(["--token-env", "QUEUE_TEST_TOKEN", "--no-progress"])
        .env("QUEUE_TEST_TOKEN", TOKEN)
        .arg("--dead-letter")
        .arg(dir.path().join("dead"));
    let serve = crate::util::serve::ServeProcess::start(cmd, &dir.path().join("serve.log"));
    for (n, key) in keys.iter().enumerate() {
        queue.send(
            QUEUE,
            &event_grid_message(&blobs, key, &format!("event-{n}")),
        );
    }
    serve.wait_until(
        "serve to deliver both blobs and delete their messages",
        || {
            ids(&mock).len() == (2 * ROWS) as usize
                && serve.metric_or_zero("stagepush_queue_messages_total{event=\"deleted\"}") == 2.0
        },
    );
    let got = ids(&mock);
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (1..=2 * ROWS).collect::<Vec<_>>()
    );
    assert!(got.values().all(|n| *n == 1), "{got:?}");
    assert_eq!(queue.message_count(QUEUE), 0);
    assert_eq!(
        serve.metric("stagepush_queue_messages_total{event=\"received\"}"),
        2.0
    );
    let log = serve.stop();
    assert!(log.contains("queue consumer stopped"), "{log}");
}

/// Entra ID through the stage's credential chain (object_store's; here a token given in
/// `AZURE_STORAGE_TOKEN`): every request carries `Authorization: Bearer …` and no SAS. The
/// queue is a stand-in answering an empty Get Messages, recording what it was sent.
#[test]
fn azure_queue_run_with_an_entra_id_token_sends_it_as_a_bearer() {
    use std::io::{BufRead, BufReader, Write};
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (seen_tx, seen) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            // Recorded before the answer, so the run cannot end before its request is seen.
            let _ = seen_tx.send(head);
            let body =
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList></QueueMessagesList>";
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let mut cmd = stagepush(dir.path());
    for (name, _) in std::env::vars() {
        if name.starts_with("AZURE_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("AZURE_STORAGE_TOKEN", "entra-token-7f3a")
        .arg("run")
        .arg("--source")
        .arg(&stage)
        .args(["--queue", &format!("http://127.0.0.1:{port}/acct/events")])
        .args(["--queue-kind", "azure", "--wait-secs", "1"])
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", "http://127.0.0.1:9/upload/api/endpoint/x"])
        .args(["--token-env", "QUEUE_TEST_TOKEN", "--no-progress"])
        .env("QUEUE_TEST_TOKEN", TOKEN);
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let requests: Vec<String> = seen.try_iter().collect();
    assert!(!requests.is_empty(), "no request reached the queue");
    for request in &requests {
        let lower = request.to_ascii_lowercase();
        assert!(
            request.starts_with("GET /acct/events/messages?"),
            "{request}"
        );
        assert!(
            lower.contains("authorization: bearer entra-token-7f3a"),
            "{request}"
        );
        assert!(!lower.contains("sig="), "{request}");
    }
    assert!(!out.stderr.contains("entra-token-7f3a"), "{}", out.stderr);
}
