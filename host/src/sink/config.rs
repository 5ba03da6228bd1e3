//! Sink configuration: strict (unknown keys are errors), every default a named constant.
//!
//! ```toml
//! [sink]
//! endpoint = "https://app.example.com/upload/api/endpoint/6F5B…"   # default endpoint
//! routes = { "/Contact" = "https://app.example.com/upload/api/endpoint/0A1B…" }
//! body = "json-array"          # or "ndjson"
//! compression = "gzip"         # or "none"
//! gzip_level = 1
//! max_concurrency = 64       # adaptive between 1 and this; `concurrency = N` pins it
//! timeout_secs = 60
//! [sink.batch]
//! max_rows = 1000
//! max_bytes = 4194304
//! [sink.retry]
//! max_attempts = 10
//! ```
//!
//! The API token is not part of this file: it is passed to [`super::CluedInSink::new`] as an
//! [`super::ApiToken`] (from the environment or a secret store), so config files can be shared.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SinkError;
use super::body::{BodyFormat, Compression, MAX_GZIP_LEVEL};
use super::retries::RetryPolicy;

/// CluedIn's documented limit of rows per request (`docs/reference/cluedin-endpoint.md`).
pub const MAX_ROWS_PER_REQUEST: usize = 100_000;
/// Default rows per request body.
pub const DEFAULT_BATCH_MAX_ROWS: usize = 1_000;
/// Default uncompressed bytes per request body (framing included): 4 MiB.
pub const DEFAULT_BATCH_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Largest accepted `batch.max_bytes` (1 GiB): bodies are built in memory.
pub const MAX_BATCH_MAX_BYTES: usize = 1024 * 1024 * 1024;
/// Default gzip level: 1 (libdeflate's scale, 0–12).
///
/// Measured on one core of the 2-core machine (the same figures with the other core busy and
/// idle), customer-like rows of ~409 B of JSON in 1,000-row bodies, best of 3, with a
/// measurement since replaced by `cargo xtask bench gzip` (each level on the customer
/// plugin's wire JSON of a 250,000-row bench file, the sink's own `gzip`):
///
/// | gzip | level | ratio | µs CPU/row | MB/s in |
/// |---|---|---|---|---|
/// | zlib-rs (before) | 1 | 5.34x | 0.80 | 511 |
/// | zlib-rs (before) | 6 | 8.91x | 2.70 | 152 |
/// | libdeflate | 1 | 7.16x | 0.85 | 481 |
/// | libdeflate | 2 | 7.22x | 1.27 | 323 |
/// | libdeflate | 4 | 8.05x | 1.40 | 292 |
/// | libdeflate | 6 | 9.02x | 2.00 | 205 |
/// | libdeflate | 9 | 9.71x | 7.50 | 55 |
/// | libdeflate | 12 | 10.25x | 130.20 | 3 |
///
/// On the customer plugin's real wire JSON (the demo stage's first file, 25,000 rows of
/// ~222 B, the plugin bench's `gzip LEVEL FILE`, wall time of one run): level 1
/// 6.91x at 0.42 µs/row, 4 7.41x at 0.91, 6 7.85x at 1.50.
///
/// Level 1 is the knee: it sends 25–32 % fewer bytes than the old default (zlib-rs level 1)
/// for about the same CPU, and every higher level costs 1.5–3.6x its CPU for 1–21 % fewer
/// bytes; at a million rows per second on 2 cores that CPU is what decoding and the plugin
/// need. Raise the level when the network, not the CPU, is the bottleneck.
pub const DEFAULT_GZIP_LEVEL: u32 = 1;
/// Default ceiling of the adaptive request concurrency (see [`super::concurrency`]): above
/// the 24 an endpoint answering in 50 ms needs for 200,000 rows/s in 1,000-row bodies, low
/// enough that the bodies waiting for a request stay a few MB.
pub const DEFAULT_MAX_CONCURRENCY: usize = 64;
/// Largest accepted concurrency (pinned or ceiling).
pub const MAX_CONCURRENCY: usize = 256;
/// Default per-request timeout (connect + send + answer), seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
/// Default connect timeout, seconds.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 10;
/// Default attempts per request body (first try included).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
/// Default first back-off ceiling, milliseconds (doubles each retry, full jitter).
pub const DEFAULT_INITIAL_BACKOFF_MS: u64 = 500;
/// Default back-off cap, seconds.
pub const DEFAULT_MAX_BACKOFF_SECS: u64 = 30;
/// Default time budget for one request body across its retries, seconds.
pub const DEFAULT_MAX_ELAPSED_SECS: u64 = 600;
/// Default cap on a server's `Retry-After`, seconds (a longer one is shortened to this).
pub const DEFAULT_MAX_RETRY_AFTER_SECS: u64 = 300;

/// Configuration of the CluedIn sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Default endpoint URL (`{base}/upload/api/endpoint/{id}`) for entity types without a route.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Entity type → endpoint URL. CluedIn makes one data set per endpoint.
    #[serde(default)]
    pub routes: BTreeMap<String, String>,
    /// Body framing.
    #[serde(default)]
    pub body: BodyFormat,
    /// Body compression.
    #[serde(default)]
    pub compression: Compression,
    /// gzip level 0–12, libdeflate's scale (0 = stored, still gzip-framed), used when
    /// `compression = "gzip"`.
    #[serde(default = "default_gzip_level")]
    pub gzip_level: u32,
    /// Requests in flight, pinned. Unset (the default): adaptive between 1 and
    /// `max_concurrency`, found from the endpoint's answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Ceiling of the adaptive concurrency.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Per-request timeout, seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Connect timeout, seconds.
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// Limits of one request payload (`[sink.batch]`).
    #[serde(default)]
    pub batch: BatchConfig,
    /// Retry policy.
    #[serde(default)]
    pub retry: RetryConfig,
}

/// How request bodies are cut: whichever limit is reached first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Rows per body, 1..=100,000.
    #[serde(default = "default_batch_max_rows")]
    pub max_rows: usize,
    /// Uncompressed bytes per body, framing included. A single record larger than this is
    /// sent alone.
    #[serde(default = "default_batch_max_bytes")]
    pub max_bytes: usize,
}

/// Retry policy settings (see [`RetryPolicy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts per body, first try included (1 = no retries).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First back-off ceiling, milliseconds.
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Back-off cap, seconds.
    #[serde(default = "default_max_backoff_secs")]
    pub max_backoff_secs: u64,
    /// Time budget for one body across its retries, seconds.
    #[serde(default = "default_max_elapsed_secs")]
    pub max_elapsed_secs: u64,
    /// Cap on the server's `Retry-After`, seconds.
    #[serde(default = "default_max_retry_after_secs")]
    pub max_retry_after_secs: u64,
}

fn default_gzip_level() -> u32 {
    DEFAULT_GZIP_LEVEL
}
fn default_max_concurrency() -> usize {
    DEFAULT_MAX_CONCURRENCY
}
fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}
fn default_connect_timeout_secs() -> u64 {
    DEFAULT_CONNECT_TIMEOUT_SECS
}
fn default_batch_max_rows() -> usize {
    DEFAULT_BATCH_MAX_ROWS
}
fn default_batch_max_bytes() -> usize {
    DEFAULT_BATCH_MAX_BYTES
}
fn default_max_attempts() -> u32 {
    DEFAULT_MAX_ATTEMPTS
}
fn default_initial_backoff_ms() -> u64 {
    DEFAULT_INITIAL_BACKOFF_MS
}
fn default_max_backoff_secs() -> u64 {
    DEFAULT_MAX_BACKOFF_SECS
}
fn default_max_elapsed_secs() -> u64 {
    DEFAULT_MAX_ELAPSED_SECS
}
fn default_max_retry_after_secs() -> u64 {
    DEFAULT_MAX_RETRY_AFTER_SECS
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_rows: DEFAULT_BATCH_MAX_ROWS,
            max_bytes: DEFAULT_BATCH_MAX_BYTES,
        }
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff_ms: DEFAULT_INITIAL_BACKOFF_MS,
            max_backoff_secs: DEFAULT_MAX_BACKOFF_SECS,
            max_elapsed_secs: DEFAULT_MAX_ELAPSED_SECS,
            max_retry_after_secs: DEFAULT_MAX_RETRY_AFTER_SECS,
        }
    }
}

impl RetryConfig {
    /// The policy these settings describe.
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            initial_backoff: Duration::from_millis(self.initial_backoff_ms),
            max_backoff: Duration::from_secs(self.max_backoff_secs),
            max_elapsed: Duration::from_secs(self.max_elapsed_secs),
            max_retry_after: Duration::from_secs(self.max_retry_after_secs),
        }
    }
}

impl SinkConfig {
    /// How many requests are in flight: pinned by `concurrency`, else adaptive.
    pub fn concurrency_mode(&self) -> super::concurrency::Mode {
        match self.concurrency {
            Some(n) => super::concurrency::Mode::Fixed(n),
            None => super::concurrency::Mode::Adaptive {
                max: self.max_concurrency,
            },
        }
    }

    /// A configuration with one default endpoint and every other setting at its default.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: Some(endpoint.into()),
            routes: BTreeMap::new(),
            body: BodyFormat::default(),
            compression: Compression::default(),
            gzip_level: DEFAULT_GZIP_LEVEL,
            concurrency: None,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            connect_timeout_secs: DEFAULT_CONNECT_TIMEOUT_SECS,
            batch: BatchConfig::default(),
            retry: RetryConfig::default(),
        }
    }

    /// Checks ranges and URLs. [`super::CluedInSink::new`] calls it.
    pub fn validate(&self) -> Result<(), SinkError> {
        let bad = |m: String| Err(SinkError::Config(m));
        if self.endpoint.is_none() && self.routes.is_empty() {
            return bad("set `endpoint` (the default endpoint) or at least one route".into());
        }
        for url in self.endpoint.iter().chain(self.routes.values()) {
            check_url(url)?;
        }
        if self.gzip_level > MAX_GZIP_LEVEL {
            return bad(format!(
                "gzip_level must be 0..={MAX_GZIP_LEVEL} (libdeflate's scale), got {}",
                self.gzip_level
            ));
        }
        if !(1..=MAX_ROWS_PER_REQUEST).contains(&self.batch.max_rows) {
            return bad(format!(
                "batch.max_rows must be 1..={MAX_ROWS_PER_REQUEST} (CluedIn's limit), got {}",
                self.batch.max_rows
            ));
        }
        if !(1..=MAX_BATCH_MAX_BYTES).contains(&self.batch.max_bytes) {
            return bad(format!(
                "batch.max_bytes must be 1..={MAX_BATCH_MAX_BYTES}, got {}",
                self.batch.max_bytes
            ));
        }
        if let Some(n) = self.concurrency
            && !(1..=MAX_CONCURRENCY).contains(&n)
        {
            return bad(format!(
                "concurrency must be 1..={MAX_CONCURRENCY}, got {n}"
            ));
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.max_concurrency) {
            return bad(format!(
                "max_concurrency must be 1..={MAX_CONCURRENCY}, got {}",
                self.max_concurrency
            ));
        }
        if self.timeout_secs == 0 || self.connect_timeout_secs == 0 {
            return bad("timeout_secs and connect_timeout_secs must be at least 1".into());
        }
        if self.retry.max_attempts == 0 {
            return bad("retry.max_attempts must be at least 1".into());
        }
        if self.retry.initial_backoff_ms == 0 {
            return bad("retry.initial_backoff_ms must be at least 1".into());
        }
        Ok(())
    }
}

/// An endpoint URL must parse and be `http` or `https` without user info.
fn check_url(url: &str) -> Result<(), SinkError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| SinkError::Config(format!("endpoint URL {url:?} does not parse: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(SinkError::Config(format!(
            "endpoint URL {url:?} must be http or https"
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(SinkError::Config(
            "endpoint URLs must not carry credentials; the token is passed separately".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str =
        "https://app.example.com/upload/api/endpoint/6F5B4C2A-0000-0000-0000-000000000001";

    #[test]
    fn defaults_are_the_named_constants() {
        let c: SinkConfig = serde_json::from_str(&format!(r#"{{"endpoint":"{URL}"}}"#)).unwrap();
        assert_eq!(c, SinkConfig::new(URL));
        assert_eq!(c.batch.max_rows, DEFAULT_BATCH_MAX_ROWS);
        assert_eq!(c.batch.max_bytes, DEFAULT_BATCH_MAX_BYTES);
        assert_eq!(c.gzip_level, DEFAULT_GZIP_LEVEL);
        assert_eq!(c.body, BodyFormat::JsonArray);
        assert_eq!(c.compression, Compression::Gzip);
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e =
            serde_json::from_str::<SinkConfig>(&format!(r#"{{"endpoint":"{URL}","gzip":true}}"#));
        assert!(e.unwrap_err().to_string().contains("unknown field"));
        let e = serde_json::from_str::<SinkConfig>(&format!(
            r#"{{"endpoint":"{URL}","batch":{{"rows":5}}}}"#
        ));
        assert!(e.unwrap_err().to_string().contains("unknown field"));
    }

    #[test]
    fn body_and_compression_names() {
        let c: SinkConfig = serde_json::from_str(&format!(
            r#"{{"endpoint":"{URL}","body":"ndjson","compression":"none"}}"#
        ))
        .unwrap();
        assert_eq!(c.body, BodyFormat::Ndjson);
        assert_eq!(c.compression, Compression::None);
    }

    #[test]
    fn validation_rejects_out_of_range_values() {
        let mut c = SinkConfig::new(URL);
        c.batch.max_rows = MAX_ROWS_PER_REQUEST + 1;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("batch.max_rows")
        );
        let mut c = SinkConfig::new(URL);
        c.gzip_level = MAX_GZIP_LEVEL;
        c.validate().unwrap();
        c.gzip_level = MAX_GZIP_LEVEL + 1;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            SinkError::Config("gzip_level must be 0..=12 (libdeflate's scale), got 13".into())
                .to_string()
        );
        let mut c = SinkConfig::new(URL);
        c.concurrency = Some(0);
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            SinkError::Config("concurrency must be 1..=256, got 0".into()).to_string()
        );
        c.concurrency = None;
        c.max_concurrency = 257;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            SinkError::Config("max_concurrency must be 1..=256, got 257".into()).to_string()
        );
        let c = SinkConfig::new("ftp://x/upload");
        assert!(c.validate().is_err());
        let c = SinkConfig::new("https://user:pw@x/upload");
        let msg = c.validate().unwrap_err().to_string();
        assert!(!msg.contains("pw"), "{msg}");
        let mut c = SinkConfig::new(URL);
        c.endpoint = None;
        assert!(c.validate().is_err());
        c.routes.insert("/Customer".into(), URL.into());
        c.validate().unwrap();
    }
}
