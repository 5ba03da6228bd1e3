//! `stagepush serve` as the relay behind a Snowflake External Function: the real binary on
//! a free port, `POST /external-function/{name}` in Snowflake's wire format, records at the
//! endpoint stand-in (`stagepush mock-cluedin`).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::command::TestCommand;
use crate::util::serve::{Reply, ServeProcess as Serve};
use crate::util::{
    MockProcess, fixture, metric_value, mock_records, mock_requests, plugin, read_ndjson, temp_dir,
    wait_until,
};

const TOKEN: &str = "relay-token-91b7";
const SECRET: &str = "relay-secret-5d0a";
/// How long anything may take before a test fails.
const DEADLINE: Duration = Duration::from_secs(120);
const QUERY_ID: &str = "01b02bdf-0001-7b58-0003-27d60056b5a6";

/// `stagepush serve` on an empty local stage, delivering to `endpoint` with `plugin`.
fn start_relay(dir: &Path, plugin_name: &str, endpoint: &str, extra: &[&str]) -> Serve {
    std::fs::create_dir_all(dir.join("stage")).unwrap();
    let mut cmd = TestCommand::new(dir);
    cmd.current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--source", "stage"])
        .arg("--plugin")
        .arg(plugin(plugin_name))
        .args(["--endpoint", endpoint])
        .args(["--token-env", "RELAY_TEST_TOKEN"])
        .env("RELAY_TEST_TOKEN", TOKEN)
        .env("RELAY_TEST_SECRET", SECRET)
        .args(["--workers", "2", "--no-progress"])
        .arg("--dead-letter")
        .arg(dir.join("dead"))
        .args(extra);
    Serve::start(cmd, &dir.join("serve.log"))
}

/// The relay's own request: an External Function batch.
impl Serve {
    /// POSTs `rows` as one External Function batch `batch_id` (with the secret).
    fn post(&self, name: &str, batch_id: &str, rows: &Value) -> Reply {
        let body = json!({ "data": rows }).to_string();
        self.request(
            "POST",
            &format!("/external-function/{name}"),
            &sf_headers(batch_id, true),
            body.as_bytes(),
        )
    }
}

/// The `sf-external-function-*` headers of the fixture, with `batch_id`.
fn sf_headers(batch_id: &str, with_secret: bool) -> Vec<(&'static str, &str)> {
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("sf-external-function-format", "json"),
        ("sf-external-function-format-version", "1.0"),
        ("sf-external-function-current-query-id", QUERY_ID),
        ("sf-external-function-query-batch-id", batch_id),
        ("sf-external-function-name", "PUSH_TO_CLUEDIN"),
        ("sf-external-function-return-type", "VARIANT"),
    ];
    if with_secret {
        headers.push(("sf-custom-stagepush-token", SECRET));
    }
    headers
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Customer rows `first..first+n` as `[row_number, OBJECT]`.
fn customer_rows(first: u64, n: u64) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                let id = first + i;
                json!([i, {
                    "CUSTOMER_ID": id,
                    "NAME": format!("Customer {id}"),
                    "EMAIL": format!(" C{id}@Example.com "),
                    "COUNTRY": "AU",
                    "IS_ACTIVE": id.is_multiple_of(2),
                    "UPDATED_AT": "2025-08-20 03:14:07.000"
                }])
            })
            .collect(),
    )
}

/// Asserts a 200 answer with one `delivered` result per row, row numbers `0..n` in order.
fn assert_delivered(reply: &Reply, n: usize, serve: &Serve) -> Value {
    assert_eq!(reply.status, 200, "{}\n{}", reply.body, serve.log());
    let answer = reply.json();
    let data = answer["data"].as_array().expect("data");
    assert_eq!(data.len(), n, "{answer}");
    for (i, row) in data.iter().enumerate() {
        assert_eq!(row[0], json!(i), "{answer}");
        assert_eq!(row[1]["status"], "delivered", "{answer}");
        assert!(row[1]["receiptId"].is_string(), "{answer}");
    }
    answer
}

#[test]
fn relay_answers_the_fixture_request_plain_and_gzipped() {
    let dir = temp_dir();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let serve = start_relay(dir.path(), "echo-rust", &mock.endpoint("relay"), &[]);
    let body = std::fs::read(fixture("external-function/request.json")).unwrap();

    // As the fixture request: gzip, Content-Encoding: gzip.
    let mut headers = sf_headers("01b02bdf-0001-7b58-0003-27d60056b5a6:1:1:0:0", false);
    headers.push(("Content-Encoding", "gzip"));
    let reply = serve.request(
        "POST",
        "/external-function/customers",
        &headers,
        &gzip(&body),
    );
    let first = assert_delivered(&reply, 3, &serve);
    // The documented envelope (fixture response.json): [[row, value], …].
    let documented: Value =
        serde_json::from_slice(&std::fs::read(fixture("external-function/response.json")).unwrap())
            .unwrap();
    let rows = |v: &Value| -> Vec<Value> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[0].clone())
            .collect()
    };
    assert_eq!(rows(&first), rows(&documented));

    // The same rows, plain JSON, in reverse order with other row numbers: kept as sent.
    let mut reversed: Value = serde_json::from_slice(&body).unwrap();
    let data = reversed["data"].as_array_mut().unwrap();
    data.reverse();
    for (i, row) in data.iter_mut().enumerate() {
        row[0] = json!(10 + i);
    }
    let reply = serve.request(
        "POST",
        "/external-function/customers",
        &sf_headers("01b02bdf-0001-7b58-0003-27d60056b5a6:1:1:0:1", false),
        reversed.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(rows(&answer), [json!(10), json!(11), json!(12)], "{answer}");

    // Each row reached the endpoint once per batch: 6 records; the echo plugin saw the
    // OBJECT's keys and the positional arguments as columns.
    let records = mock_records(&mock.store);
    assert_eq!(records.len(), 6, "{records:?}");
    let first_record = records
        .iter()
        .find(|r| r["record"]["properties"]["ARG0"] == "CUST-000123")
        .unwrap_or_else(|| panic!("no record of CUST-000123 in {records:?}"));
    assert_eq!(first_record["record"]["properties"]["name"], "Acme Pty Ltd");
    assert_eq!(
        first_record["record"]["properties"]["_file"],
        format!("external-function/customers/{QUERY_ID}")
    );
}

#[test]
fn relay_delivers_concurrent_batches_once_and_replays_polls() {
    let dir = temp_dir();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let serve = start_relay(
        dir.path(),
        "customer-rust",
        &mock.endpoint("relay"),
        &["--relay-secret-env", "RELAY_TEST_SECRET"],
    );

    // 500 rows in 5 concurrent batches of 100.
    let answers: Vec<(String, Reply)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..5u64)
            .map(|b| {
                let serve = &serve;
                s.spawn(move || {
                    let id = format!("{QUERY_ID}:1:1:0:{b}");
                    let reply = serve.post("customers", &id, &customer_rows(1 + b * 100, 100));
                    (id, reply)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (_, reply) in &answers {
        assert_delivered(reply, 100, &serve);
    }
    let got = mock.received();
    assert_eq!(got.len(), 500, "{got:?}");
    assert!(got.values().all(|&n| n == 1), "{got:?}");

    // A replayed batch id: the same answer, nothing sent.
    let (id, first) = &answers[2];
    let replay = serve.post("customers", id, &customer_rows(201, 100));
    assert_eq!(replay.status, 200);
    assert_eq!(replay.body, first.body);
    assert_eq!(mock_records(&mock.store).len(), 500);
    // Polling a finished batch answers its result too.
    let polled = serve.request(
        "GET",
        "/external-function/customers",
        &sf_headers(id, true),
        b"",
    );
    assert_eq!(polled.status, 200);
    assert_eq!(polled.body, first.body);
    // The result is in the state, written before the answer.
    let stored = dir
        .path()
        .join("state/relay/customers")
        .join(format!("{id}.json"));
    assert_eq!(
        std::fs::read_to_string(&stored).unwrap_or_else(|e| panic!("{}: {e}", stored.display())),
        first.body
    );
    drop(serve);

    // After a restart, the state answers the replay: still nothing sent twice.
    let serve = start_relay(
        dir.path(),
        "customer-rust",
        &mock.endpoint("relay"),
        &["--relay-secret-env", "RELAY_TEST_SECRET"],
    );
    let replay = serve.post("customers", id, &customer_rows(201, 100));
    assert_eq!(replay.status, 200, "{}", serve.log());
    assert_eq!(replay.body, first.body);
    assert_eq!(mock_records(&mock.store).len(), 500);
}

#[test]
fn relay_answers_202_then_the_polled_result() {
    let dir = temp_dir();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let serve = start_relay(
        dir.path(),
        "customer-rust",
        &mock.endpoint("relay"),
        &["--relay-sync-secs", "0"],
    );
    let id = format!("{QUERY_ID}:2:1:0:0");
    let reply = serve.post("customers", &id, &customer_rows(1, 50));
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body, "");
    let started = Instant::now();
    let done = loop {
        let polled = serve.request(
            "GET",
            "/external-function/customers",
            &sf_headers(&id, false),
            b"",
        );
        match polled.status {
            202 => {}
            _ => break polled,
        }
        assert!(
            started.elapsed() < DEADLINE,
            "still 202 after {DEADLINE:?}:\n{}",
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_delivered(&done, 50, &serve);
    assert_eq!(mock.received().len(), 50);
    // Snowflake's retry of the POST: the stored result, nothing sent again.
    let again = serve.post("customers", &id, &customer_rows(1, 50));
    assert_eq!(again.status, 200);
    assert_eq!(again.body, done.body);
    assert_eq!(mock_records(&mock.store).len(), 50);
    // An unknown batch: 404.
    let unknown = serve.request(
        "GET",
        "/external-function/customers",
        &sf_headers("no-such-batch", false),
        b"",
    );
    assert_eq!(unknown.status, 404, "{}", unknown.body);
}

#[test]
fn relay_rows_the_plugin_rejects_are_rejected_and_dead_lettered() {
    let dir = temp_dir();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let serve = start_relay(dir.path(), "customer-rust", &mock.endpoint("relay"), &[]);
    let rows = json!([
        [0, {"CUSTOMER_ID": 1, "NAME": "Acme"}],
        [1, {"CUSTOMER_ID": null, "NAME": "Nobody"}],
        [2, {"CUSTOMER_ID": 3, "NAME": "Third"}],
        [3, {"CUSTOMER_ID": null}],
    ]);
    let reply = serve.post("customers", &format!("{QUERY_ID}:3:1:0:0"), &rows);
    assert_eq!(reply.status, 200, "{}\n{}", reply.body, serve.log());
    let answer = reply.json();
    let data = answer["data"].as_array().unwrap();
    assert_eq!(data.len(), 4);
    for (i, row) in data.iter().enumerate() {
        assert_eq!(row[0], json!(i));
    }
    assert_eq!(data[0][1]["status"], "delivered", "{answer}");
    assert_eq!(
        data[1][1],
        json!({"status": "rejected", "stage": "plugin", "message": "CUSTOMER_ID is null"})
    );
    assert_eq!(data[2][1]["status"], "delivered", "{answer}");
    assert_eq!(data[3][1]["status"], "rejected", "{answer}");

    let letters = read_ndjson(&dir.path().join("dead/dead-letters.ndjson"));
    let rejected: Vec<u64> = data
        .iter()
        .filter(|r| r[1]["status"] == "rejected")
        .map(|r| r[0].as_u64().unwrap())
        .collect();
    assert_eq!(letters.len(), rejected.len(), "{letters:?}");
    for letter in &letters {
        assert_eq!(
            letter["file"],
            format!("external-function/customers/{QUERY_ID}")
        );
        assert_eq!(letter["stage"], "plugin");
        assert!(rejected.contains(&letter["row"].as_u64().unwrap()));
    }
    let row1 = letters.iter().find(|l| l["row"] == 1).expect("row 1");
    assert_eq!(row1["message"], "CUSTOMER_ID is null");
    assert_eq!(row1["input"]["NAME"], "Nobody");
    let got = mock.received();
    assert_eq!(got.keys().collect::<Vec<_>>(), ["1", "3"], "{got:?}");

    // Another schema (lower-case keys: the SDK matches names case-insensitively) gets its
    // own plugin instance.
    let lower = json!([[0, {"customer_id": 7, "name": "lower-case keys"}]]);
    let reply = serve.post("customers", &format!("{QUERY_ID}:3:1:0:1"), &lower);
    assert_delivered(&reply, 1, &serve);
    assert!(mock.received().contains_key("7"));
}

#[test]
fn relay_requires_the_secret_and_limits_the_body() {
    let dir = temp_dir();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let serve = start_relay(
        dir.path(),
        "customer-rust",
        &mock.endpoint("relay"),
        &[
            "--relay-secret-env",
            "RELAY_TEST_SECRET",
            "--relay-max-body-bytes",
            "4096",
        ],
    );
    let body = json!({ "data": customer_rows(1, 2) }).to_string();
    let path = "/external-function/customers";
    let without = serve.request("POST", path, &sf_headers("b1", false), body.as_bytes());
    assert_eq!(without.status, 401, "{}", without.body);
    assert!(
        without.json()["error"]
            .as_str()
            .unwrap()
            .contains("sf-custom-stagepush-token")
    );
    let mut wrong = sf_headers("b1", false);
    wrong.push(("sf-custom-stagepush-token", "not-the-secret"));
    assert_eq!(
        serve.request("POST", path, &wrong, body.as_bytes()).status,
        401
    );
    let poll = serve.request("GET", path, &sf_headers("b1", false), b"");
    assert_eq!(poll.status, 401);
    assert!(mock_records(&mock.store).is_empty());

    // Over the limit: 413 with a JSON message, plain or gzipped (decompressed size).
    let big = json!({ "data": customer_rows(1, 100) }).to_string();
    assert!(big.len() > 4096);
    let reply = serve.request("POST", path, &sf_headers("b2", true), big.as_bytes());
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("4096 bytes")
    );
    let zipped = gzip(big.as_bytes());
    assert!(zipped.len() < 4096);
    let mut headers = sf_headers("b3", true);
    headers.push(("Content-Encoding", "gzip"));
    let reply = serve.request("POST", path, &headers, &zipped);
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert!(mock_records(&mock.store).is_empty());

    // With the secret and within the limit: delivered.
    let ok = serve.request("POST", path, &sf_headers("b4", true), body.as_bytes());
    assert_delivered(&ok, 2, &serve);
}

/// externalId → the receiptId of the endpoint request that stored it.
fn receipts(mock: &MockProcess) -> BTreeMap<String, String> {
    mock_records(&mock.store)
        .iter()
        .map(|r| {
            (
                r["record"]["externalId"].as_str().unwrap().to_owned(),
                r["receiptId"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn relay_concurrent_requests_share_request_bodies() {
    const REQUESTS: u64 = 8;
    const ROWS: u64 = 3;
    const BATCH_ROWS: u64 = 10;
    let dir = temp_dir();
    // The stand-in holds its answers while the gate exists: the first body keeps the only
    // delivery slot busy, so the other requests' records wait in the relay's open body.
    let gate = dir.path().join("gate");
    std::fs::write(&gate, b"").unwrap();
    let mock = MockProcess::start(
        dir.path(),
        TOKEN,
        &["--hold-while-exists", gate.to_str().unwrap()],
    );
    let serve = start_relay(
        dir.path(),
        "customer-rust",
        &mock.endpoint("relay"),
        &[
            "--concurrency",
            "1",
            "--batch-rows",
            &BATCH_ROWS.to_string(),
            "--relay-sync-secs",
            "600",
        ],
    );
    let answers: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..REQUESTS)
            .map(|b| {
                let serve = &serve;
                s.spawn(move || {
                    let id = format!("{QUERY_ID}:4:1:0:{b}");
                    serve.post("customers", &id, &customer_rows(1 + b * ROWS, ROWS))
                })
            })
            .collect();
        // Open the gate once every request has handed its records to the batcher.
        let all = (REQUESTS * ROWS) as f64;
        wait_until(DEADLINE, "every record in the relay's batcher", || {
            serve.metric_or_zero("stagepush_relay_records_total") >= all
        });
        std::fs::remove_file(&gate).unwrap();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    // Every record reached the endpoint once, in fewer bodies than requests: the first body,
    // then the rest cut at --batch-rows.
    let got = mock.received();
    assert_eq!(got.len() as u64, REQUESTS * ROWS, "{got:?}");
    assert!(got.values().all(|&n| n == 1), "{got:?}");
    let bodies: Vec<u64> = mock_requests(&mock.store)
        .iter()
        .map(|r| {
            assert_eq!(r["status"], 200, "{r}");
            r["rows"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(bodies.iter().sum::<u64>(), REQUESTS * ROWS, "{bodies:?}");
    assert!(bodies.iter().all(|&n| n <= BATCH_ROWS), "{bodies:?}");
    let most = 1 + ((REQUESTS - 1) * ROWS).div_ceil(BATCH_ROWS);
    assert!(bodies.len() as u64 <= most, "{bodies:?}");
    assert!((bodies.len() as u64) < REQUESTS, "{bodies:?}");

    // Each answer names its own rows, in order, with the receipt of the body that stored
    // each one; some bodies carried the rows of several requests.
    let stored = receipts(&mock);
    let mut requests_per_receipt: BTreeMap<String, u64> = BTreeMap::new();
    for (b, reply) in answers.iter().enumerate() {
        let answer = assert_delivered(reply, ROWS as usize, &serve);
        let mut receipts_here = std::collections::BTreeSet::new();
        for (i, row) in answer["data"].as_array().unwrap().iter().enumerate() {
            let id = (1 + b as u64 * ROWS + i as u64).to_string();
            let receipt = row[1]["receiptId"].as_str().unwrap();
            assert_eq!(
                Some(&receipt.to_owned()),
                stored.get(&id),
                "row {i} of {b}: {answer}"
            );
            receipts_here.insert(receipt.to_owned());
        }
        for receipt in receipts_here {
            *requests_per_receipt.entry(receipt).or_default() += 1;
        }
    }
    assert!(
        requests_per_receipt.values().any(|&n| n > 1),
        "no body carried rows of two requests: {requests_per_receipt:?}"
    );

    // The metrics tell the same story.
    let text = serve.metrics();
    let sample =
        |name: &str| metric_value(&text, name).unwrap_or_else(|| panic!("{name}:\n{text}"));
    assert_eq!(
        sample("stagepush_relay_body_records_count"),
        bodies.len() as f64
    );
    assert_eq!(
        sample("stagepush_relay_body_records_sum"),
        (REQUESTS * ROWS) as f64
    );
    assert_eq!(sample("stagepush_relay_records_waiting"), 0.0);
    // The relay's sink has an adaptive request limit (it starts at 4; never below 1).
    assert!(
        sample("stagepush_relay_request_concurrency") >= 1.0,
        "{text}"
    );
    assert_eq!(
        sample(r#"stagepush_relay_requests_total{method="POST",status="200"}"#),
        REQUESTS as f64
    );
    assert_eq!(
        sample(r#"stagepush_relay_rows_total{fate="delivered"}"#),
        (REQUESTS * ROWS) as f64
    );
    assert_eq!(
        sample(r#"stagepush_requests_total{status="200"}"#),
        bodies.len() as f64
    );
}

#[test]
fn relay_metrics_count_answers_rows_replays_and_deferrals() {
    let dir = temp_dir();
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let start = || {
        start_relay(
            dir.path(),
            "customer-rust",
            &mock.endpoint("relay"),
            &["--relay-sync-secs", "0"],
        )
    };
    let serve = start();
    let path = "/external-function/customers";
    // Deferred: 202, then polled to the result.
    let id = format!("{QUERY_ID}:5:1:0:0");
    let rows = json!([
        [0, {"CUSTOMER_ID": 1, "NAME": "Acme"}],
        [1, {"CUSTOMER_ID": null, "NAME": "Nobody"}],
        [2, {"CUSTOMER_ID": 3, "NAME": "Third"}],
    ]);
    let reply = serve.post("customers", &id, &rows);
    assert_eq!(reply.status, 202, "{}", reply.body);
    let mut polls = 0;
    let mut done = None;
    wait_until(DEADLINE, "the polled result", || {
        let polled = serve.request("GET", path, &sf_headers(&id, false), b"");
        polls += 1;
        let finished = polled.status != 202;
        done = Some(polled);
        finished
    });
    let done = done.unwrap();
    assert_eq!(done.status, 200, "{}", done.body);
    // A replay from memory, and requests refused before any delivery.
    assert_eq!(serve.post("customers", &id, &rows).body, done.body);
    assert_eq!(
        serve
            .request("POST", path, &sf_headers("b", false), b"not json")
            .status,
        400
    );
    assert_eq!(
        serve
            .request("GET", path, &sf_headers("none", false), b"")
            .status,
        404
    );

    let m = |sample: &str| serve.metric_or_zero(sample);
    assert_eq!(m("stagepush_relay_deferred_total"), 1.0);
    assert_eq!(
        m(r#"stagepush_relay_requests_total{method="POST",status="202"}"#),
        1.0
    );
    assert_eq!(
        m(r#"stagepush_relay_requests_total{method="POST",status="200"}"#),
        1.0
    );
    assert_eq!(
        m(r#"stagepush_relay_requests_total{method="POST",status="400"}"#),
        1.0
    );
    assert_eq!(
        m(r#"stagepush_relay_requests_total{method="GET",status="202"}"#),
        (polls - 1) as f64
    );
    assert_eq!(
        m(r#"stagepush_relay_requests_total{method="GET",status="200"}"#),
        1.0
    );
    assert_eq!(
        m(r#"stagepush_relay_requests_total{method="GET",status="404"}"#),
        1.0
    );
    assert_eq!(m(r#"stagepush_relay_rows_total{fate="delivered"}"#), 2.0);
    assert_eq!(m(r#"stagepush_relay_rows_total{fate="rejected"}"#), 1.0);
    assert_eq!(m(r#"stagepush_relay_rows_total{fate="filtered"}"#), 0.0);
    assert_eq!(m(r#"stagepush_relay_replays_total{from="memory"}"#), 1.0);
    assert_eq!(m(r#"stagepush_relay_replays_total{from="state"}"#), 0.0);
    assert_eq!(m("stagepush_relay_records_total"), 2.0);
    assert_eq!(m("stagepush_relay_body_records_count"), 1.0);
    assert_eq!(m(r#"stagepush_records_total{outcome="delivered"}"#), 2.0);
    drop(serve);

    // After a restart the state answers the replay.
    let serve = start();
    assert_eq!(serve.post("customers", &id, &rows).body, done.body);
    assert_eq!(
        serve.metric_or_zero(r#"stagepush_relay_replays_total{from="state"}"#),
        1.0
    );
    assert_eq!(
        serve.metric_or_zero("stagepush_relay_body_records_count"),
        0.0
    );
    assert_eq!(mock_requests(&mock.store).len(), 1);
}

#[test]
fn relay_does_not_follow_a_redirect_of_the_endpoint() {
    let dir = temp_dir();
    // The endpoint's first answer: a redirect to a sign-in page that answers 200.
    let mock = MockProcess::start(dir.path(), TOKEN, &["--sequence", "redirect302:/login"]);
    let serve = start_relay(dir.path(), "customer-rust", &mock.endpoint("relay"), &[]);
    let reply = serve.post(
        "customers",
        &format!("{QUERY_ID}:9:1:0:0"),
        &customer_rows(1, 20),
    );
    assert_eq!(reply.status, 502, "{}\n{}", reply.body, serve.log());
    let expected = format!(
        "the endpoint answered 302 redirecting to {}/login",
        mock.base_url
    );
    assert!(reply.body.contains(&expected), "{}", reply.body);
    assert!(serve.log().contains(&expected), "{}", serve.log());
    let answers: Vec<String> = mock_requests(&mock.store)
        .iter()
        .map(|r| r["answer"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(answers, ["redirect"], "the sign-in page was not asked for");
    assert!(mock.received().is_empty());

    // Snowflake retries the batch: the endpoint now answers, and every row is delivered.
    let reply = serve.post(
        "customers",
        &format!("{QUERY_ID}:9:1:0:0"),
        &customer_rows(1, 20),
    );
    assert_delivered(&reply, 20, &serve);
    assert_eq!(mock.received().len(), 20);
}

/// `{"data": …}` of `n` customer rows from `first`, padded to exactly `len` bytes (the
/// padding is JSON whitespace).
fn body_of_len(first: u64, n: u64, len: usize) -> Vec<u8> {
    let mut body = json!({ "data": customer_rows(first, n) })
        .to_string()
        .into_bytes();
    assert!(body.len() <= len, "{} rows take {} bytes", n, body.len());
    body.resize(len, b' ');
    body
}

#[test]
fn relay_admits_requests_by_bytes_in_flight() {
    const LEN: usize = 4000;
    let dir = temp_dir();
    // The stand-in holds its answers while the gate exists: request A stays in flight.
    let gate = dir.path().join("gate");
    std::fs::write(&gate, b"").unwrap();
    let mock = MockProcess::start(
        dir.path(),
        TOKEN,
        &["--hold-while-exists", gate.to_str().unwrap()],
    );
    // Room for one request of LEN bytes, not two.
    let serve = start_relay(
        dir.path(),
        "customer-rust",
        &mock.endpoint("relay"),
        &[
            "--relay-max-body-bytes",
            &LEN.to_string(),
            "--relay-max-inflight-bytes",
            &(LEN + LEN / 2).to_string(),
            "--relay-admission-wait-secs",
            "10",
            "--relay-sync-secs",
            "600",
        ],
    );
    let path = "/external-function/customers";
    let inflight = || serve.metric_or_zero("stagepush_relay_inflight_bytes");
    let waiting = || serve.metric_or_zero("stagepush_relay_admission_waiting");
    let answered = |status: u16| {
        serve.metric_or_zero(&format!(
            "stagepush_relay_requests_total{{method=\"POST\",status=\"{status}\"}}"
        ))
    };
    std::thread::scope(|s| {
        // A: admitted, its delivery held at the endpoint.
        let a = s.spawn(|| {
            serve.request(
                "POST",
                path,
                &sf_headers("batch-a", true),
                &body_of_len(1, 10, LEN),
            )
        });
        wait_until(DEADLINE, "request A admitted", || inflight() == LEN as f64);

        // B: its client sends half the body, waits to be admitted, and goes away. The wait
        // ends at once (499, reaching nobody), not after the 10 s admission wait (429).
        let host = serve.base.strip_prefix("http://").unwrap();
        let mut b = TcpStream::connect(host).unwrap();
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {LEN}\r\n"
        );
        for (name, value) in sf_headers("batch-b", true) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        b.write_all(head.as_bytes()).unwrap();
        b.write_all(&body_of_len(101, 10, LEN)[..LEN / 2]).unwrap();
        wait_until(DEADLINE, "request B waiting to be admitted", || {
            waiting() == 1.0
        });
        drop(b);
        wait_until(DEADLINE, "B's wait ended by its client leaving", || {
            answered(499) == 1.0
        });
        assert_eq!(waiting(), 0.0);
        assert_eq!(answered(429), 0.0, "B waited out the admission wait");
        assert_eq!(inflight(), LEN as f64, "only A is in flight");

        // C: waits the whole admission wait while A is in flight, then 429 + Retry-After.
        let c = serve.request(
            "POST",
            path,
            &sf_headers("batch-c", true),
            &body_of_len(201, 10, LEN),
        );
        assert_eq!(c.status, 429, "{}\n{}", c.body, serve.log());
        assert_eq!(c.header("retry-after"), Some("2"), "{}", c.head);
        let message = c.json()["error"].as_str().unwrap().to_owned();
        assert!(message.contains("--relay-max-inflight-bytes"), "{message}");

        // D: waits; once A's delivery is let go, A is answered and D admitted and answered.
        let d = s.spawn(|| {
            serve.request(
                "POST",
                path,
                &sf_headers("batch-d", true),
                &body_of_len(301, 10, LEN),
            )
        });
        wait_until(DEADLINE, "request D waiting to be admitted", || {
            waiting() == 1.0
        });
        std::fs::remove_file(&gate).unwrap();
        assert_delivered(&a.join().unwrap(), 10, &serve);
        assert_delivered(&d.join().unwrap(), 10, &serve);
    });
    // Nothing is left in flight or waiting; only A's and D's rows reached the endpoint.
    assert_eq!(inflight(), 0.0);
    assert_eq!(waiting(), 0.0);
    let got = mock.received();
    let expected: Vec<String> = (1..=10).chain(301..=310).map(|i| i.to_string()).collect();
    assert_eq!(got.keys().cloned().collect::<Vec<_>>().len(), 20, "{got:?}");
    for id in &expected {
        assert_eq!(got.get(id), Some(&1), "{id}: {got:?}");
    }
}

#[test]
fn relay_refuses_a_body_limit_above_the_inflight_budget() {
    let dir = temp_dir();
    std::fs::create_dir_all(dir.path().join("stage")).unwrap();
    // A serve that started would never end: killed and failed after DEADLINE.
    let out = TestCommand::new(dir.path())
        .current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--source", "stage"])
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", "http://127.0.0.1:9/upload/api/endpoint/x"])
        .args(["--token-env", "RELAY_TEST_TOKEN"])
        .env("RELAY_TEST_TOKEN", TOKEN)
        .args([
            "--relay-max-body-bytes",
            "5000",
            "--relay-max-inflight-bytes",
            "4000",
        ])
        .run_within(DEADLINE);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "--relay-max-body-bytes (5000) must be 1..=--relay-max-inflight-bytes (4000)"
        ) && out.stderr.contains("could never be admitted"),
        "{}",
        out.stderr
    );
}
