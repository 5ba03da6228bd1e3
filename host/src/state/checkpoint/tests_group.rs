//! Unit tests of grouped acknowledgements: a group is written in one document, and every
//! group is written when the run finishes or stops, when a worker waits on the dispatch
//! window, or once it lingered; a failed write of a group stops the run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::tests::{DEADLINE, POLL, STAGE, mine, stage_file, start_with, store, stored, within};
use super::*;
use crate::source::StageFile;
use crate::state::files::{self, FileState};

/// Long enough that no test sees a lease renewal or a group written for its age.
const FOREVER: Duration = Duration::from_secs(3_600);
const SEGMENTS: u64 = 10;

fn group(segments: u64, linger: Duration) -> AckGroup {
    AckGroup { segments, linger }
}

/// A claimed file of [`SEGMENTS`] segments whose dispatch window is durable, with
/// nothing left to write: returns the checkpointer, the file and its reference.
fn claimed(store: &StateStore, group: AckGroup) -> (Arc<Checkpointer>, StageFile, FileRef) {
    let ckpt = start_with(store, FOREVER, group);
    let file = stage_file("data_0_0_0.snappy.parquet");
    let f = mine(ckpt.claim(&file).unwrap()).file;
    ckpt.set_segments(f, SEGMENTS);
    // Returns once a write made the window durable; the footer was read before.
    within({
        let ckpt = Arc::clone(&ckpt);
        move || ckpt.wait_to_send(f, 0)
    })
    .unwrap();
    (ckpt, file, f)
}

/// Acknowledges `segments` (no bodies: closed means acknowledged).
fn ack(ckpt: &Checkpointer, f: FileRef, segments: std::ops::Range<u64>) {
    for s in segments {
        let counts = SegmentCounts {
            rows: 10,
            filtered: 10,
            ..SegmentCounts::default()
        };
        assert!(ckpt.segment_closed(f, s, counts));
    }
}

/// Polls the stored document until `done` holds; fails the test after [`DEADLINE`].
fn until_stored(store: &StateStore, file: &StageFile, done: impl Fn(&FileState) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let doc = stored(store, file);
        if done(&doc) {
            return;
        }
        assert!(Instant::now() < deadline, "never stored: {doc:?}");
        std::thread::sleep(POLL);
    }
}

#[test]
fn a_full_group_of_acknowledgements_is_written_in_one_document() {
    let (_dir, store) = store();
    let (ckpt, file, f) = claimed(&store, group(3, FOREVER));
    // Every write so far is counted: the one making the window durable came last.
    let start = ckpt.writes();
    // Another file whose footer is read: the writer writes it at once, and with it (before
    // it) every other document that is due.
    let other = stage_file("data_0_1_0.snappy.parquet");
    let g = mine(ckpt.claim(&other).unwrap()).file;
    ack(&ckpt, f, 0..1);
    ckpt.set_segments(g, 4);
    until_writes(&ckpt, start + 1);
    assert_eq!(stored(&store, &other).segments, Some(4));
    assert!(
        stored(&store, &file).acked.is_empty(),
        "one acknowledgement of a group of 3 was written alone"
    );
    ack(&ckpt, f, 1..3);
    // The group is written in one document.
    until_writes(&ckpt, start + 2);
    let doc = stored(&store, &file);
    assert_eq!(doc.acked, [[0, 3]]);
    assert_eq!(doc.counts.rows, 30);
    assert_eq!(
        doc.dispatch_limit,
        3 + DISPATCH_WINDOW,
        "the window moved on"
    );
    ckpt.finish().unwrap();
}

/// Polls until the writer counted `n` writes; fails the test after [`DEADLINE`].
fn until_writes(ckpt: &Checkpointer, n: u64) {
    let deadline = Instant::now() + DEADLINE;
    while ckpt.writes() < n {
        assert!(
            Instant::now() < deadline,
            "{} writes, expected {n}",
            ckpt.writes()
        );
        std::thread::sleep(POLL);
    }
    assert_eq!(ckpt.writes(), n, "more writes than expected");
}

#[test]
fn finish_writes_a_group_that_is_not_full() {
    let (_dir, store) = store();
    let (ckpt, file, f) = claimed(&store, group(100, FOREVER));
    ack(&ckpt, f, 0..2);
    ckpt.finish().unwrap();
    let doc = stored(&store, &file);
    assert_eq!(doc.acked, [[0, 2]]);
    assert_eq!(doc.lease, None, "released");
    assert_eq!(doc, ckpt.document(f));
}

#[test]
fn a_stop_writes_a_group_that_is_not_full() {
    let (_dir, store) = store();
    let (ckpt, file, f) = claimed(&store, group(100, FOREVER));
    ack(&ckpt, f, 0..1);
    ckpt.interrupt();
    until_stored(&store, &file, |doc| doc.acked == [[0, 1]]);
    ckpt.finish().unwrap();
}

#[test]
fn a_worker_blocked_on_the_window_gets_the_group_written() {
    let (_dir, store) = store();
    let (ckpt, file, f) = claimed(&store, group(100, FOREVER));
    ack(&ckpt, f, 0..1);
    // Segment DISPATCH_WINDOW may go once the acknowledgement of 0 is durable: the group
    // is not full and never lingers long enough, so only the waiting worker writes it.
    within({
        let ckpt = Arc::clone(&ckpt);
        move || ckpt.wait_to_send(f, DISPATCH_WINDOW)
    })
    .unwrap();
    let doc = stored(&store, &file);
    assert_eq!(doc.acked, [[0, 1]]);
    assert_eq!(doc.dispatch_limit, 1 + DISPATCH_WINDOW);
    ckpt.finish().unwrap();
}

#[test]
fn a_group_is_written_once_it_lingered() {
    let (_dir, store) = store();
    let (ckpt, file, f) = claimed(&store, group(100, Duration::from_millis(20)));
    ack(&ckpt, f, 0..1);
    until_stored(&store, &file, |doc| doc.acked == [[0, 1]]);
    ckpt.finish().unwrap();
}

#[test]
fn the_last_acknowledgement_of_a_file_is_written_at_once() {
    let (_dir, store) = store();
    let (ckpt, file, f) = claimed(&store, group(100, FOREVER));
    ack(&ckpt, f, 0..SEGMENTS - 1);
    ckpt.dispatch_finished(f);
    // The file is done with its last acknowledgement: no group waits for more.
    ack(&ckpt, f, SEGMENTS - 1..SEGMENTS);
    until_stored(&store, &file, |doc| doc.status == files::FileStatus::Done);
    assert_eq!(stored(&store, &file).acked, [[0, SEGMENTS]]);
    ckpt.finish().unwrap();
}

#[test]
fn a_failed_write_of_a_group_stops_the_run() {
    let (dir, store) = store();
    let (ckpt, _file, f) = claimed(&store, group(2, FOREVER));
    // The folder of the file's document becomes a plain file: its next write fails.
    let doc_path = files::file_path(STAGE, "unload/data_0_0_0.snappy.parquet");
    let folder = dir
        .path()
        .join("state")
        .join(doc_path.rsplit_once('/').unwrap().0);
    std::fs::remove_dir_all(&folder).unwrap();
    std::fs::write(&folder, b"not a folder").unwrap();
    ack(&ckpt, f, 0..2);
    let deadline = Instant::now() + DEADLINE;
    while ckpt.error().is_none() {
        assert!(
            Instant::now() < deadline,
            "the failed write was not noticed"
        );
        std::thread::sleep(POLL);
    }
    // Every wait and the end of the run report it: nothing is dropped silently.
    let waited = within({
        let ckpt = Arc::clone(&ckpt);
        move || ckpt.wait_to_send(f, 1)
    });
    assert!(matches!(waited, Err(WaitError::State(_))), "{waited:?}");
    let error = ckpt.finish().unwrap_err().to_string();
    assert!(error.contains(&folder.display().to_string()), "{error}");
}
