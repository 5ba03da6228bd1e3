//! `stagepush serve` end to end: the real binary on a free port, push notifications POSTed
//! over HTTP, files in SeaweedFS (S3) and Azurite, records at the endpoint stand-in.

use std::path::Path;

use serde_json::{Value, json};

use crate::stage_servers::{
    AzureServer, RunningServer, S3Server, StorageServer, customer_file, put_file,
};
use crate::util::command::TestCommand;
use crate::util::serve::ServeProcess as Serve;
use crate::util::{MockProcess, files_under, fixture, plugin, read_ndjson, temp_dir};

const TOKEN: &str = "serve-token-4c2e";
const ROWS: u64 = 300;

/// A `serve` command (working folder `dir`, state `dir/state`) for `source`.
fn serve_cmd(dir: &Path, source: &str, endpoint: &str, token: &str) -> TestCommand {
    let mut cmd = TestCommand::new(dir);
    cmd.current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--source", source])
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", endpoint])
        .args(["--token-env", "SERVE_TEST_TOKEN"])
        .env("SERVE_TEST_TOKEN", token)
        .args(["--workers", "1", "--no-progress"])
        .arg("--dead-letter")
        .arg(dir.join("dead"));
    cmd
}

/// Stage flags for the server (`--endpoint` of the helpers is `--stage-endpoint` here).
fn stage_flags(flags: Vec<String>) -> Vec<String> {
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

/// Pending entries in the local state `dir/state`.
fn pending(dir: &Path) -> usize {
    files_under(&dir.join("state").join("pending"), Some("json")).len()
}

fn event_fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(&format!("events/{name}"))).unwrap()).unwrap()
}

// ---- handshakes, authentication, health, metrics (no object store needed) ----

/// A serve whose stage is an empty local folder and whose endpoint is never reached.
fn local_serve(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Serve {
    std::fs::create_dir_all(dir.join("stage")).unwrap();
    let mut cmd = serve_cmd(
        dir,
        "stage",
        "http://127.0.0.1:9/upload/api/endpoint/unused",
        TOKEN,
    );
    cmd.args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Serve::start(cmd, &dir.join("serve.log"))
}

#[test]
fn serve_answers_handshakes_health_and_metrics() {
    let dir = temp_dir();
    let serve = local_serve(dir.path(), &[], &[]);

    // Event Grid validation (header + fixture body) → 200 with the validation code.
    let validation =
        std::fs::read(fixture("events/eventgrid-subscription-validation.json")).unwrap();
    let reply = serve.request(
        "POST",
        "/events",
        &[
            ("Content-Type", "application/json"),
            ("aeg-event-type", "SubscriptionValidation"),
        ],
        &validation,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        serde_json::from_str::<Value>(&reply.body).unwrap(),
        json!({"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"})
    );

    // CloudEvents abuse-protection handshake, on /events and on /.
    for path in ["/events", "/"] {
        let reply = serve.request(
            "OPTIONS",
            path,
            &[("WebHook-Request-Origin", "eventgrid.azure.net")],
            b"",
        );
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.headers["webhook-allowed-origin"],
            "eventgrid.azure.net"
        );
        assert_eq!(reply.headers["webhook-allowed-rate"], "*");
        assert!(reply.headers["allow"].contains("POST"));
    }

    // SNS subscription confirmation without --sns-confirm: 200, logged, not fetched.
    let confirm_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    confirm_listener.set_nonblocking(true).unwrap();
    let subscribe_url = format!(
        "http://{}/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:eu-west-1:111122223333:unload&Token=2336412f37",
        confirm_listener.local_addr().unwrap()
    );
    let confirmation = json!({
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37",
        "TopicArn": "arn:aws:sns:eu-west-1:111122223333:unload",
        "Message": "You have chosen to subscribe to the topic arn:aws:sns:eu-west-1:111122223333:unload.",
        "SubscribeURL": subscribe_url,
        "Timestamp": "2024-05-01T02:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000.pem"
    });
    let reply = serve.request(
        "POST",
        "/events",
        &[("x-amz-sns-message-type", "SubscriptionConfirmation")],
        confirmation.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        matches!(confirm_listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the SubscribeURL was fetched without --sns-confirm"
    );
    let log = serve.log();
    assert!(
        log.contains(&subscribe_url) && log.contains("--sns-confirm"),
        "{log}"
    );

    // Malformed payloads and other buckets: 400 with the one-line error.
    let reply = serve.request("POST", "/events", &[], b"not json");
    assert_eq!(reply.status, 400);
    assert!(
        reply.body.starts_with("the event is not JSON"),
        "{}",
        reply.body
    );
    assert_eq!(reply.body.trim_end().lines().count(), 1);
    let other_bucket = std::fs::read(fixture("events/s3-objectcreated-put.json")).unwrap();
    let reply = serve.request("POST", "/", &[], &other_bucket);
    assert_eq!(reply.status, 400);
    assert!(
        reply.body.contains("acme-snowflake-stage"),
        "{}",
        reply.body
    );

    // An s3:TestEvent is acknowledged.
    let test_event = std::fs::read(fixture("events/s3-test-event.json")).unwrap();
    let reply = serve.request("POST", "/events", &[], &test_event);
    assert_eq!(reply.status, 200, "{}", reply.body);

    let reply = serve.request("GET", "/healthz", &[], b"");
    assert_eq!((reply.status, reply.body.trim()), (200, "ok"));
    let reply = serve.request("GET", "/nowhere", &[], b"");
    assert_eq!(reply.status, 404);

    let reply = serve.request("GET", "/metrics", &[], b"");
    assert_eq!(reply.status, 200);
    assert!(
        reply.headers["content-type"].starts_with("text/plain; version=0.0.4"),
        "{:?}",
        reply.headers
    );
    for name in [
        "stagepush_rows_total",
        "stagepush_records_total",
        "stagepush_requests_total",
        "stagepush_retries_total",
        "stagepush_bytes_sent_total",
        "stagepush_plugin_seconds_total",
        "stagepush_request_concurrency",
        "stagepush_request_concurrency_changes_total",
        "stagepush_request_rtt_seconds",
        "stagepush_runs_total",
        "stagepush_events_total",
        "stagepush_queue_depth",
    ] {
        assert!(
            reply.body.contains(&format!("# TYPE {name} ")),
            "{name}:\n{}",
            reply.body
        );
    }
    assert_eq!(serve.metric("stagepush_events_total{kind=\"test\"}"), 1.0);
    assert_eq!(serve.metric("stagepush_queue_depth"), 0.0);
    serve.stop();
}

#[test]
fn serve_requires_the_shared_secret_when_configured() {
    const SECRET: &str = "hush-5e1b0f";
    let dir = temp_dir();
    let serve = local_serve(
        dir.path(),
        &["--auth-token-env", "SERVE_TEST_SECRET"],
        &[("SERVE_TEST_SECRET", SECRET)],
    );
    let test_event = std::fs::read(fixture("events/s3-test-event.json")).unwrap();
    let post = |path: &str, headers: &[(&str, &str)]| {
        serve.request("POST", path, headers, &test_event).status
    };
    assert_eq!(post("/events", &[]), 401);
    assert_eq!(post("/events", &[("X-Stagepush-Token", "wrong")]), 401);
    assert_eq!(post("/events?token=wrong", &[]), 401);
    assert_eq!(
        serve
            .request(
                "OPTIONS",
                "/events",
                &[("WebHook-Request-Origin", "x")],
                b""
            )
            .status,
        401
    );
    assert_eq!(post("/events", &[("X-Stagepush-Token", SECRET)]), 200);
    assert_eq!(post(&format!("/events?token={SECRET}"), &[]), 200);
    assert_eq!(post(&format!("/?a=1&token={SECRET}"), &[]), 200);
    // Health and metrics stay open (load balancers, scrapers).
    assert_eq!(serve.request("GET", "/healthz", &[], b"").status, 200);
    assert_eq!(serve.request("GET", "/metrics", &[], b"").status, 200);
    let log = serve.stop();
    assert!(log.contains("refused"), "{log}");
    assert!(!log.contains(SECRET), "the secret is in the log:\n{log}");
    assert!(
        !log.contains(TOKEN),
        "the CluedIn token is in the log:\n{log}"
    );

    // A missing secret variable is a usage error.
    let out = TestCommand::new(dir.path())
        .current_dir(dir.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--auth-token-env",
            "SERVE_TEST_UNSET",
        ])
        .env_remove("SERVE_TEST_UNSET")
        .run();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("SERVE_TEST_UNSET"));
}

// ---- delivery from S3 (SeaweedFS) and Azure (Azurite) ----

/// Uploads `count` customer files of [`ROWS`] rows under `unload/` (the first in a
/// `date=` partition folder, as Snowflake's `PARTITION BY` writes); their keys.
fn upload(
    store: &std::sync::Arc<dyn object_store::ObjectStore>,
    dir: &Path,
    count: u64,
) -> Vec<String> {
    (0..count)
        .map(|n| {
            let key = if n == 0 {
                format!("unload/date=2024-05-01/data_0_{n}_0.snappy.parquet")
            } else {
                format!("unload/data_0_{n}_0.snappy.parquet")
            };
            let path = customer_file(
                dir,
                &format!("local/{n}.parquet"),
                1 + n * ROWS,
                ROWS,
                1_000,
            );
            put_file(store, &key, &path);
            key
        })
        .collect()
}

/// An S3 notification naming `keys` in bucket `stage`, wrapped by SNS (the fixture's
/// shapes; keys form-encoded as S3 sends them).
fn s3_notification_via_sns(keys: &[String]) -> Vec<u8> {
    let template = event_fixture("s3-objectcreated-put.json")["Records"][0].clone();
    let records: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(n, key)| {
            let mut record = template.clone();
            record["s3"]["bucket"]["name"] = json!("stage");
            record["s3"]["bucket"]["arn"] = json!("arn:aws:s3:::stage");
            record["s3"]["object"]["key"] = json!(key.replace('=', "%3D"));
            record["s3"]["object"]["sequencer"] = json!(format!("00663186E36D8E1A5{n}"));
            record
        })
        .collect();
    let mut envelope = event_fixture("s3-objectcreated-put.sns-envelope.json");
    envelope["Message"] = json!(json!({ "Records": records }).to_string());
    envelope.to_string().into_bytes()
}

/// An Event Grid (`cloud_events` false) or CloudEvents BlobCreated event for `key` in the
/// Azurite container `stage`, with the emulator's blob URL (the account in the path).
fn azure_event(azure: &AzureServer, key: &str, id: &str, cloud_events: bool) -> Value {
    let account = stagepush::storage::AZURITE_ACCOUNT;
    let (name, source_key) = if cloud_events {
        ("cloudevents-blobcreated.json", "source")
    } else {
        ("eventgrid-blobcreated.json", "topic")
    };
    let mut event = if cloud_events {
        event_fixture(name)
    } else {
        event_fixture(name)[0].clone()
    };
    event[source_key] = json!(format!(
        "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/{account}"
    ));
    event["id"] = json!(id);
    event["subject"] = json!(format!(
        "/blobServices/default/containers/stage/blobs/{key}"
    ));
    event["data"]["url"] = json!(format!("{}/{account}/stage/{key}", azure.endpoint));
    event["data"]["contentLength"] = json!(null);
    event
}

/// A notification POSTed to `/events`: its headers, its body, and how many objects it names.
struct Notification {
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    objects: usize,
}

/// The notifications `server` sends for `keys`, as its store sends them: one S3
/// notification wrapped by SNS naming every key; for Azure, the first key in an Event Grid
/// event and the second in a CloudEvent.
fn notifications(server: &RunningServer, keys: &[String]) -> Vec<Notification> {
    match server {
        RunningServer::S3(_) => vec![Notification {
            headers: vec![("x-amz-sns-message-type", "Notification")],
            body: s3_notification_via_sns(keys),
            objects: keys.len(),
        }],
        RunningServer::Azure(azure) => vec![
            Notification {
                headers: vec![
                    ("Content-Type", "application/json"),
                    ("aeg-event-type", "Notification"),
                ],
                body: json!([azure_event(azure, &keys[0], "eg-1", false)])
                    .to_string()
                    .into_bytes(),
                objects: 1,
            },
            Notification {
                headers: vec![(
                    "Content-Type",
                    "application/cloudevents+json; charset=utf-8",
                )],
                body: azure_event(azure, &keys[1], "ce-1", true)
                    .to_string()
                    .into_bytes(),
                objects: 1,
            },
        ],
    }
}

#[test]
fn s3_notifications_are_delivered_once() {
    notifications_are_delivered_once(StorageServer::S3);
}

#[test]
fn event_grid_and_cloudevents_notifications_are_delivered_from_azurite() {
    notifications_are_delivered_once(StorageServer::Azure);
}

/// The store's notifications, each sent three times (at-least-once delivery): the records
/// once.
fn notifications_are_delivered_once(kind: StorageServer) {
    let server = kind.start();
    let dir = temp_dir();
    let keys = upload(&server.store(), dir.path(), 2);
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let mut cmd = serve_cmd(
        dir.path(),
        &server.url("unload/"),
        &mock.endpoint("serve"),
        TOKEN,
    );
    let flags = stage_flags(server.cli(cmd.command()));
    cmd.args(flags);
    let serve = Serve::start(cmd, &dir.path().join("serve.log"));

    let notifications = notifications(&server, &keys);
    const SENT: usize = 3;
    for _ in 0..SENT {
        for notification in &notifications {
            let reply = serve.request("POST", "/events", &notification.headers, &notification.body);
            assert_eq!(reply.status, 200, "{}\n{}", reply.body, serve.log());
            let accepted: Value = serde_json::from_str(&reply.body).unwrap();
            assert_eq!(
                accepted["accepted"].as_array().unwrap().len(),
                notification.objects,
                "{accepted}"
            );
        }
    }
    serve.wait_until("every record, and no pending file left", || {
        mock.received().len() as u64 == 2 * ROWS && pending(dir.path()) == 0
    });
    let got = mock.received();
    assert!(got.values().all(|n| *n == 1), "records sent twice: {got:?}");
    serve.wait_until("the queue depth to be 0", || {
        serve.metric("stagepush_queue_depth") == 0.0
    });
    assert_eq!(
        serve.metric("stagepush_rows_total{outcome=\"delivered\"}"),
        (2 * ROWS) as f64
    );
    assert_eq!(
        serve.metric("stagepush_records_total{outcome=\"delivered\"}"),
        (2 * ROWS) as f64
    );
    assert_eq!(
        serve.metric("stagepush_events_total{kind=\"created\"}"),
        (SENT * keys.len()) as f64
    );
    assert!(serve.metric("stagepush_requests_total{status=\"200\"}") >= 1.0);
    assert!(serve.metric("stagepush_bytes_sent_total") > 0.0);
    assert!(serve.metric("stagepush_runs_total") >= 1.0);
    // Every 2xx is a round-trip sample of the adaptive concurrency, whose limit is >= 1.
    assert_eq!(
        serve.metric("stagepush_request_rtt_seconds_count"),
        serve.metric("stagepush_requests_total{status=\"200\"}")
    );
    assert!(serve.metric("stagepush_request_concurrency") >= 1.0);
    serve.stop();
    assert_eq!(mock.received().len() as u64, 2 * ROWS);
}

#[test]
fn pending_files_are_delivered_after_a_restart() {
    let s3 = S3Server::start();
    let dir = temp_dir();
    let keys = upload(&s3.store(), dir.path(), 1);
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let body = s3_notification_via_sns(&keys);
    let start = |token: &str, log: &str| {
        let mut cmd = serve_cmd(
            dir.path(),
            "s3://stage/unload/",
            &mock.endpoint("serve"),
            token,
        );
        let flags = stage_flags(s3.cli(cmd.command()));
        cmd.args(flags);
        Serve::start(cmd, &dir.path().join(log))
    };

    // The endpoint refuses this server's token: the run stops, the file stays pending.
    let serve = start("a-token-the-endpoint-refuses", "serve-1.log");
    let reply = serve.request("POST", "/events", &[], &body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(pending(dir.path()), 1, "recorded before the answer");
    serve.wait_until("the refused run", || {
        serve.metric("stagepush_runs_failed_total") >= 1.0
    });
    assert_eq!(
        serve.metric("stagepush_queue_depth"),
        1.0,
        "{}\n{}",
        serve.metrics(),
        serve.log()
    );
    // A crash: the pending entry survives it.
    let log = serve.kill();
    assert!(
        log.contains("stays pending") || log.contains("stay pending"),
        "{log}"
    );
    assert_eq!(pending(dir.path()), 1);
    assert!(mock.received().is_empty());

    // The next start delivers it with no new event.
    let serve = start(TOKEN, "serve-2.log");
    serve.wait_until("the pending file's records", || {
        mock.received().len() as u64 == ROWS && pending(dir.path()) == 0
    });
    let got = mock.received();
    assert!(got.values().all(|n| *n == 1), "{got:?}");
    serve.stop();
}

#[test]
fn sigterm_stops_a_run_at_its_next_batch_and_the_next_start_finishes_it() {
    const BIG: u64 = 20_000;
    let s3 = S3Server::start();
    let dir = temp_dir();
    let path = customer_file(dir.path(), "local/big.parquet", 1, BIG, 1_000);
    let key = "unload/data_0_0_0.snappy.parquet".to_string();
    put_file(&s3.store(), &key, &path);
    // A slow endpoint: one request of 1,000 records every 150 ms at best.
    let mock = MockProcess::start(dir.path(), TOKEN, &["--slow-ms", "150"]);
    let start = |log: &str| {
        let mut cmd = serve_cmd(
            dir.path(),
            "s3://stage/unload/",
            &mock.endpoint("serve"),
            TOKEN,
        );
        cmd.args([
            "--segment-rows",
            "1000",
            "--batch-rows",
            "1000",
            "--concurrency",
            "1",
        ]);
        let flags = stage_flags(s3.cli(cmd.command()));
        cmd.args(flags);
        Serve::start(cmd, &dir.path().join(log))
    };
    let serve = start("serve-1.log");
    let reply = serve.request("POST", "/events", &[], &s3_notification_via_sns(&[key]));
    assert_eq!(reply.status, 200, "{}", reply.body);
    serve.wait_until("the first records", || !mock.received().is_empty());
    let log = serve.stop();
    let first = mock.received().len() as u64;
    assert!(
        first < BIG,
        "the run stopped early ({first} records):\n{log}"
    );
    assert_eq!(pending(dir.path()), 1, "{log}");

    let serve = start("serve-2.log");
    serve.wait_until("every record", || {
        mock.received().len() as u64 == BIG && pending(dir.path()) == 0
    });
    let log = serve.stop();
    assert!(log.contains("resuming a partly delivered file"), "{log}");
}

#[test]
fn a_401_mid_run_ends_the_processor_s_run_and_the_next_round_delivers_the_file() {
    const BIG: u64 = 20_000;
    let s3 = S3Server::start();
    let dir = temp_dir();
    let path = customer_file(dir.path(), "local/big.parquet", 1, BIG, 1_000);
    let key = "unload/data_0_0_0.snappy.parquet".to_string();
    put_file(&s3.store(), &key, &path);
    // The endpoint holds its answers until the gate goes, then refuses the first request.
    let gate = dir.path().join("gate");
    std::fs::write(&gate, b"").unwrap();
    let mock = MockProcess::start(
        dir.path(),
        TOKEN,
        &[
            "--sequence",
            "401",
            "--hold-while-exists",
            gate.to_str().unwrap(),
        ],
    );
    let mut cmd = serve_cmd(
        dir.path(),
        "s3://stage/unload/",
        &mock.endpoint("serve"),
        TOKEN,
    );
    let flags = stage_flags(s3.cli(cmd.command()));
    cmd.args(flags);
    let serve = Serve::start(cmd, &dir.path().join("serve.log"));
    let reply = serve.request("POST", "/events", &[], &s3_notification_via_sns(&[key]));
    assert_eq!(reply.status, 200, "{}", reply.body);
    // Every delivery slot holds a body, more wait behind them.
    let concurrency = stagepush::sink::concurrency::INITIAL_CONCURRENCY;
    let arrivals = || read_ndjson(&mock.store.join(stagepush::mock_cluedin::ARRIVALS_FILE)).len();
    serve.wait_until("bodies held at the endpoint", || arrivals() >= concurrency);
    std::fs::remove_file(&gate).unwrap();
    // The run ends on the 401 (it used to hang, and the processor with it) ...
    serve.wait_until("the run refused with 401 to end", || {
        serve.metric("stagepush_runs_failed_total") >= 1.0
    });
    assert!(
        serve
            .log()
            .contains("the endpoint refused the API token (401"),
        "{}",
        serve.log()
    );
    // ... and the next round delivers the file.
    serve.wait_until("every record, and no pending file left", || {
        mock.received().len() as u64 == BIG && pending(dir.path()) == 0
    });
    serve.stop();
}

#[test]
fn a_notification_with_unusable_keys_queues_its_good_objects_and_records_the_others() {
    use crate::run_event::UNUSABLE_KEYS;
    let s3 = S3Server::start();
    let dir = temp_dir();
    let good = upload(&s3.store(), dir.path(), 2);
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let mut cmd = serve_cmd(
        dir.path(),
        "s3://stage/unload/",
        &mock.endpoint("serve"),
        TOKEN,
    );
    let flags = stage_flags(s3.cli(cmd.command()));
    cmd.args(flags);
    let serve = Serve::start(cmd, &dir.path().join("serve.log"));

    // One notification: a good object, every kind of unusable key, another good object.
    let mut keys = vec![good[0].clone()];
    keys.extend(UNUSABLE_KEYS.iter().map(|(sent, _)| sent.to_string()));
    keys.push(good[1].clone());
    let reply = serve.request(
        "POST",
        "/events",
        &[("x-amz-sns-message-type", "Notification")],
        &s3_notification_via_sns(&keys),
    );
    assert_eq!(reply.status, 200, "{}\n{}", reply.body, serve.log());
    let answer: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(answer["accepted"].as_array().unwrap().len(), 2, "{answer}");
    let refused: Vec<&str> = answer["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    let unusable: Vec<&str> = UNUSABLE_KEYS.iter().map(|(_, key)| *key).collect();
    assert_eq!(refused, unusable, "{answer}");
    serve.wait_until("the good objects' records", || {
        mock.received().len() as u64 == 2 * ROWS && pending(dir.path()) == 0
    });

    // A notification with nothing usable in it: recorded, and 200, so that no sender sends
    // it again (it was 400, which Pub/Sub push and Eventarc redeliver until it expires).
    let reply = serve.request(
        "POST",
        "/events",
        &[],
        &s3_notification_via_sns(&["unload/late//y.parquet".to_string()]),
    );
    assert_eq!(reply.status, 200, "{}\n{}", reply.body, serve.log());
    let answer: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(answer["refused"][0]["key"], "unload/late//y.parquet");

    let log = serve.stop();
    for key in unusable.iter().chain(&["unload/late//y.parquet"]) {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("{key:?}")) && l.contains("cannot be delivered"))
            .unwrap_or_else(|| panic!("no log line naming {key:?}:\n{log}"));
        assert!(line.contains("ERROR"), "{line}");
    }

    // `status` shows each with its reason.
    let status = TestCommand::new(dir.path())
        .args(["status", "--json"])
        .run();
    assert_eq!(status.status.code(), Some(0), "{}", status.stderr);
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    let mut shown: Vec<String> = status["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["pendingErrors"].as_array().unwrap().clone())
        .map(|e| {
            assert!(
                e["reason"].as_str().unwrap().contains("cannot read it"),
                "{e}"
            );
            e["key"].as_str().unwrap().to_owned()
        })
        .collect();
    shown.sort();
    let mut expected: Vec<String> = unusable.iter().map(|k| k.to_string()).collect();
    expected.push("unload/late//y.parquet".into());
    expected.sort();
    assert_eq!(shown, expected);
    let text = TestCommand::new(dir.path()).arg("status").run();
    assert!(
        text.stdout
            .contains("pending errors (event keys that cannot be delivered): 5"),
        "{}",
        text.stdout
    );
}
