//! `run --dry-run [--write-bodies DIR]`: the bodies a run would send, per endpoint, without
//! sending them or writing any state ([`stagepush::pipeline::dry_run`]). No token is read.
//!
//! stdout: one line per endpoint and one per body; stderr: the summary lines, the first
//! failed rows, and `dry run: nothing sent`. Exit status as `run`'s: 0, 3 when some rows
//! would be dead-lettered, 1 when the dry run stopped, 2 usage.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use stagepush::pipeline::dry_run::{
    DryBody, DryFileOutcome, DryRunOptions, DryRunReport, dry_run as run_dry,
};

use super::args::{RunArgs, RunModeArgs};
use super::summary::short_digest;
use crate::cli::exit::Outcome;
use stagepush::pipeline::transformer::TransformSpec;

/// The line every dry run ends with.
pub const NOTHING_SENT: &str = "dry run: nothing sent";

fn usage(message: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("error: {message}");
    Ok(Outcome::Usage.into())
}

pub(super) fn dry_run(args: &RunArgs, mode: &RunModeArgs) -> anyhow::Result<ExitCode> {
    let config = match super::resolve_config(args) {
        Ok(config) => config,
        Err(e) => return usage(e),
    };
    for (set, flag) in [
        (args.event.is_some(), "--event"),
        (config.state.only_changed, "--only-changed"),
        (config.state.retry_rejected, "--retry-rejected"),
    ] {
        if set {
            return usage(format_args!(
                "--dry-run cannot be combined with {flag} (it would read or write delivery state)"
            ));
        }
    }
    let Some(sink) = config.sink.clone() else {
        return usage("no endpoint: set --endpoint or [sink] endpoint");
    };
    let stage = match stagepush::source::Stage::new(&config.source) {
        Ok(stage) => stage,
        Err(e) => return usage(e),
    };
    let transform = match stagepush::job::transform_spec(&config, args.plugin_flags.cache_dir()) {
        Ok(transform) => transform,
        Err(e) if e.is_usage() => return usage(e),
        Err(e) => anyhow::bail!(e.to_string()),
    };
    let state = match stagepush::job::open_state_read_only(&config) {
        Ok(state) => state,
        Err(e) => return usage(e),
    };
    let stage = match &state {
        Some(state) => stagepush::state::stage_key::bind(state, stage)?,
        None => {
            let key = stage.identity().to_owned();
            stage.with_state_key(key)
        }
    };
    let shard = match super::shard_of(args) {
        Ok(shard) => shard,
        Err(e) => return usage(e),
    };
    let files = match stage.select(&args.select.selection()?) {
        Ok(files) => super::shard_files(shard, files),
        Err(e) if e.is_usage() => return usage(e),
        Err(e) => return Err(e.into()),
    };
    if files.is_empty() {
        eprintln!("warning: no data files in {}", stage.url());
    }
    let options = DryRunOptions {
        stage: &stage,
        files: &files,
        on_bad_file: config.run.on_bad_file,
        transform: transform.clone(),
        batch_rows: config.plugin.batch_rows,
        batch_bytes: config.plugin.batch_bytes,
        shape: config.records.shape,
        sink: &sink,
        segment_rows: config.state.segment_rows,
        state: state.as_ref(),
        full_refresh: mode.full_refresh,
    };
    let mut writer = mode.write_bodies.as_deref().map(BodyWriter::new);
    let result = run_dry(&options, |body, framed| match writer.as_mut() {
        Some(writer) => writer.write(body, framed),
        None => Ok(()),
    });
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: the dry run stopped: {e}");
            eprintln!("{NOTHING_SENT}");
            return Ok(Outcome::Failed.into());
        }
    };
    if let Some(writer) = &writer
        && let Err(e) = writer.finish()
    {
        eprintln!(
            "error: cannot write {}: {e}",
            writer.dir.join(SUMMARY_FILE).display()
        );
        eprintln!("{NOTHING_SENT}");
        return Ok(Outcome::Failed.into());
    }
    print_bodies(&report, writer.as_ref());
    print_summary(&report, &transform, mode.write_bodies.as_deref());
    Ok(Outcome::of_run(false, report.rows_failed > 0).into())
}

/// Writes bodies as `DIR/<endpoint-slug>/<NNNNNN>.json` (numbered from 1 per endpoint, in
/// the order they were cut), and at the end [`SUMMARY_FILE`] listing them.
struct BodyWriter {
    dir: PathBuf,
    /// Endpoint URL → (its folder name, bodies written).
    folders: BTreeMap<String, (String, u64)>,
    /// One entry per body written, for [`SUMMARY_FILE`].
    index: Vec<serde_json::Value>,
}

/// The list of the bodies written, in `--write-bodies DIR`.
pub const SUMMARY_FILE: &str = "summary.json";

impl BodyWriter {
    fn new(dir: &Path) -> Self {
        BodyWriter {
            dir: dir.to_path_buf(),
            folders: BTreeMap::new(),
            index: Vec::new(),
        }
    }

    fn write(&mut self, body: &DryBody, framed: &[u8]) -> std::io::Result<()> {
        let url = body.endpoint.url.to_string();
        if !self.folders.contains_key(&url) {
            let base = slug(&body.endpoint.id);
            let taken = |name: &str| self.folders.values().any(|(n, _)| n == name);
            let mut name = base.clone();
            let mut n = 2;
            while taken(&name) {
                name = format!("{base}-{n}");
                n += 1;
            }
            std::fs::create_dir_all(self.dir.join(&name))?;
            self.folders.insert(url.clone(), (name, 0));
        }
        let Some((name, count)) = self.folders.get_mut(&url) else {
            return Ok(());
        };
        *count += 1;
        let relative = format!("{name}/{count:06}.json");
        std::fs::write(self.dir.join(&relative), framed)?;
        self.index.push(serde_json::json!({
            "endpoint": url,
            "body": relative,
            "records": body.records,
            "rawBytes": body.raw_bytes,
            "wireBytes": body.wire_bytes,
            "file": body.file,
            "segment": body.segment,
        }));
        Ok(())
    }

    /// Writes [`SUMMARY_FILE`]: every body written, in order, with its sizes and origin.
    fn finish(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let json = serde_json::to_vec_pretty(&self.index).map_err(std::io::Error::other)?;
        std::fs::write(self.dir.join(SUMMARY_FILE), json)
    }

    fn folder(&self, url: &str) -> Option<PathBuf> {
        self.folders.get(url).map(|(name, _)| self.dir.join(name))
    }
}

/// A folder name for an endpoint id: letters, digits, `-`, `_` and `.` kept, the rest `_`.
fn slug(id: &str) -> String {
    let slug: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match slug.trim_matches('.') {
        "" => "endpoint".to_string(),
        s => s.to_string(),
    }
}

/// stdout: per endpoint its totals, then one line per body.
fn print_bodies(report: &DryRunReport, writer: Option<&BodyWriter>) {
    let mut by_endpoint: BTreeMap<String, Vec<&DryBody>> = BTreeMap::new();
    for body in &report.bodies {
        by_endpoint
            .entry(body.endpoint.url.to_string())
            .or_default()
            .push(body);
    }
    for (url, bodies) in &by_endpoint {
        let records: usize = bodies.iter().map(|b| b.records).sum();
        let raw: usize = bodies.iter().map(|b| b.raw_bytes).sum();
        let wire: usize = bodies.iter().map(|b| b.wire_bytes).sum();
        let written = writer
            .and_then(|w| w.folder(url))
            .map(|dir| format!(", written to {}", dir.display()))
            .unwrap_or_default();
        println!(
            "endpoint {url}: {} bodies, {records} records, {raw} bytes, {wire} on the wire{written}",
            bodies.len()
        );
        for (i, body) in bodies.iter().enumerate() {
            println!(
                "  body {:06}: {} records, {} bytes, {} on the wire ({} segment {})",
                i + 1,
                body.records,
                body.raw_bytes,
                body.wire_bytes,
                body.file,
                body.segment
            );
        }
    }
}

/// stderr: what was read, what would be dead-lettered, and that nothing was sent.
fn print_summary(report: &DryRunReport, transform: &TransformSpec, written: Option<&Path>) {
    let bad: Vec<_> = report
        .files
        .iter()
        .filter_map(|(name, outcome)| match outcome {
            DryFileOutcome::Bad { reason } => Some((name, reason)),
            _ => None,
        })
        .collect();
    eprintln!(
        "summary: {} files: {} skipped (already delivered), {} cannot be read",
        report.files.len(),
        report.files_skipped(),
        bad.len()
    );
    if report.files_skipped() > 0 {
        eprintln!(
            "summary: {} files already delivered were not read; `run --full-refresh` (and `run --dry-run --full-refresh`) sends them again",
            report.files_skipped()
        );
    }
    for (name, reason) in bad {
        eprintln!("summary: {name}: cannot be read, a run would dead-letter its rows: {reason}");
    }
    eprintln!(
        "summary: {} rows read: {} records, {} filtered, {} would be dead-lettered ({} {})",
        report.rows_read,
        report.records,
        report.rows_filtered,
        report.rows_failed,
        transform.name(),
        short_digest(&transform.digest())
    );
    for failure in &report.failures {
        eprintln!(
            "summary: would be dead-lettered: {} row {}: {}: {}",
            failure.file, failure.row, failure.reason, failure.message
        );
    }
    if report.rows_failed > report.failures.len() as u64 {
        eprintln!(
            "summary: … and {} more failed rows",
            report.rows_failed - report.failures.len() as u64
        );
    }
    let raw: usize = report.bodies.iter().map(|b| b.raw_bytes).sum();
    let wire: usize = report.bodies.iter().map(|b| b.wire_bytes).sum();
    eprintln!(
        "summary: {} bodies would be sent: {raw} bytes, {wire} on the wire",
        report.bodies.len()
    );
    if let Some(dir) = written {
        eprintln!(
            "summary: bodies written (uncompressed) under {}, listed in {}",
            dir.display(),
            dir.join(SUMMARY_FILE).display()
        );
    }
    eprintln!("{NOTHING_SENT} (no delivery state, dead letters or report written)");
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn endpoint_ids_become_plain_folder_names() {
        assert_eq!(slug("6F5B-a_1.x"), "6F5B-a_1.x");
        assert_eq!(slug("a/b c"), "a_b_c");
        assert_eq!(slug(".."), "endpoint");
        assert_eq!(slug(""), "endpoint");
    }
}
