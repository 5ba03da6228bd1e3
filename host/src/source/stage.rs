//! Stages: the Parquet files of a Snowflake unload, in object storage or a local folder.
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
//!   (so `*.snappy.parquet`) and extension-less files that start with `PAR1` (the `data`
//!   file of `SINGLE=TRUE`; checked with a 4-byte ranged read). Zero-byte objects (folder
//!   markers, `_SUCCESS`) and other files are skipped with a debug log line.
//! - [`Stage::select`] narrows that down by [`Selection`] (globs, modification time, an
//!   explicit key list).
//! - [`Stage::open`] opens one file for reading: a [`StageSource`] whose batches come one
//!   row group at a time through ranged reads of bounded size (see
//!   [`super::object_reader`]). It is `Send`: the pipeline opens one per worker thread.
//!
//! Every error names the stage or the object, as a URL without credentials; secrets
//! (keys, SAS tokens) never appear in errors, logs or `Debug` output.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::File;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use super::object_reader::{
    ObjectReader, ObjectTarget, OpenMode, ReadStats, ReadTuning, StageReader,
};
use super::parquet::{ParquetSource, ReadOptions, SourceBatch, SourceBatches, SourceError};
use super::path::{UnloadFileName, parse_file_name, source_file};
use super::select::{CompiledSelection, Selection};
use crate::bindings::types::{ColumnSchema, ColumnType, ScalarType, SourceFile};
use crate::storage::store::build_store;
use crate::storage::walk::{DEFAULT_MAX_DEPTH, walk_files};
use crate::storage::{
    Redactor, StageConfig, StageUrl, StorageError, StoreKind, block_on, redact_url,
};

/// Extension-less objects checked for the `PAR1` magic at once while listing.
const MAGIC_CHECKS_IN_FLIGHT: usize = 16;
/// Explicitly named keys looked up at once.
const HEADS_IN_FLIGHT: usize = 16;
/// Folder depth a local listing descends to (guards against symlink loops).
const MAX_LOCAL_DEPTH: usize = DEFAULT_MAX_DEPTH;

/// What can go wrong with a stage. Every variant names the stage or the object (as a URL
/// without credentials).
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The stage URL cannot be parsed.
    #[error("{url}: not a usable stage URL: {reason}")]
    Url {
        /// The URL, with any query string or credentials replaced.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The stage settings are incomplete or contradictory, or the client cannot be built.
    #[error("{stage}: {reason}")]
    Config {
        /// The stage URL.
        stage: String,
        /// What is wrong.
        reason: String,
    },
    /// Listing the stage failed (after retries).
    #[error("{stage}: cannot list the stage: {reason}")]
    List {
        /// The stage URL.
        stage: String,
        /// The store's message.
        reason: String,
    },
    /// An object (or local file) that was asked for by name does not exist.
    #[error("{object}: no such object")]
    NotFound {
        /// The object.
        object: String,
    },
    /// An object that was listed no longer exists (deleted or renamed since).
    #[error("{object}: the object was listed but no longer exists (deleted or renamed since)")]
    Vanished {
        /// The object.
        object: String,
    },
    /// An object changed since it was listed (another ETag, another size).
    #[error("{object}: the object changed since it was listed: {reason}")]
    Changed {
        /// The object.
        object: String,
        /// What changed.
        reason: String,
    },
    /// Reading an object failed (after retries).
    #[error("{object}: cannot read: {reason}")]
    Read {
        /// The object.
        object: String,
        /// The store's message.
        reason: String,
    },
    /// The object is not a readable Parquet file (truncated, corrupt, not Parquet, a column
    /// a plugin cannot receive); the error names it.
    #[error(transparent)]
    Parquet(#[from] SourceError),
    /// The object's columns differ from the stage's (its first file's).
    #[error("{object}: its schema differs from {expected_from}'s: {difference}")]
    SchemaMismatch {
        /// The object.
        object: String,
        /// The file whose schema is the stage's.
        expected_from: String,
        /// The first differences.
        difference: String,
    },
    /// The selection (globs, time, key list) is invalid.
    #[error("{reason}")]
    Selection {
        /// What is wrong.
        reason: String,
    },
    /// The I/O runtime the storage clients run on failed.
    #[error("storage I/O runtime: {reason}")]
    Runtime {
        /// What failed.
        reason: String,
    },
}

impl From<StorageError> for StageError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Url { url, reason } => StageError::Url { url, reason },
            StorageError::Config { stage, reason } => StageError::Config { stage, reason },
            StorageError::Runtime { reason } => StageError::Runtime { reason },
        }
    }
}

impl StageError {
    /// The object the error is about, if it is about one file.
    pub fn object(&self) -> Option<&str> {
        match self {
            StageError::NotFound { object }
            | StageError::Vanished { object }
            | StageError::Changed { object, .. }
            | StageError::Read { object, .. }
            | StageError::SchemaMismatch { object, .. } => Some(object),
            StageError::Parquet(error) => Some(source_error_file(error)),
            _ => None,
        }
    }

    /// True when the error is about one bad file that a run can skip (dead-letter) and go
    /// on: the object vanished or changed, is not readable Parquet, or has another schema.
    /// Listing, configuration and storage errors (after retries) are not.
    pub fn is_bad_file(&self) -> bool {
        matches!(
            self,
            StageError::NotFound { .. }
                | StageError::Vanished { .. }
                | StageError::Changed { .. }
                | StageError::Parquet(_)
                | StageError::SchemaMismatch { .. }
        )
    }
}

/// The file a [`SourceError`] names.
fn source_error_file(error: &SourceError) -> &str {
    match error {
        SourceError::Open { file, .. }
        | SourceError::NotParquet { file, .. }
        | SourceError::Corrupt { file, .. }
        | SourceError::Unsupported { file, .. }
        | SourceError::UnsupportedColumn { file, .. }
        | SourceError::Decode { file, .. }
        | SourceError::Options { file, .. } => file,
    }
}

/// One data file of a stage, as the listing saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct StageFile {
    /// The object's key in its bucket or container; for a local stage the file's absolute
    /// path.
    pub key: String,
    /// The key relative to the stage URL's prefix (for a stage URL naming one object, its
    /// file name); what `--include`/`--exclude` globs match.
    pub relative: String,
    /// The object as a URL (`s3://bucket/key`, …) or, locally, the path: how messages
    /// name it.
    pub url: String,
    /// Size in bytes.
    pub size: u64,
    /// The ETag the listing reported (reads check it: an object replaced since is an
    /// error, not a mix of two files).
    pub e_tag: Option<String>,
    /// The object version, where the store reports one.
    pub version: Option<String>,
    /// Last modification time.
    pub last_modified: DateTime<Utc>,
    /// The parts of the Snowflake file name.
    pub name: UnloadFileName,
    /// The `PARTITION BY` folders in the key, in path order (see [`source_file`]).
    pub partitions: Vec<(String, Option<String>)>,
}

impl StageFile {
    fn new(
        key: String,
        relative: String,
        url: String,
        size: u64,
        last_modified: DateTime<Utc>,
    ) -> Self {
        let name = parse_file_name(&key);
        let partitions = source_file(&key).partitions;
        Self {
            key,
            relative,
            url,
            size,
            e_tag: None,
            version: None,
            last_modified,
            name,
            partitions,
        }
    }

    /// The contract's description of the file, for a plugin: its key and partitions.
    pub fn source_file(&self) -> SourceFile {
        SourceFile {
            key: self.key.clone(),
            partitions: self.partitions.clone(),
        }
    }
}

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
    /// by its globs and modification time, sorted by key.
    pub fn select(&self, selection: &Selection) -> Result<Vec<StageFile>, StageError> {
        let compiled = CompiledSelection::new(selection)?;
        let files = match &selection.keys {
            Some(keys) => self.files_named(keys)?,
            None => self.list()?,
        };
        Ok(files
            .into_iter()
            .filter(|file| match compiled.rejects(file) {
                Some(reason) => {
                    tracing::debug!(object = %file.url, "not selected: {reason}");
                    false
                }
                None => true,
            })
            .collect())
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

    fn open_with(&self, file: &StageFile, mode: OpenMode) -> Result<StageSource, StageError> {
        let (reader, object) = match &self.backend {
            Backend::Local => {
                let handle = File::open(&file.key).map_err(|error| {
                    if error.kind() == std::io::ErrorKind::NotFound {
                        StageError::Vanished {
                            object: file.url.clone(),
                        }
                    } else {
                        StageError::Read {
                            object: file.url.clone(),
                            reason: error.to_string(),
                        }
                    }
                })?;
                (StageReader::File(handle), None)
            }
            Backend::Remote(store) => {
                let target = ObjectTarget {
                    store: Arc::clone(store),
                    location: object_path(&file.key, &file.url)?,
                    size: file.size,
                    e_tag: file.e_tag.clone(),
                    name: file.url.clone(),
                    redactor: Arc::clone(&self.redactor),
                };
                let reader = ObjectReader::open(target, self.tuning, mode)?;
                (StageReader::Object(reader.clone()), Some(reader))
            }
        };
        let source = ParquetSource::new(reader, file.url.clone()).map_err(|error| {
            object
                .as_ref()
                .and_then(ObjectReader::take_error)
                .unwrap_or(StageError::Parquet(error))
        })?;
        Ok(StageSource {
            file: file.clone(),
            source,
            object,
        })
    }

    /// What the URL names: a folder or one object.
    fn resolve_root(&self) -> Result<Root, StageError> {
        match &self.backend {
            Backend::Local => {
                let path = self.local_path.as_ref().ok_or_else(|| StageError::Config {
                    stage: self.url(),
                    reason: "a local stage without a path".into(),
                })?;
                let canonical = std::fs::canonicalize(path).map_err(|error| {
                    if error.kind() == std::io::ErrorKind::NotFound {
                        StageError::NotFound {
                            object: path.display().to_string(),
                        }
                    } else {
                        StageError::List {
                            stage: path.display().to_string(),
                            reason: error.to_string(),
                        }
                    }
                })?;
                let text = path_text(&canonical).ok_or_else(|| StageError::List {
                    stage: path.display().to_string(),
                    reason: "the path is not UTF-8".into(),
                })?;
                if canonical.is_dir() {
                    return Ok(Root::Prefix(text));
                }
                let meta = std::fs::metadata(&canonical).map_err(|error| StageError::List {
                    stage: text.clone(),
                    reason: error.to_string(),
                })?;
                let name = file_name(&text).to_owned();
                Ok(Root::Object(Box::new(StageFile::new(
                    text.clone(),
                    name,
                    text,
                    meta.len(),
                    modified(&meta),
                ))))
            }
            Backend::Remote(store) => {
                let key = self.url.key();
                if self.url.is_prefix() {
                    return Ok(Root::Prefix(key.trim_end_matches('/').to_owned()));
                }
                let location = object_path(key, &self.url.to_string())?;
                let store = Arc::clone(store);
                match block_on(async move { store.head(&location).await })? {
                    // A zero-byte object by the prefix's name is a folder marker (or an
                    // ADLS Gen2 directory).
                    Ok(meta) if meta.size > 0 => {
                        let name = file_name(key).to_owned();
                        Ok(Root::Object(Box::new(self.remote_file(meta, name))))
                    }
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {
                        Ok(Root::Prefix(key.to_owned()))
                    }
                    Err(error) => Err(StageError::List {
                        stage: self.url.to_string(),
                        reason: self.redactor.scrub(&error.to_string()),
                    }),
                }
            }
        }
    }

    fn remote_file(&self, meta: ObjectMeta, relative: String) -> StageFile {
        let key = meta.location.to_string();
        let url = self.url.object_url(&key);
        let mut file = StageFile::new(key, relative, url, meta.size, meta.last_modified);
        file.e_tag = meta.e_tag;
        file.version = meta.version;
        file
    }

    fn list_remote(
        &self,
        store: &Arc<dyn ObjectStore>,
        prefix: &str,
    ) -> Result<Vec<StageFile>, StageError> {
        let stage = self.url.to_string();
        let location = if prefix.is_empty() {
            None
        } else {
            Some(object_path(prefix, &stage)?)
        };
        let listing_store = Arc::clone(store);
        let started = std::time::Instant::now();
        let listed = block_on(async move {
            listing_store
                .list(location.as_ref())
                .try_collect::<Vec<ObjectMeta>>()
                .await
        })?
        .map_err(|error| StageError::List {
            stage: stage.clone(),
            reason: self.redactor.scrub(&error.to_string()),
        })?;
        tracing::debug!(
            stage = %stage,
            objects = listed.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "listed"
        );
        let mut files = Vec::new();
        let mut unsure = Vec::new();
        for meta in listed {
            let key = meta.location.to_string();
            let relative = relative_key(&key, prefix).to_owned();
            let file = self.remote_file(meta, relative);
            match classify(&file) {
                Kind::Data => files.push(file),
                Kind::MaybeData => unsure.push(file),
                Kind::Skip(reason) => tracing::debug!(object = %file.url, "skipped: {reason}"),
            }
        }
        if !unsure.is_empty() {
            let store = Arc::clone(store);
            let checked = block_on(async move {
                futures_util::stream::iter(unsure)
                    .map(|file| {
                        let store = Arc::clone(&store);
                        async move {
                            let location = ObjectPath::parse(&file.key).unwrap_or_default();
                            let head = store.get_range(&location, 0..4).await;
                            (file, head)
                        }
                    })
                    .buffer_unordered(MAGIC_CHECKS_IN_FLIGHT)
                    .collect::<Vec<_>>()
                    .await
            })?;
            for (file, head) in checked {
                match head {
                    Ok(bytes) if bytes.as_ref() == b"PAR1" => files.push(file),
                    Ok(_) => tracing::debug!(
                        object = %file.url,
                        "skipped: no extension and does not start with `PAR1`"
                    ),
                    Err(object_store::Error::NotFound { .. }) => tracing::warn!(
                        object = %file.url,
                        "skipped: deleted while the stage was being listed"
                    ),
                    Err(error) => {
                        return Err(StageError::Read {
                            object: file.url,
                            reason: self.redactor.scrub(&error.to_string()),
                        });
                    }
                }
            }
        }
        files.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(files)
    }

    fn list_local(&self, root: &str) -> Result<Vec<StageFile>, StageError> {
        let mut files = Vec::new();
        walk_files(FsPath::new(root), MAX_LOCAL_DEPTH, |walked| {
            let Some(key) = path_text(&walked.path) else {
                tracing::warn!(path = %walked.path.display(), "skipped: the file name is not UTF-8");
                return;
            };
            let file = StageFile::new(
                key.clone(),
                walked.relative,
                key,
                walked.metadata.len(),
                modified(&walked.metadata),
            );
            match classify(&file) {
                Kind::Data => files.push(file),
                Kind::MaybeData => {
                    if starts_with_magic(&walked.path) {
                        files.push(file);
                    } else {
                        tracing::debug!(
                            object = %file.url,
                            "skipped: no extension and does not start with `PAR1`"
                        );
                    }
                }
                Kind::Skip(reason) => tracing::debug!(object = %file.url, "skipped: {reason}"),
            }
        })
        .map_err(|error| StageError::List {
            stage: error.path().display().to_string(),
            reason: error.reason(),
        })?;
        files.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(files)
    }

    /// Looks up explicitly named keys (relative to the stage's prefix, or URLs into it).
    fn files_named(&self, keys: &[String]) -> Result<Vec<StageFile>, StageError> {
        let prefix = match self.resolve_root()? {
            Root::Prefix(prefix) => prefix,
            Root::Object(_) => {
                return Err(StageError::Selection {
                    reason: format!(
                        "{}: names one object; a key list needs a stage URL that names a \
                         folder (prefix)",
                        self.url()
                    ),
                });
            }
        };
        let mut wanted = BTreeSet::new();
        for key in keys {
            wanted.insert(self.resolve_key(key, &prefix)?);
        }
        let mut files = Vec::with_capacity(wanted.len());
        match &self.backend {
            Backend::Local => {
                for key in wanted {
                    let meta = std::fs::metadata(&key).map_err(|error| {
                        if error.kind() == std::io::ErrorKind::NotFound {
                            StageError::NotFound {
                                object: key.clone(),
                            }
                        } else {
                            StageError::Read {
                                object: key.clone(),
                                reason: error.to_string(),
                            }
                        }
                    })?;
                    if !meta.is_file() {
                        return Err(StageError::NotFound { object: key });
                    }
                    let relative = relative_key(&key, &prefix).to_owned();
                    files.push(StageFile::new(
                        key.clone(),
                        relative,
                        key,
                        meta.len(),
                        modified(&meta),
                    ));
                }
            }
            Backend::Remote(store) => {
                let mut locations = Vec::new();
                for key in wanted {
                    let url = self.url.object_url(&key);
                    locations.push((object_path(&key, &url)?, key, url));
                }
                let store = Arc::clone(store);
                let heads = block_on(async move {
                    futures_util::stream::iter(locations)
                        .map(|(location, key, url)| {
                            let store = Arc::clone(&store);
                            async move { (store.head(&location).await, key, url) }
                        })
                        .buffered(HEADS_IN_FLIGHT)
                        .collect::<Vec<_>>()
                        .await
                })?;
                for (head, key, url) in heads {
                    match head {
                        Ok(meta) => {
                            let relative = relative_key(&key, &prefix).to_owned();
                            files.push(self.remote_file(meta, relative));
                        }
                        Err(object_store::Error::NotFound { .. }) => {
                            return Err(StageError::NotFound { object: url });
                        }
                        Err(error) => {
                            return Err(StageError::Read {
                                object: url,
                                reason: self.redactor.scrub(&error.to_string()),
                            });
                        }
                    }
                }
            }
        }
        files.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(files)
    }

    /// The full key of a key-list entry.
    fn resolve_key(&self, entry: &str, prefix: &str) -> Result<String, StageError> {
        let invalid = |reason: String| StageError::Selection {
            reason: format!("key `{}`: {reason}", redact_url(entry)),
        };
        let key = if entry.contains("://") {
            let url = StageUrl::parse(entry)?;
            let same_store = url.kind() == self.url.kind()
                && url.bucket() == self.url.bucket()
                && (url.account().is_none()
                    || self.url.account().is_none()
                    || url.account() == self.url.account());
            if !same_store {
                return Err(invalid(format!("is not in the stage {}", self.url())));
            }
            match &self.local_path {
                Some(_) => {
                    let path = std::path::absolute(url.key())
                        .map_err(|e| invalid(format!("cannot make the path absolute: {e}")))?;
                    path_text(&path).ok_or_else(|| invalid("the path is not UTF-8".into()))?
                }
                None => url.key().to_owned(),
            }
        } else if self.local_path.is_some() && entry.starts_with('/') {
            entry.to_owned()
        } else {
            let relative = entry.trim_start_matches("./");
            if prefix.is_empty() {
                relative.to_owned()
            } else {
                format!("{prefix}/{relative}")
            }
        };
        let inside = prefix.is_empty()
            || key
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'));
        if !inside || key.ends_with('/') {
            return Err(invalid(format!(
                "is not an object under the stage {}",
                self.url()
            )));
        }
        Ok(key)
    }
}

/// What the listing does with an object.
enum Kind {
    Data,
    /// No extension: a data file if it starts with `PAR1`.
    MaybeData,
    Skip(&'static str),
}

fn classify(file: &StageFile) -> Kind {
    if file.size == 0 {
        return Kind::Skip("zero-byte object (folder marker or empty file)");
    }
    let name = file_name(&file.key);
    if name.len() > ".parquet".len()
        && name.as_bytes()[name.len() - ".parquet".len()..].eq_ignore_ascii_case(b".parquet")
    {
        return Kind::Data;
    }
    if !name.contains('.') {
        return Kind::MaybeData;
    }
    Kind::Skip("not a data file (neither `.parquet` nor an extension-less Parquet file)")
}

fn starts_with_magic(path: &FsPath) -> bool {
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut magic))
        .is_ok()
        && &magic == b"PAR1"
}

fn path_text(path: &FsPath) -> Option<String> {
    path.to_str().map(str::to_owned)
}

fn modified(meta: &std::fs::Metadata) -> DateTime<Utc> {
    meta.modified()
        .map(DateTime::<Utc>::from)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// The last segment of a key.
fn file_name(key: &str) -> &str {
    key.trim_end_matches('/').rsplit('/').next().unwrap_or(key)
}

/// `key` relative to the folder `prefix` (no trailing `/`; empty = everything).
fn relative_key<'a>(key: &'a str, prefix: &str) -> &'a str {
    if prefix.is_empty() {
        return key;
    }
    key.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(key)
}

/// An object_store path for a raw key (no percent-encoding: the key is the key).
fn object_path(key: &str, url: &str) -> Result<ObjectPath, StageError> {
    ObjectPath::parse(key).map_err(|error| StageError::Read {
        object: url.to_owned(),
        reason: format!("the key cannot be used: {error}"),
    })
}

/// An open stage file: its footer is read; [`StageSource::batches`] reads its rows.
/// `Send`: it can move to (and be read on) another thread.
pub struct StageSource {
    file: StageFile,
    source: ParquetSource<StageReader>,
    object: Option<ObjectReader>,
}

impl fmt::Debug for StageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StageSource")
            .field("file", &self.file.url)
            .field("rows", &self.source.num_rows())
            .finish_non_exhaustive()
    }
}

impl StageSource {
    /// The file as listed.
    pub fn file(&self) -> &StageFile {
        &self.file
    }

    /// How errors name the file (its URL or path).
    pub fn name(&self) -> &str {
        self.source.name()
    }

    /// The Parquet file: footer, schemas, row groups.
    pub fn parquet(&self) -> &ParquetSource<StageReader> {
        &self.source
    }

    /// Rows in the file, from the footer.
    pub fn num_rows(&self) -> u64 {
        self.source.num_rows()
    }

    /// The file's columns as the plugin contract describes them.
    pub fn contract_schema(&self) -> Result<Vec<ColumnSchema>, StageError> {
        Ok(self.source.contract_schema()?)
    }

    /// Reads the rows in batches, one row group at a time (see
    /// [`ParquetSource::batches`]); storage errors during the read come out typed
    /// ([`StageError::Vanished`], [`StageError::Changed`], [`StageError::Read`]).
    pub fn batches(&self, options: &ReadOptions) -> Result<StageBatches, StageError> {
        Ok(StageBatches {
            batches: self.source.batches(options)?,
            object: self.object.clone(),
        })
    }

    /// The ranged reads so far (`None` for a local file).
    pub fn read_stats(&self) -> Option<ReadStats> {
        self.object.as_ref().map(ObjectReader::stats)
    }
}

/// The batches of a [`StageSource`], in row order. After an error the iterator ends.
pub struct StageBatches {
    batches: SourceBatches<StageReader>,
    object: Option<ObjectReader>,
}

impl StageBatches {
    /// Bounds each batch to about `bytes` ([`SourceBatches::max_bytes`]).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.batches = self.batches.max_bytes(bytes);
        self
    }
}

impl Iterator for StageBatches {
    type Item = Result<SourceBatch, StageError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.batches.next()?.map_err(|error| {
            self.object
                .as_ref()
                .and_then(ObjectReader::take_error)
                .unwrap_or(StageError::Parquet(error))
        }))
    }
}

/// Checks that `actual` (the columns of `file`) is the stage's schema `expected` (the
/// columns of `expected_from`); the error lists the first differences.
pub fn check_schema(
    expected: &[ColumnSchema],
    expected_from: &str,
    file: &str,
    actual: &[ColumnSchema],
) -> Result<(), StageError> {
    if expected == actual {
        return Ok(());
    }
    Err(StageError::SchemaMismatch {
        object: file.to_owned(),
        expected_from: expected_from.to_owned(),
        difference: describe_difference(expected, actual),
    })
}

/// The first few differences between two column lists, in words.
pub fn describe_difference(expected: &[ColumnSchema], actual: &[ColumnSchema]) -> String {
    const MAX: usize = 3;
    let mut differences = Vec::new();
    if expected.len() != actual.len() {
        differences.push(format!(
            "{} columns instead of {}",
            actual.len(),
            expected.len()
        ));
    }
    for (index, (want, got)) in expected.iter().zip(actual).enumerate() {
        if want == got {
            continue;
        }
        if want.name != got.name {
            differences.push(format!(
                "column {index} is `{}` instead of `{}`",
                got.name, want.name
            ));
        } else {
            differences.push(format!(
                "column `{}` is {} instead of {}",
                got.name,
                describe_column(got),
                describe_column(want)
            ));
        }
    }
    for extra in actual.iter().skip(expected.len()) {
        differences.push(format!("extra column `{}`", extra.name));
    }
    for missing in expected.iter().skip(actual.len()) {
        differences.push(format!("no column `{}`", missing.name));
    }
    let more = differences.len().saturating_sub(MAX);
    differences.truncate(MAX);
    let mut text = differences.join("; ");
    if more > 0 {
        text.push_str(&format!("; and {more} more"));
    }
    text
}

/// `decimal(38,0)`, `nullable text`, `list<date>`: a column's contract type in words.
pub fn describe_column(column: &ColumnSchema) -> String {
    let type_ = match &column.type_ {
        ColumnType::Scalar(scalar) => describe_scalar(scalar),
        ColumnType::List(item) => format!("list<{}>", describe_scalar(item)),
    };
    if column.nullable {
        format!("nullable {type_}")
    } else {
        format!("non-null {type_}")
    }
}

fn describe_scalar(scalar: &ScalarType) -> String {
    match scalar {
        ScalarType::Boolean => "boolean".into(),
        ScalarType::Integer => "integer".into(),
        ScalarType::Float => "float".into(),
        ScalarType::Decimal((precision, scale)) => format!("decimal({precision},{scale})"),
        ScalarType::Text => "text".into(),
        ScalarType::Json => "json".into(),
        ScalarType::Binary => "binary".into(),
        ScalarType::Date => "date".into(),
        ScalarType::Timestamp(timestamp) => format!(
            "timestamp({:?}{})",
            timestamp.unit,
            if timestamp.wall_clock {
                ", wall-clock"
            } else {
                ", instant"
            }
        )
        .to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_of_another_store_are_errors() {
        let check = |toml_text: &str| {
            let config: StageConfig = toml::from_str(toml_text).unwrap();
            Stage::new(&config).map(|_| ()).unwrap_err().to_string()
        };
        let error = check("url = \"s3://b/\"\nsas_token = \"sv=1&sig=SECRETSIG\"\n");
        assert!(error.contains("`sas_token` does not apply"), "{error}");
        assert!(!error.contains("SECRETSIG"));
        let error = check("url = \"az://container/\"\nregion = \"eu-west-1\"\n");
        assert!(error.contains("`region` does not apply"), "{error}");
        let error = check("url = \"./stage\"\nendpoint = \"http://x\"\n");
        assert!(error.contains("does not apply to a stage in the local file system"));
        let error = check("url = \"s3://b/\"\naccess_key_id = \"AKID\"\n");
        assert!(error.contains("go together"), "{error}");
        let error = check("url = \"s3://b/\"\nendpoint = \"http://127.0.0.1:1\"\n");
        assert!(error.contains("allow_http"), "{error}");
        let error = check("url = \"s3://b/\"\nendpoint = \"127.0.0.1:1\"\n");
        assert!(error.contains("http:// or https://"), "{error}");
    }

    #[test]
    fn relative_keys_and_classification() {
        assert_eq!(relative_key("a/b/c.parquet", "a"), "b/c.parquet");
        assert_eq!(relative_key("a/b/c.parquet", ""), "a/b/c.parquet");
        assert_eq!(relative_key("ab/c", "a"), "ab/c");
        let file = |key: &str, size| {
            StageFile::new(
                key.into(),
                key.into(),
                key.into(),
                size,
                DateTime::<Utc>::UNIX_EPOCH,
            )
        };
        assert!(matches!(
            classify(&file("p/data_0_0_0.snappy.parquet", 10)),
            Kind::Data
        ));
        assert!(matches!(classify(&file("p/X.PARQUET", 10)), Kind::Data));
        assert!(matches!(classify(&file("p/data", 10)), Kind::MaybeData));
        assert!(matches!(classify(&file("p/data", 0)), Kind::Skip(_)));
        assert!(matches!(classify(&file("p/_SUCCESS", 0)), Kind::Skip(_)));
        assert!(matches!(classify(&file("p/x.csv", 10)), Kind::Skip(_)));
        assert!(matches!(classify(&file("p/.parquet", 10)), Kind::Skip(_)));
    }

    #[test]
    fn gcs_and_azure_stages_build_without_a_network() {
        let stage = Stage::new(&StageConfig {
            url: Some("gs://bucket/unload/".into()),
            skip_signature: Some(true),
            ..StageConfig::default()
        })
        .unwrap();
        assert_eq!(stage.kind(), StoreKind::Gcs);
        assert_eq!(stage.url(), "gs://bucket/unload/");
        let stage = Stage::from_url("azure://acct1.blob.core.windows.net/stage/unload/").unwrap();
        assert_eq!(stage.kind(), StoreKind::Azure);
    }
}
