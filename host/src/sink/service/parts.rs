//! One batch as a queue of *parts* (subsets of its records), starting with the whole batch:
//! 2xx delivers a part, 413 splits it in halves, a 400 naming rows rejects those rows and
//! resends the rest, a 400 naming none bisects down to the offending records.

use std::collections::VecDeque;
use std::sync::Arc;

use super::CluedInSink;
use super::attempt::Answer;
use crate::sink::SinkError;
use crate::sink::batcher::{Payload, RecordMeta};
use crate::sink::body::{Body, BodyEncoding, RecordSpans};
use crate::sink::outcome::{
    DeliveredRequest, PayloadOutcome, RejectedRecord, RowWarning, SinkStats,
};
use crate::sink::response::IngestResponse;
use crate::sink::retries::RetryAction;

impl CluedInSink {
    pub(super) async fn deliver_parts(
        &self,
        batch: Payload,
        stats: &mut SinkStats,
    ) -> Result<PayloadOutcome, SinkError> {
        let Payload {
            id,
            endpoint,
            records,
            meta,
            encoding,
            body,
        } = batch;
        let records = Arc::new(records);
        let mut out = PayloadOutcome {
            batch_id: id,
            endpoint: Arc::clone(&endpoint),
            delivered: Vec::new(),
            rejected: Vec::new(),
            stats: SinkStats::default(),
        };
        let mut stop = self.inner.stop.subscribe();
        let mut rng = fastrand::Rng::new();
        let mut queue = VecDeque::new();
        if !meta.is_empty() {
            queue.push_back(Part {
                rows: (0..meta.len()).collect(),
                body: Some(body),
            });
        }
        while let Some(part) = queue.pop_front() {
            let body = match part.body {
                Some(body) => body,
                None => encode_part(&records, encoding, &part.rows).await?,
            };
            let answer = self
                .send(id, &endpoint, &encoding, body, stats, &mut rng, &mut stop)
                .await?;
            let Answer {
                action,
                status,
                response,
                request_id,
            } = answer;
            let receipt = response.receipt_id.clone();
            let reject =
                |rows: &[usize], message: &str, out: &mut PayloadOutcome, stats: &mut SinkStats| {
                    for &i in rows {
                        self.count(stats, |s| s.records_rejected += 1);
                        out.rejected.push(RejectedRecord {
                            origin: meta[i].origin.clone(),
                            entity_type: Arc::clone(&meta[i].entity_type),
                            json: records.json(i).to_vec(),
                            status,
                            receipt_id: receipt.clone(),
                            message: message.to_string(),
                        });
                    }
                };
            match action {
                RetryAction::Successful => {
                    self.count(stats, |s| s.records_delivered += part.rows.len() as u64);
                    let warnings = warnings_of(&response, &part.rows, &meta);
                    tracing::debug!(
                        batch = id,
                        endpoint = %endpoint.id,
                        receipt_id = receipt.as_deref().unwrap_or("-"),
                        request_id = %request_id,
                        records = part.rows.len(),
                        warnings = warnings.len(),
                        "delivered"
                    );
                    out.delivered.push(DeliveredRequest {
                        receipt_id: receipt,
                        request_id,
                        records: part.rows.iter().map(|&i| meta[i].origin.clone()).collect(),
                        warnings,
                    });
                }
                RetryAction::Split if part.rows.len() > 1 => {
                    tracing::info!(
                        batch = id,
                        records = part.rows.len(),
                        "413: splitting the body in halves"
                    );
                    push_halves(&mut queue, part.rows);
                }
                RetryAction::Split => {
                    let msg = format!(
                        "the record alone is larger than the endpoint accepts (HTTP 413: {})",
                        response.summary()
                    );
                    tracing::warn!(batch = id, row = ?meta[part.rows[0]].origin, "{msg}");
                    reject(&part.rows, &msg, &mut out, stats);
                }
                RetryAction::RejectRows(named) => {
                    let mut rejected = vec![false; part.rows.len()];
                    for &n in &named {
                        rejected[n] = true;
                        let msg = response
                            .row_errors()
                            .filter(|(r, _)| *r == n)
                            .map(|(_, m)| m.describe())
                            .collect::<Vec<_>>()
                            .join("; ");
                        reject(&[part.rows[n]], &msg, &mut out, stats);
                    }
                    tracing::warn!(
                        batch = id,
                        status,
                        rejected = named.len(),
                        receipt_id = receipt.as_deref().unwrap_or("-"),
                        "rows rejected by the endpoint; resending the rest"
                    );
                    let rest: Vec<usize> = part
                        .rows
                        .iter()
                        .zip(&rejected)
                        .filter(|(_, r)| !**r)
                        .map(|(i, _)| *i)
                        .collect();
                    if !rest.is_empty() {
                        queue.push_front(Part {
                            rows: rest,
                            body: None,
                        });
                    }
                }
                RetryAction::Bisect { reason } if part.rows.len() > 1 => {
                    tracing::info!(
                        batch = id,
                        records = part.rows.len(),
                        "{reason}; bisecting to find the offending records"
                    );
                    push_halves(&mut queue, part.rows);
                }
                RetryAction::Bisect { reason } | RetryAction::Reject { reason } => {
                    tracing::warn!(
                        batch = id,
                        status,
                        records = part.rows.len(),
                        "records rejected: {reason}"
                    );
                    reject(&part.rows, &reason, &mut out, stats);
                }
                // `send` handles these itself.
                RetryAction::Retry { .. } | RetryAction::Fatal(_) => {
                    return Err(SinkError::Internal(
                        "unexpected retry action after send".into(),
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// A subset of a batch's records (indices into the batch), with its body once built.
struct Part {
    rows: Vec<usize>,
    body: Option<Body>,
}

/// Queues the two halves of `rows` at the front, first half first.
fn push_halves(queue: &mut VecDeque<Part>, mut rows: Vec<usize>) {
    let second = rows.split_off(rows.len() / 2);
    queue.push_front(Part {
        rows: second,
        body: None,
    });
    queue.push_front(Part { rows, body: None });
}

/// Frames and compresses a part on the blocking pool.
async fn encode_part(
    records: &Arc<RecordSpans>,
    encoding: BodyEncoding,
    rows: &[usize],
) -> Result<Body, SinkError> {
    let records = Arc::clone(records);
    let rows = rows.to_vec();
    tokio::task::spawn_blocking(move || {
        let framed = records.frame_subset(encoding.format, rows.iter().copied());
        encoding.finish(&framed, rows.len())
    })
    .await
    .map_err(|e| SinkError::Internal(format!("body encoder task: {e}")))?
    .map_err(SinkError::Encode)
}

/// Maps an answer's warnings to the records of the request.
fn warnings_of(response: &IngestResponse, rows: &[usize], meta: &[RecordMeta]) -> Vec<RowWarning> {
    response
        .warnings
        .iter()
        .map(|w| RowWarning {
            origin: w
                .row()
                .and_then(|r| rows.get(r))
                .map(|&i| meta[i].origin.clone()),
            property: w.property.clone(),
            message_id: w.message_id.clone(),
            message: w.message.clone(),
        })
        .collect()
}
