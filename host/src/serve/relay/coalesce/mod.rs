//! One shared batcher for the records of concurrent relay requests.
//!
//! Snowflake calls an External Function with many small batches at once (one per thread of
//! the query). Without coalescing, each request's records would travel in their own request
//! body. The [`Coalescer`] puts the records of every request into one [`Batcher`] (one open
//! body per endpoint, cut by the sink's `max_rows` **and** `max_bytes`), sends the bodies
//! through the sink with at most the sink's current request limit in flight (adaptive unless
//! `concurrency` pins it), and hands each record's
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
//! sink's [`PayloadOutcome`] — which names every record of a body exactly once — maps back to
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
//!
//! ## Modules
//!
//! | module | owns |
//! |---|---|
//! | `mod` (here) | [`Coalescer`]: announcements, pushes, cutting bodies and starting deliveries |
//! | `state` | the bookkeeping under the coalescer's lock: open and cut bodies, each request's fates |
//! | `sink_slot` | [`SinkSlot`]: the relay's sink, replaced by a fresh one after a fatal stop |
//! | `tests` | unit tests against an in-memory stand-in for the sink |

mod sink_slot;
mod state;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::serve::metrics::Metrics;
use crate::sink::{Batcher, Payload, PayloadOutcome, RowRef, SinkError};
use crate::transform::RowStage;

pub(crate) use sink_slot::SinkSlot;
use state::{Owner, State};
/// Default for how long the open bodies wait for requests whose plugin is still running.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(20);

/// What sends a cut body: the relay's sink, a stand-in in the unit tests.
pub(crate) trait Deliver: Send + Sync + 'static {
    /// Delivers one body; see [`CluedInSink::deliver`].
    fn deliver(
        &self,
        batch: Payload,
    ) -> impl Future<Output = Result<PayloadOutcome, SinkError>> + Send;

    /// Bodies it takes at once now (the sink's adaptive request limit), if it says; else
    /// the coalescer's fixed `slots`.
    fn slots_now(&self) -> Option<usize> {
        None
    }
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
    /// bodies in flight when `deliver` does not say ([`Deliver::slots_now`]).
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
        let slots = self.deliver.slots_now().unwrap_or(self.slots).max(1);
        st.start_ready(slots, &mut starts);
        if st.batcher.pending_rows() > 0 && st.ready.is_empty() && st.in_flight < slots {
            let quiet = st.announced == 0;
            let lingered = st.oldest.is_some_and(|t| t.elapsed() >= self.linger);
            if quiet || lingered {
                match st.batcher.flush() {
                    Ok(bodies) => bodies.into_iter().for_each(|b| st.cut(b)),
                    Err(e) => st.lose_open_bodies(Arc::new(e)),
                }
                st.oldest = None;
                st.start_ready(slots, &mut starts);
            }
        }
        // The linger only matters while requests are announced and a slot is free (else a
        // push or a finished delivery pumps again).
        let timer = match st.oldest {
            Some(oldest) if st.timer_for != Some(oldest) && st.in_flight < slots => {
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
    fn start(&self, batch: Payload) {
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
                    if let Some(limit) = coalescer.deliver.slots_now() {
                        coalescer.metrics.set_relay_concurrency(limit);
                    }
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
