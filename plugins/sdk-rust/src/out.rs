//! Entity output: [`Out`] and [`EntityBuilder`], writing straight into the packed output
//! of the contract (see [`crate::packed`]).

use crate::bindings::stagepush::transform::output::BatchOutput;
use crate::bindings::stagepush::transform::types::RowError;
use crate::intern::Interner;
use crate::packed::{Mark, Packed, Packer, kind, timestamp_kind};
use crate::value::{IntoValue, Value, write_i64};

/// Where a row's entities go: passed to [`Transform::transform`](crate::Transform::transform).
///
/// Each call of [`entity`](Out::entity) or [`tombstone`](Out::tombstone) starts one entity;
/// its builder writes properties as they come and [`finish`](EntityBuilder::finish)
/// commits it. A row may produce any number of entities (none filters it out). When
/// `transform` returns `Err`, every entity the row started is discarded and the row is
/// reported as a row error instead.
pub struct Out {
    p: Packer,
    errors: Vec<RowError>,
    names: Interner,
    row: u32,
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
            p: Packer::new(),
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
        let start = self.p.e.bytes.len();
        let err = external_id
            .with_value(|v| write_id(&mut self.p.e.bytes, v))
            .err();
        self.p.begin_entity(self.row, ty, start);
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
        self.p.len()
    }

    /// True when no entity was written in this batch yet.
    pub fn is_empty(&self) -> bool {
        self.p.len() == 0
    }

    pub(crate) fn mark(&self) -> Mark {
        self.p.mark()
    }

    pub(crate) fn rollback(&mut self, m: Mark) {
        self.p.rollback(m);
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
    pub(crate) fn take(&mut self) -> BatchOutput {
        let names = self.names.take();
        self.p.take(names, std::mem::take(&mut self.errors))
    }

    #[inline]
    fn push_prop(&mut self, name: &str, v: Value<'_>) {
        let n = self.names.intern(name);
        let cell = self.cell(v);
        self.p.push_prop(n, cell);
    }

    /// The cell for `v`, with its payload appended to `bytes`.
    #[inline]
    fn cell(&mut self, v: Value<'_>) -> Packed {
        if let Some(cell) = Packed::scalar(&v) {
            return cell;
        }
        let bytes = &mut self.p.e.bytes;
        let start = bytes.len();
        let k = match v {
            Value::Text(s) => {
                bytes.extend_from_slice(s.as_bytes());
                kind::TEXT
            }
            Value::Json(s) => {
                bytes.extend_from_slice(s.as_bytes());
                kind::JSON
            }
            Value::Binary(b) => {
                bytes.extend_from_slice(b);
                kind::BINARY
            }
            Value::List(l) => {
                crate::json::write_list(bytes, &l);
                kind::JSON
            }
            // Scalars were packed above.
            _ => kind::NULL,
        };
        Packed::span(k, start, bytes.len())
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
                Value::Null => Ok((kind::NULL, 0)),
                Value::Date(d) => Ok((kind::DATE, i64::from(d.0) as u64)),
                Value::Timestamp(t) => Ok((timestamp_kind(t.unit), t.value as u64)),
                v => Err(format!(
                    "entity timestamp must be a date or a timestamp, not {}",
                    v.kind()
                )),
            };
            self.with(|b| match cell {
                Ok((k, word)) => b.out.p.set_timestamp(b.mark.entities, k, word),
                Err(e) => b.fail(e),
            })
        })
    }

    /// Marks the entity deleted (a tombstone) or not.
    pub fn deleted(self, deleted: bool) -> Self {
        self.out.p.set_deleted(self.mark.entities, deleted);
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
                let bytes = &mut self.out.p.e.bytes;
                let start = bytes.len();
                if s.is_ascii() {
                    bytes.extend(s.bytes().map(|b| b.to_ascii_lowercase()));
                } else {
                    bytes.extend_from_slice(s.to_lowercase().as_bytes());
                }
                let cell = Packed::span(kind::TEXT, start, bytes.len());
                self.out.p.push_prop(n, cell);
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
        self.out.p.commit();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Val, decode};
    use crate::value::{Date, Decimal, TimeUnit, Timestamp};

    #[test]
    fn builders_write_packed_entities() {
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
            .prop("bytes", Value::Binary(b"\x00\x01"))
            .finish()
            .unwrap();
        out.begin_row(2);
        out.tombstone("Customer", "7")
            .timestamp(Date(-3))
            .finish()
            .unwrap();
        let o = out.take();
        assert_eq!(o.entities.names[0], "Customer");
        let r = decode(&o, 3);
        let e = &r.entities;
        assert_eq!((e[0].row, e[1].row), (0, 2));
        assert_eq!(
            (e[0].external_id.as_str(), e[1].external_id.as_str()),
            ("42", "7")
        );
        assert_eq!((e[0].deleted, e[1].deleted), (false, true));
        assert_eq!(e[0].entity_type, "Customer");
        assert_eq!(e[0].timestamp, Val::Timestamp(5, TimeUnit::Millis));
        assert_eq!(e[1].timestamp, Val::Date(-3));
        let props: Vec<(&str, &Val)> = e[0].props.iter().map(|(n, v)| (n.as_str(), v)).collect();
        assert_eq!(
            props,
            [
                ("name", &Val::from("Ann")),
                ("gone", &Val::Null),
                ("email", &Val::from("a@b.com")),
                ("other", &Val::from("àb")),
                ("active", &Val::Bool(true)),
                ("j", &Val::json("[1]")),
                ("d", &Val::Date(1)),
                ("price", &Val::dec(-1230, 2)),
                ("bytes", &Val::Binary(vec![0, 1])),
            ]
        );
        assert!(e[1].props.is_empty());
        // `take` leaves a clean output for the next batch.
        let o2 = out.take();
        assert_eq!(o2.entities.count, 0);
        assert!(o2.entities.rows.is_empty() && o2.entities.names.is_empty());
        assert_eq!(o2.entities.prop_offsets, [0, 0, 0, 0]);
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
        assert_eq!(o.entities.count, 1);
        assert_eq!(o.entities.prop_values.kinds.len(), 1);
        assert_eq!(o.entities.bytes, b"1");
        let r = decode(&o, 1);
        assert_eq!(r.entities.len(), 1);
        assert_eq!(r.entities[0].props, [("x".to_string(), Val::Int(1))]);
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
