//! One request's rows through the plugin and the sink, and what is kept of the result.
//!
//! Memory: a request waiting for a plugin slot holds its body and its row numbers only;
//! its rows are parsed when its plugin runs (at most `workers` at once) and dropped with
//! the plugin's input, and the records' JSON is dropped once handed to the shared batcher.
//! Dead letters parse the body again, only for rejected rows.

use std::sync::Arc;

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{Value, json};

use crate::deadletter::{DeadLetter, DeadLetterWriter};
use crate::pipeline::outcome::{RowFate, RowFates};
use crate::pipeline::transformer::Transformer;
use crate::plugin::PluginError;
use crate::state::PutMode;
use crate::transform::{ArrowInput, EncodedBatch, RowStage};

use super::coalesce::Fate;
use super::columns::{BodyError, Layout, columns, parse_rows};
use super::{Answer, Relay, state_path};
use crate::source::json::JsonError;

/// A request being delivered.
pub(super) struct SnowflakeBatch {
    pub(super) name: String,
    pub(super) batch_id: String,
    /// `external-function/<name>/<query-id>`: the source file the plugin sees and the
    /// dead letters' `file`.
    pub(super) route_key: String,
    /// The request body (decompressed), checked by [`super::columns::row_numbers`].
    pub(super) body: Bytes,
    /// Each row's number, in input order.
    pub(super) numbers: Vec<Value>,
}

/// What became of one row.
#[derive(Debug, Clone)]
enum RowResult {
    Delivered(Option<String>),
    Filtered,
    Rejected { stage: RowStage, message: String },
}

/// Why a request's rows were not transformed: every row is rejected with it.
#[derive(Debug, thiserror::Error)]
enum TransformError {
    /// The body's rows cannot be read.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The rows cannot be turned into columns.
    #[error(transparent)]
    Rows(#[from] JsonError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Start(#[from] crate::pipeline::transformer::StartError),
}

/// The plugin part of a batch (blocking).
fn transform(relay: &Relay, batch: &SnowflakeBatch) -> Result<EncodedBatch, TransformError> {
    let rows = parse_rows(&batch.body)?;
    let cols = columns(&rows)?;
    let mut transformer = match relay.take_transformer(&cols.schema) {
        Some(transformer) => transformer,
        None => Transformer::start(
            &relay.job.transform,
            cols.schema.clone(),
            relay.job.config.records.shape,
        )?,
    };
    let file = crate::source::source_file(&batch.route_key);
    let projection = transformer.projection().map(<[u32]>::to_vec);
    let input = ArrowInput {
        file: &file,
        first_row: 0,
        batch: &cols.batch,
        schema: &cols.schema,
        projection: projection.as_deref(),
    };
    let encoded = transformer.transform(&input)?;
    relay.give_back(transformer);
    Ok(encoded)
}

/// Transforms, delivers and records one batch; the answer every poll and replay gets.
pub(super) async fn run_batch(relay: &Arc<Relay>, batch: SnowflakeBatch) -> Answer {
    let n = batch.numbers.len();
    let batch = Arc::new(batch);
    // Announced before the plugin runs: bodies other requests fill wait for these records
    // (at most the linger; see `coalesce`).
    let coalescer = match relay.coalescer() {
        Ok(coalescer) => coalescer,
        Err(e) => return fatal(relay, &batch, e.to_string()),
    };
    let announcement = coalescer.announce();
    let transformed = {
        let _permit = relay.cpu.acquire().await;
        let (relay, batch, coalescer) = (Arc::clone(relay), Arc::clone(&batch), coalescer);
        // The push runs here too: cutting a full body compresses it.
        tokio::task::spawn_blocking(move || {
            let mut encoded = transform(&relay, &batch)?;
            let ticket = (!encoded.records.is_empty()).then(|| {
                let records = encoded
                    .records
                    .iter()
                    .map(|r| (&r.entity_type, encoded.record_json(r)));
                coalescer.push(announcement, &batch.route_key, records)
            });
            // The batcher has its own copy of the records' JSON; their rows are enough here.
            encoded.json = Vec::new();
            encoded.ids = String::new();
            // Without records (or on an error above) the announcement is dropped: withdrawn.
            Ok::<_, TransformError>((encoded, ticket))
        })
        .await
    };
    let mut results: Vec<RowResult> = vec![RowResult::Filtered; n];
    match transformed {
        Err(e) => return fatal(relay, &batch, format!("internal error: {e}")),
        Ok(Err(error)) => {
            // The plugin refused the schema (or could not run): every row is rejected.
            let message = error.to_string();
            tracing::warn!(
                "relay {}: the plugin failed the batch: {message}",
                batch.name
            );
            for r in &mut results {
                *r = RowResult::Rejected {
                    stage: RowStage::Plugin,
                    message: message.clone(),
                };
            }
        }
        Ok(Ok((encoded, ticket))) => {
            for failure in &encoded.failures {
                if let Some(r) = results.get_mut(failure.row as usize) {
                    *r = RowResult::Rejected {
                        stage: failure.stage,
                        message: failure.message.clone(),
                    };
                }
            }
            if let Some(ticket) = ticket {
                match ticket.wait().await {
                    Ok(fates) => apply_fates(&encoded, &fates, &mut results),
                    Err(e) => return fatal(relay, &batch, e.to_string()),
                }
            }
        }
    }
    let body = answer_body(&batch.numbers, &results);
    let counts = results.iter().fold([0usize; 3], |mut c, r| {
        c[match r {
            RowResult::Delivered(_) => 0,
            RowResult::Filtered => 1,
            RowResult::Rejected { .. } => 2,
        }] += 1;
        c
    });
    {
        let (relay, b, body) = (Arc::clone(relay), Arc::clone(&batch), body.clone());
        let results = results.clone();
        let kept = tokio::task::spawn_blocking(move || {
            keep(&relay, &b, &results, &body);
        })
        .await;
        if let Err(e) = kept {
            tracing::error!("relay {}: keeping the result failed: {e}", batch.name);
        }
    }
    relay
        .metrics
        .relay_rows(counts[0] as u64, counts[1] as u64, counts[2] as u64, 0);
    tracing::info!(
        "relay {}: batch {} ({n} rows): {} delivered, {} filtered, {} rejected",
        batch.name,
        batch.batch_id,
        counts[0],
        counts[1],
        counts[2]
    );
    Answer {
        status: StatusCode::OK,
        body,
    }
}

fn fatal(relay: &Relay, batch: &SnowflakeBatch, message: String) -> Answer {
    relay
        .metrics
        .relay_rows(0, 0, 0, batch.numbers.len() as u64);
    tracing::error!(
        "relay {}: batch {} not delivered: {message}",
        batch.name,
        batch.batch_id
    );
    Answer {
        status: StatusCode::BAD_GATEWAY,
        body: Bytes::from(
            json!({ "error": format!("the rows were not delivered: {message}") }).to_string(),
        ),
    }
}

/// `{"data": [[row_number, result], …]}`, written row by row (no JSON tree of the whole
/// answer).
fn answer_body(numbers: &[Value], results: &[RowResult]) -> Bytes {
    let mut out = Vec::with_capacity(16 + numbers.len() * 48);
    out.extend_from_slice(b"{\"data\":[");
    for (i, (number, result)) in numbers.iter().zip(results).enumerate() {
        let value = match result {
            RowResult::Delivered(receipt) => {
                json!({"status": "delivered", "receiptId": receipt})
            }
            RowResult::Filtered => json!({"status": "filtered"}),
            RowResult::Rejected { stage, message } => {
                json!({"status": "rejected", "stage": stage.as_str(), "message": message})
            }
        };
        if i > 0 {
            out.push(b',');
        }
        // Writing a `Value` to a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut out, &json!([number, value]));
    }
    out.extend_from_slice(b"]}");
    Bytes::from(out)
}

/// Sets each row's result from its records' fates, by the one rule ([`RowFates`]): a row
/// is rejected if one of its records is (no route first, then the endpoint's refusal),
/// else delivered with the `receiptId` of its first record. Rows the plugin rejected keep
/// that result.
fn apply_fates(encoded: &EncodedBatch, fates: &[Fate], results: &mut [RowResult]) {
    let records = || encoded.records.iter().zip(fates);
    let mut rows = RowFates::<(RowStage, &str)>::default();
    for (record, _) in records() {
        rows.record(record.row);
    }
    for (record, fate) in records() {
        if let Fate::Rejected { stage, message } = fate
            && *stage != RowStage::Endpoint
        {
            rows.rejected(record.row, (RowStage::Encode, message));
        }
    }
    for (record, fate) in records() {
        match fate {
            Fate::Rejected {
                stage: RowStage::Endpoint,
                message,
            } => rows.rejected(record.row, (RowStage::Endpoint, message)),
            Fate::Rejected { .. } => {}
            Fate::Delivered { receipt_id } => rows.stored(record.row, receipt_id.as_deref()),
        }
    }
    for (row, fate) in rows.into_fates() {
        let Some(result) = results.get_mut(row as usize) else {
            continue;
        };
        if matches!(result, RowResult::Rejected { .. }) {
            continue;
        }
        *result = match fate {
            RowFate::Delivered { receipt_id } => RowResult::Delivered(receipt_id),
            RowFate::Filtered => RowResult::Filtered,
            RowFate::Rejected((stage, message)) => RowResult::Rejected {
                stage,
                message: message.to_owned(),
            },
            RowFate::NotAcknowledged { records, stored } => RowResult::Rejected {
                stage: RowStage::Endpoint,
                message: format!(
                    "{} of {records} records were not acknowledged",
                    records - stored
                ),
            },
        };
    }
}

/// Dead letters for the rejected rows, then the result in the state (blocking).
fn keep(relay: &Relay, batch: &SnowflakeBatch, results: &[RowResult], body: &[u8]) {
    let plugin = relay.job.transform.name().to_string();
    // The rejected rows' inputs, from the body (checked when it arrived).
    let rows = if results
        .iter()
        .any(|r| matches!(r, RowResult::Rejected { .. }))
    {
        parse_rows(&batch.body).unwrap_or_default()
    } else {
        Vec::new()
    };
    let layout = Layout::of(&rows);
    let input = |i: usize| rows.get(i).map(|r| layout.input(r)).unwrap_or(Value::Null);
    let letters: Vec<DeadLetter> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            RowResult::Rejected { stage, message } => Some(DeadLetter {
                file: batch.route_key.clone(),
                key: None,
                identity: None,
                row: batch
                    .numbers
                    .get(i)
                    .and_then(Value::as_u64)
                    .unwrap_or(i as u64),
                stage: *stage,
                kind: "rejected".into(),
                message: message.clone(),
                plugin: Some(plugin.clone()),
                status: None,
                receipt_id: None,
                entity_type: None,
                record: None,
                input: input(i),
            }),
            _ => None,
        })
        .collect();
    if !letters.is_empty() {
        let mut writer = relay.dead_letters.lock().unwrap_or_else(|p| p.into_inner());
        if writer.is_none() {
            match DeadLetterWriter::open(&relay.job.config.output.dead_letter_dir()) {
                Ok(w) => *writer = Some(w),
                Err(e) => tracing::error!("relay: cannot open the dead letters: {e}"),
            }
        }
        if let Some(w) = writer.as_mut() {
            let written = letters
                .iter()
                .try_for_each(|l| w.write(l))
                .and_then(|()| w.flush());
            if let Err(e) = written {
                tracing::error!(
                    "relay: cannot write dead letters to {}: {e}",
                    w.path().display()
                );
            }
        }
    }
    let path = state_path(&batch.name, &batch.batch_id);
    if let Err(e) = relay.job.state.put(&path, body, PutMode::Overwrite) {
        tracing::error!(
            "relay {}: cannot keep the result of batch {} in the state ({e}): a retry after a restart would deliver it again",
            batch.name,
            batch.batch_id
        );
    }
}
