//! What `run` shows while it works (a progress bar on a terminal) and when it ends (the
//! summary lines on stderr).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use stagepush::deadletter::reasons;
use stagepush::pipeline::{Progress, RunReport};

pub(super) fn start_progress(
    progress: Arc<Progress>,
) -> (
    std::thread::JoinHandle<()>,
    Arc<std::sync::atomic::AtomicBool>,
) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} rows  {rate}  {msg}  ETA {eta}",
            )
            .map(|style| {
                style.with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&rate_text(state.per_sec()));
                    },
                )
            })
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        while !flag.load(Ordering::Relaxed) {
            bar.set_length(progress.rows_total.load(Ordering::Relaxed));
            bar.set_position(progress.rows_read.load(Ordering::Relaxed));
            bar.set_message(format!(
                "{} records delivered, {} sent",
                progress.records_delivered.load(Ordering::Relaxed),
                indicatif::HumanBytes(progress.bytes_sent.load(Ordering::Relaxed))
            ));
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish_and_clear();
    });
    (handle, stop)
}

/// The plugin's warnings at `init` (`summary: plugin warning at init: …`, each once), and its
/// faults by kind, when it had any: `summary: plugin faults: 6 (…)` and
/// `summary:   memory-limit: 6, e.g. a.parquet rows 0 to 999: tried to use more than …`.
fn plugin_fault_lines(r: &RunReport) -> Vec<String> {
    let p = &r.plugin;
    let mut lines: Vec<String> = p
        .init_warnings
        .iter()
        .map(|w| format!("summary: plugin warning at init: {w}"))
        .collect();
    if p.faults == 0 {
        return lines;
    }
    lines.push(format!(
        "summary: plugin faults: {} in {} calls (the rows of each faulting call were rerun in smaller calls; a row that faults alone is dead-lettered)",
        p.faults, p.calls
    ));
    for (kind, faults) in &p.faults_by_kind {
        lines.push(format!(
            "summary:   {kind}: {}, e.g. {}",
            faults.count, faults.example
        ));
    }
    lines
}

/// The top messages of each dead-letter reason, one line each:
/// `summary:   plugin/rejected: 12 rows: CUSTOMER_ID is null (e.g. a.parquet row 3)`.
fn dead_letter_message_lines(r: &RunReport) -> Vec<String> {
    let mut lines = Vec::new();
    for (reason, top) in &r.rows.dead_lettered_by_message {
        for m in &top.messages {
            lines.push(format!("summary:   {reason}: {}", reasons::describe(m)));
        }
        if let Some(others) = reasons::describe_others(top) {
            lines.push(format!("summary:   {reason}: {others}"));
        }
    }
    lines
}

/// The first 12 hex digits of a digest, for people.
pub(super) fn short_digest(digest: &str) -> String {
    match digest.get(..12) {
        Some(head) if digest.len() > 12 => format!("{head}…"),
        _ => digest.to_string(),
    }
}

/// The progress bar's rate in whole rows per second: `369,024 rows/s`.
fn rate_text(per_sec: f64) -> String {
    let rows = if per_sec.is_finite() && per_sec > 0.0 {
        per_sec.round() as u64
    } else {
        0
    };
    format!("{} rows/s", indicatif::HumanCount(rows))
}

pub(super) fn print_summary(r: &RunReport) {
    // By reason (`stage/kind`, as `stagepush status` counts them).
    let by_reason: Vec<String> = r
        .rows
        .dead_lettered_by_reason
        .iter()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    eprintln!(
        "summary: {} files: {} skipped (already delivered), {} resumed",
        r.files.len(),
        r.files_skipped,
        r.files_resumed
    );
    if r.files_skipped > 0 {
        eprintln!(
            "summary: {} files already delivered were not read again; `run --full-refresh` sends them again",
            r.files_skipped
        );
    }
    for (digest, files) in &r.files_skipped_other_plugin {
        eprintln!(
            "summary: warning: {files} files were delivered by another plugin (sha256 {} → {}): skipped; `run --full-refresh` sends them again",
            short_digest(digest),
            short_digest(&r.plugin.sha256)
        );
    }
    eprintln!(
        "summary: {} rows read: {} delivered, {} filtered, {} unchanged, {} dead-lettered{}",
        r.rows.read,
        r.rows.delivered,
        r.rows.filtered,
        r.rows.unchanged,
        r.rows.dead_lettered,
        if by_reason.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_reason.join(", "))
        }
    );
    for line in dead_letter_message_lines(r)
        .into_iter()
        .chain(plugin_fault_lines(r))
    {
        eprintln!("{line}");
    }
    eprintln!(
        "summary: {} records delivered, {} rejected; {} requests, {} retries; {} bytes before gzip, {} sent; {:.1} s, {:.0} rows/s",
        r.records_delivered,
        r.records_rejected,
        r.requests,
        r.retries,
        r.bytes_uncompressed,
        r.bytes_sent,
        r.duration_secs,
        r.rows_per_second
    );
    for w in &r.warnings {
        if w.message_id.as_deref() == Some(stagepush::pipeline::report::NEVER_SET) {
            eprintln!("warning: {}", w.message.as_deref().unwrap_or_default());
        }
    }
    if r.records_unchanged > 0 {
        eprintln!(
            "summary: {} records unchanged since their last delivery (not sent)",
            r.records_unchanged
        );
    }
    if r.possible_duplicates.records > 0 {
        eprintln!(
            "summary: {} records in {} segments were sent again after an interrupted run (they may have arrived twice; CluedIn merges them by id)",
            r.possible_duplicates.records, r.possible_duplicates.segments
        );
    }
    for (entity_type, mark) in &r.watermarks {
        if r.watermarks_from_stopped_run {
            eprintln!(
                "summary: watermark {entity_type}: {mark} (from a run that stopped before the end: it covers only what CluedIn acknowledged; finish the stage before using it)"
            );
        } else {
            eprintln!("summary: watermark {entity_type}: {mark}");
        }
    }
    if r.rows.dead_lettered > 0 {
        eprintln!(
            "summary: dead letters in {} (kept for `stagepush retry` in {})",
            r.dead_letters.display(),
            r.state_dead_letters
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_rate_is_whole_rows_per_second() {
        assert_eq!(super::rate_text(369_024.443_1), "369,024 rows/s");
        assert_eq!(super::rate_text(f64::NAN), "0 rows/s");
    }
}
