//! What the sink hands back per batch: every record delivered or rejected, warnings, stats.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::RowRef;
use super::batcher::Endpoint;

/// One request that the endpoint stored (2xx).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveredRequest {
    /// The `receiptId` of the request, if the answer had one (log it: CluedIn shows it under
    /// Monitoring → Ingestion reports).
    pub receipt_id: Option<String>,
    /// The per-attempt request id of the successful attempt.
    pub request_id: String,
    /// The records the request carried, in body order.
    pub records: Vec<RowRef>,
    /// Warnings of the answer (e.g. `space-in-property`), mapped to records.
    pub warnings: Vec<RowWarning>,
}

/// A warning of a successful request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowWarning {
    /// The record it names, if its `rowIndex` named one of the request.
    pub origin: Option<RowRef>,
    /// `property`.
    pub property: Option<String>,
    /// `messageId`.
    pub message_id: Option<String>,
    /// `errorMessage`.
    pub message: Option<String>,
}

/// A record the endpoint refused (a dead letter of the endpoint step, `RowStage::Endpoint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRecord {
    /// The input row.
    pub origin: RowRef,
    /// Its entity type.
    pub entity_type: Arc<str>,
    /// The record's JSON as sent.
    pub json: Vec<u8>,
    /// HTTP status of the answer that refused it (400, 413, …).
    pub status: u16,
    /// The `receiptId` of that answer, if any.
    pub receipt_id: Option<String>,
    /// The server's message (or ours, e.g. for a record too large to send).
    pub message: String,
}

/// Counters, per batch and (summed) per sink.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SinkStats {
    /// Batches finished (every record delivered or rejected).
    pub batches: u64,
    /// HTTP requests made (attempts, including retries and split/bisect parts).
    pub requests: u64,
    /// Of those, retries of the same body after a transient failure.
    pub retries: u64,
    /// Requests that failed without an HTTP answer (connection errors, timeouts).
    pub transport_errors: u64,
    /// Records delivered.
    pub records_delivered: u64,
    /// Records rejected.
    pub records_rejected: u64,
    /// Uncompressed body bytes sent, summed over requests.
    pub bytes_uncompressed: u64,
    /// Body bytes on the wire (after gzip), summed over requests.
    pub bytes_sent: u64,
    /// Answers by HTTP status.
    pub status: BTreeMap<u16, u64>,
    /// 2xx answers whose body was not CluedIn's JSON (an HTML page, an empty body): their
    /// records are counted delivered, unconfirmed by CluedIn (see [`super`]).
    pub responses_not_cluedin_json: u64,
}

impl SinkStats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &SinkStats) {
        self.batches += other.batches;
        self.requests += other.requests;
        self.retries += other.retries;
        self.transport_errors += other.transport_errors;
        self.records_delivered += other.records_delivered;
        self.records_rejected += other.records_rejected;
        self.bytes_uncompressed += other.bytes_uncompressed;
        self.bytes_sent += other.bytes_sent;
        self.responses_not_cluedin_json += other.responses_not_cluedin_json;
        for (s, n) in &other.status {
            *self.status.entry(*s).or_default() += n;
        }
    }
}

/// The result of delivering one batch: each of its records is in exactly one of `delivered`
/// (inside one request) and `rejected`.
#[derive(Debug, Clone)]
pub struct PayloadOutcome {
    /// The batch id.
    pub batch_id: u64,
    /// The endpoint.
    pub endpoint: Arc<Endpoint>,
    /// Requests that stored records.
    pub delivered: Vec<DeliveredRequest>,
    /// Records refused.
    pub rejected: Vec<RejectedRecord>,
    /// Counters of this batch.
    pub stats: SinkStats,
}

impl PayloadOutcome {
    /// Number of records delivered.
    pub fn delivered_count(&self) -> usize {
        self.delivered.iter().map(|d| d.records.len()).sum()
    }

    /// All warnings of the batch.
    pub fn warnings(&self) -> impl Iterator<Item = &RowWarning> {
        self.delivered.iter().flat_map(|d| d.warnings.iter())
    }
}
