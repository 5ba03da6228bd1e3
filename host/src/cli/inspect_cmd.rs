//! `stagepush inspect SOURCE`: what a stage holds, from its files' footers; plus the stage
//! options (`--stage-endpoint`, `--include`, …) that every command reading a stage shares.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use self::render::render_text;
use stagepush::source::inspect::inspect;
use stagepush::source::{Selection, Stage, StageConfig};

mod render;
pub(crate) use render::human_bytes;

/// Settings of a stage in object storage. Credentials come from the environment
/// (`AWS_*`, `AZURE_STORAGE_*`, `GOOGLE_APPLICATION_CREDENTIALS`, …), never from flags.
#[derive(Args, Clone, Default, Debug)]
pub struct StageArgs {
    /// S3: the bucket's region (else AWS_REGION).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The endpoint of an S3-compatible server, of Azurite, or a private endpoint.
    #[arg(long = "stage-endpoint", value_name = "URL")]
    pub endpoint: Option<String>,
    /// Renamed to --stage-endpoint (`--endpoint` is CluedIn's in `run`).
    #[arg(long = "endpoint", hide = true, value_parser = crate::cli::plugin_flags::renamed(crate::cli::plugin_flags::RENAMED_ENDPOINT))]
    pub old_endpoint: Vec<String>,
    /// Allow a plain-http endpoint.
    #[arg(long)]
    pub allow_http: bool,
    /// S3: path-style requests (endpoint/bucket/key), as most S3-compatible servers need.
    #[arg(long)]
    pub path_style: bool,
    /// Azure: the storage account (else the URL's, else AZURE_STORAGE_ACCOUNT_NAME).
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// Azure: talk to Azurite (at --stage-endpoint, else AZURITE_BLOB_STORAGE_URL or 127.0.0.1:10000).
    #[arg(long)]
    pub use_emulator: bool,
    /// Send unsigned requests (public buckets).
    #[arg(long)]
    pub anonymous: bool,
}

impl StageArgs {
    /// The stage configuration for `url`.
    pub fn config(&self, url: &str) -> StageConfig {
        StageConfig {
            url: Some(url.to_owned()),
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
            allow_http: self.allow_http.then_some(true),
            path_style: self.path_style.then_some(true),
            account: self.account.clone(),
            use_emulator: self.use_emulator.then_some(true),
            skip_signature: self.anonymous.then_some(true),
            ..StageConfig::default()
        }
    }

    /// The stage at `url` with these settings.
    pub fn stage(&self, url: &str) -> anyhow::Result<Stage> {
        Ok(Stage::new(&self.config(url))?)
    }

    /// Puts the flags given over a config file's `[source]` settings.
    pub fn merge_into(&self, config: &mut StageConfig) {
        let url = config.url.clone().unwrap_or_default();
        let from_flags = self.config(&url);
        config.region = from_flags.region.or(config.region.take());
        config.endpoint = from_flags.endpoint.or(config.endpoint.take());
        config.allow_http = from_flags.allow_http.or(config.allow_http.take());
        config.path_style = from_flags.path_style.or(config.path_style.take());
        config.account = from_flags.account.or(config.account.take());
        config.use_emulator = from_flags.use_emulator.or(config.use_emulator.take());
        config.skip_signature = from_flags.skip_signature.or(config.skip_signature.take());
    }
}

/// Which files of a stage to take.
#[derive(Args, Clone, Default, Debug)]
pub struct SelectArgs {
    /// Only files whose key (relative to the stage URL) matches this glob; a glob without
    /// `/` matches the file name (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Leave out files matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Only files modified at or after this time (RFC 3339, or a date).
    #[arg(long, value_name = "TIME")]
    pub modified_since: Option<String>,
    /// Only the keys listed in this file, one per line (relative to the stage URL, or URLs).
    #[arg(long, value_name = "FILE")]
    pub keys_from: Option<PathBuf>,
}

impl SelectArgs {
    /// The selection these flags describe.
    pub fn selection(&self) -> anyhow::Result<Selection> {
        Ok(Selection {
            include: self.include.clone(),
            exclude: self.exclude.clone(),
            modified_since: self
                .modified_since
                .as_deref()
                .map(Selection::parse_time)
                .transpose()?,
            keys: self
                .keys_from
                .as_deref()
                .map(Selection::read_keys_file)
                .transpose()?,
        })
    }

    /// True when no flag narrows the selection.
    pub fn is_empty(&self) -> bool {
        self.include.is_empty()
            && self.exclude.is_empty()
            && self.modified_since.is_none()
            && self.keys_from.is_none()
    }
}

/// True when `input` is a stage URL (`s3://`, `az://`, `file://`, …) rather than a path.
pub fn is_stage_url(input: &str) -> bool {
    input.contains("://")
}

#[derive(Args)]
pub struct InspectArgs {
    /// The stage: s3://…, az://…, azure://ACCOUNT.blob.core.windows.net/…, https://…,
    /// abfss://…, gs://…, file://… or a local folder or file.
    pub source: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub stage: StageArgs,
}

/// Exit 0 with a report; 1 when the stage cannot be listed or holds no data files (the
/// report is still printed).
pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let stage = args.stage.stage(&args.source)?;
    let selection = args.select.selection()?;
    let files = stage.select(&selection)?;
    let report = inspect(&stage, &files);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_text(&report));
    }
    if files.is_empty() {
        eprintln!("error: no data files in {}", stage.url());
        return Ok(super::exit::Outcome::Failed.into());
    }
    Ok(super::exit::Outcome::Done.into())
}
