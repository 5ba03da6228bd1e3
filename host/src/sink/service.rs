//! Delivery: the HTTP client, the attempt loop, 413 splits, 400 row removal and bisection,
//! and the concurrent driver.
//!
//! One batch is a queue of *parts* (subsets of its records), starting with the whole batch:
//! - a part is sent until it gets a final answer; transient failures are retried on the same
//!   body per the [`RetryPolicy`] (back-off with full jitter, `Retry-After` honoured);
//! - 2xx: delivered, with the answer's `receiptId` and warnings;
//! - 413: the part is split in halves, each sent on its own; a single record that still gets
//!   413 is rejected as too large;
//! - 400 naming rows: those rows are rejected with the server's message, the rest is resent;
//! - 400 naming none: bisection (halves) down to the offending records, which are rejected;
//! - 2xx whose body is not CluedIn's JSON (a proxy's page, an empty body): delivered too (the
//!   server at the URL posted to acknowledged it), counted in
//!   [`SinkStats::responses_not_cluedin_json`], and the first per endpoint logged as a warning;
//! - 401/403/404, a 3xx, or retries exhausted: the sink stops — every `deliver` in progress
//!   returns [`SinkError::Stopped`] at its next request or back-off, no further request is
//!   made — and the error is returned. [`CluedInSink::run`] still reports the batches whose
//!   requests were answered within [`STOP_GRACE`] of the stop.
//!
//! Counters ([`SinkStats`]) reach the sink's totals as things happen (a request when it is
//! made), so a delivery abandoned by a stop is counted too.
//!
//! [`http_client`] is the only HTTP client the sink uses, so `run`, `retry` and `serve`
//! (runs and the relay) behave alike: it follows **no redirect**. A 301/302/303 would turn the
//! `POST` into a `GET` of, say, a sign-in page whose 200 would count the body delivered; a
//! 307/308 would send the records to whatever host the answer names.
//!
//! A request that failed without an answer (connection dropped, timeout) may still have been
//! stored by the endpoint; it is sent again, so delivery is at-least-once (CluedIn has no
//! idempotency key; `X-Request-Id` differs per attempt).
//!
//! Re-framing and re-compressing a part runs on tokio's blocking pool. The first attempt uses
//! the body the [`super::Batcher`] built.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use crate::tls::install_crypto_provider;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderValue, LOCATION, RETRY_AFTER};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::batcher::{Batch, Batcher, Endpoint, RecordMeta, Router};
use super::body::{Body, BodyEncoding, RecordSpans};
use super::config::SinkConfig;
use super::outcome::{
    BatchOutcome, DeliveredRequest, RejectedRecord, RowWarning, SinkStats, Stage,
};
use super::redirect::describe_location;
use super::request::{self, USER_AGENT, new_request_id};
use super::response::{IngestResponse, parse_response};
use super::retries::{FatalStatus, RetryAction, RetryPolicy, classify, parse_retry_after};
use super::{ApiToken, SinkError};

/// How long requests already sent may take to be answered once the sink stopped (see
/// [`CluedInSink::run`]): long enough for an endpoint that answers, short enough that a
/// stopped run ends within seconds.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Most response-body bytes read (answers are small; a larger body is truncated).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Characters of a body that is not CluedIn's JSON quoted in the warning about it.
pub const NOT_CLUEDIN_EXCERPT_CHARS: usize = 80;

/// The CluedIn sink. Cheap to clone (shared state behind an `Arc`).
#[derive(Clone, Debug)]
pub struct CluedInSink {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    auth: HeaderValue,
    router: Arc<Router>,
    policy: RetryPolicy,
    concurrency: usize,
    stop: watch::Sender<bool>,
    totals: Mutex<SinkStats>,
    /// Endpoints (ids) already warned about an answer that was not CluedIn's JSON.
    warned_not_cluedin: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CluedInSink")
            .field("endpoints", &self.router.endpoints)
            .field("policy", &self.policy)
            .field("concurrency", &self.concurrency)
            .field("token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// The final answer for one part.
struct Answer {
    action: RetryAction,
    status: u16,
    response: IngestResponse,
    request_id: String,
}

impl CluedInSink {
    /// Validates the configuration and builds the HTTP client ([`http_client`]).
    pub fn new(config: &SinkConfig, token: ApiToken) -> Result<Self, SinkError> {
        config.validate()?;
        let client = http_client(config)?;
        let (stop, _) = watch::channel(false);
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                auth: request::authorization(&token)?,
                router: Arc::new(Router::new(config)?),
                policy: config.retry.policy(),
                concurrency: config.concurrency,
                stop,
                totals: Mutex::new(SinkStats::default()),
                warned_not_cluedin: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// A batcher feeding this sink (one per pipeline worker).
    pub fn batcher(&self) -> Batcher {
        Batcher::new(Arc::clone(&self.inner.router))
    }

    /// The configured endpoints.
    pub fn endpoints(&self) -> &[Arc<Endpoint>] {
        &self.inner.router.endpoints
    }

    /// The most batches [`CluedInSink::run`] keeps in flight (`concurrency`).
    pub fn concurrency(&self) -> usize {
        self.inner.concurrency
    }

    /// Counters summed over every `deliver` so far.
    pub fn stats(&self) -> SinkStats {
        self.inner
            .totals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether a fatal error stopped the sink.
    pub fn is_stopped(&self) -> bool {
        *self.inner.stop.borrow()
    }

    /// Stops the sink: deliveries in progress end with [`SinkError::Stopped`] at their next
    /// request or back-off, and no further request is made.
    pub fn stop(&self) {
        self.inner.stop.send_replace(true);
    }

    /// Logs the first 2xx of `endpoint` whose body is not CluedIn's JSON (once per endpoint
    /// and sink: every one is counted in [`SinkStats::responses_not_cluedin_json`]).
    fn warn_not_cluedin(&self, endpoint: &Endpoint, status: u16, response: &IngestResponse) {
        let first = self
            .inner
            .warned_not_cluedin
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(endpoint.id.clone());
        if !first {
            return;
        }
        let body = match &response.text {
            Some(text) => format!(
                "{:?}",
                text.chars()
                    .take(NOT_CLUEDIN_EXCERPT_CHARS)
                    .collect::<String>()
            ),
            None => String::from("an empty body"),
        };
        tracing::warn!(
            "the endpoint {} answered {status} with a body that is not CluedIn's JSON ({body}): \
             its records are counted delivered, as the server acknowledged them, but CluedIn did \
             not confirm them (no receiptId); check that the URL reaches CluedIn and not a \
             proxy's page. Further such answers are counted in the report \
             (responsesNotCluedinJson), not logged",
            endpoint.url
        );
    }

    /// Delivers one batch. `Ok` names every record of the batch exactly once (delivered or
    /// rejected); `Err` is fatal for the run (see [`SinkError`]).
    pub async fn deliver(&self, batch: Batch) -> Result<BatchOutcome, SinkError> {
        let mut stats = SinkStats::default();
        let result = self.deliver_parts(batch, &mut stats).await;
        if result.is_ok() {
            self.count(&mut stats, |s| s.batches += 1);
        }
        let mut outcome = result?;
        outcome.stats = stats;
        Ok(outcome)
    }

    /// Adds to a batch's counters and, at once, to the sink's totals: a request counts from
    /// the moment it is made, also when its delivery is abandoned later (a stopped sink) and
    /// never returns.
    fn count(&self, stats: &mut SinkStats, add: impl Fn(&mut SinkStats)) {
        add(stats);
        add(&mut self.inner.totals.lock().unwrap_or_else(|p| p.into_inner()));
    }

    async fn deliver_parts(
        &self,
        batch: Batch,
        stats: &mut SinkStats,
    ) -> Result<BatchOutcome, SinkError> {
        let Batch {
            id,
            endpoint,
            records,
            meta,
            encoding,
            body,
        } = batch;
        let records = Arc::new(records);
        let mut out = BatchOutcome {
            batch_id: id,
            endpoint: Arc::clone(&endpoint),
            delivered: Vec::new(),
            rejected: Vec::new(),
            stats: SinkStats::default(),
        };
        let mut stop = self.inner.stop.subscribe();
        let mut rng = fastrand::Rng::new();
        let mut queue = VecDeque::new();
        if !meta.is_empty() {
            queue.push_back(Part {
                rows: (0..meta.len()).collect(),
                body: Some(body),
            });
        }
        while let Some(part) = queue.pop_front() {
            let body = match part.body {
                Some(body) => body,
                None => encode_part(&records, encoding, &part.rows).await?,
            };
            let answer = self
                .send(id, &endpoint, &encoding, body, stats, &mut rng, &mut stop)
                .await?;
            let Answer {
                action,
                status,
                response,
                request_id,
            } = answer;
            let receipt = response.receipt_id.clone();
            let reject =
                |rows: &[usize], message: &str, out: &mut BatchOutcome, stats: &mut SinkStats| {
                    for &i in rows {
                        self.count(stats, |s| s.records_rejected += 1);
                        out.rejected.push(RejectedRecord {
                            origin: meta[i].origin.clone(),
                            entity_type: Arc::clone(&meta[i].entity_type),
                            json: records.json(i).to_vec(),
                            status,
                            receipt_id: receipt.clone(),
                            message: message.to_string(),
                            stage: Stage::Endpoint,
                        });
                    }
                };
            match action {
                RetryAction::Successful => {
                    self.count(stats, |s| s.records_delivered += part.rows.len() as u64);
                    let warnings = warnings_of(&response, &part.rows, &meta);
                    tracing::debug!(
                        batch = id,
                        endpoint = %endpoint.id,
                        receipt_id = receipt.as_deref().unwrap_or("-"),
                        request_id = %request_id,
                        records = part.rows.len(),
                        warnings = warnings.len(),
                        "delivered"
                    );
                    out.delivered.push(DeliveredRequest {
                        receipt_id: receipt,
                        request_id,
                        records: part.rows.iter().map(|&i| meta[i].origin.clone()).collect(),
                        warnings,
                    });
                }
                RetryAction::Split if part.rows.len() > 1 => {
                    tracing::info!(
                        batch = id,
                        records = part.rows.len(),
                        "413: splitting the body in halves"
                    );
                    push_halves(&mut queue, part.rows);
                }
                RetryAction::Split => {
                    let msg = format!(
                        "the record alone is larger than the endpoint accepts (HTTP 413: {})",
                        response.summary()
                    );
                    tracing::warn!(batch = id, row = ?meta[part.rows[0]].origin, "{msg}");
                    reject(&part.rows, &msg, &mut out, stats);
                }
                RetryAction::RejectRows(named) => {
                    let mut rejected = vec![false; part.rows.len()];
                    for &n in &named {
                        rejected[n] = true;
                        let msg = response
                            .row_errors()
                            .filter(|(r, _)| *r == n)
                            .map(|(_, m)| m.describe())
                            .collect::<Vec<_>>()
                            .join("; ");
                        reject(&[part.rows[n]], &msg, &mut out, stats);
                    }
                    tracing::warn!(
                        batch = id,
                        status,
                        rejected = named.len(),
                        receipt_id = receipt.as_deref().unwrap_or("-"),
                        "rows rejected by the endpoint; resending the rest"
                    );
                    let rest: Vec<usize> = part
                        .rows
                        .iter()
                        .zip(&rejected)
                        .filter(|(_, r)| !**r)
                        .map(|(i, _)| *i)
                        .collect();
                    if !rest.is_empty() {
                        queue.push_front(Part {
                            rows: rest,
                            body: None,
                        });
                    }
                }
                RetryAction::Bisect { reason } if part.rows.len() > 1 => {
                    tracing::info!(
                        batch = id,
                        records = part.rows.len(),
                        "{reason}; bisecting to find the offending records"
                    );
                    push_halves(&mut queue, part.rows);
                }
                RetryAction::Bisect { reason } | RetryAction::Reject { reason } => {
                    tracing::warn!(
                        batch = id,
                        status,
                        records = part.rows.len(),
                        "records rejected: {reason}"
                    );
                    reject(&part.rows, &reason, &mut out, stats);
                }
                // `send` handles these itself.
                RetryAction::Retry { .. } | RetryAction::Fatal(_) => {
                    return Err(SinkError::Internal(
                        "unexpected retry action after send".into(),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Sends one body until it gets a final answer.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        batch_id: u64,
        endpoint: &Endpoint,
        encoding: &BodyEncoding,
        body: Body,
        stats: &mut SinkStats,
        rng: &mut fastrand::Rng,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Answer, SinkError> {
        let policy = self.inner.policy;
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            if *stop.borrow() {
                return Err(SinkError::Stopped);
            }
            attempt += 1;
            let request_id = new_request_id();
            self.count(stats, |s| {
                s.requests += 1;
                s.bytes_uncompressed += body.raw_len as u64;
                s.bytes_sent += body.bytes.len() as u64;
            });
            let req = request::build(
                &self.inner.client,
                endpoint,
                &self.inner.auth,
                encoding,
                body.bytes.clone(),
                &request_id,
            );
            let (action, status, response, location) = match exchange(req).await {
                Ok(reply) => {
                    self.count(stats, |s| *s.status.entry(reply.status).or_default() += 1);
                    (
                        classify(reply.status, &reply.response, reply.retry_after, body.rows),
                        reply.status,
                        reply.response,
                        reply.location,
                    )
                }
                Err(reason) => {
                    self.count(stats, |s| s.transport_errors += 1);
                    (
                        RetryAction::Retry {
                            reason,
                            retry_after: None,
                        },
                        0,
                        IngestResponse::default(),
                        None,
                    )
                }
            };
            match action {
                RetryAction::Retry {
                    reason,
                    retry_after,
                } => {
                    let elapsed = started.elapsed();
                    let delay = policy.delay(attempt, retry_after, rng);
                    if attempt >= policy.max_attempts || elapsed + delay > policy.max_elapsed {
                        self.stop();
                        return Err(SinkError::RetriesExhausted {
                            endpoint: endpoint.url.to_string(),
                            attempts: attempt,
                            elapsed_secs: elapsed.as_secs_f64(),
                            last: reason,
                        });
                    }
                    tracing::warn!(
                        batch = batch_id,
                        endpoint = %endpoint.id,
                        request_id = %request_id,
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        "transient failure, retrying: {reason}"
                    );
                    self.count(stats, |s| s.retries += 1);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.wait_for(|stopped| *stopped) => return Err(SinkError::Stopped),
                    }
                }
                RetryAction::Fatal(kind) => {
                    self.stop();
                    let url = endpoint.url.to_string();
                    let err = match kind {
                        FatalStatus::Unauthorized => SinkError::Unauthorized { endpoint: url },
                        FatalStatus::Forbidden => SinkError::Forbidden { endpoint: url },
                        FatalStatus::NotFound => SinkError::EndpointNotFound { endpoint: url },
                        FatalStatus::Redirect(status) => SinkError::Redirect {
                            location: describe_location(&endpoint.url, location.as_deref()),
                            endpoint: url,
                            status,
                        },
                    };
                    tracing::error!(batch = batch_id, request_id = %request_id, "{err}");
                    return Err(err);
                }
                action => {
                    if action == RetryAction::Successful && !response.is_cluedin_answer() {
                        self.count(stats, |s| s.responses_not_cluedin_json += 1);
                        self.warn_not_cluedin(endpoint, status, &response);
                    }
                    return Ok(Answer {
                        action,
                        status,
                        response,
                        request_id,
                    });
                }
            }
        }
    }

    /// Delivers batches from `batches` with up to `concurrency` in flight, sending each
    /// outcome to `outcomes` (in completion order; see [`BatchOutcome::batch_id`]). Returns
    /// the sink's totals when `batches` is closed and drained.
    ///
    /// Once the sink stops (a batch failed fatally, or [`CluedInSink::stop`] was called), no
    /// further batch is taken and no further request is made: deliveries in progress end at
    /// their next request or back-off, and a request already sent gets up to
    /// [`STOP_GRACE`] for its answer. Every batch that finished by then still has its outcome
    /// sent, so what the endpoint acknowledged is not lost; the others are abandoned (their
    /// requests are counted, their records are not delivered). Then the first fatal error is
    /// returned (the root cause, not a follower's [`SinkError::Stopped`]), or
    /// [`SinkError::Stopped`] when the sink was stopped from outside.
    pub async fn run(
        &self,
        mut batches: mpsc::Receiver<Batch>,
        outcomes: mpsc::Sender<BatchOutcome>,
    ) -> Result<SinkStats, SinkError> {
        let mut in_flight: JoinSet<Result<BatchOutcome, SinkError>> = JoinSet::new();
        let mut input_open = true;
        let mut stop = self.inner.stop.subscribe();
        let mut fatal: Option<SinkError> = None;
        let mut grace_until: Option<tokio::time::Instant> = None;
        loop {
            if grace_until.is_none() && *stop.borrow_and_update() {
                grace_until = Some(tokio::time::Instant::now() + STOP_GRACE);
            }
            let stopping = grace_until.is_some();
            if in_flight.is_empty() && (stopping || !input_open) {
                break;
            }
            let deadline = grace_until.unwrap_or_else(tokio::time::Instant::now);
            tokio::select! {
                next = batches.recv(), if !stopping && input_open && in_flight.len() < self.inner.concurrency => {
                    match next {
                        Some(batch) => {
                            let sink = self.clone();
                            in_flight.spawn(async move { sink.deliver(batch).await });
                        }
                        None => input_open = false,
                    }
                }
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    let result = done.map_err(|e| SinkError::Internal(format!("delivery task: {e}"))).and_then(|r| r);
                    match result {
                        Ok(outcome) => {
                            if outcomes.send(outcome).await.is_err() {
                                self.stop();
                                in_flight.abort_all();
                                return Err(SinkError::OutcomeReceiverDropped);
                            }
                        }
                        // Abandoned after the stop.
                        Err(SinkError::Stopped) => {}
                        Err(e) => {
                            self.stop();
                            fatal.get_or_insert(e);
                        }
                    }
                }
                _ = stop.changed(), if !stopping => {}
                () = tokio::time::sleep_until(deadline), if stopping => {
                    tracing::warn!(
                        "{} requests still unanswered {} s after the sink stopped: abandoned",
                        in_flight.len(),
                        STOP_GRACE.as_secs()
                    );
                    in_flight.abort_all();
                    break;
                }
                else => break,
            }
        }
        match fatal {
            Some(e) => Err(e),
            None if self.is_stopped() => Err(SinkError::Stopped),
            None => Ok(self.stats()),
        }
    }
}

/// A subset of a batch's records (indices into the batch), with its body once built.
struct Part {
    rows: Vec<usize>,
    body: Option<Body>,
}

/// Queues the two halves of `rows` at the front, first half first.
fn push_halves(queue: &mut VecDeque<Part>, mut rows: Vec<usize>) {
    let second = rows.split_off(rows.len() / 2);
    queue.push_front(Part {
        rows: second,
        body: None,
    });
    queue.push_front(Part { rows, body: None });
}

/// Frames and compresses a part on the blocking pool.
async fn encode_part(
    records: &Arc<RecordSpans>,
    encoding: BodyEncoding,
    rows: &[usize],
) -> Result<Body, SinkError> {
    let records = Arc::clone(records);
    let rows = rows.to_vec();
    tokio::task::spawn_blocking(move || {
        let framed = records.frame_subset(encoding.format, rows.iter().copied());
        encoding.finish(&framed, rows.len())
    })
    .await
    .map_err(|e| SinkError::Internal(format!("body encoder task: {e}")))?
    .map_err(SinkError::Encode)
}

/// The HTTP client of every CluedIn sink: follows no redirect (see the module doc), sends
/// [`USER_AGENT`], with the configured timeouts and an idle pool of `concurrency` connections.
pub fn http_client(config: &SinkConfig) -> Result<reqwest::Client, SinkError> {
    install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(config.timeout_secs))
        .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
        .pool_max_idle_per_host(config.concurrency)
        .build()
        .map_err(|e| SinkError::Client(error_chain(&e)))
}

/// An HTTP answer, as far as the sink needs it.
struct Reply {
    status: u16,
    response: IngestResponse,
    retry_after: Option<Duration>,
    /// The raw `Location` header (of a 3xx).
    location: Option<Vec<u8>>,
}

/// One request/answer. `Err` is a transport failure (no status), described for logs.
async fn exchange(req: reqwest::RequestBuilder) -> Result<Reply, String> {
    let mut resp = req.send().await.map_err(|e| error_chain(&e))?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let location = resp.headers().get(LOCATION).map(|v| v.as_bytes().to_vec());
    // The status is the answer; a body cut short only loses detail (and a 2xx is final: the
    // endpoint stored the records).
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = MAX_RESPONSE_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok(Reply {
        status,
        response: parse_response(&body),
        retry_after,
        location,
    })
}

/// An error and its sources, `a: b: c`.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

/// Maps an answer's warnings to the records of the request.
fn warnings_of(response: &IngestResponse, rows: &[usize], meta: &[RecordMeta]) -> Vec<RowWarning> {
    response
        .warnings
        .iter()
        .map(|w| RowWarning {
            origin: w
                .row()
                .and_then(|r| rows.get(r))
                .map(|&i| meta[i].origin.clone()),
            property: w.property.clone(),
            message_id: w.message_id.clone(),
            message: w.message.clone(),
        })
        .collect()
}
