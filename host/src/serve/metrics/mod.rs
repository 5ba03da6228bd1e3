//! `GET /metrics`: counters summed over the runs of this process, the events it received
//! and the Snowflake External Function relay, in the Prometheus text format (version 0.0.4).
//!
//! The endpoint families (`stagepush_records_total`, `stagepush_requests_total`,
//! `stagepush_retries_total`, `stagepush_bytes_sent_total`,
//! `stagepush_responses_not_cluedin_json_total`) count the runs' requests and the relay's. The `stagepush_relay_*` families are the relay's own: its answers, its rows by
//! fate, replays, 202s, and the request bodies it sent with their records
//! (`stagepush_relay_body_records`, a histogram: `_count` bodies, `_sum` records).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::events::Notification;
use crate::pipeline::RunReport;
use crate::sink::SinkStats;
use crate::sink::concurrency::ConcurrencyStats;

/// The `Content-Type` of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the `stagepush_relay_body_records` buckets (records per request body).
pub const BODY_RECORDS_BUCKETS: [u64; 10] =
    [1, 10, 50, 100, 250, 500, 1_000, 2_500, 10_000, 100_000];

/// Where the answer to a replayed relay batch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFrom {
    /// This process delivered it (or is delivering it).
    Memory,
    /// The state kept its result (an earlier process delivered it).
    State,
}

/// The metrics of one `serve` process.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
    /// Pending files (see [`Metrics::set_queue_depth`]).
    queue_depth: AtomicI64,
    /// Relay records waiting for a request body (see [`Metrics::set_relay_waiting`]).
    relay_waiting: AtomicI64,
    /// The relay sink's request limit after its latest body.
    relay_concurrency: AtomicI64,
    /// Decompressed relay request bytes admitted and not yet done.
    relay_inflight_bytes: AtomicI64,
    /// Relay requests waiting to be admitted.
    relay_admission_waiting: AtomicI64,
    /// `serve --queue`: the consumer's message counts.
    queue: crate::queue::consumer::Counters,
}

#[derive(Debug, Default)]
struct Counters {
    rows_delivered: u64,
    rows_filtered: u64,
    rows_unchanged: u64,
    rows_dead_lettered: u64,
    records_delivered: u64,
    records_rejected: u64,
    records_unchanged: u64,
    requests: BTreeMap<u16, u64>,
    retries: u64,
    bytes_sent: u64,
    responses_not_cluedin_json: u64,
    plugin_seconds: f64,
    /// The request concurrency of the runs (merged; the limit is the latest run's).
    concurrency: ConcurrencyStats,
    runs: u64,
    runs_failed: u64,
    events_created: u64,
    events_ignored: u64,
    events_test: u64,
    relay: RelayCounters,
}

#[derive(Debug, Default)]
struct RelayCounters {
    /// (method, status) → answers.
    answers: BTreeMap<(&'static str, u16), u64>,
    rows_delivered: u64,
    rows_filtered: u64,
    rows_rejected: u64,
    rows_failed: u64,
    replays_memory: u64,
    replays_state: u64,
    deferred: u64,
    records: u64,
    /// Bodies per bucket of [`BODY_RECORDS_BUCKETS`] (not cumulative), then the rest.
    body_buckets: [u64; BODY_RECORDS_BUCKETS.len() + 1],
    bodies: u64,
    body_records: u64,
}

impl Metrics {
    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a finished run (its report).
    pub fn add_run(&self, report: &RunReport) {
        let mut c = self.counters();
        c.runs += 1;
        if report.fatal_error.is_some() {
            c.runs_failed += 1;
        }
        c.rows_delivered += report.rows.delivered;
        c.rows_filtered += report.rows.filtered;
        c.rows_unchanged += report.rows.unchanged;
        c.rows_dead_lettered += report.rows.dead_lettered;
        c.records_delivered += report.records_delivered;
        c.records_rejected += report.records_rejected;
        c.records_unchanged += report.records_unchanged;
        for (status, n) in &report.status {
            *c.requests.entry(*status).or_default() += n;
        }
        c.retries += report.retries;
        c.bytes_sent += report.bytes_sent;
        c.responses_not_cluedin_json += report.responses_not_cluedin_json;
        c.concurrency.merge(&report.concurrency);
        if report.plugin.seconds_in_plugin.is_finite() && report.plugin.seconds_in_plugin > 0.0 {
            c.plugin_seconds += report.plugin.seconds_in_plugin;
        }
    }

    /// Adds the endpoint counters of request bodies sent outside a run (the relay's).
    pub fn add_sink_stats(&self, stats: &SinkStats) {
        let mut c = self.counters();
        c.records_delivered += stats.records_delivered;
        c.records_rejected += stats.records_rejected;
        for (status, n) in &stats.status {
            *c.requests.entry(*status).or_default() += n;
        }
        c.retries += stats.retries;
        c.bytes_sent += stats.bytes_sent;
        c.responses_not_cluedin_json += stats.responses_not_cluedin_json;
    }

    /// Counts a relay answer (`method`: `POST`, `GET` or `other`).
    pub fn relay_answer(&self, method: &'static str, status: u16) {
        *self
            .counters()
            .relay
            .answers
            .entry((method, status))
            .or_default() += 1;
    }

    /// Counts the rows of a relay request by fate (`failed`: answered 502).
    pub fn relay_rows(&self, delivered: u64, filtered: u64, rejected: u64, failed: u64) {
        let relay = &mut self.counters().relay;
        relay.rows_delivered += delivered;
        relay.rows_filtered += filtered;
        relay.rows_rejected += rejected;
        relay.rows_failed += failed;
    }

    /// Counts a POST answered with an earlier result (nothing delivered again).
    pub fn relay_replay(&self, from: ReplayFrom) {
        let relay = &mut self.counters().relay;
        match from {
            ReplayFrom::Memory => relay.replays_memory += 1,
            ReplayFrom::State => relay.replays_state += 1,
        }
    }

    /// Counts a POST answered 202 (its delivery outlasted the sync wait).
    pub fn relay_deferred(&self) {
        self.counters().relay.deferred += 1;
    }

    /// Counts records handed to the relay's shared batcher.
    pub fn relay_records_queued(&self, n: usize) {
        self.counters().relay.records += n as u64;
    }

    /// Counts a request body the relay sent, with its records.
    pub fn relay_body_sent(&self, records: usize) {
        let records = records as u64;
        let relay = &mut self.counters().relay;
        let bucket = BODY_RECORDS_BUCKETS
            .iter()
            .position(|&le| records <= le)
            .unwrap_or(BODY_RECORDS_BUCKETS.len());
        relay.body_buckets[bucket] += 1;
        relay.bodies += 1;
        relay.body_records += records;
    }

    /// Sets the relay records waiting for a request body (open or queued bodies).
    pub fn set_relay_waiting(&self, n: usize) {
        self.relay_waiting
            .store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Sets the relay sink's request limit (adaptive unless pinned), after a body.
    pub fn set_relay_concurrency(&self, n: usize) {
        self.relay_concurrency
            .store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Sets the relay request bytes in flight (admitted, not done).
    pub fn set_relay_inflight_bytes(&self, n: usize) {
        self.relay_inflight_bytes
            .store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Adds `delta` to the relay requests waiting to be admitted.
    pub fn relay_admission_waiting(&self, delta: i64) {
        self.relay_admission_waiting
            .fetch_add(delta, Ordering::Relaxed);
    }

    /// Counts a run that stopped without a report.
    pub fn add_failed_run(&self) {
        let mut c = self.counters();
        c.runs += 1;
        c.runs_failed += 1;
    }

    /// Counts the events of a payload.
    pub fn add_events(&self, notifications: &[Notification]) {
        let mut c = self.counters();
        for n in notifications {
            match n {
                Notification::Created(_) => c.events_created += 1,
                Notification::Test => c.events_test += 1,
                Notification::Ignored { .. } => c.events_ignored += 1,
            }
        }
    }

    /// Sets the number of pending files (the processor, after listing them).
    pub fn set_queue_depth(&self, n: usize) {
        self.queue_depth
            .store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Adds `n` newly pending files (a request, after recording them).
    pub fn add_queue_depth(&self, n: usize) {
        self.queue_depth
            .fetch_add(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// The pending files as last counted.
    pub fn queue_depth(&self) -> i64 {
        self.queue_depth.load(Ordering::Relaxed).max(0)
    }

    /// The exposition text.
    /// The queue consumer's counts (`serve --queue`), updated by the consumer itself.
    pub fn queue_counters(&self) -> &crate::queue::consumer::Counters {
        &self.queue
    }

    pub fn render(&self) -> String {
        let c = self.counters();
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let plain = |value: u64| vec![(String::new(), value.to_string())];
        let labelled = |label: &str, values: &[(&str, u64)]| -> Vec<(String, String)> {
            values
                .iter()
                .map(|(v, n)| (format!("{{{label}=\"{v}\"}}"), n.to_string()))
                .collect()
        };
        family(
            "stagepush_rows_total",
            "counter",
            "Input rows by outcome.",
            &labelled(
                "outcome",
                &[
                    ("delivered", c.rows_delivered),
                    ("filtered", c.rows_filtered),
                    ("unchanged", c.rows_unchanged),
                    ("dead_lettered", c.rows_dead_lettered),
                ],
            ),
        );
        family(
            "stagepush_records_total",
            "counter",
            "Records by outcome at the endpoint.",
            &labelled(
                "outcome",
                &[
                    ("delivered", c.records_delivered),
                    ("rejected", c.records_rejected),
                    ("unchanged", c.records_unchanged),
                ],
            ),
        );
        let statuses: Vec<(String, u64)> = c
            .requests
            .iter()
            .map(|(status, n)| (status.to_string(), *n))
            .collect();
        let statuses: Vec<(&str, u64)> = statuses.iter().map(|(s, n)| (s.as_str(), *n)).collect();
        family(
            "stagepush_requests_total",
            "counter",
            "Requests to the ingestion endpoint by HTTP status.",
            &labelled("status", &statuses),
        );
        family(
            "stagepush_retries_total",
            "counter",
            "Requests to the ingestion endpoint that were retried.",
            &plain(c.retries),
        );
        family(
            "stagepush_bytes_sent_total",
            "counter",
            "Request body bytes sent to the ingestion endpoint (after compression).",
            &plain(c.bytes_sent),
        );
        family(
            "stagepush_responses_not_cluedin_json_total",
            "counter",
            "2xx answers of the ingestion endpoint whose body was not CluedIn's JSON (an HTML page, an empty body); their records were counted delivered.",
            &plain(c.responses_not_cluedin_json),
        );
        family(
            "stagepush_request_concurrency",
            "gauge",
            "Requests the latest run allowed in flight at its end (adaptive unless pinned).",
            &plain(c.concurrency.limit as u64),
        );
        family(
            "stagepush_request_concurrency_changes_total",
            "counter",
            "Changes of the adaptive request concurrency, by direction.",
            &labelled(
                "direction",
                &[
                    ("up", c.concurrency.increases),
                    ("down", c.concurrency.decreases),
                ],
            ),
        );
        family(
            "stagepush_request_rtt_seconds",
            "summary",
            "Round trips of requests answered 2xx.",
            &[
                (
                    "_sum".to_string(),
                    format!(
                        "{}",
                        c.concurrency.rtt_mean_ms * c.concurrency.rtt_samples as f64 / 1000.0
                    ),
                ),
                ("_count".to_string(), c.concurrency.rtt_samples.to_string()),
            ],
        );
        family(
            "stagepush_plugin_seconds_total",
            "counter",
            "Seconds spent in the transform plugin.",
            &[(String::new(), format!("{}", c.plugin_seconds))],
        );
        family(
            "stagepush_runs_total",
            "counter",
            "Pipeline runs started.",
            &plain(c.runs),
        );
        family(
            "stagepush_runs_failed_total",
            "counter",
            "Pipeline runs that stopped on an error (their files stay pending).",
            &plain(c.runs_failed),
        );
        family(
            "stagepush_events_total",
            "counter",
            "Storage events received, by kind.",
            &labelled(
                "kind",
                &[
                    ("created", c.events_created),
                    ("ignored", c.events_ignored),
                    ("test", c.events_test),
                ],
            ),
        );
        let r = &c.relay;
        let answers: Vec<(String, String)> = r
            .answers
            .iter()
            .map(|((method, status), n)| {
                (
                    format!("{{method=\"{method}\",status=\"{status}\"}}"),
                    n.to_string(),
                )
            })
            .collect();
        family(
            "stagepush_relay_requests_total",
            "counter",
            "External Function requests answered, by method and HTTP status.",
            &answers,
        );
        family(
            "stagepush_relay_rows_total",
            "counter",
            "External Function rows by fate (failed: the request was answered 502).",
            &labelled(
                "fate",
                &[
                    ("delivered", r.rows_delivered),
                    ("filtered", r.rows_filtered),
                    ("rejected", r.rows_rejected),
                    ("failed", r.rows_failed),
                ],
            ),
        );
        family(
            "stagepush_relay_replays_total",
            "counter",
            "External Function POSTs of a batch id seen before, answered with its result without delivering again.",
            &labelled(
                "from",
                &[("memory", r.replays_memory), ("state", r.replays_state)],
            ),
        );
        family(
            "stagepush_relay_deferred_total",
            "counter",
            "External Function POSTs answered 202 (delivery outlasted --relay-sync-secs; Snowflake polls).",
            &plain(r.deferred),
        );
        family(
            "stagepush_relay_records_total",
            "counter",
            "Records the relay handed to its shared batcher.",
            &plain(r.records),
        );
        let mut cumulative = 0;
        let mut buckets: Vec<(String, String)> = BODY_RECORDS_BUCKETS
            .iter()
            .zip(&r.body_buckets)
            .map(|(le, n)| {
                cumulative += n;
                (format!("_bucket{{le=\"{le}\"}}"), cumulative.to_string())
            })
            .collect();
        buckets.push(("_bucket{le=\"+Inf\"}".into(), r.bodies.to_string()));
        buckets.push(("_sum".into(), r.body_records.to_string()));
        buckets.push(("_count".into(), r.bodies.to_string()));
        family(
            "stagepush_relay_body_records",
            "histogram",
            "Records per request body the relay sent (records of concurrent requests share bodies).",
            &buckets,
        );
        drop(c);
        family(
            "stagepush_relay_records_waiting",
            "gauge",
            "Relay records waiting for a request body to leave.",
            &[(
                String::new(),
                self.relay_waiting
                    .load(Ordering::Relaxed)
                    .max(0)
                    .to_string(),
            )],
        );
        family(
            "stagepush_relay_request_concurrency",
            "gauge",
            "Requests the relay's sink allowed in flight after its latest body (adaptive unless pinned).",
            &[(
                String::new(),
                self.relay_concurrency
                    .load(Ordering::Relaxed)
                    .max(0)
                    .to_string(),
            )],
        );
        family(
            "stagepush_relay_inflight_bytes",
            "gauge",
            "Decompressed bytes of the relay requests admitted and not yet done (bounded by --relay-max-inflight-bytes).",
            &[(
                String::new(),
                self.relay_inflight_bytes
                    .load(Ordering::Relaxed)
                    .max(0)
                    .to_string(),
            )],
        );
        family(
            "stagepush_relay_admission_waiting",
            "gauge",
            "Relay requests waiting to be admitted (answered 429 after --relay-admission-wait-secs).",
            &[(
                String::new(),
                self.relay_admission_waiting
                    .load(Ordering::Relaxed)
                    .max(0)
                    .to_string(),
            )],
        );
        family(
            "stagepush_queue_depth",
            "gauge",
            "Files waiting for delivery (pending entries in the state).",
            &[(String::new(), self.queue_depth().to_string())],
        );
        let q = self.queue.snapshot();
        family(
            "stagepush_queue_messages_total",
            "counter",
            "serve --queue: messages received, deleted (done), visibility extensions, left in the queue (not done), dead-lettered (can never be delivered).",
            &labelled(
                "event",
                &[
                    ("received", q.received),
                    ("deleted", q.deleted),
                    ("extended", q.extended),
                    ("left", q.left),
                    ("dead_lettered", q.dead_lettered),
                ],
            ),
        );
        out
    }
}

#[cfg(test)]
mod tests;
