//! The writer thread (group commit): writes the latest document of every file whose changes
//! are due (`group`: acknowledgements grouped with their neighbours, everything else at
//! once), its new dead letters first, renews leases, notices a file taken over by another
//! worker, and records the first failure ([`CheckpointError`]), which stops the run.

use std::time::{Duration, Instant};

use super::group::{Due, due};
use super::lease::new_lease;
use super::{CheckpointError, Inner, Shared, Tracked};
use crate::state::files::{self, FileState};
use crate::state::{PutMode, StateError, Version};
use crate::wire::time::now_ms;

/// One document (and its new dead letters) to write.
struct Job {
    index: usize,
    path: String,
    doc: FileState,
    version: Version,
    letters: Vec<u8>,
    chunk: u32,
}

/// The writer thread's loop; returns once the checkpointer stops or the state fails.
pub(super) fn write_loop(inner: &Inner) {
    let renew_every = inner.config.lease / 3;
    loop {
        let jobs = {
            let mut state = inner.lock();
            let mut sleep = renew_every.max(Duration::from_millis(50));
            loop {
                let now = Instant::now();
                let mut any_due = false;
                for t in &state.files {
                    match when_due(inner, &state, t, now) {
                        Due::Now => any_due = true,
                        Due::At(at) => sleep = sleep.min(at - now),
                        Due::Idle => {}
                    }
                }
                if state.error.is_none() && any_due {
                    break;
                }
                if state.stopping || state.error.is_some() {
                    return;
                }
                let (next, _) = inner
                    .changed
                    .wait_timeout(state, sleep.max(MIN_SLEEP))
                    .unwrap_or_else(|p| p.into_inner());
                state = next;
                sleep = renew_every.max(Duration::from_millis(50));
            }
            let now = Instant::now();
            let due_now: Vec<bool> = state
                .files
                .iter()
                .map(|t| when_due(inner, &state, t, now) == Due::Now)
                .collect();
            let mut jobs = Vec::new();
            for ((index, t), due_now) in state.files.iter_mut().enumerate().zip(due_now) {
                if !due_now {
                    continue;
                }
                t.dirty = false;
                t.pending = Default::default();
                if t.live() {
                    t.doc.lease = Some(new_lease(&inner.config));
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
            tracing::error!("{e}");
            inner.lock().error.get_or_insert(CheckpointError::from(e));
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
                    tracing::error!("cannot write the delivery state: {e}");
                    state.error.get_or_insert(CheckpointError::from(e));
                }
            }
            inner.changed.notify_all();
        }
    }
}

/// When the writer next checks whether something is due, at the soonest.
const MIN_SLEEP: Duration = Duration::from_millis(1);

/// When `t` is to be written: its grouped changes (`group`), or its lease renewal.
fn when_due(inner: &Inner, state: &Shared, t: &Tracked, now: Instant) -> Due {
    if t.lost {
        return Due::Idle;
    }
    let renew_every = inner.config.lease / 3;
    let renew_at = t.live().then(|| t.last_write + renew_every);
    if renew_at.is_some_and(|at| at <= now) {
        return Due::Now;
    }
    let flush = state.stopping || state.interrupted;
    let changed = t.dirty || !t.letters.is_empty();
    match due(
        &t.pending,
        changed,
        t.waiters,
        flush,
        &inner.config.group,
        now,
    ) {
        Due::At(at) => Due::At(renew_at.map_or(at, |r| r.min(at))),
        Due::Idle => renew_at.map_or(Due::Idle, Due::At),
        Due::Now => Due::Now,
    }
}

/// Writes a job's dead letters (a new chunk) and then its document.
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
