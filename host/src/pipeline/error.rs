//! Why a run stops: one typed error for the pipeline layer, wrapping the layers below.

use std::path::PathBuf;

use crate::bad_file::BadFile;
use crate::plugin::PluginError;
use crate::sink::SinkError;
use crate::source::StageError;
use crate::source::parquet::SourceError;
use crate::state::StateError;
use crate::state::checkpoint::{CheckpointError, WaitError};
use crate::state::fingerprints::FingerprintError;

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The mapping (or the pass-through) does not fit the stage's schema.
    #[error(transparent)]
    Mapping(#[from] crate::mapping::MappingError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("fingerprints: {0}")]
    Fingerprints(#[from] FingerprintError),
    #[error("none of the {files} files of the stage can be read; the first: {reason}")]
    NoReadableFile { files: usize, reason: String },
    #[error("dead-letter output {path}: {source}")]
    DeadLetters {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode a dead letter: {0}")]
    EncodeLetter(serde_json::Error),
    /// `--on-bad-file fail` and a file that cannot be used (the reason names it once).
    #[error("{bad} (the run stops on a bad file: --on-bad-file fail)")]
    BadFile { bad: BadFile },
    /// The checkpointer could not write the delivery state (while the run went on).
    #[error("the delivery state cannot be written: {0}")]
    StateWrite(CheckpointError),
    /// The delivery state could not be written when the run finished.
    #[error("the delivery state could not be written: {0}")]
    StateFinish(CheckpointError),
    /// A wait for an earlier body of the file ended without it.
    #[error("{file}: {source}")]
    Wait { file: String, source: WaitError },
    #[error("cannot start the HTTP runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot start a worker: {0}")]
    SpawnWorker(std::io::Error),
    #[error("a worker thread panicked")]
    WorkerPanicked,
    #[error("the sink task failed: {0}")]
    SinkTask(tokio::task::JoinError),
}

impl From<super::transformer::StartError> for PipelineError {
    fn from(e: super::transformer::StartError) -> Self {
        match e {
            super::transformer::StartError::Plugin(e) => PipelineError::Plugin(e),
            super::transformer::StartError::Mapping(e) => PipelineError::Mapping(e),
        }
    }
}
