//! Which spelling of a stage its delivery state is kept under.
//!
//! The state keys a stage by a hash of its canonical identity
//! ([`crate::source::identity`]), so every spelling of one stage (`DIR`, `DIR/`, `x/../DIR`,
//! `s3://b/p`, `s3a://b/p/`) finds the same state. Versions before the identity was
//! canonical hashed the spelling as given. When nothing is stored under the canonical
//! identity but something is under one of the spellings such a version may have used
//! ([`Stage::legacy_identities`]), the stage keeps using that one, so that a state written
//! by an older version is still found: nothing is sent twice, nothing is moved, and older
//! and newer versions can share the state. A state under the canonical identity always
//! wins.

use crate::source::Stage;
use crate::state::pending::pending_prefix;

use super::files::{files_prefix, stage_id};
use super::{StateError, StateStore};

/// `stage` with its state key set: the canonical identity, or the legacy spelling whose
/// state exists (see the module docs).
pub fn bind(store: &StateStore, stage: Stage) -> Result<Stage, StateError> {
    let canonical = stage.identity().to_owned();
    if has_state(store, &canonical)? {
        return Ok(stage.with_state_key(canonical));
    }
    for legacy in stage.legacy_identities() {
        if has_state(store, &legacy)? {
            tracing::info!(
                "the delivery state of this stage was written under the spelling {legacy} \
                 (stage id {}); it is kept under it (canonical spelling {canonical})",
                stage_id(&legacy)
            );
            return Ok(stage.with_state_key(legacy));
        }
    }
    Ok(stage.with_state_key(canonical))
}

/// Whether the state holds file documents or pending entries under `key`'s stage id.
fn has_state(store: &StateStore, key: &str) -> Result<bool, StateError> {
    Ok(store.has_any(&files_prefix(key))? || store.has_any(&pending_prefix(key))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::PutMode;
    use crate::storage::StageConfig;

    fn fixture() -> (tempfile::TempDir, StateStore, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let stage = root.join("stage");
        std::fs::create_dir(&stage).unwrap();
        let store = StateStore::open(
            root.join("state").to_str().unwrap(),
            &StageConfig::default(),
        )
        .unwrap();
        (dir, store, stage)
    }

    fn stage(text: &str) -> Stage {
        Stage::from_url(text).unwrap()
    }

    fn put(store: &StateStore, path: String) {
        store.put(&path, b"{}", PutMode::Overwrite).unwrap();
    }

    #[test]
    fn a_fresh_state_uses_the_canonical_identity() {
        let (_dir, store, path) = fixture();
        let bound = bind(&store, stage(&format!("{}/", path.display()))).unwrap();
        assert_eq!(bound.state_key(), path.display().to_string());
    }

    #[test]
    fn a_state_written_under_an_older_spelling_is_found() {
        let (_dir, store, path) = fixture();
        let old = format!("{}/", path.display());
        put(&store, format!("{}x.json", files_prefix(&old)));
        // Every spelling finds it, as long as nothing is under the canonical identity.
        for text in [old.clone(), path.display().to_string()] {
            assert_eq!(
                bind(&store, stage(&text)).unwrap().state_key(),
                old,
                "{text}"
            );
        }
        // Pending entries of `serve` count as state too.
        let (_dir2, store2, path2) = fixture();
        let old2 = format!("{}/", path2.display());
        put(&store2, format!("{}x.json", pending_prefix(&old2)));
        assert_eq!(
            bind(&store2, stage(&path2.display().to_string()))
                .unwrap()
                .state_key(),
            old2
        );
    }

    #[test]
    fn the_canonical_identity_wins_over_a_legacy_one() {
        let (_dir, store, path) = fixture();
        let canonical = path.display().to_string();
        put(
            &store,
            format!("{}a.json", files_prefix(&format!("{canonical}/"))),
        );
        put(&store, format!("{}b.json", files_prefix(&canonical)));
        let bound = bind(&store, stage(&format!("{canonical}/"))).unwrap();
        assert_eq!(bound.state_key(), canonical);
    }

    #[test]
    fn object_store_spellings_find_the_old_trailing_slash_less_state() {
        let (_dir, store, _) = fixture();
        put(
            &store,
            format!("{}a.json", files_prefix("s3://stage/unload")),
        );
        let config = |url: &str| StageConfig {
            url: Some(url.into()),
            skip_signature: Some(true),
            region: Some("us-east-1".into()),
            ..StageConfig::default()
        };
        for url in ["s3://stage/unload/", "s3a://stage/unload"] {
            let stage = Stage::new(&config(url)).unwrap();
            assert_eq!(stage.identity(), "s3://stage/unload/");
            assert_eq!(
                bind(&store, stage).unwrap().state_key(),
                "s3://stage/unload"
            );
        }
    }
}
