//! Running a [`Program`] over a batch of contract columns: the same [`Output`] a plugin
//! returns (entities in columns, row errors), so the encoder, accounting and dead letters
//! cannot tell the difference.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::bindings::types::{
    ByteColumn, Cell, Column, ColumnData, Decimal, Entities, ListValues, Output, RowError, Span,
    TimeUnit, Timestamp, Values,
};
use crate::wire::decimal_value;

use super::compile::{EntityProgram, Node, Program, PropProgram, TypeSource};
use super::error::UnmappableRow;
use super::json;
use super::value::{V, nanos_per, parse_timestamp, whole};

/// A row's problem, for its row error.
type RowResult<T> = Result<T, UnmappableRow>;

/// Evaluates programs, keeping the per-batch name table.
pub struct Evaluator<'p> {
    pub program: &'p Program,
    /// Property names interned in this batch beyond the program's (pass-through keys).
    dynamic: HashMap<String, u32>,
    /// Declared properties set in the current row (committed when the row succeeds).
    row_set: Vec<usize>,
}

impl<'p> Evaluator<'p> {
    pub fn new(program: &'p Program) -> Self {
        Evaluator {
            program,
            dynamic: HashMap::new(),
            row_set: Vec::new(),
        }
    }

    /// Maps `rows` rows of `columns` (the program's columns, in its order); `set[i]`
    /// becomes true once declared property `i` is set on a record.
    pub fn run(&mut self, columns: &[Column], rows: usize, set: &mut [bool]) -> Output {
        self.dynamic.clear();
        let mut e = Entities {
            rows: Vec::with_capacity(rows),
            external_ids: Vec::with_capacity(rows),
            entity_types: Vec::with_capacity(rows),
            timestamps: Vec::with_capacity(rows),
            deleted: Vec::with_capacity(rows),
            prop_offsets: vec![0],
            prop_names: Vec::new(),
            prop_values: Vec::new(),
            names: self.program.names.clone(),
            bytes: Vec::new(),
        };
        let mut errors = Vec::new();
        for row in 0..rows {
            let mark = (e.rows.len(), e.prop_names.len(), e.bytes.len());
            self.row_set.clear();
            let mut result = Ok(());
            for ep in &self.program.entities {
                result = self.entity(ep, columns, row, &mut e);
                if result.is_err() {
                    break;
                }
            }
            match result {
                Ok(()) => {
                    for &i in &self.row_set {
                        set[i] = true;
                    }
                }
                Err(message) => {
                    let (n, p, b) = mark;
                    e.rows.truncate(n);
                    e.external_ids.truncate(n);
                    e.entity_types.truncate(n);
                    e.timestamps.truncate(n);
                    e.deleted.truncate(n);
                    e.prop_offsets.truncate(n + 1);
                    e.prop_names.truncate(p);
                    e.prop_values.truncate(p);
                    e.bytes.truncate(b);
                    errors.push(RowError {
                        row: row as u32,
                        message: message.0,
                    });
                }
            }
        }
        Output {
            entities: e,
            errors,
        }
    }

    fn entity(
        &mut self,
        ep: &EntityProgram,
        cols: &[Column],
        row: usize,
        e: &mut Entities,
    ) -> RowResult<()> {
        let id = self.eval(&ep.id, cols, row)?;
        if id.is_null() {
            return Err(format!("{} is null", ep.id_label).into());
        }
        let start = e.bytes.len();
        id.write_text(&mut e.bytes);
        if e.bytes.len() == start {
            return Err(
                format!("{} is empty (an external id cannot be empty)", ep.id_label).into(),
            );
        }
        let id_span = span(start, e.bytes.len());
        let deleted = match &ep.deleted {
            Some(n) => self.eval(n, cols, row)?.as_bool() == Some(true),
            None => false,
        };
        let ty = match &ep.ty {
            TypeSource::Name(i) => *i,
            TypeSource::Column(n, label) => match self.eval(n, cols, row)? {
                V::Null => return Err(format!("{label} is null").into()),
                v => {
                    let t = v.to_text();
                    if t.is_empty() {
                        return Err(
                            format!("{label} is empty (an entity type cannot be empty)").into()
                        );
                    }
                    self.intern(&t, e)
                }
            },
        };
        let timestamp = match &ep.timestamp {
            Some(n) => match self.eval(n, cols, row)? {
                V::Null => Cell::Null,
                V::Date(d) => Cell::Date(d),
                V::Timestamp(value, unit) => Cell::Timestamp(Timestamp { value, unit }),
                v => return Err(format!("the timestamp is {v:?}, not a date or timestamp").into()),
            },
            None => Cell::Null,
        };
        e.rows.push(row as u32);
        e.external_ids.push(id_span);
        e.entity_types.push(ty);
        e.timestamps.push(timestamp);
        e.deleted.push(deleted as u8);
        if !deleted {
            for p in &ep.props {
                match p {
                    PropProgram::One {
                        name,
                        value,
                        declared,
                    } => {
                        let v = self.eval(value, cols, row)?;
                        if !v.is_null() {
                            push_prop(e, *name, v);
                            self.row_set.push(*declared);
                        }
                    }
                    PropProgram::Object(n, label) => {
                        let text = match self.eval(n, cols, row)? {
                            V::Null => continue,
                            V::Text(t) | V::Json(t) => t,
                            v => {
                                return Err(format!(
                                    "{label} is {}, not a JSON object",
                                    v.to_text()
                                )
                                .into());
                            }
                        };
                        json::check(&text).map_err(|m| format!("{label} is not JSON: {m}"))?;
                        let entries = json::entries(&text).ok_or_else(|| {
                            format!("{label} is not a JSON object: {}", shorten(&text))
                        })?;
                        for (key, raw) in entries {
                            let v = json::value(raw);
                            if !v.is_null() {
                                let name = self.intern(&key, e);
                                push_prop(e, name, v);
                            }
                        }
                    }
                }
            }
        }
        e.prop_offsets.push(e.prop_names.len() as u32);
        Ok(())
    }

    fn intern(&mut self, name: &str, e: &mut Entities) -> u32 {
        if let Some(i) = self.program.names.iter().position(|n| n == name) {
            return i as u32;
        }
        if let Some(&i) = self.dynamic.get(name) {
            return i;
        }
        e.names.push(name.to_string());
        let i = (e.names.len() - 1) as u32;
        self.dynamic.insert(name.to_string(), i);
        i
    }

    fn eval<'a>(&self, node: &'a Node, cols: &'a [Column], row: usize) -> RowResult<V<'a>> {
        Ok(match node {
            Node::Col(pos) => read(&cols[*pos], row, self.program.units[*pos]),
            Node::Const(v) => borrow(v),
            Node::Lower(n) | Node::Upper(n) => {
                let upper = matches!(node, Node::Upper(_));
                match self.eval(n, cols, row)? {
                    V::Text(t) => V::Text(change_case(t, upper)),
                    v => v,
                }
            }
            Node::Trim(n) => match self.eval(n, cols, row)? {
                V::Text(Cow::Borrowed(t)) => V::Text(Cow::Borrowed(t.trim())),
                V::Text(Cow::Owned(t)) => V::Text(Cow::Owned(t.trim().to_string())),
                v => v,
            },
            Node::Coalesce(ns) => {
                for n in ns {
                    let v = self.eval(n, cols, row)?;
                    if !v.is_null() {
                        return Ok(v);
                    }
                }
                V::Null
            }
            Node::Concat(ns) => {
                let mut out = Vec::new();
                for n in ns {
                    match self.eval(n, cols, row)? {
                        V::Null => return Ok(V::Null),
                        v => v.write_text(&mut out),
                    }
                }
                V::Text(Cow::Owned(String::from_utf8_lossy(&out).into_owned()))
            }
            Node::Text(n) => match self.eval(n, cols, row)? {
                V::Null => V::Null,
                V::Text(t) | V::Json(t) => V::Text(t),
                v => V::Text(Cow::Owned(v.to_text())),
            },
            Node::Int(n) => match self.eval(n, cols, row)? {
                V::Null => V::Null,
                v => V::Text(Cow::Owned(integer_text(&v)?)),
            },
            Node::JsonAt(n, path) => match self.eval(n, cols, row)? {
                V::Text(t) | V::Json(t) => with_json(t, |s| {
                    json::check(s).map_err(|m| format!("json(): the value is not JSON: {m}"))?;
                    Ok(json::at(s, path).map(json::value).unwrap_or(V::Null))
                })?,
                _ => V::Null,
            },
            Node::JsonLen(n, path) => match self.eval(n, cols, row)? {
                V::Text(t) | V::Json(t) => {
                    json::check(&t)
                        .map_err(|m| format!("json_len(): the value is not JSON: {m}"))?;
                    match json::at(&t, path).and_then(json::len) {
                        Some(len) => V::Int(len as i64),
                        None => V::Null,
                    }
                }
                _ => V::Null,
            },
            Node::Timestamp(n) => match self.eval(n, cols, row)? {
                V::Date(d) => V::Timestamp(d as i64 * 86_400, TimeUnit::Seconds),
                V::Text(t) | V::Json(t) => {
                    let t = t.trim().trim_matches('"');
                    match parse_timestamp(t) {
                        Some((value, unit)) => V::Timestamp(value, unit),
                        None => {
                            return Err(format!(
                                "timestamp(): '{}' is not an RFC 3339 timestamp",
                                shorten(t)
                            )
                            .into());
                        }
                    }
                }
                v => v,
            },
            Node::Zone(n, offset) => match self.eval(n, cols, row)? {
                V::Timestamp(value, unit) => {
                    let shift = offset.saturating_mul(1_000_000_000 / nanos_per(unit));
                    V::Timestamp(value.saturating_sub(shift), unit)
                }
                v => v,
            },
            Node::Eq(a, b) => {
                let (a, b) = (self.eval(a, cols, row)?, self.eval(b, cols, row)?);
                V::Bool(!a.is_null() && !b.is_null() && a.to_text() == b.to_text())
            }
            Node::Not(n) => match self.eval(n, cols, row)?.as_bool() {
                Some(b) => V::Bool(!b),
                None => V::Null,
            },
        })
    }
}

fn span(start: usize, end: usize) -> Span {
    Span {
        offset: start as u32,
        len: (end - start) as u32,
    }
}

fn push_prop(e: &mut Entities, name: u32, v: V<'_>) {
    let cell = match v {
        V::Null => Cell::Null,
        V::Bool(b) => Cell::Boolean(b),
        V::Int(i) => Cell::Integer(i),
        V::Float(f) => Cell::Float(f),
        V::Decimal(value, scale) => Cell::Decimal(Decimal {
            lo: value as u64,
            hi: (value >> 64) as i64,
            scale,
        }),
        V::Date(d) => Cell::Date(d),
        V::Timestamp(value, unit) => Cell::Timestamp(Timestamp { value, unit }),
        V::Text(t) => {
            let start = e.bytes.len();
            e.bytes.extend_from_slice(t.as_bytes());
            Cell::Text(span(start, e.bytes.len()))
        }
        V::Json(t) => {
            let start = e.bytes.len();
            e.bytes.extend_from_slice(t.as_bytes());
            Cell::Json(span(start, e.bytes.len()))
        }
        V::Binary(b) => {
            let start = e.bytes.len();
            e.bytes.extend_from_slice(b);
            Cell::Binary(span(start, e.bytes.len()))
        }
    };
    e.prop_names.push(name);
    e.prop_values.push(cell);
}

/// A constant, borrowed (no allocation per row).
fn borrow<'a>(v: &'a V<'static>) -> V<'a> {
    match v {
        V::Text(t) => V::Text(Cow::Borrowed(t.as_ref())),
        V::Json(t) => V::Json(Cow::Borrowed(t.as_ref())),
        v => v.clone(),
    }
}

/// Lower or upper case; ASCII text already in that case is not copied.
fn change_case(t: Cow<'_, str>, upper: bool) -> Cow<'_, str> {
    let unchanged = t.is_ascii()
        && !t.bytes().any(|b| {
            if upper {
                b.is_ascii_lowercase()
            } else {
                b.is_ascii_uppercase()
            }
        });
    if unchanged {
        t
    } else if upper {
        Cow::Owned(t.to_uppercase())
    } else {
        Cow::Owned(t.to_lowercase())
    }
}

/// Runs `f` on JSON text, keeping the result borrowed from it when the text is borrowed.
fn with_json<'a>(
    t: Cow<'a, str>,
    f: impl for<'b> Fn(&'b str) -> RowResult<V<'b>>,
) -> RowResult<V<'a>> {
    match t {
        Cow::Borrowed(s) => f(s),
        Cow::Owned(s) => f(&s).map(|v| match v {
            V::Text(t) => V::Text(Cow::Owned(t.into_owned())),
            V::Json(t) => V::Json(Cow::Owned(t.into_owned())),
            V::Binary(_) => V::Null,
            V::Null => V::Null,
            V::Bool(b) => V::Bool(b),
            V::Int(i) => V::Int(i),
            V::Float(f) => V::Float(f),
            V::Decimal(a, b) => V::Decimal(a, b),
            V::Date(d) => V::Date(d),
            V::Timestamp(a, b) => V::Timestamp(a, b),
        }),
    }
}

/// `int()`: a whole number's digits (`42.00` → `42`); anything else is a row error.
fn integer_text(v: &V<'_>) -> RowResult<String> {
    let not_whole = || {
        UnmappableRow(format!(
            "int(): {} is not a whole number",
            shorten(&v.to_text())
        ))
    };
    match v {
        V::Int(i) => Ok(i.to_string()),
        V::Decimal(value, scale) => whole(*value, *scale)
            .map(|w| w.to_string())
            .ok_or_else(not_whole),
        V::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e38 => {
            Ok(format!("{}", *f as i128))
        }
        V::Text(t) | V::Json(t) => {
            let t = t.trim().trim_matches('"');
            let (int, frac) = t.split_once('.').unwrap_or((t, ""));
            match int.parse::<i128>() {
                Ok(i) if frac.bytes().all(|b| b == b'0') => Ok(i.to_string()),
                _ => Err(not_whole()),
            }
        }
        _ => Err(not_whole()),
    }
}

/// At most 60 characters of a value, for messages.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// One cell of a column.
fn read(col: &Column, row: usize, unit: Option<TimeUnit>) -> V<'_> {
    if !col.nulls.is_empty() && col.nulls[row] != 0 {
        return V::Null;
    }
    match &col.data {
        ColumnData::Scalar(values) => scalar(values, row, unit),
        ColumnData::List(list) => V::Json(Cow::Owned(list_json(list, row, unit))),
    }
}

fn bytes(b: &ByteColumn, i: usize) -> &[u8] {
    &b.data[b.offsets[i] as usize..b.offsets[i + 1] as usize]
}

fn scalar(values: &Values, i: usize, unit: Option<TimeUnit>) -> V<'_> {
    match values {
        Values::Boolean(v) => V::Bool(v[i] != 0),
        Values::Integer(v) => V::Int(v[i]),
        Values::Float(v) => V::Float(v[i]),
        Values::Decimal(v) => V::Decimal(decimal_value(v[i].lo, v[i].hi), v[i].scale),
        Values::Text(b) => match std::str::from_utf8(bytes(b, i)) {
            Ok(s) => V::Text(Cow::Borrowed(s)),
            Err(_) => V::Binary(bytes(b, i)),
        },
        Values::Json(b) => match std::str::from_utf8(bytes(b, i)) {
            Ok(s) => V::Json(Cow::Borrowed(s)),
            Err(_) => V::Binary(bytes(b, i)),
        },
        Values::Date(v) => V::Date(v[i]),
        Values::Timestamp(v) => V::Timestamp(v[i], unit.unwrap_or(TimeUnit::Millis)),
        Values::Binary(b) => V::Binary(bytes(b, i)),
    }
}

/// A list cell as a JSON array.
fn list_json(list: &ListValues, row: usize, unit: Option<TimeUnit>) -> String {
    let (start, end) = (list.offsets[row] as usize, list.offsets[row + 1] as usize);
    let mut out = Vec::from(*b"[");
    for i in start..end {
        if i > start {
            out.push(b',');
        }
        if !list.item_nulls.is_empty() && list.item_nulls[i] != 0 {
            out.extend_from_slice(b"null");
            continue;
        }
        match scalar(&list.items, i, unit) {
            V::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
            V::Int(n) => crate::wire::json::write_i64(&mut out, n),
            V::Float(f) => crate::wire::json::write_f64(&mut out, f),
            V::Decimal(v, s) => crate::wire::json::write_decimal(&mut out, v, s),
            V::Json(t) => out.extend_from_slice(t.as_bytes()),
            v => {
                let text = v.to_text();
                out.extend_from_slice(serde_json::to_string(&text).unwrap_or_default().as_bytes());
            }
        }
    }
    out.push(b']');
    String::from_utf8_lossy(&out).into_owned()
}
