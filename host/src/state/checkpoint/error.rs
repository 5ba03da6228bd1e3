//! The checkpointer's errors: why a wait for the dispatch window ended
//! ([`WaitError`]), the run-stopping failure of the state writer ([`CheckpointError`]),
//! and the hook that makes the local dead-letter file durable ([`LetterSync`]).

use std::path::PathBuf;
use std::sync::Arc;

use crate::state::StateError;

/// Why [`Checkpointer::wait_to_send`](super::Checkpointer::wait_to_send) gave up.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WaitError {
    /// The run is stopping (a fatal error, a cancel): nothing more is sent.
    #[error("the run is stopping")]
    Stopping,
    /// Another worker took the file over.
    #[error("another worker took the file over")]
    Lost,
    /// Writing the state failed.
    #[error(transparent)]
    State(CheckpointError),
}

/// The first failure of the state writer: the run must stop. Every caller that asks
/// ([`error`](super::Checkpointer::error), [`finish`](super::Checkpointer::finish),
/// every waiter) gets the same failure, so it is shared (`Arc`) and cheap to clone.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CheckpointError {
    /// A state document (or a dead-letter chunk) could not be written.
    #[error(transparent)]
    State(Arc<StateError>),
    /// The local dead-letter file could not be made durable before its letters were
    /// written to the state.
    #[error(transparent)]
    LetterSync(Arc<LetterSyncError>),
}

impl From<StateError> for CheckpointError {
    fn from(error: StateError) -> Self {
        CheckpointError::State(Arc::new(error))
    }
}

impl From<LetterSyncError> for CheckpointError {
    fn from(error: LetterSyncError) -> Self {
        CheckpointError::LetterSync(Arc::new(error))
    }
}

/// Makes the run's local dead-letter file durable (`crate::deadletter::letter_sync`);
/// called before each chunk of dead letters is written to the state.
pub type LetterSync = Box<dyn Fn() -> Result<(), LetterSyncError> + Send + Sync>;

/// The local dead-letter file could not be made durable: the state must not record letters
/// the file may lack, so the run stops.
#[derive(Debug, thiserror::Error)]
#[error("the dead-letter file {} cannot be written: {source}", path.display())]
pub struct LetterSyncError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}
