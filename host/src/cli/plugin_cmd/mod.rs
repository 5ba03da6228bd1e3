//! `stagepush plugin test|info|new`: what a plugin author runs to see exactly what their
//! plugin produces (and, with `--expect`, whether it still produces what it should).
//!
//! | module | owns |
//! |---|---|
//! | `workbench` | `plugin test`: the run over the inputs, records on stdout, the summary |
//! | `inputs` | `plugin test`'s inputs: local Parquet, stage URLs, JSON rows |
//! | `expect` | `--expect`: produced records against expected ones |
//! | `info` | `plugin info` |
//! | `cache` | `plugin cache list\|prune` |

mod cache;
mod expect;
mod info;
mod inputs;
mod workbench;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::choices::ShapeArg;
use clap::{Args, Subcommand};
use stagepush::plugin::{Limits, LoadOptions, Plugin, PluginEngine};

use super::PluginOptions;
use super::exit::Outcome;
use super::inspect_cmd::{SelectArgs, StageArgs};

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Run a plugin over Parquet files and print each record as one line of wire JSON.
    ///
    /// Records go to stdout in input order; each row error goes to stderr as one line
    /// naming file, row number (0-based) and message; a summary line ends stderr. Exits
    /// 0 when the run completed, even with row errors; with `--expect`, 1 when the
    /// records differ from the expected ones.
    Test(Box<TestArgs>),
    /// Show what a plugin says about itself: name, version, contract, config keys, and
    /// what the component imports, its size and whether a compiled copy is cached.
    Info(InfoArgs),
    /// Make a new plugin project that builds and passes its own test as it is.
    ///
    /// The project holds an example mapping, a copy of the SDK and of the contract this
    /// stagepush runs, a Snowflake-style sample.parquet, the expected.ndjson records the
    /// example makes of it, and a Makefile: `make test` builds build/NAME.wasm and checks
    /// it with `stagepush plugin test --expect`.
    New(NewArgs),
    /// List or prune the cache of compiled plugins (each Python or JS build adds tens of
    /// MB; a load from the cache marks its entry used).
    #[command(subcommand)]
    Cache(cache::CacheCommand),
}

#[derive(Args)]
pub struct TestArgs {
    /// The plugin component (.wasm).
    pub plugin: PathBuf,
    /// Parquet, CSV or JSON files (`.csv`, `.csv.gz`, `.json.gz`, …: as `--config`'s
    /// `[source]` reads them), folders searched recursively for Parquet files, or stage
    /// URLs (s3://…, az://…, azure://ACCOUNT.blob.core.windows.net/…, gs://…, file://…).
    #[arg(required_unless_present = "json_input", conflicts_with = "json_input")]
    pub inputs: Vec<PathBuf>,
    /// Read the rows from a file of JSON objects, one per line, instead of Parquet. Column
    /// types are inferred as the relay infers them: booleans, integers, floats, wall-clock
    /// timestamps and dates (text that is one in every row), JSON (arrays and objects);
    /// anything else, mixed or null in every row is text.
    #[arg(long, value_name = "FILE")]
    pub json_input: Option<PathBuf>,
    /// Compare the records with this file (NDJSON, one record per line, as printed on
    /// stdout); print the first differences and exit 1 when they differ.
    #[arg(long, value_name = "FILE.ndjson")]
    pub expect: Option<PathBuf>,
    /// Stop after this many input rows.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Record shape of the printed wire JSON.
    #[arg(long, value_enum, default_value_t = ShapeArg::Nested)]
    pub shape: ShapeArg,
    #[command(flatten)]
    pub plugin_options: PluginOptions,
    /// Renamed to --plugin-batch-rows.
    #[arg(long = "batch-rows", hide = true, value_parser = crate::cli::plugin_flags::renamed(crate::cli::plugin_flags::RENAMED_BATCH_ROWS))]
    pub old_batch_rows: Vec<String>,
    /// Which files of the stage URLs to read.
    #[command(flatten)]
    pub select: SelectArgs,
    /// Settings of the stage URLs (credentials come from the environment).
    #[command(flatten)]
    pub stage: StageArgs,
    /// The TOML configuration file of `run`: its `[source]` settings say how the inputs
    /// are read (`format`, `[source.csv]` with the declared `columns`, `[source.json]`,
    /// the store's settings under the stage flags), so CSV and JSON files reach the plugin
    /// with the types `run` gives them. Without it a CSV file's columns are text.
    #[arg(long, value_name = "FILE", value_parser = crate::cli::plugin_flags::config_file)]
    pub config: Option<PathBuf>,
}

#[derive(Args)]
pub struct InfoArgs {
    /// The plugin component (.wasm).
    pub plugin: PathBuf,
    #[command(flatten)]
    pub plugin_options: PluginOptions,
    /// Renamed to --plugin-config.
    #[arg(long = "config", hide = true, value_parser = crate::cli::plugin_flags::renamed(crate::cli::plugin_flags::RENAMED_CONFIG))]
    pub old_config: Vec<String>,
}

/// The languages `plugin new` writes.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Lang {
    /// Rust, with the `stagepush-plugin` crate (built for wasm32-wasip2 by cargo).
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with ComponentizeJS.
    Js,
}

#[derive(Args)]
pub struct NewArgs {
    /// The plugin's name: lower-case letters, digits and '-' (also the crate or package
    /// name and the component's file name).
    pub name: String,
    /// The language of the plugin.
    #[arg(long, value_enum)]
    pub lang: Lang,
    /// The project folder (default: ./NAME). It must be empty or not exist.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn run(cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PluginCommand::Test(args) => workbench::test(*args),
        PluginCommand::Info(args) => info::info(args),
        PluginCommand::New(args) => new(args),
        PluginCommand::Cache(cmd) => cache::run(cmd),
    }
}

fn new(args: NewArgs) -> anyhow::Result<ExitCode> {
    use stagepush::scaffold::{Language, new_plugin};
    let lang = match args.lang {
        Lang::Rust => Language::Rust,
        Lang::Python => Language::Python,
        Lang::Js => Language::Js,
    };
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let project = new_plugin(&args.name, lang, &dir)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "created {lang} plugin `{}` in {}:",
        args.name,
        project.dir.display()
    )?;
    for file in &project.files {
        writeln!(out, "  {}", file.display())?;
    }
    let first = match lang {
        Language::Rust => "rustup target add wasm32-wasip2   # once",
        Language::Python => {
            "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt   # once"
        }
        Language::Js => "npm install   # once",
    };
    let test = match lang {
        Language::Python => "make test COMPONENTIZE_PY=.venv/bin/componentize-py",
        _ => "make test",
    };
    writeln!(
        out,
        "\nnext:\n  cd {}\n  {first}\n  {test}   # builds {} and checks it against expected.ndjson\n\nsee README.md there for the rest",
        project.dir.display(),
        project.component.display()
    )?;
    Ok(Outcome::Done.into())
}

/// A plugin engine with the command-line limits.
pub fn engine(options: &PluginOptions) -> anyhow::Result<PluginEngine> {
    let plugin = options.flags.section();
    Ok(PluginEngine::new(Limits {
        memory_bytes: plugin.memory_mib.saturating_mul(1024 * 1024),
        call_timeout: std::time::Duration::from_millis(plugin.timeout_ms),
    })?)
}

/// The compiled-plugin cache directory the options ask for, if any.
pub fn cache_dir(options: &PluginOptions) -> Option<PathBuf> {
    (!options.no_cache).then(|| options.flags.cache_dir())
}

/// Loads a plugin with the command-line options.
pub fn load_plugin(
    path: &Path,
    options: &PluginOptions,
) -> anyhow::Result<(PluginEngine, Arc<Plugin>)> {
    let engine = engine(options)?;
    let plugin = load_with(&engine, path, options)?;
    Ok((engine, plugin))
}

pub(super) fn load_with(
    engine: &PluginEngine,
    path: &Path,
    options: &PluginOptions,
) -> anyhow::Result<Arc<Plugin>> {
    let load = LoadOptions {
        cache_dir: cache_dir(options),
        expected_sha256: options.flags.plugin_sha256.clone(),
    };
    Ok(Arc::new(Plugin::load(engine, path, &load)?))
}
