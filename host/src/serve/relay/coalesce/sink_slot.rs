//! [`SinkSlot`]: the relay's sink, which a fatal error stops; the next body gets a fresh one.

use std::future::Future;
use std::sync::Mutex;

use super::Deliver;
use crate::sink::{CluedInSink, Payload, PayloadOutcome, SinkError};

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
        batch: Payload,
    ) -> impl Future<Output = Result<PayloadOutcome, SinkError>> + Send {
        let sink = self.get();
        async move { sink?.deliver(batch).await }
    }

    fn slots_now(&self) -> Option<usize> {
        self.get().ok().map(|sink| sink.concurrency_limit())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::sink::{ApiToken, SinkConfig};

    #[test]
    fn a_stopped_sink_is_replaced_by_a_fresh_one_and_a_running_one_kept() {
        let made = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&made);
        let slot = SinkSlot::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            CluedInSink::new(
                &SinkConfig::new("http://127.0.0.1:1/upload/api/endpoint/T"),
                ApiToken::new("t"),
            )
        });
        let first = slot.get().unwrap();
        slot.get().unwrap();
        assert_eq!(made.load(Ordering::SeqCst), 1);
        first.stop();
        let fresh = slot.get().unwrap();
        assert_eq!(made.load(Ordering::SeqCst), 2);
        assert!(!fresh.is_stopped());
        assert!(first.is_stopped());
    }

    #[test]
    fn a_sink_that_cannot_be_made_is_the_error() {
        let slot =
            SinkSlot::new(|| CluedInSink::new(&SinkConfig::new("not a url"), ApiToken::new("t")));
        assert!(slot.get().is_err());
    }
}
