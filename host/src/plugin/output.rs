//! Checks a plugin's columnar output against the contract before anything reads it, so
//! the encoder can index it without further checks (a 0.2.0 output is unpacked into the
//! host's one output type first, by `contract::since_v0_2_0::unpack`).

use crate::bindings::types::{Cell, Output, Span};

/// Verifies that `output` is well-formed for a batch of `rows` rows.
pub fn validate(output: &Output, rows: usize) -> Result<(), String> {
    let e = &output.entities;
    let n = e.rows.len();
    for (name, len) in [
        ("external-ids", e.external_ids.len()),
        ("entity-types", e.entity_types.len()),
        ("timestamps", e.timestamps.len()),
        ("deleted", e.deleted.len()),
    ] {
        if len != n {
            return Err(format!("{name} has {len} entries for {n} entities"));
        }
    }
    if e.prop_offsets.len() != n + 1 {
        return Err(format!(
            "prop-offsets has {} entries for {n} entities (expected {})",
            e.prop_offsets.len(),
            n + 1
        ));
    }
    if e.prop_names.len() != e.prop_values.len() {
        return Err(format!(
            "{} property names but {} property values",
            e.prop_names.len(),
            e.prop_values.len()
        ));
    }
    if e.prop_offsets.first().copied().unwrap_or(0) != 0
        || e.prop_offsets.last().copied().unwrap_or(0) as usize != e.prop_names.len()
        || e.prop_offsets.windows(2).any(|w| w[0] > w[1])
    {
        return Err(
            "prop-offsets are not a non-decreasing run from 0 to the property count".into(),
        );
    }
    let mut last_row = 0;
    for &row in &e.rows {
        if row as usize >= rows {
            return Err(format!(
                "entity row {row} is outside the batch of {rows} rows"
            ));
        }
        if row < last_row {
            return Err("entity rows are not in row order".into());
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
        return Err(format!(
            "name index {bad} is outside the {names} interned names"
        ));
    }
    let bytes = e.bytes.len();
    for span in &e.external_ids {
        check_span(span, bytes)?;
    }
    for cell in e.timestamps.iter() {
        match cell {
            Cell::Null | Cell::Date(_) | Cell::Timestamp(_) => {}
            _ => return Err("an entity timestamp is neither null, a date nor a timestamp".into()),
        }
    }
    for cell in &e.prop_values {
        if let Cell::Text(span) | Cell::Json(span) | Cell::Binary(span) = cell {
            check_span(span, bytes)?;
        }
    }
    for error in &output.errors {
        if error.row as usize >= rows {
            return Err(format!(
                "row error for row {} is outside the batch of {rows} rows",
                error.row
            ));
        }
        if e.rows.binary_search(&error.row).is_ok() {
            return Err(format!("row {} has both an error and entities", error.row));
        }
    }
    Ok(())
}

fn check_span(span: &Span, len: usize) -> Result<(), String> {
    let end = span.offset as u64 + span.len as u64;
    if end > len as u64 {
        return Err(format!(
            "span {}+{} is outside the {len}-byte buffer",
            span.offset, span.len
        ));
    }
    Ok(())
}
