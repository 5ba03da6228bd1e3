//! One body sent until it gets a final answer: transient failures retried on the same body
//! per the [`RetryPolicy`](crate::sink::RetryPolicy) (back-off with full jitter,
//! `Retry-After` honoured), fatal statuses (401, 403, 404, a 3xx), an exhausted retry
//! budget and a host that cannot be connected to after a few brief retries
//! ([`CONNECT_RETRIES`]) stop the sink. Each request holds a permit of the sink's concurrency
//! [`Limiter`](crate::sink::concurrency::Limiter) while in flight and reports its round trip
//! and any back pressure (429, 503, a timeout) when it is answered.

use std::time::Instant;

use tokio::sync::watch;

use super::CluedInSink;
use super::transport::{CannotConnect, Reply, TransportError, exchange};
use crate::sink::batcher::Endpoint;
use crate::sink::body::{Body, BodyEncoding};
use crate::sink::concurrency::Feedback;
use crate::sink::outcome::SinkStats;
use crate::sink::redirect::describe_location;
use crate::sink::request::{self, new_request_id};
use crate::sink::response::IngestResponse;
use crate::sink::retries::{CONNECT_RETRIES, FatalStatus, RetryAction, classify, connect_backoff};
use crate::sink::{ConnectFailure, SinkError};

/// The final answer for one part.
pub(super) struct Answer {
    pub(super) action: RetryAction,
    pub(super) status: u16,
    pub(super) response: IngestResponse,
    pub(super) request_id: String,
}

impl CluedInSink {
    /// Sends one body until it gets a final answer.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn send(
        &self,
        batch_id: u64,
        endpoint: &Endpoint,
        encoding: &BodyEncoding,
        body: Body,
        stats: &mut SinkStats,
        rng: &mut fastrand::Rng,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Answer, SinkError> {
        let policy = self.inner.policy;
        let started = Instant::now();
        let mut attempt = 0u32;
        // Connection failures (refused, DNS, no route) in a row.
        let mut connect_failures = 0u32;
        loop {
            if *stop.borrow() {
                return Err(SinkError::Stopped);
            }
            let permit = tokio::select! {
                permit = self.inner.limiter.acquire() => permit,
                _ = stop.wait_for(|stopped| *stopped) => return Err(SinkError::Stopped),
            };
            attempt += 1;
            let request_id = new_request_id();
            self.count(stats, |s| {
                s.requests += 1;
                s.bytes_uncompressed += body.raw_len as u64;
                s.bytes_sent += body.bytes.len() as u64;
            });
            let req = request::build(
                &self.inner.client,
                endpoint,
                &self.inner.auth,
                encoding,
                body.bytes.clone(),
                &request_id,
            );
            let result = exchange(req).await;
            let fb = feedback(&result, permit.started());
            permit.answered(fb);
            let (action, status, response, location) = match result {
                Ok(reply) => {
                    connect_failures = 0;
                    self.count(stats, |s| *s.status.entry(reply.status).or_default() += 1);
                    (
                        classify(reply.status, &reply.response, reply.retry_after, body.rows),
                        reply.status,
                        reply.response,
                        reply.location,
                    )
                }
                Err(failure) => {
                    self.count(stats, |s| s.transport_errors += 1);
                    if let Some(cannot) = failure.cannot_connect() {
                        connect_failures += 1;
                        if connect_failures > CONNECT_RETRIES || attempt >= policy.max_attempts {
                            self.stop();
                            let err = SinkError::CannotConnect {
                                endpoint: endpoint.url.to_string(),
                                cause: connect_failure(&endpoint.url, cannot),
                                attempts: attempt,
                                elapsed_secs: started.elapsed().as_secs_f64(),
                            };
                            tracing::error!(batch = batch_id, request_id = %request_id, "{err}");
                            return Err(err);
                        }
                        let delay = connect_backoff(connect_failures);
                        tracing::warn!(
                            batch = batch_id,
                            endpoint = %endpoint.id,
                            request_id = %request_id,
                            attempt,
                            delay_ms = delay.as_millis() as u64,
                            "cannot connect, retrying: {}",
                            connect_failure(&endpoint.url, cannot)
                        );
                        self.count(stats, |s| s.retries += 1);
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = stop.wait_for(|stopped| *stopped) => return Err(SinkError::Stopped),
                        }
                        continue;
                    }
                    connect_failures = 0;
                    (
                        RetryAction::Retry {
                            reason: failure.to_string(),
                            retry_after: None,
                        },
                        0,
                        IngestResponse::default(),
                        None,
                    )
                }
            };
            match action {
                RetryAction::Retry {
                    reason,
                    retry_after,
                } => {
                    let elapsed = started.elapsed();
                    let delay = policy.delay(attempt, retry_after, rng);
                    if attempt >= policy.max_attempts || elapsed + delay > policy.max_elapsed {
                        self.stop();
                        return Err(SinkError::RetriesExhausted {
                            endpoint: endpoint.url.to_string(),
                            attempts: attempt,
                            elapsed_secs: elapsed.as_secs_f64(),
                            last: reason,
                        });
                    }
                    tracing::warn!(
                        batch = batch_id,
                        endpoint = %endpoint.id,
                        request_id = %request_id,
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        "transient failure, retrying: {reason}"
                    );
                    self.count(stats, |s| s.retries += 1);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.wait_for(|stopped| *stopped) => return Err(SinkError::Stopped),
                    }
                }
                RetryAction::Fatal(kind) => {
                    self.stop();
                    let url = endpoint.url.to_string();
                    let err = match kind {
                        FatalStatus::Unauthorized => SinkError::Unauthorized { endpoint: url },
                        FatalStatus::Forbidden => SinkError::Forbidden { endpoint: url },
                        FatalStatus::NotFound => SinkError::EndpointNotFound { endpoint: url },
                        FatalStatus::Redirect(status) => SinkError::Redirect {
                            location: describe_location(&endpoint.url, location.as_deref()),
                            endpoint: url,
                            status,
                        },
                    };
                    tracing::error!(batch = batch_id, request_id = %request_id, "{err}");
                    return Err(err);
                }
                action => {
                    if action == RetryAction::Successful && !response.is_cluedin_answer() {
                        self.count(stats, |s| s.responses_not_cluedin_json += 1);
                        self.warn_not_cluedin(endpoint, status, &response);
                    }
                    return Ok(Answer {
                        action,
                        status,
                        response,
                        request_id,
                    });
                }
            }
        }
    }
}

/// The typed cause of a connection failure to `url`'s host.
fn connect_failure(url: &reqwest::Url, cannot: CannotConnect) -> ConnectFailure {
    let host = url.host_str().unwrap_or("?").to_string();
    let address = match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.clone(),
    };
    match cannot {
        CannotConnect::Refused => ConnectFailure::Refused { address },
        CannotConnect::Unreachable(message) => ConnectFailure::Unreachable { address, message },
        CannotConnect::Dns(message) => ConnectFailure::Dns { host, message },
    }
}

/// What an answer tells the concurrency limiter: a 2xx's round trip is a fair sample; 429,
/// 503 and a timeout are the endpoint pushing back; anything else says nothing about load.
fn feedback(result: &Result<Reply, TransportError>, started: Instant) -> Feedback {
    match result {
        Ok(reply) if (200..300).contains(&reply.status) => Feedback {
            rtt: Some(started.elapsed()),
            back_pressure: false,
        },
        Ok(reply) => Feedback {
            rtt: None,
            back_pressure: matches!(reply.status, 429 | 503),
        },
        Err(e) => Feedback {
            rtt: None,
            back_pressure: e.is_timeout(),
        },
    }
}
