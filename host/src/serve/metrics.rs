//! `GET /metrics`: counters summed over the runs of this process and the events it
//! received, in the Prometheus text format (version 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::events::Notification;
use crate::pipeline::RunReport;

/// The `Content-Type` of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics of one `serve` process.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
    /// Pending files (see [`Metrics::set_queue_depth`]).
    queue_depth: AtomicI64,
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
    plugin_seconds: f64,
    runs: u64,
    runs_failed: u64,
    events_created: u64,
    events_ignored: u64,
    events_test: u64,
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
        if report.plugin.seconds_in_plugin.is_finite() && report.plugin.seconds_in_plugin > 0.0 {
            c.plugin_seconds += report.plugin.seconds_in_plugin;
        }
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
        drop(c);
        family(
            "stagepush_queue_depth",
            "gauge",
            "Files waiting for delivery (pending entries in the state).",
            &[(String::new(), self.queue_depth().to_string())],
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_help_and_type() {
        let m = Metrics::default();
        m.add_events(&[
            Notification::Test,
            Notification::Ignored { reason: "x".into() },
        ]);
        m.set_queue_depth(3);
        m.add_queue_depth(1);
        let text = m.render();
        for name in [
            "stagepush_rows_total",
            "stagepush_records_total",
            "stagepush_requests_total",
            "stagepush_retries_total",
            "stagepush_bytes_sent_total",
            "stagepush_plugin_seconds_total",
            "stagepush_runs_total",
            "stagepush_events_total",
            "stagepush_queue_depth",
        ] {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}:\n{text}");
        }
        assert!(
            text.contains("stagepush_events_total{kind=\"test\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("stagepush_events_total{kind=\"ignored\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("stagepush_rows_total{outcome=\"dead_lettered\"} 0\n"));
        assert!(text.contains("# TYPE stagepush_queue_depth gauge\nstagepush_queue_depth 4\n"));
        assert!(
            text.contains("stagepush_plugin_seconds_total 0\n"),
            "{text}"
        );
    }
}
