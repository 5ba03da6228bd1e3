//! [`CluedInSink::run`]: the concurrent driver (up to `max_in_flight` batches taken at once;
//! their requests wait for the [`Limiter`](crate::sink::concurrency::Limiter)) and
//! what happens once the sink stops ([`STOP_GRACE`]).

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{CluedInSink, STOP_GRACE};
use crate::sink::SinkError;
use crate::sink::batcher::Payload;
use crate::sink::outcome::{PayloadOutcome, SinkStats};

impl CluedInSink {
    /// Delivers batches from `batches` with up to [`CluedInSink::max_in_flight`] taken at
    /// once (their requests in flight as the concurrency limit allows), sending each
    /// outcome to `outcomes` (in completion order; see [`PayloadOutcome::batch_id`]). Returns
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
        mut batches: mpsc::Receiver<Payload>,
        outcomes: mpsc::Sender<PayloadOutcome>,
    ) -> Result<SinkStats, SinkError> {
        let mut in_flight: JoinSet<Result<PayloadOutcome, SinkError>> = JoinSet::new();
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
                next = batches.recv(), if !stopping && input_open && in_flight.len() < self.inner.limiter.max() => {
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
