//! `run --dry-run`: everything a run does except the POSTs and the state writes. The stage
//! is listed and read, every row transformed, the records batched, framed and gzipped into
//! exactly the bodies a run would send (cut per file segment, as [`super::run`] cuts
//! them), and each body is handed to the caller instead of the sink.
//!
//! It changes no state: no file is claimed (no lease), nothing is acknowledged, no dead
//! letter is written (failed rows are counted and the first ones shown), no watermark or
//! run report is kept. The state is only read, when it exists, to leave out what a run
//! would leave out: files already delivered (unless `full_refresh`) and the acknowledged
//! segments of a partly delivered file. Nothing is ever counted delivered.
//!
//! One thread, files in order: a dry run is for looking, not for speed.

use std::sync::Arc;

use crate::bad_file::KIND_UNREADABLE_ROW;
use crate::bindings::types::ColumnSchema;
use crate::sink::batcher::Router;
use crate::sink::{Batcher, Endpoint, Payload, RowRef, SinkConfig};
use crate::source::parquet::{ReadOptions, SourceError};
use crate::source::{Stage, StageError, StageFile};
use crate::state::StateStore;
use crate::state::files::{self as state_files, FileState, FileStatus};
use crate::transform::ArrowInput;
use crate::wire::Shape;

use super::transformer::{TransformSpec, Transformer};
use super::{OnBadFile, PipelineError, display_name};

/// Failed rows kept in the report with their message (the others are only counted).
pub const FAILURES_SHOWN: usize = 10;

/// What a dry run reads.
pub struct DryRunOptions<'a> {
    pub stage: &'a Stage,
    pub files: &'a [StageFile],
    pub on_bad_file: OnBadFile,
    /// The plugin, the `[mapping]` or the pass-through.
    pub transform: TransformSpec,
    pub batch_rows: usize,
    pub batch_bytes: usize,
    pub shape: Shape,
    pub sink: &'a SinkConfig,
    /// Rows per segment of files new to the state.
    pub segment_rows: u64,
    /// The delivery state, read only (`None`: there is none yet).
    pub state: Option<&'a StateStore>,
    /// Leave no delivered file out (`run --full-refresh`).
    pub full_refresh: bool,
}

/// One body a run would send.
#[derive(Debug, Clone)]
pub struct DryBody {
    pub endpoint: Arc<Endpoint>,
    /// The file its records come from (bodies never mix files or segments).
    pub file: String,
    pub segment: u64,
    pub records: usize,
    /// Uncompressed size, framing included.
    pub raw_bytes: usize,
    /// Size on the wire (gzipped if gzip is on).
    pub wire_bytes: usize,
}

/// A row the plugin (or the encoder) refused: a run would dead-letter it.
#[derive(Debug, Clone)]
pub struct DryFailure {
    pub file: String,
    pub row: u64,
    /// `plugin/rejected`, `encode/…`: stage and kind, as dead letters name them.
    pub reason: String,
    pub message: String,
}

/// What happened to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DryFileOutcome {
    /// Read (from `from_segment` on, when a run would resume it).
    Read { rows: u64, from_segment: u64 },
    /// Done in the state: a run would skip it.
    Skipped,
    /// Cannot be used: a run would dead-letter its (remaining) rows as unread.
    Bad { reason: String },
}

/// The result of a dry run.
#[derive(Debug, Default)]
pub struct DryRunReport {
    pub files: Vec<(String, DryFileOutcome)>,
    pub rows_read: u64,
    pub rows_filtered: u64,
    /// Rows a run would dead-letter (plugin or encoder failures).
    pub rows_failed: u64,
    pub records: u64,
    /// The first [`FAILURES_SHOWN`] failed rows.
    pub failures: Vec<DryFailure>,
    pub bodies: Vec<DryBody>,
}

impl DryRunReport {
    pub fn files_skipped(&self) -> usize {
        self.files
            .iter()
            .filter(|(_, o)| *o == DryFileOutcome::Skipped)
            .count()
    }
}

/// Where a run would start a file: its segment size and acknowledged segments.
type Start = (u64, Vec<[u64; 2]>);

/// Where a run would start `file`; `None` if it would skip it.
fn plan(
    options: &DryRunOptions<'_>,
    generation: Option<&str>,
    file: &StageFile,
) -> Result<Option<Start>, PipelineError> {
    let fresh = Some((options.segment_rows.max(1), Vec::new()));
    let Some(state) = options.state else {
        return Ok(fresh);
    };
    let path = state_files::file_path(options.stage.state_key(), &file.key);
    let Some(stored) = state.get(&path)? else {
        return Ok(fresh);
    };
    let doc = FileState::parse(&path, &stored)?;
    let outdated = crate::state::refresh::outdated(doc.generation.as_deref(), generation);
    if options.full_refresh || outdated || doc.identity != state_files::identity(file) {
        return Ok(fresh);
    }
    if doc.status == FileStatus::Done {
        return Ok(None);
    }
    Ok(Some((doc.segment_rows, doc.acked)))
}

/// Runs the dry run; `body` gets every body with its uncompressed bytes, in order.
pub fn dry_run(
    options: &DryRunOptions<'_>,
    mut body: impl FnMut(&DryBody, &[u8]) -> std::io::Result<()>,
) -> Result<DryRunReport, DryRunError> {
    let generation = match options.state {
        Some(state) => crate::state::refresh::current(state, options.stage.state_key())
            .map_err(PipelineError::from)?
            .map(|g| g.generation),
        None => None,
    };
    let schema = crate::bad_file::stage_schema(options.stage, options.files, options.on_bad_file)?;
    let mut report = DryRunReport::default();
    if options.files.is_empty() {
        return Ok(report);
    }
    let mut transformer = Transformer::start(&options.transform, schema.clone(), options.shape)
        .map_err(PipelineError::from)?;
    let router = Router::new(options.sink).map_err(PipelineError::from)?;
    let mut batcher = Batcher::new(Arc::new(router));
    let mut run = DryRun {
        options,
        schema: &schema,
        report: &mut report,
        body: &mut body,
    };
    for file in options.files {
        let name = display_name(file);
        let Some((segment_rows, acked)) = plan(options, generation.as_deref(), file)? else {
            run.report.files.push((name, DryFileOutcome::Skipped));
            continue;
        };
        let outcome = run.file(
            &mut transformer,
            &mut batcher,
            file,
            &name,
            segment_rows,
            &acked,
        )?;
        if let DryFileOutcome::Bad { reason } = &outcome
            && options.on_bad_file == OnBadFile::Fail
        {
            return Err(DryRunError::BadFile {
                file: name,
                reason: reason.clone(),
            });
        }
        run.report.files.push((name, outcome));
    }
    Ok(report)
}

/// Why a dry run stopped.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("{file}: {reason} (the run stops on a bad file: --on-bad-file fail)")]
    BadFile { file: String, reason: String },
    #[error("cannot hand over a body: {0}")]
    Body(std::io::Error),
}

struct DryRun<'r, 'o, F> {
    options: &'r DryRunOptions<'o>,
    schema: &'r [ColumnSchema],
    report: &'r mut DryRunReport,
    body: &'r mut F,
}

impl<F: FnMut(&DryBody, &[u8]) -> std::io::Result<()>> DryRun<'_, '_, F> {
    /// One file, as `file_run` cuts it: segment by segment, bodies flushed at each
    /// segment's end, acknowledged segments left out.
    fn file(
        &mut self,
        transformer: &mut Transformer,
        batcher: &mut Batcher,
        file: &StageFile,
        name: &str,
        segment_rows: u64,
        acked: &[[u64; 2]],
    ) -> Result<DryFileOutcome, DryRunError> {
        let is_acked = |s: u64| acked.iter().any(|[a, b]| *a <= s && s < *b);
        let start = match acked.first() {
            Some([0, end]) => *end,
            _ => 0,
        };
        let bad = |e: StageError| -> Result<DryFileOutcome, DryRunError> {
            if e.is_bad_file() {
                Ok(DryFileOutcome::Bad {
                    reason: e.to_string(),
                })
            } else {
                Err(PipelineError::from(e).into())
            }
        };
        let source = match self.options.stage.open(file) {
            Ok(source) => source,
            Err(e) => return bad(e),
        };
        match source.contract_schema() {
            Ok(schema) => {
                if let Some(difference) = crate::source::describe_difference(self.schema, &schema) {
                    return Ok(DryFileOutcome::Bad {
                        reason: format!(
                            "its schema differs from the stage's first readable file ({difference})"
                        ),
                    });
                }
            }
            Err(e) => return bad(e),
        }
        let (projection, batch_schema) = transformer.read_plan();
        let start_row = start * segment_rows;
        let read = ReadOptions {
            batch_rows: self.options.batch_rows.min(segment_rows as usize).max(1),
            projection,
            start_row: source
                .num_rows()
                .map_or(start_row, |total| start_row.min(total)),
        };
        let source_file = file.source_file();
        let name: Arc<str> = name.into();
        let batches = match source.batches(&read) {
            Ok(batches) => batches.max_bytes(self.options.batch_bytes),
            Err(e) => return bad(e),
        };
        let mut rows = 0;
        let mut open: Option<u64> = None;
        for batch in batches {
            let batch = match batch {
                Ok(batch) => batch,
                Err(StageError::Source(SourceError::Row { row, reason, .. })) => {
                    // One row a text reader cannot read: a run dead-letters it.
                    if is_acked(row / segment_rows) {
                        continue;
                    }
                    rows += 1;
                    self.report.rows_read += 1;
                    self.report.rows_failed += 1;
                    if self.report.failures.len() < FAILURES_SHOWN {
                        self.report.failures.push(DryFailure {
                            file: name.to_string(),
                            row,
                            reason: format!("read/{KIND_UNREADABLE_ROW}"),
                            message: reason,
                        });
                    }
                    continue;
                }
                Err(e) => {
                    self.flush(batcher, &name, open)?;
                    return bad(e);
                }
            };
            let sizes = crate::batchbytes::row_bytes(&batch.batch);
            let budget = self.options.batch_bytes as u64;
            for cut in crate::batchbytes::cuts(&sizes, batch.first_row, segment_rows, budget) {
                let row = batch.first_row + cut.offset as u64;
                let segment = cut.segment;
                let piece = batch.batch.slice(cut.offset, cut.len);
                if open != Some(segment) {
                    self.flush(batcher, &name, open)?;
                    open = None;
                    if is_acked(segment) {
                        continue;
                    }
                    open = Some(segment);
                }
                let input = ArrowInput {
                    file: &source_file,
                    first_row: row,
                    batch: &piece,
                    schema: &batch_schema,
                    projection: None,
                };
                let encoded = transformer.transform(&input).map_err(PipelineError::from)?;
                rows += encoded.rows;
                self.report.rows_read += encoded.rows;
                self.report.rows_filtered += encoded.filtered;
                self.report.rows_failed += encoded.failures.len() as u64;
                self.report.records += encoded.records.len() as u64;
                for failure in &encoded.failures {
                    if self.report.failures.len() < FAILURES_SHOWN {
                        self.report.failures.push(DryFailure {
                            file: name.to_string(),
                            row: failure.row,
                            reason: format!("{}/{}", failure.stage.as_str(), failure.kind),
                            message: failure.message.clone(),
                        });
                    }
                }
                for record in &encoded.records {
                    let origin = RowRef {
                        file: name.clone(),
                        row: record.row,
                    };
                    if let Some(payload) = batcher
                        .push_json(origin, &record.entity_type, encoded.record_json(record))
                        .map_err(PipelineError::from)?
                    {
                        self.emit(&payload, &name, segment)?;
                    }
                }
            }
        }
        self.flush(batcher, &name, open)?;
        Ok(DryFileOutcome::Read {
            rows,
            from_segment: start,
        })
    }

    /// Emits the open bodies of `segment` (a segment's end).
    fn flush(
        &mut self,
        batcher: &mut Batcher,
        name: &str,
        segment: Option<u64>,
    ) -> Result<(), DryRunError> {
        let Some(segment) = segment else {
            return Ok(());
        };
        for payload in batcher.flush().map_err(PipelineError::from)? {
            self.emit(&payload, name, segment)?;
        }
        Ok(())
    }

    fn emit(&mut self, payload: &Payload, name: &str, segment: u64) -> Result<(), DryRunError> {
        let dry = DryBody {
            endpoint: payload.endpoint().clone(),
            file: name.to_string(),
            segment,
            records: payload.len(),
            raw_bytes: payload.raw_len(),
            wire_bytes: payload.wire_len(),
        };
        (self.body)(&dry, payload.framed()).map_err(DryRunError::Body)?;
        self.report.bodies.push(dry);
        Ok(())
    }
}
