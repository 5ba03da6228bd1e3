//! A row's fate, decided in one place from its records' fates: a row is rejected if any of
//! its records is (the first rejection is its reason: a plugin or encoding failure before
//! an endpoint refusal, as they are reported in that order), filtered if it produced no
//! record, delivered once every record is stored (with the first `receiptId`), and not
//! acknowledged otherwise. `retry` and the relay decide rows this way; `run` streams
//! millions of rows and keeps only the rows with a rejected record (`collect`), which is
//! the same rule.

use std::collections::BTreeMap;

/// What became of one input row. `R` is the caller's form of a rejection (a dead letter,
/// a stage and message).
#[derive(Debug, Clone, PartialEq)]
pub enum RowFate<R> {
    /// Every record of the row was stored.
    Delivered { receipt_id: Option<String> },
    /// The row produced no record and no error.
    Filtered,
    /// A record of the row (or the row itself) was rejected.
    Rejected(R),
    /// Some records were neither stored nor rejected (the delivery stopped).
    NotAcknowledged { records: u64, stored: u64 },
}

/// The records of rows and what became of them; see the module docs.
#[derive(Debug)]
pub struct RowFates<R> {
    rows: BTreeMap<u64, Row<R>>,
}

impl<R> Default for RowFates<R> {
    fn default() -> Self {
        RowFates {
            rows: BTreeMap::new(),
        }
    }
}

#[derive(Debug)]
struct Row<R> {
    records: u64,
    stored: u64,
    receipt_id: Option<Option<String>>,
    rejection: Option<R>,
}

impl<R> Default for Row<R> {
    fn default() -> Self {
        Row {
            records: 0,
            stored: 0,
            receipt_id: None,
            rejection: None,
        }
    }
}

impl<R> RowFates<R> {
    /// A record of `row` was sent.
    pub fn record(&mut self, row: u64) {
        self.rows.entry(row).or_default().records += 1;
    }

    /// A record of `row` was stored, under `receipt_id`.
    pub fn stored(&mut self, row: u64, receipt_id: Option<&str>) {
        let r = self.rows.entry(row).or_default();
        r.stored += 1;
        r.receipt_id
            .get_or_insert_with(|| receipt_id.map(str::to_owned));
    }

    /// `row` (or one of its records) was rejected; the first rejection stays.
    pub fn rejected(&mut self, row: u64, rejection: R) {
        self.rows
            .entry(row)
            .or_default()
            .rejection
            .get_or_insert(rejection);
    }

    /// Whether `row` has a rejection already.
    pub fn is_rejected(&self, row: u64) -> bool {
        self.rows.get(&row).is_some_and(|r| r.rejection.is_some())
    }

    /// The fate of `row` (a row never mentioned was filtered).
    pub fn fate(&self, row: u64) -> RowFate<&R> {
        match self.rows.get(&row) {
            None => RowFate::Filtered,
            Some(r) => fate_of(r, Option::as_ref(&r.rejection)),
        }
    }

    /// Every mentioned row with its fate, owned, in row order.
    pub fn into_fates(self) -> impl Iterator<Item = (u64, RowFate<R>)> {
        self.rows.into_iter().map(|(row, mut r)| {
            let rejection = r.rejection.take();
            (row, fate_of(&r, rejection))
        })
    }
}

fn fate_of<R, T>(r: &Row<R>, rejection: Option<T>) -> RowFate<T> {
    match rejection {
        Some(rejection) => RowFate::Rejected(rejection),
        None if r.records == 0 => RowFate::Filtered,
        None if r.stored >= r.records => RowFate::Delivered {
            receipt_id: r.receipt_id.clone().flatten(),
        },
        None => RowFate::NotAcknowledged {
            records: r.records,
            stored: r.stored,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_delivered_when_every_record_is_stored_with_its_first_receipt() {
        let mut fates = RowFates::<&str>::default();
        fates.record(4);
        fates.record(4);
        fates.stored(4, Some("r1"));
        assert_eq!(
            fates.fate(4),
            RowFate::NotAcknowledged {
                records: 2,
                stored: 1
            }
        );
        fates.stored(4, Some("r2"));
        assert_eq!(
            fates.fate(4),
            RowFate::Delivered {
                receipt_id: Some("r1".into())
            }
        );
    }

    #[test]
    fn one_rejected_record_rejects_the_row_and_the_first_reason_stays() {
        let mut fates = RowFates::default();
        fates.rejected(1, "plugin: bad value");
        fates.record(2);
        fates.record(2);
        fates.stored(2, None);
        fates.rejected(2, "no route");
        fates.rejected(2, "endpoint: 400");
        assert_eq!(fates.fate(1), RowFate::Rejected(&"plugin: bad value"));
        assert_eq!(fates.fate(2), RowFate::Rejected(&"no route"));
        assert!(fates.is_rejected(2));
        assert!(!fates.is_rejected(3));
    }

    #[test]
    fn a_row_without_records_is_filtered() {
        let mut fates = RowFates::<()>::default();
        assert_eq!(fates.fate(7), RowFate::Filtered);
        fates.stored(8, None);
        fates.record(8);
        let all: Vec<_> = fates.into_fates().collect();
        assert_eq!(all, vec![(8, RowFate::Delivered { receipt_id: None })]);
    }
}
