//! Subscription handshakes: the CloudEvents webhook `OPTIONS`, Event Grid's validation
//! event, and SNS subscription confirmation (fetched only from an SNS host, never
//! following a redirect).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use super::{App, Body, json_response, text};

/// How long confirming an SNS subscription may take.
const SNS_CONFIRM_TIMEOUT: Duration = Duration::from_secs(15);

/// The CloudEvents webhook abuse-protection handshake (Event Grid with the CloudEvents
/// schema sends it before delivering).
pub(super) fn options(req: &Request<Incoming>) -> Response<Body> {
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

/// Whether the payload is an Event Grid validation event (normally flagged by the
/// `aeg-event-type` header).
pub(super) fn is_validation_event(value: Option<&Value>) -> bool {
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
pub(super) fn event_grid_validation(value: Option<&Value>) -> Response<Body> {
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

/// Why a `SubscribeURL` is not fetched.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SnsUrlRefused {
    /// It does not parse as a URL.
    #[error("not a URL ({0})")]
    NotAUrl(UrlParseError),
    /// It is not https, or its host is not an SNS host.
    #[error("not an https URL on sns.<region>.amazonaws.com (host {host:?})")]
    NotSns {
        /// The URL's host, lower-cased.
        host: String,
    },
}

/// What [`reqwest::Url`] says of a string it cannot parse.
type UrlParseError = <reqwest::Url as std::str::FromStr>::Err;

/// Whether `url` may be fetched to confirm an SNS subscription: https on an SNS host
/// (`sns.<region>.amazonaws.com`, or `.amazonaws.com.cn`), so that a forged message
/// cannot make this server fetch arbitrary URLs.
pub(crate) fn sns_url_allowed(url: &str) -> Result<reqwest::Url, SnsUrlRefused> {
    let parsed = reqwest::Url::parse(url).map_err(SnsUrlRefused::NotAUrl)?;
    let host = parsed.host_str().unwrap_or("").to_ascii_lowercase();
    let sns_host = host.starts_with("sns.")
        && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"));
    if parsed.scheme() != "https" || !sns_host {
        return Err(SnsUrlRefused::NotSns { host });
    }
    Ok(parsed)
}

pub(super) async fn sns_confirmation(app: &Arc<App>, value: Option<&Value>) -> Response<Body> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            sns_url_allowed("http://sns.eu-west-1.amazonaws.com/")
                .unwrap_err()
                .to_string(),
            "not an https URL on sns.<region>.amazonaws.com (host \"sns.eu-west-1.amazonaws.com\")"
        );
        assert_eq!(
            sns_url_allowed("not a url").unwrap_err().to_string(),
            "not a URL (relative URL without a base)"
        );
        {}
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
}
