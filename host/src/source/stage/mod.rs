//! Stages: the Parquet, CSV and JSON files of a Snowflake unload, in object storage or a
//! local folder.
//!
//! A [`Stage`] is built from a [`StageConfig`] (a URL, see [`crate::storage::url`], plus
//! optional per-stage settings) on top of object_store's S3, Azure and GCS clients
//! ([`crate::storage::store`]), whose
//! `from_env` builders read the conventional settings (`AWS_*`, `AZURE_STORAGE_*`,
//! `GOOGLE_*`, instance/managed identities); the config's settings override them. A local
//! stage (a path or `file://` URL) is read with the standard library.
//!
//! - [`Stage::list`] lists the stage's data files — recursively under the prefix, every
//!   page, sorted by key — or the one object the URL names. Data files are `*.parquet`
//!   (so `*.snappy.parquet`), `*.csv`, `*.json` (each also `.gz`, `.bz2`, `.zst`) and
//!   extension-less files whose first bytes say what they are (the `data` file of
//!   `SINGLE=TRUE`; checked with one ranged read of [`super::format::SNIFF_BYTES`]: see
//!   `settings`). Zero-byte objects (folder markers, `_SUCCESS`) and other files are skipped
//!   with a debug log line.
//! - [`Stage::select`] narrows that down by [`Selection`] (globs, modification time, an
//!   explicit key list).
//! - [`Stage::open`] opens one file for reading: a [`StageSource`] whose batches come one
//!   row group at a time through ranged reads of bounded size (see
//!   [`super::object_reader`]). It is `Send`: the pipeline opens one per worker thread.
//!
//! Every error names the stage or the object, as a URL without credentials; secrets
//! (keys, SAS tokens) never appear in errors, logs or `Debug` output.
//!
//! The module's parts: [`error`] ([`StageError`]), [`file`] ([`StageFile`] and how a
//! listing classifies an object), `listing` (resolving the URL, listing, looking up named
//! keys) and [`reader`] (opening a file: [`StageSource`], [`StageBatches`]).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;

use super::object_reader::{OpenMode, ReadTuning};
use super::select::{CompiledSelection, Selection};
use crate::storage::store::build_store;
use crate::storage::{Redactor, StageConfig, StageUrl, StoreKind};

pub mod error;
pub mod file;
mod listing;
pub mod reader;
mod settings;
#[cfg(test)]
mod tests;

pub use self::error::StageError;
pub use self::file::StageFile;
pub use self::reader::{StageBatches, StageSource};
use self::settings::FormatSettings;
pub use super::schema::{check_schema, describe_column, describe_difference};

/// Extension-less objects checked for the `PAR1` magic at once while listing.
const MAGIC_CHECKS_IN_FLIGHT: usize = 16;
/// Explicitly named keys looked up at once.
const HEADS_IN_FLIGHT: usize = 16;

/// What a stage URL names once resolved.
enum Root {
    /// A folder (key prefix, without the trailing `/`; empty for the whole bucket).
    Prefix(String),
    /// One object.
    Object(Box<StageFile>),
}

/// Where the files are.
#[derive(Clone)]
enum Backend {
    Local,
    Remote(Arc<dyn ObjectStore>),
}

/// A stage: list, select and open its files. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Stage {
    url: StageUrl,
    backend: Backend,
    /// For a local stage: the path as given, made absolute.
    local_path: Option<PathBuf>,
    /// The canonical identity ([`super::identity`]).
    identity: String,
    /// What the delivery state keeps the stage under: `identity`, unless
    /// [`Stage::with_state_key`] set the spelling an older version used.
    state_key: String,
    redactor: Arc<Redactor>,
    tuning: ReadTuning,
    /// `[source] format`, `[source.csv]`, `[source.json]`.
    formats: Arc<FormatSettings>,
}

impl fmt::Debug for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stage")
            .field("url", &self.url.to_string())
            .field("kind", &self.url.kind())
            .finish_non_exhaustive()
    }
}

impl Stage {
    /// A stage with settings from the environment only.
    pub fn from_url(url: &str) -> Result<Self, StageError> {
        Self::new(&StageConfig::from_url(url))
    }

    /// Builds the stage's client. Nothing is requested from the store yet.
    pub fn new(config: &StageConfig) -> Result<Self, StageError> {
        let text = config.url.as_deref().ok_or_else(|| StageError::Config {
            stage: "stage configuration".into(),
            reason: "no stage URL (`url`)".into(),
        })?;
        let url = StageUrl::parse(text)?;
        config
            .check(url.kind())
            .map_err(|reason| StageError::Config {
                stage: url.to_string(),
                reason: reason.to_string(),
            })?;
        let formats = Arc::new(FormatSettings::new(config, &url.to_string())?);
        let redactor = Arc::new(Redactor::for_store(config, &url));
        let (backend, local_path) = match url.kind() {
            StoreKind::Local => {
                let path = std::path::absolute(url.key()).map_err(|e| StageError::Config {
                    stage: url.key().to_owned(),
                    reason: format!("cannot make the path absolute: {e}"),
                })?;
                (Backend::Local, Some(path))
            }
            _ => (Backend::Remote(build_store(&url, config, &redactor)?), None),
        };
        let identity = super::identity::canonical(&url);
        Ok(Self {
            url,
            backend,
            local_path,
            state_key: identity.clone(),
            identity,
            redactor,
            tuning: ReadTuning::default(),
            formats,
        })
    }

    /// The stage's canonical identity: the same for every spelling of the stage (see
    /// [`super::identity`]).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The spellings older versions may have kept this stage's state under (see
    /// [`super::identity::legacy`]).
    pub fn legacy_identities(&self) -> Vec<String> {
        super::identity::legacy(&self.url, &self.identity)
    }

    /// The text the delivery state's stage id is made from (`files/<stage-id>/…`): the
    /// canonical identity, or what [`Stage::with_state_key`] set.
    pub fn state_key(&self) -> &str {
        &self.state_key
    }

    /// Keeps the delivery state under `key` (a legacy spelling whose state exists; see
    /// `crate::state::stage_key`).
    pub fn with_state_key(mut self, key: String) -> Self {
        self.state_key = key;
        self
    }

    /// Uses other read window and buffer sizes for the files it opens.
    pub fn with_read_tuning(mut self, tuning: ReadTuning) -> Self {
        self.tuning = tuning;
        self
    }

    /// The read window and buffer sizes.
    pub fn read_tuning(&self) -> ReadTuning {
        self.tuning
    }

    /// The stage URL, without credentials.
    pub fn url(&self) -> String {
        match &self.local_path {
            Some(path) => path.display().to_string(),
            None => self.url.to_string(),
        }
    }

    /// The parsed URL.
    pub fn stage_url(&self) -> &StageUrl {
        &self.url
    }

    /// The kind of store.
    pub fn kind(&self) -> StoreKind {
        self.url.kind()
    }

    /// The object-store client and the URL's key prefix (as written, no leading `/`);
    /// `None` for a local stage.
    pub fn object_store(&self) -> Option<(Arc<dyn ObjectStore>, String)> {
        match &self.backend {
            Backend::Local => None,
            Backend::Remote(store) => Some((Arc::clone(store), self.url.key().to_owned())),
        }
    }

    /// Every data file of the stage, sorted by key (see the module documentation).
    pub fn list(&self) -> Result<Vec<StageFile>, StageError> {
        match self.resolve_root()? {
            Root::Object(file) => Ok(vec![*file]),
            Root::Prefix(prefix) => match &self.backend {
                Backend::Local => self.list_local(&prefix),
                Backend::Remote(store) => self.list_remote(store, &prefix),
            },
        }
    }

    /// The files `selection` picks: the listing (or the explicitly named keys), filtered
    /// by its globs and modification time, sorted by key; then by `[source] format`
    /// ([`Stage::keep_readable`]: a selection of more than one format is refused unless
    /// the config names one).
    pub fn select(&self, selection: &Selection) -> Result<Vec<StageFile>, StageError> {
        let compiled = CompiledSelection::new(selection)?;
        let files = match &selection.keys {
            Some(keys) => self.files_named(keys)?,
            None => self.list()?,
        };
        let selected = files
            .into_iter()
            .filter(|file| match compiled.rejects(file) {
                Some(reason) => {
                    tracing::debug!(object = %file.url, "not selected: {reason}");
                    false
                }
                None => true,
            })
            .collect();
        self.keep_readable(selected)
    }

    /// The file at `key`, relative to the stage's prefix, or as a URL into the same
    /// bucket/container under the stage's prefix.
    pub fn file(&self, key: &str) -> Result<StageFile, StageError> {
        let mut files = self.files_named(&[key.to_owned()])?;
        files.pop().ok_or_else(|| StageError::NotFound {
            object: key.to_owned(),
        })
    }

    /// Opens a file for reading its rows (its footer is read here).
    pub fn open(&self, file: &StageFile) -> Result<StageSource, StageError> {
        self.open_with(file, OpenMode::Read)
    }

    /// Opens a file for its footer only (row counts, schema): reads as little as possible.
    pub fn open_footer(&self, file: &StageFile) -> Result<StageSource, StageError> {
        self.open_with(file, OpenMode::Footer)
    }
}
