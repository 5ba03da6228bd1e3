//! Unit tests of `status`'s collection: files by status and lease, dead letters counted
//! once per row, damaged documents, pending errors.

use super::*;
use crate::state::PutMode;
use crate::state::files::{FileCounts as DocCounts, FileState, FileStatus, Lease};
use crate::storage::StageConfig;

fn store() -> (tempfile::TempDir, StateStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(
        dir.path().join("state").to_str().unwrap(),
        &StageConfig::default(),
    )
    .unwrap();
    (dir, store)
}

fn doc(stage: &str, key: &str, status: FileStatus, acked: Vec<[u64; 2]>) -> FileState {
    FileState {
        format: crate::state::STATE_FORMAT.into(),
        stage: stage.into(),
        key: key.into(),
        identity: format!("etag:{key}"),
        size: 1,
        status,
        outcome: None,
        error: None,
        segment_rows: 10,
        segments: Some(3),
        acked,
        dispatch_limit: 0,
        receipts: Vec::new(),
        counts: DocCounts::default(),
        lease: None,
        run_id: "r".into(),
        updated_at: "t".into(),
        resent_segments: 0,
        generation: None,
        plugin_sha256: None,
    }
}

fn put_doc(store: &StateStore, d: &FileState) {
    store
        .put(
            &files::file_path(&d.stage, &d.key),
            &d.to_json(),
            PutMode::Overwrite,
        )
        .unwrap();
}

fn letter(key: &str, row: u64, stage: &str, kind: &str) -> String {
    serde_json::json!({"file": key, "key": key, "identity": format!("etag:{key}"),
            "row": row, "stage": stage, "kind": kind, "message": "m", "input": {}})
    .to_string()
}

#[test]
fn counts_files_leases_and_deduplicated_dead_letters() {
    let (_dir, store) = store();
    let stage = "s3://bucket/unload/";
    put_doc(&store, &doc(stage, "a", FileStatus::Done, vec![[0, 3]]));
    put_doc(&store, &doc(stage, "b", FileStatus::Partial, vec![[0, 1]]));
    put_doc(&store, &doc(stage, "c", FileStatus::Partial, vec![]));
    let mut held = doc(stage, "d", FileStatus::Partial, vec![]);
    held.lease = Some(Lease {
        owner: "h:1:r".into(),
        expires_at_ms: 2_000,
        expires_at: "later".into(),
    });
    put_doc(&store, &held);
    let prefix = files::file_dead_letters_prefix(stage, "a");
    let old = [
        letter("a", 1, "plugin", "rejected"),
        letter("a", 2, "endpoint", "http-400"),
    ]
    .join("\n")
        + "\n";
    store
        .put(
            &format!("{prefix}0000000000001-r1-000000.ndjson"),
            old.as_bytes(),
            PutMode::Create,
        )
        .unwrap();
    // A later run dead-lettered row 2 again, for another reason: the newest wins.
    let new = letter("a", 2, "plugin", "trap") + "\n";
    store
        .put(
            &format!("{prefix}0000000000002-r2-000000.ndjson"),
            new.as_bytes(),
            PutMode::Create,
        )
        .unwrap();

    let status = collect(
        &store,
        &StatusOptions {
            runs: 5,
            stage: None,
            now_ms: 1_000,
        },
    )
    .unwrap();
    assert!(status.is_healthy(), "{:?}", status.damaged);
    assert_eq!(status.stages.len(), 1);
    let s = &status.stages[0];
    assert_eq!(s.stage.as_deref(), Some(stage));
    assert_eq!(
        s.files,
        FileCounts {
            done: 1,
            partial: 1,
            claimed: 1,
            pending: 1,
            damaged: 0,
            total: 4
        }
    );
    assert_eq!(s.claimed.len(), 1);
    assert_eq!(s.claimed[0].owner, "h:1:r");
    assert_eq!(s.dead_letters.total, 2);
    assert_eq!(s.dead_letters.by_reason["plugin/rejected"], 1);
    assert_eq!(s.dead_letters.by_reason["plugin/trap"], 1);
    assert_eq!(status.dead_letters, s.dead_letters);

    // The lease has lapsed: the file is pending again.
    let later = collect(
        &store,
        &StatusOptions {
            runs: 5,
            stage: None,
            now_ms: 3_000,
        },
    )
    .unwrap();
    assert_eq!(later.stages[0].files.pending, 2);
    assert!(later.stages[0].claimed.is_empty());
    // What `stagepush status` shows of it (its rendering is tested in `cli/`).
    assert_eq!(
        later.stages[0].files,
        FileCounts {
            done: 1,
            partial: 1,
            claimed: 0,
            pending: 2,
            damaged: 0,
            total: 4
        }
    );
    assert_eq!(later.stages[0].dead_letters.by_reason["plugin/trap"], 1);
}

#[test]
fn damaged_documents_are_reported_not_empty() {
    let (_dir, store) = store();
    let stage = "s3://bucket/unload/";
    let d = doc(stage, "a", FileStatus::Done, vec![[0, 3]]);
    let bytes = d.to_json();
    let path = files::file_path(stage, "a");
    store
        .put(&path, &bytes[..bytes.len() / 2], PutMode::Create)
        .unwrap();
    store
        .put(
            "runs/20250101T000000000Z-r.json",
            b"{\"runId\":",
            PutMode::Create,
        )
        .unwrap();
    let chunk = format!(
        "{}0000000000001-r-000000.ndjson",
        files::file_dead_letters_prefix(stage, "a")
    );
    let text = letter("a", 1, "plugin", "rejected") + "\n{\"file\":";
    store.put(&chunk, text.as_bytes(), PutMode::Create).unwrap();
    let status = collect(
        &store,
        &StatusOptions {
            runs: 5,
            stage: None,
            now_ms: 0,
        },
    )
    .unwrap();
    let paths: Vec<&str> = status.damaged.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "runs/20250101T000000000Z-r.json",
            path.as_str(),
            chunk.as_str()
        ]
    );
    assert!(!status.is_healthy());
    assert_eq!(status.runs_total, 1);
    assert!(status.runs.is_empty());
    assert_eq!(status.stages[0].files.damaged, 1);
    assert_eq!(status.stages[0].files.total, 1);
    // The readable lines still count.
    assert_eq!(status.dead_letters.total, 1);
    assert!(
        status.damaged[1].reason.starts_with("not a state document"),
        "{:?}",
        status.damaged
    );
}

#[test]
fn pending_errors_are_shown_with_their_stage() {
    let (_dir, store) = store();
    let stage = "s3://bucket/unload/";
    put_doc(
        &store,
        &doc(stage, "unload/a", FileStatus::Done, vec![[0, 3]]),
    );
    let unusable = crate::trigger::UnusableKey {
        key: "unload/sub//x.parquet".into(),
        event_id: Some("ev-1".into()),
        reason: "the key has an empty path segment (`//`)".into(),
    };
    crate::state::pending::record_error(&store, stage, &unusable).unwrap();
    // Another stage with nothing but a pending error is shown too.
    crate::state::pending::record_error(&store, "s3://bucket/other/", &unusable).unwrap();
    let status = collect(
        &store,
        &StatusOptions {
            runs: 5,
            stage: None,
            now_ms: 0,
        },
    )
    .unwrap();
    assert!(status.is_healthy(), "{:?}", status.damaged);
    assert_eq!(status.stages.len(), 2);
    let s = status
        .stages
        .iter()
        .find(|s| s.stage_id == files::stage_id(stage))
        .unwrap();
    assert_eq!(s.files.done, 1);
    assert_eq!(s.pending_errors.len(), 1);
    assert_eq!(s.pending_errors[0].key, unusable.key);
    assert_eq!(s.pending_errors[0].event_id.as_deref(), Some("ev-1"));
    let json = serde_json::to_value(s).unwrap();
    assert_eq!(json["pendingErrors"][0]["reason"], unusable.reason);
    assert_eq!(s.pending_errors[0].reason, unusable.reason);
}
