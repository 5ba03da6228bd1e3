//! The coalescer's bookkeeping, all under its one lock: the open bodies (the [`Batcher`]),
//! cut bodies waiting for a slot, bodies in flight, and each request's records' fates. A
//! request is answered once every record has its fate, or at its first failure.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;

use super::{CoalesceError, Fate, Fates};
use crate::sink::{Batcher, Payload, PayloadOutcome, RowRef, SinkError};
use crate::transform::RowStage;

/// A request with records in flight.
pub(super) struct Owner {
    /// By position (the origin's `row`).
    pub(super) fates: Vec<Option<Fate>>,
    /// Records without a fate yet.
    pub(super) remaining: usize,
    /// Records in the open bodies (not yet in a cut body).
    pub(super) unsent: usize,
    pub(super) tx: oneshot::Sender<Fates>,
}

pub(super) struct State {
    pub(super) batcher: Batcher,
    /// Announced requests that have not pushed yet.
    pub(super) announced: usize,
    /// When the oldest record of the open bodies arrived.
    pub(super) oldest: Option<Instant>,
    /// The `oldest` a linger timer is armed for.
    pub(super) timer_for: Option<Instant>,
    /// Cut bodies waiting for a delivery slot.
    pub(super) ready: VecDeque<Payload>,
    /// Bodies being delivered.
    pub(super) in_flight: usize,
    /// Records in the open bodies and in `ready`.
    pub(super) waiting: usize,
    /// Request key → its records' fates.
    pub(super) owners: HashMap<Arc<str>, Owner>,
    /// The last fatal error (named when other bodies are abandoned).
    pub(super) last_fatal: Option<String>,
}

impl State {
    /// Moves cut bodies into free delivery slots.
    pub(super) fn start_ready(&mut self, slots: usize, starts: &mut Vec<Payload>) {
        while self.in_flight < slots
            && let Some(batch) = self.ready.pop_front()
        {
            self.in_flight += 1;
            self.waiting = self.waiting.saturating_sub(batch.len());
            starts.push(batch);
        }
    }

    /// A body was cut: its records leave the open bodies and wait for a slot.
    pub(super) fn cut(&mut self, batch: Payload) {
        for meta in batch.records() {
            if let Some(owner) = self.owners.get_mut(&meta.origin.file) {
                owner.unsent = owner.unsent.saturating_sub(1);
            }
        }
        self.ready.push_back(batch);
    }

    /// Cutting failed: the records of the open bodies are gone; their requests fail.
    pub(super) fn lose_open_bodies(&mut self, error: Arc<SinkError>) {
        let keys: Vec<Arc<str>> = self
            .owners
            .iter()
            .filter(|(_, o)| o.unsent > 0)
            .map(|(k, _)| Arc::clone(k))
            .collect();
        for key in keys {
            self.fail(&key, CoalesceError::Sink(Arc::clone(&error)));
        }
        self.waiting = self.ready.iter().map(Payload::len).sum();
        self.oldest = None;
    }

    /// Sets one record's fate (once; a request already answered is skipped).
    pub(super) fn settle(&mut self, key: &Arc<str>, row: u64, fate: Fate) {
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
    pub(super) fn finish_if_settled(&mut self, key: &Arc<str>) {
        if self.owners.get(key).is_some_and(|o| o.remaining == 0)
            && let Some(owner) = self.owners.remove(key)
        {
            let fates = owner.fates.into_iter().flatten().collect();
            let _ = owner.tx.send(Ok(fates));
        }
    }

    /// Answers the request with `error` (later fates of its records are ignored).
    pub(super) fn fail(&mut self, key: &Arc<str>, error: CoalesceError) {
        if let Some(owner) = self.owners.remove(key) {
            let _ = owner.tx.send(Err(error));
        }
    }

    pub(super) fn fail_all(&mut self, origins: &[RowRef], error: CoalesceError) {
        for origin in origins {
            self.fail(&origin.file, error.clone());
        }
    }

    /// A delivered body's outcome: every record's fate, then the requests it completes.
    pub(super) fn apply(&mut self, origins: &[RowRef], outcome: PayloadOutcome) {
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
