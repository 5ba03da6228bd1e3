//! The mock's HTTP server (hyper 1, HTTP/1.1) and its fault injection.

use std::collections::VecDeque;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::ingest::{ErrorBody, ErrorEntry, Limits, SuccessBody, Verdict, ingest};
use super::store::{ArrivalLine, RequestLine, Store};
use super::{LOGIN_PATH, MAX_DECOMPRESSED_BYTES, MockAnswer, MockArgs, MockError};

/// Path prefix of the ingestion endpoint.
const ENDPOINT_PREFIX: &str = "/upload/api/endpoint/";

/// A running mock. Dropping it stops the server.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), MockError>>,
}

impl MockServer {
    /// Binds, opens the store, and serves in a background task.
    pub async fn start(args: MockArgs) -> Result<Self, MockError> {
        args.validate()?;
        let store = args.store.as_deref().map(Store::open).transpose()?;
        let listener = TcpListener::bind(args.listen)
            .await
            .map_err(|source| MockError::Bind {
                addr: args.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| MockError::Bind {
            addr: args.listen,
            source,
        })?;
        let state = Arc::new(State {
            started: Instant::now(),
            seq: AtomicU64::new(0),
            script: Mutex::new(args.sequence.iter().cloned().collect()),
            rng: Mutex::new(fastrand::Rng::with_seed(args.seed)),
            expected_auth: args.token.bearer(),
            in_flight: AtomicU32::new(0),
            store,
            args,
        });
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, state, rx));
        Ok(Self {
            addr,
            shutdown: Some(tx),
            task,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://ADDR/upload/api/endpoint/{id}`.
    pub fn endpoint_url(&self, id: &str) -> String {
        format!("http://{}{ENDPOINT_PREFIX}{id}", self.addr)
    }

    /// Waits for the server to end (it ends on [`MockServer::shutdown`] or an accept error).
    pub async fn wait(mut self) -> Result<(), MockError> {
        let task = &mut self.task;
        task.await.map_err(|e| MockError::Task(e.to_string()))?
    }

    /// Stops accepting, closes open connections, and waits for the server task.
    pub async fn shutdown(mut self) -> Result<(), MockError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait().await
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

struct State {
    args: MockArgs,
    started: Instant,
    seq: AtomicU64,
    script: Mutex<VecDeque<MockAnswer>>,
    rng: Mutex<fastrand::Rng>,
    expected_auth: String,
    /// Ingestion requests being answered (admitted under `--capacity`).
    in_flight: AtomicU32,
    store: Option<Store>,
}

/// A place among the `--capacity` requests being answered; given back when dropped.
struct Slot<'a>(&'a AtomicU32);

impl<'a> Slot<'a> {
    /// Takes a place if fewer than `capacity` are taken (always, without a capacity).
    fn take(in_flight: &'a AtomicU32, capacity: Option<u32>) -> Option<Self> {
        in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| match capacity {
                Some(k) if n >= k => None,
                _ => Some(n + 1),
            })
            .ok()
            .map(|_| Slot(in_flight))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    mut shutdown: oneshot::Receiver<()>,
) -> Result<(), MockError> {
    // Connections live in this set: ending the loop aborts them.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(a) => a,
                    // Per-connection errors (e.g. the peer reset before accept) are not fatal.
                    Err(e) if is_transient_accept_error(&e) => continue,
                    Err(e) => return Err(MockError::Accept(e)),
                };
                let _ = stream.set_nodelay(true);
                let state = Arc::clone(&state);
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { handle(state, req).await }
                    });
                    // Errors here are dropped connections (injected or by the peer).
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

fn is_transient_accept_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    )
}

/// Returned by the service to make hyper close the connection without an answer.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by the mock (fault injection)")]
struct DropConnection;

type Answer = Response<Full<Bytes>>;

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Answer, DropConnection> {
    let seq = state.seq.fetch_add(1, Ordering::Relaxed);
    let t_ms = state.started.elapsed().as_secs_f64() * 1000.0;
    let (parts, body) = req.into_parts();
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let content_encoding = header("content-encoding");
    let content_type = header("content-type");
    let request_id = header("x-request-id");
    let authorized = header("authorization").is_some_and(|a| a == state.expected_auth);
    let path = parts.uri.path().to_string();
    let method = parts.method.as_str().to_string();
    // Read the whole body first, so the client never sees its upload cut short.
    let wire = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Err(DropConnection),
    };
    let endpoint_id = path
        .strip_prefix(ENDPOINT_PREFIX)
        .filter(|id| !id.is_empty() && !id.contains('/'));
    // Only ingestion requests count against `--capacity`; one beyond it is answered at once.
    // The place is taken before the arrival is logged: a test that sees K arrivals knows K
    // places are taken.
    let slot = endpoint_id.map(|_| Slot::take(&state.in_flight, state.args.capacity));
    if let Some(store) = &state.store {
        let arrival = ArrivalLine {
            seq,
            t_ms,
            path: &path,
            request_id: request_id.as_deref(),
            body_bytes: wire.len(),
        };
        if let Err(e) = store.append_arrival(&arrival) {
            tracing::error!("mock arrivals log: {e}");
        }
    }
    let over_capacity = matches!(slot, Some(None));
    if !over_capacity {
        if state.args.slow_ms > 0 {
            tokio::time::sleep(Duration::from_millis(state.args.slow_ms)).await;
        }
        if let Some(gate) = &state.args.hold_while_exists {
            while tokio::fs::try_exists(gate).await.unwrap_or(false) {
                tokio::time::sleep(super::HOLD_POLL_INTERVAL).await;
            }
        }
    }
    let mut log = RequestLine {
        seq,
        t_ms,
        method: &method,
        path: &path,
        endpoint_id,
        status: None,
        answer: "normal",
        rows: None,
        request_id: request_id.as_deref(),
        content_encoding: content_encoding.as_deref(),
        content_type: content_type.as_deref(),
        body_bytes: wire.len(),
        receipt_id: None,
    };
    let receipt = uuid::Uuid::new_v4().hyphenated().to_string();

    let answer = match (endpoint_id, parts.method == hyper::Method::POST, authorized) {
        (None, _, _) if path == LOGIN_PATH => {
            log.answer = "login-page";
            html(StatusCode::OK, LOGIN_PAGE)
        }
        (None, _, _) => text(StatusCode::NOT_FOUND, "Not Found"),
        (Some(_), false, _) => text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
        (Some(_), true, false) => text(StatusCode::UNAUTHORIZED, ""),
        (Some(_), true, true) if over_capacity => {
            log.answer = "over-capacity";
            fault(&state, 429, &receipt)
        }
        (Some(endpoint_id), true, true) => match next_fault(&state) {
            MockAnswer::Drop => {
                log.answer = "drop";
                write_log(&state, &log);
                return Err(DropConnection);
            }
            MockAnswer::Status(code) => {
                log.answer = "fault";
                fault(&state, code, &receipt)
            }
            MockAnswer::Redirect { status, location } => {
                log.answer = "redirect";
                redirect(status, &location)
            }
            MockAnswer::Html200 => {
                log.answer = "html200";
                html(StatusCode::OK, MAINTENANCE_PAGE)
            }
            MockAnswer::Empty200 => {
                log.answer = "empty200";
                let mut a = Response::new(Full::new(Bytes::new()));
                *a.status_mut() = StatusCode::OK;
                a
            }
            MockAnswer::SuccessFalse200 => {
                log.answer = "false200";
                json(
                    StatusCode::OK,
                    &ErrorBody {
                        success: false,
                        error: true,
                        receipt_id: &receipt,
                        errors: &[],
                    },
                )
            }
            MockAnswer::Normal => {
                let (answer, rows, stored) = process(
                    &state,
                    &wire,
                    content_encoding.as_deref(),
                    content_type.as_deref(),
                    endpoint_id,
                    &receipt,
                );
                log.rows = rows;
                if !stored {
                    // Storing failed: the client must not take this for a delivery.
                    log.answer = "store-failed";
                }
                answer
            }
        },
    };
    log.status = Some(answer.status().as_u16());
    if answer
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v == "application/json")
    {
        log.receipt_id = Some(&receipt);
    }
    write_log(&state, &log);
    drop(slot);
    Ok(answer)
}

/// The next scripted answer, else a random fault by the configured rates, else normal.
fn next_fault(state: &State) -> MockAnswer {
    if let Some(a) = state
        .script
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop_front()
    {
        return a;
    }
    let a = &state.args;
    if a.rate_drop + a.rate_429 + a.rate_500 + a.rate_503 <= 0.0 {
        return MockAnswer::Normal;
    }
    let x = state.rng.lock().unwrap_or_else(|p| p.into_inner()).f64();
    let mut edge = a.rate_drop;
    if x < edge {
        return MockAnswer::Drop;
    }
    for (rate, code) in [(a.rate_429, 429), (a.rate_500, 500), (a.rate_503, 503)] {
        edge += rate;
        if x < edge {
            return MockAnswer::Status(code);
        }
    }
    MockAnswer::Normal
}

/// The answer to an injected status.
fn fault(state: &State, code: u16, receipt: &str) -> Answer {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match code {
        429 => {
            let mut a = text(status, "Too Many Requests");
            a.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(state.args.retry_after));
            a
        }
        413 => too_large_page(),
        400 => error_json(
            status,
            receipt,
            &[ErrorEntry::body(
                "injected-fault",
                "mock",
                "A 400 injected by the mock, naming no row",
            )],
        ),
        _ => text(
            status,
            status.canonical_reason().unwrap_or("Injected fault"),
        ),
    }
}

/// Normal processing: size limit, gzip, parse, validate, store. Returns the answer, the rows
/// counted, and whether storing succeeded.
fn process(
    state: &State,
    wire: &Bytes,
    content_encoding: Option<&str>,
    content_type: Option<&str>,
    endpoint_id: &str,
    receipt: &str,
) -> (Answer, Option<usize>, bool) {
    let args = &state.args;
    if args.accept_all {
        let body = SuccessBody {
            success: true,
            warning: false,
            warnings: &[],
            error: false,
            receipt_id: receipt,
        };
        return (json(StatusCode::OK, &body), None, true);
    }
    if args
        .max_body_bytes
        .is_some_and(|max| wire.len() as u64 > max)
    {
        return (too_large_page(), None, true);
    }
    let decoded: std::borrow::Cow<'_, [u8]> =
        match content_encoding.map(|e| e.trim().to_ascii_lowercase()) {
            None => wire[..].into(),
            Some(e) if e.is_empty() || e == "identity" => wire[..].into(),
            Some(e) if e == "gzip" => {
                let mut out = Vec::new();
                let read = flate2::read::MultiGzDecoder::new(&wire[..])
                    .take(MAX_DECOMPRESSED_BYTES + 1)
                    .read_to_end(&mut out);
                match read {
                    Ok(_) if out.len() as u64 > MAX_DECOMPRESSED_BYTES => {
                        return (too_large_page(), None, true);
                    }
                    Ok(_) => out.into(),
                    Err(e) => {
                        let errors = [ErrorEntry::body(
                            "invalid-gzip",
                            "parsing",
                            format!("The gzip body does not decode: {e}"),
                        )];
                        return (
                            error_json(StatusCode::BAD_REQUEST, receipt, &errors),
                            None,
                            true,
                        );
                    }
                }
            }
            Some(_) => {
                return (
                    text(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "Unsupported Content-Encoding",
                    ),
                    None,
                    true,
                );
            }
        };
    let ndjson = content_type.is_some_and(|t| {
        let t = t.trim().to_ascii_lowercase();
        t.starts_with("application/x-ndjson") || t.starts_with("application/ndjson")
    });
    let limits = Limits {
        max_rows: args.max_rows,
        max_columns: args.max_columns,
        reject_ids: &args.reject_external_id,
    };
    match ingest(&decoded, ndjson, limits) {
        Verdict::Accepted { records, warnings } => {
            if let Some(store) = &state.store
                && let Err(e) = store.append_records(endpoint_id, receipt, &records)
            {
                tracing::error!("mock store: {e}");
                return (
                    text(StatusCode::INTERNAL_SERVER_ERROR, "store failed"),
                    Some(records.len()),
                    false,
                );
            }
            let body = SuccessBody {
                success: true,
                warning: !warnings.is_empty(),
                warnings: &warnings,
                error: false,
                receipt_id: receipt,
            };
            (json(StatusCode::OK, &body), Some(records.len()), true)
        }
        Verdict::Rejected {
            status,
            rows,
            errors,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            (error_json(status, receipt, &errors), rows, true)
        }
    }
}

fn write_log(state: &State, line: &RequestLine<'_>) {
    if let Some(store) = &state.store
        && let Err(e) = store.append_request(line)
    {
        tracing::error!("mock request log: {e}");
    }
}

fn text(status: StatusCode, body: &str) -> Answer {
    let mut a = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *a.status_mut() = status;
    a.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    a
}

/// The body of `/login` (see [`LOGIN_PATH`]).
const LOGIN_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form method=\"post\" action=\"/login\"><input name=\"user\"><input name=\"password\" type=\"password\"><button>Sign in</button></form></body></html>\n";
/// The body of a scripted `html200`.
const MAINTENANCE_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Down for maintenance</title></head><body><h1>We'll be back soon</h1></body></html>\n";

fn html(status: StatusCode, body: &'static str) -> Answer {
    let mut a = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *a.status_mut() = status;
    a.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    a
}

/// A 3xx with `Location: location` (a value that is not a valid header is sent as `/`).
fn redirect(status: u16, location: &str) -> Answer {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FOUND);
    let mut a = html(status, "<html><body>Moved</body></html>\n");
    a.headers_mut().insert(
        LOCATION,
        HeaderValue::from_str(location).unwrap_or_else(|_| HeaderValue::from_static("/")),
    );
    a
}

fn too_large_page() -> Answer {
    let mut a = Response::new(Full::new(Bytes::from_static(
        b"<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n</body>\r\n</html>\r\n",
    )));
    *a.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    a.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    a
}

fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Answer {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut a = Response::new(Full::new(Bytes::from(bytes)));
            *a.status_mut() = status;
            a.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            a
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "serialization failed"),
    }
}

fn error_json(status: StatusCode, receipt: &str, errors: &[ErrorEntry]) -> Answer {
    json(
        status,
        &ErrorBody {
            success: false,
            error: true,
            receipt_id: receipt,
            errors,
        },
    )
}
