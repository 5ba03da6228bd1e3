//! What can go wrong with a stage: [`StageError`], and which errors are about one bad
//! file a run can skip.

use crate::source::parquet::SourceError;
use crate::storage::StorageError;

/// What can go wrong with a stage. Every variant names the stage or the object (as a URL
/// without credentials).
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The stage URL cannot be parsed.
    #[error("{url}: not a usable stage URL: {reason}")]
    Url {
        /// The URL, with any query string or credentials replaced.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The stage settings are incomplete or contradictory, or the client cannot be built.
    #[error("{stage}: {reason}")]
    Config {
        /// The stage URL.
        stage: String,
        /// What is wrong.
        reason: String,
    },
    /// Listing the stage failed (after retries).
    #[error("{stage}: cannot list the stage: {reason}")]
    List {
        /// The stage URL.
        stage: String,
        /// The store's message.
        reason: String,
    },
    /// An object (or local file) that was asked for by name does not exist.
    #[error("{object}: no such object")]
    NotFound {
        /// The object.
        object: String,
    },
    /// An object that was listed no longer exists (deleted or renamed since).
    #[error("{object}: the object was listed but no longer exists (deleted or renamed since)")]
    Vanished {
        /// The object.
        object: String,
    },
    /// An object changed since it was listed (another ETag, another size).
    #[error("{object}: the object changed since it was listed: {reason}")]
    Changed {
        /// The object.
        object: String,
        /// What changed.
        reason: String,
    },
    /// Reading an object failed (after retries).
    #[error("{object}: cannot read: {reason}")]
    Read {
        /// The object.
        object: String,
        /// The store's message.
        reason: String,
    },
    /// The object is not a readable data file (truncated, corrupt, not Parquet, a codec or
    /// a column a plugin cannot receive, a row that cannot be read); the error names it.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The object's columns differ from the stage's (its first file's).
    #[error("{object}: its schema differs from {expected_from}'s: {difference}")]
    SchemaMismatch {
        /// The object.
        object: String,
        /// The file whose schema is the stage's.
        expected_from: String,
        /// The first differences.
        difference: String,
    },
    /// The selected files are of more than one format and `[source] format` is `auto`.
    #[error(
        "{stage}: the selected files are of more than one format: {first} is {first_format}, \
         {other} is {other_format}; read one format: set `[source] format = \"{other_format}\"` \
         (or \"{first_format}\") in the config, or select the files with `--include`/`--exclude`"
    )]
    MixedFormats {
        /// The stage URL.
        stage: String,
        /// A file of one format.
        first: String,
        /// Its format.
        first_format: crate::source::format::FileFormat,
        /// A file of another format.
        other: String,
        /// Its format.
        other_format: crate::source::format::FileFormat,
    },
    /// The selection (globs, time, key list) is invalid.
    #[error("{reason}")]
    Selection {
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

impl From<StorageError> for StageError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Url { url, reason } => StageError::Url { url, reason },
            StorageError::Config { stage, reason } => StageError::Config { stage, reason },
            StorageError::Runtime { reason } => StageError::Runtime { reason },
        }
    }
}

impl StageError {
    /// The object the error is about, if it is about one file.
    pub fn object(&self) -> Option<&str> {
        match self {
            StageError::NotFound { object }
            | StageError::Vanished { object }
            | StageError::Changed { object, .. }
            | StageError::Read { object, .. }
            | StageError::SchemaMismatch { object, .. } => Some(object),
            StageError::Source(error) => Some(source_error_file(error)),
            _ => None,
        }
    }

    /// True for one row a reader cannot read ([`SourceError::Row`]): the reader goes on.
    pub fn is_row_error(&self) -> bool {
        matches!(self, StageError::Source(e) if e.is_row_error())
    }

    /// True when the configuration is at fault (the command line's usage exit status, 2):
    /// the stage URL or settings, or a selection of files of more than one format under
    /// `[source] format = "auto"` (the message says which setting reads one).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            StageError::Url { .. }
                | StageError::Config { .. }
                | StageError::MixedFormats { .. }
                | StageError::Selection { .. }
        )
    }

    /// True when the error is about one bad file that a run can skip (dead-letter) and go
    /// on: the object vanished or changed, is not readable Parquet, or has another schema.
    /// Listing, configuration and storage errors (after retries) are not.
    pub fn is_bad_file(&self) -> bool {
        matches!(
            self,
            StageError::NotFound { .. }
                | StageError::Vanished { .. }
                | StageError::Changed { .. }
                | StageError::Source(_)
                | StageError::SchemaMismatch { .. }
        )
    }
}

/// The file a [`SourceError`] names.
fn source_error_file(error: &SourceError) -> &str {
    match error {
        SourceError::Open { file, .. }
        | SourceError::NotParquet { file, .. }
        | SourceError::Corrupt { file, .. }
        | SourceError::Codec { file, .. }
        | SourceError::Unsupported { file, .. }
        | SourceError::UnsupportedColumn { file, .. }
        | SourceError::Decode { file, .. }
        | SourceError::Options { file, .. }
        | SourceError::Row { file, .. }
        | SourceError::Decompress { file, .. }
        | SourceError::Declaration { file, .. }
        | SourceError::Layout { file, .. }
        | SourceError::Read { file, .. } => file,
    }
}
