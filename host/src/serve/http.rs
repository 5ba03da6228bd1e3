//! The HTTP routes of `serve` (hyper 1, HTTP/1.1).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::events::{self, Notification};
use crate::job::Job;
use crate::source::Secret;
use crate::source::select::CompiledSelection;
use crate::trigger::{self, TriggerError, UnusableKey};

use super::metrics::{self, Metrics};
use super::pending::{self, PendingEntry};
use super::processor::Signal;
use super::relay::{self, Relay};

/// Largest request body accepted (Event Grid batches are at most 1 MB, SNS messages 256 KB).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// The header carrying the shared secret (else the `token` query parameter).
pub const TOKEN_HEADER: &str = "x-stagepush-token";
/// How long confirming an SNS subscription may take.
const SNS_CONFIRM_TIMEOUT: Duration = Duration::from_secs(15);

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
    pub http: std::sync::OnceLock<Result<reqwest::Client, String>>,
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
            auth: auth.map(|secret| digest(secret.expose_secret().as_bytes())),
            sns_confirm,
            selection,
            metrics,
            signal,
            http: std::sync::OnceLock::new(),
            relay,
        }
    }

    /// Whether `req` carries the shared secret (always, when none is configured).
    fn authorized(&self, req: &Request<Incoming>) -> bool {
        let Some(expected) = &self.auth else {
            return true;
        };
        let header = req
            .headers()
            .get(TOKEN_HEADER)
            .map(|value| value.as_bytes().to_vec());
        let query = req
            .uri()
            .query()
            .and_then(token_from_query)
            .map(String::into_bytes);
        [header, query]
            .into_iter()
            .flatten()
            .any(|given| constant_time_eq(&digest(&given), expected))
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `token` parameter of a query string, form-decoded.
pub(crate) fn token_from_query(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (name == "token").then(|| {
            percent_encoding::percent_decode_str(&value.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
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

/// The CloudEvents webhook abuse-protection handshake (Event Grid with the CloudEvents
/// schema sends it before delivering).
fn options(req: &Request<Incoming>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    let headers = response.headers_mut();
    headers.insert(ALLOW, HeaderValue::from_static("POST, OPTIONS"));
    if let Some(origin) = req.headers().get("webhook-request-origin") {
        headers.insert("webhook-allowed-origin", origin.clone());
        headers.insert("webhook-allowed-rate", HeaderValue::from_static("*"));
        tracing::info!(
            "CloudEvents webhook handshake from {}: allowed",
            origin.to_str().unwrap_or("?")
        );
    }
    response
}

async fn post(app: &Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let event_grid_type = header(&req, "aeg-event-type").map(str::to_owned);
    let sns_type = header(&req, "x-amz-sns-message-type").map(str::to_owned);
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
    deliver(app, body).await
}

/// Whether the payload is an Event Grid validation event (normally flagged by the
/// `aeg-event-type` header).
fn is_validation_event(value: Option<&Value>) -> bool {
    let first = match value {
        Some(Value::Array(items)) => items.first(),
        Some(other @ Value::Object(_)) => Some(other),
        _ => None,
    };
    first
        .and_then(|event| event.get("eventType"))
        .and_then(Value::as_str)
        == Some("Microsoft.EventGrid.SubscriptionValidationEvent")
}

/// Event Grid's validation handshake: 200 with the first event's `data.validationCode`.
fn event_grid_validation(value: Option<&Value>) -> Response<Body> {
    let first = match value {
        Some(Value::Array(items)) => items.first(),
        Some(other @ Value::Object(_)) => Some(other),
        _ => None,
    };
    let Some(code) = first
        .and_then(|event| event.pointer("/data/validationCode"))
        .and_then(Value::as_str)
    else {
        return text(
            StatusCode::BAD_REQUEST,
            "Event Grid subscription validation without data.validationCode in its first event",
        );
    };
    let topic = first
        .and_then(|event| event.get("topic"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    tracing::info!("Event Grid subscription validation for {topic}: answered");
    json_response(StatusCode::OK, &json!({ "validationResponse": code }))
}

/// Whether `url` may be fetched to confirm an SNS subscription: https on an SNS host
/// (`sns.<region>.amazonaws.com`, or `.amazonaws.com.cn`), so that a forged message
/// cannot make this server fetch arbitrary URLs.
pub(crate) fn sns_url_allowed(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
    let host = parsed.host_str().unwrap_or("").to_ascii_lowercase();
    let sns_host = host.starts_with("sns.")
        && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"));
    if parsed.scheme() != "https" || !sns_host {
        return Err(format!(
            "not an https URL on sns.<region>.amazonaws.com (host {host:?})"
        ));
    }
    Ok(parsed)
}

async fn sns_confirmation(app: &Arc<App>, value: Option<&Value>) -> Response<Body> {
    let field = |name: &str| {
        value
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let topic = field("TopicArn").unwrap_or_else(|| "?".into());
    let Some(url) = field("SubscribeURL") else {
        return text(
            StatusCode::BAD_REQUEST,
            "SNS SubscriptionConfirmation without SubscribeURL",
        );
    };
    tracing::info!("SNS subscription confirmation for topic {topic}: SubscribeURL {url}");
    if !app.sns_confirm {
        tracing::warn!(
            "SNS subscription to {topic} not confirmed: start serve with --sns-confirm to confirm \
             it automatically, or confirm it by opening the SubscribeURL above (or `aws sns \
             confirm-subscription --topic-arn {topic} --token <Token>`)"
        );
        return text(
            StatusCode::OK,
            "subscription confirmation received; not confirmed (serve runs without --sns-confirm): open the SubscribeURL to confirm",
        );
    }
    let parsed = match sns_url_allowed(&url) {
        Ok(parsed) => parsed,
        Err(reason) => {
            tracing::error!(
                "SNS subscription to {topic} not confirmed: the SubscribeURL is {reason}"
            );
            return text(
                StatusCode::BAD_REQUEST,
                format!("SubscribeURL refused: {reason}"),
            );
        }
    };
    let client = app.http.get_or_init(|| {
        crate::tls::install_crypto_provider();
        // No redirect: the allow-list above must decide every host this request reaches.
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(SNS_CONFIRM_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())
    });
    let client = match client {
        Ok(client) => client,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("no HTTP client: {e}"),
            );
        }
    };
    match client.get(parsed).send().await {
        Ok(response) if response.status().is_success() => {
            tracing::info!("SNS subscription to {topic} confirmed");
            text(StatusCode::OK, "subscription confirmed")
        }
        Ok(response) => {
            let status = response.status();
            tracing::error!("confirming the SNS subscription to {topic}: HTTP {status}");
            text(
                StatusCode::BAD_GATEWAY,
                format!("confirming the subscription failed: HTTP {status}"),
            )
        }
        Err(e) => {
            let e = e.without_url();
            tracing::error!("confirming the SNS subscription to {topic}: {e}");
            text(
                StatusCode::BAD_GATEWAY,
                format!("confirming the subscription failed: {e}"),
            )
        }
    }
}

/// What a payload became.
struct Accepted {
    /// URLs of the files recorded as pending.
    files: Vec<String>,
    ignored: Vec<String>,
    /// Objects whose key cannot be read, recorded as pending errors.
    refused: Vec<UnusableKey>,
    /// Files that were not pending before.
    new: usize,
}

/// Parses, resolves and records the files of a notification payload; answers 200 only
/// once every file is recorded in the state. An object whose key cannot be read is
/// recorded as a pending error (shown by `status`) and the others are still queued: 200,
/// or 400 when the payload names such objects and nothing to queue. 503 (the sender
/// retries) means the state could not be written or the store could not be asked.
async fn deliver(app: &Arc<App>, body: Bytes) -> Response<Body> {
    let notifications = match events::parse(&body) {
        Ok(notifications) => notifications,
        Err(e) => {
            tracing::warn!("refused an event: {e}");
            return text(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    app.metrics.add_events(&notifications);
    let worker = Arc::clone(app);
    let result = tokio::task::spawn_blocking(move || record(&worker, &notifications)).await;
    let result = match result {
        Ok(result) => result,
        Err(e) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}"),
        )),
    };
    match result {
        Ok(accepted) => {
            for reason in &accepted.ignored {
                tracing::info!("event ignored: {reason}");
            }
            if !accepted.files.is_empty() {
                app.signal.wake();
            }
            let status = if accepted.files.is_empty() && !accepted.refused.is_empty() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            let refused: Vec<Value> = accepted
                .refused
                .iter()
                .map(|u| json!({ "key": u.key, "reason": u.reason }))
                .collect();
            json_response(
                status,
                &json!({
                    "accepted": accepted.files,
                    "new": accepted.new,
                    "ignored": accepted.ignored,
                    "refused": refused,
                }),
            )
        }
        Err((status, message)) => {
            tracing::warn!("event not accepted ({}): {message}", status.as_u16());
            text(status, message)
        }
    }
}

/// The blocking part of [`deliver`]: HEAD each object, write its pending entry.
fn record(app: &App, notifications: &[Notification]) -> Result<Accepted, (StatusCode, String)> {
    let resolved = trigger::resolve(&app.job.stage, notifications).map_err(|e| match e {
        TriggerError::UnknownBucket { .. } => (StatusCode::BAD_REQUEST, e.to_string()),
        TriggerError::Stage(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{e} (the event can be sent again)"),
        ),
    })?;
    let event_ids: HashMap<&str, &str> = notifications
        .iter()
        .filter_map(Notification::as_created)
        .filter_map(|object| Some((object.key.as_str(), object.event_id.as_deref()?)))
        .collect();
    for unusable in &resolved.unusable {
        tracing::error!(
            "an event names {} in the stage's {}, which cannot be delivered: {}{}; recorded as a \
             pending error (see `stagepush status`), the event's other objects are queued",
            events::show(&unusable.key),
            app.job.stage.stage_url().bucket(),
            unusable.reason,
            unusable
                .event_id
                .as_deref()
                .map(|id| format!(" (event {id})"))
                .unwrap_or_default()
        );
        pending::record_error(&app.job.state, &app.stage_url, unusable).map_err(|e| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "cannot record the unusable key {} as a pending error: {e} (the event can \
                     be sent again)",
                    events::show(&unusable.key)
                ),
            )
        })?;
    }
    let mut accepted = Accepted {
        files: Vec::new(),
        ignored: resolved.ignored,
        refused: resolved.unusable,
        new: 0,
    };
    let mut failure = None;
    for file in resolved.files {
        if let Some(reason) = app.selection.as_ref().and_then(|s| s.rejects(&file)) {
            accepted
                .ignored
                .push(format!("{} is not selected: {reason}", file.url));
            continue;
        }
        let event_id = event_ids.get(file.key.as_str()).map(|id| (*id).to_owned());
        let entry = PendingEntry::new(&file, event_id);
        match pending::record(&app.job.state, &app.stage_url, &entry) {
            Ok(new) => {
                tracing::info!(
                    "queued {}{}",
                    file.url,
                    entry
                        .event_id
                        .as_deref()
                        .map(|id| format!(" (event {id})"))
                        .unwrap_or_default()
                );
                accepted.new += usize::from(new);
                accepted.files.push(file.url);
            }
            Err(e) => {
                failure = Some((
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "cannot record {} as pending: {e} (the event can be sent again)",
                        file.url
                    ),
                ));
                break;
            }
        }
    }
    app.metrics.add_queue_depth(accepted.new);
    if let Some(failure) = failure {
        if accepted.new > 0 {
            app.signal.wake();
        }
        return Err(failure);
    }
    Ok(accepted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_token_is_form_decoded() {
        assert_eq!(
            token_from_query("a=1&token=s%2Fx+y").as_deref(),
            Some("s/x y")
        );
        assert_eq!(token_from_query("token").as_deref(), Some(""));
        assert_eq!(token_from_query("tokens=1"), None);
    }

    #[test]
    fn only_sns_hosts_are_fetched() {
        assert!(
            sns_url_allowed(
                "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=a&Token=b"
            )
            .is_ok()
        );
        assert!(sns_url_allowed("https://sns.cn-north-1.amazonaws.com.cn/?x").is_ok());
        for bad in [
            "http://sns.eu-west-1.amazonaws.com/",
            "https://evil.example.com/sns.amazonaws.com",
            "https://sns.eu-west-1.amazonaws.com.evil.example/",
            "https://127.0.0.1/",
            "not a url",
        ] {
            assert!(sns_url_allowed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_events_are_recognised_without_the_header() {
        let v: Value = serde_json::from_str(
            r#"[{"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","data":{"validationCode":"c"}}]"#,
        )
        .unwrap();
        assert!(is_validation_event(Some(&v)));
        assert!(!is_validation_event(Some(
            &json!([{"eventType": "Microsoft.Storage.BlobCreated"}])
        )));
        assert!(!is_validation_event(None));
    }

    #[test]
    fn digests_compare_equal_only_when_equal() {
        assert!(constant_time_eq(&digest(b"a"), &digest(b"a")));
        assert!(!constant_time_eq(&digest(b"a"), &digest(b"b")));
    }
}
