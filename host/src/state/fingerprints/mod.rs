//! The `--only-changed` store: a fingerprint of the last delivered content per (entity type,
//! external id), so that a record identical to what CluedIn already received is not sent again.
//!
//! Kept in one [redb] file (`<state>/fingerprints.redb`): a B-tree of 16-byte [`Key`]s to 16-byte
//! [`Digest`]s (2,000,000 random keys made a file of 136 MiB with durable commits, 272 MiB with
//! the non-durable ones below), read through a page cache of [`DEFAULT_CACHE_BYTES`], so memory
//! stays bounded whatever the number of ids: tens of millions make a file of a few GiB, and
//! only the cache and redb's write buffer live in memory (peak RSS 80 MiB at 2,000,000 keys).
//!
//! Workers share one [`Fingerprints`] through an `Arc`: lookups run in parallel (one read
//! transaction per batch, [`Fingerprints::unchanged_many`]); writes ([`Fingerprints::apply`],
//! once per batch the endpoint acknowledged) are serialised, one write transaction each.
//!
//! ## Durability
//!
//! A fingerprint is written after the endpoint acknowledged its record, so a lost fingerprint
//! only means that record is sent again (an idempotent upsert in CluedIn): losing the last
//! commits is safe, a corrupt database is not. [`Fingerprints::apply`] therefore commits with
//! [`redb::Durability::None`] (no `fsync`) and makes a durable commit (`fsync`, with redb's
//! quick-repair allocator record and two-phase commit) at most every [`DURABLE_INTERVAL`]; a
//! clean close ([`Fingerprints::flush`], or dropping the last handle) also makes everything
//! durable. A crash (of the process or the machine) rolls the file back to its last durable
//! commit: redb's copy-on-write B-tree and checksummed commit slots never leave a torn
//! database, and the quick-repair record makes the reopen after a crash fast rather than a
//! walk of the whole file. At most [`DURABLE_INTERVAL`] of acknowledged records is resent.
//!
//! ## Failures
//!
//! A file that is not a redb database (truncated, overwritten, another file) is reported as
//! [`FingerprintError::Damaged`], telling to delete it (the next run then resends every record
//! once); a file another process has open as [`FingerprintError::InUse`]: redb locks the file
//! for its writer.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTableMetadata, StorageError,
    TableDefinition,
};
use sha2::{Digest as _, Sha256};

/// First 16 bytes of SHA-256(`entity_type` ++ `"\0"` ++ `external_id`): see [`key`].
pub type Key = [u8; 16];

/// First 16 bytes of SHA-256(record JSON bytes): see [`digest`].
pub type Digest = [u8; 16];

/// redb's page cache for the fingerprint database (redb's own default is 1 GiB). Lookups of
/// random keys touch one leaf page each; the cache keeps the upper levels of the tree and
/// the recently written leaves, and redb's write buffer takes at most half of it.
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Longest time between two durable (`fsync`ed) commits while [`Fingerprints::apply`] is
/// called: at most this much acknowledged work is sent again after a crash.
pub const DURABLE_INTERVAL: Duration = Duration::from_secs(5);

/// The one table: key -> digest of the last delivered content.
const TABLE: TableDefinition<Key, Digest> = TableDefinition::new("fingerprints");

/// An error of the fingerprint database; every message names its file. Causes are part of
/// the message, not also `source()`s, so that a chain printed cause by cause says each once.
#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    /// The folder of the database could not be created.
    #[error("cannot create the folder of fingerprint database {}: {error}", path.display())]
    CreateDir { path: PathBuf, error: io::Error },
    /// The file is not a (readable) redb database.
    #[error(
        "fingerprint database {} is damaged or not a fingerprint database ({reason}); \
         delete it to start afresh (the next --only-changed run then resends every record once)",
        path.display()
    )]
    Damaged { path: PathBuf, reason: String },
    /// Another process holds the file's lock.
    #[error(
        "fingerprint database {} is in use by another stagepush process \
         (one process at a time may use a state folder's fingerprints)",
        path.display()
    )]
    InUse { path: PathBuf },
    /// Any other failure of redb (I/O, disk full, …) during `op`.
    #[error("fingerprint database {}: {op} failed: {error}", path.display())]
    Database {
        path: PathBuf,
        op: &'static str,
        error: Box<redb::Error>,
    },
}

/// The fingerprint key of a record: first 16 bytes of
/// SHA-256(`entity_type` ++ `"\0"` ++ `external_id`).
pub fn key(entity_type: &str, external_id: &str) -> Key {
    let hash = Sha256::new()
        .chain_update(entity_type.as_bytes())
        .chain_update([0u8])
        .chain_update(external_id.as_bytes())
        .finalize();
    first_16(&hash)
}

/// The fingerprint of a record's content: first 16 bytes of SHA-256(`record_json`).
pub fn digest(record_json: &[u8]) -> Digest {
    first_16(&Sha256::digest(record_json))
}

fn first_16(hash: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&hash[..16]);
    out
}

/// The fingerprint database. `Send + Sync`: share it between workers with an `Arc`.
pub struct Fingerprints {
    db: Database,
    path: PathBuf,
    /// When the last durable commit was made; held across each write transaction, so that
    /// writers queue here rather than inside redb.
    last_durable: Mutex<Instant>,
}

impl std::fmt::Debug for Fingerprints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fingerprints")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Fingerprints {
    /// Opens the database at `path`, creating the file (and its parent folder) if absent, with
    /// a page cache of [`DEFAULT_CACHE_BYTES`].
    ///
    /// Fails with [`FingerprintError::Damaged`] if the file is not a redb database and with
    /// [`FingerprintError::InUse`] if another process has it open.
    pub fn open(path: &Path) -> Result<Self, FingerprintError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|error| FingerprintError::CreateDir {
                path: path.to_path_buf(),
                error,
            })?;
        }
        let db = Database::builder()
            .set_cache_size(DEFAULT_CACHE_BYTES)
            .create(path)
            .map_err(|e| open_error(path, e))?;
        let this = Self {
            db,
            path: path.to_path_buf(),
            last_durable: Mutex::new(Instant::now()),
        };
        // Create the table (a no-op when it exists) in a durable commit, so that readers
        // always find it.
        let txn = this.db.begin_write().map_err(|e| this.err("open", e))?;
        txn.open_table(TABLE).map_err(|e| this.err("open", e))?;
        this.commit(txn, Durability::Immediate, "open")?;
        Ok(this)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `true` when the stored digest for `key` equals `digest` (the record is unchanged).
    pub fn unchanged(&self, key: &Key, digest: &Digest) -> Result<bool, FingerprintError> {
        Ok(self.unchanged_many(&[(*key, *digest)])?[0])
    }

    /// Many lookups in one read transaction (workers call this once per batch of ~1000
    /// records); returns one `bool` per item, in order: `true` when the stored digest equals
    /// the item's.
    pub fn unchanged_many(&self, items: &[(Key, Digest)]) -> Result<Vec<bool>, FingerprintError> {
        let mut out = vec![false; items.len()];
        if items.is_empty() {
            return Ok(out);
        }
        let txn = self.db.begin_read().map_err(|e| self.err("lookup", e))?;
        let table = txn.open_table(TABLE).map_err(|e| self.err("lookup", e))?;
        // In key order: neighbouring lookups then share the path down the tree.
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_unstable_by_key(|&i| items[i].0);
        for i in order {
            let (key, digest) = &items[i];
            if let Some(stored) = table.get(key).map_err(|e| self.err("lookup", e))? {
                out[i] = stored.value() == *digest;
            }
        }
        Ok(out)
    }

    /// Applies delivered records in one write transaction: `Some(digest)` stores it, `None` (a
    /// tombstone) removes the key. Of several updates of one key, the last wins. Call it once
    /// per acknowledged batch; see the module documentation for when the commit is durable.
    pub fn apply(&self, updates: &[(Key, Option<Digest>)]) -> Result<(), FingerprintError> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut last_durable = self
            .last_durable
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let durable = last_durable.elapsed() >= DURABLE_INTERVAL;
        let txn = self.db.begin_write().map_err(|e| self.err("write", e))?;
        {
            let mut table = txn.open_table(TABLE).map_err(|e| self.err("write", e))?;
            // In key order (stable: a key's updates keep their order, so the last wins): each
            // leaf page is then visited once.
            let mut sorted: Vec<&(Key, Option<Digest>)> = updates.iter().collect();
            sorted.sort_by_key(|(key, _)| *key);
            for (key, update) in sorted {
                match update {
                    Some(digest) => table.insert(key, digest).map(drop),
                    None => table.remove(key).map(drop),
                }
                .map_err(|e| self.err("write", e))?;
            }
        }
        if durable {
            self.commit(txn, Durability::Immediate, "write")?;
            *last_durable = Instant::now();
        } else {
            self.commit(txn, Durability::None, "write")?;
        }
        Ok(())
    }

    /// Makes every commit so far durable (one `fsync`). Dropping the last handle does the same
    /// but cannot report a failure; call this at the end of a run.
    pub fn flush(&self) -> Result<(), FingerprintError> {
        let mut last_durable = self
            .last_durable
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let txn = self.db.begin_write().map_err(|e| self.err("flush", e))?;
        self.commit(txn, Durability::Immediate, "flush")?;
        *last_durable = Instant::now();
        Ok(())
    }

    /// Number of stored fingerprints.
    pub fn len(&self) -> Result<u64, FingerprintError> {
        let txn = self.db.begin_read().map_err(|e| self.err("count", e))?;
        let table = txn.open_table(TABLE).map_err(|e| self.err("count", e))?;
        table.len().map_err(|e| self.err("count", e))
    }

    /// `true` when no fingerprint is stored.
    pub fn is_empty(&self) -> Result<bool, FingerprintError> {
        Ok(self.len()? == 0)
    }

    /// Commits `txn`: [`Durability::Immediate`] commits also record the allocator state
    /// (quick repair), so that reopening after a crash does not walk the whole file.
    fn commit(
        &self,
        mut txn: redb::WriteTransaction,
        durability: Durability,
        op: &'static str,
    ) -> Result<(), FingerprintError> {
        if matches!(durability, Durability::Immediate) {
            txn.set_quick_repair(true);
        }
        txn.set_durability(durability)
            .map_err(|e| self.err(op, e))?;
        txn.commit().map_err(|e| self.err(op, e))
    }

    fn err(&self, op: &'static str, source: impl Into<redb::Error>) -> FingerprintError {
        match source.into() {
            redb::Error::Corrupted(reason) => FingerprintError::Damaged {
                path: self.path.clone(),
                reason,
            },
            source => FingerprintError::Database {
                path: self.path.clone(),
                op,
                error: Box::new(source),
            },
        }
    }
}

/// Maps an error of `Builder::create` to the message a user can act on.
fn open_error(path: &Path, err: DatabaseError) -> FingerprintError {
    let path = path.to_path_buf();
    match err {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            FingerprintError::InUse { path }
        }
        // redb reports a file that does not start with its header as InvalidData, one cut
        // short inside its header or pages as UnexpectedEof.
        DatabaseError::Storage(StorageError::Io(e))
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
            ) =>
        {
            let reason = match e.kind() {
                io::ErrorKind::UnexpectedEof => format!("file cut short: {e}"),
                _ => e.to_string(),
            };
            FingerprintError::Damaged { path, reason }
        }
        DatabaseError::Storage(StorageError::Corrupted(reason)) => {
            FingerprintError::Damaged { path, reason }
        }
        DatabaseError::UpgradeRequired(version) => FingerprintError::Damaged {
            path,
            reason: format!("written in redb file format {version}, which this build cannot read"),
        },
        other => FingerprintError::Database {
            path,
            op: "open",
            error: Box::new(other.into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn items(range: std::ops::Range<u64>, version: u8) -> Vec<(Key, Digest)> {
        range
            .map(|i| {
                let k = key("person", &i.to_string());
                let mut d = digest(&i.to_le_bytes());
                d[0] = d[0].wrapping_add(version);
                (k, d)
            })
            .collect()
    }

    fn stores(items: &[(Key, Digest)]) -> Vec<(Key, Option<Digest>)> {
        items.iter().map(|(k, d)| (*k, Some(*d))).collect()
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Fingerprints>();
        check::<Arc<Fingerprints>>();
    }

    #[test]
    fn key_and_digest_are_sha256_prefixes() {
        // SHA-256("") starts e3b0c442 98fc1c14 9afbf4c8 996fb924.
        assert_eq!(hex::encode(digest(b"")), "e3b0c44298fc1c149afbf4c8996fb924");
        assert_eq!(key("a", "b"), digest(b"a\0b"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(key("ab", "c"), key("a", "bc"));
    }

    #[test]
    fn unchanged_follows_apply() {
        let dir = tempfile::tempdir().unwrap();
        // The parent folder is created.
        let fp = Fingerprints::open(&dir.path().join("sub/fingerprints.redb")).unwrap();
        let k = key("person", "42");
        let d = digest(br#"{"name":"Ada"}"#);
        let other = digest(br#"{"name":"Grace"}"#);
        assert!(!fp.unchanged(&k, &d).unwrap(), "unknown key");
        assert!(fp.is_empty().unwrap());
        fp.apply(&[(k, Some(d))]).unwrap();
        assert!(fp.unchanged(&k, &d).unwrap());
        assert!(!fp.unchanged(&k, &other).unwrap(), "different digest");
        assert_eq!(fp.len().unwrap(), 1);
        fp.apply(&[(k, None)]).unwrap();
        assert!(!fp.unchanged(&k, &d).unwrap(), "after a tombstone");
        assert_eq!(fp.len().unwrap(), 0);
        // Of several updates of a key in one batch, the last wins.
        fp.apply(&[(k, Some(d)), (k, None), (k, Some(other))])
            .unwrap();
        assert!(fp.unchanged(&k, &other).unwrap());
        fp.apply(&[(k, Some(d)), (k, None)]).unwrap();
        assert!(!fp.unchanged(&k, &d).unwrap());
        fp.apply(&[]).unwrap();
    }

    #[test]
    fn unchanged_many_matches_single_lookups() {
        let dir = tempfile::tempdir().unwrap();
        let fp = Fingerprints::open(&dir.path().join("fp.redb")).unwrap();
        let stored = items(0..500, 0);
        fp.apply(&stores(&stored)).unwrap();
        // Unchanged (0..500 every other), changed (odd ones get another digest), unknown.
        let mut asked: Vec<(Key, Digest)> = items(0..500, 0)
            .into_iter()
            .zip(items(0..500, 1))
            .enumerate()
            .map(|(i, (same, changed))| if i % 2 == 0 { same } else { changed })
            .collect();
        asked.extend(items(1000..1200, 0));
        fastrand::Rng::with_seed(7).shuffle(&mut asked);
        let many = fp.unchanged_many(&asked).unwrap();
        assert_eq!(many.len(), asked.len());
        let single: Vec<bool> = asked
            .iter()
            .map(|(k, d)| fp.unchanged(k, d).unwrap())
            .collect();
        assert_eq!(many, single);
        assert_eq!(many.iter().filter(|&&b| b).count(), 250);
        assert!(fp.unchanged_many(&[]).unwrap().is_empty());
    }

    #[test]
    fn survives_reopen_and_concurrent_workers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fp.redb");
        let fp = Arc::new(Fingerprints::open(&path).unwrap());
        let workers: Vec<_> = (0..4u64)
            .map(|w| {
                let fp = Arc::clone(&fp);
                std::thread::spawn(move || {
                    for b in 0..10 {
                        let start = (w * 10 + b) * 100;
                        let batch = items(start..start + 100, 0);
                        fp.unchanged_many(&batch).unwrap();
                        fp.apply(&stores(&batch)).unwrap();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(fp.len().unwrap(), 4000);
        // Non-durable commits are made durable when the last handle is dropped.
        drop(fp);
        let fp = Fingerprints::open(&path).unwrap();
        assert_eq!(fp.len().unwrap(), 4000);
        let all = items(0..4000, 0);
        assert!(fp.unchanged_many(&all).unwrap().into_iter().all(|b| b));
    }

    #[test]
    fn garbage_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("short.redb", b"not a database".to_vec()),
            ("long.redb", vec![0x5a; 64 * 1024]),
            (
                "json.redb",
                br#"{"format":"stagepush-state/1"}"#.repeat(200),
            ),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let err = Fingerprints::open(&path).unwrap_err();
            let message = err.to_string();
            assert!(
                matches!(err, FingerprintError::Damaged { .. }),
                "{name}: {message}"
            );
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains("delete it"), "{message}");
            // The file is left as it was.
            assert_eq!(std::fs::read(&path).unwrap(), bytes);
        }
    }

    #[test]
    fn truncated_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fp.redb");
        let fp = Fingerprints::open(&path).unwrap();
        fp.apply(&stores(&items(0..20_000, 0))).unwrap();
        drop(fp);
        let whole = std::fs::read(&path).unwrap();
        for cut in [100, 4096, whole.len() / 2, whole.len() - 4096] {
            std::fs::write(&path, &whole[..cut]).unwrap();
            let err = Fingerprints::open(&path).unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, FingerprintError::Damaged { .. }), "{message}");
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains("delete it"), "{message}");
        }
    }

    #[test]
    fn second_opener_is_told_the_file_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fp.redb");
        let fp = Fingerprints::open(&path).unwrap();
        // redb's file lock is per open file, so a second open in this process stands in for
        // another process.
        let err = Fingerprints::open(&path).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, FingerprintError::InUse { .. }), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.contains("in use by another stagepush process"),
            "{message}"
        );
        drop(fp);
        Fingerprints::open(&path).unwrap();
    }

    /// Runs one `#[ignore]`d test of this module alone in a child process of this test binary,
    /// with `env` set; returns its status and output.
    fn run_child(test: &str, env: (&str, &Path)) -> (std::process::ExitStatus, String) {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                &format!("state::fingerprints::tests::{test}"),
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(env.0, env.1)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status, text)
    }

    const CRASH_DIR: &str = "STAGEPUSH_FINGERPRINTS_CRASH_DIR";

    /// A process that commits durably, commits more non-durably and dies.
    #[test]
    #[ignore = "child of crash_loses_only_recent_commits"]
    fn crash_child() {
        let Some(dir) = std::env::var_os(CRASH_DIR) else {
            return;
        };
        let fp = Fingerprints::open(&Path::new(&dir).join("fp.redb")).unwrap();
        fp.apply(&stores(&items(0..10_000, 0))).unwrap();
        fp.flush().unwrap();
        for b in 1..20 {
            fp.apply(&stores(&items(b * 10_000..(b + 1) * 10_000, 0)))
                .unwrap();
        }
        println!("applied");
        // Ends the process without running destructors: the database is never closed, as
        // in a crash (and without the core dump of an abort).
        std::process::exit(86);
    }

    #[test]
    fn crash_loses_only_recent_commits() {
        let dir = tempfile::tempdir().unwrap();
        let (status, output) = run_child("crash_child", (CRASH_DIR, dir.path()));
        assert!(
            status.code() == Some(86) && output.contains("applied"),
            "{output}"
        );
        let fp = Fingerprints::open(&dir.path().join("fp.redb")).unwrap();
        let len = fp.len().unwrap();
        // The flushed batch is there; later ones may or may not be, whole batches only.
        assert!(
            (10_000..=200_000).contains(&len) && len.is_multiple_of(10_000),
            "{len}"
        );
        let kept = items(0..len, 0);
        assert!(fp.unchanged_many(&kept).unwrap().into_iter().all(|b| b));
        // And the database takes writes again.
        fp.apply(&stores(&items(500_000..500_100, 0))).unwrap();
        assert_eq!(fp.len().unwrap(), len + 100);
    }

    const SCALE_DIR: &str = "STAGEPUSH_FINGERPRINTS_SCALE_DIR";
    const SCALE_KEYS: u64 = 2_000_000;
    const SCALE_BATCH: u64 = 10_000;
    /// Peak RSS allowed for the scale child: measured about 80 MiB with the 64 MiB cache,
    /// about 260 MiB with redb's default 1 GiB cache (so a lost `set_cache_size` fails).
    const SCALE_MAX_RSS: u64 = 200 * 1024 * 1024;

    /// 2,000,000 keys in batches of 10,000 in a fresh process: prints rates and peak RSS.
    #[test]
    #[ignore = "child of two_million_keys_in_bounded_memory"]
    fn scale_child() {
        let Some(dir) = std::env::var_os(SCALE_DIR) else {
            return;
        };
        let fp = Fingerprints::open(&Path::new(&dir).join("fp.redb")).unwrap();
        let started = Instant::now();
        for b in 0..SCALE_KEYS / SCALE_BATCH {
            let batch = items(b * SCALE_BATCH..(b + 1) * SCALE_BATCH, 0);
            fp.apply(&stores(&batch)).unwrap();
        }
        fp.flush().unwrap();
        let insert_secs = started.elapsed().as_secs_f64();
        assert_eq!(fp.len().unwrap(), SCALE_KEYS);

        // Lookups in batches of 1000 of random ids: three quarters stored (half of those
        // with another digest), a quarter unknown.
        let mut rng = fastrand::Rng::with_seed(42);
        let lookups = 200_000u64;
        let batches: Vec<Vec<(Key, Digest)>> = (0..lookups / 1000)
            .map(|_| {
                (0..1000)
                    .map(|_| {
                        let i = rng.u64(0..SCALE_KEYS * 4 / 3);
                        items(i..i + 1, rng.u8(0..2))[0]
                    })
                    .collect()
            })
            .collect();
        let started = Instant::now();
        let mut hits = 0;
        for batch in &batches {
            let found = fp.unchanged_many(batch).unwrap();
            hits += found.into_iter().filter(|&b| b).count() as u64;
        }
        let lookup_secs = started.elapsed().as_secs_f64();
        // About 3/8 are unchanged (stored, same digest).
        assert!(
            (lookups * 30 / 100..lookups * 45 / 100).contains(&hits),
            "{hits}"
        );
        // A sample of the stored keys, exactly.
        let sample: Vec<(Key, Digest)> = (0..1000)
            .flat_map(|j| items(j * 1999..j * 1999 + 1, 0))
            .collect();
        assert!(fp.unchanged_many(&sample).unwrap().into_iter().all(|b| b));
        let changed: Vec<(Key, Digest)> = (0..1000)
            .flat_map(|j| items(j * 1999..j * 1999 + 1, 1))
            .collect();
        assert!(fp.unchanged_many(&changed).unwrap().into_iter().all(|b| !b));

        let rss = crate::procstat::peak_rss_bytes().unwrap();
        let file = std::fs::metadata(fp.path()).unwrap().len();
        println!(
            "SCALE keys={SCALE_KEYS} insert={:.0} keys/s ({insert_secs:.1} s) \
             lookup={:.0} keys/s (1000-key batches) file={} MiB peak_rss={} MiB",
            SCALE_KEYS as f64 / insert_secs,
            lookups as f64 / lookup_secs,
            file >> 20,
            rss >> 20,
        );
        println!("PEAK_RSS_BYTES={rss}");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn two_million_keys_in_bounded_memory() {
        let dir = tempfile::tempdir().unwrap();
        let (status, output) = run_child("scale_child", (SCALE_DIR, dir.path()));
        println!("{output}");
        assert!(status.success(), "{output}");
        let rss: u64 = output
            .lines()
            .find_map(|l| l.strip_prefix("PEAK_RSS_BYTES="))
            .expect("the child ran")
            .parse()
            .unwrap();
        assert!(rss < SCALE_MAX_RSS, "peak RSS {} MiB", rss >> 20);
    }
}
