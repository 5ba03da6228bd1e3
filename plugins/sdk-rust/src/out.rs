//! Entity output: [`Out`] and [`EntityBuilder`], writing straight into the columnar
//! `entities` record of the contract.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::bindings::stagepush::transform::types::{
    Cell, Decimal as WitDecimal, Entities, Output, RowError, Span, Timestamp as WitTimestamp,
};
use crate::value::{IntoValue, Value, write_i64};

/// Where a row's entities go: passed to [`Transform::transform`](crate::Transform::transform).
///
/// Each call of [`entity`](Out::entity) or [`tombstone`](Out::tombstone) starts one entity;
/// its builder writes properties as they come and [`finish`](EntityBuilder::finish)
/// commits it. A row may produce any number of entities (none filters it out). When
/// `transform` returns `Err`, every entity the row started is discarded and the row is
/// reported as a row error instead.
pub struct Out {
    e: Entities,
    errors: Vec<RowError>,
    names: Interner,
    row: u32,
}

/// Lengths of the output buffers at a point, to roll back to.
#[derive(Clone, Copy)]
pub(crate) struct Mark {
    entities: usize,
    props: usize,
    bytes: usize,
}

fn empty_entities() -> Entities {
    Entities {
        rows: Vec::new(),
        external_ids: Vec::new(),
        entity_types: Vec::new(),
        timestamps: Vec::new(),
        deleted: Vec::new(),
        prop_offsets: vec![0],
        prop_names: Vec::new(),
        prop_values: Vec::new(),
        names: Vec::new(),
        bytes: Vec::new(),
    }
}

/// A fresh vector sized like the last batch's (the old one is handed to the host).
fn renew<T>(v: &mut Vec<T>) -> Vec<T> {
    let cap = v.len();
    std::mem::replace(v, Vec::with_capacity(cap))
}

impl Default for Out {
    fn default() -> Self {
        Self::new()
    }
}

impl Out {
    /// An empty output.
    pub fn new() -> Out {
        Out {
            e: empty_entities(),
            errors: Vec::new(),
            names: Interner::default(),
            row: 0,
        }
    }

    /// Starts an entity of type `entity_type` (e.g. `"Customer"`) with this external id,
    /// written as text: text as is, integers and decimals exactly (`Decimal` 42 with scale 0
    /// is `"42"`), dates and timestamps as RFC 3339. A null or empty id makes
    /// [`finish`](EntityBuilder::finish) fail.
    pub fn entity(&mut self, entity_type: &str, external_id: impl IntoValue) -> EntityBuilder<'_> {
        let mark = self.mark();
        let ty = self.names.intern(entity_type);
        let start = self.e.bytes.len();
        let err = external_id
            .with_value(|v| write_id(&mut self.e.bytes, v))
            .err();
        let span = span(start, self.e.bytes.len());
        self.e.rows.push(self.row);
        self.e.external_ids.push(span);
        self.e.entity_types.push(ty);
        self.e.timestamps.push(Cell::Null);
        self.e.deleted.push(0);
        EntityBuilder {
            out: self,
            mark,
            err,
            done: false,
        }
    }

    /// Starts a tombstone: an entity marked deleted. Add a [`timestamp`](EntityBuilder::timestamp)
    /// if known, and no properties.
    pub fn tombstone(
        &mut self,
        entity_type: &str,
        external_id: impl IntoValue,
    ) -> EntityBuilder<'_> {
        self.entity(entity_type, external_id).deleted(true)
    }

    /// Entities written so far in this batch.
    pub fn len(&self) -> usize {
        self.e.rows.len()
    }

    /// True when no entity was written in this batch yet.
    pub fn is_empty(&self) -> bool {
        self.e.rows.is_empty()
    }

    pub(crate) fn mark(&self) -> Mark {
        Mark {
            entities: self.e.rows.len(),
            props: self.e.prop_names.len(),
            bytes: self.e.bytes.len(),
        }
    }

    pub(crate) fn rollback(&mut self, m: Mark) {
        let e = &mut self.e;
        e.rows.truncate(m.entities);
        e.external_ids.truncate(m.entities);
        e.entity_types.truncate(m.entities);
        e.timestamps.truncate(m.entities);
        e.deleted.truncate(m.entities);
        e.prop_offsets.truncate(m.entities + 1);
        e.prop_names.truncate(m.props);
        e.prop_values.truncate(m.props);
        e.bytes.truncate(m.bytes);
    }

    /// Sets the batch row the next entities come from.
    pub(crate) fn begin_row(&mut self, row: u32) {
        self.row = row;
    }

    /// Records a row error.
    pub(crate) fn row_error(&mut self, row: u32, message: String) {
        self.errors.push(RowError { row, message });
    }

    /// Hands the batch's output over, leaving buffers sized for the next batch.
    pub(crate) fn take(&mut self) -> Output {
        let e = &mut self.e;
        let mut prop_offsets = Vec::with_capacity(e.prop_offsets.len());
        prop_offsets.push(0);
        let entities = Entities {
            rows: renew(&mut e.rows),
            external_ids: renew(&mut e.external_ids),
            entity_types: renew(&mut e.entity_types),
            timestamps: renew(&mut e.timestamps),
            deleted: renew(&mut e.deleted),
            prop_offsets: std::mem::replace(&mut e.prop_offsets, prop_offsets),
            prop_names: renew(&mut e.prop_names),
            prop_values: renew(&mut e.prop_values),
            names: self.names.take(),
            bytes: renew(&mut e.bytes),
        };
        Output {
            entities,
            errors: std::mem::take(&mut self.errors),
        }
    }

    #[inline]
    fn push_prop(&mut self, name: &str, v: Value<'_>) {
        let n = self.names.intern(name);
        let cell = self.cell(v);
        self.e.prop_names.push(n);
        self.e.prop_values.push(cell);
    }

    /// The cell for `v`, with its payload appended to `bytes`.
    #[inline]
    fn cell(&mut self, v: Value<'_>) -> Cell {
        match v {
            Value::Null => Cell::Null,
            Value::Bool(b) => Cell::Boolean(b),
            Value::Int(i) => Cell::Integer(i),
            Value::Float(f) => Cell::Float(f),
            Value::Decimal(d) => Cell::Decimal(WitDecimal {
                lo: d.value as u64,
                hi: (d.value >> 64) as i64,
                scale: d.scale,
            }),
            Value::Text(s) => Cell::Text(self.bytes(s.as_bytes())),
            Value::Json(s) => Cell::Json(self.bytes(s.as_bytes())),
            Value::Date(d) => Cell::Date(d.0),
            Value::Timestamp(t) => Cell::Timestamp(WitTimestamp {
                value: t.value,
                unit: t.unit,
            }),
            Value::Binary(b) => Cell::Binary(self.bytes(b)),
            Value::List(l) => {
                let start = self.e.bytes.len();
                crate::json::write_list(&mut self.e.bytes, &l);
                Cell::Json(span(start, self.e.bytes.len()))
            }
        }
    }

    #[inline]
    fn bytes(&mut self, b: &[u8]) -> Span {
        let start = self.e.bytes.len();
        self.e.bytes.extend_from_slice(b);
        span(start, self.e.bytes.len())
    }
}

#[inline]
fn span(start: usize, end: usize) -> Span {
    // The host caps a plugin's memory far below 4 GiB.
    let offset = u32::try_from(start).expect("entity output exceeds 4 GiB");
    let end = u32::try_from(end).expect("entity output exceeds 4 GiB");
    Span {
        offset,
        len: end - offset,
    }
}

/// Appends the text form of an external id.
fn write_id(out: &mut Vec<u8>, v: Value<'_>) -> Result<(), String> {
    let start = out.len();
    match v {
        Value::Null => return Err("external id is null".into()),
        Value::Text(s) | Value::Json(s) => out.extend_from_slice(s.as_bytes()),
        Value::Int(i) => write_i64(out, i),
        Value::Decimal(d) => d.write_to(out),
        Value::Date(d) => d.write_to(out),
        Value::Timestamp(t) => t.write_to(out),
        Value::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Value::Binary(b) => crate::json::base64(out, b),
        Value::Float(_) | Value::List(_) => {
            use std::io::Write;
            let _ = write!(out, "{v}");
        }
    }
    if out.len() == start {
        return Err("external id is empty".into());
    }
    Ok(())
}

/// Builds one entity; from [`Out::entity`] or [`Out::tombstone`]. Call
/// [`finish`](Self::finish) to commit it: a builder dropped unfinished leaves no trace.
///
/// Property names are interned per batch (repeating a name costs a pointer comparison) and
/// values are written straight into the output buffers: building an entity allocates
/// nothing.
#[must_use = "an entity is only written by .finish()"]
pub struct EntityBuilder<'o> {
    out: &'o mut Out,
    mark: Mark,
    err: Option<String>,
    done: bool,
}

impl EntityBuilder<'_> {
    /// Sets the entity's timestamp (CluedIn's modification time): a timestamp or a date;
    /// null means none. Any other kind of value makes [`finish`](Self::finish) fail.
    pub fn timestamp(self, value: impl IntoValue) -> Self {
        value.with_value(|v| {
            let cell = match v {
                Value::Null => Ok(Cell::Null),
                Value::Date(_) | Value::Timestamp(_) => Ok(self.out.cell(v)),
                v => Err(format!(
                    "entity timestamp must be a date or a timestamp, not {}",
                    v.kind()
                )),
            };
            self.with(|b| match cell {
                Ok(c) => {
                    let i = b.mark.entities;
                    b.out.e.timestamps[i] = c;
                }
                Err(e) => b.fail(e),
            })
        })
    }

    /// Marks the entity deleted (a tombstone) or not.
    pub fn deleted(self, deleted: bool) -> Self {
        let i = self.mark.entities;
        self.out.e.deleted[i] = u8::from(deleted);
        self
    }

    /// Adds property `name` with `value` — **unless the value is null**: null properties are
    /// omitted, as Snowflake's `OBJECT_CONSTRUCT` omits them. Use
    /// [`prop_or_null`](Self::prop_or_null) or [`prop_null`](Self::prop_null) to send an
    /// explicit null. A list value is sent as JSON text (an array).
    #[inline]
    pub fn prop(self, name: &str, value: impl IntoValue) -> Self {
        value.with_value(|v| {
            if !v.is_null() {
                self.out.push_prop(name, v);
            }
        });
        self
    }

    /// Adds property `name` with `value`, sending a null as an explicit null.
    #[inline]
    pub fn prop_or_null(self, name: &str, value: impl IntoValue) -> Self {
        value.with_value(|v| self.out.push_prop(name, v));
        self
    }

    /// Adds property `name` with an explicit null.
    #[inline]
    pub fn prop_null(self, name: &str) -> Self {
        self.out.push_prop(name, Value::Null);
        self
    }

    /// Adds a text property (omitted when `None`).
    #[inline]
    pub fn prop_str<'s>(self, name: &str, value: impl Into<Option<&'s str>>) -> Self {
        self.prop(name, value.into().map(Value::Text))
    }

    /// Adds a JSON property: `json` must be JSON text, embedded as is (omitted when `None`).
    #[inline]
    pub fn prop_json<'s>(self, name: &str, json: impl Into<Option<&'s str>>) -> Self {
        self.prop(name, json.into().map(Value::Json))
    }

    /// Adds a boolean property (omitted when `None`).
    #[inline]
    pub fn prop_bool(self, name: &str, value: impl Into<Option<bool>>) -> Self {
        self.prop(name, value.into())
    }

    /// Adds an integer property (omitted when `None`).
    #[inline]
    pub fn prop_i64(self, name: &str, value: impl Into<Option<i64>>) -> Self {
        self.prop(name, value.into())
    }

    /// Adds a float property (omitted when `None`).
    #[inline]
    pub fn prop_f64(self, name: &str, value: impl Into<Option<f64>>) -> Self {
        self.prop(name, value.into())
    }

    /// Adds a text property lower-cased (Unicode), without allocating for ASCII text.
    /// Non-text values are added as [`prop`](Self::prop) would; nulls are omitted.
    /// With [`Value::trimmed`] this normalises e-mail addresses and codes.
    pub fn prop_lowercase(self, name: &str, value: impl IntoValue) -> Self {
        value.with_value(|v| match v {
            Value::Text(s) => {
                let n = self.out.names.intern(name);
                let bytes = &mut self.out.e.bytes;
                let start = bytes.len();
                if s.is_ascii() {
                    bytes.extend(s.bytes().map(|b| b.to_ascii_lowercase()));
                } else {
                    bytes.extend_from_slice(s.to_lowercase().as_bytes());
                }
                let sp = span(start, bytes.len());
                self.out.e.prop_names.push(n);
                self.out.e.prop_values.push(Cell::Text(sp));
            }
            Value::Null => {}
            v => self.out.push_prop(name, v),
        });
        self
    }

    /// Commits the entity. Fails (and discards the entity) when it had a null or empty
    /// external id or a timestamp of the wrong kind; with `?`, that makes the row a row error.
    pub fn finish(mut self) -> Result<(), String> {
        if let Some(e) = self.err.take() {
            return Err(e); // Drop rolls back.
        }
        let props = self.out.e.prop_names.len() as u32;
        self.out.e.prop_offsets.push(props);
        self.done = true;
        Ok(())
    }

    fn with(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }

    fn fail(&mut self, msg: String) {
        if self.err.is_none() {
            self.err = Some(msg);
        }
    }
}

impl Drop for EntityBuilder<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.out.rollback(self.mark);
        }
    }
}

/// Names (entity types, property names) interned per batch.
///
/// A name is usually a `&'static str` literal, the same pointer every time: a small cache
/// keyed by pointer and length (confirmed by comparing the text, so any `&str` is safe)
/// answers those; other names are found by content, linearly while there are few and
/// through a hash map beyond that.
#[derive(Default)]
struct Interner {
    names: Vec<String>,
    recent: Vec<(usize, usize, u32)>,
    map: HashMap<Box<str>, u32, BuildHasherDefault<FxHasher>>,
}

const RECENT: usize = 32;
const LINEAR: usize = 16;

impl Interner {
    #[inline]
    fn intern(&mut self, s: &str) -> u32 {
        let key = (s.as_ptr() as usize, s.len());
        for &(p, l, id) in &self.recent {
            if (p, l) == key && self.names[id as usize] == s {
                return id;
            }
        }
        self.intern_slow(s, key)
    }

    #[cold]
    fn intern_slow(&mut self, s: &str, key: (usize, usize)) -> u32 {
        let found = if self.names.len() <= LINEAR {
            self.names.iter().position(|n| n == s).map(|i| i as u32)
        } else {
            self.map.get(s).copied()
        };
        let id = found.unwrap_or_else(|| {
            let id = self.names.len() as u32;
            self.names.push(s.to_owned());
            if self.names.len() == LINEAR + 1 {
                for (i, n) in self.names.iter().enumerate() {
                    self.map.insert(n.as_str().into(), i as u32);
                }
            } else if self.names.len() > LINEAR + 1 {
                self.map.insert(s.into(), id);
            }
            id
        });
        if self.recent.len() < RECENT {
            self.recent.push((key.0, key.1, id));
        } else {
            self.recent[(key.0 ^ key.1) % RECENT] = (key.0, key.1, id);
        }
        id
    }

    fn take(&mut self) -> Vec<String> {
        self.recent.clear();
        self.map.clear();
        renew(&mut self.names)
    }
}

/// The Firefox/rustc hash: fast for short keys, fine for a handful of names.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap_or_default());
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Date, Decimal, TimeUnit, Timestamp};

    fn text(o: &Output, s: Span) -> &str {
        std::str::from_utf8(&o.entities.bytes[s.offset as usize..(s.offset + s.len) as usize])
            .unwrap()
    }

    #[test]
    fn interning_reuses_names_by_pointer_and_content() {
        let mut i = Interner::default();
        let a = i.intern("name");
        assert_eq!(i.intern("name"), a);
        let owned = String::from("name");
        assert_eq!(i.intern(&owned), a);
        let b = i.intern("email");
        assert_ne!(a, b);
        // Many distinct names: past the linear range, through the map.
        let many: Vec<String> = (0..100).map(|k| format!("p{k}")).collect();
        let ids: Vec<u32> = many.iter().map(|n| i.intern(n)).collect();
        let again: Vec<u32> = many.iter().map(|n| i.intern(&n.clone())).collect();
        assert_eq!(ids, again);
        assert_eq!(i.names.len(), 102);
        assert_eq!(i.intern("email"), b);
        // A reused buffer (same pointer, new text) is not mistaken for the old name.
        let mut buf = String::with_capacity(8);
        buf.push_str("aaaa");
        let x = i.intern(&buf);
        buf.clear();
        buf.push_str("bbbb");
        let y = i.intern(&buf);
        assert_ne!(x, y);
        assert_eq!(i.names[y as usize], "bbbb");
        let names = i.take();
        assert_eq!(names.len(), 104);
        assert_eq!(i.intern("z"), 0);
    }

    #[test]
    fn builders_write_columnar_entities() {
        let mut out = Out::new();
        out.begin_row(0);
        out.entity("Customer", Value::Decimal(Decimal::new(42, 0)))
            .timestamp(Timestamp::from_millis(5))
            .prop("name", "Ann")
            .prop("missing", Value::Null)
            .prop_null("gone")
            .prop_lowercase("email", Value::Text("  A@B.Com ").trimmed())
            .prop_lowercase("other", "ÀB")
            .prop_bool("active", true)
            .prop_i64("n", None)
            .prop_json("j", "[1]")
            .prop("d", Date(1))
            .prop("price", Decimal::new(-1230, 2))
            .finish()
            .unwrap();
        out.begin_row(2);
        out.tombstone("Customer", "7")
            .timestamp(Value::Null)
            .finish()
            .unwrap();
        let o = out.take();
        let e = &o.entities;
        assert_eq!(e.rows, [0, 2]);
        assert_eq!(text(&o, e.external_ids[0]), "42");
        assert_eq!(text(&o, e.external_ids[1]), "7");
        assert_eq!(e.entity_types, [0, 0]);
        assert_eq!(e.names[0], "Customer");
        assert_eq!(e.deleted, [0, 1]);
        assert!(matches!(
            e.timestamps[0],
            Cell::Timestamp(WitTimestamp {
                value: 5,
                unit: TimeUnit::Millis
            })
        ));
        assert!(matches!(e.timestamps[1], Cell::Null));
        assert_eq!(e.prop_offsets, [0, 8, 8]);
        let names: Vec<&str> = e
            .prop_names
            .iter()
            .map(|&n| e.names[n as usize].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "name", "gone", "email", "other", "active", "j", "d", "price"
            ]
        );
        assert!(matches!(e.prop_values[0], Cell::Text(s) if text(&o, s) == "Ann"));
        assert!(matches!(e.prop_values[1], Cell::Null));
        assert!(matches!(e.prop_values[2], Cell::Text(s) if text(&o, s) == "a@b.com"));
        assert!(matches!(e.prop_values[3], Cell::Text(s) if text(&o, s) == "àb"));
        assert!(matches!(e.prop_values[4], Cell::Boolean(true)));
        assert!(matches!(e.prop_values[5], Cell::Json(s) if text(&o, s) == "[1]"));
        assert!(matches!(e.prop_values[6], Cell::Date(1)));
        assert!(
            matches!(e.prop_values[7], Cell::Decimal(WitDecimal { lo, hi: -1, scale: 2 }) if lo as i64 == -1230)
        );
        assert_eq!(e.prop_values.len(), 8);
        // `take` leaves a clean output for the next batch.
        let o2 = out.take();
        assert!(o2.entities.rows.is_empty() && o2.entities.names.is_empty());
        assert_eq!(o2.entities.prop_offsets, [0]);
    }

    #[test]
    fn failed_or_dropped_builders_leave_no_trace() {
        let mut out = Out::new();
        out.entity("A", "1").prop("x", 1).finish().unwrap();
        let m = out.mark();
        assert_eq!(
            out.entity("A", Value::Null).prop("x", 2).finish(),
            Err("external id is null".into())
        );
        assert_eq!(
            out.entity("A", "").finish(),
            Err("external id is empty".into())
        );
        let err = out
            .entity("A", "2")
            .timestamp("yesterday")
            .prop("y", 1)
            .finish();
        assert!(err.unwrap_err().contains("not text"));
        drop(out.entity("A", "3").prop("z", "zzz"));
        // A row that fails after finishing an entity is rolled back by the runtime.
        out.entity("A", "4").prop("w", 1).finish().unwrap();
        out.rollback(m);
        let o = out.take();
        assert_eq!(o.entities.rows.len(), 1);
        assert_eq!(o.entities.prop_offsets, [0, 1]);
        assert_eq!(o.entities.prop_values.len(), 1);
        assert_eq!(o.entities.bytes, b"1");
    }

    #[test]
    fn ids_of_every_kind() {
        let id = |v: Value<'_>| {
            let mut b = Vec::new();
            write_id(&mut b, v).map(|()| String::from_utf8(b).unwrap())
        };
        assert_eq!(id(Value::Int(-5)).unwrap(), "-5");
        assert_eq!(
            id(Value::Decimal(Decimal::new(12345678901234567890123, 0))).unwrap(),
            "12345678901234567890123"
        );
        assert_eq!(id(Value::Decimal(Decimal::new(120, 1))).unwrap(), "12.0");
        assert_eq!(id(Value::Date(Date(0))).unwrap(), "1970-01-01");
        assert_eq!(id(Value::Float(1.5)).unwrap(), "1.5");
        assert_eq!(id(Value::Bool(true)).unwrap(), "true");
        assert!(id(Value::Null).is_err());
    }
}
