//! One shared batcher for the records of concurrent relay requests.
//!
//! Snowflake calls an External Function with many small batches at once (one per thread of
//! the query). Without coalescing, each request's records would travel in their own request
//! body. The [`Coalescer`] puts the records of every request into one [`Batcher`] (one open
//! body per endpoint, cut by the sink's `max_rows` **and** `max_bytes`), sends the bodies
//! through the sink with at most the sink's `concurrency` in flight, and hands each record's
//! fate back to the request that pushed it.
//!
//! ## When a body leaves
//!
//! - **Full:** a push that would overflow an open body cuts it (the [`Batcher`] rule). Full
//!   bodies wait, in order, for a delivery slot.
//! - **Quiet:** a request *announces* itself ([`Coalescer::announce`]) when it starts, before
//!   its plugin runs, and stops counting once it has pushed its records (or gave up). The
//!   open bodies are cut as soon as no announced request is left: nobody else's records can
//!   arrive soon, so waiting would only add latency. With one request in flight, its records
//!   leave the moment it has pushed them: no added latency.
//! - **Linger:** while other requests are still announced (their plugin is running), the
//!   open bodies wait at most `linger` ([`DEFAULT_LINGER`], `--relay-linger-ms`) after
//!   their oldest record arrived, so a slow plugin call does not hold the others back.
//! - **Back-pressure:** a partial body is only cut when a delivery slot is free (and no full
//!   body is waiting). While every slot is busy, records keep joining the open bodies: they
//!   could not leave earlier anyway, and they leave together in fewer, larger bodies.
//!
//! ## Accounting
//!
//! Every record is pushed with an origin [`RowRef`] unique to the request (`file` = the
//! request's key, `row` = the record's position among the request's records), so the
//! sink's [`BatchOutcome`] — which names every record of a body exactly once — maps back to
//! one request and one position. A request's [`Ticket`] resolves once every one of its
//! records has a [`Fate`] (delivered with the `receiptId` of the request that stored it,
//! or rejected), or at its first failure.
//!
//! ## Failures
//!
//! A fatal sink error (401, 403, 404, retries exhausted) fails **only the requests with
//! records in the failing body** ([`CoalesceError::Sink`]). The sink stops on such an error,
//! so other bodies in flight on it end with [`SinkError::Stopped`]; their requests fail too
//! ([`CoalesceError::Abandoned`], naming the root cause when it is known): parts of those
//! bodies may have been stored, and Snowflake's retry of a 502 sends them again
//! (at-least-once). Bodies not yet sent are not failed: they go out through a fresh sink
//! (the relay's [`Deliver`] makes one after a stop) and get their own answer, so one
//! request's failure does not fail requests that merely waited in the same queue.
//!
//! A failed request's records that are still waiting in an open body are sent anyway
//! (a body cannot give records back); Snowflake's retry of the 502 then sends them again.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::serve::metrics::Metrics;
use crate::sink::{Batch, BatchOutcome, Batcher, CluedInSink, RowRef, SinkError};
use crate::transform::RowStage;

/// Default for how long the open bodies wait for requests whose plugin is still running.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(20);

/// What sends a cut body: the relay's sink, a stand-in in the unit tests.
pub(crate) trait Deliver: Send + Sync + 'static {
    /// Delivers one body; see [`CluedInSink::deliver`].
    fn deliver(&self, batch: Batch)
    -> impl Future<Output = Result<BatchOutcome, SinkError>> + Send;
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fate {
    /// The endpoint stored it; the `receiptId` of the request that did.
    Delivered { receipt_id: Option<String> },
    /// Refused: no route for its entity type ([`RowStage::Encode`]), or by the endpoint
    /// ([`RowStage::Endpoint`]).
    Rejected { stage: RowStage, message: String },
}

/// Why a request's records have no fates.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum CoalesceError {
    /// A body holding some of the request's records failed fatally.
    #[error("{0}")]
    Sink(Arc<SinkError>),
    /// The sink stopped (a fatal error in another body) while a body holding some of the
    /// request's records was in flight.
    #[error("the sink stopped after a fatal error in another request body{}", cause_suffix(.cause))]
    Abandoned {
        /// The other body's error, when it was known.
        cause: Option<String>,
    },
    /// A bug: a delivery task panicked, or the sink's outcome left a record out.
    #[error("internal error in the relay's batching: {0}")]
    Internal(String),
}

fn cause_suffix(cause: &Option<String>) -> String {
    cause
        .as_deref()
        .map(|c| format!(": {c}"))
        .unwrap_or_default()
}

type Fates = Result<Vec<Fate>, CoalesceError>;

/// A request's claim on its records' fates.
#[derive(Debug)]
pub(crate) struct Ticket {
    rx: oneshot::Receiver<Fates>,
}

impl Ticket {
    /// The fates of the request's records, in push order, or why there are none.
    pub(crate) async fn wait(self) -> Fates {
        self.rx.await.unwrap_or_else(|_| {
            Err(CoalesceError::Internal(
                "the coalescer dropped a request".into(),
            ))
        })
    }
}

/// A request that will push records soon (see the module doc, "Quiet"). Dropping it without
/// [`Coalescer::push`] withdraws it (e.g. the plugin failed).
pub(crate) struct Announcement<D: Deliver> {
    coalescer: Arc<Coalescer<D>>,
    live: bool,
}

impl<D: Deliver> Drop for Announcement<D> {
    fn drop(&mut self) {
        if self.live {
            self.live = false;
            let coalescer = Arc::clone(&self.coalescer);
            let mut state = coalescer.lock();
            state.announced = state.announced.saturating_sub(1);
            coalescer.pump(state);
        }
    }
}

/// A request with records in flight.
struct Owner {
    /// By position (the origin's `row`).
    fates: Vec<Option<Fate>>,
    /// Records without a fate yet.
    remaining: usize,
    /// Records in the open bodies (not yet in a cut body).
    unsent: usize,
    tx: oneshot::Sender<Fates>,
}

struct State {
    batcher: Batcher,
    /// Announced requests that have not pushed yet.
    announced: usize,
    /// When the oldest record of the open bodies arrived.
    oldest: Option<Instant>,
    /// The `oldest` a linger timer is armed for.
    timer_for: Option<Instant>,
    /// Cut bodies waiting for a delivery slot.
    ready: VecDeque<Batch>,
    /// Bodies being delivered.
    in_flight: usize,
    /// Records in the open bodies and in `ready`.
    waiting: usize,
    /// Request key → its records' fates.
    owners: HashMap<Arc<str>, Owner>,
    /// The last fatal error (named when other bodies are abandoned).
    last_fatal: Option<String>,
}

/// The shared batcher; see the module doc.
pub(crate) struct Coalescer<D: Deliver> {
    deliver: Arc<D>,
    linger: Duration,
    slots: usize,
    metrics: Arc<Metrics>,
    next_owner: AtomicU64,
    state: Mutex<State>,
    me: Weak<Self>,
}

impl<D: Deliver> Coalescer<D> {
    /// `batcher`: from a sink of the configuration `deliver` sends with; `slots`: most
    /// bodies in flight (the sink's `concurrency`).
    pub(crate) fn new(
        deliver: D,
        batcher: Batcher,
        slots: usize,
        linger: Duration,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            deliver: Arc::new(deliver),
            linger,
            slots: slots.max(1),
            metrics,
            next_owner: AtomicU64::new(1),
            state: Mutex::new(State {
                batcher,
                announced: 0,
                oldest: None,
                timer_for: None,
                ready: VecDeque::new(),
                in_flight: 0,
                waiting: 0,
                owners: HashMap::new(),
                last_fatal: None,
            }),
            me: me.clone(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn arc(&self) -> Arc<Self> {
        self.me
            .upgrade()
            .expect("a coalescer is used through its Arc")
    }

    /// A request will push records soon: open bodies wait for it (at most the linger).
    pub(crate) fn announce(&self) -> Announcement<D> {
        self.lock().announced += 1;
        Announcement {
            coalescer: self.arc(),
            live: true,
        }
    }

    /// Pushes a request's records (entity type and JSON, in order); `label` names the
    /// request in logs (the origin file of its records). Needs a tokio runtime context (it
    /// spawns the deliveries); cutting a full body compresses it, so call it from the
    /// blocking pool.
    pub(crate) fn push<'a>(
        &self,
        mut announcement: Announcement<D>,
        label: &str,
        records: impl IntoIterator<Item = (&'a Arc<str>, &'a [u8])>,
    ) -> Ticket {
        let key: Arc<str> = format!(
            "{label}#{}",
            self.next_owner.fetch_add(1, Ordering::Relaxed)
        )
        .into();
        let (tx, rx) = oneshot::channel();
        let mut state = self.lock();
        announcement.live = false;
        state.announced = state.announced.saturating_sub(1);
        let st = &mut *state;
        st.owners.insert(
            Arc::clone(&key),
            Owner {
                fates: Vec::new(),
                remaining: 0,
                unsent: 0,
                tx,
            },
        );
        let mut pushed = 0usize;
        let mut failed = None;
        for (row, (entity_type, json)) in records.into_iter().enumerate() {
            if let Some(owner) = st.owners.get_mut(&key) {
                owner.fates.push(None);
                owner.remaining += 1;
            }
            let origin = RowRef {
                file: Arc::clone(&key),
                row: row as u64,
            };
            match st.batcher.push_json(origin, entity_type, json) {
                Ok(cut) => {
                    pushed += 1;
                    if let Some(owner) = st.owners.get_mut(&key) {
                        owner.unsent += 1;
                    }
                    if let Some(batch) = cut {
                        st.cut(batch);
                    }
                }
                Err(e @ SinkError::NoRoute { .. }) => {
                    let fate = Fate::Rejected {
                        stage: RowStage::Encode,
                        message: e.to_string(),
                    };
                    st.settle(&key, row as u64, fate);
                }
                Err(e) => {
                    // Cutting a body failed (compression): its records are lost.
                    failed = Some(e);
                    break;
                }
            }
        }
        st.waiting += pushed;
        if pushed > 0 && st.oldest.is_none() {
            st.oldest = Some(Instant::now());
        }
        self.metrics.relay_records_queued(pushed);
        if let Some(e) = failed {
            st.lose_open_bodies(Arc::new(e));
            st.fail(
                &key,
                CoalesceError::Internal("a request body could not be cut".into()),
            );
        }
        // A request with nothing to send (or only unroutable records) is answered now.
        st.finish_if_settled(&key);
        self.pump(state);
        Ticket { rx }
    }

    /// Cuts partial bodies when due, starts deliveries into free slots, arms the linger.
    fn pump(&self, mut state: MutexGuard<'_, State>) {
        let st = &mut *state;
        let mut starts = Vec::new();
        st.start_ready(self.slots, &mut starts);
        if st.batcher.pending_rows() > 0 && st.ready.is_empty() && st.in_flight < self.slots {
            let quiet = st.announced == 0;
            let lingered = st.oldest.is_some_and(|t| t.elapsed() >= self.linger);
            if quiet || lingered {
                match st.batcher.flush() {
                    Ok(bodies) => bodies.into_iter().for_each(|b| st.cut(b)),
                    Err(e) => st.lose_open_bodies(Arc::new(e)),
                }
                st.oldest = None;
                st.start_ready(self.slots, &mut starts);
            }
        }
        // The linger only matters while requests are announced and a slot is free (else a
        // push or a finished delivery pumps again).
        let timer = match st.oldest {
            Some(oldest) if st.timer_for != Some(oldest) && st.in_flight < self.slots => {
                st.timer_for = Some(oldest);
                Some(oldest + self.linger)
            }
            _ => None,
        };
        self.metrics.set_relay_waiting(st.waiting);
        drop(state);
        if let Some(deadline) = timer {
            let me = self.me.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(deadline.into()).await;
                if let Some(coalescer) = me.upgrade() {
                    let mut state = coalescer.lock();
                    // Re-armed by `pump` if the body is not due yet.
                    if state.timer_for == Some(deadline - coalescer.linger) {
                        state.timer_for = None;
                    }
                    drop(state);
                    coalescer.pump_later();
                }
            });
        }
        for batch in starts {
            self.start(batch);
        }
    }

    /// Delivers one body in its own task; its outcome settles the fates of its records.
    fn start(&self, batch: Batch) {
        let origins: Vec<RowRef> = batch.records().iter().map(|m| m.origin.clone()).collect();
        self.metrics.relay_body_sent(origins.len());
        let (deliver, me) = (Arc::clone(&self.deliver), self.me.clone());
        tokio::spawn(async move {
            // A panic in the delivery must still settle the records.
            let result = tokio::spawn(async move { deliver.deliver(batch).await }).await;
            let Some(coalescer) = me.upgrade() else {
                return;
            };
            let mut state = coalescer.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
            match result {
                Ok(Ok(outcome)) => {
                    coalescer.metrics.add_sink_stats(&outcome.stats);
                    state.apply(&origins, outcome);
                }
                Ok(Err(SinkError::Stopped)) => {
                    let cause = state.last_fatal.clone();
                    state.fail_all(&origins, CoalesceError::Abandoned { cause });
                }
                Ok(Err(e)) => {
                    tracing::error!(
                        "relay: a request body of {} records failed: {e}",
                        origins.len()
                    );
                    state.last_fatal = Some(e.to_string());
                    state.fail_all(&origins, CoalesceError::Sink(Arc::new(e)));
                }
                Err(e) => {
                    state.fail_all(
                        &origins,
                        CoalesceError::Internal(format!("delivery task: {e}")),
                    );
                }
            }
            drop(state);
            coalescer.pump_later();
        });
    }

    /// [`Coalescer::pump`] on the blocking pool (cutting a body compresses it), from a task.
    fn pump_later(self: Arc<Self>) {
        tokio::task::spawn_blocking(move || {
            let state = self.lock();
            self.pump(state);
        });
    }
}

impl State {
    /// Moves cut bodies into free delivery slots.
    fn start_ready(&mut self, slots: usize, starts: &mut Vec<Batch>) {
        while self.in_flight < slots
            && let Some(batch) = self.ready.pop_front()
        {
            self.in_flight += 1;
            self.waiting = self.waiting.saturating_sub(batch.len());
            starts.push(batch);
        }
    }

    /// A body was cut: its records leave the open bodies and wait for a slot.
    fn cut(&mut self, batch: Batch) {
        for meta in batch.records() {
            if let Some(owner) = self.owners.get_mut(&meta.origin.file) {
                owner.unsent = owner.unsent.saturating_sub(1);
            }
        }
        self.ready.push_back(batch);
    }

    /// Cutting failed: the records of the open bodies are gone; their requests fail.
    fn lose_open_bodies(&mut self, error: Arc<SinkError>) {
        let keys: Vec<Arc<str>> = self
            .owners
            .iter()
            .filter(|(_, o)| o.unsent > 0)
            .map(|(k, _)| Arc::clone(k))
            .collect();
        for key in keys {
            self.fail(&key, CoalesceError::Sink(Arc::clone(&error)));
        }
        self.waiting = self.ready.iter().map(Batch::len).sum();
        self.oldest = None;
    }

    /// Sets one record's fate (once; a request already answered is skipped).
    fn settle(&mut self, key: &Arc<str>, row: u64, fate: Fate) {
        let Some(owner) = self.owners.get_mut(key) else {
            return;
        };
        match owner.fates.get_mut(row as usize) {
            Some(slot @ None) => {
                *slot = Some(fate);
                owner.remaining -= 1;
            }
            Some(Some(_)) => {
                tracing::error!("relay: record {row} of {key} was settled twice (ignored)");
            }
            None => tracing::error!("relay: no record {row} in {key} (ignored)"),
        }
    }

    /// Answers the request if every record has its fate.
    fn finish_if_settled(&mut self, key: &Arc<str>) {
        if self.owners.get(key).is_some_and(|o| o.remaining == 0)
            && let Some(owner) = self.owners.remove(key)
        {
            let fates = owner.fates.into_iter().flatten().collect();
            let _ = owner.tx.send(Ok(fates));
        }
    }

    /// Answers the request with `error` (later fates of its records are ignored).
    fn fail(&mut self, key: &Arc<str>, error: CoalesceError) {
        if let Some(owner) = self.owners.remove(key) {
            let _ = owner.tx.send(Err(error));
        }
    }

    fn fail_all(&mut self, origins: &[RowRef], error: CoalesceError) {
        for origin in origins {
            self.fail(&origin.file, error.clone());
        }
    }

    /// A delivered body's outcome: every record's fate, then the requests it completes.
    fn apply(&mut self, origins: &[RowRef], outcome: BatchOutcome) {
        for request in outcome.delivered {
            for origin in &request.records {
                let fate = Fate::Delivered {
                    receipt_id: request.receipt_id.clone(),
                };
                self.settle(&origin.file, origin.row, fate);
            }
        }
        for rejected in outcome.rejected {
            let fate = Fate::Rejected {
                stage: RowStage::Endpoint,
                message: format!("HTTP {}: {}", rejected.status, rejected.message),
            };
            self.settle(&rejected.origin.file, rejected.origin.row, fate);
        }
        for origin in origins {
            // The sink names every record of a body; one left out is a bug, not a delivery.
            let missing = self
                .owners
                .get(&origin.file)
                .and_then(|o| o.fates.get(origin.row as usize))
                .is_some_and(Option::is_none);
            if missing {
                self.fail(
                    &origin.file,
                    CoalesceError::Internal(format!(
                        "the sink's outcome did not name record {} of {}",
                        origin.row, origin.file
                    )),
                );
            } else {
                self.finish_if_settled(&origin.file);
            }
        }
    }
}

/// The relay's sink: the current [`CluedInSink`], or a fresh one once a fatal error stopped
/// it (bodies queued behind a failed one get their own chance).
pub(crate) struct SinkSlot {
    make: Box<dyn Fn() -> Result<CluedInSink, SinkError> + Send + Sync>,
    current: Mutex<Option<CluedInSink>>,
}

impl SinkSlot {
    /// `make` builds a sink (the job's configuration and token).
    pub(crate) fn new(
        make: impl Fn() -> Result<CluedInSink, SinkError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            make: Box::new(make),
            current: Mutex::new(None),
        }
    }

    /// The sink to send with now.
    pub(crate) fn get(&self) -> Result<CluedInSink, SinkError> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        match current.as_ref() {
            Some(sink) if !sink.is_stopped() => Ok(sink.clone()),
            _ => {
                let fresh = (self.make)()?;
                *current = Some(fresh.clone());
                Ok(fresh)
            }
        }
    }
}

impl Deliver for SinkSlot {
    fn deliver(
        &self,
        batch: Batch,
    ) -> impl Future<Output = Result<BatchOutcome, SinkError>> + Send {
        let sink = self.get();
        async move { sink?.deliver(batch).await }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tokio::sync::Semaphore;

    use super::*;
    use crate::sink::{ApiToken, DeliveredRequest, RejectedRecord, SinkConfig, SinkStats, Stage};

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
            batch: Batch,
        ) -> impl Future<Output = Result<BatchOutcome, SinkError>> + Send {
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
                            stage: Stage::Endpoint,
                        });
                    } else {
                        delivered.push(meta.origin.clone());
                    }
                }
                Ok(BatchOutcome {
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
}
