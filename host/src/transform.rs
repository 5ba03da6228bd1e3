//! The transform stage of a file: Parquet batches through a plugin runner into encoded
//! wire records, each row ending as records, filtered, or failed with its reason.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::RecordBatch;

use crate::bindings::types::{Batch, ColumnSchema, SourceFile};
use crate::plugin::input::to_columns;
use crate::plugin::{BatchResult, BatchSource, Failure, PluginError, Runner};
use crate::wire::{EntityView, EscapedNames, Shape, write_record};

/// The pipeline stage at which a row failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowStage {
    /// The file could not be read.
    Read,
    /// The plugin rejected the row or faulted on it.
    Plugin,
    /// An entity of the row could not be written as wire JSON.
    Encode,
    /// The endpoint rejected the record.
    Endpoint,
}

impl RowStage {
    /// The stage's name as reports and answers spell it (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            RowStage::Read => "read",
            RowStage::Plugin => "plugin",
            RowStage::Encode => "encode",
            RowStage::Endpoint => "endpoint",
        }
    }
}

/// One row that produced no records, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RowFailure {
    /// File row number (0-based).
    pub row: u64,
    pub stage: RowStage,
    /// Stable short name of the cause (`rejected`, `trap`, `timeout`, …).
    pub kind: &'static str,
    pub message: String,
}

/// A record ready for the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedRecord {
    /// File row number (0-based) of the input row.
    pub row: u64,
    pub entity_type: Arc<str>,
    /// Byte range of the record's JSON in [`EncodedBatch::json`].
    pub range: Range<usize>,
    /// Byte range of the external id in [`EncodedBatch::ids`].
    pub id: Range<usize>,
    /// A tombstone (`deleted`).
    pub deleted: bool,
    /// The record's timestamp as nanoseconds since 1970 (dates at midnight), if it has one:
    /// the run report's watermark.
    pub timestamp_ns: Option<i128>,
}

/// The records and failures of one batch of input rows.
#[derive(Debug, Default)]
pub struct EncodedBatch {
    pub rows: u64,
    /// Rows that produced no entity and no error (filtered out by the plugin).
    pub filtered: u64,
    /// Every record's JSON, back to back.
    pub json: Vec<u8>,
    /// Every record's external id, back to back.
    pub ids: String,
    /// Records in input row order.
    pub records: Vec<EncodedRecord>,
    /// Failed rows in input row order.
    pub failures: Vec<RowFailure>,
}

impl EncodedBatch {
    pub fn record_json(&self, record: &EncodedRecord) -> &[u8] {
        &self.json[record.range.clone()]
    }

    pub fn external_id(&self, record: &EncodedRecord) -> &str {
        &self.ids[record.id.clone()]
    }
}

/// A batch of Arrow rows from one file, presented to a runner.
pub struct ArrowInput<'a> {
    pub file: &'a SourceFile,
    pub first_row: u64,
    pub batch: &'a RecordBatch,
    /// Contract schema of the batch's columns (`schema[i]` describes column `i`).
    pub schema: &'a [ColumnSchema],
    pub projection: Option<&'a [u32]>,
}

impl BatchSource for ArrowInput<'_> {
    fn row_count(&self) -> usize {
        self.batch.num_rows()
    }

    fn slice(&self, offset: usize, len: usize) -> Batch {
        let rows = self.batch.slice(offset, len);
        // The schema was checked when the file was opened, so conversion cannot meet a
        // type it does not know; should it fail anyway, the plugin sees no columns and
        // the error surfaces as the plugin's.
        let columns = to_columns(&rows, self.schema, self.projection).unwrap_or_else(|e| {
            tracing::error!(error = %e, "column conversion failed");
            Vec::new()
        });
        Batch {
            file: self.file.clone(),
            first_row: self.first_row + offset as u64,
            row_count: len as u32,
            columns,
        }
    }
}

/// Turns plugin output into wire records; keeps entity-type names shared.
#[derive(Default)]
pub struct Encoder {
    shape: Shape,
    types: HashMap<String, Arc<str>>,
    names: EscapedNames,
}

impl Encoder {
    pub fn new(shape: Shape) -> Self {
        Encoder {
            shape,
            types: HashMap::new(),
            names: EscapedNames::default(),
        }
    }

    /// Transforms `input` with `runner` and encodes the result.
    pub fn transform(
        &mut self,
        runner: &mut Runner,
        input: &ArrowInput<'_>,
    ) -> Result<EncodedBatch, PluginError> {
        let result = runner.transform(input)?;
        Ok(self.encode(input.first_row, input.batch.num_rows(), &result))
    }

    /// Encodes a runner's result for rows `first_row .. first_row + rows` of a file.
    pub fn encode(&mut self, first_row: u64, rows: usize, result: &BatchResult) -> EncodedBatch {
        let mut out = EncodedBatch {
            rows: rows as u64,
            ..EncodedBatch::default()
        };
        let mut failures = result.failures.iter().peekable();
        let mut next_row = 0u32; // first batch row not yet accounted for
        for piece in &result.pieces {
            let entities = &piece.output.entities;
            self.names.prepare(entities);
            let count = entities.rows.len();
            let mut e = 0;
            while e < count {
                let row = piece.offset + entities.rows[e];
                let mut end = e + 1;
                while end < count && entities.rows[end] == entities.rows[e] {
                    end += 1;
                }
                // Rows before this one that produced nothing: failed or filtered.
                self.account_gap(&mut out, &mut failures, first_row, next_row, row);
                self.encode_row(&mut out, entities, e..end, first_row + row as u64);
                next_row = row + 1;
                e = end;
            }
        }
        self.account_gap(&mut out, &mut failures, first_row, next_row, rows as u32);
        out
    }

    fn account_gap<'a>(
        &self,
        out: &mut EncodedBatch,
        failures: &mut std::iter::Peekable<impl Iterator<Item = &'a crate::plugin::RowFailure>>,
        first_row: u64,
        from: u32,
        to: u32,
    ) {
        let mut failed = 0;
        while let Some(f) = failures.next_if(|f| f.row < to) {
            if f.row >= from {
                failed += 1;
            }
            out.failures.push(plugin_failure(first_row, f));
        }
        out.filtered += (to.saturating_sub(from) - failed) as u64;
    }

    fn encode_row(
        &mut self,
        out: &mut EncodedBatch,
        entities: &crate::bindings::types::Entities,
        range: Range<usize>,
        row: u64,
    ) {
        let json_start = out.json.len();
        let ids_start = out.ids.len();
        let records_start = out.records.len();
        for index in range {
            let entity = EntityView::new(entities, index);
            let start = out.json.len();
            if let Err(error) = write_record(&mut out.json, entity, &self.names, self.shape) {
                out.json.truncate(json_start);
                out.ids.truncate(ids_start);
                out.records.truncate(records_start);
                out.failures.push(RowFailure {
                    row,
                    stage: RowStage::Encode,
                    kind: "encode",
                    message: error.to_string(),
                });
                return;
            }
            let name = entity.entity_type();
            let entity_type = match self.types.get(name) {
                Some(t) => t.clone(),
                None => {
                    let t: Arc<str> = name.into();
                    self.types.insert(name.to_string(), t.clone());
                    t
                }
            };
            // write_record checked the id.
            let id_start = out.ids.len();
            out.ids.push_str(entity.external_id().unwrap_or_default());
            out.records.push(EncodedRecord {
                row,
                entity_type,
                range: start..out.json.len(),
                id: id_start..out.ids.len(),
                deleted: entity.deleted(),
                timestamp_ns: timestamp_ns(entity.timestamp()),
            });
        }
    }
}

/// A date or timestamp cell as nanoseconds since 1970-01-01T00:00:00.
fn timestamp_ns(cell: &crate::bindings::types::Cell) -> Option<i128> {
    use crate::bindings::types::{Cell, TimeUnit};
    match cell {
        Cell::Date(days) => Some(*days as i128 * 86_400 * 1_000_000_000),
        Cell::Timestamp(ts) => Some(
            ts.value as i128
                * match ts.unit {
                    TimeUnit::Seconds => 1_000_000_000,
                    TimeUnit::Millis => 1_000_000,
                    TimeUnit::Micros => 1_000,
                    TimeUnit::Nanos => 1,
                },
        ),
        _ => None,
    }
}

fn plugin_failure(first_row: u64, f: &crate::plugin::RowFailure) -> RowFailure {
    RowFailure {
        row: first_row + f.row as u64,
        stage: RowStage::Plugin,
        kind: f.failure.kind(),
        message: match &f.failure {
            Failure::Rejected(m) => m.clone(),
            Failure::Fault(fault) => fault.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::RowStage;

    #[test]
    fn row_stage_names_are_the_serde_names() {
        for stage in [
            RowStage::Read,
            RowStage::Plugin,
            RowStage::Encode,
            RowStage::Endpoint,
        ] {
            let serde = serde_json::to_value(stage).unwrap();
            assert_eq!(serde, stage.as_str());
        }
    }
}
