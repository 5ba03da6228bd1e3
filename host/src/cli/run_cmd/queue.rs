//! `run --queue URL` (or `[trigger] queue`): drain a queue of storage notifications,
//! delivering what its messages name (see `stagepush::queue::consumer`), then exit as a run
//! does. The summary and the report (`queue`) count the messages.

use std::process::ExitCode;

use stagepush::cancel::Cancel;
use stagepush::config::RunConfig;
use stagepush::job::Job;
use stagepush::pipeline::RunReport;
use stagepush::queue::QueueOptions;
use stagepush::queue::consumer::{Consumer, ConsumerError, Counters, Until};
use stagepush::run_report::QueueCounts;

use super::super::exit::{Outcome, Signal};
use super::super::logging::quiet;
use super::summary::print_summary;

/// The summary line of the messages.
pub(crate) fn queue_line(url: &str, c: &QueueCounts) -> String {
    format!(
        "summary: queue {url}: {} messages received: {} deleted, {} left, {} dead-lettered; \
         visibility extended {} times",
        c.received, c.deleted, c.left, c.dead_lettered, c.extended
    )
}

pub(super) fn run_queue(
    job: &Job,
    config: &RunConfig,
    options: QueueOptions,
    selection: &stagepush::source::Selection,
) -> anyhow::Result<ExitCode> {
    let client = match stagepush::queue::connect(&options.url, &config.source) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(Outcome::Failed));
        }
    };
    let cancel = Cancel::new();
    super::super::signals::cancel_on_signals(cancel.clone())?;
    let counters = Counters::default();
    let consumer = Consumer {
        job,
        client: client.as_ref(),
        options: &options,
        counters: &counters,
        cancel: &cancel,
        selection,
        on_run: &|_| {},
    };
    eprintln!("queue {}: receiving until it is empty", options.url);
    let (consumed, error) = consumer.run(Until::Empty);
    if let Some(ConsumerError::Pipeline(stagepush::pipeline::PipelineError::Mapping(e))) = &error {
        eprintln!("error: {e}");
        return Ok(ExitCode::from(Outcome::Usage));
    }
    let counts = counters.snapshot();
    let ran = consumed.report.is_some();
    let mut report = consumed.report.unwrap_or_else(|| RunReport {
        state: job.state.location().to_string(),
        ..RunReport::default()
    });
    report.queue = Some(counts.clone());
    if let Some(path) = &config.output.report {
        let json = serde_json::to_vec_pretty(&report).unwrap_or_default();
        if let Err(e) = std::fs::write(path, &json) {
            eprintln!("error: cannot write the report {}: {e}", path.display());
        }
    }
    if !quiet() {
        if ran {
            print_summary(&report);
        }
        eprintln!("{}", queue_line(&options.url.to_string(), &counts));
    }
    if let Some(error) = error {
        eprintln!("error: {error}; messages not done stay in the queue");
        return Ok(ExitCode::from(Outcome::Failed));
    }
    if let Some(error) = &report.fatal_error {
        eprintln!("error: the run stopped: {error}; messages not done stay in the queue");
    }
    if let Some(signal) = &report.interrupted.clone().or_else(|| cancel.reason()) {
        eprintln!(
            "error: interrupted by {signal}: what CluedIn acknowledged is recorded; messages not done stay in the queue"
        );
        return Ok(Outcome::Interrupted(Signal::named(signal)).into());
    }
    Ok(Outcome::of_run(
        report.fatal_error.is_some(),
        report.rows.dead_lettered > 0 || consumed.unusable_keys > 0 || counts.dead_lettered > 0,
    )
    .into())
}
