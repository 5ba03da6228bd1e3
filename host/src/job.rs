//! A prepared delivery job: what `run`, `run --event` and `serve` share — the stage, the
//! loaded plugin, the sink settings, the delivery state — and one pipeline run over given
//! files that keeps its report in the state.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cancel::Cancel;
use crate::config::RunConfig;
use crate::pipeline::transformer::TransformSpec;
use crate::pipeline::{PipelineError, Progress, RunOptions, RunReport};
use crate::plugin::{Limits, LoadOptions, Plugin, PluginEngine};
use crate::sink::{ApiToken, CluedInSink};
use crate::source::{Stage, StageFile};
use crate::state::fingerprints::Fingerprints;
use crate::state::{FINGERPRINTS_FILE, PutMode, StateStore};

/// Why a job cannot be prepared. [`JobError::is_usage`] tells the configuration's faults
/// (exit code 2) from the others. Each variant says its cause's message, as it was said
/// before the job was prepared (no cause chain added).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no endpoint: set --endpoint or [sink] endpoint")]
    NoEndpoint,
    #[error("no plugin: set --plugin or [plugin] path")]
    NoPlugin,
    /// The sink settings cannot be used.
    #[error("{0}")]
    Sink(crate::sink::SinkError),
    /// The stage URL or its settings cannot be used.
    #[error("{0}")]
    Stage(crate::source::StageError),
    /// The state location cannot be opened.
    #[error("{0}")]
    State(crate::state::StateError),
    /// The state cannot bind the stage to its key.
    #[error("{0}")]
    StageKey(crate::state::StateError),
    #[error(
        "--only-changed keeps its fingerprints in an embedded database and needs a local --state folder (the state {location} is an object store)"
    )]
    OnlyChangedNeedsLocalState { location: String },
    /// The plugin engine or the plugin cannot be loaded.
    #[error("{0}")]
    Plugin(crate::plugin::PluginError),
    #[error("{0}")]
    Fingerprints(crate::state::fingerprints::FingerprintError),
}

impl JobError {
    /// Whether the configuration is at fault (the command line's usage exit code).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            JobError::NoEndpoint
                | JobError::NoPlugin
                | JobError::Sink(_)
                | JobError::Stage(_)
                | JobError::State(_)
                | JobError::OnlyChangedNeedsLocalState { .. }
        )
    }
}

/// Loads the configured plugin (compiled copies cached in `cache_dir`) with the
/// configured limits and digest pin.
pub fn load_plugin(config: &RunConfig, cache_dir: PathBuf) -> Result<Plugin, JobError> {
    let plugin_path = config.plugin.path.clone().ok_or(JobError::NoPlugin)?;
    let engine = PluginEngine::new(Limits {
        memory_bytes: config.plugin.memory_mib.saturating_mul(1024 * 1024),
        call_timeout: Duration::from_millis(config.plugin.timeout_ms),
    })
    .map_err(JobError::Plugin)?;
    Plugin::load(
        &engine,
        &plugin_path,
        &LoadOptions {
            cache_dir: Some(cache_dir),
            expected_sha256: config.plugin.sha256.clone(),
        },
    )
    .map_err(JobError::Plugin)
}

/// The configured delivery state, opened only to be read: `None` when it is a local
/// folder that does not exist (nothing delivered yet; opening it would create it).
pub fn open_state_read_only(config: &RunConfig) -> Result<Option<StateStore>, JobError> {
    let location = config.state.location();
    if let Ok(url) = crate::storage::StageUrl::parse(&location)
        && url.kind() == crate::storage::StoreKind::Local
        && !std::path::Path::new(url.key()).is_dir()
    {
        return Ok(None);
    }
    StateStore::open(&location, &config.state.store_config(&config.source))
        .map(Some)
        .map_err(JobError::State)
}

/// See the module docs.
pub struct Job {
    pub config: RunConfig,
    token: ApiToken,
    sink_config: crate::sink::SinkConfig,
    pub stage: Stage,
    /// The plugin, the `[mapping]` or the pass-through.
    pub transform: TransformSpec,
    pub state: StateStore,
    pub fingerprints: Option<Arc<Fingerprints>>,
    pub workers: usize,
}

impl Job {
    /// Opens the stage and the state and loads the plugin (compiled copies cached in
    /// `cache_dir`).
    pub fn prepare(
        config: RunConfig,
        token: ApiToken,
        cache_dir: PathBuf,
    ) -> Result<Job, JobError> {
        let sink_config = config.sink.clone().ok_or(JobError::NoEndpoint)?;
        CluedInSink::new(&sink_config, token.clone()).map_err(JobError::Sink)?;
        let stage = Stage::new(&config.source).map_err(JobError::Stage)?;
        let transform = transform_spec(&config, cache_dir)?;
        let location = config.state.location();
        let state = StateStore::open(&location, &config.state.store_config(&config.source))
            .map_err(JobError::State)?;
        let stage = crate::state::stage_key::bind(&state, stage).map_err(JobError::StageKey)?;
        let fingerprints = if config.state.only_changed {
            let Some(root) = state.local_root() else {
                return Err(JobError::OnlyChangedNeedsLocalState { location });
            };
            Some(Arc::new(
                Fingerprints::open(&root.join(FINGERPRINTS_FILE))
                    .map_err(JobError::Fingerprints)?,
            ))
        } else {
            None
        };
        let workers = config.run.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        });
        Ok(Job {
            config,
            token,
            sink_config,
            stage,
            transform,
            state,
            fingerprints,
            workers,
        })
    }

    /// Starts a full refresh of `files` (`run --full-refresh`): a new generation of the
    /// stage's state ([`crate::state::refresh`]), under which every file delivered before
    /// is sent again. Returns how many of `files` were delivered before.
    pub fn start_full_refresh(&self, files: &[StageFile]) -> Result<u64, JobError> {
        let survey = crate::state::refresh::survey(&self.state, self.stage.state_key(), files)
            .map_err(JobError::State)?;
        let run_id = uuid::Uuid::new_v4().to_string();
        crate::state::refresh::start(&self.state, self.stage.state_key(), &run_id)
            .map_err(JobError::State)?;
        Ok(survey.done)
    }

    /// Files of `files` delivered before the stage's current full refresh started, which
    /// this run sends again (an interrupted full refresh resumed); 0 without one.
    pub fn refresh_outstanding(&self, files: &[StageFile]) -> Result<u64, JobError> {
        // Without a generation nothing is outstanding: no read per file.
        if crate::state::refresh::current(&self.state, self.stage.state_key())
            .map_err(JobError::State)?
            .is_none()
        {
            return Ok(0);
        }
        let survey = crate::state::refresh::survey(&self.state, self.stage.state_key(), files)
            .map_err(JobError::State)?;
        Ok(survey.outdated_done)
    }

    /// A fresh sink (its statistics are per run).
    pub fn sink(&self) -> Result<CluedInSink, crate::sink::SinkError> {
        CluedInSink::new(&self.sink_config, self.token.clone())
    }

    /// The pipeline options for `files`.
    pub fn options(&self, files: Vec<StageFile>, cancel: Option<Cancel>) -> RunOptions {
        RunOptions {
            stage: self.stage.clone(),
            files,
            on_bad_file: self.config.run.on_bad_file,
            transform: self.transform.clone(),
            batch_rows: self.config.plugin.batch_rows,
            batch_bytes: self.config.plugin.batch_bytes,
            shape: self.config.records.shape,
            workers: self.workers,
            dead_letter_dir: self.config.output.dead_letter_dir(),
            state: self.state.clone(),
            segment_rows: self.config.state.segment_rows,
            lease: Duration::from_secs(self.config.state.lease_secs),
            fingerprints: self.fingerprints.clone(),
            cancel,
        }
    }

    /// Delivers `files`; keeps the report in the state (and in `[output] report`).
    pub fn run(
        &self,
        files: Vec<StageFile>,
        progress: Arc<Progress>,
        cancel: Option<Cancel>,
    ) -> Result<RunReport, PipelineError> {
        let sink = self.sink()?;
        let report = crate::pipeline::run(self.options(files, cancel), sink, progress)?;
        if let Some(fingerprints) = &self.fingerprints
            && let Err(e) = fingerprints.flush()
        {
            tracing::warn!("{e} (the records of this run may be sent again next time)");
        }
        let json = serde_json::to_vec_pretty(&report).unwrap_or_default();
        if let Some(path) = &self.config.output.report
            && let Err(e) = std::fs::write(path, &json)
        {
            tracing::error!("cannot write the report {}: {e}", path.display());
        }
        let path = crate::state::files::run_path(&report.started_at, &report.run_id);
        if let Err(e) = self.state.put(&path, &json, PutMode::Overwrite) {
            tracing::warn!("cannot keep the run report in the state: {e}");
        }
        Ok(report)
    }
}

/// What transforms the rows: the plugin (`[plugin] path`, loaded, compiled copies cached in
/// `cache_dir`), else the `[mapping]`, else the pass-through (which checks the stage's
/// columns when the run reads its schema).
pub fn transform_spec(config: &RunConfig, cache_dir: PathBuf) -> Result<TransformSpec, JobError> {
    let Some(plugin_path) = config.plugin.path.clone() else {
        let spec = match &config.mapping {
            Some(mapping) => crate::mapping::MappingSpec::Declared(mapping.clone()),
            None => crate::mapping::MappingSpec::PassThrough,
        };
        return Ok(TransformSpec::Mapping(Arc::new(spec)));
    };
    debug_assert!(config.plugin.path == Some(plugin_path));
    let plugin = load_plugin(config, cache_dir)?;
    Ok(TransformSpec::Plugin {
        plugin: Arc::new(plugin),
        config: config.plugin.config.clone().into_iter().collect(),
    })
}
