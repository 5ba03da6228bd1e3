//! The human form of `stagepush status`: renders the typed status the core collects
//! (`stagepush::state::status::Status`) as text. `--json` serializes the same value.

use stagepush::deadletter::reasons;
use stagepush::events::show_key;
use stagepush::state::status::{ReasonCounts, Status};

/// The human form of `status`.
pub(super) fn render_text(status: &Status) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "state: {}", status.state);
    let _ = writeln!(out);
    if status.runs.is_empty() {
        let _ = writeln!(out, "runs: {} (none shown)", status.runs_total);
    } else {
        let _ = writeln!(
            out,
            "runs: last {} of {}, newest first",
            status.runs.len(),
            status.runs_total
        );
    }
    for run in &status.runs {
        let _ = writeln!(
            out,
            "  run {} started {}, took {}{}",
            run.run_id,
            run.started_at,
            duration_text(run.duration_secs),
            match &run.stage_id {
                Some(id) => format!(", stage {id}"),
                None => String::new(),
            }
        );
        let r = &run.rows;
        let _ = writeln!(
            out,
            "    rows: {} read, {} delivered, {} filtered, {} unchanged, {} dead-lettered",
            r.read, r.delivered, r.filtered, r.unchanged, r.dead_lettered
        );
        let _ = writeln!(
            out,
            "    records delivered: {}; files: {} skipped, {} resumed",
            run.records_delivered, run.files_skipped, run.files_resumed
        );
        for (entity_type, mark) in &run.watermarks {
            let note = if run.stopped() {
                " (from a run that stopped before the end: it covers only what CluedIn acknowledged)"
            } else {
                ""
            };
            let _ = writeln!(out, "    watermark {entity_type}: {mark}{note}");
        }
        if let Some(error) = &run.fatal_error {
            let _ = writeln!(out, "    fatal error: {error}");
        }
        if let Some(signal) = &run.interrupted {
            let _ = writeln!(out, "    interrupted by {signal}");
        }
    }
    for stage in &status.stages {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "stage {} (id {})",
            stage.stage.as_deref().unwrap_or("?"),
            stage.stage_id
        );
        let f = &stage.files;
        let _ = write!(
            out,
            "  files: {} done, {} partial, {} claimed, {} pending",
            f.done, f.partial, f.claimed, f.pending
        );
        if f.damaged > 0 {
            let _ = write!(out, ", {} damaged", f.damaged);
        }
        if let Some(listed) = stage.listed {
            let _ = write!(out, "; {listed} in the stage listing");
        }
        if let Some(n) = stage.not_listed.filter(|n| *n > 0) {
            let _ = write!(out, ", {n} in the state but no longer listed");
        }
        let _ = writeln!(out);
        for claim in &stage.claimed {
            let _ = writeln!(
                out,
                "  claimed: {} by {} until {}",
                claim.key, claim.owner, claim.expires_at
            );
        }
        render_reasons(&mut out, "  dead letters", &stage.dead_letters);
        if !stage.pending_errors.is_empty() {
            let _ = writeln!(
                out,
                "  pending errors (event keys that cannot be delivered): {}",
                stage.pending_errors.len()
            );
            for error in &stage.pending_errors {
                let _ = writeln!(
                    out,
                    "    {}: {} (received {})",
                    show_key(&error.key),
                    error.reason,
                    error.received_at
                );
            }
        }
        if !stage.queue_dead_letters.is_empty() {
            let _ = writeln!(
                out,
                "  {} queue messages dead-lettered (can never be delivered; deleted from the queue):",
                stage.queue_dead_letters.len()
            );
            for letter in &stage.queue_dead_letters {
                let _ = writeln!(
                    out,
                    "    {} message {}: {} (received {})",
                    letter.queue, letter.message_id, letter.reason, letter.received_at
                );
            }
        }
    }
    let _ = writeln!(out);
    render_reasons(&mut out, "dead letters in total", &status.dead_letters);
    if !status.damaged.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "damaged documents: {}", status.damaged.len());
        for d in &status.damaged {
            let _ = writeln!(out, "  damaged: {}: {}", d.path, d.reason);
        }
    }
    out
}

/// `850 ms`, `12.3 s`, `2 h 5 min`.
fn duration_text(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "?".into();
    }
    if secs < 1.0 {
        return format!("{} ms", (secs * 1000.0).round() as u64);
    }
    if secs < 600.0 {
        return format!("{secs:.1} s");
    }
    let minutes = (secs / 60.0).round() as u64;
    match minutes {
        0..120 => format!("{minutes} min"),
        _ => format!("{} h {} min", minutes / 60, minutes % 60),
    }
}

fn render_reasons(out: &mut String, title: &str, counts: &ReasonCounts) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "{title}: {}", counts.total);
    let indent = " ".repeat(title.len() - title.trim_start().len() + 2);
    for (reason, n) in &counts.by_reason {
        let _ = writeln!(out, "{indent}{reason}: {n}");
        // The reason's most frequent messages, with an example row each.
        if let Some(top) = counts.by_message.get(reason) {
            for m in &top.messages {
                let _ = writeln!(out, "{indent}  {}", reasons::describe(m));
            }
            if let Some(others) = reasons::describe_others(top) {
                let _ = writeln!(out, "{indent}  {others}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use stagepush::run_report::RowCounts;
    use stagepush::state::status::{
        ClaimedFile, Damaged, FileCounts, PendingErrorView, RunSummary, StageStatus, Status,
    };

    use super::*;

    fn reasons(counts: &[(&str, u64)]) -> ReasonCounts {
        ReasonCounts {
            total: counts.iter().map(|(_, n)| n).sum(),
            by_reason: counts.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
            ..ReasonCounts::default()
        }
    }

    fn stage(files: FileCounts, dead_letters: ReasonCounts) -> StageStatus {
        StageStatus {
            stage_id: "0123456789abcdef".into(),
            stage: Some("s3://bucket/unload/".into()),
            files,
            claimed: Vec::new(),
            listed: None,
            not_listed: None,
            dead_letters,
            pending_errors: Vec::new(),
            queue_dead_letters: Vec::new(),
        }
    }

    fn status(stages: Vec<StageStatus>, damaged: Vec<Damaged>) -> Status {
        let mut dead_letters = ReasonCounts::default();
        for s in &stages {
            dead_letters.total += s.dead_letters.total;
            for (reason, n) in &s.dead_letters.by_reason {
                *dead_letters.by_reason.entry(reason.clone()).or_default() += n;
            }
        }
        Status {
            format: stagepush::state::status::STATUS_FORMAT,
            state: "/work/stagepush-state".into(),
            runs_total: 0,
            runs: Vec::new(),
            stages,
            dead_letters,
            damaged,
        }
    }

    #[test]
    fn files_by_status_and_dead_letters_by_reason() {
        let files = FileCounts {
            done: 1,
            partial: 1,
            claimed: 0,
            pending: 2,
            damaged: 0,
            total: 4,
        };
        let text = render_text(&status(
            vec![stage(
                files,
                reasons(&[("plugin/rejected", 1), ("plugin/trap", 1)]),
            )],
            Vec::new(),
        ));
        assert!(
            text.contains("files: 1 done, 1 partial, 0 claimed, 2 pending"),
            "{text}"
        );
        assert!(text.contains("    plugin/trap: 1"), "{text}");
    }

    #[test]
    fn damaged_documents_are_listed() {
        let path = "files/0123456789abcdef/0123.json";
        let files = FileCounts {
            damaged: 1,
            total: 1,
            ..FileCounts::default()
        };
        let text = render_text(&status(
            vec![stage(files, ReasonCounts::default())],
            vec![Damaged {
                path: path.into(),
                reason: "not a state document: EOF while parsing a value".into(),
            }],
        ));
        assert!(
            text.contains(&format!("damaged: {path}: not a state document")),
            "{text}"
        );
        assert!(text.contains("files: 0 done, 0 partial, 0 claimed, 0 pending, 1 damaged"));
    }

    #[test]
    fn pending_errors_are_shown_with_their_keys_quoted() {
        let mut s = stage(FileCounts::default(), ReasonCounts::default());
        s.pending_errors.push(PendingErrorView {
            key: "unload/sub//x.parquet".into(),
            reason: "the key has an empty path segment (`//`)".into(),
            received_at: "2025-06-01T12:00:00.000Z".into(),
            event_id: Some("ev-1".into()),
        });
        let text = render_text(&status(vec![s], Vec::new()));
        assert!(
            text.contains("pending errors (event keys that cannot be delivered): 1")
                && text.contains(
                    "\"unload/sub//x.parquet\": the key has an empty path segment (`//`)"
                ),
            "{text}"
        );
    }

    /// The whole text of a status with a stopped run and a claimed, listed stage.
    #[test]
    fn the_whole_text() {
        let run = RunSummary {
            path: "runs/20250601T120000123Z-r1.json".into(),
            run_id: "r1".into(),
            stage_id: Some("0123456789abcdef".into()),
            started_at: "2025-06-01T12:00:00.123Z".into(),
            finished_at: "2025-06-01T12:00:01.623Z".into(),
            duration_secs: 1.5,
            rows: RowCounts {
                read: 1000,
                delivered: 950,
                filtered: 38,
                unchanged: 0,
                dead_lettered: 12,
                dead_lettered_by_stage: BTreeMap::from([("plugin".into(), 12)]),
                dead_lettered_by_reason: BTreeMap::from([("plugin/rejected".into(), 12)]),
                ..RowCounts::default()
            },
            records_delivered: 950,
            files_skipped: 0,
            files_resumed: 1,
            fatal_error: Some("the endpoint refused the token".into()),
            interrupted: Some("SIGINT".into()),
            watermarks: BTreeMap::from([("Customer".into(), "2025-05-31T23:59:59Z".into())]),
            watermarks_from_stopped_run: true,
        };
        let mut s = stage(
            FileCounts {
                done: 2,
                partial: 0,
                claimed: 1,
                pending: 1,
                damaged: 0,
                total: 4,
            },
            reasons(&[("endpoint/http-400", 3), ("plugin/rejected", 12)]),
        );
        s.listed = Some(4);
        s.not_listed = Some(1);
        s.claimed.push(ClaimedFile {
            key: "unload/data_0_0_0.snappy.parquet".into(),
            owner: "host:12:r2".into(),
            expires_at: "2025-06-01T12:01:00.000Z".into(),
            expires_at_ms: 1_748_779_260_000,
        });
        let mut all = status(vec![s], Vec::new());
        all.runs_total = 7;
        all.runs.push(run);
        let expected = "\
state: /work/stagepush-state

runs: last 1 of 7, newest first
  run r1 started 2025-06-01T12:00:00.123Z, took 1.5 s, stage 0123456789abcdef
    rows: 1000 read, 950 delivered, 38 filtered, 0 unchanged, 12 dead-lettered
    records delivered: 950; files: 0 skipped, 1 resumed
    watermark Customer: 2025-05-31T23:59:59Z (from a run that stopped before the end: it covers only what CluedIn acknowledged)
    fatal error: the endpoint refused the token
    interrupted by SIGINT

stage s3://bucket/unload/ (id 0123456789abcdef)
  files: 2 done, 0 partial, 1 claimed, 1 pending; 4 in the stage listing, 1 in the state but no longer listed
  claimed: unload/data_0_0_0.snappy.parquet by host:12:r2 until 2025-06-01T12:01:00.000Z
  dead letters: 15
    endpoint/http-400: 3
    plugin/rejected: 12

dead letters in total: 15
  endpoint/http-400: 3
  plugin/rejected: 12
";
        assert_eq!(render_text(&all), expected);
    }

    #[test]
    fn each_reason_shows_its_top_messages_with_an_example_row() {
        let mut tally = stagepush::deadletter::reasons::MessageTally::default();
        for row in [3, 5, 8] {
            tally.add("plugin/rejected", "CUSTOMER_ID is null", "a.parquet", row);
        }
        tally.add("plugin/rejected", "value 12 out of range", "a.parquet", 4);
        tally.add("plugin/rejected", "value 99 out of range", "b.parquet", 1);
        tally.add("plugin/rejected", "odd", "b.parquet", 2);
        let mut counts = reasons(&[("plugin/rejected", 6)]);
        counts.by_message = tally.top(2);
        let text = render_text(&status(
            vec![stage(FileCounts::default(), counts)],
            Vec::new(),
        ));
        let expected = "\
  dead letters: 6
    plugin/rejected: 6
      3 rows: CUSTOMER_ID is null (e.g. a.parquet row 3)
      2 rows: value <n> out of range (e.g. a.parquet row 4: value 12 out of range)
      1 more row with 1 other message
";
        assert!(text.contains(expected), "{text}");
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration_text(0.85), "850 ms");
        assert_eq!(duration_text(12.34), "12.3 s");
        assert_eq!(duration_text(900.0), "15 min");
        assert_eq!(duration_text(7500.0), "2 h 5 min");
        assert_eq!(duration_text(f64::NAN), "?");
        assert_eq!(duration_text(-1.0), "?");
    }
}
