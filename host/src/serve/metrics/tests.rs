//! Unit tests of `/metrics`: what each family renders.

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
        "stagepush_responses_not_cluedin_json_total",
        "stagepush_plugin_seconds_total",
        "stagepush_runs_total",
        "stagepush_events_total",
        "stagepush_queue_depth",
        "stagepush_relay_requests_total",
        "stagepush_relay_rows_total",
        "stagepush_relay_replays_total",
        "stagepush_relay_deferred_total",
        "stagepush_relay_records_total",
        "stagepush_relay_records_waiting",
        "stagepush_relay_body_records",
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

#[test]
fn relay_counters_and_the_body_histogram() {
    let m = Metrics::default();
    m.relay_answer("POST", 200);
    m.relay_answer("POST", 200);
    m.relay_answer("GET", 202);
    m.relay_rows(5, 1, 2, 3);
    m.relay_replay(ReplayFrom::State);
    m.relay_deferred();
    m.relay_records_queued(7);
    for records in [1, 10, 11, 400, 200_000] {
        m.relay_body_sent(records);
    }
    m.set_relay_waiting(4);
    m.set_relay_concurrency(7);
    m.add_sink_stats(&SinkStats {
        records_delivered: 9,
        status: BTreeMap::from([(200, 2)]),
        responses_not_cluedin_json: 1,
        ..SinkStats::default()
    });
    let text = m.render();
    for line in [
        "stagepush_relay_requests_total{method=\"POST\",status=\"200\"} 2",
        "stagepush_relay_requests_total{method=\"GET\",status=\"202\"} 1",
        "stagepush_relay_rows_total{fate=\"delivered\"} 5",
        "stagepush_relay_rows_total{fate=\"filtered\"} 1",
        "stagepush_relay_rows_total{fate=\"rejected\"} 2",
        "stagepush_relay_rows_total{fate=\"failed\"} 3",
        "stagepush_relay_replays_total{from=\"memory\"} 0",
        "stagepush_relay_replays_total{from=\"state\"} 1",
        "stagepush_relay_deferred_total 1",
        "stagepush_responses_not_cluedin_json_total 1",
        "stagepush_relay_records_total 7",
        "stagepush_relay_records_waiting 4",
        "stagepush_relay_request_concurrency 7",
        "stagepush_relay_body_records_bucket{le=\"1\"} 1",
        "stagepush_relay_body_records_bucket{le=\"10\"} 2",
        "stagepush_relay_body_records_bucket{le=\"50\"} 3",
        "stagepush_relay_body_records_bucket{le=\"500\"} 4",
        "stagepush_relay_body_records_bucket{le=\"100000\"} 4",
        "stagepush_relay_body_records_bucket{le=\"+Inf\"} 5",
        "stagepush_relay_body_records_sum 200422",
        "stagepush_relay_body_records_count 5",
        "stagepush_records_total{outcome=\"delivered\"} 9",
        "stagepush_requests_total{status=\"200\"} 2",
    ] {
        assert!(text.contains(&format!("{line}\n")), "{line}:\n{text}");
    }
    assert!(text.contains("# TYPE stagepush_relay_body_records histogram\n"));
}
