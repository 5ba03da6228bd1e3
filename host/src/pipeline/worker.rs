//! One transform worker (a thread): starts its plugin instance, then takes files from the
//! queue and runs each from claim to done (`file_run`) until none is left or the run stops.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::bindings::types::ColumnSchema;
use crate::sink::{CluedInSink, Payload};
use crate::state::files as state_files;
use crate::sync::lock;

use super::claims::FileQueue;
use super::file_run::{FileError, FileRun};
use super::letters::ClaimedFile;
use super::state::RunState;
use super::transformer::Transformer;
use super::{FileOutcome, OnBadFile, PipelineError, RunOptions, display_name};

/// Runs files until none is left or the run stops; `Err` is the run's fatal cause.
pub(super) fn worker(
    run: &RunState,
    options: &RunOptions,
    schema: &[ColumnSchema],
    queue: &FileQueue<'_>,
    sink: &CluedInSink,
    bodies: &mpsc::Sender<Payload>,
) -> Result<(), PipelineError> {
    let mut transformer = Transformer::start(&options.transform, schema.to_vec(), options.shape)?;
    let (projection, batch_schema) = transformer.read_plan();
    let mut batcher = sink.batcher();
    let result = loop {
        let (stage_file, plan) = match queue.next(run) {
            Ok(Some(next)) => next,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let name: Arc<str> = display_name(stage_file).into();
        run.letters.claimed(
            name.clone(),
            ClaimedFile {
                file: plan.file,
                key: stage_file.key.clone(),
                identity: state_files::identity(stage_file),
            },
        );
        if plan.resumed {
            lock(&run.files).resumed += 1;
            tracing::info!(file = %name, segment = plan.first_open_segment(), "resuming a partly delivered file");
        }
        let file = FileRun::new(
            run,
            options,
            schema,
            &batch_schema,
            projection.clone(),
            name.clone(),
            stage_file,
            &plan,
        );
        match file.process(&mut transformer, &mut batcher, bodies) {
            Ok(rows) => {
                let outcome = if run.checkpointer.is_lost(plan.file) {
                    FileOutcome::LeaseLost
                } else if run.stopped() {
                    FileOutcome::NotFinished
                } else {
                    FileOutcome::Done
                };
                file.finished(rows, outcome, None);
            }
            Err(FileError::Bad(e)) if options.on_bad_file == OnBadFile::Skip => {
                tracing::error!(file = %name, "skipping the file: its rows are dead-lettered as unread: {e}");
                file.unread(&e)?;
            }
            Err(FileError::Bad(e)) => {
                file.finished(0, FileOutcome::BadFile, Some(e.reason.clone()));
                break Err(PipelineError::BadFile { bad: e });
            }
            Err(FileError::Fatal(e)) => {
                file.finished(
                    file.rows_read(),
                    FileOutcome::NotFinished,
                    Some(e.to_string()),
                );
                break Err(e);
            }
            // The run is stopping; its cause is recorded by whoever stopped it.
            Err(FileError::Stopped) => {
                file.finished(file.rows_read(), FileOutcome::NotFinished, None);
                break Ok(());
            }
        }
    };
    transformer.finish(&mut lock(&run.plugin));
    result
}
