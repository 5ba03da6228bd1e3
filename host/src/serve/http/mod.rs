//! The HTTP routes of `serve` (hyper 1, HTTP/1.1): `/healthz`, `/metrics`, `/events` (and
//! `/`), and the relay's routes.
//!
//! | module | owns |
//! |---|---|
//! | `mod` (here) | [`App`] (what the handlers share), the routing, plain answers |
//! | `auth` | the shared secret: header or `?token=`, compared by digest in constant time |
//! | `handshake` | subscription handshakes: CloudEvents `OPTIONS`, Event Grid validation, SNS confirmation |
//! | `notify` | storage notifications (a JSON body, or a binary-mode CloudEvent's `ce-*` headers and body): parse, resolve and record the files as pending |

mod auth;
mod handshake;
mod notify;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;

use crate::job::Job;
use crate::source::Secret;
use crate::source::select::CompiledSelection;

use super::metrics::{self, Metrics};
use super::processor::Signal;
use super::relay::{self, Relay};

use handshake::{event_grid_validation, is_validation_event, options, sns_confirmation};
use notify::deliver;

/// Largest request body accepted (Event Grid batches are at most 1 MB, SNS messages 256 KB).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// The header carrying the shared secret (else the `token` query parameter).
pub const TOKEN_HEADER: &str = "x-stagepush-token";

type Body = Full<Bytes>;

/// What the handlers share.
pub(crate) struct App {
    pub job: Arc<Job>,
    pub stage_url: String,
    /// SHA-256 of the shared secret, when one is required.
    pub auth: Option<[u8; 32]>,
    pub sns_confirm: bool,
    pub selection: Option<CompiledSelection>,
    pub metrics: Arc<Metrics>,
    pub signal: Arc<Signal>,
    /// The client that confirms SNS subscriptions, built on first use.
    pub http: std::sync::OnceLock<Result<reqwest::Client, reqwest::Error>>,
    pub relay: Arc<Relay>,
}

impl App {
    pub fn new(
        job: Arc<Job>,
        auth: Option<&Secret>,
        sns_confirm: bool,
        selection: Option<CompiledSelection>,
        metrics: Arc<Metrics>,
        signal: Arc<Signal>,
        relay: Arc<Relay>,
    ) -> Self {
        Self {
            stage_url: job.stage.state_key().to_owned(),
            job,
            auth: auth.map(|secret| auth::digest(secret.expose_secret().as_bytes())),
            sns_confirm,
            selection,
            metrics,
            signal,
            http: std::sync::OnceLock::new(),
            relay,
        }
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut body = body.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed (allowed: {allow})"),
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Every request. Never logs the query string (it may hold the secret).
pub(crate) async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let response = match path.as_str() {
        "/healthz" => match method {
            Method::GET | Method::HEAD if app.signal.processor_failed() => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the processor stopped: events are recorded but not delivered",
            ),
            Method::GET | Method::HEAD => text(StatusCode::OK, "ok"),
            _ => not_allowed("GET"),
        },
        "/metrics" => match method {
            Method::GET | Method::HEAD => {
                let mut response = Response::new(Full::new(Bytes::from(app.metrics.render())));
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(metrics::CONTENT_TYPE),
                );
                response
            }
            _ => not_allowed("GET"),
        },
        "/events" | "/" => {
            if !app.authorized(&req) {
                tracing::warn!(
                    "{method} {path}: refused, no valid token (header X-Stagepush-Token or ?token=)"
                );
                text(
                    StatusCode::UNAUTHORIZED,
                    "a valid token is required: header X-Stagepush-Token or query parameter token",
                )
            } else {
                match method {
                    Method::POST => post(&app, req).await,
                    Method::OPTIONS => options(&req),
                    _ => not_allowed("POST, OPTIONS"),
                }
            }
        }
        p if p.starts_with(relay::ROUTE_PREFIX) => relay::handle(&app.relay, req).await,
        _ => text(
            StatusCode::NOT_FOUND,
            format!("no route {path}: use POST /events"),
        ),
    };
    tracing::debug!("{method} {path}: {}", response.status().as_u16());
    Ok(response)
}

async fn post(app: &Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let event_grid_type = header(&req, "aeg-event-type").map(str::to_owned);
    let sns_type = header(&req, "x-amz-sns-message-type").map(str::to_owned);
    let cloud_event = binary_cloud_event(&req);
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            );
        }
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}"),
            );
        }
    };
    let value: Option<Value> = serde_json::from_slice(&body).ok();
    let is = |h: &Option<String>, v: &str| h.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(v));
    if is(&event_grid_type, "SubscriptionValidation") || is_validation_event(value.as_ref()) {
        return event_grid_validation(value.as_ref());
    }
    let sns_body_type = value
        .as_ref()
        .filter(|v| v.get("SubscribeURL").is_some())
        .and_then(|v| v.get("Type"))
        .and_then(Value::as_str);
    if is(&sns_type, "SubscriptionConfirmation")
        || sns_body_type == Some("SubscriptionConfirmation")
    {
        return sns_confirmation(app, value.as_ref()).await;
    }
    if is(&sns_type, "UnsubscribeConfirmation") || sns_body_type == Some("UnsubscribeConfirmation")
    {
        let topic = value
            .as_ref()
            .and_then(|v| v.get("TopicArn"))
            .and_then(Value::as_str)
            .unwrap_or("?");
        tracing::warn!("SNS: this endpoint was unsubscribed from topic {topic}");
        return text(StatusCode::OK, "unsubscribe confirmation received");
    }
    deliver(app, body, cloud_event.as_deref()).await
}

/// The context attributes of a CloudEvent in binary content mode (Eventarc): the `ce-*`
/// headers without the prefix, when there is a `ce-specversion`.
fn binary_cloud_event(req: &Request<Incoming>) -> Option<Vec<(String, String)>> {
    req.headers().get("ce-specversion")?;
    let attributes = req
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            let attribute = name.as_str().strip_prefix("ce-")?;
            Some((attribute.to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    Some(attributes)
}
