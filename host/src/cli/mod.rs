//! Command-line arguments and dispatch.

mod check_cmd;
mod choices;
pub mod exit;
mod init_cmd;
mod inspect_cmd;
pub mod logging;
mod plugin_cmd;
pub mod plugin_flags;
mod retry_cmd;
pub(crate) mod run_cmd;
mod sample_cmd;
mod serve_cmd;
mod signals;
mod status_cmd;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use self::exit::Outcome;
pub use self::plugin_flags::PluginFlags;

#[derive(Parser)]
#[command(
    name = "stagepush",
    version,
    about = "Moves Snowflake stage exports into CluedIn through sandboxed WebAssembly transforms"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args)]
pub struct GlobalArgs {
    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors in the log.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Read a stage, transform every row, deliver the records to CluedIn.
    ///
    /// Exit status: 0 every row delivered or filtered; 3 finished, some rows
    /// dead-lettered; 1 the run stopped; 2 usage or configuration error; 130/143 stopped by
    /// SIGINT/SIGTERM (at the next batch, what was acknowledged recorded).
    Run(Box<run_cmd::RunCommand>),
    /// Retry the dead letters kept in the delivery state: re-send the rows the endpoint
    /// rejected and re-transform the rows the plugin rejected (with --plugin, a new
    /// version), removing each from the dead letters once delivered.
    ///
    /// Exit status: 0 no dead letter left; 3 some remain; 1 stopped; 2 usage error.
    Retry(Box<retry_cmd::RetryArgs>),
    /// Show the delivery state: the last runs, files done/partial/claimed/pending, dead
    /// letters by reason.
    Status(status_cmd::StatusArgs),
    /// Work with transform plugins.
    #[command(subcommand)]
    Plugin(plugin_cmd::PluginCommand),
    /// Write a sample Snowflake-like customer stage (for demos and benchmarks).
    SampleStage(sample_cmd::SampleArgs),
    /// Run a local stand-in for a CluedIn Ingestion Endpoint.
    MockCluedin(stagepush::mock_cluedin::MockArgs),
    /// Show a stage's files, schema (with the likely Snowflake types) and pitfalls.
    Inspect(inspect_cmd::InspectArgs),
    /// Receive object-store push notifications (S3 via SNS/SQS/EventBridge, Event Grid,
    /// CloudEvents) on POST /events and deliver the files they name, as `run` does.
    ///
    /// Each file is recorded as pending in the delivery state before the event is
    /// acknowledged, and delivered by a background run; pending files left by a stopped
    /// server are delivered at the next start. Also GET /healthz and GET /metrics.
    ///
    /// Exit status: 0 stopped by SIGTERM/SIGINT; 1 failed; 2 usage error.
    Serve(Box<serve_cmd::ServeArgs>),
    /// Write a commented stagepush.toml with every key and its default.
    ///
    /// Exit status: 0 written; 1 the file exists (--force replaces it) or cannot be written.
    Init(init_cmd::InitArgs),
    /// Check a configuration without sending records: the token, the endpoint's host, the
    /// stage and its schema, the plugin against that schema, the state. One line per check.
    ///
    /// Exit status: 0 every check passed; 2 the configuration or the token is wrong; 1 a
    /// check of the endpoint, stage, plugin or state failed.
    Check(Box<check_cmd::CheckArgs>),
}

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run_cmd::run_command(*args),
        Command::Retry(args) => retry_cmd::run(*args),
        Command::Status(args) => status_cmd::run(args),
        Command::Plugin(cmd) => plugin_cmd::run(cmd),
        Command::SampleStage(args) => sample_cmd::run(args),
        Command::Inspect(args) => inspect_cmd::run(args),
        Command::Serve(args) => serve_cmd::run(*args),
        Command::Init(args) => init_cmd::run(args),
        Command::Check(args) => check_cmd::run(*args),
        Command::MockCluedin(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(stagepush::mock_cluedin::serve(args))?;
            Ok(Outcome::Done.into())
        }
    }
}

/// The plugin options of `plugin test` and `plugin info`: the flags every command that
/// loads a plugin shares ([`PluginFlags`]) and `--no-cache`.
#[derive(Args, Clone)]
pub struct PluginOptions {
    #[command(flatten)]
    pub flags: PluginFlags,
    /// Compile the plugin every time instead of using the cache.
    #[arg(long)]
    pub no_cache: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own consistency checks (duplicate flags, conflicting names) only run in debug
    /// builds; run them here for every subcommand.
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
