//! `stagepush run`: the whole pipeline, configured by a TOML file and/or flags. The parts:
//! `args` (flags and the resolved configuration), `event` (`--event`), `summary`
//! (progress and the summary lines), `dry_run` (`--dry-run`).

mod args;
mod dry_run;
mod event;
mod queue;
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
pub use args::{RunArgs, RunModeArgs, RunStageArgs, StateArgs};
pub(crate) use args::{apply_flags, resolve_config};
use event::event_files;
use summary::{print_summary, start_progress};

use super::exit::{Outcome, Signal};
use super::logging::quiet;

/// `stagepush run`'s arguments: those it shares with `serve` and `retry`, and its own.
#[derive(clap::Args)]
pub struct RunCommand {
    #[command(flatten)]
    pub args: RunArgs,
    #[command(flatten)]
    pub mode: RunModeArgs,
}

/// `--shard I/N` or `--shard-count N` (with `$JOB_COMPLETION_INDEX`), if given.
fn shard_of(args: &RunArgs) -> Result<Option<Shard>, stagepush::shard::ShardError> {
    match (&args.shard, args.shard_count) {
        (Some(text), _) => Some(Shard::parse(text)),
        (None, Some(count)) => Some(Shard::from_job_index(
            count,
            std::env::var(stagepush::shard::JOB_COMPLETION_INDEX).ok(),
        )),
        (None, None) => None,
    }
    .transpose()
}

/// The files of `shard` (all without one), saying how many.
fn shard_files(
    shard: Option<Shard>,
    files: Vec<stagepush::source::StageFile>,
) -> Vec<stagepush::source::StageFile> {
    match shard {
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
    }
}

pub fn run_command(command: RunCommand) -> anyhow::Result<ExitCode> {
    let RunCommand { args, mode } = command;
    if mode.dry_run {
        if args.queue.is_some() {
            eprintln!("error: --dry-run reads the stage; it cannot consume a --queue");
            return Ok(ExitCode::from(Outcome::Usage));
        }
        return dry_run::dry_run(&args, &mode);
    }
    let select = &args.select;
    if mode.full_refresh
        && (args.event.is_some()
            || args.queue.is_some()
            || !select.include.is_empty()
            || !select.exclude.is_empty()
            || select.modified_since.is_some()
            || select.keys_from.is_some())
    {
        eprintln!(
            "error: --full-refresh sends the whole stage again (a new generation of its \
             state); it cannot be limited by --event, --include, --exclude, \
             --modified-since or --keys-from"
        );
        return Ok(ExitCode::from(Outcome::Usage));
    }
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
    let shard = match shard_of(&args) {
        Ok(shard) => shard,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(Outcome::Usage));
        }
    };
    // `[trigger] queue` (or --queue, whose conflicts clap checks).
    if let Ok(Some(options)) = config.trigger.queue_options() {
        if args.event.is_some() || select.keys_from.is_some() || shard.is_some() {
            eprintln!(
                "error: [trigger] queue {}: the queue names the files; it cannot be combined \
                 with --event, --keys-from, --shard or --shard-count",
                options.url
            );
            return Ok(ExitCode::from(Outcome::Usage));
        }
        if config.state.retry_rejected
            && let Some(code) =
                super::retry_cmd::before_run(&config, &job.options(Vec::new(), None))
        {
            return Ok(code);
        }
        let selection = args.select.selection()?;
        if let Err(e) = selection.check() {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(Outcome::Usage));
        }
        return queue::run_queue(&job, &config, options, &selection);
    }
    // Objects the event named whose key cannot be read (recorded as pending errors).
    let mut refused_keys = 0;
    let files = match &args.event {
        Some(path) => match event_files(&job, path, &args.select.selection()?) {
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
        None => match job.stage.select(&args.select.selection()?) {
            Ok(files) => files,
            // A stage of two formats under `format = "auto"`: the config must name one.
            Err(e) if e.is_usage() => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(Outcome::Usage));
            }
            Err(e) => return Err(e.into()),
        },
    };
    let files = shard_files(shard, files);
    if files.is_empty() && args.event.is_none() && !quiet() {
        eprintln!("warning: no data files in {}", job.stage.url());
    }
    stagepush::failpoint::hit("listing");
    if config.state.retry_rejected
        && let Some(code) = super::retry_cmd::before_run(&config, &job.options(Vec::new(), None))
    {
        return Ok(code);
    }
    if mode.full_refresh {
        let done = job.start_full_refresh(&files)?;
        eprintln!("full refresh: {done} files already delivered will be sent again");
    } else {
        let outstanding = job.refresh_outstanding(&files)?;
        if outstanding > 0 {
            eprintln!(
                "full refresh: an earlier full refresh did not finish: {outstanding} files \
                 delivered before it will be sent again"
            );
        }
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
    let report = match report {
        // The mapping (or the pass-through) does not fit the stage: a configuration error.
        Err(stagepush::pipeline::PipelineError::Mapping(e)) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(Outcome::Usage));
        }
        report => report?,
    };
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
