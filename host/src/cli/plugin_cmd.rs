//! `stagepush plugin test|info`: what a plugin author runs to see exactly what their
//! plugin produces.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use stagepush::bindings::types::ColumnSchema;
use stagepush::plugin::{Limits, LoadOptions, Plugin, PluginEngine, Runner, default_cache_dir};
use stagepush::source::parquet::{ParquetSource, ReadOptions, SourceError};
use stagepush::source::path::source_file;
use stagepush::source::{Stage, StageFile, StageReader};
use stagepush::transform::{ArrowInput, Encoder};
use stagepush::wire::Shape;

use super::PluginOptions;
use super::inspect_cmd::{SelectArgs, StageArgs, is_stage_url};

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Run a plugin over Parquet files and print each record as one line of wire JSON.
    ///
    /// Records go to stdout in input order; each row error goes to stderr as one line
    /// naming file, row number (0-based) and message; a summary line ends stderr. Exits
    /// 0 when the run completed, even with row errors.
    Test(Box<TestArgs>),
    /// Show what a plugin says about itself: name, version, contract, config keys.
    Info(InfoArgs),
}

#[derive(Args)]
pub struct TestArgs {
    /// The plugin component (.wasm).
    pub plugin: PathBuf,
    /// Parquet files, folders searched recursively for them, or stage URLs (s3://…,
    /// az://…, azure://ACCOUNT.blob.core.windows.net/…, gs://…, file://…).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Stop after this many input rows.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Record shape of the printed wire JSON.
    #[arg(long, value_enum, default_value_t = Shape::Nested)]
    pub shape: Shape,
    /// Rows per plugin call.
    #[arg(long, default_value_t = stagepush::source::parquet::DEFAULT_BATCH_ROWS)]
    pub batch_rows: usize,
    #[command(flatten)]
    pub plugin_options: PluginOptions,
    /// Which files of the stage URLs to read.
    #[command(flatten)]
    pub select: SelectArgs,
    /// Settings of the stage URLs (credentials come from the environment).
    #[command(flatten)]
    pub stage: StageArgs,
}

#[derive(Args)]
pub struct InfoArgs {
    /// The plugin component (.wasm).
    pub plugin: PathBuf,
    #[command(flatten)]
    pub plugin_options: PluginOptions,
}

pub fn run(cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PluginCommand::Test(args) => test(*args),
        PluginCommand::Info(args) => info(args),
    }
}

/// A plugin engine with the command-line limits.
pub fn engine(options: &PluginOptions) -> anyhow::Result<PluginEngine> {
    Ok(PluginEngine::new(Limits {
        memory_bytes: options.plugin_memory_mib.saturating_mul(1024 * 1024),
        call_timeout: std::time::Duration::from_millis(options.plugin_timeout_ms),
    })?)
}

/// The compiled-plugin cache directory the options ask for, if any.
pub fn cache_dir(options: &PluginOptions) -> Option<PathBuf> {
    if options.no_cache {
        None
    } else {
        Some(options.cache_dir.clone().unwrap_or_else(default_cache_dir))
    }
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

fn load_with(
    engine: &PluginEngine,
    path: &Path,
    options: &PluginOptions,
) -> anyhow::Result<Arc<Plugin>> {
    let load = LoadOptions {
        cache_dir: cache_dir(options),
        expected_sha256: options.plugin_sha256.clone(),
    };
    Ok(Arc::new(Plugin::load(engine, path, &load)?))
}

fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.batch_rows > 0, "--batch-rows must be at least 1");
    let files = collect_test_inputs(&args)?;
    anyhow::ensure!(
        !files.is_empty(),
        "no Parquet files found in {:?}",
        args.inputs
    );
    let (_engine, plugin) = load_plugin(&args.plugin, &args.plugin_options)?;

    let started = Instant::now();
    let mut encoder = Encoder::new(args.shape);
    let mut runner: Option<(Runner, Vec<ColumnSchema>)> = None;
    let (mut rows, mut records, mut filtered, mut errors) = (0u64, 0u64, 0u64, 0u64);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let stderr = std::io::stderr();
    'files: for input in &files {
        let (name, source, file) = input.open()?;
        let schema = source.contract_schema()?;
        let runner = match &mut runner {
            Some((runner, first_schema)) => {
                anyhow::ensure!(
                    *first_schema == schema,
                    "{name}: its schema differs from the first file's ({})",
                    files[0].name()
                );
                runner
            }
            None => {
                let started = Runner::start(
                    plugin.clone(),
                    schema.clone(),
                    args.plugin_options.config.clone(),
                )?;
                &mut runner.insert((started, schema.clone())).0
            }
        };
        let (projection, batch_schema) = runner.read_plan();
        let options = ReadOptions {
            batch_rows: args.batch_rows,
            projection,
            start_row: 0,
        };
        for batch in source.batches(&options)? {
            let batch = batch?;
            let mut record_batch = batch.batch;
            if let Some(limit) = args.limit {
                let left = limit.saturating_sub(rows);
                if left == 0 {
                    break 'files;
                }
                if (record_batch.num_rows() as u64) > left {
                    record_batch = record_batch.slice(0, left as usize);
                }
            }
            let input = ArrowInput {
                file: &file,
                first_row: batch.first_row,
                batch: &record_batch,
                schema: &batch_schema,
                projection: None,
            };
            let encoded = encoder.transform(runner, &input)?;
            rows += encoded.rows;
            filtered += encoded.filtered;
            records += encoded.records.len() as u64;
            errors += encoded.failures.len() as u64;
            for record in &encoded.records {
                out.write_all(encoded.record_json(record))?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            let mut err = stderr.lock();
            for failure in &encoded.failures {
                writeln!(
                    err,
                    "error: {name} row {}: plugin `{}` {} ({}): {}",
                    failure.row,
                    plugin.name(),
                    stage_verb(failure.kind),
                    failure.kind,
                    failure.message
                )?;
            }
        }
    }
    out.flush()?;
    let elapsed = started.elapsed();
    let plugin_time = runner
        .as_ref()
        .map(|(r, _)| r.stats().time_in_plugin)
        .unwrap_or_default();
    let per_row = |d: std::time::Duration| {
        if rows > 0 {
            d.as_secs_f64() * 1e6 / rows as f64
        } else {
            0.0
        }
    };
    eprintln!(
        "summary: {rows} rows read, {records} records, {filtered} filtered, {errors} errors; \
         {:.2} µs/row in the plugin, {:.2} µs/row in all ({} files)",
        per_row(plugin_time),
        per_row(elapsed),
        files.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn stage_verb(kind: &str) -> &'static str {
    match kind {
        "rejected" => "rejected the row",
        "encode" => "produced an entity that cannot be sent",
        _ => "failed on the row",
    }
}

fn info(args: InfoArgs) -> anyhow::Result<ExitCode> {
    let engine = engine(&args.plugin_options)?;
    let bytes = std::fs::read(&args.plugin)
        .with_context(|| format!("cannot read plugin {}", args.plugin.display()))?;
    let cached = cache_dir(&args.plugin_options).is_some_and(|dir| {
        stagepush::plugin::is_cached(engine.engine(), &dir, &stagepush::plugin::digest(&bytes))
    });
    let plugin = load_with(&engine, &args.plugin, &args.plugin_options)?;
    let info = plugin.info();
    println!("name:        {}", info.name);
    println!("version:     {}", info.version);
    if !info.description.is_empty() {
        println!("description: {}", info.description);
    }
    println!(
        "contract:    {}@{}",
        stagepush::bindings::CONTRACT_PACKAGE,
        stagepush::bindings::CONTRACT_VERSION
    );
    println!(
        "file:        {} ({} bytes)",
        plugin.path().display(),
        plugin.size()
    );
    println!("sha256:      {}", plugin.digest());
    println!("cached:      {}", if cached { "yes" } else { "no" });
    if info.config.is_empty() {
        println!("config:      (none)");
    } else {
        println!("config:");
        for key in &info.config {
            let required = if key.required { " (required)" } else { "" };
            let default = key
                .default_value
                .as_deref()
                .map(|d| format!(" [default: {d}]"))
                .unwrap_or_default();
            println!("  {}{required}{default}: {}", key.name, key.description);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One input of `plugin test`: a local file, or a file of a stage URL.
enum TestInput {
    Local(PathBuf),
    Stage(Box<(Stage, StageFile)>),
}

impl TestInput {
    fn name(&self) -> String {
        match self {
            TestInput::Local(path) => path.display().to_string(),
            TestInput::Stage(stage) => stage.1.url.clone(),
        }
    }

    /// Its name in messages, the open Parquet file, and what the plugin is told about it.
    fn open(
        &self,
    ) -> anyhow::Result<(
        String,
        ParquetSource<StageReader>,
        stagepush::bindings::types::SourceFile,
    )> {
        let name = self.name();
        match self {
            TestInput::Local(path) => {
                let handle = std::fs::File::open(path).map_err(|source| SourceError::Open {
                    file: name.clone(),
                    source,
                })?;
                let source = ParquetSource::new(StageReader::File(handle), name.clone())?;
                let file = source_file(&name);
                Ok((name, source, file))
            }
            TestInput::Stage(stage) => {
                let (stage, file) = stage.as_ref();
                let source = stage.open(file)?;
                Ok((name, source.parquet().clone(), file.source_file()))
            }
        }
    }
}

/// The inputs in order: stage URLs through the stage API (listed and selected), local
/// paths as [`collect_inputs`] finds them.
fn collect_test_inputs(args: &TestArgs) -> anyhow::Result<Vec<TestInput>> {
    let is_url = |input: &PathBuf| input.to_str().is_some_and(is_stage_url);
    if !args.select.is_empty() && !args.inputs.iter().any(is_url) {
        anyhow::bail!(
            "--include, --exclude, --modified-since and --keys-from select files of stage \
             URLs; for a local folder use its file:// URL"
        );
    }
    let selection = args.select.selection()?;
    let mut files = Vec::new();
    for input in &args.inputs {
        match input.to_str().filter(|text| is_stage_url(text)) {
            Some(url) => {
                let stage = args.stage.stage(url)?;
                let selected = stage.select(&selection)?;
                anyhow::ensure!(!selected.is_empty(), "no data files in {}", stage.url());
                files.extend(
                    selected
                        .into_iter()
                        .map(|file| TestInput::Stage(Box::new((stage.clone(), file)))),
                );
            }
            None => files.extend(
                collect_inputs(std::slice::from_ref(input))?
                    .into_iter()
                    .map(TestInput::Local),
            ),
        }
    }
    Ok(files)
}

/// Parquet files named directly, and those found recursively in named folders, sorted
/// per folder. A file counts as Parquet by its `.parquet` extension or, for Snowflake's
/// extension-less `SINGLE=TRUE` output, by its `PAR1` magic.
pub fn collect_inputs(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        let meta =
            std::fs::metadata(input).with_context(|| format!("cannot read {}", input.display()))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(input, &mut found)?;
            found.sort();
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, found)?;
        } else if is_parquet(&path) {
            found.push(path);
        }
    }
    Ok(())
}

fn is_parquet(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e == "parquet") {
        return true;
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == b"PAR1"
}
