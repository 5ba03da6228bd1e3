//! `run`'s flags (shared by `serve`, `retry` and `status`), and the configuration they
//! resolve to: the config file with the flags applied, validated, and the token read.

use std::path::PathBuf;

use clap::Args;
use stagepush::config::{ConfigError, RunConfig};
use stagepush::sink::SinkConfig;

use crate::cli::choices::{BodyArg, OnBadFileArg, ShapeArg};

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
    pub select: crate::cli::inspect_cmd::SelectArgs,
    /// A file that cannot be used (vanished, truncated, corrupt, another schema): skip
    /// it (its rows become dead letters) or stop the run.
    #[arg(long, value_enum)]
    pub on_bad_file: Option<OnBadFileArg>,
    /// The transform plugin (.wasm component).
    #[arg(long, value_name = "FILE")]
    pub plugin: Option<PathBuf>,
    /// The plugin's settings and limits (as in `plugin test`).
    #[command(flatten)]
    pub plugin_flags: crate::cli::PluginFlags,
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
    pub shape: Option<ShapeArg>,
    /// gzip level 0-12, libdeflate's scale (1 fastest, 12 smallest; 0 stores uncompressed).
    #[arg(long, value_name = "0-12")]
    pub gzip_level: Option<u32>,
    /// Records per request (at most 100,000).
    #[arg(long, value_name = "N")]
    pub batch_rows: Option<usize>,
    /// Uncompressed bytes per request.
    #[arg(long, value_name = "N")]
    pub batch_bytes: Option<usize>,
    /// Requests in flight, pinned (default: adaptive, found from the endpoint's answers).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Ceiling of the adaptive concurrency (default 64).
    #[arg(long, value_name = "N", conflicts_with = "concurrency")]
    pub max_concurrency: Option<usize>,
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
    /// Consume storage notifications from a queue (Amazon SQS or an Azure Storage Queue):
    /// `run` delivers what its messages name until the queue is empty, `serve` keeps
    /// polling; a message is deleted once every object it names is delivered (docs/queues.md).
    #[arg(long, value_name = "URL", conflicts_with_all = ["event", "keys_from", "shard", "shard_count"])]
    pub queue: Option<String>,
    /// The queue's service, for a URL whose host does not say (a custom endpoint).
    #[arg(long, value_enum, value_name = "KIND")]
    pub queue_kind: Option<stagepush::queue::QueueKind>,
    /// Messages per receive (SQS 1-10, Azure 1-32; default 10).
    #[arg(long, value_name = "N")]
    pub max_messages: Option<u32>,
    /// Seconds a received message stays hidden from other consumers; extended every third
    /// of it while its objects are delivered (default 120).
    #[arg(long, value_name = "SECS")]
    pub visibility_secs: Option<u64>,
    /// Seconds one receive waits for a message (SQS long polling, at most 20; default 20).
    #[arg(long, value_name = "SECS")]
    pub wait_secs: Option<u64>,
}

/// The flags of `run` alone (not of `serve` and `retry`, which share [`RunArgs`]).
#[derive(Args, Clone, Default, Debug)]
pub struct RunModeArgs {
    /// Do everything but send: read, transform, batch and gzip, then show the bodies each
    /// endpoint would get (records and bytes per body). Writes no delivery state, no dead
    /// letters, no report; needs no token.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: write each body, uncompressed, as DIR/<endpoint-id>/000001.json, …
    #[arg(long, value_name = "DIR", requires = "dry_run")]
    pub write_bodies: Option<PathBuf>,
    /// Send again the files already delivered (after fixing a mapping or a plugin). Starts
    /// a new generation of the delivery state, so an interrupted full refresh is finished
    /// by the next run.
    #[arg(long)]
    pub full_refresh: bool,
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

/// The stage settings of `run`, `retry`, `serve` and `status`: the same flags as those of
/// `inspect` and `plugin test` ([`StageArgs`](crate::cli::inspect_cmd::StageArgs)), the
/// object store's endpoint `--stage-endpoint` everywhere (`--endpoint` is CluedIn's).
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
    fn as_stage_args(&self) -> crate::cli::inspect_cmd::StageArgs {
        crate::cli::inspect_cmd::StageArgs {
            region: self.region.clone(),
            endpoint: self.stage_endpoint.clone(),
            allow_http: self.allow_http,
            path_style: self.path_style,
            account: self.account.clone(),
            use_emulator: self.use_emulator,
            anonymous: self.anonymous,
            old_endpoint: Vec::new(),
        }
    }
}

/// The config file with the flags applied, validated, and the token read.
pub(crate) fn resolve(
    args: &RunArgs,
) -> Result<(RunConfig, stagepush::sink::ApiToken), ConfigError> {
    let config = resolve_config(args)?;
    let token = config.auth.token()?;
    Ok((config, token))
}

/// The config file with the flags applied and validated (the token not read).
pub(crate) fn resolve_config(args: &RunArgs) -> Result<RunConfig, ConfigError> {
    let config = apply_flags(args)?;
    config.validate()?;
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

/// The config file with the flags applied (not validated).
pub(crate) fn apply_flags(args: &RunArgs) -> Result<RunConfig, ConfigError> {
    let mut config = match &args.config {
        Some(path) => RunConfig::load(path)?,
        None => RunConfig::default(),
    };
    if let Some(source) = &args.source {
        config.source.url = Some(source.clone());
    }
    args.stage.as_stage_args().merge_into(&mut config.source);
    if let Some(choice) = args.on_bad_file {
        config.run.on_bad_file = choice.into();
    }
    if let Some(plugin) = &args.plugin {
        config.plugin.path = Some(plugin.clone());
    }
    args.plugin_flags.apply(&mut config.plugin);
    if args.token_env.is_some() || args.token_file.is_some() {
        config.auth.token_env = args.token_env.clone();
        config.auth.token_file = args.token_file.clone();
    }
    if let Some(shape) = args.shape {
        config.records.shape = shape.into();
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
            sink.concurrency = Some(n);
        }
        if let Some(n) = args.max_concurrency {
            sink.max_concurrency = n;
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
    let trigger = &mut config.trigger;
    if args.queue.is_some() {
        trigger.queue = args.queue.clone();
    }
    if args.queue_kind.is_some() {
        trigger.queue_kind = args.queue_kind;
    }
    if let Some(n) = args.max_messages {
        trigger.max_messages = n;
    }
    if let Some(secs) = args.visibility_secs {
        trigger.visibility_secs = secs;
    }
    if let Some(secs) = args.wait_secs {
        trigger.wait_secs = secs;
    }
    Ok(config)
}
