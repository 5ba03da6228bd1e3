//! The heartbeat: while a run delivers the objects of received messages, every in-flight
//! message's visibility is extended by the visibility timeout, every third of it, so that no
//! other consumer receives it meanwhile. Azure replaces a message's pop receipt at every
//! extension, so the messages are kept behind a mutex that the consumer reads afterwards.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use super::{Message, QueueClient};

/// The shortest time between two extensions.
pub const MIN_INTERVAL: Duration = Duration::from_millis(300);

/// How often a message's visibility is extended: a third of its timeout (at least
/// [`MIN_INTERVAL`]).
pub fn interval(visibility: Duration) -> Duration {
    (visibility / 3).max(MIN_INTERVAL)
}

/// Extends `messages` every [`interval`] of `visibility` until `stop` says so (a message or a
/// hang-up), counting each extension in `extended`. A failed extension is logged: the run
/// goes on (the message may then be received by another consumer, and the state makes its
/// objects' delivery exactly-once all the same).
pub fn run(
    client: &dyn QueueClient,
    messages: &Mutex<Vec<Message>>,
    visibility: Duration,
    extended: &AtomicU64,
    stop: &Receiver<()>,
) {
    let every = interval(visibility);
    loop {
        match stop.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let mut messages = messages.lock().unwrap_or_else(|p| p.into_inner());
        for message in messages.iter_mut() {
            match client.set_visibility(message, visibility) {
                Ok(()) => {
                    extended.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(
                    "queue message {}: cannot extend its visibility: {e}",
                    message.id
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_third_of_the_timeout_and_never_below_the_minimum() {
        assert_eq!(interval(Duration::from_secs(120)), Duration::from_secs(40));
        assert_eq!(interval(Duration::from_secs(3)), Duration::from_secs(1));
        assert_eq!(interval(Duration::from_millis(600)), MIN_INTERVAL);
    }
}
