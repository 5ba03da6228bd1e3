//! [`FingerprintError`]: the errors of the fingerprint database, each naming its file,
//! and how redb's open errors map to what a user can act on (damaged, in use).

use std::io;
use std::path::{Path, PathBuf};

use redb::{DatabaseError, StorageError};

/// An error of the fingerprint database; every message names its file. Causes are part of
/// the message, not also `source()`s, so that a chain printed cause by cause says each once.
#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    /// The folder of the database could not be created.
    #[error("cannot create the folder of fingerprint database {}: {error}", path.display())]
    CreateDir { path: PathBuf, error: io::Error },
    /// The file is not a (readable) redb database.
    #[error(
        "fingerprint database {} is damaged or not a fingerprint database ({reason}); \
         delete it to start afresh (the next --only-changed run then resends every record once)",
        path.display()
    )]
    Damaged { path: PathBuf, reason: String },
    /// Another process holds the file's lock.
    #[error(
        "fingerprint database {} is in use by another stagepush process \
         (one process at a time may use a state folder's fingerprints)",
        path.display()
    )]
    InUse { path: PathBuf },
    /// Any other failure of redb (I/O, disk full, …) during `op`.
    #[error("fingerprint database {}: {op} failed: {error}", path.display())]
    Database {
        path: PathBuf,
        op: &'static str,
        error: Box<redb::Error>,
    },
}

/// Maps an error of `Builder::create` to the message a user can act on.
pub(super) fn open_error(path: &Path, err: DatabaseError) -> FingerprintError {
    let path = path.to_path_buf();
    match err {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            FingerprintError::InUse { path }
        }
        // redb reports a file that does not start with its header as InvalidData, one cut
        // short inside its header or pages as UnexpectedEof.
        DatabaseError::Storage(StorageError::Io(e))
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
            ) =>
        {
            let reason = match e.kind() {
                io::ErrorKind::UnexpectedEof => format!("file cut short: {e}"),
                _ => e.to_string(),
            };
            FingerprintError::Damaged { path, reason }
        }
        DatabaseError::Storage(StorageError::Corrupted(reason)) => {
            FingerprintError::Damaged { path, reason }
        }
        DatabaseError::UpgradeRequired(version) => FingerprintError::Damaged {
            path,
            reason: format!("written in redb file format {version}, which this build cannot read"),
        },
        other => FingerprintError::Database {
            path,
            op: "open",
            error: Box::new(other.into()),
        },
    }
}
