//! Unit tests of the coalescer against an in-memory stand-in for the sink.

use std::collections::HashMap;

use tokio::sync::Semaphore;

use super::*;
use crate::sink::{ApiToken, CluedInSink, DeliveredRequest, RejectedRecord, SinkConfig, SinkStats};

const ENDPOINT: &str = "http://127.0.0.1:1/upload/api/endpoint/T";
/// Longer than any test: only the quiet rule, full bodies and free slots cut bodies.
const NO_LINGER: Duration = Duration::from_secs(3600);
/// How long a test waits for an answer before failing.
const DEADLINE: Duration = Duration::from_secs(20);

/// A body as the stand-in received it.
#[derive(Debug, Clone)]
struct Seen {
    receipt: String,
    records: Vec<String>,
}

/// Delivers in memory, one receipt per body. A record whose JSON contains `reject` is
/// refused (400); a body with a `fatal` record fails with 404, one with `stop` ends with
/// [`SinkError::Stopped`]. With a gate, each delivery first takes a permit.
#[derive(Default)]
struct Fake {
    seen: Mutex<Vec<Seen>>,
    gate: Option<Semaphore>,
}

impl Fake {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Deliver for Arc<Fake> {
    fn deliver(
        &self,
        batch: Payload,
    ) -> impl Future<Output = Result<PayloadOutcome, SinkError>> + Send {
        let fake = Arc::clone(self);
        async move {
            if let Some(gate) = &fake.gate {
                gate.acquire().await.unwrap().forget();
            }
            let records: Vec<String> = (0..batch.len())
                .map(|i| String::from_utf8(batch.json(i).to_vec()).unwrap())
                .collect();
            let receipt = format!("receipt-{}", batch.id());
            fake.seen.lock().unwrap().push(Seen {
                receipt: receipt.clone(),
                records: records.clone(),
            });
            if records.iter().any(|r| r.contains("fatal")) {
                return Err(SinkError::EndpointNotFound {
                    endpoint: ENDPOINT.into(),
                });
            }
            if records.iter().any(|r| r.contains("stop")) {
                return Err(SinkError::Stopped);
            }
            let mut delivered = Vec::new();
            let mut rejected = Vec::new();
            for (meta, json) in batch.records().iter().zip(&records) {
                if json.contains("reject") {
                    rejected.push(RejectedRecord {
                        origin: meta.origin.clone(),
                        entity_type: Arc::clone(&meta.entity_type),
                        json: json.clone().into_bytes(),
                        status: 400,
                        receipt_id: Some(receipt.clone()),
                        message: "refused".into(),
                    });
                } else {
                    delivered.push(meta.origin.clone());
                }
            }
            Ok(PayloadOutcome {
                batch_id: batch.id(),
                endpoint: Arc::clone(batch.endpoint()),
                delivered: vec![DeliveredRequest {
                    receipt_id: Some(receipt),
                    request_id: "request".into(),
                    records: delivered,
                    warnings: Vec::new(),
                }],
                rejected,
                stats: SinkStats::default(),
            })
        }
    }
}

fn coalescer(
    fake: &Arc<Fake>,
    config: SinkConfig,
    slots: usize,
    linger: Duration,
) -> (Arc<Coalescer<Arc<Fake>>>, Arc<Metrics>) {
    let sink = CluedInSink::new(&config, ApiToken::new("t")).unwrap();
    let metrics = Arc::new(Metrics::default());
    let c = Coalescer::new(
        Arc::clone(fake),
        sink.batcher(),
        slots,
        linger,
        Arc::clone(&metrics),
    );
    (c, metrics)
}

fn config(max_rows: usize) -> SinkConfig {
    let mut config = SinkConfig::new(ENDPOINT);
    config.batch.max_rows = max_rows;
    config
}

/// A request's records: `{"r":"<request>","i":<i>,"tag":"<tag>"}`.
struct Request {
    name: &'static str,
    entity_type: Arc<str>,
    json: Vec<Vec<u8>>,
}

impl Request {
    fn new(name: &'static str, tags: &[&str]) -> Self {
        Self {
            name,
            entity_type: "/T".into(),
            json: tags
                .iter()
                .enumerate()
                .map(|(i, tag)| format!(r#"{{"r":"{name}","i":{i},"tag":"{tag}"}}"#).into())
                .collect(),
        }
    }

    fn push(&self, c: &Arc<Coalescer<Arc<Fake>>>, a: Announcement<Arc<Fake>>) -> Ticket {
        c.push(
            a,
            self.name,
            self.json.iter().map(|j| (&self.entity_type, j.as_slice())),
        )
    }

    /// Asserts one fate per record, in order: rejected for `reject` tags, else
    /// delivered with the receipt of the body the stand-in saw the record in.
    fn assert_fates(&self, fates: &[Fate], seen: &[Seen]) {
        let receipt_of: HashMap<&str, &str> = seen
            .iter()
            .flat_map(|s| s.records.iter().map(|r| (r.as_str(), s.receipt.as_str())))
            .collect();
        assert_eq!(fates.len(), self.json.len(), "{}: {fates:?}", self.name);
        for (json, fate) in self.json.iter().zip(fates) {
            let json = std::str::from_utf8(json).unwrap();
            let expected = if json.contains("reject") {
                Fate::Rejected {
                    stage: RowStage::Endpoint,
                    message: "HTTP 400: refused".into(),
                }
            } else {
                let receipt = receipt_of
                    .get(json)
                    .unwrap_or_else(|| panic!("{json} was not sent: {seen:?}"));
                Fate::Delivered {
                    receipt_id: Some(receipt.to_string()),
                }
            };
            assert_eq!(fate, &expected, "{json}");
        }
    }
}

async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f)
        .await
        .expect("no answer in time")
}

fn bodies(seen: &[Seen]) -> Vec<Vec<String>> {
    let mut bodies: Vec<Vec<String>> = seen.iter().map(|s| s.records.clone()).collect();
    bodies.sort();
    bodies
}

fn records_of(requests: &[&Request]) -> Vec<String> {
    requests
        .iter()
        .flat_map(|r| r.json.iter())
        .map(|j| String::from_utf8(j.clone()).unwrap())
        .collect()
}

#[tokio::test]
async fn requests_waiting_for_a_busy_slot_share_one_body() {
    let fake = Arc::new(Fake {
        gate: Some(Semaphore::new(0)),
        ..Fake::default()
    });
    let (c, metrics) = coalescer(&fake, config(1000), 1, NO_LINGER);
    let a = Request::new("a", &["x", "x", "x"]);
    let b = Request::new("b", &["x", "reject"]);
    let d = Request::new("d", &["x", "x", "x", "x"]);
    // Alone: a's body leaves at once and takes the only slot (held by the gate).
    let ta = a.push(&c, c.announce());
    // b and d wait for the slot in one open body.
    let tb = b.push(&c, c.announce());
    let td = d.push(&c, c.announce());
    assert_eq!(c.lock().batcher.pending_rows(), 6);
    assert!(
        metrics
            .render()
            .contains("stagepush_relay_records_waiting 6\n")
    );
    fake.gate.as_ref().unwrap().add_permits(2);
    let (fa, fb, fd) = (
        within(ta.wait()).await,
        within(tb.wait()).await,
        within(td.wait()).await,
    );
    let seen = fake.seen();
    let expected = vec![records_of(&[&a]), records_of(&[&b, &d])];
    assert_eq!(bodies(&seen), expected);
    a.assert_fates(&fa.unwrap(), &seen);
    b.assert_fates(&fb.unwrap(), &seen);
    d.assert_fates(&fd.unwrap(), &seen);
    let text = metrics.render();
    assert!(text.contains("stagepush_relay_records_total 9\n"), "{text}");
    assert!(
        text.contains("stagepush_relay_body_records_count 2\n"),
        "{text}"
    );
    assert!(
        text.contains("stagepush_relay_body_records_sum 9\n"),
        "{text}"
    );
    assert!(
        text.contains("stagepush_relay_records_waiting 0\n"),
        "{text}"
    );
}

#[tokio::test]
async fn bodies_are_cut_at_max_rows_across_requests() {
    let fake = Arc::new(Fake::default());
    let (c, _) = coalescer(&fake, config(3), 4, NO_LINGER);
    let a = Request::new("a", &["x"; 5]);
    let b = Request::new("b", &["x"; 4]);
    let (aa, ab) = (c.announce(), c.announce());
    // a's first 3 records fill a body; the other 2 wait for b (still announced).
    let ta = a.push(&c, aa);
    assert_eq!(c.lock().batcher.pending_rows(), 2);
    let tb = b.push(&c, ab);
    let (fa, fb) = (within(ta.wait()).await, within(tb.wait()).await);
    let seen = fake.seen();
    let all = records_of(&[&a, &b]);
    let mut expected = vec![all[0..3].to_vec(), all[3..6].to_vec(), all[6..9].to_vec()];
    expected.sort();
    assert_eq!(bodies(&seen), expected);
    a.assert_fates(&fa.unwrap(), &seen);
    b.assert_fates(&fb.unwrap(), &seen);
}

#[tokio::test]
async fn a_fatal_error_fails_only_the_requests_in_the_failing_body() {
    let fake = Arc::new(Fake::default());
    let (c, _) = coalescer(&fake, config(2), 4, NO_LINGER);
    let a = Request::new("a", &["x", "x"]);
    let b = Request::new("b", &["fatal", "x", "x"]);
    let d = Request::new("d", &["x", "x"]);
    let (aa, ab, ad) = (c.announce(), c.announce(), c.announce());
    // Bodies: [a0 a1] [b0 b1] [b2 d0] [d1].
    let ta = a.push(&c, aa);
    let tb = b.push(&c, ab);
    let td = d.push(&c, ad);
    let (fa, fb, fd) = (
        within(ta.wait()).await,
        within(tb.wait()).await,
        within(td.wait()).await,
    );
    let seen = fake.seen();
    let all = records_of(&[&a, &b, &d]);
    let mut expected = vec![
        all[0..2].to_vec(),
        all[2..4].to_vec(),
        all[4..6].to_vec(),
        all[6..7].to_vec(),
    ];
    expected.sort();
    assert_eq!(bodies(&seen), expected);
    a.assert_fates(&fa.unwrap(), &seen);
    // d shares a body with b's last record, not the failing one.
    d.assert_fates(&fd.unwrap(), &seen);
    match fb {
        Err(CoalesceError::Sink(e)) => {
            assert!(matches!(*e, SinkError::EndpointNotFound { .. }), "{e}")
        }
        other => panic!("b: {other:?}"),
    }
    // A body the stopped sink abandoned names the earlier fatal error.
    let e = Request::new("e", &["stop"]);
    let fe = within(e.push(&c, c.announce()).wait()).await;
    match fe {
        Err(CoalesceError::Abandoned { cause: Some(cause) }) => {
            assert!(cause.contains("404"), "{cause}")
        }
        other => panic!("e: {other:?}"),
    }
    assert!(c.lock().owners.is_empty());
}

#[tokio::test]
async fn the_last_announced_request_to_push_sends_at_once() {
    let fake = Arc::new(Fake::default());
    let (c, _) = coalescer(&fake, config(1000), 4, NO_LINGER);
    // Alone: sent without waiting for the (hour-long) linger.
    let a = Request::new("a", &["x", "x"]);
    let fa = within(a.push(&c, c.announce()).wait()).await;
    a.assert_fates(&fa.unwrap(), &fake.seen());
    // b waits while d is announced; d withdrawing (its plugin failed) sends b.
    let b = Request::new("b", &["x"]);
    let ad = c.announce();
    let tb = b.push(&c, c.announce());
    assert_eq!(c.lock().batcher.pending_rows(), 1);
    drop(ad);
    let fb = within(tb.wait()).await;
    let seen = fake.seen();
    assert_eq!(bodies(&seen), vec![records_of(&[&a]), records_of(&[&b])]);
    b.assert_fates(&fb.unwrap(), &seen);
}

#[tokio::test]
async fn the_linger_sends_records_while_another_request_is_running() {
    let fake = Arc::new(Fake::default());
    let (c, _) = coalescer(&fake, config(1000), 4, Duration::from_millis(10));
    let a = Request::new("a", &["x", "x"]);
    let running = c.announce();
    let ta = a.push(&c, c.announce());
    assert_eq!(c.lock().batcher.pending_rows(), 2);
    // Only the linger timer can send a's records: `running` never pushes.
    let fa = within(ta.wait()).await;
    a.assert_fates(&fa.unwrap(), &fake.seen());
    assert_eq!(c.lock().announced, 1);
    drop(running);
}

#[tokio::test]
async fn unroutable_records_are_rejected_and_the_rest_delivered() {
    let fake = Arc::new(Fake::default());
    let mut config = config(1000);
    config.endpoint = None;
    config.routes.insert("/T".into(), ENDPOINT.into());
    let (c, _) = coalescer(&fake, config, 4, NO_LINGER);
    let other: Arc<str> = "/Other".into();
    let t: Arc<str> = "/T".into();
    let records: Vec<(&Arc<str>, &[u8])> = vec![
        (&t, &br#"{"i":0}"#[..]),
        (&other, &br#"{"i":1}"#[..]),
        (&t, &br#"{"i":2}"#[..]),
    ];
    let fates = within(c.push(c.announce(), "r", records).wait())
        .await
        .unwrap();
    assert!(matches!(fates[0], Fate::Delivered { .. }), "{fates:?}");
    assert!(
        matches!(&fates[1], Fate::Rejected { stage: RowStage::Encode, message } if message.contains("/Other")),
        "{fates:?}"
    );
    assert!(matches!(fates[2], Fate::Delivered { .. }), "{fates:?}");
    // Only unroutable records: answered without a body.
    let fates = within(c.push(c.announce(), "s", vec![(&other, &b"{}"[..])]).wait())
        .await
        .unwrap();
    assert_eq!(fates.len(), 1);
    assert_eq!(fake.seen().len(), 1);
}
