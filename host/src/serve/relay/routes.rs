//! The relay's routes: `POST` (deliver a batch, or replay its kept result) and `GET` (poll).

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::watch;

use super::super::metrics::ReplayFrom;
use super::batch::{Batch, run_batch};
use super::columns::parse_rows;
use super::{
    BATCH_ID_HEADER, Body, Entry, KEEP_IN_MEMORY, QUERY_ID_HEADER, ROUTE_PREFIX, Relay,
    SECRET_HEADER, Slot, accepted, error, header, respond, state_path, valid_name,
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
                    if batches.len() >= 256 {
                        batches.retain(|_, e| {
                            matches!(progress(&e.slot), Progress::Running)
                                || e.started.elapsed() < KEEP_IN_MEMORY
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
