//! Input rows as JSON, for dead letters: a person must be able to see what failed.

use std::collections::{BTreeMap, BTreeSet};

use arrow_array::RecordBatch;
use serde_json::Value;

use crate::source::parquet::ReadOptions;
use crate::source::{Stage, StageFile};

/// Row `row` of `batch` as a JSON object (nulls explicit). Never fails: a value that cannot
/// be rendered becomes a string saying so.
pub fn row_json(batch: &RecordBatch, row: usize) -> Value {
    let slice = batch.slice(row, 1);
    let mut writer = arrow_json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow_json::writer::JsonArray>(Vec::new());
    let rendered = writer.write(&slice).and_then(|()| writer.finish());
    if let Err(e) = rendered {
        return Value::String(format!("<row cannot be shown as JSON: {e}>"));
    }
    match serde_json::from_slice::<Vec<Value>>(&writer.into_inner()) {
        Ok(mut rows) if !rows.is_empty() => rows.swap_remove(0),
        Ok(_) => Value::Null,
        Err(e) => Value::String(format!("<row cannot be shown as JSON: {e}>")),
    }
}

/// Reads the given rows (every column) of a stage file, in one pass.
pub fn read_rows(stage: &Stage, file: &StageFile, rows: &BTreeSet<u64>) -> BTreeMap<u64, Value> {
    let mut found = BTreeMap::new();
    let (Some(&first), Some(&last)) = (rows.first(), rows.last()) else {
        return found;
    };
    let Ok(source) = stage.open(file) else {
        return found;
    };
    let options = ReadOptions {
        start_row: first,
        ..ReadOptions::default()
    };
    let Ok(batches) = source.batches(&options) else {
        return found;
    };
    for batch in batches {
        let Ok(batch) = batch else { break };
        let end = batch.first_row + batch.batch.num_rows() as u64;
        for &row in rows.range(batch.first_row..end) {
            found.insert(
                row,
                row_json(&batch.batch, (row - batch.first_row) as usize),
            );
        }
        if end > last {
            break;
        }
    }
    found
}
