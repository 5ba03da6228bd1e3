//! Stopping a run: the first fatal cause is kept (typed, for the report's `fatalError`),
//! and once stopped (by a cause or by the caller's cancel) every worker sees it at its next
//! batch. Waking the waits that block on the state is the run's job ([`super::state`]).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cancel::Cancel;
use crate::sync::lock;

use super::PipelineError;

/// See the module docs.
pub(super) struct Stop {
    stopped: AtomicBool,
    cause: Mutex<Option<PipelineError>>,
    cancel: Option<Cancel>,
}

impl Stop {
    pub(super) fn new(cancel: Option<Cancel>) -> Self {
        Stop {
            stopped: AtomicBool::new(false),
            cause: Mutex::new(None),
            cancel,
        }
    }

    /// Records `cause` (unless a cause is recorded already: the first stays) and stops.
    pub(super) fn fail(&self, cause: PipelineError) {
        let mut slot = lock(&self.cause);
        if slot.is_none() {
            *slot = Some(cause);
        }
        drop(slot);
        self.halt();
    }

    /// Stops without a cause of its own (the cause, if any, is recorded elsewhere).
    pub(super) fn halt(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// Whether the run is stopping: a cause, a halt, or the caller's cancel.
    pub(super) fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
            || self.cancel.as_ref().is_some_and(Cancel::is_cancelled)
    }

    /// The first cause, as the report words it.
    pub(super) fn cause(&self) -> Option<String> {
        lock(&self.cause).as_ref().map(ToString::to_string)
    }

    /// The cancel's reason (`SIGINT`, `SIGTERM`, `shutdown`), if it was set.
    pub(super) fn interrupted(&self) -> Option<String> {
        self.cancel.as_ref().and_then(Cancel::reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_cause_stays() {
        let stop = Stop::new(None);
        assert!(!stop.stopped());
        stop.fail(PipelineError::WorkerPanicked);
        stop.fail(PipelineError::SpawnWorker(std::io::Error::other(
            "no threads",
        )));
        assert!(stop.stopped());
        assert_eq!(stop.cause().as_deref(), Some("a worker thread panicked"));
    }

    #[test]
    fn a_halt_stops_without_a_cause() {
        let stop = Stop::new(None);
        stop.halt();
        assert!(stop.stopped());
        assert_eq!(stop.cause(), None);
    }

    #[test]
    fn the_callers_cancel_stops_the_run_with_its_reason() {
        let cancel = Cancel::new();
        let stop = Stop::new(Some(cancel.clone()));
        assert!(!stop.stopped());
        cancel.cancel("SIGTERM");
        assert!(stop.stopped());
        assert_eq!(stop.interrupted().as_deref(), Some("SIGTERM"));
        assert_eq!(stop.cause(), None);
    }
}
