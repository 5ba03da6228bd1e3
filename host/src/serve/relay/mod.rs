//! The Snowflake External Function relay of `serve`: `POST /external-function/{name}`.
//!
//! Snowflake sends `{"data": [[row_number, arg1, …], …]}` (gzip allowed) with the
//! `sf-external-function-*` headers (`docs/reference/external-function.md`). The arguments become the
//! columns of one Arrow batch: an OBJECT argument's keys are columns, any other argument is
//! column `ARG<i>` (its position). Types are inferred per column over the request
//! ([`crate::source::json`], shared with `plugin test --json-input`): JSON
//! booleans → boolean, integers → integer, other numbers → float, strings that all read as
//! `YYYY-MM-DD[ T]HH:MM:SS[.fff…]` → timestamp (wall clock, µs) or as `YYYY-MM-DD` → date,
//! other strings → text, objects and arrays → JSON text; a mix → text. The configured plugin
//! transforms the batch (one plugin instance per schema, pooled; at most `workers` at once),
//! and the records of concurrent requests share request bodies ([`coalesce`]) sent through
//! one [`CluedInSink`](crate::sink::CluedInSink).
//!
//! The answer is `{"data": [[row_number, result], …]}`, one result per input row in input
//! order: `{"status":"delivered","receiptId":…}`, `{"status":"filtered"}` or
//! `{"status":"rejected","stage":"plugin|encode|endpoint","message":…}`. Rejected rows are
//! also written to the dead letters (`file` = the route key
//! `external-function/<name>/<query-id>`).
//!
//! Idempotency and async mode: results are kept by `sf-external-function-query-batch-id`, in
//! memory and in the state store (`relay/<name>/<batch-id>.json`, written before the 200).
//! A batch id seen before is never delivered again: its stored result is the answer. When
//! delivery takes longer than the sync wait, the answer is 202 (empty body) and Snowflake
//! polls `GET /external-function/{name}` with the same batch id: 202 while it runs, then 200
//! with the result. A delivery that failed fatally (401/403/404 from CluedIn, retries
//! exhausted) answers 502 and is not kept, so Snowflake's retry runs it again.
//!
//! Authentication: with a relay secret, requests must carry it in header
//! `sf-custom-stagepush-token` (the API integration's `HEADERS = ('stagepush-token' = …)`
//! arrives as `sf-custom-stagepush-token`) or `X-Stagepush-Token`; otherwise 401. Bodies over
//! the limit (compressed or not) are 413 with a JSON error.
//!
//! Memory: requests are admitted by bytes in flight ([`admission`]): one that does not fit
//! waits, then gets 429 with `Retry-After`; memory goes back to the system after a burst.
//!
//! | module | does |
//! |---|---|
//! | `routes` | `POST` and `GET`: authentication, body limits, admission, idempotency, the sync wait |
//! | [`admission`] | the byte budget of requests in flight |
//! | `columns` | Snowflake's rows → one Arrow batch (types inferred per column) |
//! | `batch` | one request through the plugin and the sink; dead letters; the kept result |
//! | [`coalesce`] | one shared batcher for the records of concurrent requests |

pub mod admission;
mod batch;
pub mod coalesce;
mod columns;
mod routes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, watch};

use crate::bindings::types::ColumnSchema;
use crate::deadletter::DeadLetterWriter;
use crate::job::Job;
use crate::pipeline::transformer::Transformer;
use crate::sink::SinkError;
use crate::source::Secret;
use crate::sync::lock;

use super::metrics::Metrics;
use coalesce::{Coalescer, SinkSlot};

pub use admission::{DEFAULT_ADMISSION_WAIT, DEFAULT_MAX_INFLIGHT_BYTES};
pub use coalesce::DEFAULT_LINGER;

pub(crate) use routes::handle;

/// The route prefix: `/external-function/{name}`.
pub const ROUTE_PREFIX: &str = "/external-function/";
/// The header carrying the relay secret (API gateways forward the integration's custom
/// header `stagepush-token` under this name).
pub const SECRET_HEADER: &str = "sf-custom-stagepush-token";
/// Snowflake's idempotency key, also used to poll.
pub const BATCH_ID_HEADER: &str = "sf-external-function-query-batch-id";
/// Snowflake's query id (part of the route key).
pub const QUERY_ID_HEADER: &str = "sf-external-function-current-query-id";
/// Default for how long a request waits for its delivery before answering 202.
pub const DEFAULT_SYNC_WAIT: Duration = Duration::from_secs(20);
/// Default largest request body, compressed and decompressed: Snowflake sends
/// `{"data": [[row_number, args…], …]}` with at most the function's `MAX_BATCH_ROWS` rows
/// (`docs/reference/external-function.md`); 4 MiB holds the 500 rows `deploy/snowflake-external-function.md`
/// sets at up to 8 KiB of JSON each, and equals the sink's default request body
/// (`sink::config::DEFAULT_BATCH_MAX_BYTES`).
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

type Body = Full<Bytes>;

/// How the relay answers (`--relay-*` flags).
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// How long a POST waits for its delivery before answering 202.
    pub sync_wait: Duration,
    /// The secret requests must carry; `None`: the serve `--auth-token-env` secret, if any.
    pub secret: Option<Secret>,
    /// Largest body accepted (compressed and decompressed).
    pub max_body_bytes: usize,
    /// How long open request bodies wait for the records of requests whose plugin is still
    /// running (see [`coalesce`]).
    pub linger: Duration,
    /// Budget of decompressed request bytes in flight (see [`admission`]); at least
    /// `max_body_bytes`.
    pub max_inflight_bytes: usize,
    /// How long a request waits to be admitted before it is answered 429.
    pub admission_wait: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            sync_wait: DEFAULT_SYNC_WAIT,
            secret: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            linger: DEFAULT_LINGER,
            max_inflight_bytes: DEFAULT_MAX_INFLIGHT_BYTES,
            admission_wait: DEFAULT_ADMISSION_WAIT,
        }
    }
}

/// A finished request: the status and body to answer (every poll and replay gets the same).
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: Bytes,
}

type Slot = watch::Receiver<Option<Arc<Answer>>>;

/// Input schemas whose idle plugin instances are kept (the oldest go first).
const MAX_SCHEMAS: usize = 32;

/// How long finished results stay in memory (the state keeps them for later replays).
const KEEP_IN_MEMORY: Duration = Duration::from_secs(15 * 60);
/// At most this many bytes of finished results stay in memory (the oldest go first; the
/// state keeps them all): the answers of a long query must not pile up for 15 minutes.
const KEEP_IN_MEMORY_BYTES: usize = 16 * 1024 * 1024;
/// Entries in the batch map before it is pruned (unless its answers outgrow
/// [`KEEP_IN_MEMORY_BYTES`] first).
const PRUNE_AT_ENTRIES: usize = 256;

/// A batch's (future) answer and when it started.
struct Entry {
    slot: Slot,
    started: std::time::Instant,
}

/// The relay's shared state.
pub(crate) struct Relay {
    job: Arc<Job>,
    options: RelayOptions,
    auth: Option<[u8; 32]>,
    metrics: Arc<Metrics>,
    /// The shared batcher, made with the first sink.
    coalescer: Mutex<Option<Arc<Coalescer<SinkSlot>>>>,
    /// Idle plugin instances, per input schema.
    transformers: Mutex<Vec<(Vec<ColumnSchema>, Vec<Transformer>)>>,
    cpu: Semaphore,
    /// The byte budget of requests in flight.
    admission: admission::Admission,
    /// Route key `<name>/<batch-id>` → its (future) answer.
    batches: Mutex<HashMap<String, Entry>>,
    /// Bytes of finished answers added to `batches` since it was last pruned (about).
    kept_bytes: std::sync::atomic::AtomicUsize,
    dead_letters: Mutex<Option<DeadLetterWriter>>,
}

impl Relay {
    /// `fallback_secret`: the `/events` secret, used when the relay has none of its own.
    pub fn new(
        job: Arc<Job>,
        options: RelayOptions,
        fallback_secret: Option<&Secret>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let auth = options
            .secret
            .as_ref()
            .or(fallback_secret)
            .map(|s| digest(s.expose_secret().as_bytes()));
        let workers = job.workers.max(1);
        let admission = admission::Admission::new(
            options.max_inflight_bytes,
            options.admission_wait,
            Arc::clone(&metrics),
        );
        Self {
            job,
            options,
            auth,
            metrics,
            coalescer: Mutex::new(None),
            transformers: Mutex::new(Vec::new()),
            cpu: Semaphore::new(workers),
            admission,
            batches: Mutex::new(HashMap::new()),
            kept_bytes: std::sync::atomic::AtomicUsize::new(0),
            dead_letters: Mutex::new(None),
        }
    }

    fn authorized(&self, req: &Request<Incoming>) -> bool {
        let Some(expected) = &self.auth else {
            return true;
        };
        [SECRET_HEADER, super::http::TOKEN_HEADER]
            .iter()
            .filter_map(|name| req.headers().get(*name))
            .any(|given| constant_time_eq(&digest(given.as_bytes()), expected))
    }

    /// The shared batcher (made on first use: building the sink can fail).
    fn coalescer(&self) -> Result<Arc<Coalescer<SinkSlot>>, SinkError> {
        let mut coalescer = self.coalescer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = coalescer.as_ref() {
            return Ok(Arc::clone(c));
        }
        let job = Arc::clone(&self.job);
        let slot = SinkSlot::new(move || job.sink());
        let sink = slot.get()?;
        let made = Coalescer::new(
            slot,
            sink.batcher(),
            sink.max_in_flight(),
            self.options.linger,
            Arc::clone(&self.metrics),
        );
        *coalescer = Some(Arc::clone(&made));
        Ok(made)
    }

    fn take_transformer(&self, schema: &[ColumnSchema]) -> Option<Transformer> {
        lock(&self.transformers)
            .iter_mut()
            .find(|(s, _)| s.as_slice() == schema)
            .and_then(|(_, idle)| idle.pop())
    }

    fn give_back(&self, transformer: Transformer) {
        let mut transformers = lock(&self.transformers);
        match transformers
            .iter_mut()
            .find(|(s, _)| s.as_slice() == transformer.schema())
        {
            Some((_, idle)) => idle.push(transformer),
            None => {
                // Bound the instances kept for schemas seen once.
                if transformers.len() >= MAX_SCHEMAS {
                    transformers.remove(0);
                }
                transformers.push((transformer.schema().to_vec(), vec![transformer]));
            }
        }
    }
}

impl Relay {
    /// Counts a finished answer kept in the batch map.
    fn kept(&self, bytes: usize) {
        self.kept_bytes
            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Drops finished answers older than [`KEEP_IN_MEMORY`], then the oldest finished ones
    /// while they hold more than [`KEEP_IN_MEMORY_BYTES`] (when the map is large or its
    /// answers may be).
    fn prune(&self, batches: &mut HashMap<String, Entry>) {
        use std::sync::atomic::Ordering;
        if batches.len() < PRUNE_AT_ENTRIES
            && self.kept_bytes.load(Ordering::Relaxed) <= KEEP_IN_MEMORY_BYTES
        {
            return;
        }
        // A running delivery stays; one whose task ended without an answer (its sender is
        // gone) is lost and goes like a finished one.
        batches.retain(|_, e| {
            (e.slot.borrow().is_none() && e.slot.has_changed().is_ok())
                || e.started.elapsed() < KEEP_IN_MEMORY
        });
        let mut finished: Vec<(std::time::Instant, usize, String)> = batches
            .iter()
            .filter_map(|(key, e)| {
                let len = e.slot.borrow().as_ref().map(|a| a.body.len())?;
                Some((e.started, len, key.clone()))
            })
            .collect();
        let mut total: usize = finished.iter().map(|f| f.1).sum();
        if total > KEEP_IN_MEMORY_BYTES {
            finished.sort_unstable_by_key(|f| f.0);
            for (_, len, key) in finished {
                if total <= KEEP_IN_MEMORY_BYTES {
                    break;
                }
                batches.remove(&key);
                total -= len;
            }
        }
        self.kept_bytes.store(total, Ordering::Relaxed);
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn json_answer(status: StatusCode, value: &Value) -> Response<Body> {
    respond(status, Bytes::from(value.to_string()))
}

fn respond(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    json_answer(status, &json!({ "error": message.into() }))
}

fn accepted() -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::ACCEPTED;
    response
}

fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Whether `name` may name a relay route.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name != "."
        && name != ".."
}

/// Where the state keeps the result of batch `batch_id` of route `name`.
pub fn state_path(name: &str, batch_id: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b':');
    format!("relay/{name}/{}.json", utf8_percent_encode(batch_id, KEEP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_ids_are_safe_state_paths() {
        assert_eq!(
            state_path("customers", "01b0:1:1:0:0"),
            "relay/customers/01b0:1:1:0:0.json"
        );
        assert_eq!(state_path("c", "../x/y"), "relay/c/%2E%2E%2Fx%2Fy.json");
        assert!(valid_name("customers"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(".."));
        assert!(!valid_name(""));
    }
}
