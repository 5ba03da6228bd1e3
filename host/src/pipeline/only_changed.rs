//! `--only-changed`: records CluedIn already has (same entity type, external id and JSON as
//! last acknowledged) are not sent. A batch's records are checked against the fingerprints
//! before they go into bodies; the fingerprints of the records sent are applied when their
//! segment is acknowledged, without those the endpoint rejected.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use crate::state::checkpoint::FileRef;
use crate::state::fingerprints::{self, Digest, FingerprintError, Fingerprints, Key};
use crate::sync::lock;
use crate::transform::{EncodedBatch, EncodedRecord};

/// One record sent: its row, entity type, key, and digest (`None` for a tombstone).
type Update = (u64, Arc<str>, Key, Option<Digest>);

/// See the module docs.
pub(super) struct OnlyChanged {
    fingerprints: Arc<Fingerprints>,
    /// Fingerprints of the records of open segments, by file and segment.
    pending: Mutex<HashMap<(FileRef, u64), Pending>>,
}

#[derive(Default)]
struct Pending {
    updates: Vec<Update>,
    /// Records the endpoint rejected: (row, entity type).
    rejected: BTreeSet<(u64, Arc<str>)>,
}

/// The verdict on one batch's records.
pub(super) struct Check {
    items: Vec<(Key, Digest)>,
    unchanged: Vec<bool>,
}

impl Check {
    /// Whether record `i` (`record`) is left out: CluedIn has it already (tombstones are
    /// always sent).
    pub(super) fn skip(&self, i: usize, record: &EncodedRecord) -> bool {
        !record.deleted && self.unchanged.get(i).copied().unwrap_or(false)
    }

    /// The fingerprint update of record `i` once it is acknowledged.
    fn update(&self, i: usize, record: &EncodedRecord) -> Update {
        let (key, digest) = self.items[i];
        (
            record.row,
            record.entity_type.clone(),
            key,
            (!record.deleted).then_some(digest),
        )
    }
}

impl OnlyChanged {
    pub(super) fn new(fingerprints: Arc<Fingerprints>) -> Self {
        OnlyChanged {
            fingerprints,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Looks up every record of `encoded`.
    pub(super) fn check(&self, encoded: &EncodedBatch) -> Result<Check, FingerprintError> {
        let items: Vec<(Key, Digest)> = encoded
            .records
            .iter()
            .map(|r| {
                (
                    fingerprints::key(&r.entity_type, encoded.external_id(r)),
                    fingerprints::digest(encoded.record_json(r)),
                )
            })
            .collect();
        let unchanged = self.fingerprints.unchanged_many(&items)?;
        Ok(Check { items, unchanged })
    }

    /// Keeps the fingerprints of the records of `encoded` that `sent` says were sent, until
    /// their segment is acknowledged.
    pub(super) fn sent(
        &self,
        file: FileRef,
        segment: u64,
        check: &Check,
        encoded: &EncodedBatch,
        sent: impl Fn(usize) -> bool,
    ) {
        let updates: Vec<Update> = encoded
            .records
            .iter()
            .enumerate()
            .filter(|(i, _)| sent(*i))
            .map(|(i, r)| check.update(i, r))
            .collect();
        if !updates.is_empty() {
            lock(&self.pending)
                .entry((file, segment))
                .or_default()
                .updates
                .extend(updates);
        }
    }

    /// Records the endpoint rejected: their fingerprints are not applied.
    pub(super) fn rejected<'a>(
        &self,
        file: FileRef,
        segment: u64,
        records: impl Iterator<Item = (u64, &'a Arc<str>)>,
    ) {
        if let Some(p) = lock(&self.pending).get_mut(&(file, segment)) {
            for (row, entity_type) in records {
                p.rejected.insert((row, entity_type.clone()));
            }
        }
    }

    /// Applies the fingerprints of an acknowledged segment.
    pub(super) fn segment_acked(&self, file: FileRef, segment: u64) {
        let Some(pending) = lock(&self.pending).remove(&(file, segment)) else {
            return;
        };
        let updates = accepted(pending);
        if let Err(e) = self.fingerprints.apply(&updates) {
            // Not fatal for delivery: the records were delivered; they will be sent again
            // next time.
            tracing::warn!("cannot record fingerprints: {e}");
        }
    }
}

/// The updates of the records not rejected.
fn accepted(pending: Pending) -> Vec<(Key, Option<Digest>)> {
    pending
        .updates
        .into_iter()
        .filter(|(row, t, _, _)| !pending.rejected.contains(&(*row, t.clone())))
        .map(|(_, _, key, digest)| (key, digest))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_records_are_not_fingerprinted() {
        let person: Arc<str> = "Person".into();
        let org: Arc<str> = "Org".into();
        let pending = Pending {
            updates: vec![
                (1, person.clone(), [1; 16], Some([1; 16])),
                (1, org.clone(), [2; 16], Some([2; 16])),
                (2, person.clone(), [3; 16], None),
            ],
            rejected: [(1, org)].into_iter().collect(),
        };
        assert_eq!(
            accepted(pending),
            vec![([1; 16], Some([1; 16])), ([3; 16], None)]
        );
    }
}
