//! Listing a stage: what its URL names (a folder or one object), the data files under a
//! folder in object storage or on disk (through [`crate::storage::walk`]), and the files a
//! key list names.

use std::collections::BTreeSet;
use std::path::Path as FsPath;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use super::file::{
    Kind, classify, file_name, local_head, modified, object_path, path_text, relative_key,
};
use super::{Backend, HEADS_IN_FLIGHT, MAGIC_CHECKS_IN_FLIGHT, Root, Stage, StageError, StageFile};
use crate::source::format::SNIFF_BYTES;
use crate::storage::walk::{DEFAULT_MAX_DEPTH, walk_files};
use crate::storage::{StageUrl, block_on, redact_url};

/// Why an extension-less file is not listed.
const NOT_DATA: &str = "no extension, and its first bytes are neither Parquet (`PAR1`) nor \
                        compressed text (plain text is read only with `[source] format = \
                        \"csv\"` or `\"json\"`)";

/// Folder depth a local listing descends to (guards against symlink loops).
const MAX_LOCAL_DEPTH: usize = DEFAULT_MAX_DEPTH;

impl Stage {
    pub(super) fn resolve_root(&self) -> Result<Root, StageError> {
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
                        reason: self.redactor.explain(&error.to_string()),
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

    pub(super) fn list_remote(
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
            reason: self.redactor.explain(&error.to_string()),
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
                            let end = file.size.min(SNIFF_BYTES as u64);
                            let head = store.get_range(&location, 0..end).await;
                            (file, head)
                        }
                    })
                    .buffer_unordered(MAGIC_CHECKS_IN_FLIGHT)
                    .collect::<Vec<_>>()
                    .await
            })?;
            for (mut file, head) in checked {
                match head {
                    Ok(bytes) => match self.formats.content_format(&bytes) {
                        Some(format) => {
                            file.format = Some(format);
                            files.push(file);
                        }
                        None => tracing::debug!(object = %file.url, "skipped: {NOT_DATA}"),
                    },
                    Err(object_store::Error::NotFound { .. }) => tracing::warn!(
                        object = %file.url,
                        "skipped: deleted while the stage was being listed"
                    ),
                    Err(error) => {
                        return Err(StageError::Read {
                            object: file.url,
                            reason: self.redactor.explain(&error.to_string()),
                        });
                    }
                }
            }
        }
        files.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(files)
    }

    pub(super) fn list_local(&self, root: &str) -> Result<Vec<StageFile>, StageError> {
        let mut files = Vec::new();
        walk_files(FsPath::new(root), MAX_LOCAL_DEPTH, |walked| {
            let Some(key) = path_text(&walked.path) else {
                tracing::warn!(path = %walked.path.display(), "skipped: the file name is not UTF-8");
                return;
            };
            let mut file = StageFile::new(
                key.clone(),
                walked.relative,
                key,
                walked.metadata.len(),
                modified(&walked.metadata),
            );
            match classify(&file) {
                Kind::Data => files.push(file),
                Kind::MaybeData => {
                    let format = local_head(&walked.path)
                        .ok()
                        .and_then(|head| self.formats.content_format(&head));
                    match format {
                        Some(format) => {
                            file.format = Some(format);
                            files.push(file);
                        }
                        None => tracing::debug!(object = %file.url, "skipped: {NOT_DATA}"),
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
    pub(super) fn files_named(&self, keys: &[String]) -> Result<Vec<StageFile>, StageError> {
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
                                reason: self.redactor.explain(&error.to_string()),
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
