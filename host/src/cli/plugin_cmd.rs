//! `stagepush plugin test|info`: what a plugin author runs to see exactly what their
//! plugin produces (and, with `--expect`, whether it still produces what it should).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema};
use clap::{Args, Subcommand};
use stagepush::bindings::types::{ColumnSchema, ColumnType, ScalarType, TimeUnit, TimestampType};
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
}

#[derive(Args)]
pub struct TestArgs {
    /// The plugin component (.wasm).
    pub plugin: PathBuf,
    /// Parquet files, folders searched recursively for them, or stage URLs (s3://…,
    /// az://…, azure://ACCOUNT.blob.core.windows.net/…, gs://…, file://…).
    #[arg(required_unless_present = "json_input", conflicts_with = "json_input")]
    pub inputs: Vec<PathBuf>,
    /// Read the rows from a file of JSON objects, one per line, instead of Parquet. Column
    /// types are inferred: integers, floats, booleans, text (timestamps stay text) and
    /// lists of these; a column that is null in every row is text.
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
        PluginCommand::Test(args) => test(*args),
        PluginCommand::Info(args) => info(args),
        PluginCommand::New(args) => new(args),
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
    Ok(ExitCode::SUCCESS)
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
    // Read the expectation first: a missing file should not cost a plugin run.
    let expected = args.expect.as_deref().map(read_expected).transpose()?;
    let files = match &args.json_input {
        Some(path) => {
            anyhow::ensure!(
                args.select.is_empty(),
                "--include, --exclude, --modified-since and --keys-from select files of stage \
                 URLs, not rows of --json-input"
            );
            vec![TestInput::Json(path.clone())]
        }
        None => collect_test_inputs(&args)?,
    };
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
    // The records as printed, kept only to compare with `--expect`.
    let mut produced: Vec<String> = Vec::new();
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
        for batch in source.batches(args.batch_rows, projection)? {
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
                let json = encoded.record_json(record);
                out.write_all(json)?;
                out.write_all(b"\n")?;
                if expected.is_some() {
                    produced.push(String::from_utf8_lossy(json).into_owned());
                }
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
         {rows} rows in {:.1} ms, {:.2} µs/row ({:.2} µs/row in the plugin; {} files)",
        elapsed.as_secs_f64() * 1e3,
        per_row(elapsed),
        per_row(plugin_time),
        files.len()
    );
    match (&args.expect, expected) {
        (Some(path), Some(expected)) => {
            let report = compare_records(&expected, &produced, &path.display().to_string());
            eprint!("{}", report.text);
            Ok(if report.matched {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// Differences shown in full by `--expect`; the rest are only counted.
const SHOWN_DIFFERENCES: usize = 5;

/// The non-empty lines of an `--expect` file.
fn read_expected(path: &Path) -> anyhow::Result<Vec<String>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read the expected records {}", path.display()))?;
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line =
            line.with_context(|| format!("cannot read the expected records {}", path.display()))?;
        lines.push(line);
    }
    // Trailing blank lines (an editor's final newline) are not records.
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    Ok(lines)
}

/// The outcome of comparing produced records with expected ones.
struct Comparison {
    matched: bool,
    /// What to print on stderr, ending in a newline.
    text: String,
}

/// Compares records line by line. Two lines match when they are the same text, or the
/// same JSON value (so a hand-edited expectation may order keys or space differently).
fn compare_records(expected: &[String], produced: &[String], name: &str) -> Comparison {
    let same = |e: &str, g: &str| {
        e == g
            || matches!(
                (
                    serde_json::from_str::<serde_json::Value>(e),
                    serde_json::from_str::<serde_json::Value>(g),
                ),
                (Ok(a), Ok(b)) if a == b
            )
    };
    let lines = expected.len().max(produced.len());
    let differing: Vec<usize> = (0..lines)
        .filter(|&i| match (expected.get(i), produced.get(i)) {
            (Some(e), Some(g)) => !same(e, g),
            _ => true,
        })
        .collect();
    if differing.is_empty() {
        return Comparison {
            matched: true,
            text: format!("expect: ok, all {} records match {name}\n", produced.len()),
        };
    }
    let mut text = format!(
        "expect: MISMATCH with {name}: {} records produced, {} expected, {} differing lines\n",
        produced.len(),
        expected.len(),
        differing.len()
    );
    let missing = "(no record)";
    for &i in differing.iter().take(SHOWN_DIFFERENCES) {
        text.push_str(&format!(
            "  line {}:\n    expected: {}\n    got:      {}\n",
            i + 1,
            expected.get(i).map_or(missing, String::as_str),
            produced.get(i).map_or(missing, String::as_str),
        ));
    }
    if differing.len() > SHOWN_DIFFERENCES {
        text.push_str(&format!(
            "  … and {} more differing lines\n",
            differing.len() - SHOWN_DIFFERENCES
        ));
    }
    Comparison {
        matched: false,
        text,
    }
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
    let imports = component_imports(&engine, &args.plugin_options, &bytes)?;
    let info = plugin.info();
    println!("name:        {}", info.name);
    println!("version:     {}", info.version);
    if !info.description.is_empty() {
        println!("description: {}", info.description);
    }
    println!(
        "contract:    {}@{}",
        stagepush::bindings::CONTRACT_PACKAGE,
        plugin.contract_version()
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
    if imports.is_empty() {
        println!("imports:     (none)");
    } else {
        println!("imports:");
        for import in &imports {
            println!("  {import}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The names of what the component imports (WASI and host interfaces), sorted. Read from
/// the compiled copy `Plugin::load` just cached; compiled once more with `--no-cache`.
fn component_imports(
    engine: &PluginEngine,
    options: &PluginOptions,
    bytes: &[u8],
) -> anyhow::Result<Vec<String>> {
    use wasmtime::component::{Component, types::ComponentItem};
    let wasm = engine.engine();
    let cached = cache_dir(options)
        .map(|dir| stagepush::plugin::cache_path(wasm, &dir, &stagepush::plugin::digest(bytes)))
        .filter(|path| path.is_file());
    let component = match cached {
        // SAFETY: as in the plugin cache itself: the file is the `Component::serialize`
        // output the cache stored for this digest and engine (wasmtime checks its header).
        Some(path) => unsafe { Component::deserialize_file(wasm, &path) }?,
        None => Component::from_binary(wasm, bytes)?,
    };
    let mut imports: Vec<String> = component
        .component_type()
        .imports(wasm)
        .map(|(name, item)| {
            let kind = match item.ty {
                ComponentItem::ComponentInstance(_) => "",
                ComponentItem::ComponentFunc(_) | ComponentItem::CoreFunc(_) => " (function)",
                ComponentItem::Module(_) | ComponentItem::Component(_) => " (module)",
                ComponentItem::Type(_) | ComponentItem::Resource(_) => " (type)",
            };
            format!("{name}{kind}")
        })
        .collect();
    imports.sort();
    Ok(imports)
}

/// One input of `plugin test`: a local file, a file of a stage URL, or JSON rows.
enum TestInput {
    Local(PathBuf),
    Stage(Box<(Stage, StageFile)>),
    Json(PathBuf),
}

impl TestInput {
    fn name(&self) -> String {
        match self {
            TestInput::Local(path) | TestInput::Json(path) => path.display().to_string(),
            TestInput::Stage(stage) => stage.1.url.clone(),
        }
    }

    /// Its name in messages, the open source, and what the plugin is told about it.
    fn open(&self) -> anyhow::Result<(String, TestSource, stagepush::bindings::types::SourceFile)> {
        let name = self.name();
        match self {
            TestInput::Local(path) => {
                let handle = std::fs::File::open(path).map_err(|source| SourceError::Open {
                    file: name.clone(),
                    source,
                })?;
                let source = ParquetSource::new(StageReader::File(handle), name.clone())?;
                let file = source_file(&name);
                Ok((name, TestSource::Parquet(source), file))
            }
            TestInput::Stage(stage) => {
                let (stage, file) = stage.as_ref();
                let source = stage.open(file)?;
                Ok((
                    name,
                    TestSource::Parquet(source.parquet().clone()),
                    file.source_file(),
                ))
            }
            TestInput::Json(path) => {
                let rows = read_json_rows(path)?;
                let file = source_file(&name);
                Ok((name, rows, file))
            }
        }
    }
}

/// The rows of one input of `plugin test`.
enum TestSource {
    Parquet(ParquetSource<StageReader>),
    /// All rows of a `--json-input` file, and their contract schema.
    Json(RecordBatch, Vec<ColumnSchema>),
}

/// Rows from `first_row` on (file row numbers, 0-based).
struct TestBatch {
    first_row: u64,
    batch: RecordBatch,
}

impl TestSource {
    fn contract_schema(&self) -> anyhow::Result<Vec<ColumnSchema>> {
        match self {
            TestSource::Parquet(source) => Ok(source.contract_schema()?),
            TestSource::Json(_, schema) => Ok(schema.clone()),
        }
    }

    /// The rows in batches of `batch_rows`, with the columns `projection` asks for.
    fn batches(
        &self,
        batch_rows: usize,
        projection: Option<Vec<usize>>,
    ) -> anyhow::Result<Box<dyn Iterator<Item = anyhow::Result<TestBatch>>>> {
        match self {
            TestSource::Parquet(source) => {
                let options = ReadOptions {
                    batch_rows,
                    projection,
                    start_row: 0,
                };
                Ok(Box::new(source.batches(&options)?.map(|batch| {
                    let batch = batch?;
                    Ok(TestBatch {
                        first_row: batch.first_row,
                        batch: batch.batch,
                    })
                })))
            }
            TestSource::Json(batch, _) => {
                let batch = match projection {
                    Some(indices) => batch.project(&indices)?,
                    None => batch.clone(),
                };
                let rows = batch.num_rows();
                Ok(Box::new((0..rows).step_by(batch_rows).map(move |start| {
                    Ok(TestBatch {
                        first_row: start as u64,
                        batch: batch.slice(start, batch_rows.min(rows - start)),
                    })
                })))
            }
        }
    }
}

/// Reads a file of JSON objects, one per line, into one Arrow batch: column types inferred
/// by arrow-json, columns in the order their names first appear in the file. A text
/// column whose every value is a timestamp becomes a timestamp column: wall-clock
/// (TIMESTAMP_NTZ) when no value has a zone, UTC when every value has one.
fn read_json_rows(path: &Path) -> anyhow::Result<TestSource> {
    let name = path.display();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?;
    let (inferred, count) = arrow_json::reader::infer_json_schema(text.as_bytes(), None)
        .with_context(|| format!("{name}: not JSON objects, one per line"))?;
    // Inference keeps no column order; the file's is what an author expects to see.
    let mut order: Vec<String> = Vec::new();
    // Per column: the kind of timestamp every text value so far is, `None` once one
    // is not (absent: no text value yet).
    let mut stamps: std::collections::HashMap<String, Option<Stamp>> = Default::default();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let what = || format!("{name} line {}: not a JSON object", number + 1);
        let keys: KeyOrder = serde_json::from_str(line).with_context(what)?;
        for key in keys.0 {
            if !order.contains(&key) {
                order.push(key);
            }
        }
        let row: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(line).with_context(what)?;
        for (key, value) in row {
            if let serde_json::Value::String(value) = value {
                let kind = stamp_kind(&value);
                stamps
                    .entry(key)
                    .and_modify(|seen| {
                        if *seen != kind {
                            *seen = None;
                        }
                    })
                    .or_insert(kind);
            }
        }
    }
    let mut fields = Vec::with_capacity(order.len());
    let mut columns = Vec::with_capacity(order.len());
    for key in &order {
        let field = inferred
            .field_with_name(key)
            .with_context(|| format!("{name}: no inferred type for `{key}`"))?;
        // A column null in every row has no type: read it as text.
        let data_type = match field.data_type() {
            DataType::Null => DataType::Utf8,
            other => other.clone(),
        };
        let stamp = stamps.get(key).copied().flatten();
        let (data_type, type_) = match (&data_type, stamp) {
            (DataType::Utf8, Some(stamp)) => {
                let zone = match stamp {
                    Stamp::WallClock => None,
                    Stamp::Utc => Some("+00:00".into()),
                };
                let type_ = ColumnType::Scalar(ScalarType::Timestamp(TimestampType {
                    unit: TimeUnit::Micros,
                    wall_clock: stamp == Stamp::WallClock,
                }));
                (
                    DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, zone),
                    type_,
                )
            }
            _ => {
                let type_ = json_column_type(&data_type)
                    .with_context(|| format!("{name}: column `{key}` ({data_type})"))?;
                (data_type, type_)
            }
        };
        fields.push(Field::new(key, data_type, true));
        columns.push(ColumnSchema {
            name: key.clone(),
            type_,
            nullable: true,
        });
    }
    let schema = Arc::new(Schema::new(fields));
    let reader = arrow_json::ReaderBuilder::new(schema.clone())
        // One batch of every row; `plugin test` slices it by `--batch-rows`.
        .with_batch_size(count.max(1))
        .build(text.as_bytes())
        .with_context(|| format!("cannot read {name}"))?;
    let mut batches = reader
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot read {name}"))?;
    anyhow::ensure!(batches.len() <= 1, "{name}: more rows than inferred");
    let batch = batches
        .pop()
        .unwrap_or_else(|| RecordBatch::new_empty(schema));
    Ok(TestSource::Json(batch, columns))
}

/// The kind of timestamp a JSON text value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stamp {
    /// `2024-05-01T12:34:56.789` or `2024-05-01 12:34:56`: no zone.
    WallClock,
    /// RFC 3339 with `Z` or an offset.
    Utc,
}

fn stamp_kind(value: &str) -> Option<Stamp> {
    const NAIVE: [&str; 2] = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"];
    if NAIVE
        .iter()
        .any(|format| chrono::NaiveDateTime::parse_from_str(value, format).is_ok())
    {
        Some(Stamp::WallClock)
    } else if chrono::DateTime::parse_from_rfc3339(value).is_ok() {
        Some(Stamp::Utc)
    } else {
        None
    }
}

/// The contract type of a column of inferred JSON type `data_type`.
fn json_column_type(data_type: &DataType) -> anyhow::Result<ColumnType> {
    let scalar = |data_type: &DataType| {
        Ok(match data_type {
            DataType::Boolean => ScalarType::Boolean,
            DataType::Int64 => ScalarType::Integer,
            DataType::Float64 => ScalarType::Float,
            DataType::Utf8 | DataType::Null => ScalarType::Text,
            _ => anyhow::bail!(
                "only numbers, booleans, text and lists of these are supported; \
                 give nested objects as JSON text"
            ),
        })
    };
    Ok(match data_type {
        DataType::List(item) => ColumnType::List(scalar(item.data_type())?),
        other => ColumnType::Scalar(scalar(other)?),
    })
}

/// The keys of a JSON object, in the order they appear.
struct KeyOrder(Vec<String>);

impl<'de> serde::Deserialize<'de> for KeyOrder {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = KeyOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<KeyOrder, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(KeyOrder(keys))
            }
        }
        deserializer.deserialize_map(Keys)
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
