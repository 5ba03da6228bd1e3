//! [`StateError`]: the errors of the state layer. None carries a credential.

use std::path::PathBuf;

/// Errors of the state layer. None carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A conditional put lost: someone else wrote (or created) the document first.
    #[error("state document {path} was changed by another writer")]
    Conflict { path: String },
    /// A document exists but cannot be used (torn write, truncated, not ours).
    #[error("state document {path} is damaged ({reason}); move it away to start that file over")]
    Damaged { path: String, reason: String },
    /// The store could not be reached or refused the request (the message is scrubbed of
    /// credentials, which is why it is text).
    #[error("state store {location}: {message}")]
    Store { location: String, message: String },
    /// Local I/O.
    ///
    /// The I/O error is in the message and is not also a `source()`: a chain printed cause
    /// by cause (`error: {:#}`) would say it twice ("No space left on device (os error
    /// 28): No space left on device (os error 28)").
    #[error("state folder {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// `--state` names something that cannot hold state.
    #[error("invalid state location {location:?}: {reason}")]
    Location { location: String, reason: String },
}
