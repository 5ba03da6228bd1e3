//! Retry policy as data (after Vector's `sinks/util/retries.rs`).
//!
//! [`classify`] turns one answer (status + parsed body) into a [`RetryAction`]; the service
//! carries it out. [`RetryPolicy`] says how long to wait: capped exponential back-off with full
//! jitter (`sleep = random(0, min(cap, initial · 2^(retry-1)))`), except that a server's
//! `Retry-After` (capped at `max_retry_after`) is waited out exactly.
//!
//! | answer | action |
//! |---|---|
//! | 2xx, `success` not `false` | [`RetryAction::Successful`] |
//! | 408, 429, 5xx except 501, connection error, timeout | [`RetryAction::Retry`] |
//! | 413 | [`RetryAction::Split`] (halves; a single record is rejected as too large) |
//! | 400 (or 2xx with `success:false`) naming rows | [`RetryAction::RejectRows`], the rest is resent |
//! | 400 (or 2xx with `success:false`) naming none | [`RetryAction::Bisect`] |
//! | 401, 403, 404, any 3xx (redirects are not followed) | [`RetryAction::Fatal`]: the run stops |
//! | connection refused, host name not found, host or network unreachable | retried [`CONNECT_RETRIES`] times ([`connect_backoff`], ~7.5 s in all), then fatal (`SinkError::CannotConnect`) |
//! | any other status | [`RetryAction::Reject`]: the records are rejected with the answer |

use std::time::{Duration, SystemTime};

use super::response::IngestResponse;

/// What to do after an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryAction {
    /// Stored: the records are delivered.
    Successful,
    /// A transient failure: send the same body again after a delay.
    Retry {
        /// Why (status and message, or the transport error).
        reason: String,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// 413: send each half separately.
    Split,
    /// The answer names rows (indices into the request body): reject them, resend the rest.
    RejectRows(Vec<usize>),
    /// A 400 naming no row: send each half separately to find the offending rows.
    Bisect {
        /// The server's message.
        reason: String,
    },
    /// A status that no retry or split can fix for these records: reject them.
    Reject {
        /// The server's message.
        reason: String,
    },
    /// A status that stops the run.
    Fatal(FatalStatus),
}

/// Statuses that stop the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatalStatus {
    /// 401.
    Unauthorized,
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
    /// A 3xx (the status): the sink follows no redirect.
    Redirect(u16),
}

/// Retries of a body whose endpoint cannot be connected to (connection refused, host name
/// not found, no route): a brief outage (a restart, a DNS blip) is waited out, a wrong URL
/// or a host that is down stops the run in seconds, not after the whole retry budget.
pub const CONNECT_RETRIES: u32 = 4;
/// The wait before the first of them; each further one waits twice as long (0.5 + 1 + 2 +
/// 4 = 7.5 s in all).
pub const CONNECT_FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// The wait before connect retry number `retry` (1-based):
/// `CONNECT_FIRST_BACKOFF · 2^(retry-1)`.
pub fn connect_backoff(retry: u32) -> Duration {
    let factor = 1u32
        .checked_shl(retry.saturating_sub(1))
        .unwrap_or(u32::MAX);
    CONNECT_FIRST_BACKOFF.saturating_mul(factor)
}

/// Whether a status is transient: 408, 429, and 5xx except 501 (Not Implemented).
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429) || ((500..600).contains(&status) && status != 501)
}

/// Classifies an HTTP answer for a body of `rows` records.
pub fn classify(
    status: u16,
    response: &IngestResponse,
    retry_after: Option<Duration>,
    rows: usize,
) -> RetryAction {
    let reason = || {
        if response.success == Some(false) && (200..=299).contains(&status) {
            // An answer that says it failed although its status says it worked: say so.
            match response.detail() {
                Some(detail) => {
                    format!("the endpoint answered {status} with success:false: {detail}")
                }
                None => format!("the endpoint answered {status} with success:false and no message"),
            }
        } else {
            format!("HTTP {status}: {}", response.summary())
        }
    };
    let rejected_by_body = |resp: &IngestResponse| {
        let mut named: Vec<usize> = resp
            .row_errors()
            .map(|(i, _)| i)
            .filter(|&i| i < rows)
            .collect();
        named.sort_unstable();
        named.dedup();
        if named.is_empty() {
            RetryAction::Bisect { reason: reason() }
        } else {
            RetryAction::RejectRows(named)
        }
    };
    match status {
        200..=299 if response.success == Some(false) => rejected_by_body(response),
        200..=299 => RetryAction::Successful,
        300..=399 => RetryAction::Fatal(FatalStatus::Redirect(status)),
        401 => RetryAction::Fatal(FatalStatus::Unauthorized),
        403 => RetryAction::Fatal(FatalStatus::Forbidden),
        404 => RetryAction::Fatal(FatalStatus::NotFound),
        413 => RetryAction::Split,
        400 => rejected_by_body(response),
        s if is_retryable_status(s) => RetryAction::Retry {
            reason: reason(),
            retry_after,
        },
        _ => RetryAction::Reject { reason: reason() },
    }
}

/// How often and how long to retry one request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per body, first try included.
    pub max_attempts: u32,
    /// Back-off ceiling of the first retry.
    pub initial_backoff: Duration,
    /// Back-off cap.
    pub max_backoff: Duration,
    /// Time budget for one body across its retries: a retry whose wait would end past it is
    /// not made.
    pub max_elapsed: Duration,
    /// Longest `Retry-After` honoured as given (longer ones are shortened to this).
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// The back-off ceiling before retry number `retry` (1-based): `min(cap, initial · 2^(retry-1))`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// The wait before retry number `retry` (1-based): the server's `Retry-After` (capped) if it
    /// sent one, else full jitter, uniform in `[0, backoff_ceiling(retry)]`.
    pub fn delay(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        rng: &mut fastrand::Rng,
    ) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_retry_after);
        }
        let ceiling = self
            .backoff_ceiling(retry)
            .as_micros()
            .min(u128::from(u64::MAX)) as u64;
        Duration::from_micros(rng.u64(0..=ceiling))
    }
}

/// Parses a `Retry-After` value: delta-seconds (`120`) or an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, also RFC 850 and asctime forms). A date in the past
/// gives zero. Anything else gives `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurd values saturate; the policy caps them anyway.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::response::{RowMessage, parse_response};

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(30),
        }
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 409, 413, 422, 501] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }

    #[test]
    fn classification_table() {
        let empty = IngestResponse::default();
        assert_eq!(classify(200, &empty, None, 5), RetryAction::Successful);
        assert_eq!(
            classify(201, &parse_response(br#"{"success":true}"#), None, 5),
            RetryAction::Successful
        );
        assert_eq!(
            classify(401, &empty, None, 5),
            RetryAction::Fatal(FatalStatus::Unauthorized)
        );
        assert_eq!(
            classify(403, &empty, None, 5),
            RetryAction::Fatal(FatalStatus::Forbidden)
        );
        assert_eq!(
            classify(404, &empty, None, 5),
            RetryAction::Fatal(FatalStatus::NotFound)
        );
        for s in [300, 301, 302, 303, 304, 307, 308] {
            assert_eq!(
                classify(s, &empty, None, 5),
                RetryAction::Fatal(FatalStatus::Redirect(s))
            );
        }
        assert_eq!(classify(413, &empty, None, 5), RetryAction::Split);
        let ra = Some(Duration::from_secs(3));
        assert!(
            matches!(classify(429, &empty, ra, 5), RetryAction::Retry { retry_after, .. } if retry_after == ra)
        );
        assert!(matches!(
            classify(503, &empty, None, 5),
            RetryAction::Retry { .. }
        ));
        assert!(matches!(
            classify(408, &empty, None, 5),
            RetryAction::Retry { .. }
        ));
        assert!(matches!(
            classify(501, &empty, None, 5),
            RetryAction::Reject { .. }
        ));
        assert!(matches!(
            classify(422, &empty, None, 5),
            RetryAction::Reject { .. }
        ));
    }

    #[test]
    fn bad_request_names_rows_or_bisects() {
        let named = IngestResponse {
            success: Some(false),
            errors: vec![
                RowMessage {
                    row_index: Some(3),
                    ..Default::default()
                },
                RowMessage {
                    row_index: Some(1),
                    ..Default::default()
                },
                RowMessage {
                    row_index: Some(3),
                    ..Default::default()
                },
                RowMessage {
                    row_index: Some(-1),
                    ..Default::default()
                },
                RowMessage {
                    row_index: Some(99),
                    ..Default::default()
                }, // outside the body
            ],
            ..Default::default()
        };
        assert_eq!(
            classify(400, &named, None, 5),
            RetryAction::RejectRows(vec![1, 3])
        );
        // 200 with success:false is keyed on `success`, like a 400.
        assert_eq!(
            classify(200, &named, None, 5),
            RetryAction::RejectRows(vec![1, 3])
        );
        let none = parse_response(
            br#"{"success":false,"errors":[{"rowIndex":-1,"messageId":"invalid-array-json-sent","errorMessage":"not an array"}]}"#,
        );
        match classify(400, &none, None, 5) {
            RetryAction::Bisect { reason } => {
                assert!(reason.contains("invalid-array-json-sent"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(400, &IngestResponse::default(), None, 5),
            RetryAction::Bisect { .. }
        ));
    }

    #[test]
    fn a_2xx_with_success_false_says_what_the_body_said() {
        let bisect_reason = |body: &[u8]| match classify(200, &parse_response(body), None, 5) {
            RetryAction::Bisect { reason } => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            bisect_reason(br#"{"success":false,"error":true,"receiptId":"r"}"#),
            "the endpoint answered 200 with success:false and no message"
        );
        assert_eq!(
            bisect_reason(br#"{"success":false,"errors":[]}"#),
            "the endpoint answered 200 with success:false and no message"
        );
        assert_eq!(
            bisect_reason(br#"{"success":false,"message":"The data set is locked"}"#),
            "the endpoint answered 200 with success:false: The data set is locked"
        );
        assert_eq!(
            bisect_reason(
                br#"{"success":false,"errors":[{"rowIndex":-1,"messageId":"quota","errorMessage":"over quota"}]}"#
            ),
            "the endpoint answered 200 with success:false: quota: over quota"
        );
        // A 400 keeps its status in front.
        match classify(400, &parse_response(br#"{"success":false}"#), None, 5) {
            RetryAction::Bisect { reason } => assert_eq!(reason, "HTTP 400: (empty body)"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn backoff_is_capped_exponential_with_full_jitter() {
        let p = policy();
        assert_eq!(p.backoff_ceiling(1), Duration::from_millis(100));
        assert_eq!(p.backoff_ceiling(2), Duration::from_millis(200));
        assert_eq!(p.backoff_ceiling(4), Duration::from_millis(800));
        assert_eq!(p.backoff_ceiling(6), Duration::from_secs(2));
        assert_eq!(p.backoff_ceiling(200), Duration::from_secs(2));
        let mut rng = fastrand::Rng::with_seed(7);
        let samples: Vec<Duration> = (0..2000).map(|_| p.delay(3, None, &mut rng)).collect();
        assert!(samples.iter().all(|d| *d <= Duration::from_millis(400)));
        // Full jitter spreads over the whole range, down to near zero.
        assert!(samples.iter().any(|d| *d < Duration::from_millis(40)));
        assert!(samples.iter().any(|d| *d > Duration::from_millis(360)));
    }

    #[test]
    fn connect_retries_are_brief() {
        let all: Duration = (1..=CONNECT_RETRIES).map(connect_backoff).sum();
        assert_eq!(all, Duration::from_millis(7_500));
        assert_eq!(connect_backoff(1), CONNECT_FIRST_BACKOFF);
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let p = policy();
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(5)), &mut rng),
            Duration::from_secs(5)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3600)), &mut rng),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn retry_after_parsing() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        // RFC 850 and asctime forms.
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed Oct 21 07:28:05 2015", now),
            Some(Duration::from_secs(5))
        );
        // Past dates mean "now".
        assert_eq!(
            parse_retry_after("Tue, 20 Oct 2015 07:28:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }
}
