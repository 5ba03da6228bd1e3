//! The report of a queue consumer's runs: one [`RunReport`] per round, merged into one for
//! `run --queue`'s summary and `--report`.

use crate::pipeline::RunReport;

/// Adds `next` to the merged report of the runs so far (counts summed, files, receipts and
/// warnings appended; the latest fatal error and interruption kept).
pub fn merge(into: &mut Option<RunReport>, next: RunReport) {
    let Some(total) = into else {
        *into = Some(next);
        return;
    };
    let rows = &mut total.rows;
    rows.read += next.rows.read;
    rows.delivered += next.rows.delivered;
    rows.filtered += next.rows.filtered;
    rows.unchanged += next.rows.unchanged;
    rows.dead_lettered += next.rows.dead_lettered;
    for (k, n) in next.rows.dead_lettered_by_stage {
        *rows.dead_lettered_by_stage.entry(k).or_default() += n;
    }
    for (k, n) in next.rows.dead_lettered_by_reason {
        *rows.dead_lettered_by_reason.entry(k).or_default() += n;
    }
    total.records_encoded += next.records_encoded;
    total.records_delivered += next.records_delivered;
    total.records_rejected += next.records_rejected;
    total.records_unchanged += next.records_unchanged;
    total.possible_duplicates.segments += next.possible_duplicates.segments;
    total.possible_duplicates.records += next.possible_duplicates.records;
    for (digest, n) in next.files_skipped_other_plugin {
        *total.files_skipped_other_plugin.entry(digest).or_default() += n;
    }
    total.files_skipped += next.files_skipped;
    total.files_resumed += next.files_resumed;
    total.requests += next.requests;
    total.retries += next.retries;
    total.bytes_uncompressed += next.bytes_uncompressed;
    total.bytes_sent += next.bytes_sent;
    for (code, n) in next.status {
        *total.status.entry(code).or_default() += n;
    }
    total.duration_secs += next.duration_secs;
    total.rows_per_second = if total.duration_secs > 0.0 {
        total.rows.read as f64 / total.duration_secs
    } else {
        0.0
    };
    total.finished_at = next.finished_at;
    total.receipts.extend(next.receipts);
    total.warnings.extend(next.warnings);
    total.files.extend(next.files);
    for (entity, mark) in next.watermarks {
        let kept = total.watermarks.entry(entity).or_default();
        if mark > *kept {
            *kept = mark;
        }
    }
    total.watermarks_from_stopped_run |= next.watermarks_from_stopped_run;
    total.cpu_seconds = next.cpu_seconds.or(total.cpu_seconds);
    total.peak_rss_bytes = next.peak_rss_bytes.or(total.peak_rss_bytes);
    if next.fatal_error.is_some() {
        total.fatal_error = next.fatal_error;
    }
    if next.interrupted.is_some() {
        total.interrupted = next.interrupted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_reports_add_their_counts_and_keep_the_last_stop() {
        let mut total = None;
        let mut a = RunReport::default();
        a.rows.read = 3;
        a.rows.delivered = 3;
        a.records_delivered = 3;
        let mut b = RunReport::default();
        b.rows.read = 2;
        b.rows.dead_lettered = 2;
        b.rows.dead_lettered_by_reason.insert("x".into(), 2);
        b.fatal_error = Some("boom".into());
        merge(&mut total, a);
        merge(&mut total, b);
        let total = total.unwrap();
        assert_eq!(total.rows.read, 5);
        assert_eq!(total.rows.delivered, 3);
        assert_eq!(total.rows.dead_lettered_by_reason["x"], 2);
        assert_eq!(total.fatal_error.as_deref(), Some("boom"));
    }
}
