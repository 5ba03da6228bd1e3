//! The Snowflake External Function relay of `serve`: `POST /external-function/{name}`.
//!
//! Snowflake sends `{"data": [[row_number, arg1, …], …]}` (gzip allowed) with the
//! `sf-external-function-*` headers (`shared/docs/FACTS.md` §4). The arguments become the
//! columns of one Arrow batch: an OBJECT argument's keys are columns, any other argument is
//! column `ARG<i>` (its position). Types are inferred per column over the request: JSON
//! booleans → boolean, integers → integer, other numbers → float, strings that all read as
//! `YYYY-MM-DD[ T]HH:MM:SS[.fff…]` → timestamp (wall clock, µs) or as `YYYY-MM-DD` → date,
//! other strings → text, objects and arrays → JSON text; a mix → text. The configured plugin
//! transforms the batch (one plugin instance per schema, pooled; at most `workers` at once),
//! and the records go to the endpoint through one [`CluedInSink`] shared by every request.
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

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit as ArrowTimeUnit};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, watch};

use crate::bindings::types::{ColumnSchema, ColumnType, ScalarType, TimeUnit, TimestampType};
use crate::deadletter::{DeadLetter, DeadLetterWriter};
use crate::job::Job;
use crate::plugin::Runner;
use crate::sink::{CluedInSink, RowRef, SinkError};
use crate::source::Secret;
use crate::state::PutMode;
use crate::transform::{ArrowInput, EncodedBatch, Encoder, RowStage};

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
/// Default largest request body, compressed and decompressed.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

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
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            sync_wait: DEFAULT_SYNC_WAIT,
            secret: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
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
    sink: Mutex<Option<CluedInSink>>,
    /// Idle plugin instances, per input schema.
    runners: Mutex<Vec<(Vec<ColumnSchema>, Vec<Runner>)>>,
    cpu: Semaphore,
    /// Route key `<name>/<batch-id>` → its (future) answer.
    batches: Mutex<HashMap<String, Entry>>,
    dead_letters: Mutex<Option<DeadLetterWriter>>,
}

impl Relay {
    /// `fallback_secret`: the `/events` secret, used when the relay has none of its own.
    pub fn new(job: Arc<Job>, options: RelayOptions, fallback_secret: Option<&Secret>) -> Self {
        let auth = options
            .secret
            .as_ref()
            .or(fallback_secret)
            .map(|s| digest(s.expose().as_bytes()));
        let workers = job.workers.max(1);
        Self {
            job,
            options,
            auth,
            sink: Mutex::new(None),
            runners: Mutex::new(Vec::new()),
            cpu: Semaphore::new(workers),
            batches: Mutex::new(HashMap::new()),
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

    /// The shared sink (a new one after a fatal error stopped the previous).
    fn sink(&self) -> Result<CluedInSink, SinkError> {
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        match sink.as_ref() {
            Some(s) if !s.is_stopped() => Ok(s.clone()),
            _ => {
                let fresh = self.job.sink()?;
                *sink = Some(fresh.clone());
                Ok(fresh)
            }
        }
    }

    fn take_runner(&self, schema: &[ColumnSchema]) -> Option<Runner> {
        let mut runners = self.runners.lock().unwrap_or_else(|p| p.into_inner());
        runners
            .iter_mut()
            .find(|(s, _)| s.as_slice() == schema)
            .and_then(|(_, idle)| idle.pop())
    }

    fn give_back(&self, schema: Vec<ColumnSchema>, runner: Runner) {
        let mut runners = self.runners.lock().unwrap_or_else(|p| p.into_inner());
        match runners.iter_mut().find(|(s, _)| *s == schema) {
            Some((_, idle)) => idle.push(runner),
            None => {
                // Bound the instances kept for schemas seen once.
                if runners.len() >= MAX_SCHEMAS {
                    runners.remove(0);
                }
                runners.push((schema, vec![runner]));
            }
        }
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

/// `POST` / `GET /external-function/{name}`.
pub(crate) async fn handle(relay: &Arc<Relay>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    let name = path
        .strip_prefix(ROUTE_PREFIX)
        .unwrap_or_default()
        .to_owned();
    if !valid_name(&name) {
        return error(
            StatusCode::NOT_FOUND,
            format!("no route {path}: use /external-function/<name> (letters, digits, - _ .)"),
        );
    }
    if !relay.authorized(&req) {
        tracing::warn!(
            "{} {path}: refused, no valid secret (header {SECRET_HEADER})",
            req.method()
        );
        return error(
            StatusCode::UNAUTHORIZED,
            format!(
                "a valid secret is required in header {SECRET_HEADER} (the API integration's HEADERS = ('stagepush-token' = '…'))"
            ),
        );
    }
    let batch_id = header(&req, BATCH_ID_HEADER).map(str::to_owned);
    match *req.method() {
        Method::POST => post(relay, name, batch_id, req).await,
        Method::GET => match batch_id {
            Some(batch_id) => poll(relay, &name, &batch_id).await,
            None => error(
                StatusCode::BAD_REQUEST,
                format!("GET polls a batch: header {BATCH_ID_HEADER} is required"),
            ),
        },
        _ => {
            let mut response = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed (allowed: POST, GET)",
            );
            response
                .headers_mut()
                .insert(hyper::header::ALLOW, HeaderValue::from_static("POST, GET"));
            response
        }
    }
}

/// The stored result of a batch, if the state has one.
async fn stored(relay: &Arc<Relay>, name: &str, batch_id: &str) -> Option<Bytes> {
    let path = state_path(name, batch_id);
    let job = Arc::clone(&relay.job);
    let got = tokio::task::spawn_blocking(move || job.state.get(&path)).await;
    match got {
        Ok(Ok(Some(doc))) => Some(Bytes::from(doc.bytes)),
        Ok(Ok(None)) => None,
        Ok(Err(e)) => {
            tracing::warn!("relay: cannot read the stored result of batch {batch_id}: {e}");
            None
        }
        Err(_) => None,
    }
}

async fn poll(relay: &Arc<Relay>, name: &str, batch_id: &str) -> Response<Body> {
    let key = format!("{name}/{batch_id}");
    let slot = relay
        .batches
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
        .map(|e| e.slot.clone());
    if let Some(slot) = slot {
        return match slot.borrow().as_ref() {
            Some(answer) => respond(answer.status, answer.body.clone()),
            None => accepted(),
        };
    }
    match stored(relay, name, batch_id).await {
        Some(body) => respond(StatusCode::OK, body),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no batch {batch_id} on /external-function/{name}"),
        ),
    }
}

/// Reads the body within the limit, gunzipping it when it says so.
async fn read_body(relay: &Relay, req: Request<Incoming>) -> Result<Bytes, Box<Response<Body>>> {
    let limit = relay.options.max_body_bytes;
    let too_large = || {
        Box::new(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is larger than {limit} bytes: lower MAX_BATCH_ROWS of the external function (or raise --relay-max-body-bytes)"
            ),
        ))
    };
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let gzip = req
        .headers()
        .get(hyper::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let body = match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(too_large());
        }
        Err(e) => {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}"),
            )));
        }
    };
    if !gzip {
        return Ok(body);
    }
    let mut out = Vec::new();
    let decoder = flate2::read::MultiGzDecoder::new(&body[..]);
    match decoder.take(limit as u64 + 1).read_to_end(&mut out) {
        Ok(_) if out.len() > limit => Err(too_large()),
        Ok(_) => Ok(Bytes::from(out)),
        Err(e) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("the body says Content-Encoding: gzip but does not decompress: {e}"),
        ))),
    }
}

async fn post(
    relay: &Arc<Relay>,
    name: String,
    batch_id: Option<String>,
    req: Request<Incoming>,
) -> Response<Body> {
    let query_id = header(&req, QUERY_ID_HEADER).map(str::to_owned);
    let body = match read_body(relay, req).await {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let rows = match parse_rows(&body) {
        Ok(rows) => rows,
        Err(message) => {
            tracing::warn!("relay {name}: refused a request: {message}");
            return error(StatusCode::BAD_REQUEST, message);
        }
    };
    let (batch_id, idempotent) = match batch_id {
        Some(id) => (id, true),
        None => (uuid::Uuid::new_v4().to_string(), false),
    };
    let key = format!("{name}/{batch_id}");
    let existing = |relay: &Relay| -> Option<Slot> {
        let batches = relay.batches.lock().unwrap_or_else(|p| p.into_inner());
        let slot = &batches.get(&key)?.slot;
        // A batch that failed fatally runs again.
        let failed = slot
            .borrow()
            .as_ref()
            .is_some_and(|a| a.status != StatusCode::OK);
        (!failed).then(|| slot.clone())
    };
    let slot = match existing(relay) {
        Some(slot) => {
            tracing::info!("relay {name}: batch {batch_id} seen before: not delivered again");
            slot
        }
        None => {
            if idempotent && let Some(body) = stored(relay, &name, &batch_id).await {
                tracing::info!(
                    "relay {name}: batch {batch_id} was delivered before: its stored result is the answer"
                );
                return respond(StatusCode::OK, body);
            }
            let mut batches = relay.batches.lock().unwrap_or_else(|p| p.into_inner());
            let running = batches
                .get(&key)
                .map(|e| &e.slot)
                .filter(|s| {
                    s.borrow()
                        .as_ref()
                        .is_none_or(|a| a.status == StatusCode::OK)
                })
                .cloned();
            match running {
                Some(slot) => slot,
                None => {
                    let (tx, rx) = watch::channel(None);
                    if batches.len() >= 256 {
                        batches.retain(|_, e| {
                            e.slot.borrow().is_none() || e.started.elapsed() < KEEP_IN_MEMORY
                        });
                    }
                    batches.insert(
                        key.clone(),
                        Entry {
                            slot: rx.clone(),
                            started: std::time::Instant::now(),
                        },
                    );
                    drop(batches);
                    let route_key = format!(
                        "external-function/{name}/{}",
                        query_id.as_deref().unwrap_or(&batch_id)
                    );
                    let job = Batch {
                        name: name.clone(),
                        batch_id: batch_id.clone(),
                        route_key,
                        rows,
                    };
                    let relay = Arc::clone(relay);
                    tokio::spawn(async move {
                        let answer = run_batch(&relay, job).await;
                        let _ = tx.send(Some(Arc::new(answer)));
                    });
                    rx
                }
            }
        }
    };
    let mut slot = slot;
    let waited = tokio::time::timeout(relay.options.sync_wait, async {
        slot.wait_for(Option::is_some).await.map(|a| a.clone())
    })
    .await;
    match waited {
        Ok(Ok(Some(answer))) => respond(answer.status, answer.body.clone()),
        Ok(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the delivery of this batch stopped (the server is shutting down)",
        ),
        Err(_) => {
            tracing::debug!("relay {name}: batch {batch_id} still running: 202");
            accepted()
        }
    }
}

/// One input row: Snowflake's row number and the row's columns.
#[derive(Debug)]
struct InputRow {
    number: Value,
    args: Vec<Value>,
}

/// Parses `{"data": [[row_number, args…], …]}`.
fn parse_rows(body: &[u8]) -> Result<Vec<InputRow>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Some(Value::Array(data)) = value.get("data") else {
        return Err(r#"the body must be {"data": [[row_number, args…], …]}"#.into());
    };
    data.iter()
        .enumerate()
        .map(|(i, row)| match row {
            Value::Array(cells) if cells.first().is_some_and(Value::is_number) => Ok(InputRow {
                number: cells[0].clone(),
                args: cells[1..].to_vec(),
            }),
            _ => Err(format!(
                "data[{i}] is not [row_number, args…] with a numeric row number"
            )),
        })
        .collect()
}

/// The columns of the request's rows, with inferred types.
struct Columns {
    schema: Vec<ColumnSchema>,
    batch: RecordBatch,
    /// Each row as a JSON object of its columns (dead letters).
    inputs: Vec<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Timestamp,
    Date,
    Text,
    Json,
}

fn parse_timestamp(s: &str) -> Option<chrono::NaiveDateTime> {
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
}

fn parse_date(s: &str) -> Option<chrono::NaiveDate> {
    if s.len() != 10 {
        return None;
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

fn kind_of(value: &Value) -> Kind {
    match value {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if n.is_i64() => Kind::Int,
        Value::Number(_) => Kind::Float,
        Value::String(s) if parse_timestamp(s).is_some() => Kind::Timestamp,
        Value::String(s) if parse_date(s).is_some() => Kind::Date,
        Value::String(_) => Kind::Text,
        Value::Array(_) | Value::Object(_) => Kind::Json,
    }
}

fn merge(a: Kind, b: Kind) -> Kind {
    match (a, b) {
        (Kind::Null, k) | (k, Kind::Null) => k,
        (a, b) if a == b => a,
        (Kind::Int, Kind::Float) | (Kind::Float, Kind::Int) => Kind::Float,
        _ => Kind::Text,
    }
}

/// Builds the batch: OBJECT arguments' keys and positional `ARG<i>` columns, types inferred.
fn columns(rows: &[InputRow]) -> Result<Columns, String> {
    let width = rows.iter().map(|r| r.args.len()).max().unwrap_or(0);
    let object_arg: Vec<bool> = (0..width)
        .map(|i| {
            rows.iter()
                .any(|r| r.args.get(i).is_some_and(Value::is_object))
        })
        .collect();
    let mut names: Vec<String> = Vec::new();
    let mut known: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut inputs = Vec::with_capacity(rows.len());
    for row in rows {
        let mut object = Map::new();
        // Columns in argument order (an OBJECT's keys as parsed), new names last.
        let mut seen = |name: &String| {
            if known.insert(name.clone()) {
                names.push(name.clone());
            }
        };
        for (i, arg) in row.args.iter().enumerate() {
            if object_arg[i] {
                if let Value::Object(fields) = arg {
                    for (k, v) in fields {
                        seen(k);
                        object.insert(k.clone(), v.clone());
                    }
                }
            } else {
                let name = format!("ARG{i}");
                seen(&name);
                object.insert(name, arg.clone());
            }
        }
        inputs.push(Value::Object(object));
    }
    let mut fields = Vec::with_capacity(names.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(names.len());
    let mut schema = Vec::with_capacity(names.len());
    for name in &names {
        let cells: Vec<&Value> = inputs
            .iter()
            .map(|o| o.get(name).unwrap_or(&Value::Null))
            .collect();
        let kind = cells.iter().fold(Kind::Null, |k, v| merge(k, kind_of(v)));
        let (array, data_type, scalar): (ArrayRef, DataType, ScalarType) = match kind {
            Kind::Bool => (
                Arc::new(BooleanArray::from(
                    cells.iter().map(|v| v.as_bool()).collect::<Vec<_>>(),
                )),
                DataType::Boolean,
                ScalarType::Boolean,
            ),
            Kind::Int => (
                Arc::new(Int64Array::from(
                    cells.iter().map(|v| v.as_i64()).collect::<Vec<_>>(),
                )),
                DataType::Int64,
                ScalarType::Integer,
            ),
            Kind::Float => (
                Arc::new(Float64Array::from(
                    cells.iter().map(|v| v.as_f64()).collect::<Vec<_>>(),
                )),
                DataType::Float64,
                ScalarType::Float,
            ),
            Kind::Timestamp => (
                Arc::new(TimestampMicrosecondArray::from(
                    cells
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .and_then(parse_timestamp)
                                .map(|t| t.and_utc().timestamp_micros())
                        })
                        .collect::<Vec<_>>(),
                )),
                DataType::Timestamp(ArrowTimeUnit::Microsecond, None),
                ScalarType::Timestamp(TimestampType {
                    unit: TimeUnit::Micros,
                    wall_clock: true,
                }),
            ),
            Kind::Date => (
                Arc::new(Date32Array::from(
                    cells
                        .iter()
                        .map(|v| {
                            v.as_str().and_then(parse_date).map(|d| {
                                (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
                                    .unwrap_or_default())
                                .num_days() as i32
                            })
                        })
                        .collect::<Vec<_>>(),
                )),
                DataType::Date32,
                ScalarType::Date,
            ),
            Kind::Null | Kind::Text | Kind::Json => (
                Arc::new(StringArray::from(
                    cells
                        .iter()
                        .map(|v| match v {
                            Value::Null => None,
                            Value::String(s) => Some(s.clone()),
                            other => Some(other.to_string()),
                        })
                        .collect::<Vec<_>>(),
                )),
                DataType::Utf8,
                if kind == Kind::Json {
                    ScalarType::Json
                } else {
                    ScalarType::Text
                },
            ),
        };
        fields.push(Field::new(name, data_type, true));
        arrays.push(array);
        schema.push(ColumnSchema {
            name: name.clone(),
            type_: ColumnType::Scalar(scalar),
            nullable: true,
        });
    }
    let batch = RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        arrays,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows.len())),
    )
    .map_err(|e| format!("cannot build the batch: {e}"))?;
    Ok(Columns {
        schema,
        batch,
        inputs,
    })
}

/// A request being delivered.
struct Batch {
    name: String,
    batch_id: String,
    /// `external-function/<name>/<query-id>`: the source file the plugin sees and the
    /// dead letters' `file`.
    route_key: String,
    rows: Vec<InputRow>,
}

/// What became of one row.
#[derive(Debug, Clone)]
enum RowResult {
    Delivered(Option<String>),
    Filtered,
    Rejected { stage: RowStage, message: String },
}

fn stage_name(stage: RowStage) -> &'static str {
    match stage {
        RowStage::Read => "read",
        RowStage::Plugin => "plugin",
        RowStage::Encode => "encode",
        RowStage::Endpoint => "endpoint",
    }
}

/// The plugin part of a batch (blocking).
fn transform(relay: &Relay, batch: &Batch) -> Result<(EncodedBatch, Vec<Value>), String> {
    let cols = columns(&batch.rows)?;
    let mut runner = match relay.take_runner(&cols.schema) {
        Some(runner) => runner,
        None => Runner::start(
            Arc::clone(&relay.job.plugin),
            cols.schema.clone(),
            relay.job.config.plugin.config.clone().into_iter().collect(),
        )
        .map_err(|e| e.to_string())?,
    };
    let file = crate::source::source_file(&batch.route_key);
    let projection = runner.projection().map(<[u32]>::to_vec);
    let input = ArrowInput {
        file: &file,
        first_row: 0,
        batch: &cols.batch,
        schema: &cols.schema,
        projection: projection.as_deref(),
    };
    let mut encoder = Encoder::new(relay.job.config.records.shape);
    let encoded = encoder
        .transform(&mut runner, &input)
        .map_err(|e| e.to_string())?;
    relay.give_back(cols.schema, runner);
    Ok((encoded, cols.inputs))
}

/// Transforms, delivers and records one batch; the answer every poll and replay gets.
async fn run_batch(relay: &Arc<Relay>, batch: Batch) -> Answer {
    let n = batch.rows.len();
    let batch = Arc::new(batch);
    let transformed = {
        let _permit = relay.cpu.acquire().await;
        let (relay, batch) = (Arc::clone(relay), Arc::clone(&batch));
        tokio::task::spawn_blocking(move || transform(&relay, &batch)).await
    };
    let mut results: Vec<RowResult> = vec![RowResult::Filtered; n];
    let mut inputs = Vec::new();
    match transformed {
        Err(e) => return fatal(&batch, format!("internal error: {e}")),
        Ok(Err(message)) => {
            // The plugin refused the schema (or could not run): every row is rejected.
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
        Ok(Ok((encoded, row_inputs))) => {
            inputs = row_inputs;
            for failure in &encoded.failures {
                if let Some(r) = results.get_mut(failure.row as usize) {
                    *r = RowResult::Rejected {
                        stage: failure.stage,
                        message: failure.message.clone(),
                    };
                }
            }
            if let Err(e) = deliver(relay, &batch, &encoded, &mut results).await {
                return fatal(&batch, e.to_string());
            }
        }
    }
    if inputs.is_empty() {
        inputs = columns(&batch.rows)
            .map(|c| c.inputs)
            .unwrap_or_else(|_| vec![Value::Null; n]);
    }
    let data: Vec<Value> = batch
        .rows
        .iter()
        .zip(&results)
        .map(|(row, result)| {
            let value = match result {
                RowResult::Delivered(receipt) => {
                    json!({"status": "delivered", "receiptId": receipt})
                }
                RowResult::Filtered => json!({"status": "filtered"}),
                RowResult::Rejected { stage, message } => {
                    json!({"status": "rejected", "stage": stage_name(*stage), "message": message})
                }
            };
            json!([row.number, value])
        })
        .collect();
    let body = Bytes::from(json!({ "data": data }).to_string());
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
            keep(&relay, &b, &results, &inputs, &body);
        })
        .await;
        if let Err(e) = kept {
            tracing::error!("relay {}: keeping the result failed: {e}", batch.name);
        }
    }
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

fn fatal(batch: &Batch, message: String) -> Answer {
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

/// Sends the records through the shared sink; sets each row's result.
async fn deliver(
    relay: &Arc<Relay>,
    batch: &Batch,
    encoded: &EncodedBatch,
    results: &mut [RowResult],
) -> Result<(), SinkError> {
    if encoded.records.is_empty() {
        return Ok(());
    }
    let sink = relay.sink()?;
    let file: Arc<str> = batch.route_key.as_str().into();
    let mut batcher = sink.batcher();
    let mut bodies = Vec::new();
    let mut no_route: BTreeMap<u64, String> = BTreeMap::new();
    for record in &encoded.records {
        let origin = RowRef {
            file: Arc::clone(&file),
            row: record.row,
        };
        match batcher.push_json(origin, &record.entity_type, encoded.record_json(record)) {
            Ok(Some(body)) => bodies.push(body),
            Ok(None) => {}
            Err(e @ SinkError::NoRoute { .. }) => {
                no_route.insert(record.row, e.to_string());
            }
            Err(e) => return Err(e),
        }
    }
    bodies.extend(batcher.flush()?);
    let mut tasks = tokio::task::JoinSet::new();
    for body in bodies {
        let sink = sink.clone();
        tasks.spawn(async move { sink.deliver(body).await });
    }
    let mut receipts: HashMap<u64, Option<String>> = HashMap::new();
    let mut rejected: HashMap<u64, String> = HashMap::new();
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(outcome)) => {
                for request in &outcome.delivered {
                    for origin in &request.records {
                        receipts
                            .entry(origin.row)
                            .or_insert_with(|| request.receipt_id.clone());
                    }
                }
                for r in &outcome.rejected {
                    rejected
                        .entry(r.origin.row)
                        .or_insert_with(|| format!("HTTP {}: {}", r.status, r.message));
                }
            }
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(SinkError::Internal(e.to_string()));
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    for record in &encoded.records {
        let row = record.row as usize;
        let Some(result) = results.get_mut(row) else {
            continue;
        };
        if matches!(result, RowResult::Rejected { .. }) {
            continue;
        }
        let stage = RowStage::Endpoint;
        *result = if let Some(message) = no_route.get(&record.row) {
            RowResult::Rejected {
                stage: RowStage::Encode,
                message: message.clone(),
            }
        } else if let Some(message) = rejected.get(&record.row) {
            RowResult::Rejected {
                stage,
                message: message.clone(),
            }
        } else {
            RowResult::Delivered(receipts.get(&record.row).cloned().flatten())
        };
    }
    Ok(())
}

/// Dead letters for the rejected rows, then the result in the state (blocking).
fn keep(relay: &Relay, batch: &Batch, results: &[RowResult], inputs: &[Value], body: &[u8]) {
    let plugin = relay.job.plugin.name().to_string();
    let letters: Vec<DeadLetter> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            RowResult::Rejected { stage, message } => Some(DeadLetter {
                file: batch.route_key.clone(),
                key: None,
                identity: None,
                row: batch.rows[i].number.as_u64().unwrap_or(i as u64),
                stage: *stage,
                kind: "rejected".into(),
                message: message.clone(),
                plugin: Some(plugin.clone()),
                status: None,
                receipt_id: None,
                entity_type: None,
                record: None,
                input: inputs.get(i).cloned().unwrap_or(Value::Null),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(value: Value) -> Vec<InputRow> {
        parse_rows(json!({ "data": value }).to_string().as_bytes()).unwrap()
    }

    #[test]
    fn objects_become_columns_and_positional_args_are_numbered() {
        let rows = rows(json!([
            [0, "CUST-1", {"NAME": "Acme", "N": 1}, "2025-08-20 03:14:07.000"],
            [1, "CUST-2", null, "2025-08-20 03:15:11.250"],
            [2, null, {"NAME": "Globex", "N": 2.5, "TAGS": ["a"]}, null],
        ]));
        let cols = columns(&rows).unwrap();
        let described: Vec<(String, String)> = cols
            .schema
            .iter()
            .map(|c| (c.name.clone(), format!("{:?}", c.type_)))
            .collect();
        let names: Vec<&str> = described.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["ARG0", "N", "NAME", "ARG2", "TAGS"]);
        assert!(described[0].1.contains("Text"), "{described:?}");
        assert!(described[1].1.contains("Float"), "{described:?}");
        assert!(described[3].1.contains("Timestamp"), "{described:?}");
        assert!(described[4].1.contains("Json"), "{described:?}");
        assert_eq!(cols.batch.num_rows(), 3);
        assert_eq!(cols.inputs[1]["ARG0"], "CUST-2");
    }

    #[test]
    fn kinds_merge_to_the_widest() {
        assert_eq!(merge(Kind::Int, Kind::Float), Kind::Float);
        assert_eq!(merge(Kind::Null, Kind::Bool), Kind::Bool);
        assert_eq!(merge(Kind::Int, Kind::Text), Kind::Text);
        assert_eq!(merge(Kind::Date, Kind::Timestamp), Kind::Text);
        assert_eq!(kind_of(&json!("2025-08-20")), Kind::Date);
        assert_eq!(kind_of(&json!("2025-08-20T03:14:07")), Kind::Timestamp);
    }

    #[test]
    fn bad_bodies_are_refused() {
        assert!(parse_rows(b"not json").is_err());
        assert!(parse_rows(br#"{"rows": []}"#).is_err());
        assert!(parse_rows(br#"{"data": [["x", 1]]}"#).is_err());
        assert!(parse_rows(br#"{"data": []}"#).unwrap().is_empty());
    }

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
