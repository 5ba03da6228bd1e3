//! What the checkpointer hands a worker: a reference to a claimed file ([`FileRef`]),
//! the answer to a claim ([`Claim`]), where to resume ([`ResumePlan`]), the counts of a
//! closed segment ([`SegmentCounts`]) and the checkpointer's settings
//! ([`CheckpointConfig`]).

use std::time::Duration;

use super::AckGroup;
use crate::state::files::FileState;

/// A file this run claimed (index into the checkpointer's files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileRef(pub(super) usize);

impl FileRef {
    /// A reference for unit tests of code keyed by files.
    #[cfg(test)]
    pub(crate) fn for_tests(index: usize) -> Self {
        FileRef(index)
    }
}

/// What a worker may do with a file.
#[derive(Debug)]
pub enum Claim {
    /// Ours: process what is not acknowledged yet.
    Mine(ResumePlan),
    /// Done (by an earlier run or another worker) for this version of the file.
    Done(Box<FileState>),
    /// Another worker holds a live lease on it.
    Held { owner: String, expires_at_ms: u64 },
}

/// Where to start a claimed file.
#[derive(Debug, Clone)]
pub struct ResumePlan {
    pub file: FileRef,
    pub segment_rows: u64,
    /// Segments acknowledged by earlier runs.
    pub acked: Vec<[u64; 2]>,
    /// Unacknowledged segments below this may have been sent by an earlier run.
    pub earlier_dispatch_limit: u64,
    /// Whether an earlier run worked on this version of the file.
    pub resumed: bool,
}

impl ResumePlan {
    pub fn is_acked(&self, segment: u64) -> bool {
        self.acked
            .iter()
            .any(|[a, b]| *a <= segment && segment < *b)
    }

    /// The first segment not acknowledged.
    pub fn first_open_segment(&self) -> u64 {
        match self.acked.first() {
            Some([0, end]) => *end,
            _ => 0,
        }
    }

    /// Whether a segment being sent now may have been sent before (a possible duplicate).
    pub fn maybe_sent_before(&self, segment: u64) -> bool {
        segment < self.earlier_dispatch_limit && !self.is_acked(segment)
    }
}

/// Counts of a closed segment that do not come from the endpoint.
#[derive(Debug, Clone, Copy, Default)]
pub struct SegmentCounts {
    pub rows: u64,
    pub filtered: u64,
    pub dead_lettered: u64,
    pub unchanged: u64,
}

/// How the checkpointer identifies itself and sizes things.
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    pub stage_url: String,
    pub run_id: String,
    /// `host:pid:run-id`.
    pub owner: String,
    pub segment_rows: u64,
    pub lease: Duration,
    /// How acknowledgements are grouped into writes ([`AckGroup::default`] in runs).
    pub group: AckGroup,
    /// The stage's full-refresh generation ([`crate::state::refresh`]), if it has one:
    /// documents of another generation are started over, new ones carry it.
    pub generation: Option<String>,
    /// The run's plugin digest, recorded in the documents it claims.
    pub plugin_sha256: Option<String>,
}
