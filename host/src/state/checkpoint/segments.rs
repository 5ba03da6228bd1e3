//! A claimed file's journey through the run: how many segments it has, the dispatch
//! window a worker waits on before sending a segment ([`DISPATCH_WINDOW`]), the bodies
//! sent and acknowledged per segment, its dead letters, and when it is done (every
//! segment acknowledged) or a bad file.

use super::{Checkpointer, DISPATCH_WINDOW, FileRef, SegmentCounts, Tracked, WaitError};
use crate::state::files::{FileCounts, FileState, FileStatus};

impl Checkpointer {
    /// Records how many segments the file has (from its footer).
    pub fn set_segments(&self, file: FileRef, segments: u64) {
        let mut state = self.inner.lock();
        let t = &mut state.files[file.0];
        t.doc.segments = Some(segments);
        t.changed_now();
        self.inner.changed.notify_all();
    }

    /// Blocks until `segment` may be sent (it is below the durable dispatch limit). `Err`
    /// when the run is stopping ([`Checkpointer::interrupt`]: the acknowledgements this
    /// waits for may never come), the file was lost to another worker, or the state cannot
    /// be written.
    pub fn wait_to_send(&self, file: FileRef, segment: u64) -> Result<(), WaitError> {
        let mut state = self.inner.lock();
        // Whether this worker counts among the file's `waiters` (only a write lets it go).
        let mut registered = false;
        let result = loop {
            if state.interrupted {
                break Err(WaitError::Stopping);
            }
            if let Some(e) = &state.error {
                break Err(WaitError::State(e.clone()));
            }
            let t = &mut state.files[file.0];
            if t.lost {
                break Err(WaitError::Lost);
            }
            let allowed = t.doc.first_unacked() + DISPATCH_WINDOW;
            if t.wanted_limit < allowed {
                t.wanted_limit = allowed;
                t.changed_now();
                self.inner.changed.notify_all();
            }
            if segment < t.durable_limit && segment < allowed {
                break Ok(());
            }
            // A worker only a write lets go makes the file's grouped changes due now: tell
            // the writer, once. (One waiting for acknowledgements is woken by each.)
            if !registered && segment < allowed {
                registered = true;
                t.waiters += 1;
                if t.dirty || !t.letters.is_empty() {
                    self.inner.changed.notify_all();
                }
            }
            state.waiting += 1;
            state = self
                .inner
                .changed
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
            state.waiting -= 1;
        };
        if registered {
            state.files[file.0].waiters -= 1;
        }
        result
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
            t.doc.add_receipts(s.receipts);
            // The write of this acknowledgement also lets the worker go further.
            t.wanted_limit = t.wanted_limit.max(t.doc.first_unacked() + DISPATCH_WINDOW);
            t.changed_ack();
        }
        maybe_done(t);
        self.inner.changed.notify_all();
        ready
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
        t.pending.grouped(std::time::Instant::now());
    }

    /// Every segment of the file was handed over.
    pub fn dispatch_finished(&self, file: FileRef) {
        let mut state = self.inner.lock();
        let t = &mut state.files[file.0];
        t.dispatch_finished = true;
        maybe_done(t);
        t.changed_now();
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
        maybe_done(t);
        t.changed_now();
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
}

/// Marks the file done once every segment was handed over and acknowledged.
fn maybe_done(t: &mut Tracked) {
    if t.dispatch_finished
        && t.open.is_empty()
        && t.doc.all_acked()
        && t.doc.status != FileStatus::Done
    {
        t.doc.status = FileStatus::Done;
        if t.doc.outcome.is_none() {
            t.doc.outcome = Some("delivered".into());
        }
        t.doc.lease = None;
        t.changed_now();
    }
}
