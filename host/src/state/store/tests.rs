//! Unit tests of the state store on a local folder: create, update, conflicts, listing,
//! path checks, a race of writers, a full disk.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Barrier};

use super::local::{io_error, local_version};
use super::*;

/// An error and its chain as `error: {:#}` prints them (anyhow: `a: b: c`).
fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(source) = cause {
        text.push_str(&format!(": {source}"));
        cause = source.source();
    }
    text
}

#[test]
fn a_full_disk_is_named_once() {
    // A real ENOSPC from the OS, mapped as every local write maps it.
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .and_then(|mut full| full.write_all(b"{}").and_then(|()| full.sync_all()));
    let error = io_error(Path::new("/s/files/x.json"))(written.unwrap_err());
    let expected = format!(
        "state folder /s/files/x.json: {}",
        std::io::Error::from_raw_os_error(libc::ENOSPC)
    );
    assert_eq!(error.to_string(), expected);
    // As the run returns it to the command line, which prints the chain.
    let stopped = crate::pipeline::PipelineError::State(error);
    let text = chain_text(&stopped);
    assert_eq!(text, expected);
    assert_eq!(text.matches("No space left on device").count(), 1, "{text}");
}

fn local() -> (tempfile::TempDir, StateStore) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("state");
    let store = StateStore::open(root.to_str().unwrap(), &StageConfig::default()).unwrap();
    (dir, store)
}

#[test]
fn local_create_update_and_conflicts() {
    let (dir, store) = local();
    let root = dir.path().join("state");
    assert!(root.is_dir(), "open creates the folder");
    assert_eq!(store.local_root(), Some(root.as_path()));
    assert_eq!(store.location(), root.to_str().unwrap());

    let path = "files/0123abcd/f1.json";
    assert!(store.get(path).unwrap().is_none());
    let v1 = store.put(path, b"{\"n\":1}", PutMode::Create).unwrap();
    assert_eq!(v1, local_version(b"{\"n\":1}"));
    assert_eq!(v1.0.len(), 64);
    let stored = store.get(path).unwrap().unwrap();
    assert_eq!(stored.bytes, b"{\"n\":1}");
    assert_eq!(stored.version, v1);

    let error = store.put(path, b"{\"n\":9}", PutMode::Create).unwrap_err();
    assert!(
        matches!(&error, StateError::Conflict { path: p } if p == path),
        "{error}"
    );

    let v2 = store
        .put(path, b"{\"n\":2}", PutMode::Update(v1.clone()))
        .unwrap();
    assert_ne!(v1, v2);
    let error = store
        .put(path, b"{\"n\":3}", PutMode::Update(v1.clone()))
        .unwrap_err();
    assert!(matches!(error, StateError::Conflict { .. }), "{error}");
    assert_eq!(store.get(path).unwrap().unwrap().bytes, b"{\"n\":2}");

    // Update of a missing document is a conflict too (someone deleted it).
    let error = store
        .put(
            "files/0123abcd/none.json",
            b"{}",
            PutMode::Update(v2.clone()),
        )
        .unwrap_err();
    assert!(matches!(error, StateError::Conflict { .. }), "{error}");

    let v3 = store.put(path, b"{\"n\":4}", PutMode::Overwrite).unwrap();
    assert_eq!(store.get(path).unwrap().unwrap().version, v3);

    // No temporary files are left behind.
    let names: Vec<_> = fs::read_dir(root.join("files/0123abcd"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["f1.json"]);
}

#[test]
fn local_list_and_delete() {
    let (dir, store) = local();
    for path in [
        "files/aa/2.json",
        "files/aa/1.json",
        "files/aa/sub/3.json",
        "files/ab/4.json",
        "runs/r.json",
    ] {
        store.put(path, b"{}", PutMode::Create).unwrap();
    }
    // A leftover temporary file (a crash before the rename) is not a document.
    fs::write(dir.path().join("state/files/aa/9.json.tmp-0123"), b"{").unwrap();
    assert!(dir.path().join("state/.lock").exists());

    assert_eq!(
        store.list("files/aa/").unwrap(),
        ["files/aa/1.json", "files/aa/2.json", "files/aa/sub/3.json"]
    );
    assert_eq!(
        store.list("").unwrap(),
        [
            "files/aa/1.json",
            "files/aa/2.json",
            "files/aa/sub/3.json",
            "files/ab/4.json",
            "runs/r.json"
        ]
    );
    assert_eq!(store.list("files/a").unwrap().len(), 4);
    assert!(store.list("nothing/here/").unwrap().is_empty());

    store.delete("files/aa/2.json").unwrap();
    store.delete("files/aa/2.json").unwrap();
    store.delete("never/was.json").unwrap();
    assert!(store.get("files/aa/2.json").unwrap().is_none());
    assert_eq!(
        store.list("files/aa/").unwrap(),
        ["files/aa/1.json", "files/aa/sub/3.json"]
    );
}

#[test]
fn local_paths_are_checked_and_file_urls_work() {
    let (dir, store) = local();
    for bad in [
        "",
        "/abs.json",
        "a/../b.json",
        "a//b",
        "./a",
        ".lock",
        "x.tmp-1",
    ] {
        let error = store.put(bad, b"{}", PutMode::Overwrite).unwrap_err();
        assert!(matches!(error, StateError::Store { .. }), "{bad}: {error}");
    }
    let url = format!("file://{}/via-url", dir.path().display());
    let by_url = StateStore::open(&url, &StageConfig::default()).unwrap();
    assert_eq!(
        by_url.local_root(),
        Some(dir.path().join("via-url").as_path())
    );
    by_url.put("a.json", b"1", PutMode::Create).unwrap();
    assert!(dir.path().join("via-url/a.json").is_file());

    let error = StateStore::open("ftp://x/y", &StageConfig::default()).unwrap_err();
    assert!(matches!(error, StateError::Location { .. }), "{error}");
}

#[test]
fn local_cas_race_has_exactly_one_winner() {
    const WRITERS: usize = 8;
    for round in 0..5 {
        let (_dir, store) = local();
        let path = "files/race/doc.json";
        let base = store.put(path, b"base", PutMode::Create).unwrap();
        let barrier = Arc::new(Barrier::new(WRITERS));
        let handles: Vec<_> = (0..WRITERS)
            .map(|writer| {
                // A store per thread, as separate processes would have: each opens
                // its own handle of the lock file.
                let store = StateStore::open(
                    store.local_root().unwrap().to_str().unwrap(),
                    &StageConfig::default(),
                )
                .unwrap();
                let barrier = Arc::clone(&barrier);
                let base = base.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let body = format!("writer {writer}");
                    store
                        .put(path, body.as_bytes(), PutMode::Update(base))
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
        let (writer, version) = winners[0];
        let stored = store.get(path).unwrap().unwrap();
        assert_eq!(stored.bytes, format!("writer {writer}").as_bytes());
        assert_eq!(&stored.version, version);
    }
}

#[test]
fn invalid_paths_are_refused_with_their_reason() {
    let (_dir, store) = local();
    for (bad, reason) in [
        ("", "empty"),
        ("/abs.json", "not relative"),
        ("a\\b.json", "backslash or control character"),
        ("a//b", "empty segment"),
        ("./a", "`.` segment"),
        ("a/../b.json", "`..` segment"),
        ("x/.lock", "names the lock file"),
        ("x.tmp-1", "`.tmp-` marks temporary files"),
    ] {
        let error = store.get(bad).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "state store {}: invalid document path {bad:?}: {reason}",
                store.location()
            )
        );
    }
}
