//! `stagepush run`: the whole pipeline, configured by a TOML file and/or flags. The parts:
//! `args` (flags and the resolved configuration), `event` (`--event`), `summary`
//! (progress and the summary lines).

mod args;
mod event;
mod summary;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use stagepush::cancel::Cancel;
use stagepush::job::Job;
use stagepush::pipeline::Progress;
use stagepush::shard::Shard;

pub(crate) use args::resolve;
pub use args::{RunArgs, RunStageArgs, StateArgs};
use event::event_files;
use summary::{print_summary, start_progress};

use super::exit::{Outcome, Signal};
use super::logging::quiet;

pub fn run_command(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (config, token) = match resolve(&args) {
        Ok(resolved) => resolved,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(Outcome::Usage));
        }
    };
    let cache_dir = args.plugin_flags.cache_dir();
    let job = match Job::prepare(config.clone(), token, cache_dir) {
        Ok(job) => job,
        Err(e) if e.is_usage() => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(Outcome::Usage));
        }
        Err(e) => anyhow::bail!(e.to_string()),
    };
    let shard = match (&args.shard, args.shard_count) {
        (Some(text), _) => Some(Shard::parse(text)),
        (None, Some(count)) => Some(Shard::from_job_index(
            count,
            std::env::var(stagepush::shard::JOB_COMPLETION_INDEX).ok(),
        )),
        (None, None) => None,
    };
    let shard = match shard.transpose() {
        Ok(shard) => shard,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(Outcome::Usage));
        }
    };
    // Objects the event named whose key cannot be read (recorded as pending errors).
    let mut refused_keys = 0;
    let files = match &args.event {
        Some(path) => match event_files(&job, path) {
            Ok((files, refused)) => {
                for unusable in &refused {
                    stagepush::state::pending::record_error(
                        &job.state,
                        job.stage.state_key(),
                        unusable,
                    )?;
                    eprintln!(
                        "event: refused {}: {}; recorded as a pending error (see `stagepush \
                         status`)",
                        stagepush::events::show_key(&unusable.key),
                        unusable.reason
                    );
                }
                refused_keys = refused.len();
                files
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(Outcome::Usage));
            }
        },
        None => job.stage.select(&args.select.selection()?)?,
    };
    let files: Vec<_> = match shard {
        Some(shard) => {
            let all = files.len();
            let mine: Vec<_> = files.into_iter().filter(|f| shard.owns(&f.key)).collect();
            eprintln!(
                "shard {}/{}: {} of {all} files",
                shard.index,
                shard.count,
                mine.len()
            );
            mine
        }
        None => files,
    };
    if files.is_empty() && args.event.is_none() && !quiet() {
        eprintln!("warning: no data files in {}", job.stage.url());
    }
    stagepush::failpoint::hit("listing");
    if config.state.retry_rejected
        && let Some(code) = super::retry_cmd::before_run(&config, &job.options(Vec::new(), None))
    {
        return Ok(code);
    }
    let cancel = Cancel::new();
    super::signals::cancel_on_signals(cancel.clone())?;
    let progress = Arc::new(Progress::default());
    let bar = (!args.no_progress && !quiet() && std::io::stderr().is_terminal())
        .then(|| start_progress(progress.clone()));
    let report = job.run(files, progress, Some(cancel));
    if let Some((bar, stop)) = bar {
        stop.store(true, Ordering::Relaxed);
        let _ = bar.join();
    }
    let report = report?;
    if !quiet() {
        print_summary(&report);
    }
    if let Some(error) = &report.fatal_error {
        eprintln!("error: the run stopped: {error}");
    }
    if let Some(signal) = &report.interrupted {
        eprintln!(
            "error: the run was interrupted by {signal}: what CluedIn acknowledged is recorded; the next run delivers the rest"
        );
        return Ok(Outcome::Interrupted(Signal::named(signal)).into());
    }
    Ok(Outcome::of_run(
        report.fatal_error.is_some(),
        report.rows.dead_lettered > 0 || refused_keys > 0,
    )
    .into())
}
