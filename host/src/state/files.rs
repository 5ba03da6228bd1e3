//! The per-file state document (`files/<stage-id>/<file-id>.json`) and the names of state
//! documents.
//!
//! A file's rows are cut into **segments** of `segmentRows` consecutive rows (the last may
//! be shorter); every request body holds records of one segment only, so "segment N of
//! file F" is the same rows on every run, whatever the plugin does with them. A segment is
//! *acknowledged* once every record of it was stored by the endpoint or dead-lettered and
//! every row of it that the plugin rejected is dead-lettered. The document records:
//!
//! - which file version it describes (`identity`: the ETag, else the object version, else
//!   size and modification time): another version of the same key starts over;
//! - the acknowledged segments as ranges, `dispatchLimit` (no segment at or beyond it was
//!   ever sent: after a crash, the unacknowledged segments below it are the only ones that
//!   may arrive twice), and `status` (`partial` or `done`);
//! - the receipts of the requests that stored its records and counts per outcome;
//! - the lease of the worker processing it, if any.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{STATE_FORMAT, StateError, Stored};
use crate::source::StageFile;

/// Whether a file is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileStatus {
    /// Some segments are not acknowledged yet.
    Partial,
    /// Every row is delivered, filtered or dead-lettered.
    Done,
}

/// A worker's claim on a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lease {
    /// `host:pid:run-id` of the worker.
    pub owner: String,
    /// Milliseconds since 1970 at which the lease lapses unless renewed.
    pub expires_at_ms: u64,
    /// The same as RFC 3339, for people.
    pub expires_at: String,
}

/// Counts of a file, summed over the runs that worked on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileCounts {
    /// Rows of acknowledged segments.
    pub rows: u64,
    pub records_delivered: u64,
    pub records_unchanged: u64,
    pub rows_filtered: u64,
    pub rows_dead_lettered: u64,
}

/// Receipts a file's document keeps (those of its first requests). The document is
/// rewritten at every acknowledgement, so a file of unbounded size (a multi-GB CSV unload:
/// ~60,000 requests for 2 GB) must not grow it without bound; every receipt is in the run
/// report and the debug log. 1,000 requests hold about 1,000,000 records, more than a
/// Snowflake unload file of the default `MAX_FILE_SIZE` (16 MB).
pub const MAX_FILE_RECEIPTS: usize = 1_000;

/// The state of one stage file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileState {
    pub format: String,
    /// The stage URL.
    pub stage: String,
    /// The object key (local stages: the path).
    pub key: String,
    /// The file version this describes (see [`identity`]).
    pub identity: String,
    pub size: u64,
    pub status: FileStatus,
    /// `done` files: `delivered` or `bad-file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Rows per segment (fixed for the file's lifetime in the state).
    pub segment_rows: u64,
    /// Segments of the file, once a worker has read its footer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<u64>,
    /// Acknowledged segments, as sorted, disjoint, half-open ranges `[start, end)`.
    pub acked: Vec<[u64; 2]>,
    /// No segment at or beyond this was sent by any run.
    pub dispatch_limit: u64,
    /// `receiptId`s of the requests that stored the file's records (the request id when the
    /// endpoint gave no receipt): the first [`MAX_FILE_RECEIPTS`] ([`FileState::add_receipts`]).
    pub receipts: Vec<String>,
    pub counts: FileCounts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// The run that last wrote the document.
    pub run_id: String,
    pub updated_at: String,
    /// Segments sent again after a crash (their first sending was never acknowledged):
    /// the records of these may have reached the endpoint twice.
    #[serde(default)]
    pub resent_segments: u64,
    /// The full-refresh generation the document belongs to ([`super::refresh`]): a
    /// document of another generation is sent again. Absent before the stage's first full
    /// refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<String>,
    /// SHA-256 of the plugin of the run that last claimed the file (absent in documents
    /// written before stagepush recorded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_sha256: Option<String>,
}

impl FileState {
    /// A fresh document for `file` (nothing acknowledged).
    pub fn new(stage: &str, file: &StageFile, segment_rows: u64, run_id: &str) -> Self {
        FileState {
            format: STATE_FORMAT.to_string(),
            stage: stage.to_string(),
            key: file.key.clone(),
            identity: identity(file),
            size: file.size,
            status: FileStatus::Partial,
            outcome: None,
            error: None,
            segment_rows,
            segments: None,
            acked: Vec::new(),
            dispatch_limit: 0,
            receipts: Vec::new(),
            counts: FileCounts::default(),
            lease: None,
            run_id: run_id.to_string(),
            updated_at: crate::wire::time::now_rfc3339(),
            resent_segments: 0,
            generation: None,
            plugin_sha256: None,
        }
    }

    /// Parses a stored document; anything unusable is [`StateError::Damaged`].
    pub fn parse(path: &str, stored: &Stored) -> Result<Self, StateError> {
        let damaged = |reason: String| StateError::Damaged {
            path: path.to_string(),
            reason,
        };
        if stored.bytes.is_empty() {
            return Err(damaged("it is empty (a torn write?)".into()));
        }
        let state: FileState = serde_json::from_slice(&stored.bytes)
            .map_err(|e| damaged(format!("not a state document: {e}")))?;
        if state.format != STATE_FORMAT {
            return Err(damaged(format!(
                "format {:?}, this stagepush reads {STATE_FORMAT:?}",
                state.format
            )));
        }
        if state.segment_rows == 0 {
            return Err(damaged("segmentRows is 0".into()));
        }
        Ok(state)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Adds the receipts of requests that stored the file's records, keeping the first
    /// [`MAX_FILE_RECEIPTS`].
    pub fn add_receipts(&mut self, receipts: impl IntoIterator<Item = String>) {
        let room = MAX_FILE_RECEIPTS.saturating_sub(self.receipts.len());
        self.receipts.extend(receipts.into_iter().take(room));
    }

    /// Whether segment `s` is acknowledged.
    pub fn is_acked(&self, s: u64) -> bool {
        self.acked.iter().any(|[a, b]| *a <= s && s < *b)
    }

    /// Marks segment `s` acknowledged (keeps the ranges sorted and merged).
    pub fn ack(&mut self, s: u64) {
        if self.is_acked(s) {
            return;
        }
        self.acked.push([s, s + 1]);
        self.acked.sort_unstable();
        let mut merged: Vec<[u64; 2]> = Vec::with_capacity(self.acked.len());
        for [a, b] in self.acked.drain(..) {
            match merged.last_mut() {
                Some(last) if last[1] >= a => last[1] = last[1].max(b),
                _ => merged.push([a, b]),
            }
        }
        self.acked = merged;
    }

    /// The first segment not acknowledged.
    pub fn first_unacked(&self) -> u64 {
        match self.acked.first() {
            Some([0, end]) => *end,
            _ => 0,
        }
    }

    /// Segments acknowledged.
    pub fn acked_count(&self) -> u64 {
        self.acked.iter().map(|[a, b]| b - a).sum()
    }

    /// Whether every segment is acknowledged (the segment count must be known).
    pub fn all_acked(&self) -> bool {
        match self.segments {
            Some(n) => self.acked_count() >= n,
            None => false,
        }
    }
}

/// The version of a stage file a state document describes: its ETag, else its object
/// version, else `size:<bytes>:mtime:<ms>` (local files).
pub fn identity(file: &StageFile) -> String {
    if let Some(e_tag) = &file.e_tag {
        return format!("etag:{e_tag}");
    }
    if let Some(version) = &file.version {
        return format!("version:{version}");
    }
    format!(
        "size:{}:mtime:{}",
        file.size,
        file.last_modified.timestamp_millis()
    )
}

fn hex_prefix(text: &str, digits: usize) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = hex::encode(digest);
    hex.truncate(digits);
    hex
}

/// The state's id of a stage (16 hex digits of SHA-256 of its URL).
pub fn stage_id(stage_url: &str) -> String {
    hex_prefix(stage_url, 16)
}

/// The state's id of a file (32 hex digits of SHA-256 of its key).
pub fn file_id(key: &str) -> String {
    hex_prefix(key, 32)
}

/// `files/<stage-id>/`.
pub fn files_prefix(stage_url: &str) -> String {
    format!("files/{}/", stage_id(stage_url))
}

/// `files/<stage-id>/<file-id>.json`.
pub fn file_path(stage_url: &str, key: &str) -> String {
    format!("{}{}.json", files_prefix(stage_url), file_id(key))
}

/// `dead-letters/<stage-id>/`.
pub fn dead_letters_prefix(stage_url: &str) -> String {
    format!("dead-letters/{}/", stage_id(stage_url))
}

/// `dead-letters/<stage-id>/<file-id>/`.
pub fn file_dead_letters_prefix(stage_url: &str, key: &str) -> String {
    format!("{}{}/", dead_letters_prefix(stage_url), file_id(key))
}

/// `runs/`.
pub const RUNS_PREFIX: &str = "runs/";

/// `runs/<started>-<run-id>.json`: sortable by start time.
pub fn run_path(started_at: &str, run_id: &str) -> String {
    let compact: String = started_at
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!("{RUNS_PREFIX}{compact}-{run_id}.json")
}

/// Counts of every file state of a stage by status, for `status`.
pub fn summarize(states: &[FileState], now_ms: u64) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for s in states {
        let key = match (&s.status, &s.lease) {
            (FileStatus::Done, _) => "done",
            (FileStatus::Partial, Some(l)) if l.expires_at_ms > now_ms => "claimed",
            (FileStatus::Partial, _) if s.acked.is_empty() => "pending",
            (FileStatus::Partial, _) => "partial",
        };
        *out.entry(key).or_default() += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> FileState {
        FileState {
            format: STATE_FORMAT.into(),
            stage: "s3://b/p/".into(),
            key: "p/data_0_0_0.snappy.parquet".into(),
            identity: "etag:\"x\"".into(),
            size: 10,
            status: FileStatus::Partial,
            outcome: None,
            error: None,
            segment_rows: 1000,
            segments: Some(5),
            acked: Vec::new(),
            dispatch_limit: 0,
            receipts: Vec::new(),
            counts: FileCounts::default(),
            lease: None,
            run_id: "r".into(),
            updated_at: "t".into(),
            resent_segments: 0,
            generation: None,
            plugin_sha256: None,
        }
    }

    #[test]
    fn a_files_document_keeps_its_first_receipts_only() {
        let mut d = doc();
        d.add_receipts(["r-0".to_string()]);
        d.add_receipts((1..=MAX_FILE_RECEIPTS + 500).map(|i| format!("r-{i}")));
        d.add_receipts(["late".to_string()]);
        assert_eq!(d.receipts.len(), MAX_FILE_RECEIPTS);
        assert_eq!(d.receipts[0], "r-0");
        assert_eq!(
            d.receipts[MAX_FILE_RECEIPTS - 1],
            format!("r-{}", MAX_FILE_RECEIPTS - 1)
        );
        // The document stays the size of its first receipts, however many requests follow.
        let bounded = d.to_json().len();
        d.add_receipts((0..100_000).map(|i| format!("more-{i}")));
        assert_eq!(d.to_json().len(), bounded);
    }

    #[test]
    fn acked_segments_merge_into_ranges() {
        let mut d = doc();
        for s in [3, 0, 1, 4] {
            d.ack(s);
        }
        assert_eq!(d.acked, vec![[0, 2], [3, 5]]);
        assert!(!d.is_acked(2) && d.is_acked(4));
        assert!(!d.all_acked());
        d.ack(2);
        assert_eq!(d.acked, vec![[0, 5]]);
        assert!(d.all_acked());
    }

    #[test]
    fn torn_documents_are_damaged_not_empty() {
        let bytes = doc().to_json();
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 3] {
            let stored = Stored {
                bytes: bytes[..cut].to_vec(),
                version: super::super::Version("v".into()),
            };
            let err = FileState::parse("files/a/b.json", &stored).unwrap_err();
            assert!(
                matches!(err, StateError::Damaged { .. }),
                "cut at {cut}: {err}"
            );
            assert!(err.to_string().contains("files/a/b.json"), "{err}");
        }
        let whole = Stored {
            bytes,
            version: super::super::Version("v".into()),
        };
        assert_eq!(FileState::parse("p", &whole).unwrap(), doc());
    }
}
