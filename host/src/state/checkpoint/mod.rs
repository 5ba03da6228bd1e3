//! The run's view of the delivery state: claims files (leases), records acknowledged
//! segments and writes them behind the workers (group commit: one writer thread writes the
//! latest document of every changed file as fast as the store takes it), renews leases,
//! and notices a lease taken over by another worker.
//!
//! Order of writes for a file: its new dead letters (an immutable chunk), then the document
//! counting them; so an acknowledged segment's dead letters are always in the state. Before
//! a chunk is written, the run's local dead-letter file is made durable
//! ([`Checkpointer::sync_letters_with`]), so that file holds every letter the state holds.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::files::{self, FileCounts, FileState, FileStatus, Lease};
use super::{PutMode, StateError, StateStore, Version};
use crate::source::StageFile;
use crate::wire::time::{now_ms, rfc3339_ms};

/// Default lease length: a worker that stops renewing (killed, partitioned) loses its
/// files this long after its last write.
pub const DEFAULT_LEASE_SECS: u64 = 60;
/// Unacknowledged segments a file may have in flight: a worker sends segment `s` only when
/// `s < first unacknowledged + DISPATCH_WINDOW` and `s` is below the durable
/// `dispatchLimit` (which every state write moves to that bound). After a crash, at most
/// this many segments per file can have been delivered without the state knowing.
pub const DISPATCH_WINDOW: u64 = 8;

/// Why [`Checkpointer::wait_to_send`] gave up.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WaitError {
    /// The run is stopping (a fatal error, a cancel): nothing more is sent.
    #[error("the run is stopping")]
    Stopping,
    /// Another worker took the file over.
    #[error("another worker took the file over")]
    Lost,
    /// Writing the state failed.
    #[error("{0}")]
    State(String),
}

/// Makes the run's local dead-letter file durable (`crate::deadletter::letter_sync`);
/// called before each chunk of dead letters is written to the state.
pub type LetterSync = Box<dyn Fn() -> Result<(), LetterSyncError> + Send + Sync>;

/// The local dead-letter file could not be made durable: the state must not record letters
/// the file may lack, so the run stops.
#[derive(Debug, thiserror::Error)]
#[error("the dead-letter file {} cannot be written: {source}", path.display())]
pub struct LetterSyncError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// A file this run claimed (index into the checkpointer's files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileRef(usize);

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
}

#[derive(Default)]
struct Segment {
    bodies: i64,
    closed: bool,
    counts: SegmentCounts,
    delivered: u64,
    receipts: Vec<String>,
}

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
    lost: bool,
    released: bool,
    last_write: Instant,
}

impl Tracked {
    fn live(&self) -> bool {
        !self.lost && !self.released && self.doc.status == FileStatus::Partial
    }
}

#[derive(Default)]
struct Shared {
    files: Vec<Tracked>,
    /// The run is stopping: nothing more is sent ([`Checkpointer::interrupt`]).
    interrupted: bool,
    stopping: bool,
    error: Option<String>,
    writes: u64,
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

/// Whether the lease's owner is a process of this machine that no longer runs (a crashed
/// earlier run: its files need not wait for the lease to lapse).
fn owner_is_dead(lease: &Lease) -> bool {
    dead_owner_pid(lease).is_some()
}

/// The pid of the lease's owner when it is a process of this machine that no longer runs.
fn dead_owner_pid(lease: &Lease) -> Option<i32> {
    let mut parts = lease.owner.splitn(3, ':');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
        return None;
    };
    if host != hostname() {
        return None;
    }
    let pid = pid.parse::<i32>().ok()?;
    if pid <= 0 || pid as u32 == std::process::id() {
        return None;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    (!alive).then_some(pid)
}

/// Why another worker's lease no longer holds, for the takeover's log line: its process is
/// gone (same machine, pid not running; the lease may still have had time to run), or its
/// lease expired.
fn takeover_reason(lease: &Lease, now_ms: u64) -> String {
    match dead_owner_pid(lease) {
        Some(pid) => format!(
            "whose process is gone (pid {pid} no longer runs on this machine, {}); its lease \
             {} {}",
            hostname(),
            if lease.expires_at_ms <= now_ms {
                "expired at"
            } else {
                "would have run until"
            },
            lease.expires_at
        ),
        None => format!("whose lease expired at {}", lease.expires_at),
    }
}

/// This machine's name, for lease owners (`HOSTNAME`, else `/etc/hostname`).
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
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
                .spawn(move || write_loop(&inner))
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

    fn lease(&self) -> Lease {
        let expires = now_ms() + self.inner.config.lease.as_millis() as u64;
        Lease {
            owner: self.inner.config.owner.clone(),
            expires_at_ms: expires,
            expires_at: rfc3339_ms(expires),
        }
    }

    /// Claims `file` for this run (compare-and-swap on its document).
    pub fn claim(&self, file: &StageFile) -> Result<Claim, StateError> {
        let config = &self.inner.config;
        let path = files::file_path(&config.stage_url, &file.key);
        let identity = files::identity(file);
        loop {
            let stored = self.inner.store.get(&path)?;
            let (mut doc, mode, resumed) = match &stored {
                None => (
                    FileState::new(&config.stage_url, file, config.segment_rows, &config.run_id),
                    PutMode::Create,
                    false,
                ),
                Some(stored) => {
                    let old = FileState::parse(&path, stored)?;
                    let mode = PutMode::Update(stored.version.clone());
                    if old.identity != identity {
                        tracing::info!(file = %file.key, "the file was replaced since it was delivered: sending it again");
                        let doc = FileState::new(
                            &config.stage_url,
                            file,
                            config.segment_rows,
                            &config.run_id,
                        );
                        (doc, mode, false)
                    } else if old.status == FileStatus::Done {
                        return Ok(Claim::Done(Box::new(old)));
                    } else if let Some(lease) = old.lease.as_ref().filter(|l| {
                        l.expires_at_ms > now_ms() && l.owner != config.owner && !owner_is_dead(l)
                    }) {
                        return Ok(Claim::Held {
                            owner: lease.owner.clone(),
                            expires_at_ms: lease.expires_at_ms,
                        });
                    } else {
                        if let Some(lease) = old.lease.as_ref().filter(|l| l.owner != config.owner)
                        {
                            tracing::warn!(file = %file.key, owner = %lease.owner, "taking over the file from a worker {}", takeover_reason(lease, now_ms()));
                        }
                        let resumed = !old.acked.is_empty() || old.dispatch_limit > 0;
                        (old, mode, resumed)
                    }
                }
            };
            let earlier_dispatch_limit = doc.dispatch_limit;
            doc.lease = Some(self.lease());
            doc.run_id = config.run_id.clone();
            doc.updated_at = crate::wire::time::now_rfc3339();
            match self.inner.store.put(&path, &doc.to_json(), mode) {
                Ok(version) => {
                    let plan = ResumePlan {
                        file: FileRef(0),
                        segment_rows: doc.segment_rows,
                        acked: doc.acked.clone(),
                        earlier_dispatch_limit,
                        resumed,
                    };
                    let mut state = self.inner.lock();
                    let index = state.files.len();
                    state.files.push(Tracked {
                        path,
                        durable_limit: doc.dispatch_limit,
                        wanted_limit: doc.dispatch_limit,
                        doc,
                        version,
                        letters: Vec::new(),
                        letter_chunks: 0,
                        open: HashMap::new(),
                        dispatch_finished: false,
                        dirty: false,
                        lost: false,
                        released: false,
                        last_write: Instant::now(),
                    });
                    return Ok(Claim::Mine(ResumePlan {
                        file: FileRef(index),
                        ..plan
                    }));
                }
                Err(StateError::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Records how many segments the file has (from its footer).
    pub fn set_segments(&self, file: FileRef, segments: u64) {
        let mut state = self.inner.lock();
        let t = &mut state.files[file.0];
        t.doc.segments = Some(segments);
        t.dirty = true;
        self.inner.changed.notify_all();
    }

    /// Blocks until `segment` may be sent (it is below the durable dispatch limit). `Err`
    /// when the run is stopping ([`Checkpointer::interrupt`]: the acknowledgements this
    /// waits for may never come), the file was lost to another worker, or the state cannot
    /// be written.
    pub fn wait_to_send(&self, file: FileRef, segment: u64) -> Result<(), WaitError> {
        let mut state = self.inner.lock();
        loop {
            if state.interrupted {
                return Err(WaitError::Stopping);
            }
            if let Some(e) = &state.error {
                return Err(WaitError::State(e.clone()));
            }
            let t = &mut state.files[file.0];
            if t.lost {
                return Err(WaitError::Lost);
            }
            let allowed = t.doc.first_unacked() + DISPATCH_WINDOW;
            if t.wanted_limit < allowed {
                t.wanted_limit = allowed;
                t.dirty = true;
                self.inner.changed.notify_all();
            }
            if segment < t.durable_limit && segment < allowed {
                return Ok(());
            }
            state = self
                .inner
                .changed
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The run is stopping: every [`Checkpointer::wait_to_send`] ends now, and later ones at
    /// once. Acknowledgements still arriving are recorded as usual.
    pub fn interrupt(&self) {
        self.inner.lock().interrupted = true;
        self.inner.changed.notify_all();
    }

    /// A body of `segment` is about to be sent.
    pub fn body_sent(&self, file: FileRef, segment: u64) {
        let mut state = self.inner.lock();
        state.files[file.0].open.entry(segment).or_default().bodies += 1;
    }

    /// Every body of `segment` was sent (or it had none). Returns whether that
    /// acknowledged the segment.
    pub fn segment_closed(&self, file: FileRef, segment: u64, counts: SegmentCounts) -> bool {
        let mut state = self.inner.lock();
        let t = &mut state.files[file.0];
        let s = t.open.entry(segment).or_default();
        s.closed = true;
        s.counts = counts;
        self.settle(t, segment)
    }

    /// A body of `segment` came back: `delivered` records stored (with `receipts`), its
    /// rejected rows already handed to [`Checkpointer::dead_letter`]. Returns whether that
    /// acknowledged the segment.
    pub fn body_done(
        &self,
        file: FileRef,
        segment: u64,
        delivered: u64,
        rejected_rows: u64,
        receipts: Vec<String>,
    ) -> bool {
        let mut state = self.inner.lock();
        let t = &mut state.files[file.0];
        let s = t.open.entry(segment).or_default();
        s.bodies -= 1;
        s.delivered += delivered;
        s.counts.dead_lettered += rejected_rows;
        s.receipts.extend(receipts);
        self.settle(t, segment)
    }

    /// Acknowledges `segment` once closed with no body outstanding; finishes the file once
    /// every segment is acknowledged.
    fn settle(&self, t: &mut Tracked, segment: u64) -> bool {
        let ready = t
            .open
            .get(&segment)
            .is_some_and(|s| s.closed && s.bodies == 0);
        if ready && let Some(s) = t.open.remove(&segment) {
            t.doc.ack(segment);
            let c: &mut FileCounts = &mut t.doc.counts;
            c.rows += s.counts.rows;
            c.rows_filtered += s.counts.filtered;
            c.rows_dead_lettered += s.counts.dead_lettered;
            c.records_unchanged += s.counts.unchanged;
            c.records_delivered += s.delivered;
            t.doc.receipts.extend(s.receipts);
            // The write of this acknowledgement also lets the worker go further.
            t.wanted_limit = t.wanted_limit.max(t.doc.first_unacked() + DISPATCH_WINDOW);
            t.dirty = true;
        }
        self.maybe_done(t);
        self.inner.changed.notify_all();
        ready
    }

    fn maybe_done(&self, t: &mut Tracked) {
        if t.dispatch_finished && t.open.is_empty() && t.doc.all_acked() {
            t.doc.status = FileStatus::Done;
            if t.doc.outcome.is_none() {
                t.doc.outcome = Some("delivered".into());
            }
            t.doc.lease = None;
            t.dirty = true;
        }
    }

    /// Counts segments that were sent again after a crash.
    pub fn resent(&self, file: FileRef, segments: u64) {
        let mut state = self.inner.lock();
        state.files[file.0].doc.resent_segments += segments;
    }

    /// Keeps a dead letter of the file for `retry` (written before the segment counting it).
    pub fn dead_letter(&self, file: FileRef, line: &[u8]) {
        let mut state = self.inner.lock();
        let t = &mut state.files[file.0];
        t.letters.extend_from_slice(line);
        t.letters.push(b'\n');
    }

    /// Every segment of the file was handed over.
    pub fn dispatch_finished(&self, file: FileRef) {
        let mut state = self.inner.lock();
        let t = &mut state.files[file.0];
        t.dispatch_finished = true;
        self.maybe_done(t);
        t.dirty = true;
        self.inner.changed.notify_all();
    }

    /// The file cannot be read from segment `from` on: those segments are acknowledged as
    /// dead letters (already handed over) and the file ends as `bad-file`.
    pub fn bad_from(&self, file: FileRef, from: u64, segments: u64, error: &str, rows: u64) {
        let mut state = self.inner.lock();
        let t = &mut state.files[file.0];
        t.doc.outcome = Some("bad-file".into());
        t.doc.error = Some(error.to_string());
        t.doc.segments = Some(segments.max(from));
        for s in from..segments {
            if !t.open.contains_key(&s) {
                t.doc.ack(s);
            }
        }
        t.doc.counts.rows += rows;
        t.doc.counts.rows_dead_lettered += rows;
        t.dispatch_finished = true;
        self.maybe_done(t);
        t.dirty = true;
        self.inner.changed.notify_all();
    }

    /// Whether another worker took the file over (stop working on it).
    pub fn is_lost(&self, file: FileRef) -> bool {
        self.inner.lock().files[file.0].lost
    }

    /// The document as this run last knew it.
    pub fn document(&self, file: FileRef) -> FileState {
        self.inner.lock().files[file.0].doc.clone()
    }

    /// The first error writing the state (the run must stop), if any.
    pub fn error(&self) -> Option<String> {
        self.inner.lock().error.clone()
    }

    /// Documents written so far.
    pub fn writes(&self) -> u64 {
        self.inner.lock().writes
    }

    /// Releases the leases of unfinished files, writes everything and stops the writer.
    pub fn finish(&self) -> Result<(), String> {
        {
            let mut state = self.inner.lock();
            for t in state.files.iter_mut() {
                if t.live() {
                    t.doc.lease = None;
                    t.released = true;
                    t.dirty = true;
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

struct Job {
    index: usize,
    path: String,
    doc: FileState,
    version: Version,
    letters: Vec<u8>,
    chunk: u32,
}

fn write_loop(inner: &Inner) {
    let renew_every = inner.config.lease / 3;
    loop {
        let jobs = {
            let mut state = inner.lock();
            loop {
                let due = |t: &Tracked| {
                    t.dirty
                        || !t.letters.is_empty()
                        || (t.live() && t.last_write.elapsed() >= renew_every)
                };
                if state.error.is_none() && state.files.iter().any(due) {
                    break;
                }
                if state.stopping || state.error.is_some() {
                    return;
                }
                let (next, _) = inner
                    .changed
                    .wait_timeout(state, renew_every.max(Duration::from_millis(50)))
                    .unwrap_or_else(|p| p.into_inner());
                state = next;
            }
            let mut jobs = Vec::new();
            for (index, t) in state.files.iter_mut().enumerate() {
                let renew = t.live() && t.last_write.elapsed() >= renew_every;
                if !(t.dirty || !t.letters.is_empty() || renew) || t.lost {
                    continue;
                }
                t.dirty = false;
                if t.live() {
                    let expires = now_ms() + inner.config.lease.as_millis() as u64;
                    t.doc.lease = Some(Lease {
                        owner: inner.config.owner.clone(),
                        expires_at_ms: expires,
                        expires_at: rfc3339_ms(expires),
                    });
                }
                t.doc.dispatch_limit = t.doc.dispatch_limit.max(t.wanted_limit);
                t.doc.run_id = inner.config.run_id.clone();
                t.doc.updated_at = crate::wire::time::now_rfc3339();
                let chunk = t.letter_chunks;
                if !t.letters.is_empty() {
                    t.letter_chunks += 1;
                }
                jobs.push(Job {
                    index,
                    path: t.path.clone(),
                    doc: t.doc.clone(),
                    version: t.version.clone(),
                    letters: std::mem::take(&mut t.letters),
                    chunk,
                });
            }
            jobs
        };
        // Every letter in these jobs was written to the local file before it was handed
        // over: make the file durable before the state records them.
        if jobs.iter().any(|j| !j.letters.is_empty())
            && let Some(sync) = inner.letter_sync.get()
            && let Err(e) = sync()
        {
            let message = e.to_string();
            tracing::error!("{message}");
            inner.lock().error.get_or_insert(message);
            inner.changed.notify_all();
            continue;
        }
        for job in jobs {
            let result = write_job(inner, &job);
            let mut state = inner.lock();
            state.writes += 1;
            let t = &mut state.files[job.index];
            match result {
                Ok(version) => {
                    crate::failpoint::hit("after-checkpoint");
                    t.version = version;
                    t.durable_limit = job.doc.dispatch_limit;
                    t.last_write = Instant::now();
                }
                Err(StateError::Conflict { .. }) => {
                    let owner = inner
                        .store
                        .get(&job.path)
                        .ok()
                        .flatten()
                        .and_then(|s| FileState::parse(&job.path, &s).ok())
                        .and_then(|d| d.lease.map(|l| l.owner));
                    tracing::error!(
                        file = %job.doc.key,
                        owner = owner.as_deref().unwrap_or("-"),
                        "another worker took the file over (our lease had lapsed): stopping work on it"
                    );
                    t.lost = true;
                }
                Err(e) => {
                    let message = e.to_string();
                    tracing::error!("cannot write the delivery state: {message}");
                    state.error.get_or_insert(message);
                }
            }
            inner.changed.notify_all();
        }
    }
}

fn write_job(inner: &Inner, job: &Job) -> Result<Version, StateError> {
    if !job.letters.is_empty() {
        let prefix = files::file_dead_letters_prefix(&inner.config.stage_url, &job.doc.key);
        // Named to sort by time: `retry` keeps the newest letter of a row.
        let path = format!(
            "{prefix}{:013}-{}-{:06}.ndjson",
            now_ms(),
            inner.config.run_id,
            job.chunk
        );
        inner.store.put(&path, &job.letters, PutMode::Overwrite)?;
    }
    inner.store.put(
        &job.path,
        &job.doc.to_json(),
        PutMode::Update(job.version.clone()),
    )
}
