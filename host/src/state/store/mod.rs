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

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutOptions, PutPayload, UpdateVersion};
use sha2::{Digest, Sha256};

use crate::storage::store::build_store;
use crate::storage::{Redactor, StageConfig, StageUrl, StoreKind, block_on, redact_url};

/// The lock file of a local store.
const LOCK_FILE: &str = ".lock";
/// What marks a temporary file of a local put.
const TMP_MARKER: &str = ".tmp-";
/// Folder depth a local listing descends to (guards against symlink loops).
const MAX_LOCAL_DEPTH: usize = 64;

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

/// Errors of the state layer. None carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A conditional put lost: someone else wrote (or created) the document first.
    #[error("state document {path} was changed by another writer")]
    Conflict { path: String },
    /// A document exists but cannot be used (torn write, truncated, not ours).
    #[error("state document {path} is damaged ({reason}); move it away to start that file over")]
    Damaged { path: String, reason: String },
    /// The store could not be reached or refused the request.
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
    Local {
        root: PathBuf,
    },
    Remote {
        store: Arc<dyn ObjectStore>,
        /// The key prefix, without leading or trailing `/` (may be empty).
        prefix: String,
        redactor: Arc<Redactor>,
    },
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
                fs::create_dir_all(&root).map_err(|source| StateError::Io {
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
                Backend::Remote {
                    store: object_store,
                    prefix,
                    redactor,
                }
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
            Backend::Remote { .. } => None,
        }
    }

    /// Reads `path` (relative, `/`-separated), or `None` if absent.
    pub fn get(&self, path: &str) -> Result<Option<Stored>, StateError> {
        self.check(path)?;
        match &self.inner.backend {
            Backend::Local { root } => local_get(&root.join(path)),
            Backend::Remote { store, .. } => {
                let location = self.object_path(path)?;
                let store = Arc::clone(store);
                let result = self.block_on(async move {
                    let result = match store.get(&location).await {
                        Ok(result) => result,
                        Err(object_store::Error::NotFound { .. }) => return Ok(None),
                        Err(error) => return Err(error),
                    };
                    let e_tag = result.meta.e_tag.clone();
                    let bytes = result.bytes().await?;
                    Ok(Some((bytes, e_tag)))
                })?;
                match result {
                    Ok(None) => Ok(None),
                    Ok(Some((bytes, Some(e_tag)))) => Ok(Some(Stored {
                        bytes: bytes.to_vec(),
                        version: Version(e_tag),
                    })),
                    Ok(Some((_, None))) => {
                        Err(self
                            .store_error(format!("cannot read {path}: the store returned no ETag")))
                    }
                    Err(error) => Err(self.object_error("read", path, &error)),
                }
            }
        }
    }

    /// Writes `path` atomically under `mode`; returns the new version. A lost condition is
    /// [`StateError::Conflict`].
    pub fn put(&self, path: &str, bytes: &[u8], mode: PutMode) -> Result<Version, StateError> {
        self.check(path)?;
        match &self.inner.backend {
            Backend::Local { root } => local_put(root, path, bytes, mode),
            Backend::Remote { store, .. } => {
                let location = self.object_path(path)?;
                let store = Arc::clone(store);
                let mode = match mode {
                    PutMode::Create => object_store::PutMode::Create,
                    PutMode::Update(version) => object_store::PutMode::Update(UpdateVersion {
                        e_tag: Some(version.0),
                        version: None,
                    }),
                    PutMode::Overwrite => object_store::PutMode::Overwrite,
                };
                let payload = PutPayload::from(bytes.to_vec());
                let result = self.block_on(async move {
                    let options = PutOptions {
                        mode,
                        ..PutOptions::default()
                    };
                    store.put_opts(&location, payload, options).await
                })?;
                match result {
                    Ok(put) => put.e_tag.map(Version).ok_or_else(|| {
                        self.store_error(format!("wrote {path} but the store returned no ETag"))
                    }),
                    Err(
                        object_store::Error::AlreadyExists { .. }
                        | object_store::Error::Precondition { .. }
                        | object_store::Error::NotModified { .. },
                    ) => Err(StateError::Conflict {
                        path: path.to_owned(),
                    }),
                    Err(error) => Err(self.object_error("write", path, &error)),
                }
            }
        }
    }

    /// Deletes `path` (absent is fine).
    pub fn delete(&self, path: &str) -> Result<(), StateError> {
        self.check(path)?;
        match &self.inner.backend {
            Backend::Local { root } => {
                let target = root.join(path);
                match fs::remove_file(&target) {
                    Ok(()) => {
                        if let Some(parent) = target.parent() {
                            sync_dir(parent)?;
                        }
                        Ok(())
                    }
                    Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
                    Err(source) => Err(StateError::Io {
                        path: target,
                        error: source,
                    }),
                }
            }
            Backend::Remote { store, .. } => {
                let location = self.object_path(path)?;
                let store = Arc::clone(store);
                match self.block_on(async move { store.delete(&location).await })? {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(error) => Err(self.object_error("delete", path, &error)),
                }
            }
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
            Backend::Local { root } => {
                let mut paths = Vec::new();
                let start = if folder.is_empty() {
                    root.clone()
                } else {
                    root.join(folder)
                };
                walk_local(&start, folder, 0, &mut paths)?;
                paths
            }
            Backend::Remote {
                store,
                prefix: base,
                ..
            } => {
                let full = join_key(base, folder);
                let list_prefix = if full.is_empty() {
                    None
                } else {
                    Some(ObjectPath::parse(&full).map_err(|error| {
                        self.store_error(format!("invalid prefix {prefix:?}: {error}"))
                    })?)
                };
                let store = Arc::clone(store);
                let listed = self.block_on(async move {
                    store
                        .list(list_prefix.as_ref())
                        .map_ok(|meta| meta.location.to_string())
                        .try_collect::<Vec<String>>()
                        .await
                })?;
                let keys = listed.map_err(|error| self.object_error("list", prefix, &error))?;
                keys.into_iter()
                    .filter_map(|key| {
                        if base.is_empty() {
                            Some(key)
                        } else {
                            key.strip_prefix(base.as_str())
                                .and_then(|rest| rest.strip_prefix('/'))
                                .map(str::to_owned)
                        }
                    })
                    .collect()
            }
        };
        paths.retain(|path| path.starts_with(prefix));
        paths.sort();
        paths.dedup();
        Ok(paths)
    }

    /// Whether any document is stored under the folder `prefix` (ending in `/`, e.g.
    /// `files/0123abcd/`). On an object store it stops at the first one listed.
    pub fn has_any(&self, prefix: &str) -> Result<bool, StateError> {
        let Backend::Remote {
            store,
            prefix: base,
            ..
        } = &self.inner.backend
        else {
            return Ok(!self.list(prefix)?.is_empty());
        };
        let folder = prefix.trim_end_matches('/');
        self.check(folder)?;
        let location = ObjectPath::parse(join_key(base, folder))
            .map_err(|error| self.store_error(format!("invalid prefix {prefix:?}: {error}")))?;
        let store = Arc::clone(store);
        let first = self.block_on(async move {
            let mut listing = store.list(Some(&location));
            listing.try_next().await
        })?;
        first
            .map(|meta| meta.is_some())
            .map_err(|error| self.object_error("list", prefix, &error))
    }

    /// Refuses document paths that are not relative, `/`-separated and plain.
    fn check(&self, path: &str) -> Result<(), StateError> {
        check_path(path)
            .map_err(|reason| self.store_error(format!("invalid document path {path:?}: {reason}")))
    }

    fn object_path(&self, path: &str) -> Result<ObjectPath, StateError> {
        let Backend::Remote { prefix, .. } = &self.inner.backend else {
            unreachable!("object paths are for object stores")
        };
        ObjectPath::parse(join_key(prefix, path))
            .map_err(|error| self.store_error(format!("invalid document path {path:?}: {error}")))
    }

    fn block_on<F>(&self, future: F) -> Result<F::Output, StateError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        block_on(future).map_err(|error| self.store_error(error.to_string()))
    }

    fn store_error(&self, message: String) -> StateError {
        StateError::Store {
            location: self.inner.location.clone(),
            message,
        }
    }

    /// A store error about `path`, its message scrubbed of credentials.
    fn object_error(&self, action: &str, path: &str, error: &object_store::Error) -> StateError {
        let text = error.to_string();
        let message = match &self.inner.backend {
            Backend::Remote { redactor, .. } => redactor.scrub(&text),
            Backend::Local { .. } => text,
        };
        self.store_error(format!("cannot {action} {path}: {message}"))
    }
}

/// `prefix/path`, or `path` when the prefix is empty.
fn join_key(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}/{path}"),
    }
}

/// Why `path` cannot name a document (relative, `/`-separated, no empty, `.` or `..`
/// segments, not the lock or a temporary file), if it cannot.
fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty".into());
    }
    if path.starts_with('/') {
        return Err("not relative".into());
    }
    if path.contains('\\') || path.chars().any(char::is_control) {
        return Err("backslash or control character".into());
    }
    for segment in path.split('/') {
        match segment {
            "" => return Err("empty segment".into()),
            "." | ".." => return Err(format!("`{segment}` segment")),
            LOCK_FILE => return Err("names the lock file".into()),
            _ if segment.contains(TMP_MARKER) => {
                return Err(format!("`{TMP_MARKER}` marks temporary files"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The hex SHA-256 of `bytes`: the version of a local document.
fn local_version(bytes: &[u8]) -> Version {
    Version(hex::encode(Sha256::digest(bytes)))
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        error: source,
    }
}

fn local_get(target: &Path) -> Result<Option<Stored>, StateError> {
    match fs::read(target) {
        Ok(bytes) => {
            let version = local_version(&bytes);
            Ok(Some(Stored { bytes, version }))
        }
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Io {
            path: target.to_owned(),
            error: source,
        }),
    }
}

fn local_put(root: &Path, path: &str, bytes: &[u8], mode: PutMode) -> Result<Version, StateError> {
    let target = root.join(path);
    if mode == PutMode::Overwrite {
        write_atomic(root, &target, bytes)?;
        return Ok(local_version(bytes));
    }
    let lock_path = root.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_error(&lock_path))?;
    lock.lock().map_err(io_error(&lock_path))?;
    let current = local_get(&target)?.map(|stored| stored.version);
    let allowed = match (&mode, &current) {
        (PutMode::Create, None) => true,
        (PutMode::Update(expected), Some(current)) => expected == current,
        _ => false,
    };
    if !allowed {
        return Err(StateError::Conflict {
            path: path.to_owned(),
        });
    }
    write_atomic(root, &target, bytes)?;
    // The lock is released when `lock` is closed; after the rename is durable.
    drop(lock);
    Ok(local_version(bytes))
}

/// Writes `target` through a temporary file in its folder, `fsync`, rename and a `fsync`
/// of the folder; creates missing folders under `root` (made durable too).
fn write_atomic(root: &Path, target: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let parent = target.parent().unwrap_or(root);
    create_dirs(root, parent)?;
    let mut name = target.file_name().unwrap_or_default().to_owned();
    name.push(format!("{TMP_MARKER}{:016x}", fastrand::u64(..)));
    let tmp = parent.join(name);
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, target)
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(StateError::Io {
            path: target.to_owned(),
            error: source,
        });
    }
    sync_dir(parent)
}

/// Creates `folder` (under `root`) and its missing parents, `fsync`ing the folder each
/// new one was created in.
fn create_dirs(root: &Path, folder: &Path) -> Result<(), StateError> {
    if folder.is_dir() {
        return Ok(());
    }
    let relative = folder.strip_prefix(root).unwrap_or(folder);
    let mut current = root.to_owned();
    for component in relative.components() {
        let parent = current.clone();
        current.push(component);
        match fs::create_dir(&current) {
            Ok(()) => sync_dir(&parent)?,
            Err(error) if error.kind() == ErrorKind::AlreadyExists && current.is_dir() => {}
            Err(source) => {
                return Err(StateError::Io {
                    path: current,
                    error: source,
                });
            }
        }
    }
    Ok(())
}

/// `fsync`s a folder (its entries: a rename, a new file).
fn sync_dir(folder: &Path) -> Result<(), StateError> {
    File::open(folder)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error(folder))
}

/// Adds the documents under `folder` (relative path `relative`) to `paths`, skipping the
/// lock and temporary files. A missing folder has none.
fn walk_local(
    folder: &Path,
    relative: &str,
    depth: usize,
    paths: &mut Vec<String>,
) -> Result<(), StateError> {
    if depth > MAX_LOCAL_DEPTH {
        return Err(StateError::Io {
            path: folder.to_owned(),
            error: std::io::Error::other("folders nested too deep (a symlink loop?)"),
        });
    }
    let entries = match fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(error) if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(());
        }
        Err(source) => {
            return Err(StateError::Io {
                path: folder.to_owned(),
                error: source,
            });
        }
    };
    for entry in entries {
        let entry = entry.map_err(io_error(folder))?;
        let Ok(name) = entry.file_name().into_string() else {
            tracing::debug!(path = %entry.path().display(), "state: skipping a non-UTF-8 name");
            continue;
        };
        if name == LOCK_FILE || name.contains(TMP_MARKER) {
            continue;
        }
        let path = if relative.is_empty() {
            name
        } else {
            format!("{relative}/{name}")
        };
        let is_dir = entry.file_type().map_err(io_error(&entry.path()))?.is_dir();
        if is_dir {
            walk_local(&entry.path(), &path, depth + 1, paths)?;
        } else {
            paths.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;

    use super::*;

    /// An error and its chain as `error: {:#}` prints them (anyhow: `a: b: c`).
    fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
        let mut text = error.to_string();
        let mut cause = error.source();
        while let Some(source) = cause {
            text.push_str(&format!(": {source}"));
            cause = source.source();
        }
        text
    }

    #[test]
    fn a_full_disk_is_named_once() {
        // A real ENOSPC from the OS, mapped as every local write maps it.
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .and_then(|mut full| full.write_all(b"{}").and_then(|()| full.sync_all()));
        let error = io_error(Path::new("/s/files/x.json"))(written.unwrap_err());
        let expected = format!(
            "state folder /s/files/x.json: {}",
            std::io::Error::from_raw_os_error(libc::ENOSPC)
        );
        assert_eq!(error.to_string(), expected);
        // As the run returns it to the command line, which prints the chain.
        let stopped = crate::pipeline::PipelineError::State(error);
        let text = chain_text(&stopped);
        assert_eq!(text, expected);
        assert_eq!(text.matches("No space left on device").count(), 1, "{text}");
    }

    fn local() -> (tempfile::TempDir, StateStore) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("state");
        let store = StateStore::open(root.to_str().unwrap(), &StageConfig::default()).unwrap();
        (dir, store)
    }

    #[test]
    fn local_create_update_and_conflicts() {
        let (dir, store) = local();
        let root = dir.path().join("state");
        assert!(root.is_dir(), "open creates the folder");
        assert_eq!(store.local_root(), Some(root.as_path()));
        assert_eq!(store.location(), root.to_str().unwrap());

        let path = "files/0123abcd/f1.json";
        assert!(store.get(path).unwrap().is_none());
        let v1 = store.put(path, b"{\"n\":1}", PutMode::Create).unwrap();
        assert_eq!(v1, local_version(b"{\"n\":1}"));
        assert_eq!(v1.0.len(), 64);
        let stored = store.get(path).unwrap().unwrap();
        assert_eq!(stored.bytes, b"{\"n\":1}");
        assert_eq!(stored.version, v1);

        let error = store.put(path, b"{\"n\":9}", PutMode::Create).unwrap_err();
        assert!(
            matches!(&error, StateError::Conflict { path: p } if p == path),
            "{error}"
        );

        let v2 = store
            .put(path, b"{\"n\":2}", PutMode::Update(v1.clone()))
            .unwrap();
        assert_ne!(v1, v2);
        let error = store
            .put(path, b"{\"n\":3}", PutMode::Update(v1.clone()))
            .unwrap_err();
        assert!(matches!(error, StateError::Conflict { .. }), "{error}");
        assert_eq!(store.get(path).unwrap().unwrap().bytes, b"{\"n\":2}");

        // Update of a missing document is a conflict too (someone deleted it).
        let error = store
            .put(
                "files/0123abcd/none.json",
                b"{}",
                PutMode::Update(v2.clone()),
            )
            .unwrap_err();
        assert!(matches!(error, StateError::Conflict { .. }), "{error}");

        let v3 = store.put(path, b"{\"n\":4}", PutMode::Overwrite).unwrap();
        assert_eq!(store.get(path).unwrap().unwrap().version, v3);

        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(root.join("files/0123abcd"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["f1.json"]);
    }

    #[test]
    fn local_list_and_delete() {
        let (dir, store) = local();
        for path in [
            "files/aa/2.json",
            "files/aa/1.json",
            "files/aa/sub/3.json",
            "files/ab/4.json",
            "runs/r.json",
        ] {
            store.put(path, b"{}", PutMode::Create).unwrap();
        }
        // A leftover temporary file (a crash before the rename) is not a document.
        fs::write(dir.path().join("state/files/aa/9.json.tmp-0123"), b"{").unwrap();
        assert!(dir.path().join("state/.lock").exists());

        assert_eq!(
            store.list("files/aa/").unwrap(),
            ["files/aa/1.json", "files/aa/2.json", "files/aa/sub/3.json"]
        );
        assert_eq!(
            store.list("").unwrap(),
            [
                "files/aa/1.json",
                "files/aa/2.json",
                "files/aa/sub/3.json",
                "files/ab/4.json",
                "runs/r.json"
            ]
        );
        assert_eq!(store.list("files/a").unwrap().len(), 4);
        assert!(store.list("nothing/here/").unwrap().is_empty());

        store.delete("files/aa/2.json").unwrap();
        store.delete("files/aa/2.json").unwrap();
        store.delete("never/was.json").unwrap();
        assert!(store.get("files/aa/2.json").unwrap().is_none());
        assert_eq!(
            store.list("files/aa/").unwrap(),
            ["files/aa/1.json", "files/aa/sub/3.json"]
        );
    }

    #[test]
    fn local_paths_are_checked_and_file_urls_work() {
        let (dir, store) = local();
        for bad in [
            "",
            "/abs.json",
            "a/../b.json",
            "a//b",
            "./a",
            ".lock",
            "x.tmp-1",
        ] {
            let error = store.put(bad, b"{}", PutMode::Overwrite).unwrap_err();
            assert!(matches!(error, StateError::Store { .. }), "{bad}: {error}");
        }
        let url = format!("file://{}/via-url", dir.path().display());
        let by_url = StateStore::open(&url, &StageConfig::default()).unwrap();
        assert_eq!(
            by_url.local_root(),
            Some(dir.path().join("via-url").as_path())
        );
        by_url.put("a.json", b"1", PutMode::Create).unwrap();
        assert!(dir.path().join("via-url/a.json").is_file());

        let error = StateStore::open("ftp://x/y", &StageConfig::default()).unwrap_err();
        assert!(matches!(error, StateError::Location { .. }), "{error}");
    }

    #[test]
    fn local_cas_race_has_exactly_one_winner() {
        const WRITERS: usize = 8;
        for round in 0..5 {
            let (_dir, store) = local();
            let path = "files/race/doc.json";
            let base = store.put(path, b"base", PutMode::Create).unwrap();
            let barrier = Arc::new(Barrier::new(WRITERS));
            let handles: Vec<_> = (0..WRITERS)
                .map(|writer| {
                    // A store per thread, as separate processes would have: each opens
                    // its own handle of the lock file.
                    let store = StateStore::open(
                        store.local_root().unwrap().to_str().unwrap(),
                        &StageConfig::default(),
                    )
                    .unwrap();
                    let barrier = Arc::clone(&barrier);
                    let base = base.clone();
                    std::thread::spawn(move || {
                        barrier.wait();
                        let body = format!("writer {writer}");
                        store
                            .put(path, body.as_bytes(), PutMode::Update(base))
                            .map(|version| (writer, version))
                    })
                })
                .collect();
            let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert_eq!(winners.len(), 1, "round {round}: {results:?}");
            for result in &results {
                if let Err(error) = result {
                    assert!(matches!(error, StateError::Conflict { .. }), "{error}");
                }
            }
            let (writer, version) = winners[0];
            let stored = store.get(path).unwrap().unwrap();
            assert_eq!(stored.bytes, format!("writer {writer}").as_bytes());
            assert_eq!(&stored.version, version);
        }
    }
}
