//! The HTTP request for one attempt.
//!
//! `POST <endpoint>` with
//! - `Authorization: Bearer <token>` (the header value is marked sensitive, so reqwest/hyper
//!   never print it),
//! - `Content-Type`: `application/json` or `application/x-ndjson`,
//! - `Content-Encoding: gzip` when compressing,
//! - `User-Agent: stagepush/<version>`,
//! - `X-Request-Id`: a fresh UUID v4 **per attempt**, so every request the server logs can be
//!   matched to exactly one line of our log (which also names the batch id and the attempt).

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};

use super::batcher::Endpoint;
use super::body::BodyEncoding;
use super::{ApiToken, SinkError};

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("stagepush/", env!("CARGO_PKG_VERSION"));
/// Header carrying the per-attempt request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Builds the `Authorization` header value once per sink (marked sensitive).
pub(crate) fn authorization(token: &ApiToken) -> Result<HeaderValue, SinkError> {
    let mut value =
        HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())).map_err(|_| {
            SinkError::Config("the API token holds characters not allowed in an HTTP header".into())
        })?;
    value.set_sensitive(true);
    Ok(value)
}

/// A fresh request id (UUID v4, hyphenated).
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// Builds one attempt's request.
pub(crate) fn build(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    auth: &HeaderValue,
    encoding: &BodyEncoding,
    body: Bytes,
    request_id: &str,
) -> reqwest::RequestBuilder {
    let mut req = client
        .post(endpoint.url.clone())
        .header(AUTHORIZATION, auth.clone())
        .header(CONTENT_TYPE, encoding.format.content_type())
        .header(REQUEST_ID_HEADER, request_id);
    if let Some(ce) = encoding.content_encoding() {
        req = req.header(CONTENT_ENCODING, ce);
    }
    req.body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_header_is_sensitive_and_redacted_in_debug() {
        let v = authorization(&ApiToken::new("tok-123")).unwrap();
        assert!(v.is_sensitive());
        assert_eq!(v.to_str().unwrap(), "Bearer tok-123");
        assert!(!format!("{v:?}").contains("tok-123"));
        let e = authorization(&ApiToken::new("bad\ntoken-456"))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("token-456"), "{e}");
    }

    #[test]
    fn request_ids_are_unique_uuids() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert!(uuid::Uuid::parse_str(&a).is_ok());
        assert!(USER_AGENT.starts_with("stagepush/"));
    }
}
