//! Stopping a run from outside: a [`Cancel`] is set once, with a reason (`SIGINT`,
//! `SIGTERM`, `shutdown`), from any thread, and seen both by blocking code (a check between
//! batches) and by async code (a future that ends when it is set), so that nothing keeps
//! waiting on a run that was told to stop.

use std::sync::Arc;

use tokio::sync::watch;

/// See the module docs. Cheap to clone; every clone is the same signal.
#[derive(Debug, Clone)]
pub struct Cancel {
    reason: Arc<watch::Sender<Option<String>>>,
}

impl Default for Cancel {
    fn default() -> Self {
        Self::new()
    }
}

impl Cancel {
    /// A signal not set yet.
    pub fn new() -> Self {
        Self {
            reason: Arc::new(watch::Sender::new(None)),
        }
    }

    /// Sets the signal (the first reason stays).
    pub fn cancel(&self, reason: &str) {
        self.reason.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(reason.to_string());
            true
        });
    }

    /// Whether it is set.
    pub fn is_cancelled(&self) -> bool {
        self.reason.borrow().is_some()
    }

    /// Why it was set, once it is.
    pub fn reason(&self) -> Option<String> {
        self.reason.borrow().clone()
    }

    /// Ends once the signal is set (at once if it already is).
    pub async fn cancelled(&self) {
        let mut rx = self.reason.subscribe();
        // The sender lives in `self`: the wait cannot fail.
        let _ = rx.wait_for(Option::is_some).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_stays_and_waiters_wake() {
        let cancel = Cancel::new();
        assert!(!cancel.is_cancelled());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let waiter = {
            let cancel = cancel.clone();
            runtime.spawn(async move { cancel.cancelled().await })
        };
        cancel.cancel("SIGTERM");
        cancel.cancel("SIGINT");
        runtime.block_on(waiter).unwrap();
        assert!(cancel.is_cancelled());
        assert_eq!(cancel.reason().as_deref(), Some("SIGTERM"));
        // Already set: ends at once.
        runtime.block_on(cancel.cancelled());
    }
}
