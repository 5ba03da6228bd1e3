//! The HTTP client of the sink and one request/answer exchange. A failure without an HTTP
//! answer (connection refused or dropped, timeout) is a [`TransportError`]: the attempt loop
//! retries it.

use std::time::{Duration, SystemTime};

use reqwest::header::{LOCATION, RETRY_AFTER};

use crate::sink::SinkError;
use crate::sink::config::SinkConfig;
use crate::sink::request::USER_AGENT;
use crate::sink::response::{IngestResponse, parse_response};
use crate::sink::retries::parse_retry_after;
use crate::tls::install_crypto_provider;

/// Most response-body bytes read (answers are small; a larger body is truncated).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The HTTP client of every CluedIn sink: follows no redirect (see the module doc), sends
/// [`USER_AGENT`], with the configured timeouts and an idle pool of as many connections as requests may be in flight.
pub fn http_client(config: &SinkConfig) -> Result<reqwest::Client, SinkError> {
    install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(config.timeout_secs))
        .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
        .pool_max_idle_per_host(config.concurrency_mode().max())
        .build()
        .map_err(|e| SinkError::Client(crate::errors::one_line(&e)))
}

/// An HTTP answer, as far as the sink needs it.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) response: IngestResponse,
    pub(super) retry_after: Option<Duration>,
    /// The raw `Location` header (of a 3xx).
    pub(super) location: Option<Vec<u8>>,
}

/// A request that got no HTTP answer (connection refused or dropped, timeout, TLS). Its
/// `Display` is the error with its causes, `a: b: c`, for logs and the "last failure" of
/// [`SinkError::RetriesExhausted`].
#[derive(Debug, thiserror::Error)]
#[error("{}", crate::errors::one_line(.0))]
pub(crate) struct TransportError(reqwest::Error);

impl TransportError {
    /// The request timed out (the endpoint took too long: back pressure).
    pub(super) fn is_timeout(&self) -> bool {
        self.0.is_timeout()
    }

    /// Why no connection could be made, when the host cannot be found or nothing accepts
    /// connections on the port (these are retried only briefly; see
    /// [`CONNECT_RETRIES`](crate::sink::retries::CONNECT_RETRIES)). A time-out, a dropped
    /// connection or a TLS failure is `None`.
    pub(super) fn cannot_connect(&self) -> Option<CannotConnect> {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&self.0);
        let mut dns = false;
        while let Some(e) = source {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                use std::io::ErrorKind::*;
                match io.kind() {
                    ConnectionRefused => return Some(CannotConnect::Refused),
                    HostUnreachable | NetworkUnreachable => {
                        return Some(CannotConnect::Unreachable(io.to_string()));
                    }
                    _ if dns => return Some(CannotConnect::Dns(io.to_string())),
                    _ => {}
                }
            }
            // hyper-util's resolver failure: `dns error`, caused by the lookup's io error.
            if e.to_string() == "dns error" {
                dns = true;
            }
            source = e.source();
        }
        dns.then(|| CannotConnect::Dns("the lookup failed".into()))
    }
}

/// Why no connection to the endpoint's host could be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CannotConnect {
    /// Nothing accepts connections on the port.
    Refused,
    /// No route to the host or its network (the OS's message).
    Unreachable(String),
    /// The host name does not resolve (the resolver's message).
    Dns(String),
}

/// One request/answer. `Err` is a transport failure (no status).
pub(super) async fn exchange(req: reqwest::RequestBuilder) -> Result<Reply, TransportError> {
    let mut resp = req.send().await.map_err(TransportError)?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let location = resp.headers().get(LOCATION).map(|v| v.as_bytes().to_vec());
    // The status is the answer; a body cut short only loses detail (and a 2xx is final: the
    // endpoint stored the records).
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = MAX_RESPONSE_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok(Reply {
        status,
        response: parse_response(&body),
        retry_after,
        location,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        source: Option<Box<Layer>>,
    }

    fn layer(text: &'static str, source: Option<Layer>) -> Layer {
        Layer {
            text,
            source: source.map(Box::new),
        }
    }

    #[test]
    fn the_error_chain_names_every_cause_once() {
        let e = layer("outer", Some(layer("middle", Some(layer("inner", None)))));
        assert_eq!(crate::errors::one_line(&e), "outer: middle: inner");
        // A cause already quoted by its parent is not repeated.
        let e = layer("sending: refused", Some(layer("refused", None)));
        assert_eq!(crate::errors::one_line(&e), "sending: refused");
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_a_dns_failure() {
        // `.invalid` never resolves (RFC 2606): whether or not outside DNS is reachable, the
        // lookup fails.
        let url = "http://stagepush-test.invalid/x";
        let client = http_client(&SinkConfig::new(url.to_string())).unwrap();
        let Err(e) = exchange(client.post(url)).await else {
            panic!("{url} resolved");
        };
        assert!(
            matches!(e.cannot_connect(), Some(CannotConnect::Dns(_))),
            "{e}: {:?}",
            e.cannot_connect()
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_transport_error_with_its_causes() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let client = http_client(&SinkConfig::new(format!("http://127.0.0.1:{port}/x"))).unwrap();
        let Err(e) = exchange(client.post(format!("http://127.0.0.1:{port}/x"))).await else {
            panic!("nothing listens on port {port}");
        };
        let text = e.to_string();
        assert_eq!(text, crate::errors::one_line(&e.0));
        assert!(text.contains("error sending request"), "{text}");
        assert_eq!(e.cannot_connect(), Some(CannotConnect::Refused), "{text}");
    }
}
