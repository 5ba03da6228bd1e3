//! Unit tests of the checkpointer: claims and leases, the dispatch window's waits and what
//! ends them, and the counts a file's document adds up to.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;
use crate::source::StageFile;
use crate::state::PutMode;
use crate::state::files::{self, FileState, FileStatus, Lease};
use crate::storage::StageConfig;
use crate::wire::time::{now_ms, rfc3339_ms};

pub(super) const STAGE: &str = "s3://bucket/unload/";
const RUN: &str = "run-1";
/// Far enough from this machine's name that its pids are never looked up.
const OTHER_OWNER: &str = "another-machine.example:4242:run-0";
/// Bound on every wait of these tests: a wait that does not end fails the test.
pub(super) const DEADLINE: Duration = Duration::from_secs(20);
/// How often a condition is polled.
pub(super) const POLL: Duration = Duration::from_millis(2);

pub(super) fn store() -> (tempfile::TempDir, StateStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(
        dir.path().join("state").to_str().unwrap(),
        &StageConfig::default(),
    )
    .unwrap();
    (dir, store)
}

fn owner() -> String {
    format!("{}:{}:{RUN}", hostname(), std::process::id())
}

fn start(store: &StateStore) -> Arc<Checkpointer> {
    start_with_lease(store, Duration::from_secs(60))
}

fn start_with_lease(store: &StateStore, lease: Duration) -> Arc<Checkpointer> {
    start_with(store, lease, AckGroup::default())
}

pub(super) fn start_with(
    store: &StateStore,
    lease: Duration,
    group: AckGroup,
) -> Arc<Checkpointer> {
    Arc::new(Checkpointer::start(
        store.clone(),
        CheckpointConfig {
            stage_url: STAGE.into(),
            run_id: RUN.into(),
            owner: owner(),
            segment_rows: 10,
            lease,
            group,
            generation: None,
            plugin_sha256: None,
        },
    ))
}

pub(super) fn stage_file(name: &str) -> StageFile {
    StageFile {
        key: format!("unload/{name}"),
        relative: name.into(),
        url: format!("{STAGE}{name}"),
        size: 100,
        e_tag: Some(format!("\"{name}-v1\"")),
        version: None,
        last_modified: Default::default(),
        name: crate::source::path::parse_file_name(name),
        partitions: Vec::new(),
        format: None,
    }
}

fn lease(owner: &str, expires_at_ms: u64) -> Lease {
    Lease {
        owner: owner.into(),
        expires_at_ms,
        expires_at: rfc3339_ms(expires_at_ms),
    }
}

/// Writes the document an earlier run (or another worker) left for `file`.
fn put_earlier(store: &StateStore, file: &StageFile, edit: impl FnOnce(&mut FileState)) {
    let mut doc = FileState::new(STAGE, file, 10, "run-0");
    edit(&mut doc);
    store
        .put(
            &files::file_path(STAGE, &file.key),
            &doc.to_json(),
            PutMode::Create,
        )
        .unwrap();
}

pub(super) fn stored(store: &StateStore, file: &StageFile) -> FileState {
    let path = files::file_path(STAGE, &file.key);
    FileState::parse(&path, &store.get(&path).unwrap().unwrap()).unwrap()
}

pub(super) fn mine(claim: Claim) -> ResumePlan {
    match claim {
        Claim::Mine(plan) => plan,
        other => panic!("expected the file to be ours, got {other:?}"),
    }
}

/// Runs `f` on a thread; fails the test if it has not returned within [`DEADLINE`].
pub(super) fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(DEADLINE)
        .expect("the call did not return in time")
}

/// Polls until `n` workers wait in `wait_to_send`; fails the test after [`DEADLINE`].
fn until_waiting(ckpt: &Checkpointer, n: usize) {
    let deadline = Instant::now() + DEADLINE;
    while ckpt.waiting() != n {
        assert!(
            Instant::now() < deadline,
            "{} waiters, expected {n}",
            ckpt.waiting()
        );
        std::thread::sleep(POLL);
    }
}

#[test]
fn a_new_file_is_claimed_with_our_lease() {
    let (_dir, store) = store();
    let ckpt = start(&store);
    let file = stage_file("data_0_0_0.snappy.parquet");
    let plan = mine(ckpt.claim(&file).unwrap());
    assert!(!plan.resumed);
    assert!(plan.acked.is_empty());
    assert_eq!(plan.segment_rows, 10);
    let doc = stored(&store, &file);
    assert_eq!(doc.status, FileStatus::Partial);
    assert_eq!(doc.lease.unwrap().owner, owner());
    assert_eq!(doc.run_id, RUN);
}

#[test]
fn a_file_with_a_live_lease_of_another_worker_is_held() {
    let (_dir, store) = store();
    let file = stage_file("data_0_0_0.snappy.parquet");
    let expires = now_ms() + 60_000;
    put_earlier(&store, &file, |doc| {
        doc.lease = Some(lease(OTHER_OWNER, expires));
    });
    let ckpt = start(&store);
    match ckpt.claim(&file).unwrap() {
        Claim::Held {
            owner,
            expires_at_ms,
        } => {
            assert_eq!(owner, OTHER_OWNER);
            assert_eq!(expires_at_ms, expires);
        }
        other => panic!("expected the file to be held, got {other:?}"),
    }
    // The other worker keeps it.
    assert_eq!(stored(&store, &file).lease.unwrap().owner, OTHER_OWNER);
}

#[test]
fn a_lapsed_lease_is_taken_over_and_resumed() {
    let (_dir, store) = store();
    let file = stage_file("data_0_0_0.snappy.parquet");
    put_earlier(&store, &file, |doc| {
        doc.segments = Some(6);
        doc.ack(0);
        doc.ack(1);
        doc.dispatch_limit = 4;
        doc.lease = Some(lease(OTHER_OWNER, now_ms() - 1_000));
    });
    let ckpt = start(&store);
    let plan = mine(ckpt.claim(&file).unwrap());
    assert!(plan.resumed);
    assert_eq!(plan.acked, [[0, 2]]);
    assert_eq!(plan.first_open_segment(), 2);
    assert_eq!(plan.earlier_dispatch_limit, 4);
    assert!(!plan.maybe_sent_before(1), "acknowledged");
    assert!(
        plan.maybe_sent_before(3),
        "below the earlier dispatch limit"
    );
    assert!(!plan.maybe_sent_before(4), "never sent");
    let doc = stored(&store, &file);
    assert_eq!(doc.lease.unwrap().owner, owner());
    assert_eq!(doc.acked, [[0, 2]]);
}

#[test]
fn a_live_lease_of_a_process_gone_from_this_machine_is_taken_over() {
    let (_dir, store) = store();
    let file = stage_file("data_0_0_0.snappy.parquet");
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    put_earlier(&store, &file, |doc| {
        doc.lease = Some(lease(
            &format!("{}:{gone}:run-0", hostname()),
            now_ms() + 60_000,
        ));
    });
    let ckpt = start(&store);
    let plan = mine(ckpt.claim(&file).unwrap());
    assert!(!plan.resumed, "nothing was sent before");
    assert_eq!(stored(&store, &file).lease.unwrap().owner, owner());
}

#[test]
fn a_done_file_is_skipped_and_left_as_it_is() {
    let (_dir, store) = store();
    let file = stage_file("data_0_0_0.snappy.parquet");
    put_earlier(&store, &file, |doc| {
        doc.segments = Some(1);
        doc.ack(0);
        doc.status = FileStatus::Done;
        doc.outcome = Some("delivered".into());
    });
    let path = files::file_path(STAGE, &file.key);
    let before = store.get(&path).unwrap().unwrap().version;
    let ckpt = start(&store);
    match ckpt.claim(&file).unwrap() {
        Claim::Done(doc) => {
            assert_eq!(doc.key, file.key);
            assert_eq!(doc.outcome.as_deref(), Some("delivered"));
        }
        other => panic!("expected the file to be done, got {other:?}"),
    }
    ckpt.finish().unwrap();
    assert_eq!(store.get(&path).unwrap().unwrap().version, before);
}

#[test]
fn a_replaced_file_starts_over() {
    let (_dir, store) = store();
    let file = stage_file("data_0_0_0.snappy.parquet");
    put_earlier(&store, &file, |doc| {
        doc.identity = "etag:\"an older version\"".into();
        doc.segments = Some(1);
        doc.ack(0);
        doc.status = FileStatus::Done;
    });
    let ckpt = start(&store);
    let plan = mine(ckpt.claim(&file).unwrap());
    assert!(!plan.resumed);
    assert!(plan.acked.is_empty());
    let doc = stored(&store, &file);
    assert_eq!(doc.identity, files::identity(&file));
    assert_eq!(doc.status, FileStatus::Partial);
}

#[test]
fn interrupt_wakes_every_waiter() {
    const WAITERS: usize = 4;
    let (_dir, store) = store();
    let file = stage_file("data_0_0_0.snappy.parquet");
    // An earlier run already opened the dispatch window: waiting writes nothing, so the
    // writer stays idle (its next lease renewal is minutes away) and only `interrupt` can
    // wake the waiters.
    put_earlier(&store, &file, |doc| doc.dispatch_limit = DISPATCH_WINDOW);
    let ckpt = start_with_lease(&store, Duration::from_secs(3_600));
    let file = mine(ckpt.claim(&file).unwrap()).file;
    let (tx, rx) = mpsc::channel();
    for _ in 0..WAITERS {
        let (ckpt, tx) = (Arc::clone(&ckpt), tx.clone());
        // Beyond the dispatch window: nothing but the end of the run lets it go.
        std::thread::spawn(move || {
            let _ = tx.send(ckpt.wait_to_send(file, DISPATCH_WINDOW + 3));
        });
    }
    until_waiting(&ckpt, WAITERS);
    assert_eq!(ckpt.writes(), 0, "the writer had nothing to write");
    ckpt.interrupt();
    for _ in 0..WAITERS {
        let result = rx.recv_timeout(DEADLINE).expect("a waiter was not woken");
        assert!(matches!(result, Err(WaitError::Stopping)), "{result:?}");
    }
    // Later waits end at once, even for a segment that may be sent.
    assert!(matches!(
        ckpt.wait_to_send(file, 0),
        Err(WaitError::Stopping)
    ));
    ckpt.finish().unwrap();
}

#[test]
fn a_state_failure_wakes_waiters_and_is_returned_by_finish() {
    let (_dir, store) = store();
    let ckpt = start(&store);
    ckpt.sync_letters_with(Box::new(|| {
        Err(LetterSyncError {
            path: "/out/dead-letters.ndjson".into(),
            source: std::io::Error::other("disk gone"),
        })
    }));
    let file = mine(
        ckpt.claim(&stage_file("data_0_0_0.snappy.parquet"))
            .unwrap(),
    )
    .file;
    let waiter = {
        let ckpt = Arc::clone(&ckpt);
        std::thread::spawn(move || ckpt.wait_to_send(file, DISPATCH_WINDOW + 3))
    };
    until_waiting(&ckpt, 1);
    assert!(ckpt.error().is_none());
    ckpt.dead_letter(file, b"{\"row\":1}");
    // Anything that wakes the writer (here: the footer read) writes the letter.
    ckpt.set_segments(file, 1);
    let result = within(move || waiter.join().unwrap());
    let expected = "the dead-letter file /out/dead-letters.ndjson cannot be written: disk gone";
    match result {
        Err(WaitError::State(e @ CheckpointError::LetterSync(_))) => {
            assert_eq!(e.to_string(), expected)
        }
        other => panic!("expected a state failure, got {other:?}"),
    }
    assert_eq!(ckpt.error().unwrap().to_string(), expected);
    assert_eq!(ckpt.finish().unwrap_err().to_string(), expected);
    // Nothing was recorded of letters the local file may lack.
    let letters = store
        .list(&files::file_dead_letters_prefix(
            STAGE,
            "unload/data_0_0_0.snappy.parquet",
        ))
        .unwrap();
    assert!(letters.is_empty(), "{letters:?}");
}

#[test]
fn segment_counts_add_up_in_the_document() {
    let (_dir, store) = store();
    let ckpt = start(&store);
    let file = stage_file("data_0_0_0.snappy.parquet");
    let f = mine(ckpt.claim(&file).unwrap()).file;
    ckpt.set_segments(f, 2);

    // Segment 0: 10 rows, 2 filtered, 1 rejected by the plugin, 7 records in one body
    // of which the endpoint stored 6 and rejected 1.
    within({
        let ckpt = Arc::clone(&ckpt);
        move || ckpt.wait_to_send(f, 0)
    })
    .unwrap();
    ckpt.body_sent(f, 0);
    let counts = SegmentCounts {
        rows: 10,
        filtered: 2,
        dead_lettered: 1,
        unchanged: 0,
    };
    assert!(!ckpt.segment_closed(f, 0, counts), "a body is out");
    ckpt.dead_letter(f, b"{\"row\":3}");
    assert!(ckpt.body_done(f, 0, 6, 1, vec!["r-1".into()]));

    // Segment 1: 5 rows, 1 unchanged, 4 records in two bodies.
    within({
        let ckpt = Arc::clone(&ckpt);
        move || ckpt.wait_to_send(f, 1)
    })
    .unwrap();
    ckpt.body_sent(f, 1);
    ckpt.body_sent(f, 1);
    let counts = SegmentCounts {
        rows: 5,
        filtered: 0,
        dead_lettered: 0,
        unchanged: 1,
    };
    assert!(!ckpt.segment_closed(f, 1, counts));
    assert!(
        !ckpt.body_done(f, 1, 2, 0, vec!["r-2".into()]),
        "a body is out"
    );
    assert!(ckpt.body_done(f, 1, 2, 0, vec!["r-3".into()]));
    ckpt.dispatch_finished(f);
    ckpt.finish().unwrap();

    let doc = ckpt.document(f);
    assert_eq!(doc.status, FileStatus::Done);
    assert_eq!(doc.outcome.as_deref(), Some("delivered"));
    assert_eq!(doc.lease, None);
    assert_eq!(doc.acked, [[0, 2]]);
    let c = &doc.counts;
    assert_eq!(
        (
            c.rows,
            c.records_delivered,
            c.rows_filtered,
            c.rows_dead_lettered,
            c.records_unchanged
        ),
        (15, 10, 2, 2, 1)
    );
    // One record per row: every row has one outcome.
    assert_eq!(
        c.rows,
        c.records_delivered + c.rows_filtered + c.rows_dead_lettered + c.records_unchanged
    );
    assert_eq!(doc.receipts, ["r-1", "r-2", "r-3"]);
    // The state holds what the run knew, and the dead letter.
    assert_eq!(stored(&store, &file), doc);
    let letters = store
        .list(&files::file_dead_letters_prefix(STAGE, &file.key))
        .unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
}

#[test]
fn a_bad_file_acknowledges_its_unread_segments_as_dead_letters() {
    let (_dir, store) = store();
    let ckpt = start(&store);
    let file = stage_file("data_0_0_0.snappy.parquet");
    let f = mine(ckpt.claim(&file).unwrap()).file;
    ckpt.set_segments(f, 3);
    let counts = SegmentCounts {
        rows: 10,
        filtered: 10,
        ..SegmentCounts::default()
    };
    assert!(ckpt.segment_closed(f, 0, counts), "no body: acknowledged");
    ckpt.bad_from(f, 1, 3, "row group 1 cannot be read", 25);
    ckpt.finish().unwrap();
    let doc = stored(&store, &file);
    assert_eq!(doc.status, FileStatus::Done);
    assert_eq!(doc.outcome.as_deref(), Some("bad-file"));
    assert_eq!(doc.error.as_deref(), Some("row group 1 cannot be read"));
    assert_eq!(doc.acked, [[0, 3]]);
    assert_eq!(doc.counts.rows, 35);
    assert_eq!(doc.counts.rows_filtered, 10);
    assert_eq!(doc.counts.rows_dead_lettered, 25);
}

#[test]
fn finish_releases_the_lease_of_an_unfinished_file() {
    let (_dir, store) = store();
    let ckpt = start(&store);
    let file = stage_file("data_0_0_0.snappy.parquet");
    mine(ckpt.claim(&file).unwrap());
    ckpt.finish().unwrap();
    let doc = stored(&store, &file);
    assert_eq!(doc.status, FileStatus::Partial);
    assert_eq!(doc.lease, None);
    // Another worker may take it at once.
    let next = start(&store);
    mine(next.claim(&file).unwrap());
}
