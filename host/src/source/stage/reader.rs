//! Opening a stage file: [`StageSource`] (the footer read, through a local file or bounded
//! ranged reads of an object) and its batches, [`StageBatches`], whose storage errors come
//! out typed.

use std::fmt;
use std::fs::File;
use std::sync::Arc;

use super::file::object_path;
use super::{Backend, Stage, StageError, StageFile};
use crate::bindings::types::ColumnSchema;
use crate::source::object_reader::{ObjectReader, ObjectTarget, OpenMode, ReadStats, StageReader};
use crate::source::parquet::{ParquetSource, ReadOptions, SourceBatch, SourceBatches};

impl Stage {
    pub(super) fn open_with(
        &self,
        file: &StageFile,
        mode: OpenMode,
    ) -> Result<StageSource, StageError> {
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
                .unwrap_or(StageError::Source(error))
        })?;
        Ok(StageSource {
            file: file.clone(),
            source,
            object,
        })
    }
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

    /// Rows in the file, from the Parquet footer; `None` when only reading the file says
    /// it (CSV, JSON).
    pub fn num_rows(&self) -> Option<u64> {
        Some(self.source.num_rows())
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
                .unwrap_or(StageError::Source(error))
        }))
    }
}
