//! The `stagepush run` configuration file: strict (unknown keys are errors naming the
//! key), every default a named constant, command-line flags override it.
//!
//! ```toml
//! [source]
//! url = "s3://bucket/unload/customers/"   # or az://, azure://, gs://, file://, a folder
//! region = "eu-west-1"            # store settings: see README "Stages in object storage"
//!
//! [plugin]                        # or [mapping] (docs/mapping.md), or neither: the pass-through
//! path = "target/plugins/customer-rust.wasm"
//! sha256 = "…"                    # optional pin
//! memory_mib = 256
//! timeout_ms = 10000
//! batch_rows = 1024
//! batch_bytes = 16777216          # bytes per plugin call (a larger row goes alone)
//! [plugin.config]
//! region = "EU"
//!
//! [auth]
//! token_env = "CLUEDIN_TOKEN"     # or token_file = "/run/secrets/cluedin"
//!
//! [records]
//! shape = "nested"                # or "flat"
//!
//! [sink]                          # see sink::config
//! endpoint = "https://app.example.com/upload/api/endpoint/6F5B…"
//! routes = { Contact = "https://app.example.com/upload/api/endpoint/0A1B…" }
//!
//! [output]
//! dead_letter = "stagepush-dead-letters"
//! report = "stagepush-report.json"
//!
//! [run]
//! workers = 2
//! on_bad_file = "skip"            # or "fail"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::pipeline::OnBadFile;
use crate::plugin::{DEFAULT_BATCH_TIMEOUT, DEFAULT_MEMORY_LIMIT_BYTES};
use crate::sink::{ApiToken, SinkConfig};
use crate::source::StageConfig;
use crate::source::parquet::{DEFAULT_BATCH_BYTES, DEFAULT_BATCH_ROWS};
use crate::wire::Shape;

/// Default dead-letter folder (relative to the working directory).
pub const DEFAULT_DEAD_LETTER_DIR: &str = "stagepush-dead-letters";
/// Default environment variable holding the API token.
pub const DEFAULT_TOKEN_ENV: &str = "CLUEDIN_TOKEN";

/// A configuration problem, with a one-line message naming it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: ConfigSyntaxError,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Config text that is not a run configuration; shown as one line naming the offending key.
#[derive(Debug, thiserror::Error)]
#[error("{}", one_line(.0))]
pub struct ConfigSyntaxError(toml::de::Error);

/// The whole run configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The stage: URL and store settings (see `source::stage::StageConfig`).
    #[serde(default)]
    pub source: StageConfig,
    #[serde(default)]
    pub plugin: PluginSection,
    /// A zero-code mapping instead of a plugin (see `crate::mapping`, `docs/mapping.md`).
    #[serde(default)]
    pub mapping: Option<crate::mapping::MappingConfig>,
    #[serde(default)]
    pub auth: AuthSection,
    #[serde(default)]
    pub records: RecordsSection,
    #[serde(default)]
    pub sink: Option<SinkConfig>,
    #[serde(default)]
    pub output: OutputSection,
    #[serde(default)]
    pub run: RunSection,
    #[serde(default)]
    pub state: StateSection,
    #[serde(default)]
    pub trigger: TriggerSection,
}

/// `[state]`: where delivery state lives and how it is used.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSection {
    /// A local folder or an object-store URL (default `stagepush-state`).
    pub location: Option<String>,
    /// Object-store settings of the state (endpoint, credentials; see `[source]`); by
    /// default the `[source]` settings.
    pub store: Option<StageConfig>,
    /// Seconds a claim on a file lasts without renewal (renewed every third of it).
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
    /// Rows per segment, the unit of acknowledgement (files already in the state keep
    /// theirs).
    #[serde(default = "default_segment_rows")]
    pub segment_rows: u64,
    /// Send only records whose content changed since they were last delivered.
    #[serde(default)]
    pub only_changed: bool,
    /// Retry the dead letters of earlier runs before the run.
    #[serde(default)]
    pub retry_rejected: bool,
}

impl Default for StateSection {
    fn default() -> Self {
        StateSection {
            location: None,
            store: None,
            lease_secs: default_lease_secs(),
            segment_rows: default_segment_rows(),
            only_changed: false,
            retry_rejected: false,
        }
    }
}

impl StateSection {
    /// The state location (default [`crate::state::DEFAULT_STATE_DIR`]).
    pub fn location(&self) -> String {
        self.location
            .clone()
            .unwrap_or_else(|| crate::state::DEFAULT_STATE_DIR.to_string())
    }

    /// Store settings for an object-store state: `[state.store]`, else the source's.
    pub fn store_config(&self, source: &StageConfig) -> StageConfig {
        self.store.clone().unwrap_or_else(|| source.clone())
    }
}

fn default_lease_secs() -> u64 {
    crate::state::checkpoint::DEFAULT_LEASE_SECS
}
fn default_segment_rows() -> u64 {
    crate::pipeline::DEFAULT_SEGMENT_ROWS
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSection {
    pub path: Option<PathBuf>,
    pub sha256: Option<String>,
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Rows per plugin call.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// Bytes of input rows per plugin call (and per read batch); a row larger than this is
    /// read and transformed alone.
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: usize,
    /// The plugin's own `key = "value"` configuration.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

impl Default for PluginSection {
    fn default() -> Self {
        PluginSection {
            path: None,
            sha256: None,
            memory_mib: default_memory_mib(),
            timeout_ms: default_timeout_ms(),
            batch_rows: default_batch_rows(),
            batch_bytes: default_batch_bytes(),
            config: BTreeMap::new(),
        }
    }
}

impl PluginSection {
    /// Each limit is at least 1; the message names the key and its flag.
    pub fn check_limits(&self) -> Result<(), ConfigError> {
        let limits = [
            (self.memory_mib, "memory_mib", "--plugin-memory-mib"),
            (self.timeout_ms, "timeout_ms", "--plugin-timeout-ms"),
            (self.batch_rows as u64, "batch_rows", "--plugin-batch-rows"),
            (
                self.batch_bytes as u64,
                "batch_bytes",
                "--plugin-batch-bytes",
            ),
        ];
        match limits.iter().find(|(value, _, _)| *value == 0) {
            Some((_, key, flag)) => Err(ConfigError::Invalid(format!(
                "[plugin] {key} ({flag}) must be at least 1"
            ))),
            None => Ok(()),
        }
    }
}

fn default_memory_mib() -> u64 {
    DEFAULT_MEMORY_LIMIT_BYTES / (1024 * 1024)
}
fn default_timeout_ms() -> u64 {
    DEFAULT_BATCH_TIMEOUT.as_millis() as u64
}
fn default_batch_rows() -> usize {
    DEFAULT_BATCH_ROWS
}
fn default_batch_bytes() -> usize {
    DEFAULT_BATCH_BYTES
}

/// Where the API token comes from. The token itself never appears in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// Environment variable holding the token (default `CLUEDIN_TOKEN`).
    pub token_env: Option<String>,
    /// File holding the token (trailing whitespace ignored).
    pub token_file: Option<PathBuf>,
}

impl AuthSection {
    /// Reads the token from the configured place.
    pub fn token(&self) -> Result<ApiToken, ConfigError> {
        if self.token_env.is_some() && self.token_file.is_some() {
            return Err(ConfigError::Invalid(
                "set either a token environment variable or a token file, not both".into(),
            ));
        }
        if let Some(path) = &self.token_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::Invalid(format!(
                    "cannot read the token file {}: {e}",
                    path.display()
                ))
            })?;
            let token = text.trim();
            if token.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "the token file {} is empty",
                    path.display()
                )));
            }
            return Ok(ApiToken::new(token));
        }
        let var = self.token_env.as_deref().unwrap_or(DEFAULT_TOKEN_ENV);
        match std::env::var(var) {
            Ok(token) if !token.trim().is_empty() => Ok(ApiToken::new(token.trim())),
            Ok(_) => Err(ConfigError::Invalid(format!(
                "the token environment variable {var} is empty"
            ))),
            Err(_) => Err(ConfigError::Invalid(format!(
                "the token environment variable {var} is not set (use --token-env VAR or --token-file FILE)"
            ))),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsSection {
    #[serde(default)]
    pub shape: Shape,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// Dead-letter folder (default `stagepush-dead-letters`).
    pub dead_letter: Option<PathBuf>,
    /// Where to write the JSON run report.
    pub report: Option<PathBuf>,
}

impl OutputSection {
    pub fn dead_letter_dir(&self) -> PathBuf {
        self.dead_letter
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DEAD_LETTER_DIR))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Transform worker threads (default: the machine's cores).
    pub workers: Option<usize>,
    /// What to do with a file that cannot be used: `skip` (dead-letter its rows, go on;
    /// the default) or `fail` (stop the run).
    #[serde(default)]
    pub on_bad_file: OnBadFile,
}

impl RunConfig {
    /// Parses a config file.
    pub fn load(path: &Path) -> Result<RunConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Parses config text; the error is one line naming the offending key.
    pub fn parse(text: &str) -> Result<RunConfig, ConfigSyntaxError> {
        toml::from_str(text).map_err(ConfigSyntaxError)
    }

    /// Checks what a run needs, after flags were applied.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_except_sink()?;
        match &self.sink {
            None => Err(ConfigError::Invalid(
                "no endpoint: set --endpoint or [sink] endpoint".into(),
            )),
            Some(sink) => sink.validate().map_err(|e| {
                ConfigError::Invalid(e.to_string().replace("invalid sink configuration: ", ""))
            }),
        }
    }

    /// [`RunConfig::validate`] without the `[sink]` (`stagepush check` checks it apart).
    pub fn validate_except_sink(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.source.url.is_none() {
            return invalid("no source: set --source or [source] url");
        }
        // No plugin and no [mapping]: the pass-through, checked against the stage's schema.
        if self.plugin.path.is_some() && self.mapping.is_some() {
            return invalid(
                "both a plugin and a [mapping]: set one (--plugin / [plugin] path, or [mapping])",
            );
        }
        self.plugin.check_limits()?;
        if self.state.lease_secs < 3 {
            return invalid("state lease_secs must be at least 3");
        }
        if self.state.segment_rows == 0 {
            return invalid("state segment_rows must be at least 1");
        }
        if self.run.workers == Some(0) {
            return invalid("run workers must be at least 1");
        }
        self.trigger.queue_options()?;
        Ok(())
    }
}

/// `[trigger]`: a queue of storage notifications to consume (`run --queue`, `serve
/// --queue`; see `crate::queue`). Flags override each key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSection {
    /// The queue URL (`--queue`).
    pub queue: Option<String>,
    /// `sqs` or `azure`, for a URL whose host does not say (`--queue-kind`).
    pub queue_kind: Option<crate::queue::QueueKind>,
    /// Messages per receive (`--max-messages`; SQS 1–10, Azure 1–32).
    #[serde(default = "default_max_messages")]
    pub max_messages: u32,
    /// Seconds a received message stays hidden, extended while its objects are delivered
    /// (`--visibility-secs`, at least 1).
    #[serde(default = "default_visibility_secs")]
    pub visibility_secs: u64,
    /// Seconds one receive waits for a message (`--wait-secs`; SQS at most 20).
    #[serde(default = "default_wait_secs")]
    pub wait_secs: u64,
}

impl Default for TriggerSection {
    fn default() -> Self {
        TriggerSection {
            queue: None,
            queue_kind: None,
            max_messages: default_max_messages(),
            visibility_secs: default_visibility_secs(),
            wait_secs: default_wait_secs(),
        }
    }
}

fn default_max_messages() -> u32 {
    crate::queue::DEFAULT_MAX_MESSAGES
}
fn default_visibility_secs() -> u64 {
    crate::queue::DEFAULT_VISIBILITY_SECS
}
fn default_wait_secs() -> u64 {
    crate::queue::DEFAULT_WAIT_SECS
}

impl TriggerSection {
    /// The queue settings when a queue is configured, checked against the service's limits;
    /// a message names the key and its flag.
    pub fn queue_options(&self) -> Result<Option<crate::queue::QueueOptions>, ConfigError> {
        use crate::queue::{QueueKind, QueueUrl, limits};
        let Some(queue) = &self.queue else {
            return Ok(None);
        };
        let url = QueueUrl::parse(queue, self.queue_kind)
            .map_err(|e| ConfigError::Invalid(format!("[trigger] queue (--queue): {e}")))?;
        let kind = url.kind();
        let (max, wait) = match kind {
            QueueKind::Sqs => (limits::SQS_MAX_MESSAGES, Some(limits::SQS_MAX_WAIT_SECS)),
            QueueKind::Azure => (limits::AZURE_MAX_MESSAGES, None),
        };
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if !(1..=max).contains(&self.max_messages) {
            return invalid(format!(
                "[trigger] max_messages (--max-messages) is {}: {} takes 1 to {max} messages per \
                 receive",
                self.max_messages,
                kind.as_str()
            ));
        }
        if self.visibility_secs < limits::MIN_VISIBILITY_SECS {
            return invalid(format!(
                "[trigger] visibility_secs (--visibility-secs) must be at least {} s",
                limits::MIN_VISIBILITY_SECS
            ));
        }
        if self.visibility_secs > limits::MAX_VISIBILITY_SECS {
            return invalid(format!(
                "[trigger] visibility_secs (--visibility-secs) is {}: at most {} s (12 hours)",
                self.visibility_secs,
                limits::MAX_VISIBILITY_SECS
            ));
        }
        if let Some(most) = wait
            && self.wait_secs > most
        {
            return invalid(format!(
                "[trigger] wait_secs (--wait-secs) is {}: SQS long polling waits at most {most} s",
                self.wait_secs
            ));
        }
        Ok(Some(crate::queue::QueueOptions {
            url,
            max_messages: self.max_messages,
            visibility: std::time::Duration::from_secs(self.visibility_secs),
            wait: std::time::Duration::from_secs(self.wait_secs),
        }))
    }
}

impl RunConfig {
    /// Settings that work but not as they read, one line each (logged as warnings): a
    /// `[plugin] batch_rows` set above `[state] segment_rows` is capped by it, because a
    /// plugin call never spans two segments (the default batch_rows is capped silently).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let (rows, segment) = (self.plugin.batch_rows as u64, self.state.segment_rows);
        if rows > segment && self.plugin.batch_rows != DEFAULT_BATCH_ROWS {
            warnings.push(format!(
                "[plugin] batch_rows = {rows} (--plugin-batch-rows) is more than [state] \
                 segment_rows = {segment} (--segment-rows): a plugin call never spans two \
                 segments, so plugin calls take at most {segment} rows"
            ));
        }
        warnings
    }
}

/// toml's errors span several lines with a source excerpt; keep the message, which names
/// the key.
fn one_line(e: &toml::de::Error) -> String {
    e.message().trim().replace('\n', " ")
}

#[cfg(test)]
mod tests;
