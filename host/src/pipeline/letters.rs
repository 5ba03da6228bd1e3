//! The run's dead-letter output: every letter goes to the local file first, then (for a
//! claimed file, with its key and version) to the state through the checkpointer, and is
//! counted. The checkpointer flushes the local file before it writes a chunk of letters to
//! the state, so the local file always holds every letter the state holds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::deadletter::{DeadLetter, DeadLetterWriter};
use crate::state::checkpoint::{Checkpointer, FileRef};
use crate::sync::lock;

use super::PipelineError;
use super::tally::Tally;

/// A file this run claimed, as its dead letters name it.
#[derive(Clone)]
pub(super) struct ClaimedFile {
    pub(super) file: FileRef,
    /// The object key.
    pub(super) key: String,
    /// The file version (`state::files::identity`).
    pub(super) identity: String,
}

/// See the module docs.
pub(super) struct Letters {
    writer: Arc<Mutex<DeadLetterWriter>>,
    path: PathBuf,
    /// Display name → claimed file.
    claimed: Mutex<HashMap<Arc<str>, ClaimedFile>>,
}

impl Letters {
    /// Opens the local dead-letter file in `dir`.
    pub(super) fn open(dir: &Path) -> Result<Self, PipelineError> {
        let writer = DeadLetterWriter::open(dir).map_err(|source| PipelineError::DeadLetters {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Letters {
            path: writer.path().to_path_buf(),
            writer: Arc::new(Mutex::new(writer)),
            claimed: Mutex::new(HashMap::new()),
        })
    }

    /// The local file's path (the report's `deadLetters`).
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The writer, for the checkpointer's flush before it writes letters to the state.
    pub(super) fn writer(&self) -> Arc<Mutex<DeadLetterWriter>> {
        self.writer.clone()
    }

    /// Notes a file this run claimed: its letters carry its key and version.
    pub(super) fn claimed(&self, name: Arc<str>, file: ClaimedFile) {
        lock(&self.claimed).insert(name, file);
    }

    /// The claimed file of a display name.
    pub(super) fn claimed_file(&self, name: &str) -> Option<ClaimedFile> {
        lock(&self.claimed).get(name).cloned()
    }

    /// Writes a letter to the local file and, for a claimed file, to the state; counts it.
    pub(super) fn write(
        &self,
        mut letter: DeadLetter,
        checkpointer: &Checkpointer,
        tally: &Tally,
    ) -> Result<(), PipelineError> {
        let claimed = self.claimed_file(&letter.file);
        if let Some(c) = &claimed {
            letter.key = Some(c.key.clone());
            letter.identity = Some(c.identity.clone());
        }
        tally.dead_lettered(&letter);
        let mut line = serde_json::to_vec(&letter).map_err(PipelineError::EncodeLetter)?;
        line.push(b'\n');
        lock(&self.writer)
            .write_line(&line)
            .map_err(|source| self.error(source))?;
        if let Some(c) = claimed {
            checkpointer.dead_letter(c.file, &line[..line.len() - 1]);
        }
        Ok(())
    }

    /// Flushes the local file.
    pub(super) fn flush(&self) -> Result<(), PipelineError> {
        lock(&self.writer)
            .flush()
            .map_err(|source| self.error(source))
    }

    fn error(&self, source: std::io::Error) -> PipelineError {
        PipelineError::DeadLetters {
            path: self.path.clone(),
            source,
        }
    }
}
