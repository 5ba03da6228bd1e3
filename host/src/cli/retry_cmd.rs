//! `stagepush retry`: the dead letters kept in the delivery state, sent again (see
//! `stagepush::deadletter::redeliver`). Also `run --retry-rejected`, before the run.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use stagepush::config::RunConfig;
use stagepush::deadletter::redeliver::{RedeliverOptions, RedeliveryReport, redeliver};
use stagepush::pipeline::RunOptions;
use stagepush::sink::CluedInSink;
use stagepush::source::Stage;
use stagepush::state::StateStore;

use super::exit::Outcome;

#[derive(Args)]
pub struct RetryArgs {
    /// The same settings as `run` (config file, source, plugin, endpoint, token, state).
    /// `--plugin` may name a new version of the plugin: the rows it rejected are
    /// transformed again with it.
    #[command(flatten)]
    pub run: super::run_cmd::RunArgs,
}

/// Exit status: 0 no dead letter of the stage is left; 3 some are; 1 the retry stopped
/// (the endpoint refused the token, a damaged dead-letter chunk, …); 2 usage error.
pub fn run(args: RetryArgs) -> anyhow::Result<ExitCode> {
    let args = args.run;
    if args.queue.is_some() {
        eprintln!(
            "error: retry sends the dead letters of earlier runs again; it does not consume a \
             --queue (use `run --queue`)"
        );
        return Ok(ExitCode::from(Outcome::Usage));
    }
    let (config, token) = match super::run_cmd::resolve(&args) {
        Ok(resolved) => resolved,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(Outcome::Usage));
        }
    };
    let sink_config = config.sink.clone().context("no sink")?;
    let sink = match CluedInSink::new(&sink_config, token) {
        Ok(sink) => sink,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(Outcome::Usage));
        }
    };
    let stage = Stage::new(&config.source)?;
    let transform = stagepush::job::transform_spec(&config, args.plugin_flags.cache_dir())?;
    let state = match StateStore::open(
        &config.state.location(),
        &config.state.store_config(&config.source),
    ) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(Outcome::Usage));
        }
    };
    let stage = match stagepush::state::stage_key::bind(&state, stage) {
        Ok(stage) => stage,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(Outcome::Failed));
        }
    };
    let options = RedeliverOptions {
        stage,
        transform,
        batch_rows: config.plugin.batch_rows,
        shape: config.records.shape,
        state,
        dead_letter_dir: config.output.dead_letter_dir(),
    };
    let report = match redeliver(&options, &sink) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(Outcome::Failed));
        }
    };
    if let Some(path) = &config.output.report {
        let json = serde_json::to_vec_pretty(&report)?;
        std::fs::write(path, &json)
            .with_context(|| format!("cannot write the report {}", path.display()))?;
    }
    print_summary(&report);
    Ok(exit_code(&report))
}

/// `run --retry-rejected`: redelivers the dead letters of the stage before the run, with the
/// run's plugin, sink settings and state. `Some` exit status when the run must not start
/// (the retry stopped on a fatal error).
pub(super) fn before_run(config: &RunConfig, run: &RunOptions) -> Option<ExitCode> {
    // A sink of its own, so that the run report counts the run's requests only.
    let sink = config
        .sink
        .as_ref()
        .ok_or_else(|| "no sink".to_string())
        .and_then(|sink_config| {
            let token = config.auth.token().map_err(|e| e.to_string())?;
            CluedInSink::new(sink_config, token).map_err(|e| e.to_string())
        });
    let sink = match sink {
        Ok(sink) => sink,
        Err(e) => {
            eprintln!("error: {e}");
            return Some(ExitCode::from(Outcome::Usage));
        }
    };
    let options = RedeliverOptions {
        stage: run.stage.clone(),
        transform: run.transform.clone(),
        batch_rows: run.batch_rows,
        shape: run.shape,
        state: run.state.clone(),
        dead_letter_dir: run.dead_letter_dir.clone(),
    };
    match redeliver(&options, &sink) {
        Ok(report) => {
            print_summary(&report);
            report
                .fatal_error
                .is_some()
                .then(|| ExitCode::from(Outcome::Failed))
        }
        Err(e) => {
            eprintln!("error: retrying the dead letters: {e}; the run did not start");
            Some(ExitCode::from(Outcome::Failed))
        }
    }
}

fn exit_code(report: &RedeliveryReport) -> ExitCode {
    Outcome::of_run(report.fatal_error.is_some(), report.remaining > 0).into()
}

/// The summary lines (not with `-q`) and the error that stopped the retry (always).
fn print_summary(r: &RedeliveryReport) {
    if super::logging::quiet() {
        if let Some(error) = &r.fatal_error {
            eprintln!("error: the retry stopped: {error}");
        }
        return;
    }
    eprintln!("{}", r.summary());
    if r.duplicates > 0 {
        eprintln!(
            "retry: {} duplicate dead letters (left by an interrupted retry) collapsed",
            r.duplicates
        );
    }
    eprintln!(
        "retry: {} records delivered, {} rejected; {} requests, {} retries; {:.1} s",
        r.records_delivered, r.records_rejected, r.requests, r.retries, r.duration_secs
    );
    if r.remaining > 0 {
        eprintln!(
            "retry: {} dead letters left in {} (the rows rejected again are also in {})",
            r.remaining,
            r.state_dead_letters,
            r.dead_letters.display()
        );
    }
    if let Some(error) = &r.fatal_error {
        eprintln!("error: the retry stopped: {error}");
    }
}
