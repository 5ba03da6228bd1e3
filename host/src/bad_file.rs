//! Files a run cannot use (vanished, changed since the listing, truncated or corrupt, a
//! column a plugin cannot receive, another schema): which file gives the stage its schema,
//! and how a bad file's dead letters name the reason.
//!
//! The stage's schema is that of its first *readable* file, so a bad file is dead-lettered
//! whatever its place in the listing (`--on-bad-file skip`). With `--on-bad-file fail` a
//! bad file stops the run, the first one included.

use crate::bindings::types::ColumnSchema;
use crate::pipeline::{OnBadFile, PipelineError, display_name};
use crate::source::parquet::SourceError;
use crate::source::{Stage, StageError, StageFile};

/// Dead-letter kind of the rows of a file whose columns differ from the stage's.
pub const KIND_SCHEMA_MISMATCH: &str = "schema-mismatch";
/// The dead-letter kind of one row a reader cannot read (`SourceError::Row`: a CSV value
/// that does not parse as its declared type, a JSON line that is not an object, …).
pub const KIND_UNREADABLE_ROW: &str = "unreadable-row";

/// Why a file cannot be used: the dead letters' `kind` and the full reason.
#[derive(Debug, Clone)]
pub struct BadFile {
    /// `vanished-file`, `changed-file`, `corrupt-file`, `unsupported-file`,
    /// `schema-mismatch` or `unreadable-file`.
    pub kind: &'static str,
    /// The error, naming the file.
    pub reason: String,
}

impl BadFile {
    pub fn new(error: &StageError) -> Self {
        BadFile {
            kind: kind(error),
            reason: error.to_string(),
        }
    }
}

impl std::fmt::Display for BadFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The dead-letter kind for a stage error about one file.
pub fn kind(error: &StageError) -> &'static str {
    match error {
        StageError::NotFound { .. } | StageError::Vanished { .. } => "vanished-file",
        StageError::Changed { .. } => "changed-file",
        StageError::SchemaMismatch { .. } => KIND_SCHEMA_MISMATCH,
        StageError::Source(
            SourceError::Unsupported { .. }
            | SourceError::UnsupportedColumn { .. }
            | SourceError::Codec { .. },
        ) => "unsupported-file",
        StageError::Source(_) => "corrupt-file",
        _ => "unreadable-file",
    }
}

/// The stage's schema: that of the first file whose footer can be read and whose columns
/// a plugin can receive (empty for an empty stage). Files before it are bad: with
/// [`OnBadFile::Skip`] they are left for the workers to dead-letter; with
/// [`OnBadFile::Fail`] the first is the error. A stage with no readable file is an error
/// naming the first file and why it cannot be read.
pub fn stage_schema(
    stage: &Stage,
    files: &[StageFile],
    on_bad_file: OnBadFile,
) -> Result<Vec<ColumnSchema>, PipelineError> {
    let mut first_bad: Option<(String, StageError)> = None;
    for file in files {
        let schema = stage
            .open_footer(file)
            .and_then(|source| source.contract_schema());
        match schema {
            Ok(schema) => {
                if let Some((name, _)) = &first_bad {
                    tracing::info!(file = %display_name(file), "the stage's schema is this file's: the files before it (from {name}) cannot be read");
                }
                return Ok(schema);
            }
            Err(e) if e.is_bad_file() && on_bad_file == OnBadFile::Skip => {
                if first_bad.is_none() {
                    first_bad = Some((display_name(file), e));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    match first_bad {
        None => Ok(Vec::new()),
        // The reason names the file.
        Some((_, error)) => Err(PipelineError::NoReadableFile {
            files: files.len(),
            reason: error.to_string(),
        }),
    }
}
