//! The run's view of the delivery state: claims files (leases), records acknowledged
//! segments and writes them behind the workers (group commit: one writer thread writes the
//! latest document of every changed file; acknowledgements are grouped with their
//! neighbours, see `group`), renews leases, and notices a lease taken over by another
//! worker.
//!
//! Order of writes for a file: its new dead letters (an immutable chunk), then the document
//! counting them; so an acknowledged segment's dead letters are always in the state. Before
//! a chunk is written, the run's local dead-letter file is made durable
//! ([`Checkpointer::sync_letters_with`]), so that file holds every letter the state holds.
//!
//! This module owns the [`Checkpointer`] itself (start, interrupt, finish) and the state
//! its parts share; the parts:
//!
//! - `claim`: claiming a file (compare-and-swap of its document);
//! - `lease`: lease owners, and whether another worker's lease still holds;
//! - `segments`: a claimed file's segments, dispatch window, acknowledgements and end;
//! - `writer`: the writer thread;
//! - `group`: when a changed document is written (grouping acknowledgements);
//! - `plan`: the values handed to workers; `error`: the errors.

mod claim;
mod error;
mod group;
mod lease;
mod plan;
mod segments;
mod writer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_group;
#[cfg(test)]
mod tests_refresh;

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

pub use error::{CheckpointError, LetterSync, LetterSyncError, WaitError};
pub use group::{ACK_GROUP_LINGER, ACK_GROUP_SEGMENTS, AckGroup};
pub use lease::hostname;
pub use plan::{CheckpointConfig, Claim, FileRef, ResumePlan, SegmentCounts};

use super::files::{FileState, FileStatus};
use super::{StateStore, Version};
use group::Pending;

/// Default lease length: a worker that stops renewing (killed, partitioned) loses its
/// files this long after its last write.
pub const DEFAULT_LEASE_SECS: u64 = 60;
/// Unacknowledged segments a file may have in flight: a worker sends segment `s` only when
/// `s < first unacknowledged + DISPATCH_WINDOW` and `s` is below the durable
/// `dispatchLimit` (which every state write moves to that bound). After a crash, at most
/// this many segments per file can have been delivered without the state knowing.
pub const DISPATCH_WINDOW: u64 = 8;

/// A segment with bodies in flight or not closed yet.
#[derive(Default)]
struct Segment {
    bodies: i64,
    closed: bool,
    counts: SegmentCounts,
    delivered: u64,
    receipts: Vec<String>,
}

/// A file this run claimed: its document as this run knows it and what is not written yet.
struct Tracked {
    path: String,
    doc: FileState,
    version: Version,
    letters: Vec<u8>,
    letter_chunks: u32,
    open: HashMap<u64, Segment>,
    durable_limit: u64,
    wanted_limit: u64,
    dispatch_finished: bool,
    dirty: bool,
    /// What of `dirty` (and `letters`) waits for its group, and since when.
    pending: Pending,
    /// Workers blocked in [`Checkpointer::wait_to_send`] on this file that only a write
    /// (of a wider dispatch window) lets go.
    waiters: usize,
    lost: bool,
    released: bool,
    last_write: Instant,
}

impl Tracked {
    fn live(&self) -> bool {
        !self.lost && !self.released && self.doc.status == FileStatus::Partial
    }

    /// The document changed in a way that is written at once.
    fn changed_now(&mut self) {
        self.dirty = true;
        self.pending.urgent(Instant::now());
    }

    /// A segment was acknowledged: written with its group.
    fn changed_ack(&mut self) {
        self.dirty = true;
        self.pending.ack(Instant::now());
    }
}

#[derive(Default)]
struct Shared {
    files: Vec<Tracked>,
    /// The run is stopping: nothing more is sent ([`Checkpointer::interrupt`]).
    interrupted: bool,
    stopping: bool,
    error: Option<CheckpointError>,
    writes: u64,
    /// Workers blocked in [`Checkpointer::wait_to_send`].
    waiting: usize,
}

struct Inner {
    store: StateStore,
    config: CheckpointConfig,
    state: Mutex<Shared>,
    changed: Condvar,
    letter_sync: OnceLock<LetterSync>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// See the module docs.
pub struct Checkpointer {
    inner: Arc<Inner>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Starts the writer thread.
    pub fn start(store: StateStore, config: CheckpointConfig) -> Self {
        let inner = Arc::new(Inner {
            store,
            config,
            state: Mutex::new(Shared::default()),
            changed: Condvar::new(),
            letter_sync: OnceLock::new(),
        });
        let writer = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("stagepush-state".into())
                .spawn(move || writer::write_loop(&inner))
                .ok()
        };
        Checkpointer {
            inner,
            writer: Mutex::new(writer),
        }
    }

    pub fn store(&self) -> &StateStore {
        &self.inner.store
    }

    /// Sets what makes the local dead-letter file durable before dead letters are written
    /// to the state (once, before the first [`Checkpointer::dead_letter`]).
    pub fn sync_letters_with(&self, sync: LetterSync) {
        let _ = self.inner.letter_sync.set(sync);
    }

    /// The run is stopping: every [`Checkpointer::wait_to_send`] ends now, and later ones at
    /// once. Acknowledgements still arriving are recorded as usual.
    pub fn interrupt(&self) {
        self.inner.lock().interrupted = true;
        self.inner.changed.notify_all();
    }

    /// The first error writing the state (the run must stop), if any.
    pub fn error(&self) -> Option<CheckpointError> {
        self.inner.lock().error.clone()
    }

    /// Documents written so far.
    pub fn writes(&self) -> u64 {
        self.inner.lock().writes
    }

    /// Workers blocked in [`Checkpointer::wait_to_send`] now.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.inner.lock().waiting
    }

    /// Releases the leases of unfinished files, writes everything and stops the writer.
    pub fn finish(&self) -> Result<(), CheckpointError> {
        {
            let mut state = self.inner.lock();
            for t in state.files.iter_mut() {
                if t.live() {
                    t.doc.lease = None;
                    t.released = true;
                    t.changed_now();
                }
            }
            state.stopping = true;
            self.inner.changed.notify_all();
        }
        if let Some(handle) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = handle.join();
        }
        match self.error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
