//! The state store on object stores, against real servers (SeaweedFS for S3, Azurite for
//! Azure; see `stage_servers`): conditional puts (`If-None-Match: *`, `If-Match`) must
//! turn a lost race into `StateError::Conflict`.

use std::sync::{Arc, Barrier};

use stagepush::source::StageConfig;
use stagepush::state::{PutMode, StateError, StateStore};

use crate::stage_servers::{AzureServer, S3Server, put};

/// Create, conflicting create, update, stale update, get, list and delete on `location`
/// (whose key prefix is `state/run1`); `outside` writes a raw object at a key.
fn exercise(location: &str, config: &StageConfig, outside: &dyn Fn(&str)) {
    let store = StateStore::open(location, config).unwrap();
    assert_eq!(store.location(), location);
    assert!(store.local_root().is_none());

    let path = "files/0123abcd/f1.json";
    assert!(store.get(path).unwrap().is_none());
    let v1 = store.put(path, b"{\"n\":1}", PutMode::Create).unwrap();
    assert!(!v1.0.is_empty());

    let error = store.put(path, b"{\"n\":9}", PutMode::Create).unwrap_err();
    assert!(
        matches!(&error, StateError::Conflict { path: p } if p == path),
        "create over an existing document: {error}"
    );
    let stored = store.get(path).unwrap().unwrap();
    assert_eq!(
        stored.bytes, b"{\"n\":1}",
        "the losing create wrote nothing"
    );
    assert_eq!(stored.version, v1);

    let v2 = store
        .put(path, b"{\"n\":2}", PutMode::Update(v1.clone()))
        .unwrap();
    assert_ne!(v2, v1, "an update gives a new version");
    let error = store
        .put(path, b"{\"n\":3}", PutMode::Update(v1.clone()))
        .unwrap_err();
    assert!(
        matches!(error, StateError::Conflict { .. }),
        "update with a stale version: {error}"
    );
    let stored = store.get(path).unwrap().unwrap();
    assert_eq!(stored.bytes, b"{\"n\":2}", "the stale update wrote nothing");
    assert_eq!(stored.version, v2);

    // Update of a document that does not exist is a conflict as well.
    let error = store
        .put(
            "files/0123abcd/gone.json",
            b"{}",
            PutMode::Update(v2.clone()),
        )
        .unwrap_err();
    assert!(matches!(error, StateError::Conflict { .. }), "{error}");

    let v3 = store.put(path, b"{\"n\":4}", PutMode::Overwrite).unwrap();
    assert_eq!(store.get(path).unwrap().unwrap().version, v3);

    store
        .put("files/0123abcd/f2.json", b"{}", PutMode::Create)
        .unwrap();
    store
        .put("files/0123abcd/sub/f3.json", b"{}", PutMode::Create)
        .unwrap();
    store
        .put("files/0123abce/f4.json", b"{}", PutMode::Create)
        .unwrap();
    store
        .put("runs/r1.json", b"{}", PutMode::Overwrite)
        .unwrap();
    // Objects next to the store's prefix are not its documents.
    outside("state/run10/files/0123abcd/x.json");
    outside("state/other.json");
    assert_eq!(
        store.list("files/0123abcd/").unwrap(),
        [
            "files/0123abcd/f1.json",
            "files/0123abcd/f2.json",
            "files/0123abcd/sub/f3.json"
        ]
    );
    assert_eq!(store.list("").unwrap().len(), 5);
    assert!(store.list("nothing/").unwrap().is_empty());

    store.delete("files/0123abcd/f2.json").unwrap();
    store.delete("files/0123abcd/f2.json").unwrap();
    assert!(store.get("files/0123abcd/f2.json").unwrap().is_none());
    assert_eq!(
        store.list("files/0123abcd/").unwrap(),
        ["files/0123abcd/f1.json", "files/0123abcd/sub/f3.json"]
    );
}

/// Writers racing `Update` with the same version: exactly one wins, every other one gets
/// `Conflict`.
fn race(location: &str, config: &StageConfig) {
    const WRITERS: usize = 6;
    let store = StateStore::open(location, config).unwrap();
    for round in 0..3 {
        let path = format!("race/doc{round}.json");
        let base = store.put(&path, b"base", PutMode::Create).unwrap();
        let barrier = Arc::new(Barrier::new(WRITERS));
        let handles: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let (store, barrier, base, path) = (
                    store.clone(),
                    Arc::clone(&barrier),
                    base.clone(),
                    path.clone(),
                );
                std::thread::spawn(move || {
                    barrier.wait();
                    let body = format!("writer {writer}");
                    store
                        .put(&path, body.as_bytes(), PutMode::Update(base))
                        .map(|version| (writer, version))
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for result in &results {
            if let Err(error) = result {
                assert!(matches!(error, StateError::Conflict { .. }), "{error}");
            }
        }
        let stored = store.get(&path).unwrap().unwrap();
        assert_eq!(stored.bytes, format!("writer {}", winners[0].0).as_bytes());
        assert_eq!(&stored.version, &winners[0].1);
    }
}

#[test]
fn state_store_s3_conditional_puts() {
    let server = S3Server::start();
    let raw = server.store();
    let location = "s3://stage/state/run1";
    let config = server.config("ignored/");
    exercise(location, &config, &|key| put(&raw, key, b"{}".to_vec()));
    race(location, &config);
}

#[test]
fn state_store_azure_conditional_puts() {
    let server = AzureServer::start();
    let raw = server.store();
    let location = "az://stage/state/run1/";
    let config = server.config("ignored/");
    exercise(location, &config, &|key| put(&raw, key, b"{}".to_vec()));
    race(location, &config);
}
