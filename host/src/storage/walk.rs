//! The one walker of a local folder: every regular file under it, to a bounded depth.
//!
//! [`walk_files`] (or [`Walk`] for the options) visits the files under a folder,
//! recursively, following symbolic links the way a listing of what the folder holds does;
//! the depth guard ends a symlink loop with an error instead of recursing for ever.
//! Entries whose name is not UTF-8 are skipped (logged: no object key or state path can
//! hold them), and so are entries whose metadata cannot be read (a dangling link) and
//! entries that are neither files nor folders (sockets, devices). The order of the visits
//! is the file system's: callers that need an order sort.

use std::fs::Metadata;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Folder depth a walk descends to unless told otherwise (guards against symlink loops).
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// What can go wrong while walking a folder. Every variant names the folder.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// A folder cannot be listed.
    #[error("{}: {source}", path.display())]
    Read {
        /// The folder.
        path: PathBuf,
        /// The file system's error.
        #[source]
        source: std::io::Error,
    },
    /// A folder lies deeper than the walk's depth limit below the root.
    #[error("{}: {}", path.display(), too_deep(*max_depth))]
    TooDeep {
        /// The first folder too deep.
        path: PathBuf,
        /// The limit.
        max_depth: usize,
    },
}

fn too_deep(max_depth: usize) -> String {
    format!("more than {max_depth} folder levels (a symlink loop?)")
}

impl WalkError {
    /// The folder the error is about.
    pub fn path(&self) -> &Path {
        match self {
            WalkError::Read { path, .. } | WalkError::TooDeep { path, .. } => path,
        }
    }

    /// What went wrong, without the folder.
    pub fn reason(&self) -> String {
        match self {
            WalkError::Read { source, .. } => source.to_string(),
            WalkError::TooDeep { max_depth, .. } => too_deep(*max_depth),
        }
    }
}

/// One regular file found by a walk.
#[derive(Debug)]
pub struct WalkedFile {
    /// The file's path: the root joined with [`WalkedFile::relative`].
    pub path: PathBuf,
    /// The path below the root, its names joined with `/`.
    pub relative: String,
    /// The file's metadata (of the link's target for a symbolic link).
    pub metadata: Metadata,
}

/// A walk's options: the depth limit and whether missing folders are errors.
#[derive(Debug, Clone, Copy)]
pub struct Walk {
    max_depth: usize,
    missing_is_empty: bool,
}

impl Default for Walk {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_DEPTH)
    }
}

impl Walk {
    /// A walk that reads folders down to `max_depth` levels below the root (the root is
    /// level 0) and fails on a deeper one; a missing folder is an error.
    pub fn new(max_depth: usize) -> Self {
        Self {
            max_depth,
            missing_is_empty: false,
        }
    }

    /// Takes a missing root or folder (not found, or not a folder: deleted during the
    /// walk) as an empty one instead of an error.
    pub fn missing_is_empty(mut self) -> Self {
        self.missing_is_empty = true;
        self
    }

    /// Calls `visit` with every regular file under `root` (see the module documentation).
    pub fn files(&self, root: &Path, mut visit: impl FnMut(WalkedFile)) -> Result<(), WalkError> {
        self.folder(root, "", 0, &mut visit)
    }

    fn folder(
        &self,
        dir: &Path,
        relative: &str,
        depth: usize,
        visit: &mut dyn FnMut(WalkedFile),
    ) -> Result<(), WalkError> {
        if depth > self.max_depth {
            return Err(WalkError::TooDeep {
                path: dir.to_owned(),
                max_depth: self.max_depth,
            });
        }
        let read_error = |source: std::io::Error| WalkError::Read {
            path: dir.to_owned(),
            source,
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error)
                if self.missing_is_empty
                    && matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) =>
            {
                return Ok(());
            }
            Err(error) => return Err(read_error(error)),
        };
        for entry in entries {
            let path = entry.map_err(read_error)?.path();
            let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
                tracing::warn!(path = %path.display(), "skipped: the file name is not UTF-8");
                continue;
            };
            let relative = if relative.is_empty() {
                name.to_owned()
            } else {
                format!("{relative}/{name}")
            };
            // Follows symlinks, like a listing of what the folder holds.
            let metadata = match std::fs::metadata(&path) {
                Ok(metadata) => metadata,
                Err(error) => {
                    tracing::debug!(path = %path.display(), "skipped: {error}");
                    continue;
                }
            };
            if metadata.is_dir() {
                self.folder(&path, &relative, depth + 1, visit)?;
            } else if metadata.is_file() {
                visit(WalkedFile {
                    path,
                    relative,
                    metadata,
                });
            }
        }
        Ok(())
    }
}

/// Calls `visit` with every regular file under `root`, down to `max_depth` folder levels
/// (see the module documentation); a missing root is an error.
pub fn walk_files(
    root: &Path,
    max_depth: usize,
    visit: impl FnMut(WalkedFile),
) -> Result<(), WalkError> {
    Walk::new(max_depth).files(root, visit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relatives(walk: Walk, root: &Path) -> Result<Vec<String>, WalkError> {
        let mut found = Vec::new();
        walk.files(root, |file| {
            assert_eq!(file.path, root.join(&file.relative));
            assert!(file.metadata.is_file());
            found.push(file.relative);
        })?;
        found.sort();
        Ok(found)
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn nested_folders_give_relative_paths_of_files_only() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("a.parquet"), "a");
        write(&dir.path().join("x/b.parquet"), "bb");
        write(&dir.path().join("x/y=1/z/c"), "ccc");
        std::fs::create_dir_all(dir.path().join("empty/folder")).unwrap();
        let found = relatives(Walk::default(), dir.path()).unwrap();
        assert_eq!(found, ["a.parquet", "x/b.parquet", "x/y=1/z/c"]);
        let mut sizes = Vec::new();
        walk_files(dir.path(), DEFAULT_MAX_DEPTH, |file| {
            sizes.push((file.relative, file.metadata.len()))
        })
        .unwrap();
        sizes.sort();
        assert_eq!(sizes[2], ("x/y=1/z/c".to_owned(), 3));
    }

    #[test]
    fn folders_deeper_than_the_limit_are_an_error_naming_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("1/2/f"), "f");
        // Root = level 0: two levels below it are read with a limit of 2 …
        assert_eq!(relatives(Walk::new(2), dir.path()).unwrap(), ["1/2/f"]);
        // … and are one too many with a limit of 1.
        let error = relatives(Walk::new(1), dir.path()).unwrap_err();
        assert!(matches!(error, WalkError::TooDeep { max_depth: 1, .. }));
        assert_eq!(error.path(), dir.path().join("1/2"));
        assert_eq!(
            error.to_string(),
            format!(
                "{}: more than 1 folder levels (a symlink loop?)",
                dir.path().join("1/2").display()
            )
        );
        assert_eq!(
            error.reason(),
            "more than 1 folder levels (a symlink loop?)"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_loop_ends_at_the_depth_guard() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("a/f.parquet"), "f");
        std::os::unix::fs::symlink(dir.path().join("a"), dir.path().join("a/loop")).unwrap();
        let error = relatives(Walk::new(8), dir.path()).unwrap_err();
        assert!(matches!(error, WalkError::TooDeep { .. }), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn links_are_followed_and_dangling_links_and_non_utf8_names_skipped() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("real/f.parquet"), "f");
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("nowhere"), dir.path().join("dangling"))
            .unwrap();
        let odd = dir.path().join(OsStr::from_bytes(b"bad\xffname.parquet"));
        std::fs::write(&odd, "x").unwrap();
        let found = relatives(Walk::default(), dir.path()).unwrap();
        assert_eq!(found, ["link/f.parquet", "real/f.parquet"]);
    }

    #[test]
    fn a_missing_root_is_an_error_unless_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let error = relatives(Walk::default(), &missing).unwrap_err();
        match &error {
            WalkError::Read { path, source } => {
                assert_eq!(path, &missing);
                assert_eq!(source.kind(), ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }
        let found = relatives(Walk::default().missing_is_empty(), &missing).unwrap();
        assert!(found.is_empty());
        write(&dir.path().join("file"), "x");
        let found = relatives(Walk::default().missing_is_empty(), &dir.path().join("file"));
        assert!(found.unwrap().is_empty());
    }
}
