//! Grouping acknowledgements (the writer's policy): a segment acknowledgement need not be
//! written on its own; it is written together with its neighbours, in the file's next
//! document, once [`AckGroup::segments`] of them are waiting, the oldest has waited
//! [`AckGroup::linger`], or anything else needs the document written now.
//!
//! "Now" means: a change other than an acknowledgement (the footer's segment count, a
//! wider dispatch window asked for, the file done or bad, its lease released), a worker
//! blocked on the file's dispatch window, or the run stopping or finishing. So a write
//! never waits for the timer alone when someone waits for it, and every group is written
//! by [`Checkpointer::finish`](super::Checkpointer::finish).
//!
//! What a crash may lose does not grow: a segment is sent only below the durable
//! `dispatchLimit`, at most [`DISPATCH_WINDOW`](super::DISPATCH_WINDOW) segments past
//! the file's first unacknowledged one as last written, so however many acknowledgements
//! wait in a group, at most that many segments per file can have been acknowledged by
//! CluedIn without the state knowing; a rerun sends them again and counts them in
//! `possibleDuplicates`, as before.

use std::time::{Duration, Instant};

use super::DISPATCH_WINDOW;

/// Acknowledged segments of a file written together by default: all of the dispatch
/// window but 2, so the window is mostly widened before a worker reaches its end (a worker
/// that does reach it has the group written at once). Chosen by measurement (1,000,000
/// rows, 8 files, local sink): 6 and 100 ms wrote about 220 documents, 4 and 20 ms about
/// 270 (most of them for the linger), each acknowledgement alone 580 to 760; with 6 a
/// worker waited for a group about 10 times.
pub const ACK_GROUP_SEGMENTS: u64 = DISPATCH_WINDOW - 2;
/// How long an acknowledgement waits at most for its neighbours by default (also how far
/// `status` may lag behind a running run).
pub const ACK_GROUP_LINGER: Duration = Duration::from_millis(100);

/// How acknowledgements are grouped (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckGroup {
    /// A file's document is written once this many acknowledgements wait (1: each alone).
    pub segments: u64,
    /// ... or once the oldest waiting change is this old.
    pub linger: Duration,
}

impl Default for AckGroup {
    fn default() -> Self {
        AckGroup {
            segments: ACK_GROUP_SEGMENTS,
            linger: ACK_GROUP_LINGER,
        }
    }
}

/// What a file has waiting to be written since its last write.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Pending {
    /// A change that is written at once (not an acknowledgement or a dead letter).
    pub(super) urgent: bool,
    /// Acknowledged segments not written yet.
    pub(super) acks: u64,
    /// When the oldest change not written yet was made.
    pub(super) since: Option<Instant>,
}

impl Pending {
    /// A segment was acknowledged at `now`.
    pub(super) fn ack(&mut self, now: Instant) {
        self.acks += 1;
        self.since.get_or_insert(now);
    }

    /// A change that may wait for its group (a dead letter) was made at `now`.
    pub(super) fn grouped(&mut self, now: Instant) {
        self.since.get_or_insert(now);
    }

    /// A change that must be written now was made.
    pub(super) fn urgent(&mut self, now: Instant) {
        self.urgent = true;
        self.since.get_or_insert(now);
    }
}

/// When a file's waiting changes are to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Due {
    /// Nothing waits.
    Idle,
    /// Now.
    Now,
    /// At this instant, unless something makes it due earlier.
    At(Instant),
}

/// When the changes of a file are due: `changed` whether anything waits to be written,
/// `waiters` workers blocked on its dispatch window, `flush` whether the run is stopping
/// or finishing (everything is written now).
pub(super) fn due(
    pending: &Pending,
    changed: bool,
    waiters: usize,
    flush: bool,
    group: &AckGroup,
    now: Instant,
) -> Due {
    if !changed {
        return Due::Idle;
    }
    if flush || pending.urgent || waiters > 0 || pending.acks >= group.segments.max(1) {
        return Due::Now;
    }
    match pending.since {
        // A change made before `Pending` knew of it (none should be): write it now.
        None => Due::Now,
        Some(since) => {
            let at = since + group.linger;
            if at <= now { Due::Now } else { Due::At(at) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: AckGroup = AckGroup {
        segments: 3,
        linger: Duration::from_millis(50),
    };

    fn acked(n: u64, at: Instant) -> Pending {
        let mut p = Pending::default();
        for _ in 0..n {
            p.ack(at);
        }
        p
    }

    #[test]
    fn nothing_changed_is_never_due() {
        let now = Instant::now();
        let p = acked(5, now);
        assert_eq!(due(&p, false, 1, true, &GROUP, now), Due::Idle);
    }

    #[test]
    fn acknowledgements_wait_for_the_group_or_the_linger() {
        let t0 = Instant::now();
        let p = acked(2, t0);
        assert_eq!(
            due(&p, true, 0, false, &GROUP, t0),
            Due::At(t0 + GROUP.linger)
        );
        // The oldest one sets the time: a later acknowledgement does not postpone it.
        let mut later = p.clone();
        later.ack(t0 + Duration::from_millis(30));
        assert_eq!(later.since, Some(t0));
        // The group is full: now.
        assert_eq!(
            due(
                &later,
                true,
                0,
                false,
                &GROUP,
                t0 + Duration::from_millis(30)
            ),
            Due::Now
        );
        // The linger is over: now, however few.
        assert_eq!(due(&p, true, 0, false, &GROUP, t0 + GROUP.linger), Due::Now);
    }

    #[test]
    fn a_waiting_worker_a_stop_or_an_urgent_change_make_it_due_now() {
        let t0 = Instant::now();
        let p = acked(1, t0);
        assert_eq!(due(&p, true, 1, false, &GROUP, t0), Due::Now, "a waiter");
        assert_eq!(due(&p, true, 0, true, &GROUP, t0), Due::Now, "a stop");
        let mut urgent = p.clone();
        urgent.urgent(t0);
        assert_eq!(due(&urgent, true, 0, false, &GROUP, t0), Due::Now);
    }

    #[test]
    fn a_dead_letter_waits_like_an_acknowledgement() {
        let t0 = Instant::now();
        let mut p = Pending::default();
        p.grouped(t0);
        assert_eq!(
            due(&p, true, 0, false, &GROUP, t0),
            Due::At(t0 + GROUP.linger)
        );
    }

    #[test]
    fn a_group_of_one_or_zero_writes_each_acknowledgement_alone() {
        let t0 = Instant::now();
        for segments in [0, 1] {
            let group = AckGroup { segments, ..GROUP };
            assert_eq!(due(&acked(1, t0), true, 0, false, &group, t0), Due::Now);
        }
    }
}
