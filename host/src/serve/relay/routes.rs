//! The relay's routes: `POST` (deliver a batch, or replay its kept result) and `GET` (poll).

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::watch;

use super::super::metrics::ReplayFrom;
use super::admission::{self, Peeked, Refusal};
use super::batch::{SnowflakeBatch, run_batch};
use super::columns::row_numbers;
use super::{
    BATCH_ID_HEADER, Body, Entry, QUERY_ID_HEADER, ROUTE_PREFIX, Relay, SECRET_HEADER, Slot,
    accepted, error, header, respond, state_path, valid_name,
};

/// Where a batch's delivery stands, as its slot says.
#[derive(Debug)]
enum Progress {
    /// Still running.
    Running,
    /// Finished with this answer.
    Answered(Arc<super::Answer>),
    /// The delivery task ended without an answer (it panicked, or the runtime shut down):
    /// nobody will ever answer; the batch must run again.
    Lost,
}

fn progress(slot: &Slot) -> Progress {
    if let Some(answer) = slot.borrow().as_ref() {
        return Progress::Answered(Arc::clone(answer));
    }
    // `Err`: the sender is gone, and the value it left is the `None` above.
    match slot.has_changed() {
        Ok(_) => Progress::Running,
        Err(_) => Progress::Lost,
    }
}

/// The answer to a request for a batch whose delivery was lost (see [`Progress::Lost`]).
fn lost() -> Response<Body> {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the delivery of this batch ended without a result (the server is shutting down, or an internal error); send the batch again",
    )
}

/// `POST` / `GET /external-function/{name}`; counts the answer in the metrics.
pub(crate) async fn handle(relay: &Arc<Relay>, req: Request<Incoming>) -> Response<Body> {
    let method = match *req.method() {
        Method::POST => "POST",
        Method::GET => "GET",
        _ => "other",
    };
    let response = route(relay, req).await;
    relay
        .metrics
        .relay_answer(method, response.status().as_u16());
    response
}

async fn route(relay: &Arc<Relay>, req: Request<Incoming>) -> Response<Body> {
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
        return match progress(&slot) {
            Progress::Answered(answer) => respond(answer.status, answer.body.clone()),
            Progress::Running => accepted(),
            Progress::Lost => lost(),
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

/// How long an admitted request's body may take to arrive (a stalled client must not hold
/// its share of the budget).
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The status of an answer nobody receives: the client closed the connection (nginx's
/// "client closed request"); it only shows in the metrics.
const CLIENT_GONE: u16 = 499;

/// What the headers say about the body: its declared length and whether it is gzip.
fn body_kind(headers: &hyper::HeaderMap) -> (Option<u64>, bool) {
    let declared = headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let gzip = headers
        .get(hyper::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    (declared, gzip)
}

fn too_large(limit: usize) -> Box<Response<Body>> {
    Box::new(error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is larger than {limit} bytes: lower MAX_BATCH_ROWS of the external function (or raise --relay-max-body-bytes)"
        ),
    ))
}

/// Reads the rest of the body (after what was read while the request waited) within the
/// limit and [`BODY_READ_TIMEOUT`], gunzipping it when it says so.
async fn read_body(
    limit: usize,
    gzip: bool,
    peeked: Peeked,
    mut body: Incoming,
) -> Result<Bytes, Box<Response<Body>>> {
    let mut buffer = BytesMut::with_capacity(peeked.bytes);
    for frame in &peeked.frames {
        buffer.extend_from_slice(frame);
    }
    if buffer.len() > limit {
        return Err(too_large(limit));
    }
    drop(peeked.frames);
    if !peeked.ended {
        let read = tokio::time::timeout(BODY_READ_TIMEOUT, async {
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data() {
                    if buffer.len() + data.len() > limit {
                        return Ok(false);
                    }
                    buffer.extend_from_slice(&data);
                }
            }
            Ok::<_, hyper::Error>(true)
        })
        .await;
        match read {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Err(too_large(limit)),
            Ok(Err(e)) => {
                return Err(Box::new(error(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body: {e}"),
                )));
            }
            Err(_) => {
                return Err(Box::new(error(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the body did not arrive within {} s",
                        BODY_READ_TIMEOUT.as_secs()
                    ),
                )));
            }
        }
    }
    let body = buffer.freeze();
    if !gzip {
        return Ok(body);
    }
    let mut out = Vec::new();
    let decoder = flate2::read::MultiGzDecoder::new(&body[..]);
    match decoder.take(limit as u64 + 1).read_to_end(&mut out) {
        Ok(_) if out.len() > limit => Err(too_large(limit)),
        Ok(_) => Ok(Bytes::from(out)),
        Err(e) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("the body says Content-Encoding: gzip but does not decompress: {e}"),
        ))),
    }
}

/// A request that was not admitted: 429 with `Retry-After`, or (the client is gone) 499.
fn refused(name: &str, refusal: Refusal) -> Response<Body> {
    match refusal {
        Refusal::Busy { .. } => {
            tracing::warn!("relay {name}: {refusal}");
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, refusal.to_string());
            response.headers_mut().insert(
                hyper::header::RETRY_AFTER,
                HeaderValue::from(admission::RETRY_AFTER_SECS),
            );
            response
        }
        Refusal::ClientGone(_) => {
            tracing::info!("relay {name}: {refusal}");
            let mut response = error(StatusCode::BAD_REQUEST, refusal.to_string());
            *response.status_mut() =
                StatusCode::from_u16(CLIENT_GONE).unwrap_or(StatusCode::BAD_REQUEST);
            response
        }
    }
}

async fn post(
    relay: &Arc<Relay>,
    name: String,
    batch_id: Option<String>,
    req: Request<Incoming>,
) -> Response<Body> {
    let arrived = Instant::now();
    let query_id = header(&req, QUERY_ID_HEADER).map(str::to_owned);
    let limit = relay.options.max_body_bytes;
    let (declared, gzip) = body_kind(req.headers());
    if declared.is_some_and(|n| n > limit as u64) {
        return *too_large(limit);
    }
    // Charged before the body is read: its length, or the limit when unknown.
    let charge = match declared {
        Some(n) if !gzip => n as usize,
        _ => limit,
    };
    let mut incoming = req.into_body();
    let (mut ticket, peeked) = match relay.admission.admit(charge, &mut incoming).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refused(&name, refusal),
    };
    let body = match read_body(limit, gzip, peeked, incoming).await {
        Ok(body) => body,
        Err(response) => return *response,
    };
    ticket.shrink(body.len());
    let numbers = match row_numbers(&body) {
        Ok(numbers) => numbers,
        Err(message) => {
            tracing::warn!("relay {name}: refused a request: {message}");
            return error(StatusCode::BAD_REQUEST, message.to_string());
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
        // A batch that failed fatally, or whose delivery was lost, runs again.
        let failed = match progress(slot) {
            Progress::Answered(a) => a.status != StatusCode::OK,
            Progress::Running => false,
            Progress::Lost => true,
        };
        (!failed).then(|| slot.clone())
    };
    let slot = match existing(relay) {
        Some(slot) => {
            tracing::info!("relay {name}: batch {batch_id} seen before: not delivered again");
            relay.metrics.relay_replay(ReplayFrom::Memory);
            slot
        }
        None => {
            if idempotent && let Some(body) = stored(relay, &name, &batch_id).await {
                tracing::info!(
                    "relay {name}: batch {batch_id} was delivered before: its stored result is the answer"
                );
                relay.metrics.relay_replay(ReplayFrom::State);
                return respond(StatusCode::OK, body);
            }
            let mut batches = relay.batches.lock().unwrap_or_else(|p| p.into_inner());
            let running = batches
                .get(&key)
                .map(|e| &e.slot)
                .filter(|s| match progress(s) {
                    Progress::Answered(a) => a.status == StatusCode::OK,
                    Progress::Running => true,
                    Progress::Lost => false,
                })
                .cloned();
            match running {
                Some(slot) => slot,
                None => {
                    let (tx, rx) = watch::channel(None);
                    relay.prune(&mut batches);
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
                    let job = SnowflakeBatch {
                        name: name.clone(),
                        batch_id: batch_id.clone(),
                        route_key,
                        body,
                        numbers,
                    };
                    let relay = Arc::clone(relay);
                    tokio::spawn(async move {
                        let answer = run_batch(&relay, job).await;
                        relay.kept(answer.body.len());
                        let _ = tx.send(Some(Arc::new(answer)));
                        // The request's bytes stay charged until its delivery is done
                        // (also after a 202).
                        drop(ticket);
                    });
                    rx
                }
            }
        }
    };
    let mut slot = slot;
    // The sync wait counts from the request's arrival (admission included): the proxy in
    // front has its own time-out.
    let sync_wait = relay.options.sync_wait.saturating_sub(arrived.elapsed());
    let waited = tokio::time::timeout(sync_wait, async {
        slot.wait_for(Option::is_some).await.map(|a| a.clone())
    })
    .await;
    match waited {
        Ok(Ok(Some(answer))) => respond(answer.status, answer.body.clone()),
        Ok(_) => lost(),
        Err(_) => {
            tracing::debug!("relay {name}: batch {batch_id} still running: 202");
            relay.metrics.relay_deferred();
            accepted()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: StatusCode) -> Option<Arc<super::super::Answer>> {
        Some(Arc::new(super::super::Answer {
            status,
            body: Bytes::new(),
        }))
    }

    #[test]
    fn a_delivery_that_ends_without_an_answer_is_lost_not_running() {
        let (tx, rx) = watch::channel(None);
        assert!(matches!(progress(&rx), Progress::Running));
        // The delivery task panicked: its sender is dropped with no answer.
        drop(tx);
        assert!(matches!(progress(&rx), Progress::Lost));

        let (tx, rx) = watch::channel(None);
        tx.send_replace(answer(StatusCode::OK));
        drop(tx);
        assert!(matches!(progress(&rx), Progress::Answered(a) if a.status == StatusCode::OK));
        // A lost delivery is answered as such, not 202 ("still running") forever.
        assert_eq!(lost().status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
