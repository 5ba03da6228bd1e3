//! `gs://` stages end to end against fake-gcs-server (see `stage_servers/gcs.rs`): `run`
//! delivers a stage exactly once and a rerun sends nothing; a missing bucket or object is
//! a clear error; an object-store state on fake-gcs-server is refused clearly (it does not
//! take object_store's writes); `run --event FILE` with an Eventarc CloudEvent (structured
//! mode) and a Pub/Sub push body; `serve` receiving Pub/Sub pushes and binary-mode Eventarc
//! requests. Records are checked at mock-cluedin.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::stage_servers::{BUCKET, GcsServer, customer_file};
use crate::util::command::TestCommand;
use crate::util::serve::ServeProcess;
use crate::util::{MockProcess, files_under, plugin, temp_dir};

const TOKEN: &str = "gcs-token-71d9";
/// Rows per uploaded file.
const ROWS: u64 = 100;
/// How long one `run` may take.
const RUN_DEADLINE: Duration = Duration::from_secs(180);

const KEYS: [&str; 2] = [
    "unload/date=2024-05-01/data_0_0_0.snappy.parquet",
    "unload/date=2024-05-01/Q1 report/data_0_1_0.snappy.parquet",
];

/// Uploads [`KEYS`] (ids 1..=100 and 101..=200) and one file no event names (ids from
/// 10,001); returns the object resources of [`KEYS`].
fn upload(server: &GcsServer, dir: &Path) -> Vec<Value> {
    let resources = KEYS
        .iter()
        .enumerate()
        .map(|(n, key)| {
            let path = customer_file(
                dir,
                &format!("local/{n}.parquet"),
                1 + n as u64 * ROWS,
                ROWS,
                1_000,
            );
            server.upload_file(key, &path)
        })
        .collect();
    let other = customer_file(dir, "local/other.parquet", 10_001, 50, 1_000);
    server.upload_file("unload/date=2024-05-02/data_0_9_0.snappy.parquet", &other);
    resources
}

/// A `stagepush` command for `subcommand` on the stage `source` (on `server`, unsigned
/// requests), delivering to the mock's endpoint `endpoint`, dead letters in `dir/dead`.
fn command(
    dir: &Path,
    server: &GcsServer,
    subcommand: &[&str],
    source: &str,
    mock: &MockProcess,
    endpoint: &str,
) -> TestCommand {
    command_with(dir, |c| server.cli(c), subcommand, source, mock, endpoint)
}

/// [`command`] with the store flags `flags` gives.
fn command_with(
    dir: &Path,
    flags: impl FnOnce(&mut std::process::Command) -> Vec<String>,
    subcommand: &[&str],
    source: &str,
    mock: &MockProcess,
    endpoint: &str,
) -> TestCommand {
    let mut cmd = TestCommand::new(dir);
    cmd.current_dir(dir)
        .args(subcommand)
        .args(["--source", source])
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", &mock.endpoint(endpoint)])
        .args(["--token-env", "GCS_TEST_TOKEN", "--no-progress"])
        .env("GCS_TEST_TOKEN", TOKEN)
        .arg("--dead-letter")
        .arg(dir.join("dead"));
    let flags = flags(cmd.command());
    cmd.args(flags);
    cmd
}

/// External id → how many times the mock stored it, for `endpoint`.
fn received(mock: &MockProcess, endpoint: &str) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for r in mock.records() {
        if r["endpointId"] == endpoint {
            let id: u64 = r["record"]["externalId"].as_str().unwrap().parse().unwrap();
            *out.entry(id).or_default() += 1;
        }
    }
    out
}

/// Asserts the mock holds exactly ids `1..=last` for `endpoint`, each once.
fn assert_exactly(mock: &MockProcess, endpoint: &str, last: u64) {
    let got = received(mock, endpoint);
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (1..=last).collect::<Vec<_>>(),
        "the records at {endpoint}"
    );
    assert!(
        got.values().all(|n| *n == 1),
        "sent more than once: {got:?}"
    );
}

/// An Eventarc `google.cloud.storage.object.v1.finalized` CloudEvent (structured mode) for
/// the object `resource` the server returned.
fn eventarc(resource: &Value, id: &str) -> Value {
    json!({
        "specversion": "1.0",
        "id": id,
        "source": format!("//storage.googleapis.com/projects/_/buckets/{}", resource["bucket"].as_str().unwrap()),
        "type": "google.cloud.storage.object.v1.finalized",
        "subject": format!("objects/{}", resource["name"].as_str().unwrap()),
        "time": "2024-05-01T02:15:31.482931Z",
        "datacontenttype": "application/json",
        "data": resource,
    })
}

/// A Pub/Sub push body of an `OBJECT_FINALIZE` notification (`JSON_API_V1`) for `resource`.
fn pubsub_push(resource: &Value, event_type: &str, message_id: &str) -> Value {
    use base64::Engine;
    json!({
        "message": {
            "attributes": {
                "bucketId": resource["bucket"],
                "objectId": resource["name"],
                "objectGeneration": resource["generation"],
                "eventTime": "2024-05-01T02:15:31.482931Z",
                "eventType": event_type,
                "notificationConfig": format!("projects/_/buckets/{BUCKET}/notificationConfigs/1"),
                "payloadFormat": "JSON_API_V1",
            },
            "data": base64::engine::general_purpose::STANDARD.encode(resource.to_string()),
            "messageId": message_id,
            "message_id": message_id,
            "publishTime": "2024-05-01T02:15:31.61Z",
            "publish_time": "2024-05-01T02:15:31.61Z",
        },
        "subscription": "projects/acme-data/subscriptions/stagepush-push",
    })
}

#[test]
fn gcs_stage_is_delivered_exactly_once_and_a_rerun_sends_nothing() {
    let server = GcsServer::start();
    let dir = temp_dir();
    upload(&server, dir.path());
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let mut run = command(
        dir.path(),
        &server,
        &["run"],
        &server.url("unload/"),
        &mock,
        "gcs",
    );
    let out = run.run_within(RUN_DEADLINE);
    run.check_exit(&out, 0);
    let got = received(&mock, "gcs");
    assert_eq!(got.len() as u64, 2 * ROWS + 50, "{}", run.dump(&out));
    assert!(got.values().all(|n| *n == 1), "sent twice: {got:?}");
    assert!(got.contains_key(&10_001) && got.contains_key(&(2 * ROWS)));

    let requests = mock.requests().len();
    let mut rerun = command(
        dir.path(),
        &server,
        &["run"],
        &server.url("unload/"),
        &mock,
        "gcs",
    );
    let out = rerun.run_within(RUN_DEADLINE);
    rerun.check_exit(&out, 0);
    assert_eq!(
        mock.requests().len(),
        requests,
        "the rerun posted: {}",
        rerun.dump(&out)
    );
    assert_eq!(received(&mock, "gcs"), got);
}

#[test]
fn gcs_missing_bucket_or_object_is_a_clear_error() {
    let server = GcsServer::start();
    let dir = temp_dir();
    upload(&server, dir.path());
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);

    let mut run = command(
        dir.path(),
        &server,
        &["run"],
        "gs://no-such-bucket/unload/",
        &mock,
        "gcs",
    );
    let out = run.run_within(RUN_DEADLINE);
    assert_ne!(out.status.code(), Some(0), "{}", run.dump(&out));
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("no-such-bucket"))
        .unwrap_or_else(|| panic!("the error names no bucket: {}", run.dump(&out)));
    assert!(line.starts_with("error:"), "{line}");
    assert!(line.contains("cannot list the stage"), "{line}");
    // fake-gcs-server's answer (500, retried; GCS itself answers 404 Not Found).
    assert!(line.contains("no bucket named no-such-bucket"), "{line}");

    // A stage URL naming one object that is not there: nothing to deliver, said (as for
    // every store).
    let missing = "unload/date=2024-05-01/data_9_9_9.snappy.parquet";
    let mut run = command(
        dir.path(),
        &server,
        &["run"],
        &server.url(missing),
        &mock,
        "gcs",
    );
    let out = run.run_within(RUN_DEADLINE);
    run.check_exit(&out, 0);
    assert!(
        out.stderr.contains(&format!(
            "warning: no data files in {}",
            server.url(missing)
        )),
        "{}",
        run.dump(&out)
    );

    // An event naming an object deleted since: not found, ignored with that reason.
    let mut gone = server.upload(missing, b"x");
    server.delete(missing);
    gone["size"] = json!("1");
    let path = dir.path().join("gone.json");
    std::fs::write(
        &path,
        pubsub_push(&gone, "OBJECT_FINALIZE", "m-9").to_string(),
    )
    .unwrap();
    let mut run = command(
        dir.path(),
        &server,
        &["run"],
        &server.url("unload/"),
        &mock,
        "gcs",
    );
    run.arg("--event").arg(&path);
    let out = run.run_within(RUN_DEADLINE);
    run.check_exit(&out, 0);
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("event: ignored:") && l.contains(missing))
        .unwrap_or_else(|| panic!("the missing object is not named: {}", run.dump(&out)))
        .to_owned();
    assert!(line.contains("deleted since the event?"), "{line}");
    assert!(mock.records().is_empty());
}

/// A throwaway service-account key file (an RSA key made now with `openssl`): object_store
/// signs its requests with a self-made JWT, so no token server is asked; fake-gcs-server
/// does not check them.
fn service_account(dir: &Path) -> std::path::PathBuf {
    let key = dir.join("sa-key.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .unwrap_or_else(|e| panic!("this test needs the openssl command: {e}"));
    assert!(out.status.success(), "openssl genpkey: {out:?}");
    let file = dir.join("service-account.json");
    let json = json!({
        "type": "service_account",
        "project_id": "stagepush-test",
        "private_key_id": "test-key",
        "private_key": std::fs::read_to_string(&key).unwrap(),
        "client_email": "stagepush-test@stagepush-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "http://127.0.0.1:9/token",
    });
    std::fs::write(&file, json.to_string()).unwrap();
    file
}

/// An object-store state on GCS cannot be tested on fake-gcs-server: it refuses
/// object_store's uploads (XML API `PUT`: 400 `invalid uploadType`), and object_store
/// 0.14 sends writes with a bearer token even with `--anonymous` (it skips signing reads
/// only). Either way the run stops before sending anything, with an error naming the state
/// and the cause.
#[test]
fn gcs_state_on_fake_gcs_server_is_refused_before_anything_is_sent() {
    let server = GcsServer::start();
    let dir = temp_dir();
    upload(&server, dir.path());
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let state = format!("gs://{BUCKET}/stagepush-state/");
    let stopped = |run: &mut TestCommand| {
        run.args(["--state", &state]);
        let out = run.run_within(RUN_DEADLINE);
        run.check_exit(&out, 1);
        let line = out
            .stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_else(|| panic!("no error line: {}", run.dump(&out)))
            .to_owned();
        assert!(line.contains(&format!("state store {state}")), "{line}");
        assert!(mock.records().is_empty(), "{}", run.dump(&out));
        line
    };
    // Unsigned: object_store asks for credentials for the write.
    let mut run = command(
        dir.path(),
        &server,
        &["run"],
        &server.url("unload/"),
        &mock,
        "gcs",
    );
    let line = stopped(&mut run);
    assert!(line.contains("no Google Cloud credentials found"), "{line}");
    // With a service account: fake-gcs-server refuses the upload itself.
    let key = service_account(dir.path());
    let mut run = command_with(
        dir.path(),
        |c| {
            let flags = server.cli_signed(c);
            c.env("GOOGLE_APPLICATION_CREDENTIALS", &key);
            flags
        },
        &["run"],
        &server.url("unload/"),
        &mock,
        "gcs",
    );
    let line = stopped(&mut run);
    assert!(
        line.contains("400 Bad Request") && line.contains("invalid uploadType"),
        "{line}"
    );
    assert!(server.names("stagepush-state/").is_empty());
}

#[test]
fn gcs_run_event_delivers_eventarc_and_pubsub_push_objects_exactly_once() {
    let server = GcsServer::start();
    let dir = temp_dir();
    let resources = upload(&server, dir.path());
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let events = [
        ("eventarc.json", eventarc(&resources[0], "ce-1")),
        (
            "pubsub.json",
            pubsub_push(&resources[1], "OBJECT_FINALIZE", "m-1"),
        ),
    ];
    // Each event three times (at-least-once delivery): each object once.
    for attempt in 0..3 {
        for (name, event) in &events {
            let path = dir.path().join(name);
            std::fs::write(&path, event.to_string()).unwrap();
            let mut run = command(
                dir.path(),
                &server,
                &["run"],
                &server.url("unload/"),
                &mock,
                "gcs",
            );
            run.arg("--event").arg(&path);
            let out = run.run_within(RUN_DEADLINE);
            run.check_exit(&out, 0);
            assert!(
                out.stderr.contains("event: 1 object(s) to deliver"),
                "attempt {attempt}: {}",
                run.dump(&out)
            );
        }
    }
    assert_exactly(&mock, "gcs", 2 * ROWS);

    // A deletion is ignored with a reason; nothing is sent.
    let path = dir.path().join("deleted.json");
    std::fs::write(
        &path,
        pubsub_push(&resources[0], "OBJECT_DELETE", "m-2").to_string(),
    )
    .unwrap();
    let requests = mock.requests().len();
    let mut run = command(
        dir.path(),
        &server,
        &["run"],
        &server.url("unload/"),
        &mock,
        "gcs",
    );
    run.arg("--event").arg(&path);
    let out = run.run_within(RUN_DEADLINE);
    run.check_exit(&out, 0);
    assert!(
        out.stderr
            .contains("event: ignored: GCS notification \"OBJECT_DELETE\""),
        "{}",
        run.dump(&out)
    );
    assert_eq!(mock.requests().len(), requests);

    // A creation type stagepush does not know is refused, not taken as done.
    let mut unknown = eventarc(&resources[0], "ce-2");
    unknown["type"] = json!("google.cloud.storage.object.v2.finalized");
    std::fs::write(&path, unknown.to_string()).unwrap();
    let mut run = command(
        dir.path(),
        &server,
        &["run"],
        &server.url("unload/"),
        &mock,
        "gcs",
    );
    run.arg("--event").arg(&path);
    let out = run.run_within(RUN_DEADLINE);
    run.check_exit(&out, 2);
    assert!(
        out.stderr.contains("unsupported event") && out.stderr.contains("v2.finalized"),
        "{}",
        run.dump(&out)
    );
}

/// Pending entries in the local state `dir/state`.
fn pending(dir: &Path) -> usize {
    files_under(&dir.join("state").join("pending"), Some("json")).len()
}

#[test]
fn gcs_serve_delivers_pubsub_pushes_and_binary_eventarc_requests_once() {
    let server = GcsServer::start();
    let dir = temp_dir();
    let resources = upload(&server, dir.path());
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let mut cmd = command(
        dir.path(),
        &server,
        &["serve", "--listen", "127.0.0.1:0", "--workers", "1"],
        &server.url("unload/"),
        &mock,
        "serve",
    );
    cmd.env("STAGEPUSH_LOG", "info");
    let serve = ServeProcess::start(cmd, &dir.path().join("serve.log"));

    let push = pubsub_push(&resources[0], "OBJECT_FINALIZE", "m-1")
        .to_string()
        .into_bytes();
    // Eventarc's binary content mode: the attributes in ce-* headers, the data the body.
    let event = eventarc(&resources[1], "ce-1");
    let source = event["source"].as_str().unwrap().to_owned();
    let subject = event["subject"].as_str().unwrap().to_owned();
    let binary_headers = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("ce-specversion", "1.0"),
        ("ce-type", "google.cloud.storage.object.v1.finalized"),
        ("ce-source", source.as_str()),
        ("ce-subject", subject.as_str()),
        ("ce-id", "ce-1"),
        ("ce-time", "2024-05-01T02:15:31.482931Z"),
    ];
    let binary_body = resources[1].to_string().into_bytes();
    for _ in 0..3 {
        let reply = serve.request(
            "POST",
            "/events",
            &[("Content-Type", "application/json")],
            &push,
        );
        assert_eq!(reply.status, 200, "{}\n{}", reply.body, serve.log());
        assert_eq!(reply.json()["accepted"], json!([server.url(KEYS[0])]));
        let reply = serve.request("POST", "/events", &binary_headers, &binary_body);
        assert_eq!(reply.status, 200, "{}\n{}", reply.body, serve.log());
        assert_eq!(reply.json()["accepted"], json!([server.url(KEYS[1])]));
    }
    serve.wait_until("every record, and no pending file left", || {
        received(&mock, "serve").len() as u64 == 2 * ROWS && pending(dir.path()) == 0
    });
    assert_exactly(&mock, "serve", 2 * ROWS);

    // Another event type: acknowledged (2xx), nothing queued.
    let deleted = pubsub_push(&resources[0], "OBJECT_DELETE", "m-2").to_string();
    let reply = serve.request("POST", "/events", &[], deleted.as_bytes());
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["accepted"], json!([]));
    assert_eq!(reply.json()["ignored"].as_array().unwrap().len(), 1);

    // Messages that can never be used: 400, so that Pub/Sub keeps them (redelivered, then
    // its dead-letter topic) rather than taking them as handled.
    let mut other_bucket = pubsub_push(&resources[0], "OBJECT_FINALIZE", "m-3");
    other_bucket["message"]["attributes"]["bucketId"] = json!("another-bucket");
    let mut bad_base64 = pubsub_push(&resources[0], "OBJECT_FINALIZE", "m-4");
    bad_base64["message"]["data"] = json!("%%%");
    let mut no_bucket = pubsub_push(&resources[0], "OBJECT_FINALIZE", "m-5");
    no_bucket["message"]["attributes"]
        .as_object_mut()
        .unwrap()
        .remove("bucketId");
    for (what, body, says) in [
        ("another bucket", &other_bucket, "another-bucket"),
        ("bad base64", &bad_base64, "is not base64"),
        ("no bucket", &no_bucket, "no attributes.bucketId"),
    ] {
        let reply = serve.request("POST", "/events", &[], body.to_string().as_bytes());
        assert_eq!(reply.status, 400, "{what}: {}", reply.body);
        assert!(reply.body.contains(says), "{what}: {}", reply.body);
    }
    let mut binary_unknown = binary_headers;
    binary_unknown[2] = ("ce-type", "google.cloud.storage.object.v2.finalized");
    let reply = serve.request("POST", "/events", &binary_unknown, &binary_body);
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.body.contains("unsupported event"), "{}", reply.body);

    serve.stop();
    assert_exactly(&mock, "serve", 2 * ROWS);
}

/// The store cannot be reached while a notification arrives: 503 (Pub/Sub redelivers), and
/// nothing is recorded as pending.
#[test]
fn gcs_serve_answers_503_while_the_store_is_unreachable() {
    let server = GcsServer::start();
    let dir = temp_dir();
    let resources = upload(&server, dir.path());
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let config = dir.path().join("stagepush.toml");
    std::fs::write(&config, "[source]\nmax_retries = 0\n").unwrap();
    let mut cmd = command(
        dir.path(),
        &server,
        &["serve", "--listen", "127.0.0.1:0", "--workers", "1"],
        &server.url("unload/"),
        &mock,
        "serve",
    );
    cmd.arg("--config").arg(&config);
    let serve = ServeProcess::start(cmd, &dir.path().join("serve.log"));
    drop(server);
    let push = pubsub_push(&resources[0], "OBJECT_FINALIZE", "m-1").to_string();
    let reply = serve.request("POST", "/events", &[], push.as_bytes());
    assert_eq!(reply.status, 503, "{}\n{}", reply.body, serve.log());
    assert!(
        reply.body.contains("the event can be sent again"),
        "{}",
        reply.body
    );
    assert_eq!(pending(dir.path()), 0);
    serve.stop();
    assert!(mock.records().is_empty());
}
