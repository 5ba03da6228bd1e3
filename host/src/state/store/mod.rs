//! The state store: small documents read and written atomically, with compare-and-swap,
//! on a local folder or an object store. See the module docs of [`crate::state`].
//!
//! - **Local folder**: a put writes `<root>/<path>.tmp-<random>`, `fsync`s it, renames it
//!   over the target and `fsync`s the folder. A conditional put (`Create`, `Update`) reads,
//!   compares and writes while holding an exclusive lock of `<root>/.lock` (`flock`), so
//!   it is safe between threads and processes on one machine. The version is the hex
//!   SHA-256 of the content.
//! - **Object store**: conditional puts (`If-None-Match: *`, `If-Match: <etag>`) through
//!   object_store; the version is the ETag.
//!
//! This module owns the [`StateStore`] handle, the document types and the dispatch to a
//! backend; the parts: `local` (the local folder, with `walk_local`, the folder listing),
//! `remote` (object stores), `path` (which paths name documents), `error` ([`StateError`]).

mod error;
mod local;
mod path;
mod remote;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

use object_store::path::Path as ObjectPath;

pub use error::StateError;

use crate::storage::store::build_store;
use crate::storage::{Redactor, StageConfig, StageUrl, StoreKind, redact_url};
use local::{local_delete, local_get, local_list, local_put};
use path::check_path;
use remote::Remote;

/// An opaque version of a stored document: the object's ETag (object stores) or the
/// SHA-256 of the content (local).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(pub String);

/// A document read from the store.
#[derive(Debug, Clone)]
pub struct Stored {
    pub bytes: Vec<u8>,
    pub version: Version,
}

/// How a put may replace what is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Only if nothing is stored at the path.
    Create,
    /// Only if the stored document still has this version.
    Update(Version),
    /// Unconditionally (immutable, uniquely named documents: dead-letter chunks, reports).
    Overwrite,
}

/// A state store. Cheap to clone; `Send + Sync`; blocking API (call from worker threads,
/// not from inside a tokio runtime).
#[derive(Clone)]
pub struct StateStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The location as given (a URL's query string redacted).
    location: String,
    backend: Backend,
}

enum Backend {
    Local { root: PathBuf },
    Remote(Remote),
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("location", &self.inner.location)
            .finish_non_exhaustive()
    }
}

impl StateStore {
    /// Opens (creating a local folder if needed) the store at `location`: a local path or
    /// an object-store URL. `store` supplies endpoint and credentials for object stores
    /// (its `url` is ignored; `location` is used instead).
    pub fn open(location: &str, store: &StageConfig) -> Result<Self, StateError> {
        let shown = redact_url(location);
        let location_error = |reason: String| StateError::Location {
            location: shown.clone(),
            reason,
        };
        let url = StageUrl::parse(location).map_err(|error| location_error(error.to_string()))?;
        let backend = match url.kind() {
            StoreKind::Local => {
                let root = std::path::absolute(url.key()).map_err(|source| StateError::Io {
                    path: PathBuf::from(url.key()),
                    error: source,
                })?;
                std::fs::create_dir_all(&root).map_err(|source| StateError::Io {
                    path: root.clone(),
                    error: source,
                })?;
                if !root.is_dir() {
                    return Err(location_error("not a folder".into()));
                }
                Backend::Local { root }
            }
            _ => {
                let config = StageConfig {
                    url: Some(location.to_owned()),
                    ..store.clone()
                };
                config
                    .check(url.kind())
                    .map_err(|reason| location_error(format!("{url}: {reason}")))?;
                let redactor = Arc::new(Redactor::for_store(&config, &url));
                let object_store = build_store(&url, &config, &redactor)
                    .map_err(|error| location_error(error.to_string()))?;
                let prefix = url.key().trim_matches('/').to_owned();
                if !prefix.is_empty() {
                    ObjectPath::parse(&prefix).map_err(|error| {
                        location_error(format!("the key prefix cannot be used: {error}"))
                    })?;
                }
                Backend::Remote(Remote {
                    store: object_store,
                    prefix,
                    redactor,
                })
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                location: shown,
                backend,
            }),
        })
    }

    /// The location as given (for messages and reports; no credentials).
    pub fn location(&self) -> &str {
        &self.inner.location
    }

    /// Whether this is a local folder (its path), for things that need a local file
    /// (the fingerprint database).
    pub fn local_root(&self) -> Option<&std::path::Path> {
        match &self.inner.backend {
            Backend::Local { root } => Some(root),
            Backend::Remote(_) => None,
        }
    }

    /// Reads `path` (relative, `/`-separated), or `None` if absent.
    pub fn get(&self, path: &str) -> Result<Option<Stored>, StateError> {
        self.check(path)?;
        match &self.inner.backend {
            Backend::Local { root } => local_get(&root.join(path)),
            Backend::Remote(remote) => self.remote_get(remote, path),
        }
    }

    /// Writes `path` atomically under `mode`; returns the new version. A lost condition is
    /// [`StateError::Conflict`].
    pub fn put(&self, path: &str, bytes: &[u8], mode: PutMode) -> Result<Version, StateError> {
        self.check(path)?;
        match &self.inner.backend {
            Backend::Local { root } => local_put(root, path, bytes, mode),
            Backend::Remote(remote) => self.remote_put(remote, path, bytes, mode),
        }
    }

    /// Deletes `path` (absent is fine).
    pub fn delete(&self, path: &str) -> Result<(), StateError> {
        self.check(path)?;
        match &self.inner.backend {
            Backend::Local { root } => local_delete(root, path),
            Backend::Remote(remote) => self.remote_delete(remote, path),
        }
    }

    /// Paths (relative, as given to `get`) of every document under `prefix` (a folder,
    /// e.g. `files/0123abcd/`), sorted.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, StateError> {
        // The folder to walk: `prefix` up to its last `/`; `prefix` then filters names.
        let folder = prefix.rfind('/').map_or("", |end| &prefix[..end]);
        if !folder.is_empty() {
            self.check(folder)?;
        }
        let mut paths = match &self.inner.backend {
            Backend::Local { root } => local_list(root, folder)?,
            Backend::Remote(remote) => self.remote_list(remote, folder, prefix)?,
        };
        paths.retain(|path| path.starts_with(prefix));
        paths.sort();
        paths.dedup();
        Ok(paths)
    }

    /// Whether any document is stored under the folder `prefix` (ending in `/`, e.g.
    /// `files/0123abcd/`). On an object store it stops at the first one listed.
    pub fn has_any(&self, prefix: &str) -> Result<bool, StateError> {
        match &self.inner.backend {
            Backend::Local { .. } => Ok(!self.list(prefix)?.is_empty()),
            Backend::Remote(remote) => self.remote_has_any(remote, prefix),
        }
    }

    /// Refuses document paths that are not relative, `/`-separated and plain.
    fn check(&self, path: &str) -> Result<(), StateError> {
        check_path(path)
            .map_err(|reason| self.store_error(format!("invalid document path {path:?}: {reason}")))
    }

    fn store_error(&self, message: String) -> StateError {
        StateError::Store {
            location: self.inner.location.clone(),
            message,
        }
    }
}
