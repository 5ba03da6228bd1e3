//! A run's watermarks: the latest record timestamp per entity type among the records
//! CluedIn acknowledged, i.e. where the next incremental unload may start
//! (`… WHERE UPDATED_AT > '<watermark>'`).
//!
//! The records of a segment are noted while it is sent ([`Watermarks::note`]) and count
//! only once the segment is acknowledged ([`Watermarks::segment_acked`]: every record
//! stored or dead-lettered), without the records the endpoint rejected
//! ([`Watermarks::rejected`]). A run that stops therefore gives no watermark beyond what
//! was acknowledged, and none at all for an entity type none of whose records was.
//! Records `--only-changed` did not send because CluedIn already had them count with their
//! segment.
//!
//! Memory stays small whatever the segment size: per segment and entity type only the
//! [`KEPT_PER_SEGMENT`] latest records are kept. Should the endpoint reject every one of
//! them, the segment adds nothing for that type (the watermark is then earlier than it
//! could be, which only makes the next unload send a few records again).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::state::checkpoint::FileRef;

/// Latest records kept per segment and entity type (see the module docs).
pub const KEPT_PER_SEGMENT: usize = 16;

/// See the module docs.
#[derive(Debug, Default)]
pub struct Watermarks {
    pending: Mutex<HashMap<(FileRef, u64), SegmentMarks>>,
    /// Nanoseconds since 1970, per entity type.
    acked: Mutex<HashMap<Arc<str>, i128>>,
}

#[derive(Debug, Default)]
struct SegmentMarks {
    /// Per entity type, its latest records: (timestamp ns, row), latest first.
    latest: HashMap<Arc<str>, Vec<(i128, u64)>>,
    /// Records the endpoint rejected: (row, entity type).
    rejected: HashSet<(u64, Arc<str>)>,
}

impl SegmentMarks {
    fn note(&mut self, entity_type: &Arc<str>, row: u64, ns: i128) {
        let latest = self.latest.entry(Arc::clone(entity_type)).or_default();
        if latest.len() == KEPT_PER_SEGMENT {
            if latest.last().is_some_and(|&(oldest, _)| oldest >= ns) {
                return;
            }
            latest.pop();
        }
        let at = latest.partition_point(|&(t, _)| t >= ns);
        latest.insert(at, (ns, row));
    }
}

impl Watermarks {
    /// Notes records of `segment` of `file` being sent: (row, entity type, timestamp ns).
    pub fn note<'a>(
        &self,
        file: FileRef,
        segment: u64,
        records: impl IntoIterator<Item = (u64, &'a Arc<str>, i128)>,
    ) {
        let mut records = records.into_iter().peekable();
        if records.peek().is_none() {
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let marks = pending.entry((file, segment)).or_default();
        for (row, entity_type, ns) in records {
            marks.note(entity_type, row, ns);
        }
    }

    /// The endpoint rejected these records (row, entity type) of `segment`.
    pub fn rejected<'a>(
        &self,
        file: FileRef,
        segment: u64,
        records: impl IntoIterator<Item = (u64, &'a Arc<str>)>,
    ) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(marks) = pending.get_mut(&(file, segment)) {
            marks
                .rejected
                .extend(records.into_iter().map(|(row, t)| (row, Arc::clone(t))));
        }
    }

    /// `segment` was acknowledged: its records count.
    pub fn segment_acked(&self, file: FileRef, segment: u64) {
        let Some(marks) = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(file, segment))
        else {
            return;
        };
        let mut acked = self.acked.lock().unwrap_or_else(|p| p.into_inner());
        for (entity_type, latest) in marks.latest {
            let found = latest
                .iter()
                .find(|(_, row)| !marks.rejected.contains(&(*row, Arc::clone(&entity_type))));
            let ns = match found {
                Some(&(ns, _)) => ns,
                // Every record kept was rejected and others were not kept: add nothing.
                None => continue,
            };
            let mark = acked.entry(entity_type).or_insert(ns);
            *mark = (*mark).max(ns);
        }
    }

    /// Entity type → watermark (RFC 3339), for the report.
    pub fn report(&self) -> BTreeMap<String, String> {
        self.acked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(t, ns)| (t.to_string(), watermark_text(*ns)))
            .collect()
    }
}

/// Nanoseconds since 1970 as RFC 3339, with the digits the value needs.
pub fn watermark_text(ns: i128) -> String {
    use crate::bindings::types::TimeUnit;
    let (value, unit) = if ns % 1_000_000_000 == 0 {
        (ns / 1_000_000_000, TimeUnit::Seconds)
    } else if ns % 1_000_000 == 0 {
        (ns / 1_000_000, TimeUnit::Millis)
    } else if ns % 1_000 == 0 {
        (ns / 1_000, TimeUnit::Micros)
    } else {
        (ns, TimeUnit::Nanos)
    };
    let mut out = Vec::new();
    crate::wire::time::write_timestamp(&mut out, value as i64, unit);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: usize) -> FileRef {
        FileRef::for_tests(n)
    }

    #[test]
    fn only_acknowledged_segments_count_without_rejected_records() {
        let marks = Watermarks::default();
        let customer: Arc<str> = "Customer".into();
        let contact: Arc<str> = "Contact".into();
        marks.note(
            file(0),
            0,
            [
                (0, &customer, 1_000),
                (1, &customer, 3_000),
                (1, &contact, 500),
            ],
        );
        marks.note(file(0), 1, [(2, &customer, 9_000)]);
        // Nothing acknowledged: no watermark.
        assert!(marks.report().is_empty());
        // The latest Customer record of segment 0 was rejected.
        marks.rejected(file(0), 0, [(1, &customer)]);
        marks.segment_acked(file(0), 0);
        assert_eq!(
            marks.report(),
            BTreeMap::from([
                ("Contact".to_string(), watermark_text(500)),
                ("Customer".to_string(), watermark_text(1_000)),
            ])
        );
        // Segment 1 (the latest record) was never acknowledged.
        marks.segment_acked(file(1), 1);
        assert_eq!(marks.report()["Customer"], watermark_text(1_000));
    }

    #[test]
    fn a_segment_keeps_only_its_latest_records() {
        let marks = Watermarks::default();
        let t: Arc<str> = "T".into();
        let n = KEPT_PER_SEGMENT as u64 * 4;
        marks.note(
            file(0),
            0,
            (0..n).map(|row| (row, &t, row as i128 * 1_000_000_000)),
        );
        {
            let pending = marks.pending.lock().unwrap();
            let latest = &pending[&(file(0), 0)].latest[&t];
            assert_eq!(latest.len(), KEPT_PER_SEGMENT);
            assert_eq!(latest[0], ((n - 1) as i128 * 1_000_000_000, n - 1));
        }
        // The latest is rejected: the next latest counts.
        marks.rejected(file(0), 0, [(n - 1, &t)]);
        marks.segment_acked(file(0), 0);
        assert_eq!(
            marks.report()["T"],
            watermark_text((n - 2) as i128 * 1_000_000_000)
        );
        // Every kept record rejected: the segment adds nothing, though its other records
        // are later than the watermark.
        let later = 1_000_000_000_000_000_i128;
        marks.note(file(1), 0, (0..n).map(|row| (row, &t, later + row as i128)));
        marks.rejected(
            file(1),
            0,
            (n - KEPT_PER_SEGMENT as u64..n).map(|row| (row, &t)),
        );
        marks.segment_acked(file(1), 0);
        assert_eq!(
            marks.report()["T"],
            watermark_text((n - 2) as i128 * 1_000_000_000)
        );
    }
}
