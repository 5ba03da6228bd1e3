//! The packed output of contract 0.2.0 (`interface output` of
//! `wit/since_v0.2.0/transform.wit`): [`Packer`] appends entities, properties and cells
//! straight into the little-endian byte columns the host copies in one piece, and rolls
//! back to a [`Mark`]. [`kind`] holds the cell kinds; [`u32_at`] and [`word_at`] read the
//! columns back (for [`testing`](crate::testing)).

use crate::bindings::stagepush::transform::output::{BatchOutput, Cells, Entities};
use crate::bindings::stagepush::transform::types::{Decimal as WitDecimal, RowError};
use crate::value::{TimeUnit, Value};

/// Cell kinds of `output.cells` (the table in the contract).
pub(crate) mod kind {
    pub const NULL: u8 = 0;
    pub const BOOLEAN: u8 = 1;
    pub const INTEGER: u8 = 2;
    pub const FLOAT: u8 = 3;
    pub const DECIMAL: u8 = 4;
    pub const TEXT: u8 = 5;
    pub const JSON: u8 = 6;
    pub const DATE: u8 = 7;
    pub const SECONDS: u8 = 8;
    pub const MILLIS: u8 = 9;
    pub const MICROS: u8 = 10;
    pub const NANOS: u8 = 11;
    pub const BINARY: u8 = 12;
}

/// The kind of a timestamp cell in `unit`.
#[inline]
pub(crate) fn timestamp_kind(unit: TimeUnit) -> u8 {
    match unit {
        TimeUnit::Seconds => kind::SECONDS,
        TimeUnit::Millis => kind::MILLIS,
        TimeUnit::Micros => kind::MICROS,
        TimeUnit::Nanos => kind::NANOS,
    }
}

/// The unit of a timestamp cell kind (`None` for other kinds).
pub(crate) fn kind_unit(k: u8) -> Option<TimeUnit> {
    Some(match k {
        kind::SECONDS => TimeUnit::Seconds,
        kind::MILLIS => TimeUnit::Millis,
        kind::MICROS => TimeUnit::Micros,
        kind::NANOS => TimeUnit::Nanos,
        _ => return None,
    })
}

/// A cell about to be written: a kind and its 64-bit word, or a decimal (whose word is its
/// index in the column's `decimals`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Packed {
    Word(u8, u64),
    Decimal(WitDecimal),
}

impl Packed {
    /// The cell of a value that has no payload bytes (`None` for text, JSON, binary and
    /// lists, whose payload goes to the byte buffer first).
    #[inline]
    pub(crate) fn scalar(v: &Value<'_>) -> Option<Packed> {
        Some(match *v {
            Value::Null => Packed::Word(kind::NULL, 0),
            Value::Bool(b) => Packed::Word(kind::BOOLEAN, u64::from(b)),
            Value::Int(i) => Packed::Word(kind::INTEGER, i as u64),
            Value::Float(f) => Packed::Word(kind::FLOAT, f.to_bits()),
            Value::Decimal(d) => Packed::Decimal(WitDecimal {
                lo: d.value as u64,
                hi: (d.value >> 64) as i64,
                scale: d.scale,
            }),
            Value::Date(d) => Packed::Word(kind::DATE, i64::from(d.0) as u64),
            Value::Timestamp(t) => Packed::Word(timestamp_kind(t.unit), t.value as u64),
            Value::Text(_) | Value::Json(_) | Value::Binary(_) | Value::List(_) => return None,
        })
    }

    /// A text, JSON or binary cell over `bytes[start..end]`.
    #[inline]
    pub(crate) fn span(k: u8, start: usize, end: usize) -> Packed {
        let (offset, len) = span(start, end);
        Packed::Word(k, u64::from(offset) | (u64::from(len) << 32))
    }
}

/// `(offset, len)` of `bytes[start..end]` as the contract's two u32.
#[inline]
pub(crate) fn span(start: usize, end: usize) -> (u32, u32) {
    // The host caps a plugin's memory far below 4 GiB.
    let offset = u32::try_from(start).expect("entity output exceeds 4 GiB");
    let end = u32::try_from(end).expect("entity output exceeds 4 GiB");
    (offset, end - offset)
}

/// Lengths of the output columns at a point, to roll back to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mark {
    pub(crate) entities: usize,
    props: usize,
    decimals: usize,
    pub(crate) bytes: usize,
}

/// The batch's entities, packed as they are written.
pub(crate) struct Packer {
    pub(crate) e: Entities,
}

fn empty_cells() -> Cells {
    Cells {
        kinds: Vec::new(),
        words: Vec::new(),
        decimals: Vec::new(),
    }
}

/// A fresh vector sized like the last batch's (the old one is handed to the host).
pub(crate) fn renew<T>(v: &mut Vec<T>) -> Vec<T> {
    let cap = v.len();
    std::mem::replace(v, Vec::with_capacity(cap))
}

fn renew_cells(c: &mut Cells) -> Cells {
    Cells {
        kinds: renew(&mut c.kinds),
        words: renew(&mut c.words),
        decimals: renew(&mut c.decimals),
    }
}

fn push_cell(c: &mut Cells, cell: Packed) {
    let (k, word) = match cell {
        Packed::Word(k, w) => (k, w),
        Packed::Decimal(d) => {
            c.decimals.push(d);
            (kind::DECIMAL, (c.decimals.len() - 1) as u64)
        }
    };
    c.kinds.push(k);
    c.words.extend_from_slice(&word.to_le_bytes());
}

impl Packer {
    pub(crate) fn new() -> Packer {
        Packer {
            e: Entities {
                count: 0,
                rows: Vec::new(),
                entity_types: Vec::new(),
                deleted: Vec::new(),
                external_ids: Vec::new(),
                timestamps: empty_cells(),
                prop_offsets: 0u32.to_le_bytes().to_vec(),
                prop_names: Vec::new(),
                prop_values: empty_cells(),
                names: Vec::new(),
                bytes: Vec::new(),
            },
        }
    }

    /// Entities written (committed or not).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.e.deleted.len()
    }

    pub(crate) fn mark(&self) -> Mark {
        Mark {
            entities: self.len(),
            props: self.e.prop_values.kinds.len(),
            decimals: self.e.prop_values.decimals.len(),
            bytes: self.e.bytes.len(),
        }
    }

    pub(crate) fn rollback(&mut self, m: Mark) {
        let e = &mut self.e;
        let n = m.entities;
        e.rows.truncate(4 * n);
        e.entity_types.truncate(4 * n);
        e.deleted.truncate(n);
        e.external_ids.truncate(8 * n);
        e.timestamps.kinds.truncate(n);
        e.timestamps.words.truncate(8 * n);
        e.prop_offsets.truncate(4 * (n + 1));
        e.prop_names.truncate(4 * m.props);
        e.prop_values.kinds.truncate(m.props);
        e.prop_values.words.truncate(8 * m.props);
        e.prop_values.decimals.truncate(m.decimals);
        e.bytes.truncate(m.bytes);
    }

    /// Starts an entity (uncommitted until [`commit`](Self::commit)): no timestamp, not
    /// deleted, its external id `bytes[id_start..]`.
    #[inline]
    pub(crate) fn begin_entity(&mut self, row: u32, ty: u32, id_start: usize) {
        let e = &mut self.e;
        let (offset, len) = span(id_start, e.bytes.len());
        e.rows.extend_from_slice(&row.to_le_bytes());
        e.entity_types.extend_from_slice(&ty.to_le_bytes());
        e.deleted.push(0);
        e.external_ids.extend_from_slice(&offset.to_le_bytes());
        e.external_ids.extend_from_slice(&len.to_le_bytes());
        push_cell(&mut e.timestamps, Packed::Word(kind::NULL, 0));
    }

    /// Sets entity `i`'s timestamp cell (a null, date or timestamp word).
    pub(crate) fn set_timestamp(&mut self, i: usize, k: u8, word: u64) {
        let t = &mut self.e.timestamps;
        t.kinds[i] = k;
        t.words[8 * i..8 * i + 8].copy_from_slice(&word.to_le_bytes());
    }

    pub(crate) fn set_deleted(&mut self, i: usize, deleted: bool) {
        self.e.deleted[i] = u8::from(deleted);
    }

    /// Appends a property of the entity being written.
    #[inline]
    pub(crate) fn push_prop(&mut self, name: u32, cell: Packed) {
        self.e.prop_names.extend_from_slice(&name.to_le_bytes());
        push_cell(&mut self.e.prop_values, cell);
    }

    /// Commits the entity being written: its properties end here.
    pub(crate) fn commit(&mut self) {
        let props = self.e.prop_values.kinds.len() as u32;
        self.e.prop_offsets.extend_from_slice(&props.to_le_bytes());
    }

    /// Hands the batch's output over, leaving buffers sized for the next batch.
    pub(crate) fn take(&mut self, names: Vec<String>, errors: Vec<RowError>) -> BatchOutput {
        let e = &mut self.e;
        let mut prop_offsets = Vec::with_capacity(e.prop_offsets.len());
        prop_offsets.extend_from_slice(&0u32.to_le_bytes());
        let entities = Entities {
            count: e.deleted.len() as u32,
            rows: renew(&mut e.rows),
            entity_types: renew(&mut e.entity_types),
            deleted: renew(&mut e.deleted),
            external_ids: renew(&mut e.external_ids),
            timestamps: renew_cells(&mut e.timestamps),
            prop_offsets: std::mem::replace(&mut e.prop_offsets, prop_offsets),
            prop_names: renew(&mut e.prop_names),
            prop_values: renew_cells(&mut e.prop_values),
            names,
            bytes: renew(&mut e.bytes),
        };
        BatchOutput { entities, errors }
    }
}

/// Value `i` of a packed u32 column (`None` past its end).
pub(crate) fn u32_at(column: &[u8], i: usize) -> Option<u32> {
    let b = column.get(4 * i..4 * i + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Kind and word of cell `i` of `cells` (`None` past its end).
pub(crate) fn word_at(cells: &Cells, i: usize) -> Option<(u8, u64)> {
    let k = *cells.kinds.get(i)?;
    let w = cells.words.get(8 * i..8 * i + 8)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(w);
    Some((k, u64::from_le_bytes(word)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Date, Decimal, Timestamp};

    /// A packed cell as comparable parts: kind, word and the decimal's fields.
    fn parts(p: Packed) -> (u8, u64, Option<(u64, i64, i8)>) {
        match p {
            Packed::Word(k, w) => (k, w, None),
            Packed::Decimal(d) => (kind::DECIMAL, 0, Some((d.lo, d.hi, d.scale))),
        }
    }

    #[test]
    fn scalar_values_pack_into_kind_and_word() {
        let w = |v: Value<'_>| Packed::scalar(&v).map(parts);
        assert_eq!(w(Value::Null), Some((kind::NULL, 0, None)));
        assert_eq!(w(Value::Bool(true)), Some((kind::BOOLEAN, 1, None)));
        assert_eq!(w(Value::Int(-1)), Some((kind::INTEGER, u64::MAX, None)));
        assert_eq!(
            w(Value::Float(1.5)),
            Some((kind::FLOAT, 1.5f64.to_bits(), None))
        );
        assert_eq!(
            w(Value::Date(Date(-1))),
            Some((kind::DATE, (-1i64) as u64, None))
        );
        assert_eq!(
            w(Value::Timestamp(Timestamp::from_millis(7))),
            Some((kind::MILLIS, 7, None))
        );
        assert_eq!(
            w(Value::Decimal(Decimal::new(-1230, 2))),
            Some((kind::DECIMAL, 0, Some(((-1230i64) as u64, -1, 2))))
        );
        assert!(w(Value::Text("x")).is_none());
        assert_eq!(
            parts(Packed::span(kind::TEXT, 3, 10)),
            (kind::TEXT, 3 | (7 << 32), None)
        );
        for unit in [
            TimeUnit::Seconds,
            TimeUnit::Millis,
            TimeUnit::Micros,
            TimeUnit::Nanos,
        ] {
            assert_eq!(kind_unit(timestamp_kind(unit)), Some(unit));
        }
        assert_eq!(kind_unit(kind::DATE), None);
    }

    #[test]
    fn columns_have_their_widths_and_roll_back() {
        let mut p = Packer::new();
        p.e.bytes.extend_from_slice(b"1");
        p.begin_entity(0, 0, 0);
        p.push_prop(
            1,
            Packed::Decimal(WitDecimal {
                lo: 5,
                hi: 0,
                scale: 0,
            }),
        );
        p.commit();
        let m = p.mark();
        p.e.bytes.extend_from_slice(b"22");
        p.begin_entity(3, 0, 1);
        p.set_timestamp(1, kind::DATE, 9);
        p.set_deleted(1, true);
        p.push_prop(
            1,
            Packed::Decimal(WitDecimal {
                lo: 6,
                hi: 0,
                scale: 0,
            }),
        );
        p.commit();
        assert_eq!(p.len(), 2);
        let full = p.take(vec!["T".into(), "p".into()], Vec::new());
        let e = &full.entities;
        assert_eq!(e.count, 2);
        assert_eq!(
            (e.rows.len(), e.entity_types.len(), e.deleted.len()),
            (8, 8, 2)
        );
        assert_eq!((e.external_ids.len(), e.prop_offsets.len()), (16, 12));
        assert_eq!(u32_at(&e.external_ids, 2), Some(1));
        assert_eq!(u32_at(&e.external_ids, 3), Some(2));
        assert_eq!(u32_at(&e.prop_offsets, 2), Some(2));
        assert_eq!(word_at(&e.timestamps, 1), Some((kind::DATE, 9)));
        assert_eq!(word_at(&e.prop_values, 1), Some((kind::DECIMAL, 1)));
        assert_eq!(e.deleted, [0, 1]);

        // The same again, rolled back to after the first entity.
        p.e.bytes.extend_from_slice(b"1");
        p.begin_entity(0, 0, 0);
        p.push_prop(
            1,
            Packed::Decimal(WitDecimal {
                lo: 5,
                hi: 0,
                scale: 0,
            }),
        );
        p.commit();
        p.e.bytes.extend_from_slice(b"22");
        p.begin_entity(3, 0, 1);
        p.push_prop(
            1,
            Packed::Decimal(WitDecimal {
                lo: 6,
                hi: 0,
                scale: 0,
            }),
        );
        p.commit();
        p.rollback(m);
        let one = p.take(Vec::new(), Vec::new());
        let e = &one.entities;
        assert_eq!(e.count, 1);
        assert_eq!(
            (e.rows.len(), e.external_ids.len(), e.prop_offsets.len()),
            (4, 8, 8)
        );
        assert_eq!(e.prop_values.kinds.len(), 1);
        assert_eq!(e.prop_values.decimals.len(), 1);
        assert_eq!(e.timestamps.words.len(), 8);
        assert_eq!(e.bytes, b"1");
        // `take` leaves an empty output behind.
        let empty = p.take(Vec::new(), Vec::new());
        assert_eq!(empty.entities.count, 0);
        assert_eq!(empty.entities.prop_offsets, [0, 0, 0, 0]);
    }
}
