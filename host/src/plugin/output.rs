//! Checks a plugin's columnar output against the contract before anything reads it, so
//! the encoder can index it without further checks (a 0.2.0 output is unpacked into the
//! host's one output type first, by `contract::since_v0_2_0::unpack`).

use crate::bindings::types::{Cell, Output, Span};

/// How a plugin's output breaks the contract (a [`super::Fault::InvalidOutput`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    #[error("{column} has {len} entries for {entities} entities")]
    ColumnLength {
        column: &'static str,
        len: usize,
        entities: usize,
    },
    #[error("prop-offsets has {len} entries for {entities} entities (expected {})", entities + 1)]
    PropOffsetsLength { len: usize, entities: usize },
    #[error("{names} property names but {values} property values")]
    PropertyCounts { names: usize, values: usize },
    #[error("prop-offsets are not a non-decreasing run from 0 to the property count")]
    PropOffsetsNotARun,
    #[error("entity row {row} is outside the batch of {rows} rows")]
    EntityRowOutside { row: u32, rows: usize },
    #[error("entity rows are not in row order")]
    EntityRowsOutOfOrder,
    #[error("name index {index} is outside the {names} interned names")]
    NameIndexOutside { index: u32, names: usize },
    #[error("span {offset}+{len} is outside the {bytes}-byte buffer")]
    SpanOutside { offset: u32, len: u32, bytes: usize },
    #[error("an entity timestamp is neither null, a date nor a timestamp")]
    TimestampKind,
    #[error("row error for row {row} is outside the batch of {rows} rows")]
    ErrorRowOutside { row: u32, rows: usize },
    #[error("row {row} has both an error and entities")]
    ErrorAndEntities { row: u32 },
    /// Contract 0.2.0: a packed column of the wrong size.
    #[error("{column} has {len} bytes, expected {} ({count} u32 values)", count * 4)]
    PackedLength {
        column: &'static str,
        len: usize,
        count: usize,
    },
    /// Contract 0.2.0: `deleted` is not one byte per entity.
    #[error("deleted has {len} bytes for {entities} entities (expected 1 per entity)")]
    DeletedLength { len: usize, entities: usize },
    /// Contract 0.2.0: the timestamps are not one cell per entity.
    #[error("timestamps has {cells} cells for {entities} entities")]
    TimestampCount { cells: usize, entities: usize },
    /// Contract 0.2.0: the cell words are not 8 bytes per cell kind.
    #[error("{column}: {len} bytes of words for {kinds} kinds (expected 8 per cell)")]
    CellWords {
        column: &'static str,
        len: usize,
        kinds: usize,
    },
    /// Contract 0.2.0: a decimal cell names a decimal that is not there.
    #[error("{column}: cell {cell} names decimal {word}, there are {decimals}")]
    DecimalIndex {
        column: &'static str,
        cell: usize,
        word: i64,
        decimals: usize,
    },
    /// Contract 0.2.0: a date cell out of the 32-bit day range.
    #[error("{column}: cell {cell} is a date of {word} days, out of range")]
    DateRange {
        column: &'static str,
        cell: usize,
        word: i64,
    },
    /// Contract 0.2.0: an unknown cell kind.
    #[error("{column}: cell {cell} has unknown kind {kind}")]
    UnknownKind {
        column: &'static str,
        cell: usize,
        kind: u8,
    },
}

/// Verifies that `output` is well-formed for a batch of `rows` rows.
pub fn validate(output: &Output, rows: usize) -> Result<(), OutputError> {
    let e = &output.entities;
    let n = e.rows.len();
    for (name, len) in [
        ("external-ids", e.external_ids.len()),
        ("entity-types", e.entity_types.len()),
        ("timestamps", e.timestamps.len()),
        ("deleted", e.deleted.len()),
    ] {
        if len != n {
            return Err(OutputError::ColumnLength {
                column: name,
                len,
                entities: n,
            });
        }
    }
    if e.prop_offsets.len() != n + 1 {
        return Err(OutputError::PropOffsetsLength {
            len: e.prop_offsets.len(),
            entities: n,
        });
    }
    if e.prop_names.len() != e.prop_values.len() {
        return Err(OutputError::PropertyCounts {
            names: e.prop_names.len(),
            values: e.prop_values.len(),
        });
    }
    if e.prop_offsets.first().copied().unwrap_or(0) != 0
        || e.prop_offsets.last().copied().unwrap_or(0) as usize != e.prop_names.len()
        || e.prop_offsets.windows(2).any(|w| w[0] > w[1])
    {
        return Err(OutputError::PropOffsetsNotARun);
    }
    let mut last_row = 0;
    for &row in &e.rows {
        if row as usize >= rows {
            return Err(OutputError::EntityRowOutside { row, rows });
        }
        if row < last_row {
            return Err(OutputError::EntityRowsOutOfOrder);
        }
        last_row = row;
    }
    let names = e.names.len();
    if let Some(bad) = e
        .entity_types
        .iter()
        .chain(e.prop_names.iter())
        .find(|&&i| i as usize >= names)
    {
        return Err(OutputError::NameIndexOutside { index: *bad, names });
    }
    let bytes = e.bytes.len();
    for span in &e.external_ids {
        check_span(span, bytes)?;
    }
    for cell in e.timestamps.iter() {
        match cell {
            Cell::Null | Cell::Date(_) | Cell::Timestamp(_) => {}
            _ => return Err(OutputError::TimestampKind),
        }
    }
    for cell in &e.prop_values {
        if let Cell::Text(span) | Cell::Json(span) | Cell::Binary(span) = cell {
            check_span(span, bytes)?;
        }
    }
    for error in &output.errors {
        if error.row as usize >= rows {
            return Err(OutputError::ErrorRowOutside {
                row: error.row,
                rows,
            });
        }
        if e.rows.binary_search(&error.row).is_ok() {
            return Err(OutputError::ErrorAndEntities { row: error.row });
        }
    }
    Ok(())
}

fn check_span(span: &Span, len: usize) -> Result<(), OutputError> {
    let end = span.offset as u64 + span.len as u64;
    if end > len as u64 {
        return Err(OutputError::SpanOutside {
            offset: span.offset,
            len: span.len,
            bytes: len,
        });
    }
    Ok(())
}
