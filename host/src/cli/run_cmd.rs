//! `stagepush run`: the whole pipeline, configured by a TOML file and/or flags.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Args;
use stagepush::cancel::Cancel;
use stagepush::config::{ConfigError, RunConfig};
use stagepush::job::Job;
use stagepush::pipeline::{Progress, RunReport};
use stagepush::shard::Shard;
use stagepush::sink::{BodyFormat, SinkConfig};
use stagepush::source::StageFile;
use stagepush::trigger::UnusableKey;
use stagepush::wire::Shape;

use super::exit::{Outcome, Signal};
use super::parse_key_value;

#[derive(Args)]
pub struct RunArgs {
    /// TOML configuration file (flags override it; unknown keys are errors).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The stage: s3://, az://, azure://ACCOUNT.blob.core.windows.net/…, abfss://, gs://,
    /// file:// URL, or a local folder or file.
    #[arg(long, value_name = "PATH_OR_URL")]
    pub source: Option<String>,
    /// Settings of the stage (credentials come from the environment or the config file).
    #[command(flatten)]
    pub stage: RunStageArgs,
    /// Which files of the stage to deliver.
    #[command(flatten)]
    pub select: super::inspect_cmd::SelectArgs,
    /// A file that cannot be used (vanished, truncated, corrupt, another schema): skip
    /// it (its rows become dead letters) or stop the run.
    #[arg(long, value_enum)]
    pub on_bad_file: Option<stagepush::pipeline::OnBadFile>,
    /// The transform plugin (.wasm component).
    #[arg(long, value_name = "FILE")]
    pub plugin: Option<PathBuf>,
    /// Plugin configuration, KEY=VALUE (repeatable).
    #[arg(long = "plugin-config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub plugin_config: Vec<(String, String)>,
    /// Refuse the plugin unless its SHA-256 digest is this.
    #[arg(long, value_name = "HEX")]
    pub plugin_sha256: Option<String>,
    /// Default CluedIn Ingestion Endpoint URL ({base}/upload/api/endpoint/{id}).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Environment variable holding the API token (default CLUEDIN_TOKEN).
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    /// File holding the API token.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Request body framing (real endpoints accept only json-array).
    #[arg(long, value_enum)]
    pub body: Option<BodyArg>,
    /// Record shape.
    #[arg(long, value_enum)]
    pub shape: Option<Shape>,
    /// gzip level 0-9 (0 sends uncompressed bodies).
    #[arg(long, value_name = "0-9")]
    pub gzip_level: Option<u32>,
    /// Records per request (at most 100,000).
    #[arg(long, value_name = "N")]
    pub batch_rows: Option<usize>,
    /// Uncompressed bytes per request.
    #[arg(long, value_name = "N")]
    pub batch_bytes: Option<usize>,
    /// Requests in flight.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Per-request timeout, seconds.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Transform worker threads (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Dead-letter folder.
    #[arg(long, value_name = "DIR")]
    pub dead_letter: Option<PathBuf>,
    /// Write the JSON run report here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Where compiled plugins are cached.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Never draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Delivery state: a local folder or an object-store URL (s3://…, az://…, gs://…).
    /// Default: `stagepush-state` in the working directory.
    #[command(flatten)]
    pub state: StateArgs,
    /// Send only records whose content changed since they were last delivered
    /// (tombstones are always sent).
    #[arg(long)]
    pub only_changed: bool,
    /// Before the run, retry the dead letters of earlier runs (as `stagepush retry`).
    #[arg(long)]
    pub retry_rejected: bool,
    /// Rows per segment, the unit of acknowledgement in the state.
    #[arg(long, value_name = "N")]
    pub segment_rows: Option<u64>,
    /// Deliver only shard I of N of the stage's files (a partition by object key; the N
    /// shards together cover every file once).
    #[arg(long, value_name = "I/N", conflicts_with = "shard_count")]
    pub shard: Option<String>,
    /// Deliver shard $JOB_COMPLETION_INDEX of N (Kubernetes Indexed Jobs).
    #[arg(long, value_name = "N")]
    pub shard_count: Option<u64>,
    /// Deliver the objects a storage notification names instead of listing the stage:
    /// a file, or `-` for stdin (S3 event, SNS envelope, SQS batch, EventBridge, Event
    /// Grid, CloudEvents).
    #[arg(long, value_name = "FILE")]
    pub event: Option<PathBuf>,
}

/// Where the delivery state is (shared by `run`, `retry` and `status`).
#[derive(Args, Clone, Default, Debug)]
pub struct StateArgs {
    /// Delivery state: a local folder or an object-store URL (s3://…, az://…, gs://…);
    /// default `stagepush-state` in the working directory.
    #[arg(long = "state", value_name = "DIR_OR_URL", env = "STAGEPUSH_STATE")]
    pub location: Option<String>,
    /// Seconds a worker's claim on a file lasts without renewal.
    #[arg(long, value_name = "SECS")]
    pub lease_secs: Option<u64>,
}

impl StateArgs {
    pub fn apply(&self, state: &mut stagepush::config::StateSection) {
        if self.location.is_some() {
            state.location = self.location.clone();
        }
        if let Some(secs) = self.lease_secs {
            state.lease_secs = secs;
        }
    }
}

/// The stage settings of `run`, `retry`, `serve` and `status`: those of `inspect` and
/// `plugin test` ([`StageArgs`](super::inspect_cmd::StageArgs)), with the object store's
/// endpoint as `--stage-endpoint`, because `--endpoint` is the CluedIn endpoint here. (Two
/// structs, since clap cannot rename a flag of a flattened one.)
#[derive(Args, Clone, Default, Debug)]
pub struct RunStageArgs {
    /// S3 region.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The object store's endpoint (S3-compatible servers, Azurite).
    #[arg(long, value_name = "URL")]
    pub stage_endpoint: Option<String>,
    /// Allow a plain-http object store endpoint.
    #[arg(long)]
    pub allow_http: bool,
    /// S3: path-style requests (endpoint/bucket/key).
    #[arg(long)]
    pub path_style: bool,
    /// Azure: the storage account.
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// Azure: talk to Azurite.
    #[arg(long)]
    pub use_emulator: bool,
    /// Send unsigned requests (public buckets).
    #[arg(long)]
    pub anonymous: bool,
}

impl RunStageArgs {
    fn as_stage_args(&self) -> super::inspect_cmd::StageArgs {
        super::inspect_cmd::StageArgs {
            region: self.region.clone(),
            endpoint: self.stage_endpoint.clone(),
            allow_http: self.allow_http,
            path_style: self.path_style,
            account: self.account.clone(),
            use_emulator: self.use_emulator,
            anonymous: self.anonymous,
        }
    }
}

/// `--body`: request body framing.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum BodyArg {
    /// `[record,record,…]` (`application/json`).
    JsonArray,
    /// One record per line (`application/x-ndjson`).
    Ndjson,
}

impl From<BodyArg> for BodyFormat {
    fn from(b: BodyArg) -> Self {
        match b {
            BodyArg::JsonArray => BodyFormat::JsonArray,
            BodyArg::Ndjson => BodyFormat::Ndjson,
        }
    }
}

pub fn run_command(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (config, token) = match resolve(&args) {
        Ok(resolved) => resolved,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(Outcome::Usage));
        }
    };
    let cache_dir = args
        .cache_dir
        .clone()
        .unwrap_or_else(stagepush::plugin::default_cache_dir);
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
                    stagepush::serve::pending::record_error(
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
    if files.is_empty() && args.event.is_none() {
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
    let bar = (!args.no_progress && std::io::stderr().is_terminal())
        .then(|| start_progress(progress.clone()));
    let report = job.run(files, progress, Some(cancel));
    if let Some((bar, stop)) = bar {
        stop.store(true, Ordering::Relaxed);
        let _ = bar.join();
    }
    let report = report?;
    print_summary(&report);
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

/// The files a notification payload (a file or `-` for stdin) names, and the objects it
/// names whose key cannot be read (to record as pending errors, shown by `status`).
fn event_files(
    job: &Job,
    path: &std::path::Path,
) -> Result<(Vec<StageFile>, Vec<UnusableKey>), String> {
    let payload = if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| format!("cannot read the event from stdin: {e}"))?;
        buf
    } else {
        std::fs::read(path)
            .map_err(|e| format!("cannot read the event file {}: {e}", path.display()))?
    };
    let where_ = if path.as_os_str() == "-" {
        "stdin".to_string()
    } else {
        path.display().to_string()
    };
    let notifications =
        stagepush::events::parse(&payload).map_err(|e| format!("event {where_}: {e}"))?;
    let resolved = stagepush::trigger::resolve(&job.stage, &notifications)
        .map_err(|e| format!("event {where_}: {e}"))?;
    for reason in &resolved.ignored {
        eprintln!("event: ignored: {reason}");
    }
    eprintln!(
        "event: {} object(s) to deliver from {} event(s)",
        resolved.files.len(),
        notifications.len()
    );
    Ok((resolved.files, resolved.unusable))
}

/// The config file with the flags applied, validated, and the token read.
pub(super) fn resolve(
    args: &RunArgs,
) -> Result<(RunConfig, stagepush::sink::ApiToken), ConfigError> {
    let mut config = match &args.config {
        Some(path) => RunConfig::load(path)?,
        None => RunConfig::default(),
    };
    if let Some(source) = &args.source {
        config.source.url = Some(source.clone());
    }
    merge_stage_flags(&mut config.source, &args.stage.as_stage_args());
    if let Some(choice) = args.on_bad_file {
        config.run.on_bad_file = choice;
    }
    if let Some(plugin) = &args.plugin {
        config.plugin.path = Some(plugin.clone());
    }
    for (k, v) in &args.plugin_config {
        config.plugin.config.insert(k.clone(), v.clone());
    }
    if args.plugin_sha256.is_some() {
        config.plugin.sha256 = args.plugin_sha256.clone();
    }
    if args.token_env.is_some() || args.token_file.is_some() {
        config.auth.token_env = args.token_env.clone();
        config.auth.token_file = args.token_file.clone();
    }
    if let Some(shape) = args.shape {
        config.records.shape = shape;
    }
    if args.endpoint.is_some() && config.sink.is_none() {
        config.sink = Some(SinkConfig::new(args.endpoint.clone().unwrap_or_default()));
    }
    if let Some(sink) = &mut config.sink {
        if let Some(endpoint) = &args.endpoint {
            sink.endpoint = Some(endpoint.clone());
        }
        if let Some(body) = args.body {
            sink.body = body.into();
        }
        if let Some(level) = args.gzip_level {
            sink.gzip_level = level;
            sink.compression = if level == 0 {
                stagepush::sink::Compression::None
            } else {
                stagepush::sink::Compression::Gzip
            };
        }
        if let Some(rows) = args.batch_rows {
            sink.batch.max_rows = rows;
        }
        if let Some(bytes) = args.batch_bytes {
            sink.batch.max_bytes = bytes;
        }
        if let Some(n) = args.concurrency {
            sink.concurrency = n;
        }
        if let Some(t) = args.timeout {
            sink.timeout_secs = t;
        }
    }
    if args.workers.is_some() {
        config.run.workers = args.workers;
    }
    if args.dead_letter.is_some() {
        config.output.dead_letter = args.dead_letter.clone();
    }
    if args.report.is_some() {
        config.output.report = args.report.clone();
    }
    args.state.apply(&mut config.state);
    if args.only_changed {
        config.state.only_changed = true;
    }
    if args.retry_rejected {
        config.state.retry_rejected = true;
    }
    if let Some(n) = args.segment_rows {
        config.state.segment_rows = n;
    }
    config.validate()?;
    let token = config.auth.token()?;
    Ok((config, token))
}

fn start_progress(
    progress: Arc<Progress>,
) -> (
    std::thread::JoinHandle<()>,
    Arc<std::sync::atomic::AtomicBool>,
) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} rows  {per_sec}  {msg}  ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        while !flag.load(Ordering::Relaxed) {
            bar.set_length(progress.rows_total.load(Ordering::Relaxed));
            bar.set_position(progress.rows_read.load(Ordering::Relaxed));
            bar.set_message(format!(
                "{} records delivered, {} sent",
                progress.records_delivered.load(Ordering::Relaxed),
                indicatif::HumanBytes(progress.bytes_sent.load(Ordering::Relaxed))
            ));
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish_and_clear();
    });
    (handle, stop)
}

fn print_summary(r: &RunReport) {
    // By reason (`stage/kind`, as `stagepush status` counts them).
    let by_reason: Vec<String> = r
        .rows
        .dead_lettered_by_reason
        .iter()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    eprintln!(
        "summary: {} files: {} skipped (already delivered), {} resumed",
        r.files.len(),
        r.files_skipped,
        r.files_resumed
    );
    eprintln!(
        "summary: {} rows read: {} delivered, {} filtered, {} unchanged, {} dead-lettered{}",
        r.rows.read,
        r.rows.delivered,
        r.rows.filtered,
        r.rows.unchanged,
        r.rows.dead_lettered,
        if by_reason.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_reason.join(", "))
        }
    );
    eprintln!(
        "summary: {} records delivered, {} rejected; {} requests, {} retries; {} bytes before gzip, {} sent; {:.1} s, {:.0} rows/s",
        r.records_delivered,
        r.records_rejected,
        r.requests,
        r.retries,
        r.bytes_uncompressed,
        r.bytes_sent,
        r.duration_secs,
        r.rows_per_second
    );
    if r.records_unchanged > 0 {
        eprintln!(
            "summary: {} records unchanged since their last delivery (not sent)",
            r.records_unchanged
        );
    }
    if r.possible_duplicates.records > 0 {
        eprintln!(
            "summary: {} records in {} segments were sent again after an interrupted run (they may have arrived twice; CluedIn merges them by id)",
            r.possible_duplicates.records, r.possible_duplicates.segments
        );
    }
    for (entity_type, mark) in &r.watermarks {
        if r.watermarks_from_stopped_run {
            eprintln!(
                "summary: watermark {entity_type}: {mark} (from a run that stopped before the end: it covers only what CluedIn acknowledged; finish the stage before using it)"
            );
        } else {
            eprintln!("summary: watermark {entity_type}: {mark}");
        }
    }
    if r.rows.dead_lettered > 0 {
        eprintln!(
            "summary: dead letters in {} (kept for `stagepush retry` in {})",
            r.dead_letters.display(),
            r.state_dead_letters
        );
    }
}

/// Stage flags override the config file's `[source]` settings.
fn merge_stage_flags(
    config: &mut stagepush::source::StageConfig,
    flags: &super::inspect_cmd::StageArgs,
) {
    let url = config.url.clone().unwrap_or_default();
    let from_flags = flags.config(&url);
    if from_flags.region.is_some() {
        config.region = from_flags.region;
    }
    if from_flags.endpoint.is_some() {
        config.endpoint = from_flags.endpoint;
    }
    if from_flags.allow_http.is_some() {
        config.allow_http = from_flags.allow_http;
    }
    if from_flags.path_style.is_some() {
        config.path_style = from_flags.path_style;
    }
    if from_flags.account.is_some() {
        config.account = from_flags.account;
    }
    if from_flags.use_emulator.is_some() {
        config.use_emulator = from_flags.use_emulator;
    }
    if from_flags.skip_signature.is_some() {
        config.skip_signature = from_flags.skip_signature;
    }
}
