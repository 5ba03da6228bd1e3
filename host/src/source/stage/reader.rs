//! Opening a stage file: [`StageSource`] (a Parquet footer read through a local file or
//! bounded ranged reads of an object; a CSV or JSON file's columns read from its start,
//! decompressed as a stream) and its batches, [`StageBatches`], whose storage and
//! decompression errors come out typed.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};

use bzip2::read::MultiBzDecoder;
use flate2::read::MultiGzDecoder;
use parquet::file::reader::{ChunkReader, Length};

use super::file::object_path;
use super::{Backend, Stage, StageError, StageFile};
use crate::bindings::types::ColumnSchema;
use crate::source::format::{Compression, FileFormat, SNIFF_BYTES};
use crate::source::object_reader::{ObjectReader, ObjectTarget, OpenMode, ReadStats, StageReader};
use crate::source::parquet::{
    DEFAULT_BATCH_BYTES, ParquetSource, ReadOptions, SourceBatch, SourceBatches, SourceError,
};
use crate::source::text::csv::{CsvBatches, csv_schema};
use crate::source::text::json::{JsonBatches, json_schema};
use crate::source::text::{CsvOptions, TextSchema};

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
        let format = match file.format {
            Some(format) => format,
            None => self.sniff_open(&reader, file, object.as_ref())?,
        };
        let inner = match format {
            (FileFormat::Parquet, _) => {
                let source = ParquetSource::new(reader, file.url.clone()).map_err(|error| {
                    object
                        .as_ref()
                        .and_then(ObjectReader::take_error)
                        .unwrap_or(StageError::Source(error))
                })?;
                Inner::Parquet(source)
            }
            (format, compression) => Inner::Text(Box::new(self.open_text(
                file,
                reader,
                object.as_ref(),
                format,
                compression,
            )?)),
        };
        Ok(StageSource {
            file: file.clone(),
            inner,
            object,
        })
    }

    /// The format of an extension-less file nobody looked into yet, from its first bytes;
    /// Parquet when they say nothing (the Parquet reader then says what is wrong).
    fn sniff_open(
        &self,
        reader: &StageReader,
        file: &StageFile,
        object: Option<&ObjectReader>,
    ) -> Result<(FileFormat, Compression), StageError> {
        let length = reader.len().min(SNIFF_BYTES as u64) as usize;
        let head = reader.get_bytes(0, length).map_err(|error| {
            object
                .and_then(ObjectReader::take_error)
                .unwrap_or_else(|| StageError::Read {
                    object: file.url.clone(),
                    reason: error.to_string(),
                })
        })?;
        Ok(self
            .formats
            .content_format(&head)
            .unwrap_or((FileFormat::Parquet, Compression::None)))
    }

    /// Opens a CSV or JSON file: reads its columns from its start.
    fn open_text(
        &self,
        file: &StageFile,
        reader: StageReader,
        object: Option<&ObjectReader>,
        format: FileFormat,
        compression: Compression,
    ) -> Result<TextSource, StageError> {
        let mut text = TextSource {
            name: file.url.clone(),
            local: matches!(self.backend, Backend::Local).then(|| file.key.clone()),
            reader,
            format,
            compression,
            csv: Arc::clone(&self.formats.csv),
            schema: None,
            columns_from: self.formats.columns_from(format),
        };
        let schema = match format {
            FileFormat::Csv => {
                let mut stream = text.stream()?;
                let schema = csv_schema(&mut stream.read, &text.name, &self.formats.csv);
                schema.map_err(|error| stream.error(object, error))?
            }
            FileFormat::Json if !self.formats.json.columns.is_empty() => {
                json_schema(&mut std::io::empty(), &text.name, &self.formats.json)?
            }
            FileFormat::Json => match self.formats.json_schema.get() {
                Some(schema) => Arc::clone(schema),
                None => {
                    let mut stream = text.stream()?;
                    let schema = json_schema(&mut stream.read, &text.name, &self.formats.json)
                        .map_err(|error| stream.error(object, error))?;
                    Arc::clone(self.formats.json_schema.get_or_init(|| schema))
                }
            },
            FileFormat::Parquet => unreachable!("Parquet files are not opened as text"),
        };
        text.schema = Some(schema);
        Ok(text)
    }
}

/// What an open file reads.
enum Inner {
    Parquet(ParquetSource<StageReader>),
    Text(Box<TextSource>),
}

/// An open CSV or JSON file: where its bytes come from, and its columns.
struct TextSource {
    /// How errors name the file.
    name: String,
    /// A local file's path: each stream opens it anew.
    local: Option<String>,
    /// An object's reader (each stream reads it from the start), or the local file.
    reader: StageReader,
    format: FileFormat,
    compression: Compression,
    csv: Arc<CsvOptions>,
    /// The columns (set once read at open).
    schema: Option<Arc<TextSchema>>,
    /// Where the columns come from, in words.
    columns_from: String,
}

/// A sequential, decompressed read of a text file, and where its errors are kept.
struct TextStream {
    read: Box<dyn BufRead + Send>,
    name: String,
    compression: Compression,
    errors: Arc<StreamErrors>,
}

/// The first error of each layer of a [`TextStream`], so that the reader's error comes
/// out typed: the file's bytes (storage, disk) or their decompression.
#[derive(Default)]
struct StreamErrors {
    raw: Mutex<Option<String>>,
    decompress: Mutex<Option<String>>,
}

impl StreamErrors {
    fn keep(slot: &Mutex<Option<String>>, error: &std::io::Error) {
        let mut slot = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if slot.is_none() {
            *slot = Some(error.to_string());
        }
    }

    fn take(slot: &Mutex<Option<String>>) -> Option<String> {
        slot.lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

/// A layer of a [`TextStream`] that keeps its first error in a slot.
struct Keep<R> {
    read: R,
    errors: Arc<StreamErrors>,
    raw: bool,
}

impl<R: Read> Read for Keep<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        self.read.read(out).inspect_err(|error| {
            let slot = if self.raw {
                &self.errors.raw
            } else {
                &self.errors.decompress
            };
            StreamErrors::keep(slot, error);
        })
    }
}

/// Bytes of decompressed text buffered ahead of the reader.
const TEXT_BUFFER_BYTES: usize = 256 * 1024;

impl TextSource {
    /// The file from its start, decompressed.
    fn stream(&self) -> Result<TextStream, StageError> {
        let raw: Box<dyn Read + Send> = match &self.local {
            Some(path) => Box::new(File::open(path).map_err(|error| {
                if error.kind() == std::io::ErrorKind::NotFound {
                    StageError::Vanished {
                        object: self.name.clone(),
                    }
                } else {
                    StageError::Read {
                        object: self.name.clone(),
                        reason: error.to_string(),
                    }
                }
            })?),
            None => Box::new(self.reader.get_read(0).map_err(|error| StageError::Read {
                object: self.name.clone(),
                reason: error.to_string(),
            })?),
        };
        let errors = Arc::new(StreamErrors::default());
        let raw = Keep {
            read: raw,
            errors: Arc::clone(&errors),
            raw: true,
        };
        let decompressed: Box<dyn Read + Send> = match self.compression {
            Compression::None => Box::new(raw),
            Compression::Gzip => Box::new(MultiGzDecoder::new(BufReader::new(raw))),
            Compression::Bzip2 => Box::new(MultiBzDecoder::new(BufReader::new(raw))),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::new(raw).map_err(|error| {
                    StageError::Source(SourceError::Decompress {
                        file: self.name.clone(),
                        compression: self.compression.as_str(),
                        reason: error.to_string(),
                    })
                })?)
            }
        };
        let read = Keep {
            read: decompressed,
            errors: Arc::clone(&errors),
            raw: false,
        };
        Ok(TextStream {
            read: Box::new(BufReader::with_capacity(TEXT_BUFFER_BYTES, read)),
            name: self.name.clone(),
            compression: self.compression,
            errors,
        })
    }
}

impl TextStream {
    /// The typed error behind `error`, which the text reader returned: a storage error
    /// the object reader kept, a read error of the file, a decompression error, or
    /// `error` itself.
    fn error(&self, object: Option<&ObjectReader>, error: SourceError) -> StageError {
        typed_error(&self.errors, &self.name, self.compression, object, error)
    }
}

fn typed_error(
    errors: &StreamErrors,
    name: &str,
    compression: Compression,
    object: Option<&ObjectReader>,
    error: SourceError,
) -> StageError {
    if error.is_row_error() {
        return StageError::Source(error);
    }
    if let Some(error) = object.and_then(ObjectReader::take_error) {
        return error;
    }
    if let Some(reason) = StreamErrors::take(&errors.raw) {
        return StageError::Read {
            object: name.to_owned(),
            reason,
        };
    }
    if let Some(reason) = StreamErrors::take(&errors.decompress) {
        return StageError::Source(SourceError::Decompress {
            file: name.to_owned(),
            compression: compression.as_str(),
            reason,
        });
    }
    StageError::Source(error)
}

/// An open stage file: a Parquet file's footer is read, a text file's columns;
/// [`StageSource::batches`] reads its rows. `Send`: it can move to (and be read on) another
/// thread.
pub struct StageSource {
    file: StageFile,
    inner: Inner,
    object: Option<ObjectReader>,
}

impl fmt::Debug for StageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StageSource")
            .field("file", &self.file.url)
            .field("format", &self.format())
            .field("rows", &self.num_rows())
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
        match &self.inner {
            Inner::Parquet(source) => source.name(),
            Inner::Text(text) => &text.name,
        }
    }

    /// The file's format.
    pub fn format(&self) -> FileFormat {
        match &self.inner {
            Inner::Parquet(_) => FileFormat::Parquet,
            Inner::Text(text) => text.format,
        }
    }

    /// The whole-file compression of a text file (`None` for Parquet, which compresses
    /// inside).
    pub fn compression(&self) -> Compression {
        match &self.inner {
            Inner::Parquet(_) => Compression::None,
            Inner::Text(text) => text.compression,
        }
    }

    /// The Parquet file: footer, schemas, row groups (`None` for CSV and JSON).
    pub fn parquet(&self) -> Option<&ParquetSource<StageReader>> {
        match &self.inner {
            Inner::Parquet(source) => Some(source),
            Inner::Text(_) => None,
        }
    }

    /// A text file's columns (`None` for Parquet).
    pub fn text_schema(&self) -> Option<&Arc<TextSchema>> {
        match &self.inner {
            Inner::Parquet(_) => None,
            Inner::Text(text) => text.schema.as_ref(),
        }
    }

    /// Where a text file's columns come from (declared, the header line, `_COL_n`,
    /// inferred), in words; `None` for Parquet.
    pub fn columns_from(&self) -> Option<&str> {
        match &self.inner {
            Inner::Parquet(_) => None,
            Inner::Text(text) => Some(&text.columns_from),
        }
    }

    /// Rows in the file, from the Parquet footer; `None` when only reading the file says
    /// it (CSV, JSON).
    pub fn num_rows(&self) -> Option<u64> {
        match &self.inner {
            Inner::Parquet(source) => Some(source.num_rows()),
            Inner::Text(_) => None,
        }
    }

    /// The file's columns as the plugin contract describes them.
    pub fn contract_schema(&self) -> Result<Vec<ColumnSchema>, StageError> {
        match &self.inner {
            Inner::Parquet(source) => Ok(source.contract_schema()?),
            Inner::Text(text) => Ok(text
                .schema
                .as_ref()
                .map(|schema| schema.contract.clone())
                .unwrap_or_default()),
        }
    }

    /// Reads the rows in batches: a Parquet file one row group at a time (see
    /// [`ParquetSource::batches`]), a text file as one stream from its start (decompressed
    /// as it is read; a new stream for each call). Storage errors during the read come out
    /// typed ([`StageError::Vanished`], [`StageError::Changed`], [`StageError::Read`]).
    pub fn batches(&self, options: &ReadOptions) -> Result<StageBatches, StageError> {
        let batches = match &self.inner {
            Inner::Parquet(source) => BatchesInner::Parquet(Box::new(source.batches(options)?)),
            Inner::Text(text) => {
                if options.batch_rows == 0 {
                    return Err(StageError::Source(SourceError::Options {
                        file: text.name.clone(),
                        reason: "the batch size must be at least 1 row".into(),
                    }));
                }
                let stream = text.stream()?;
                BatchesInner::Text(Box::new(TextBatches {
                    errors: Arc::clone(&stream.errors),
                    name: text.name.clone(),
                    compression: text.compression,
                    state: TextState::Pending(Box::new(PendingText {
                        stream,
                        format: text.format,
                        csv: Arc::clone(&text.csv),
                        schema: text.schema.clone(),
                        options: options.clone(),
                    })),
                    max_bytes: DEFAULT_BATCH_BYTES,
                }))
            }
        };
        Ok(StageBatches {
            batches,
            object: self.object.clone(),
        })
    }

    /// The ranged reads so far (`None` for a local file).
    pub fn read_stats(&self) -> Option<ReadStats> {
        self.object.as_ref().map(ObjectReader::stats)
    }
}

/// The batches of a [`StageSource`], in row order. After an error the iterator ends,
/// except after a row error ([`SourceError::Row`], text files): the next row follows.
pub struct StageBatches {
    batches: BatchesInner,
    object: Option<ObjectReader>,
}

enum BatchesInner {
    Parquet(Box<SourceBatches<StageReader>>),
    Text(Box<TextBatches>),
}

/// A text file's batches: the reader is built at the first `next` (when the byte bound
/// is known).
struct TextBatches {
    errors: Arc<StreamErrors>,
    name: String,
    compression: Compression,
    state: TextState,
    max_bytes: usize,
}

enum TextState {
    Pending(Box<PendingText>),
    Csv(Box<CsvBatches>),
    Json(Box<JsonBatches>),
    Done,
}

struct PendingText {
    stream: TextStream,
    format: FileFormat,
    csv: Arc<CsvOptions>,
    schema: Option<Arc<TextSchema>>,
    options: ReadOptions,
}

impl TextBatches {
    fn next(&mut self) -> Option<Result<SourceBatch, SourceError>> {
        if let TextState::Pending(_) = self.state {
            let TextState::Pending(pending) = std::mem::replace(&mut self.state, TextState::Done)
            else {
                return None;
            };
            let PendingText {
                stream,
                format,
                csv,
                schema,
                options,
            } = *pending;
            let schema = schema?;
            self.state = match format {
                FileFormat::Csv => TextState::Csv(Box::new(CsvBatches::new(
                    stream.read,
                    stream.name,
                    csv,
                    schema,
                    &options,
                    self.max_bytes,
                ))),
                _ => TextState::Json(Box::new(JsonBatches::new(
                    stream.read,
                    stream.name,
                    schema,
                    &options,
                    self.max_bytes,
                ))),
            };
        }
        match &mut self.state {
            TextState::Csv(batches) => batches.next(),
            TextState::Json(batches) => batches.next(),
            TextState::Pending(_) | TextState::Done => None,
        }
    }
}

impl StageBatches {
    /// Bounds each batch to about `bytes` ([`SourceBatches::max_bytes`]; text files: of
    /// text read).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.batches = match self.batches {
            BatchesInner::Parquet(batches) => {
                BatchesInner::Parquet(Box::new(batches.max_bytes(bytes)))
            }
            BatchesInner::Text(mut text) => {
                text.max_bytes = bytes;
                BatchesInner::Text(text)
            }
        };
        self
    }
}

impl Iterator for StageBatches {
    type Item = Result<SourceBatch, StageError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.batches {
            BatchesInner::Parquet(batches) => Some(batches.next()?.map_err(|error| {
                self.object
                    .as_ref()
                    .and_then(ObjectReader::take_error)
                    .unwrap_or(StageError::Source(error))
            })),
            BatchesInner::Text(text) => Some(text.next()?.map_err(|error| {
                typed_error(
                    &text.errors,
                    &text.name,
                    text.compression,
                    self.object.as_ref(),
                    error,
                )
            })),
        }
    }
}
