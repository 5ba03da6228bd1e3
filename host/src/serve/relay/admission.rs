//! Admission of relay requests by bytes in flight: the relay's memory bound.
//!
//! What the relay makes of a request (its body, the parsed rows, the Arrow batch, the
//! plugin's input and output, the records in request bodies, the answer) lives until the
//! request is answered and takes several times the body's size (`cargo xtask bench
//! memory` measures it). So a request is admitted only while the decompressed bytes of the
//! bodies in flight stay within a budget (`--relay-max-inflight-bytes`,
//! [`DEFAULT_MAX_INFLIGHT_BYTES`]); the body limit is at most the budget, so any valid
//! request can be admitted once the others are done.
//!
//! - **Charge:** a request is charged before its body is read: its `Content-Length`, or the
//!   body limit when it is gzipped or has no length (its size is known only once
//!   decompressed). Once read, the charge shrinks to the decompressed size
//!   ([`Ticket::shrink`]).
//! - **Wait:** a request that does not fit waits, first come first served, at most
//!   `--relay-admission-wait-secs` ([`DEFAULT_ADMISSION_WAIT`]), then gets 429 with
//!   `Retry-After` ([`RETRY_AFTER_SECS`]). Snowflake retries a batch answered 429 (or 5xx)
//!   after a back-off (docs.snowflake.com, `sql-reference/external-functions-best-practices`,
//!   "Snowflake retries when it receives…"), so a burst is spread out instead of answered
//!   with an error.
//! - **Client gone:** while a request waits, the first [`PEEK_BYTES`] of its body are read,
//!   so a client that closes its connection is noticed at once: the wait ends (the answer,
//!   499, reaches nobody; it is counted in the metrics). A client gone after sending more
//!   than that waits out the bound at most.
//! - **Release:** the charge is held until the request's delivery ends (a request answered
//!   202 keeps it until its delivery is done) and is given back when the [`Ticket`] drops.
//!   When the last ticket drops, free heap memory goes back to the operating system
//!   ([`crate::memory::release_free_memory`]): after a burst, the process shrinks again.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::serve::metrics::Metrics;

/// Default budget of request bytes in flight (decompressed bodies being delivered).
pub const DEFAULT_MAX_INFLIGHT_BYTES: usize = 64 * 1024 * 1024;
/// Default for how long a request waits to be admitted before it is answered 429.
pub const DEFAULT_ADMISSION_WAIT: Duration = Duration::from_secs(10);
/// The `Retry-After` of a 429 answer, seconds.
pub const RETRY_AFTER_SECS: u64 = 2;
/// How much of a waiting request's body is read while it waits (to notice a closed
/// connection).
pub const PEEK_BYTES: usize = 64 * 1024;

/// Why a request was not admitted.
#[derive(Debug, thiserror::Error)]
pub(super) enum Refusal {
    /// The budget stayed full for the whole wait.
    #[error(
        "the relay is delivering {in_flight} bytes of requests, its limit (--relay-max-inflight-bytes {budget}); this request waited {waited:?}: retry later"
    )]
    Busy {
        in_flight: usize,
        budget: usize,
        waited: Duration,
    },
    /// The client closed the connection while the request waited.
    #[error("the client closed the connection while the request waited to be admitted: {0}")]
    ClientGone(hyper::Error),
}

/// The byte budget of the relay.
pub(super) struct Admission {
    budget: usize,
    semaphore: Arc<Semaphore>,
    wait: Duration,
    metrics: Arc<Metrics>,
}

/// An admitted request's charge; given back on drop.
pub(super) struct Ticket {
    permit: Option<OwnedSemaphorePermit>,
    budget: usize,
    semaphore: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

/// What was read of a body while its request waited, and whether that was all of it.
#[derive(Default)]
pub(super) struct Peeked {
    pub(super) frames: Vec<Bytes>,
    pub(super) bytes: usize,
    pub(super) ended: bool,
}

impl Admission {
    /// `budget` bytes (at most `u32::MAX`: a charge is one semaphore acquisition).
    pub(super) fn new(budget: usize, wait: Duration, metrics: Arc<Metrics>) -> Self {
        let budget = budget.clamp(1, u32::MAX as usize);
        Self {
            budget,
            semaphore: Arc::new(Semaphore::new(budget)),
            wait,
            metrics,
        }
    }

    /// Waits until `charge` bytes fit in the budget (at most the admission wait), reading
    /// the start of `body` meanwhile to notice a client that went away.
    pub(super) async fn admit(
        &self,
        charge: usize,
        body: &mut Incoming,
    ) -> Result<(Ticket, Peeked), Refusal> {
        let charge = charge.clamp(1, self.budget) as u32;
        let acquire = Arc::clone(&self.semaphore).acquire_many_owned(charge);
        tokio::pin!(acquire);
        let started = tokio::time::Instant::now();
        let deadline = tokio::time::sleep(self.wait);
        tokio::pin!(deadline);
        let mut peeked = Peeked::default();
        let mut waiting = None;
        let permit = loop {
            tokio::select! {
                biased;
                permit = &mut acquire => match permit {
                    Ok(permit) => break permit,
                    // Never: the semaphore is never closed.
                    Err(_) => return Err(self.busy(started)),
                },
                () = &mut deadline => return Err(self.busy(started)),
                frame = body.frame(), if !peeked.ended && peeked.bytes < PEEK_BYTES => {
                    match frame {
                        Some(Ok(frame)) => {
                            if let Ok(data) = frame.into_data() {
                                peeked.bytes += data.len();
                                peeked.frames.push(data);
                            }
                        }
                        Some(Err(e)) => return Err(Refusal::ClientGone(e)),
                        None => peeked.ended = true,
                    }
                }
                // Counted as waiting only once it did not fit at once.
                () = std::future::ready(()), if waiting.is_none() => {
                    waiting = Some(Waiting::new(&self.metrics));
                }
            }
        };
        drop(waiting);
        let ticket = Ticket {
            permit: Some(permit),
            budget: self.budget,
            semaphore: Arc::clone(&self.semaphore),
            metrics: Arc::clone(&self.metrics),
        };
        ticket.report();
        Ok((ticket, peeked))
    }
}

impl Admission {
    fn busy(&self, started: tokio::time::Instant) -> Refusal {
        Refusal::Busy {
            in_flight: self.budget - self.semaphore.available_permits(),
            budget: self.budget,
            waited: started.elapsed(),
        }
    }
}

impl Ticket {
    /// Lowers the charge to `bytes` (the body's real size); never raises it.
    pub(super) fn shrink(&mut self, bytes: usize) {
        if let Some(permit) = self.permit.as_mut() {
            let excess = permit.num_permits().saturating_sub(bytes.max(1));
            if excess > 0 {
                drop(permit.split(excess));
            }
        }
        self.report();
    }

    fn report(&self) {
        self.metrics
            .set_relay_inflight_bytes(self.budget - self.semaphore.available_permits());
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.report();
        if self.semaphore.available_permits() == self.budget {
            // The last request in flight is done: give the burst's memory back. Trimming
            // walks the heap, so it runs off the async threads.
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn_blocking(crate::memory::release_free_memory);
                }
                Err(_) => crate::memory::release_free_memory(),
            }
        }
    }
}

/// Counts a request in the `waiting` gauge while it lives.
struct Waiting(Arc<Metrics>);

impl Waiting {
    fn new(metrics: &Arc<Metrics>) -> Self {
        metrics.relay_admission_waiting(1);
        Self(Arc::clone(metrics))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.relay_admission_waiting(-1);
    }
}
