//! The wire JSON of a record: a plugin's entity turned into the JSON object CluedIn's
//! Ingestion Endpoint receives. Hand-written over the plugin's columnar output (no
//! `serde_json::Value` tree per record), so every plugin gets the same escaping, dates
//! and decimals.
//!
//! Shapes:
//! - `nested` (default, the seed guide's):
//!   `{"externalId":"1","type":"Customer","timestamp":"…Z","properties":{…}}`
//!   plus `"deleted":true` for tombstones;
//! - `flat`: the properties beside `externalId`, `type`, `timestamp` (and `deleted`).
//!
//! Values: text as JSON strings; JSON-text cells embedded as JSON; dates `YYYY-MM-DD`;
//! timestamps RFC 3339 in UTC ending in `Z` (wall-clock values written as they are);
//! decimals as JSON numbers when a double holds them exactly, else as strings with
//! every digit; binary as base64; NaN/±Infinity as strings. `timestamp` is omitted when
//! the entity has none; `deleted` is omitted when false.

pub mod json;
pub mod time;

use std::ops::Range;

use base64::Engine as _;

use crate::bindings::types::{Cell, Entities, Span};
use json::{StrProblem, write_decimal, write_f64, write_i64, write_str, write_utf8};

/// How entity fields are laid out in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// `{"externalId","type","timestamp","properties":{…},"deleted"}`.
    #[default]
    Nested,
    /// Properties at the top level beside `externalId`, `type` and `timestamp`.
    Flat,
}

/// Record field names of the flat shape that a property may not take.
const RESERVED_FLAT_NAMES: &[&str] = &["externalId", "type", "timestamp", "deleted"];

/// Why one entity cannot be put on the wire. The entity's row is rejected, not the batch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeError {
    #[error("{field} holds the character U+{code:04X}, which CluedIn does not accept")]
    UnsupportedChar { field: String, code: u32 },
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 { field: String },
    #[error("{field} is not valid JSON: {message}")]
    InvalidJson { field: String, message: String },
    #[error("property `{name}` collides with a record field of the flat shape")]
    ReservedName { name: String },
}

impl EncodeError {
    fn from_str_problem(problem: StrProblem, field: &str) -> EncodeError {
        let field = field.to_string();
        match problem {
            StrProblem::InvalidUtf8 => EncodeError::InvalidUtf8 { field },
            StrProblem::Unsupported(c) => EncodeError::UnsupportedChar {
                field,
                code: c as u32,
            },
        }
    }
}

/// Read access to entity `index` of a plugin's (validated) output.
#[derive(Clone, Copy)]
pub struct EntityView<'a> {
    entities: &'a Entities,
    index: usize,
}

impl<'a> EntityView<'a> {
    pub fn new(entities: &'a Entities, index: usize) -> Self {
        EntityView { entities, index }
    }

    /// The entity's row within the piece of output it came from.
    pub fn row(&self) -> u32 {
        self.entities.rows[self.index]
    }

    pub fn entity_type(&self) -> &'a str {
        &self.entities.names[self.entities.entity_types[self.index] as usize]
    }

    pub fn external_id(&self) -> Result<&'a str, EncodeError> {
        text(
            self.entities,
            &self.entities.external_ids[self.index],
            "externalId",
        )
    }

    pub fn deleted(&self) -> bool {
        self.entities.deleted[self.index] != 0
    }

    pub fn timestamp(&self) -> &'a Cell {
        &self.entities.timestamps[self.index]
    }

    /// Indices of the entity's properties in `prop-names` / `prop-values`.
    pub fn property_indices(&self) -> Range<usize> {
        self.entities.prop_offsets[self.index] as usize
            ..self.entities.prop_offsets[self.index + 1] as usize
    }

    /// (name, value) of each property, in the order the plugin added them.
    pub fn properties(&self) -> impl Iterator<Item = (&'a str, &'a Cell)> + 'a {
        let e = self.entities;
        let start = e.prop_offsets[self.index] as usize;
        let end = e.prop_offsets[self.index + 1] as usize;
        (start..end).map(move |p| {
            (
                e.names[e.prop_names[p] as usize].as_str(),
                &e.prop_values[p],
            )
        })
    }
}

/// The interned names of one plugin output (entity types and property names), escaped
/// once as JSON strings: a batch writes each name thousands of times.
#[derive(Debug, Default)]
pub struct EscapedNames {
    json: Vec<u8>,
    /// Per name: its JSON string in `json`, or why it cannot be one.
    names: Vec<Result<Range<usize>, StrProblem>>,
}

impl EscapedNames {
    /// Escapes every name of `entities`.
    pub fn prepare(&mut self, entities: &Entities) {
        self.json.clear();
        self.names.clear();
        for name in &entities.names {
            let start = self.json.len();
            let escaped = write_str(&mut self.json, name).map(|()| start..self.json.len());
            if escaped.is_err() {
                self.json.truncate(start);
            }
            self.names.push(escaped);
        }
    }

    fn write(&self, out: &mut Vec<u8>, index: u32, field: &str) -> Result<(), EncodeError> {
        match &self.names[index as usize] {
            Ok(range) => {
                out.extend_from_slice(&self.json[range.clone()]);
                Ok(())
            }
            Err(problem) => Err(EncodeError::from_str_problem(*problem, field)),
        }
    }
}

/// Appends the record of `entity` to `out`; `names` must have been prepared for the
/// entity's output. On error `out` is left as it was.
pub fn write_record(
    out: &mut Vec<u8>,
    entity: EntityView<'_>,
    names: &EscapedNames,
    shape: Shape,
) -> Result<(), EncodeError> {
    let start = out.len();
    let result = write_record_inner(out, entity, names, shape);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn write_record_inner(
    out: &mut Vec<u8>,
    entity: EntityView<'_>,
    names: &EscapedNames,
    shape: Shape,
) -> Result<(), EncodeError> {
    let e = entity.entities;
    out.extend_from_slice(b"{\"externalId\":");
    string_field(
        out,
        span_bytes(e, &e.external_ids[entity.index]),
        "externalId",
    )?;
    out.extend_from_slice(b",\"type\":");
    names.write(out, e.entity_types[entity.index], "type")?;
    match entity.timestamp() {
        Cell::Null => {}
        cell => {
            out.extend_from_slice(b",\"timestamp\":");
            write_cell(out, e, cell, "timestamp")?;
        }
    }
    match shape {
        Shape::Nested => {
            out.extend_from_slice(b",\"properties\":{");
            let mut first = true;
            for p in entity.property_indices() {
                if !first {
                    out.push(b',');
                }
                first = false;
                property(out, e, names, p)?;
            }
            out.push(b'}');
        }
        Shape::Flat => {
            for p in entity.property_indices() {
                let name = e.names[e.prop_names[p] as usize].as_str();
                if RESERVED_FLAT_NAMES.contains(&name) {
                    return Err(EncodeError::ReservedName {
                        name: name.to_string(),
                    });
                }
                out.push(b',');
                property(out, e, names, p)?;
            }
        }
    }
    if entity.deleted() {
        out.extend_from_slice(b",\"deleted\":true");
    }
    out.push(b'}');
    Ok(())
}

fn property(
    out: &mut Vec<u8>,
    e: &Entities,
    names: &EscapedNames,
    p: usize,
) -> Result<(), EncodeError> {
    let name = e.prop_names[p];
    names.write(out, name, "a property name")?;
    out.push(b':');
    write_cell(out, e, &e.prop_values[p], &e.names[name as usize])
}

/// Writes a text cell's or an external id's bytes as a JSON string, checking that they
/// are UTF-8 while escaping them.
fn string_field(out: &mut Vec<u8>, bytes: &[u8], field: &str) -> Result<(), EncodeError> {
    write_utf8(out, bytes).map_err(|problem| EncodeError::from_str_problem(problem, field))
}

fn span_bytes<'a>(e: &'a Entities, span: &Span) -> &'a [u8] {
    &e.bytes[span.offset as usize..(span.offset + span.len) as usize]
}

fn text<'a>(e: &'a Entities, span: &Span, field: &str) -> Result<&'a str, EncodeError> {
    std::str::from_utf8(span_bytes(e, span)).map_err(|_| EncodeError::InvalidUtf8 {
        field: field.to_string(),
    })
}

/// Writes one value as JSON; `field` names it in errors.
pub fn write_cell(
    out: &mut Vec<u8>,
    e: &Entities,
    cell: &Cell,
    field: &str,
) -> Result<(), EncodeError> {
    match cell {
        Cell::Null => out.extend_from_slice(b"null"),
        Cell::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Cell::Integer(v) => write_i64(out, *v),
        Cell::Float(v) => write_f64(out, *v),
        Cell::Decimal(d) => write_decimal(out, decimal_value(d.lo, d.hi), d.scale),
        Cell::Text(span) => string_field(out, span_bytes(e, span), field)?,
        Cell::Json(span) => {
            let s = text(e, span, field)?;
            if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(s) {
                return Err(EncodeError::InvalidJson {
                    field: field.to_string(),
                    message: err.to_string(),
                });
            }
            if let Some(c) = s.chars().find(|&c| json::is_unsupported_char(c)) {
                return Err(EncodeError::UnsupportedChar {
                    field: field.to_string(),
                    code: c as u32,
                });
            }
            out.extend_from_slice(s.trim().as_bytes());
        }
        Cell::Date(days) => {
            out.push(b'"');
            time::write_date(out, *days as i64);
            out.push(b'"');
        }
        Cell::Timestamp(ts) => {
            out.push(b'"');
            time::write_timestamp(out, ts.value, ts.unit);
            out.push(b'"');
        }
        Cell::Binary(span) => {
            let bytes = span_bytes(e, span);
            out.push(b'"');
            let mut encoded = String::new();
            base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut encoded);
            out.extend_from_slice(encoded.as_bytes());
            out.push(b'"');
        }
    }
    Ok(())
}

/// The i128 a contract decimal's two halves encode.
pub fn decimal_value(lo: u64, hi: i64) -> i128 {
    ((hi as i128) << 64) | lo as i128
}
