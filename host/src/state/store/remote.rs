//! The object-store backend: reads, conditional puts (`If-None-Match: *` to create,
//! `If-Match: <etag>` to update), deletes and listings through object_store on the
//! blocking runtime, versions as ETags, and error messages scrubbed of credentials.

use std::sync::Arc;

use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutOptions, PutPayload, UpdateVersion};

use super::path::join_key;
use super::{PutMode, StateError, StateStore, Stored, Version};
use crate::storage::{Redactor, block_on};

/// An object store and the key prefix of the state in it.
pub(super) struct Remote {
    pub(super) store: Arc<dyn ObjectStore>,
    /// The key prefix, without leading or trailing `/` (may be empty).
    pub(super) prefix: String,
    pub(super) redactor: Arc<Redactor>,
}

impl StateStore {
    pub(super) fn remote_get(
        &self,
        remote: &Remote,
        path: &str,
    ) -> Result<Option<Stored>, StateError> {
        let location = self.object_path(remote, path)?;
        let store = Arc::clone(&remote.store);
        let result = self.block_on(async move {
            let result = match store.get(&location).await {
                Ok(result) => result,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(error) => return Err(error),
            };
            let e_tag = result.meta.e_tag.clone();
            let bytes = result.bytes().await?;
            Ok(Some((bytes, e_tag)))
        })?;
        match result {
            Ok(None) => Ok(None),
            Ok(Some((bytes, Some(e_tag)))) => Ok(Some(Stored {
                bytes: bytes.to_vec(),
                version: Version(e_tag),
            })),
            Ok(Some((_, None))) => {
                Err(self.store_error(format!("cannot read {path}: the store returned no ETag")))
            }
            Err(error) => Err(self.object_error(remote, "read", path, &error)),
        }
    }

    pub(super) fn remote_put(
        &self,
        remote: &Remote,
        path: &str,
        bytes: &[u8],
        mode: PutMode,
    ) -> Result<Version, StateError> {
        let location = self.object_path(remote, path)?;
        let store = Arc::clone(&remote.store);
        let mode = match mode {
            PutMode::Create => object_store::PutMode::Create,
            PutMode::Update(version) => object_store::PutMode::Update(UpdateVersion {
                e_tag: Some(version.0),
                version: None,
            }),
            PutMode::Overwrite => object_store::PutMode::Overwrite,
        };
        let payload = PutPayload::from(bytes.to_vec());
        let result = self.block_on(async move {
            let options = PutOptions {
                mode,
                ..PutOptions::default()
            };
            store.put_opts(&location, payload, options).await
        })?;
        match result {
            Ok(put) => put.e_tag.map(Version).ok_or_else(|| {
                self.store_error(format!("wrote {path} but the store returned no ETag"))
            }),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. }
                | object_store::Error::NotModified { .. },
            ) => Err(StateError::Conflict {
                path: path.to_owned(),
            }),
            Err(error) => Err(self.object_error(remote, "write", path, &error)),
        }
    }

    pub(super) fn remote_delete(&self, remote: &Remote, path: &str) -> Result<(), StateError> {
        let location = self.object_path(remote, path)?;
        let store = Arc::clone(&remote.store);
        match self.block_on(async move { store.delete(&location).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(self.object_error(remote, "delete", path, &error)),
        }
    }

    /// The documents under the folder `folder` (`prefix` is what the caller asked for,
    /// for messages).
    pub(super) fn remote_list(
        &self,
        remote: &Remote,
        folder: &str,
        prefix: &str,
    ) -> Result<Vec<String>, StateError> {
        let base = &remote.prefix;
        let full = join_key(base, folder);
        let list_prefix =
            if full.is_empty() {
                None
            } else {
                Some(ObjectPath::parse(&full).map_err(|error| {
                    self.store_error(format!("invalid prefix {prefix:?}: {error}"))
                })?)
            };
        let store = Arc::clone(&remote.store);
        let listed = self.block_on(async move {
            store
                .list(list_prefix.as_ref())
                .map_ok(|meta| meta.location.to_string())
                .try_collect::<Vec<String>>()
                .await
        })?;
        let keys = listed.map_err(|error| self.object_error(remote, "list", prefix, &error))?;
        Ok(keys
            .into_iter()
            .filter_map(|key| {
                if base.is_empty() {
                    Some(key)
                } else {
                    key.strip_prefix(base.as_str())
                        .and_then(|rest| rest.strip_prefix('/'))
                        .map(str::to_owned)
                }
            })
            .collect())
    }

    /// Whether any document is under the folder `prefix`: stops at the first one listed.
    pub(super) fn remote_has_any(&self, remote: &Remote, prefix: &str) -> Result<bool, StateError> {
        let folder = prefix.trim_end_matches('/');
        self.check(folder)?;
        let location = ObjectPath::parse(join_key(&remote.prefix, folder))
            .map_err(|error| self.store_error(format!("invalid prefix {prefix:?}: {error}")))?;
        let store = Arc::clone(&remote.store);
        let first = self.block_on(async move {
            let mut listing = store.list(Some(&location));
            listing.try_next().await
        })?;
        first
            .map(|meta| meta.is_some())
            .map_err(|error| self.object_error(remote, "list", prefix, &error))
    }

    fn object_path(&self, remote: &Remote, path: &str) -> Result<ObjectPath, StateError> {
        ObjectPath::parse(join_key(&remote.prefix, path))
            .map_err(|error| self.store_error(format!("invalid document path {path:?}: {error}")))
    }

    fn block_on<F>(&self, future: F) -> Result<F::Output, StateError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        block_on(future).map_err(|error| self.store_error(error.to_string()))
    }

    /// A store error about `path`, its message scrubbed of credentials.
    fn object_error(
        &self,
        remote: &Remote,
        action: &str,
        path: &str,
        error: &object_store::Error,
    ) -> StateError {
        let message = remote.redactor.explain(&error.to_string());
        self.store_error(format!("cannot {action} {path}: {message}"))
    }
}
