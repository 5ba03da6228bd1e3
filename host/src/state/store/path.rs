//! Document paths: which paths may name a document (relative, `/`-separated, plain, not
//! the lock or a temporary file: [`check_path`]) and how they join a key prefix.

/// The lock file of a local store.
pub(super) const LOCK_FILE: &str = ".lock";
/// What marks a temporary file of a local put.
pub(super) const TMP_MARKER: &str = ".tmp-";

/// Why a path cannot name a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum PathProblem {
    #[error("empty")]
    Empty,
    #[error("not relative")]
    NotRelative,
    #[error("backslash or control character")]
    BadCharacter,
    #[error("empty segment")]
    EmptySegment,
    /// A `.` or `..` segment.
    #[error("`{0}` segment")]
    DotSegment(&'static str),
    #[error("names the lock file")]
    LockFile,
    #[error("`{TMP_MARKER}` marks temporary files")]
    TemporaryFile,
}

/// Why `path` cannot name a document (relative, `/`-separated, no empty, `.` or `..`
/// segments, not the lock or a temporary file), if it cannot.
pub(super) fn check_path(path: &str) -> Result<(), PathProblem> {
    if path.is_empty() {
        return Err(PathProblem::Empty);
    }
    if path.starts_with('/') {
        return Err(PathProblem::NotRelative);
    }
    if path.contains('\\') || path.chars().any(char::is_control) {
        return Err(PathProblem::BadCharacter);
    }
    for segment in path.split('/') {
        match segment {
            "" => return Err(PathProblem::EmptySegment),
            "." => return Err(PathProblem::DotSegment(".")),
            ".." => return Err(PathProblem::DotSegment("..")),
            LOCK_FILE => return Err(PathProblem::LockFile),
            _ if segment.contains(TMP_MARKER) => return Err(PathProblem::TemporaryFile),
            _ => {}
        }
    }
    Ok(())
}

/// `prefix/path`, or `path` when the prefix is empty.
pub(super) fn join_key(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}/{path}"),
    }
}
