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

//!
//! | module | owns |
//! |---|---|
//! | `mod` (here) | [`CluedInSink`]: construction, shared totals, the stop switch, [`CluedInSink::deliver`] |
//! | `parts` | one batch as a queue of parts: 413 splits, 400 row removal and bisection |
//! | `attempt` | one body sent until it gets a final answer (retries, back-off, fatal statuses) |
//! | `driver` | [`CluedInSink::run`]: batches in flight concurrently, the stop grace |
//! | `transport` | [`http_client`] and one request/answer exchange (`TransportError`: no answer) |

mod attempt;
mod driver;
mod parts;
mod transport;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::HeaderValue;
use tokio::sync::watch;

use super::batcher::{Batcher, Endpoint, Payload, Router};
use super::concurrency::{ConcurrencyStats, Limiter};
use super::config::SinkConfig;
use super::outcome::{PayloadOutcome, SinkStats};
use super::request;
use super::response::IngestResponse;
use super::retries::RetryPolicy;
use super::{ApiToken, SinkError};

pub use transport::{MAX_RESPONSE_BYTES, http_client};

/// How long requests already sent may take to be answered once the sink stopped (see
/// [`CluedInSink::run`]): long enough for an endpoint that answers, short enough that a
/// stopped run ends within seconds.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

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
    limiter: Limiter,
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
            .field("concurrency", &self.limiter)
            .field("token", &"[redacted]")
            .finish_non_exhaustive()
    }
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
                limiter: Limiter::new(config.concurrency_mode()),
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

    /// The most requests ever in flight (`concurrency`, or the adaptive ceiling
    /// `max_concurrency`); also the most batches [`CluedInSink::run`] takes at once.
    pub fn max_in_flight(&self) -> usize {
        self.inner.limiter.max()
    }

    /// Requests allowed in flight now (the adaptive limit, or the pinned `concurrency`).
    pub fn concurrency_limit(&self) -> usize {
        self.inner.limiter.limit()
    }

    /// What the request concurrency did so far.
    pub fn concurrency_stats(&self) -> ConcurrencyStats {
        self.inner.limiter.stats()
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
    pub async fn deliver(&self, batch: Payload) -> Result<PayloadOutcome, SinkError> {
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
}
