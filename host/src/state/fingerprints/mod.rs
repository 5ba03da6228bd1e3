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
//!
//! This module owns the keys, digests and the [`Fingerprints`] handle; `error` owns
//! [`FingerprintError`] and the mapping of redb's errors to it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase, ReadableTableMetadata, TableDefinition};
use sha2::{Digest as _, Sha256};

mod error;
#[cfg(test)]
mod tests;

pub use error::FingerprintError;
use error::open_error;

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
