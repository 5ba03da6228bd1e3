//! Unit tests of claims under a full-refresh generation (`state::refresh`): documents of
//! another generation start over, those of the current one are done, a live lease holds,
//! and the plugin digest is recorded.

use std::sync::Arc;
use std::time::Duration;

use super::tests::{STAGE, mine, stage_file, store, stored};
use super::*;
use crate::state::PutMode;
use crate::state::files::{self, FileState, FileStatus, Lease};
use crate::wire::time::{now_ms, rfc3339_ms};

fn start_in(store: &StateStore, generation: Option<&str>) -> Arc<Checkpointer> {
    Arc::new(Checkpointer::start(
        store.clone(),
        CheckpointConfig {
            stage_url: STAGE.into(),
            run_id: "run-2".into(),
            owner: format!("{}:{}:run-2", hostname(), std::process::id()),
            segment_rows: 10,
            lease: Duration::from_secs(60),
            group: AckGroup::default(),
            generation: generation.map(str::to_owned),
            plugin_sha256: Some("cd34".into()),
        },
    ))
}

fn put_done(store: &StateStore, name: &str, generation: Option<&str>) -> crate::source::StageFile {
    let file = stage_file(name);
    let mut doc = FileState::new(STAGE, &file, 10, "run-0");
    doc.status = FileStatus::Done;
    doc.segments = Some(1);
    doc.ack(0);
    doc.generation = generation.map(str::to_owned);
    doc.plugin_sha256 = Some("ab12".into());
    store
        .put(
            &files::file_path(STAGE, &file.key),
            &doc.to_json(),
            PutMode::Create,
        )
        .unwrap();
    file
}

#[test]
fn without_a_generation_a_done_file_is_done_and_keeps_its_digest() {
    let (_dir, store) = store();
    let file = put_done(&store, "data_0_0_0.snappy.parquet", None);
    let ckpt = start_in(&store, None);
    match ckpt.claim(&file).unwrap() {
        Claim::Done(doc) => assert_eq!(doc.plugin_sha256.as_deref(), Some("ab12")),
        other => panic!("expected done, got {other:?}"),
    }
}

#[test]
fn a_done_file_of_another_generation_starts_over_in_the_current_one() {
    let (_dir, store) = store();
    let before = put_done(&store, "data_0_0_0.snappy.parquet", None);
    let older = put_done(&store, "data_0_1_0.snappy.parquet", Some("g1"));
    let current = put_done(&store, "data_0_2_0.snappy.parquet", Some("g2"));
    let ckpt = start_in(&store, Some("g2"));
    for file in [&before, &older] {
        let plan = mine(ckpt.claim(file).unwrap());
        assert!(!plan.resumed, "a full refresh is no resume");
        assert!(plan.acked.is_empty());
        assert_eq!(plan.earlier_dispatch_limit, 0);
        let doc = stored(&store, file);
        assert_eq!(doc.status, FileStatus::Partial);
        assert_eq!(doc.generation.as_deref(), Some("g2"));
        assert_eq!(doc.plugin_sha256.as_deref(), Some("cd34"));
    }
    assert!(matches!(ckpt.claim(&current).unwrap(), Claim::Done(_)));
}

#[test]
fn a_file_of_another_generation_held_by_a_live_lease_stays_held() {
    let (_dir, store) = store();
    let file = stage_file("data_0_0_0.snappy.parquet");
    let mut doc = FileState::new(STAGE, &file, 10, "run-0");
    let expires_at_ms = now_ms() + 60_000;
    doc.lease = Some(Lease {
        owner: "another-machine.example:4242:run-0".into(),
        expires_at_ms,
        expires_at: rfc3339_ms(expires_at_ms),
    });
    store
        .put(
            &files::file_path(STAGE, &file.key),
            &doc.to_json(),
            PutMode::Create,
        )
        .unwrap();
    let ckpt = start_in(&store, Some("g2"));
    assert!(matches!(ckpt.claim(&file).unwrap(), Claim::Held { .. }));
    assert_eq!(stored(&store, &file).generation, None);
}
