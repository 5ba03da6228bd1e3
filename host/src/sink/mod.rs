//! The CluedIn Ingestion Endpoint sink: batches of encoded JSON records, gzip, `POST`, retries.
//!
//! Built against the endpoint's documented behaviour (`docs/reference/cluedin-endpoint.md`) and laid out
//! like Vector's `sinks/http` (small modules, retry policy as data):
//!
//! | module | does |
//! |---|---|
//! | [`config`] | [`SinkConfig`]: strict (`deny_unknown_fields`), defaults as named constants |
//! | [`batcher`] | [`Batcher`]: routes records to endpoints, cuts bodies by rows **and** bytes |
//! | [`body`] | framing (`json-array` / `ndjson`) and gzip |
//! | [`request`] | the HTTP request: method, headers, request id |
//! | [`response`] | lenient parse of the endpoint's answer ([`IngestResponse`]) |
//! | [`redirect`] | what a 3xx is reported as (the `Location`, redacted); no redirect is followed |
//! | [`concurrency`] | [`concurrency::Limiter`]: requests in flight, adaptive (AIMD on round trips and 429/503/timeouts) unless pinned |
//! | [`retries`] | [`RetryPolicy`] (capped exponential back-off, full jitter, `Retry-After`) and [`RetryAction`] |
//! | [`service`] | [`CluedInSink`]: delivery of a [`Payload`] (retries, 413 split, 400 row removal / bisection) and the concurrent driver |
//! | [`outcome`] | what comes back: [`PayloadOutcome`] (delivered, rejected, warnings, stats) |
//!
//! ## How the pipeline uses it
//!
//! ```text
//! CPU worker:   batcher.push(record)? -> Option<Payload>      (framing + gzip run here, on the caller's thread)
//!               batcher.flush()?      -> Vec<Payload>         (at the end of a file / of the run)
//! tokio:        sink.run(batch_rx, outcome_tx).await       (requests in flight: the adaptive limit)
//!          or   sink.deliver(batch).await -> Result<PayloadOutcome, SinkError>
//! ```
//!
//! A [`PayloadOutcome`] names every record of its batch exactly once: delivered (with the
//! `receiptId` of the request that stored it) or rejected (with status, message, receipt).
//! An `Err(SinkError)` is fatal for the run (401, 403, 404, a 3xx, retries exhausted): stop,
//! and do not mark the batch's files done, so a rerun resends them (at-least-once). Its
//! `Display` is the cause, written for the person running stagepush (the caller adds that the
//! run stopped).
//!
//! A 2xx whose body is not CluedIn's JSON (an HTML page, an empty body: a proxy answered) is
//! taken as delivered — the server at the URL posted to acknowledged the request — but never
//! silently: the first per endpoint is logged as a warning and every one is counted
//! ([`SinkStats::responses_not_cluedin_json`], in the run and retry reports).

pub mod batcher;
pub mod body;
pub mod concurrency;
pub mod config;
pub mod outcome;
pub mod redirect;
pub mod request;
pub mod response;
pub mod retries;
pub mod service;

use std::sync::Arc;

pub use batcher::{Batcher, Endpoint, Payload, RecordMeta};
pub use body::{BodyFormat, Compression};
pub use config::{BatchConfig, RetryConfig, SinkConfig};
pub use outcome::{DeliveredRequest, PayloadOutcome, RejectedRecord, RowWarning, SinkStats};
pub use response::{IngestResponse, RowMessage, parse_response};
pub use retries::{RetryAction, RetryPolicy, parse_retry_after};
pub use service::CluedInSink;

pub use crate::storage::ApiToken;

/// Where an input row came from: the file and its 0-based row number in that file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowRef {
    /// The source file (object key or path), shared by all rows of the file.
    pub file: Arc<str>,
    /// 0-based row number in the file.
    pub row: u64,
}

/// One encoded record on its way to the endpoint.
///
/// [`Batcher::push_json`] takes the same parts by reference, so an encoder that reuses one
/// scratch buffer allocates nothing per record (the batcher copies the JSON into the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireRecord {
    /// The input row the record was made from.
    pub origin: RowRef,
    /// The entity type (routes the record to an endpoint).
    pub entity_type: Arc<str>,
    /// One complete JSON object, UTF-8, without a trailing newline.
    pub json: Vec<u8>,
}

/// Errors of the sink layer. Every variant except [`SinkError::NoRoute`] stops the run.
///
/// None of them carries the API token.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The configuration is invalid.
    #[error("invalid sink configuration: {0}")]
    Config(String),
    /// No endpoint is configured for a record's entity type and there is no default endpoint.
    #[error("no endpoint for entity type {entity_type:?} and no default endpoint is configured")]
    NoRoute {
        /// The entity type without a route.
        entity_type: String,
    },
    /// 401: the token is missing, invalid or expired.
    #[error(
        "the endpoint refused the API token (401 Unauthorized) at {endpoint}: the token is \
         missing, invalid or expired (CluedIn: Administration → API Tokens)"
    )]
    Unauthorized {
        /// The endpoint URL.
        endpoint: String,
    },
    /// 403: the token is valid but not allowed to ingest into this endpoint.
    #[error(
        "the endpoint refused access (403 Forbidden) at {endpoint}: the API token is not allowed \
         to ingest into this endpoint"
    )]
    Forbidden {
        /// The endpoint URL.
        endpoint: String,
    },
    /// 404: the endpoint does not exist; every further batch would fail the same way.
    #[error(
        "no ingestion endpoint at {endpoint} (404 Not Found): check the endpoint id and the \
         host (SaaS uses app.<domain>)"
    )]
    EndpointNotFound {
        /// The endpoint URL.
        endpoint: String,
    },
    /// A 3xx: the sink follows no redirect (a sign-in page answering 200 is no delivery; a
    /// 307/308 would send the records to another host).
    #[error(
        "the endpoint answered {status} redirecting to {location}: check the URL; stagepush \
         does not follow redirects (it posted to {endpoint})"
    )]
    Redirect {
        /// The endpoint URL.
        endpoint: String,
        /// The 3xx status.
        status: u16,
        /// The `Location`, resolved against the endpoint and redacted
        /// ([`redirect::describe_location`]).
        location: String,
    },
    /// Retryable failures (408, 429, 5xx, connection errors, timeouts) outlasted the retry budget.
    #[error(
        "the endpoint kept failing: gave up on {endpoint} after {attempts} attempts in \
         {elapsed_secs:.1} s; last failure: {last}"
    )]
    RetriesExhausted {
        /// The endpoint URL.
        endpoint: String,
        /// Requests made for the last part of the batch.
        attempts: u32,
        /// Seconds spent on it.
        elapsed_secs: f64,
        /// The last failure (status and message, or the transport error).
        last: String,
    },
    /// The endpoint's host cannot be reached (connection refused, name not found, no route),
    /// still after [`retries::CONNECT_RETRIES`] brief retries.
    #[error("{cause} ({attempts} attempts in {elapsed_secs:.1} s; posting to {endpoint})")]
    CannotConnect {
        /// The endpoint URL.
        endpoint: String,
        cause: ConnectFailure,
        attempts: u32,
        elapsed_secs: f64,
    },
    /// The HTTP client could not be built or a request could not be formed.
    #[error("HTTP client: {0}")]
    Client(String),
    /// Compressing a body failed.
    #[error("could not encode a request body: {0}")]
    Encode(#[from] std::io::Error),
    /// Another batch failed fatally; this one was abandoned.
    #[error("the sink stopped after a fatal error in another batch")]
    Stopped,
    /// The outcome channel's receiver was dropped.
    #[error("the outcome receiver was dropped")]
    OutcomeReceiverDropped,
    /// A delivery task panicked or was cancelled (a bug).
    #[error("internal error in the sink: {0}")]
    Internal(String),
}

/// Why no connection to an endpoint's host could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectFailure {
    /// Nothing accepts connections on the port.
    #[error(
        "cannot connect to {address}: connection refused (is the host up, and the port right?)"
    )]
    Refused {
        /// `host:port`.
        address: String,
    },
    /// No route to the host or its network.
    #[error("cannot connect to {address}: {message}")]
    Unreachable {
        /// `host:port`.
        address: String,
        /// The operating system's message.
        message: String,
    },
    /// The host name does not resolve.
    #[error("{host}: DNS lookup failed: {message} (check the host name in the endpoint URL)")]
    Dns {
        host: String,
        /// The resolver's message.
        message: String,
    },
}

/// Whether CluedIn rejects `c` in a value (`docs/reference/cluedin-endpoint.md`); the wire
/// encoder applies this rule. (The mock endpoint has its own reading of it, to check this one.)
pub use crate::wire::json::is_unsupported_char;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_redacted_in_debug_and_display() {
        let t = ApiToken::new("s3cr3t-token-value");
        assert_eq!(format!("{t:?}"), "ApiToken([redacted])");
        assert_eq!(t.to_string(), "[redacted]");
        assert_eq!(t.expose_secret(), "s3cr3t-token-value");
    }
}
