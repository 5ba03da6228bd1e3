//! The local-folder backend: atomic writes (temporary file, `fsync`, rename, `fsync` of
//! the folder), compare-and-swap under an exclusive lock of `<root>/.lock`, versions as
//! the SHA-256 of the content, and the listing of a folder (through the one local walker,
//! `storage::walk`).

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::path::{LOCK_FILE, TMP_MARKER};
use super::{PutMode, StateError, Stored, Version};
use crate::storage::walk::{Walk, WalkError};

/// Folder depth a local listing descends to (guards against symlink loops).
const MAX_LOCAL_DEPTH: usize = 64;

/// The hex SHA-256 of `bytes`: the version of a local document.
pub(super) fn local_version(bytes: &[u8]) -> Version {
    Version(hex::encode(Sha256::digest(bytes)))
}

pub(super) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        error: source,
    }
}

pub(super) fn local_get(target: &Path) -> Result<Option<Stored>, StateError> {
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

pub(super) fn local_put(
    root: &Path,
    path: &str,
    bytes: &[u8],
    mode: PutMode,
) -> Result<Version, StateError> {
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

/// Deletes `<root>/<path>` (absent is fine) and makes the removal durable.
pub(super) fn local_delete(root: &Path, path: &str) -> Result<(), StateError> {
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

/// The documents under the folder `folder` (relative, `/`-separated, may be empty).
pub(super) fn local_list(root: &Path, folder: &str) -> Result<Vec<String>, StateError> {
    let mut paths = Vec::new();
    let start = if folder.is_empty() {
        root.to_owned()
    } else {
        root.join(folder)
    };
    Walk::new(MAX_LOCAL_DEPTH)
        .missing_is_empty()
        .files(&start, |file| {
            let name = file.relative.rsplit('/').next().unwrap_or_default();
            if name == LOCK_FILE || name.contains(TMP_MARKER) {
                return;
            }
            paths.push(if folder.is_empty() {
                file.relative
            } else {
                format!("{folder}/{}", file.relative)
            });
        })
        .map_err(|e| match e {
            WalkError::Read { path, source } => StateError::Io {
                path,
                error: source,
            },
            too_deep => StateError::Io {
                path: too_deep.path().to_owned(),
                error: std::io::Error::other(too_deep.reason()),
            },
        })?;
    Ok(paths)
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
