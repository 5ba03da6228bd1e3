//! The CluedIn sink against the in-process mock: every record is delivered or rejected exactly
//! once, under faults, with the documented wire format and retry behaviour.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::util::{MOCK_TOKEN, mock_records, mock_requests, start_mock};
use stagepush::mock_cluedin::MockAnswer;
use stagepush::sink::{
    ApiToken, BodyFormat, CluedInSink, Compression, PayloadOutcome, RowRef, SinkConfig, SinkError,
    SinkStats, WireRecord,
};

const EP: &str = "6F5B4C2A-0000-0000-0000-00000000000A";

/// `n` customer-like records from `file`; `tweak(i)` may replace record `i`'s JSON.
fn records(file: &str, n: usize, tweak: impl Fn(usize) -> Option<String>) -> Vec<WireRecord> {
    let file: Arc<str> = file.into();
    let ty: Arc<str> = "/Customer".into();
    (0..n)
        .map(|i| {
            let json = tweak(i).unwrap_or_else(|| {
                format!(
                    r#"{{"externalId":"c{i}","type":"/Customer","properties":{{"customer.name":"Customer {i}","customer.email":"c{i}@example.com","customer.city":"Leeds"}}}}"#
                )
            });
            WireRecord { origin: RowRef { file: Arc::clone(&file), row: i as u64 }, entity_type: Arc::clone(&ty), json: json.into_bytes() }
        })
        .collect()
}

/// A config for tests: fast back-off, small batches.
fn config(url: String) -> SinkConfig {
    let mut c = SinkConfig::new(url);
    c.batch.max_rows = 100;
    c.retry.initial_backoff_ms = 1;
    c.retry.max_backoff_secs = 1;
    c.retry.max_attempts = 20;
    c.timeout_secs = 10;
    c
}

/// Batches `records` and runs the sink over them; returns the run's result and the outcomes.
async fn deliver_all(
    sink: &CluedInSink,
    records: &[WireRecord],
) -> (Result<SinkStats, SinkError>, Vec<PayloadOutcome>) {
    let mut batcher = sink.batcher();
    let mut batches = Vec::new();
    for r in records {
        batches.extend(batcher.push(r.clone()).expect("route"));
    }
    batches.extend(batcher.flush().expect("flush"));
    let (batch_tx, batch_rx) = mpsc::channel(2);
    let (outcome_tx, mut outcome_rx) = mpsc::channel(2);
    let feeder = tokio::spawn(async move {
        for b in batches {
            if batch_tx.send(b).await.is_err() {
                break;
            }
        }
    });
    let collector = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(o) = outcome_rx.recv().await {
            all.push(o);
        }
        all
    });
    let result = sink.run(batch_rx, outcome_tx).await;
    feeder.abort();
    (result, collector.await.expect("collector"))
}

/// The records the mock stored, as JSON values, sorted.
fn stored(store: &std::path::Path) -> Vec<Value> {
    let mut v: Vec<Value> = mock_records(store)
        .into_iter()
        .map(|r| r["record"].clone())
        .collect();
    v.sort_by_key(|v| v.to_string());
    v
}

/// The JSON of `records`, sorted like [`stored`].
fn sent(records: &[&WireRecord]) -> Vec<Value> {
    let mut v: Vec<Value> = records
        .iter()
        .map(|r| serde_json::from_slice(&r.json).expect("test JSON"))
        .collect();
    v.sort_by_key(|v| v.to_string());
    v
}

/// Every record is in exactly one of delivered / rejected; returns (delivered, rejected) rows.
fn partition(all: &[WireRecord], outcomes: &[PayloadOutcome]) -> (Vec<u64>, Vec<u64>) {
    let mut delivered: Vec<u64> = outcomes
        .iter()
        .flat_map(|o| {
            o.delivered
                .iter()
                .flat_map(|d| d.records.iter().map(|r| r.row))
        })
        .collect();
    let mut rejected: Vec<u64> = outcomes
        .iter()
        .flat_map(|o| o.rejected.iter().map(|r| r.origin.row))
        .collect();
    delivered.sort_unstable();
    rejected.sort_unstable();
    let mut both: Vec<u64> = delivered.iter().chain(&rejected).copied().collect();
    both.sort_unstable();
    let expected: Vec<u64> = all.iter().map(|r| r.origin.row).collect();
    assert_eq!(
        both, expected,
        "each record delivered or rejected exactly once"
    );
    (delivered, rejected)
}

fn statuses(store: &std::path::Path) -> Vec<Value> {
    mock_requests(store)
        .iter()
        .map(|r| r["status"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_delivers_every_record_once_as_a_gzipped_json_array() {
    let (server, store) = start_mock(|_| {}).await;
    let mut c = config(server.endpoint_url(EP));
    c.batch.max_rows = 1000;
    let sink = CluedInSink::new(&c, ApiToken::new(MOCK_TOKEN)).unwrap();
    let all = records("data_0_0_0.snappy.parquet", 2500, |_| None);
    let (result, outcomes) = deliver_all(&sink, &all).await;
    let stats = result.unwrap();

    let (delivered, rejected) = partition(&all, &outcomes);
    assert_eq!((delivered.len(), rejected.len()), (2500, 0));
    assert_eq!(stored(store.path()), sent(&all.iter().collect::<Vec<_>>()));
    let log = mock_requests(store.path());
    let mut rows: Vec<u64> = log.iter().map(|r| r["rows"].as_u64().unwrap()).collect();
    rows.sort_unstable();
    assert_eq!(rows, [500, 1000, 1000]);
    for r in &log {
        assert_eq!(r["content_type"], "application/json");
        assert_eq!(r["content_encoding"], "gzip");
        assert_eq!(r["endpoint_id"], EP);
    }
    // Receipts in the outcomes are the ones the mock issued; request ids are unique.
    let mut ours: Vec<String> = outcomes
        .iter()
        .flat_map(|o| o.delivered.iter().map(|d| d.receipt_id.clone().unwrap()))
        .collect();
    let mut theirs: Vec<String> = log
        .iter()
        .map(|r| r["receipt_id"].as_str().unwrap().to_string())
        .collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
    let mut ids: Vec<&str> = log
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.records_delivered, 2500);
    assert_eq!(stats.batches, 3);
    assert_eq!(stats.status, BTreeMap::from([(200, 3)]));
    assert!(
        stats.bytes_sent * 3 < stats.bytes_uncompressed,
        "gzip shrinks the bodies: {stats:?}"
    );
    assert_eq!(sink.stats(), stats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_sends_ndjson_without_gzip_when_configured() {
    let (server, store) = start_mock(|_| {}).await;
    let mut c = config(server.endpoint_url(EP));
    c.body = BodyFormat::Ndjson;
    c.compression = Compression::None;
    let sink = CluedInSink::new(&c, ApiToken::new(MOCK_TOKEN)).unwrap();
    let all = records("f.parquet", 250, |_| None);
    let (result, outcomes) = deliver_all(&sink, &all).await;
    let stats = result.unwrap();
    partition(&all, &outcomes);
    assert_eq!(stored(store.path()), sent(&all.iter().collect::<Vec<_>>()));
    let log = mock_requests(store.path());
    assert_eq!(log.len(), 3);
    for r in &log {
        assert_eq!(r["content_type"], "application/x-ndjson");
        assert_eq!(r["content_encoding"], Value::Null);
    }
    assert_eq!(
        stats.bytes_sent, stats.bytes_uncompressed,
        "identity bodies"
    );
    let wire: u64 = log.iter().map(|r| r["body_bytes"].as_u64().unwrap()).sum();
    // NDJSON: each record plus its newline.
    let expected: usize = all.iter().map(|r| r.json.len() + 1).sum();
    assert_eq!(wire, expected as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_loses_nothing_under_429_5xx_and_dropped_connections() {
    let (server, store) = start_mock(|a| {
        a.rate_429 = 0.15;
        a.retry_after = 0;
        a.rate_500 = 0.05;
        a.rate_503 = 0.15;
        a.rate_drop = 0.1;
        a.seed = 7;
    })
    .await;
    let mut c = config(server.endpoint_url(EP));
    c.batch.max_rows = 50;
    c.concurrency = Some(4);
    c.retry.max_attempts = 40;
    let sink = CluedInSink::new(&c, ApiToken::new(MOCK_TOKEN)).unwrap();
    let all = records("f.parquet", 2000, |_| None);
    let (result, outcomes) = deliver_all(&sink, &all).await;
    let stats = result.unwrap();
    let (delivered, rejected) = partition(&all, &outcomes);
    assert_eq!((delivered.len(), rejected.len()), (2000, 0));
    // Received == sent: nothing lost, nothing stored twice.
    assert_eq!(stored(store.path()), sent(&all.iter().collect::<Vec<_>>()));
    // The faults did happen and were retried.
    let log = statuses(store.path());
    for s in [json!(429), json!(500), json!(503), Value::Null] {
        assert!(log.contains(&s), "fault {s} injected: {log:?}");
    }
    assert_eq!(stats.requests, log.len() as u64);
    // X-Request-Id is fresh for every attempt, retries included.
    let mut ids: Vec<String> = mock_requests(store.path())
        .iter()
        .map(|r| r["request_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), log.len());
    assert_eq!(
        stats.retries,
        stats.requests - 40,
        "40 batches, one success each"
    );
    assert!(stats.transport_errors > 0);
    assert_eq!(stats.status.get(&200), Some(&40));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_waits_out_retry_after_as_the_server_asks() {
    let (server, store) = start_mock(|a| {
        a.sequence = vec![
            MockAnswer::Status(429),
            MockAnswer::Status(429),
            MockAnswer::Normal,
        ];
        a.retry_after = 1;
    })
    .await;
    let mut c = config(server.endpoint_url(EP));
    // Back-off alone would wait at most 1 ms: only Retry-After explains a 1 s gap.
    c.retry.initial_backoff_ms = 1;
    c.retry.max_backoff_secs = 0;
    let sink = CluedInSink::new(&c, ApiToken::new(MOCK_TOKEN)).unwrap();
    let all = records("f.parquet", 10, |_| None);
    let (result, outcomes) = deliver_all(&sink, &all).await;
    result.unwrap();
    partition(&all, &outcomes);
    let log = mock_requests(store.path());
    let t: Vec<f64> = log.iter().map(|r| r["t_ms"].as_f64().unwrap()).collect();
    assert_eq!(statuses(store.path()), [json!(429), json!(429), json!(200)]);
    assert!(
        t[1] - t[0] >= 1000.0,
        "first retry after {} ms",
        t[1] - t[0]
    );
    assert!(
        t[2] - t[1] >= 1000.0,
        "second retry after {} ms",
        t[2] - t[1]
    );
    assert_eq!(stored(store.path()).len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_splits_on_413_until_bodies_fit_and_dead_letters_a_record_too_large_alone() {
    const LIMIT: u64 = 2_000;
    let (server, store) = start_mock(|a| a.max_body_bytes = Some(LIMIT)).await;
    let mut c = config(server.endpoint_url(EP));
    c.compression = Compression::None;
    c.batch.max_rows = 100;
    c.concurrency = Some(2);
    let sink = CluedInSink::new(&c, ApiToken::new(MOCK_TOKEN)).unwrap();
    // ~125-byte records: 100 per batch is ~12.5 kB, over the limit; row 57 alone is 3 kB.
    let all = records("f.parquet", 300, |i| {
        (i == 57).then(|| format!(r#"{{"externalId":"big","blob":"{}"}}"#, "x".repeat(3000)))
    });
    let (result, outcomes) = deliver_all(&sink, &all).await;
    result.unwrap();
    let (delivered, rejected) = partition(&all, &outcomes);
    assert_eq!(rejected, [57]);
    assert_eq!(delivered.len(), 299);
    let dead = &outcomes.iter().flat_map(|o| &o.rejected).next().unwrap();
    assert_eq!(dead.status, 413);
    assert!(
        dead.message.contains("larger than the endpoint accepts"),
        "{}",
        dead.message
    );
    assert_eq!(dead.json, all[57].json);
    let expected: Vec<&WireRecord> = all.iter().filter(|r| r.origin.row != 57).collect();
    assert_eq!(stored(store.path()), sent(&expected));
    let log = mock_requests(store.path());
    assert!(log.iter().any(|r| r["status"] == 413));
    for r in log.iter().filter(|r| r["status"] == 200) {
        assert!(r["body_bytes"].as_u64().unwrap() <= LIMIT);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_stops_after_exactly_one_request_on_401() {
    const SECRET: &str = "wrong-token-d41d8cd98f00";
    let (server, store) = start_mock(|_| {}).await;
    let mut c = config(server.endpoint_url(EP));
    c.concurrency = Some(1);
    c.batch.max_rows = 10;
    let sink = CluedInSink::new(&c, ApiToken::new(SECRET)).unwrap();
    let all = records("f.parquet", 100, |_| None);
    let (result, outcomes) = deliver_all(&sink, &all).await;
    let err = result.unwrap_err();
    assert!(matches!(err, SinkError::Unauthorized { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("the endpoint refused the API token (401"),
        "{msg}"
    );
    assert!(outcomes.is_empty());
    assert_eq!(
        statuses(store.path()),
        [json!(401)],
        "one request, no retries, no further batches"
    );
    assert!(sink.is_stopped());
    // The token appears in no error, Debug output or stats.
    for text in [
        msg,
        format!("{err:?}"),
        format!("{sink:?}"),
        format!("{c:?}"),
        format!("{:?}", sink.stats()),
    ] {
        assert!(!text.contains(SECRET), "token leaked: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_stops_on_403() {
    let (server, store) = start_mock(|a| a.sequence = vec![MockAnswer::Status(403)]).await;
    let mut c = config(server.endpoint_url(EP));
    c.concurrency = Some(1);
    c.batch.max_rows = 10;
    let sink = CluedInSink::new(&c, ApiToken::new(MOCK_TOKEN)).unwrap();
    let (result, _) = deliver_all(&sink, &records("f.parquet", 50, |_| None)).await;
    assert!(
        matches!(result, Err(SinkError::Forbidden { .. })),
        "{result:?}"
    );
    assert_eq!(statuses(store.path()), [json!(403)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_gives_up_when_retries_are_exhausted() {
    let (server, store) = start_mock(|a| a.rate_503 = 1.0).await;
    let mut c = config(server.endpoint_url(EP));
    c.concurrency = Some(1);
    c.retry.max_attempts = 3;
    let sink = CluedInSink::new(&c, ApiToken::new(MOCK_TOKEN)).unwrap();
    let (result, _) = deliver_all(&sink, &records("f.parquet", 250, |_| None)).await;
    match result {
        Err(SinkError::RetriesExhausted { attempts, last, .. }) => {
            assert_eq!(attempts, 3);
            assert!(last.contains("503"), "{last}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        statuses(store.path()),
        [json!(503), json!(503), json!(503)],
        "no further batch after giving up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_rejects_exactly_the_rows_a_400_names_and_delivers_the_rest() {
    let (server, store) = start_mock(|_| {}).await;
    let c = config(server.endpoint_url(EP));
    let sink = CluedInSink::new(&c, ApiToken::new(MOCK_TOKEN)).unwrap();
    let bad = [7usize, 42];
    let all = records("f.parquet", 100, |i| {
        bad.contains(&i)
            .then(|| format!(r#"{{"externalId":"c{i}","note":"bell\u0007"}}"#))
    });
    let (result, outcomes) = deliver_all(&sink, &all).await;
    result.unwrap();
    let (delivered, rejected) = partition(&all, &outcomes);
    assert_eq!(rejected, [7, 42]);
    assert_eq!(delivered.len(), 98);
    let dead: Vec<_> = outcomes.iter().flat_map(|o| &o.rejected).collect();
    for d in &dead {
        assert_eq!(d.status, 400);
        assert!(d.message.contains("invalid-character"), "{}", d.message);
        assert!(d.receipt_id.is_some(), "the 400's receipt is kept");
        assert_eq!(d.json, all[d.origin.row as usize].json);
    }
    let expected: Vec<&WireRecord> = all
        .iter()
        .filter(|r| !bad.contains(&(r.origin.row as usize)))
        .collect();
    assert_eq!(stored(store.path()), sent(&expected));
    assert_eq!(
        statuses(store.path()),
        [json!(400), json!(200)],
        "one 400, then the rest in one request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_bisects_a_400_that_names_no_row_down_to_the_bad_record() {
    let (server, store) = start_mock(|_| {}).await;
    let mut c = config(server.endpoint_url(EP));
    c.batch.max_rows = 64;
    let sink = CluedInSink::new(&c, ApiToken::new(MOCK_TOKEN)).unwrap();
    // A lone surrogate escape makes the whole body invalid JSON: the mock names no row.
    let all = records("f.parquet", 64, |i| {
        (i == 37).then(|| r#"{"externalId":"c37","name":"\ud800"}"#.to_string())
    });
    let (result, outcomes) = deliver_all(&sink, &all).await;
    result.unwrap();
    let (delivered, rejected) = partition(&all, &outcomes);
    assert_eq!(rejected, [37]);
    assert_eq!(delivered.len(), 63);
    let dead = outcomes[0].rejected[0].clone();
    assert_eq!(dead.status, 400);
    assert!(
        dead.message.contains("invalid-array-json-sent"),
        "{}",
        dead.message
    );
    let expected: Vec<&WireRecord> = all.iter().filter(|r| r.origin.row != 37).collect();
    assert_eq!(stored(store.path()), sent(&expected));
    // 64 → 32 → 16 → 8 → 4 → 2 → 1: one failing and one passing half per level.
    let log = statuses(store.path());
    assert_eq!(log.iter().filter(|s| **s == json!(400)).count(), 7);
    assert_eq!(log.iter().filter(|s| **s == json!(200)).count(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_returns_warnings_with_their_records() {
    let (server, _store) = start_mock(|_| {}).await;
    let c = config(server.endpoint_url(EP));
    let sink = CluedInSink::new(&c, ApiToken::new(MOCK_TOKEN)).unwrap();
    let all = records("f.parquet", 5, |i| {
        (i == 3).then(|| r#"{"externalId":"c3","first name":"Ada"}"#.to_string())
    });
    let (result, outcomes) = deliver_all(&sink, &all).await;
    result.unwrap();
    // The other records' dotted names (`customer.name`) are warned about too.
    let warnings: Vec<_> = outcomes.iter().flat_map(|o| o.warnings()).collect();
    let spaced: Vec<_> = warnings
        .iter()
        .filter(|w| w.property.as_deref() == Some("first name"))
        .collect();
    assert_eq!(spaced.len(), 1);
    assert_eq!(spaced[0].origin.as_ref().map(|r| r.row), Some(3));
    assert_eq!(spaced[0].message_id.as_deref(), Some("space-in-property"));
    let dotted = warnings
        .iter()
        .filter(|w| w.property.as_deref() == Some("customer.email"))
        .count();
    assert_eq!(dotted, 4, "rows 0, 1, 2 and 4");
    assert!(warnings.iter().all(|w| w.origin.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_routes_entity_types_to_their_endpoints() {
    let (server, store) = start_mock(|_| {}).await;
    let mut c = config(server.endpoint_url("DEFAULT-EP"));
    c.routes
        .insert("/Contact".into(), server.endpoint_url("CONTACT-EP"));
    let sink = CluedInSink::new(&c, ApiToken::new(MOCK_TOKEN)).unwrap();
    let mut all = records("f.parquet", 30, |_| None);
    for r in all.iter_mut().filter(|r| r.origin.row.is_multiple_of(3)) {
        r.entity_type = "/Contact".into();
    }
    let (result, outcomes) = deliver_all(&sink, &all).await;
    result.unwrap();
    partition(&all, &outcomes);
    for line in mock_records(store.path()) {
        let id: u64 = line["record"]["externalId"].as_str().unwrap()[1..]
            .parse()
            .unwrap();
        let expected = if id.is_multiple_of(3) {
            "CONTACT-EP"
        } else {
            "DEFAULT-EP"
        };
        assert_eq!(line["endpointId"], expected, "{line}");
    }
    assert_eq!(mock_records(store.path()).len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_retries_timeouts_then_gives_up() {
    let (server, _store) = start_mock(|a| a.slow_ms = 1_500).await;
    let mut c = config(server.endpoint_url(EP));
    c.timeout_secs = 1;
    c.concurrency = Some(1);
    c.retry.max_attempts = 2;
    let sink = CluedInSink::new(&c, ApiToken::new(MOCK_TOKEN)).unwrap();
    let (result, outcomes) = deliver_all(&sink, &records("f.parquet", 10, |_| None)).await;
    assert!(outcomes.is_empty());
    match result {
        Err(SinkError::RetriesExhausted { attempts, last, .. }) => {
            assert_eq!(attempts, 2, "a timed-out request is retried");
            assert!(last.contains("timed out"), "{last}");
        }
        other => panic!("{other:?}"),
    }
    let stats = sink.stats();
    assert_eq!(
        (stats.requests, stats.transport_errors, stats.retries),
        (2, 2, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_stops_on_404_for_a_wrong_endpoint() {
    let (server, store) = start_mock(|_| {}).await;
    let mut c = config(format!("{}/upload/api/no-such-path/X", server.base_url()));
    c.concurrency = Some(1);
    c.batch.max_rows = 10;
    let sink = CluedInSink::new(&c, ApiToken::new(MOCK_TOKEN)).unwrap();
    let (result, _) = deliver_all(&sink, &records("f.parquet", 50, |_| None)).await;
    assert!(
        matches!(result, Err(SinkError::EndpointNotFound { .. })),
        "{result:?}"
    );
    assert_eq!(statuses(store.path()), [json!(404)]);
}
