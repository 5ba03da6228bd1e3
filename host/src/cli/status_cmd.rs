//! `stagepush status`: the last runs, the files of every stage by status (done, partial,
//! claimed, pending), the dead letters by reason, and any damaged state document. The
//! logic is `stagepush::state::status` (its module docs describe the `--json` output);
//! the text is rendered by [`render`].
//!
//! Exit status: 0; 1 when a state document is damaged (named in the output) or the state
//! cannot be read; 2 usage or configuration error.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use stagepush::config::RunConfig;
use stagepush::source::{Stage, StageUrl, StoreKind};
use stagepush::state::StateStore;
use stagepush::state::status::{self, ListedStage, StatusOptions};

use super::exit::Outcome;
use stagepush::wire::time::now_ms;

mod render;

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub state: super::run_cmd::StateArgs,
    /// TOML configuration file of `run` (its [source] and [state]; flags override it).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Show only this stage, and count its files that have no state yet as pending.
    #[arg(long, value_name = "PATH_OR_URL")]
    pub source: Option<String>,
    /// Settings of the stage (and of an object-store state without [state.store]).
    #[command(flatten)]
    pub stage: super::run_cmd::RunStageArgs,
    /// How many of the last runs to show.
    #[arg(long, value_name = "N", default_value_t = status::DEFAULT_RUNS)]
    pub runs: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let mut config = match &args.config {
        Some(path) => match RunConfig::load(path) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(Outcome::Usage));
            }
        },
        None => RunConfig::default(),
    };
    if let Some(source) = &args.source {
        config.source.url = Some(source.clone());
    }
    merge_stage_flags(&mut config.source, &args.stage);
    args.state.apply(&mut config.state);

    let location = config.state.location();
    if let Some(folder) = local_folder(&location)
        && !folder.is_dir()
    {
        // Opening would create it; a status reads only.
        eprintln!(
            "error: no delivery state at {} (set --state or STAGEPUSH_STATE to where `run` keeps it)",
            folder.display()
        );
        return Ok(ExitCode::from(Outcome::Usage));
    }
    let store = match StateStore::open(&location, &config.state.store_config(&config.source)) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(Outcome::Usage));
        }
    };
    let stage = match &config.source.url {
        Some(_) => {
            let stage = stagepush::state::stage_key::bind(&store, Stage::new(&config.source)?)?;
            let files = stage.list()?;
            Some(ListedStage {
                url: stage.state_key().to_owned(),
                files,
            })
        }
        None => None,
    };
    let options = StatusOptions {
        runs: args.runs,
        stage,
        now_ms: now_ms(),
    };
    let report = status::collect(&store, &options)?;
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        render::render_text(&report)
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // `status | head`: the reader has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        result => result?,
    }
    if report.is_healthy() {
        return Ok(Outcome::Done.into());
    }
    for damaged in &report.damaged {
        eprintln!(
            "error: state document {} is damaged ({})",
            damaged.path, damaged.reason
        );
    }
    Ok(ExitCode::from(Outcome::Failed))
}

/// The folder of a local state location (a path or `file://` URL).
fn local_folder(location: &str) -> Option<PathBuf> {
    let url = StageUrl::parse(location).ok()?;
    (url.kind() == StoreKind::Local).then(|| PathBuf::from(url.key()))
}

/// Stage flags override the config file's `[source]` settings (as in `run`).
fn merge_stage_flags(
    config: &mut stagepush::source::StageConfig,
    flags: &super::run_cmd::RunStageArgs,
) {
    let from_flags = super::inspect_cmd::StageArgs {
        region: flags.region.clone(),
        endpoint: flags.stage_endpoint.clone(),
        allow_http: flags.allow_http,
        path_style: flags.path_style,
        account: flags.account.clone(),
        use_emulator: flags.use_emulator,
        anonymous: flags.anonymous,
        old_endpoint: Vec::new(),
    }
    .config("");
    macro_rules! take {
        ($($field:ident),*) => {$(
            if from_flags.$field.is_some() {
                config.$field = from_flags.$field;
            }
        )*};
    }
    take!(
        region,
        endpoint,
        allow_http,
        path_style,
        account,
        use_emulator,
        skip_signature
    );
}
