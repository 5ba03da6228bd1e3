//! Object storage shared by the stage reader ([`crate::source`]) and the delivery state
//! ([`crate::state`]): where a URL points ([`url`]), how to reach it ([`store`]: the store
//! settings and the object_store client builders), the [`Secret`] type and the scrubbing of
//! credentials from messages ([`redact`]), missing cloud credentials said plainly
//! ([`credentials`]), and the process-wide I/O runtime the blocking
//! callers run object_store futures on ([`runtime`]), and the one walker of a local
//! folder ([`walk`]).

pub mod credentials;
pub mod redact;
pub mod runtime;
pub mod secret;
pub mod store;
pub mod url;
pub mod walk;

pub use self::redact::{Redactor, redact_url};
pub use self::runtime::block_on;
pub use self::secret::{ApiToken, Secret};
pub use self::store::{AZURITE_ACCOUNT, AZURITE_KEY, ConfigError, StageConfig};
pub use self::url::{ObjectKeyError, StageUrl, StoreKind, UrlError};
pub use self::walk::{Walk, WalkError, WalkedFile, walk_files};

/// What can go wrong before a store is asked anything. Every variant names the stage or
/// location as a URL without credentials.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URL cannot be parsed.
    #[error("{url}: not a usable stage URL: {reason}")]
    Url {
        /// The URL, with any query string or credentials replaced.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The settings are incomplete or contradictory, or the client cannot be built.
    #[error("{stage}: {reason}")]
    Config {
        /// The URL.
        stage: String,
        /// What is wrong.
        reason: String,
    },
    /// The I/O runtime the storage clients run on failed.
    #[error("storage I/O runtime: {reason}")]
    Runtime {
        /// What failed.
        reason: String,
    },
}
