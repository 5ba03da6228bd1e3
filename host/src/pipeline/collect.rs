//! The endpoint's outcomes, body by body: receipts and warnings for the report, rejected
//! records' rows read back and dead-lettered (a row with several records once), and each
//! body's acknowledgement handed to the delivery state (a segment acknowledged in full
//! applies its watermarks and fingerprints).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::deadletter::DeadLetter;
use crate::deadletter::input_json::read_rows;
use crate::sink::{PayloadOutcome, RowRef};
use crate::source::{Stage, StageFile};
use crate::sync::lock;

use super::state::RunState;
use super::{PipelineError, Receipt, Warning, display_name};

/// See the module docs.
pub(super) struct Collector<'a> {
    stage: &'a Stage,
    /// Display name → file, to read rejected rows back.
    files: HashMap<String, StageFile>,
    pub(super) receipts: Vec<Receipt>,
    pub(super) warnings: Vec<Warning>,
    /// Rows with a record the endpoint rejected.
    pub(super) rejected_rows: BTreeSet<RowRef>,
}

impl<'a> Collector<'a> {
    pub(super) fn new(stage: &'a Stage, files: &[StageFile]) -> Self {
        Collector {
            stage,
            files: files.iter().map(|f| (display_name(f), f.clone())).collect(),
            receipts: Vec::new(),
            warnings: Vec::new(),
            rejected_rows: BTreeSet::new(),
        }
    }

    /// Takes one body's outcome.
    pub(super) fn outcome(
        &mut self,
        run: &RunState,
        outcome: PayloadOutcome,
    ) -> Result<(), PipelineError> {
        crate::failpoint::hit("after-post");
        let body = lock(&run.in_flight).remove(&outcome.batch_id);
        let delivered: u64 = outcome.delivered_count() as u64;
        let state_receipts: Vec<String> = outcome
            .delivered
            .iter()
            .map(|r| r.receipt_id.clone().unwrap_or_else(|| r.request_id.clone()))
            .collect();
        let settle = |rejected_rows: u64| {
            if let Some((file, segment)) = body
                && run.checkpointer.body_done(
                    file,
                    segment,
                    delivered,
                    rejected_rows,
                    state_receipts.clone(),
                )
            {
                run.segment_acked(file, segment);
            }
        };
        self.delivered(run, &outcome);
        run.progress
            .bytes_sent
            .fetch_add(outcome.stats.bytes_sent, Ordering::Relaxed);
        if outcome.rejected.is_empty() {
            settle(0);
            return Ok(());
        }
        if let Some((file, segment)) = body {
            let rejected = || {
                outcome
                    .rejected
                    .iter()
                    .map(|r| (r.origin.row, &r.entity_type))
            };
            run.watermarks.rejected(file, segment, rejected());
            if let Some(only_changed) = &run.only_changed {
                only_changed.rejected(file, segment, rejected());
            }
        }
        let inputs = self.inputs(&outcome);
        let mut new_rejected_rows = 0;
        for r in &outcome.rejected {
            tracing::warn!(file = %r.origin.file, row = r.origin.row, status = r.status, "endpoint rejected a record: {}", r.message);
            // A row with several records counts once.
            if !self.rejected_rows.insert(r.origin.clone()) {
                continue;
            }
            new_rejected_rows += 1;
            let input = inputs
                .get(&r.origin.file)
                .and_then(|rows| rows.get(&r.origin.row))
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            run.letters.write(
                DeadLetter::endpoint_rejection(r, input),
                &run.checkpointer,
                &run.tally,
            )?;
        }
        settle(new_rejected_rows);
        Ok(())
    }

    /// Receipts, warnings and progress of the requests that stored records.
    fn delivered(&mut self, run: &RunState, outcome: &PayloadOutcome) {
        let endpoint = outcome.endpoint.url.to_string();
        for request in &outcome.delivered {
            tracing::debug!(
                endpoint = %endpoint,
                receipt_id = request.receipt_id.as_deref().unwrap_or("-"),
                request_id = %request.request_id,
                records = request.records.len(),
                "delivered"
            );
            run.progress
                .records_delivered
                .fetch_add(request.records.len() as u64, Ordering::Relaxed);
            self.receipts.push(Receipt {
                endpoint: endpoint.clone(),
                receipt_id: request.receipt_id.clone(),
                request_id: request.request_id.clone(),
                records: request.records.len(),
            });
            for w in &request.warnings {
                tracing::warn!(
                    file = w.origin.as_ref().map(|o| &*o.file).unwrap_or("-"),
                    row = w.origin.as_ref().map(|o| o.row),
                    property = w.property.as_deref().unwrap_or("-"),
                    "endpoint warning: {}",
                    w.message.as_deref().unwrap_or("")
                );
                self.warnings.push(Warning {
                    file: w.origin.as_ref().map(|o| o.file.to_string()),
                    row: w.origin.as_ref().map(|o| o.row),
                    property: w.property.clone(),
                    message_id: w.message_id.clone(),
                    message: w.message.clone(),
                });
            }
        }
    }

    /// The input rows of rejected records, read back from their files in one pass each.
    fn inputs(
        &self,
        outcome: &PayloadOutcome,
    ) -> HashMap<Arc<str>, BTreeMap<u64, serde_json::Value>> {
        let mut wanted: HashMap<Arc<str>, BTreeSet<u64>> = HashMap::new();
        for r in &outcome.rejected {
            wanted
                .entry(r.origin.file.clone())
                .or_default()
                .insert(r.origin.row);
        }
        wanted
            .into_iter()
            .map(|(file, rows)| {
                let found = self
                    .files
                    .get(&*file)
                    .map(|f| read_rows(self.stage, f, &rows))
                    .unwrap_or_default();
                (file, found)
            })
            .collect()
    }
}
