//! Reading one object as a Parquet [`ChunkReader`] through ranged reads of bounded size.
//!
//! The Parquet decoder asks for bytes in small pieces: a page header through
//! [`ChunkReader::get_read`], then the page through [`ChunkReader::get_bytes`], column after
//! column. An [`ObjectReader`] turns those into few, large ranged reads:
//!
//! - at open it fetches the object's tail (the footer; 64 KiB), or the whole object when it
//!   is no larger than one read window (Snowflake's default 16 MB files: one request);
//! - it learns the column chunks' byte ranges from the footer, and serves a read inside a
//!   column chunk from a **window**: one ranged read from the requested offset to the end
//!   of the chunk, at most [`ReadTuning::window_bytes`] long (less when the file has many
//!   columns, so that one window per column fits the buffer);
//! - windows are kept per column chunk and dropped least-recently-used beyond
//!   [`ReadTuning::buffer_bytes`]: memory per open file is bounded by that, whatever the
//!   file's size (a 5 GB file is never downloaded whole).
//!
//! Every ranged read passes the object's size from the listing (never a suffix range, which
//! Azure refuses) and, when the listing gave one, its ETag (`If-Match`): an object replaced
//! since the listing is [`StageError::Changed`], not a mix of two files. Transient errors
//! are retried with back-off inside object_store ([`object_store::RetryConfig`]). The
//! object_store futures run on one process-wide I/O runtime ([`block_on`]), so the reader
//! works from any thread, including plain worker threads; it is `Send + Sync`.

use std::io::Read;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::{Buf, Bytes, BytesMut};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaDataReader;
use parquet::file::reader::{ChunkReader, Length};

use super::stage::StageError;
use crate::storage::{Redactor, block_on};

/// Bytes fetched from the end of an object to read its footer in one request.
const FOOTER_PREFETCH: u64 = 64 * 1024;
/// Smallest read window when a file has very many columns.
const MIN_WINDOW: u64 = 256 * 1024;
/// Bytes fetched at once outside any column chunk (page headers of damaged files).
const UNMAPPED_READ: u64 = 64 * 1024;

/// Sizes of an [`ObjectReader`]'s reads and buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadTuning {
    /// The longest ranged read (default 16 MiB); an object up to this size is read whole.
    pub window_bytes: u64,
    /// The most bytes buffered per open file (default 64 MiB).
    pub buffer_bytes: u64,
}

impl Default for ReadTuning {
    fn default() -> Self {
        Self {
            window_bytes: 16 * 1024 * 1024,
            buffer_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What an [`ObjectReader`] has requested so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Ranged reads sent.
    pub requests: u64,
    /// Bytes received.
    pub bytes_fetched: u64,
    /// The longest single ranged read, in bytes.
    pub max_request_bytes: u64,
    /// The most bytes the reader held buffered at once.
    pub peak_buffered_bytes: u64,
}

/// The object an [`ObjectReader`] reads.
pub(crate) struct ObjectTarget {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) location: ObjectPath,
    /// The size from the listing.
    pub(crate) size: u64,
    /// The ETag from the listing.
    pub(crate) e_tag: Option<String>,
    /// How errors name the object.
    pub(crate) name: String,
    pub(crate) redactor: Arc<Redactor>,
}

/// What an object is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenMode {
    /// Reading rows: small objects are fetched whole.
    Read,
    /// The footer only.
    Footer,
}

/// A [`ChunkReader`] over one object in a store. Cheap to clone (clones share the buffer).
#[derive(Clone)]
pub struct ObjectReader {
    inner: Arc<Inner>,
}

struct Inner {
    target: ObjectTarget,
    tuning: ReadTuning,
    /// Column chunk byte ranges, sorted by start (from the footer).
    regions: OnceLock<Vec<Range<u64>>>,
    /// The read window once the column count is known.
    window: AtomicU64,
    cache: Mutex<Cache>,
    /// The first storage error, for the caller to get back typed.
    error: Mutex<Option<StageError>>,
}

#[derive(Default)]
struct Cache {
    segments: Vec<Segment>,
    buffered: u64,
    clock: u64,
    stats: ReadStats,
}

struct Segment {
    start: u64,
    data: Bytes,
    /// The column chunk it belongs to (`None`: the footer, the whole object, …).
    region: Option<usize>,
    last_used: u64,
}

/// What the buffer holds of a requested range.
enum Lookup {
    /// All of it.
    Hit(Bytes),
    /// Its beginning.
    Partial(Bytes),
    Miss,
}

impl Segment {
    fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }
}

impl ObjectReader {
    /// Opens `target`: fetches its footer (or all of it when small and `mode` is
    /// [`OpenMode::Read`]) and maps its column chunks. A missing object is
    /// [`StageError::Vanished`].
    pub(crate) fn open(
        target: ObjectTarget,
        tuning: ReadTuning,
        mode: OpenMode,
    ) -> Result<Self, StageError> {
        let tuning = ReadTuning {
            window_bytes: tuning.window_bytes.max(1),
            buffer_bytes: tuning.buffer_bytes.max(tuning.window_bytes.max(1)),
        };
        let size = target.size;
        let reader = Self {
            inner: Arc::new(Inner {
                target,
                tuning,
                regions: OnceLock::new(),
                window: AtomicU64::new(tuning.window_bytes),
                cache: Mutex::new(Cache::default()),
                error: Mutex::new(None),
            }),
        };
        if size == 0 {
            // The Parquet reader reports an empty file; nothing to fetch.
            return Ok(reader);
        }
        let prefetch = if mode == OpenMode::Read && size <= tuning.window_bytes {
            0..size
        } else {
            size.saturating_sub(FOOTER_PREFETCH)..size
        };
        let data = reader.inner.fetch(prefetch.clone())?;
        reader.inner.insert(prefetch.start, data, None);
        reader.map_regions();
        match reader.take_error() {
            Some(error) => Err(error),
            None => Ok(reader),
        }
    }

    /// Reads the footer from the buffer and records where the column chunks are. A footer
    /// that does not parse is left to the Parquet reader to report.
    fn map_regions(&self) {
        let parsed = catch_unwind(AssertUnwindSafe(|| {
            ParquetMetaDataReader::new().parse_and_finish(self)
        }));
        let Ok(Ok(metadata)) = parsed else {
            return;
        };
        let mut regions = Vec::new();
        let mut columns = 1;
        for group in metadata.row_groups() {
            columns = columns.max(group.columns().len() as u64);
            for column in group.columns() {
                let (start, len) = column.byte_range();
                if len > 0 && start.saturating_add(len) <= self.inner.target.size {
                    regions.push(start..start + len);
                }
            }
        }
        regions.sort_by_key(|region| region.start);
        let tuning = self.inner.tuning;
        let window = (tuning.buffer_bytes / columns)
            .clamp(MIN_WINDOW.min(tuning.window_bytes), tuning.window_bytes);
        self.inner.window.store(window, Ordering::Relaxed);
        let _ = self.inner.regions.set(regions);
    }

    /// What the reader has requested so far.
    pub fn stats(&self) -> ReadStats {
        self.inner.lock_cache().stats
    }

    /// The first storage error a read ran into (taken: a second call returns `None`).
    pub(crate) fn take_error(&self) -> Option<StageError> {
        self.inner
            .error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    fn parquet_error(&self, error: StageError) -> ParquetError {
        let message = error.to_string();
        let mut slot = self
            .inner
            .error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if slot.is_none() {
            *slot = Some(error);
        }
        ParquetError::External(message.into())
    }
}

impl Inner {
    fn lock_cache(&self) -> MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `len` bytes at `start`.
    fn bytes(&self, start: u64, len: u64) -> Result<Bytes, StageError> {
        let end = start + len;
        if len == 0 {
            return Ok(Bytes::new());
        }
        let partial = match self.lookup(start, end) {
            Lookup::Hit(bytes) => return Ok(bytes),
            Lookup::Partial(bytes) => bytes,
            Lookup::Miss => Bytes::new(),
        };
        // A page that straddles the end of a window: keep the part already here and fetch
        // the rest (with the next window), instead of fetching the part again.
        let fetch_start = start + partial.len() as u64;
        let (range, region) = self.plan(fetch_start, end);
        if region.is_none() && range.end - range.start > self.tuning.buffer_bytes {
            // Outside the column chunks only the footer is read: a damaged length field
            // must not turn into a multi-gigabyte request.
            return Err(StageError::Source(super::parquet::SourceError::Corrupt {
                file: self.target.name.clone(),
                reason: format!(
                    "a read of {} bytes outside the column chunks (a footer that large is \
                     damaged)",
                    range.end - range.start
                ),
            }));
        }
        let fetched = self.fetch(range.clone())?;
        let (segment_start, data) = if partial.is_empty() {
            (range.start, fetched)
        } else {
            let mut joined = BytesMut::with_capacity(partial.len() + fetched.len());
            joined.extend_from_slice(&partial);
            joined.extend_from_slice(&fetched);
            (start, joined.freeze())
        };
        let wanted = data.slice((start - segment_start) as usize..(end - segment_start) as usize);
        self.insert(segment_start, data, region);
        Ok(wanted)
    }

    /// At least one byte at `start` (up to the end of what is buffered there); empty at
    /// the end of the object.
    fn bytes_from(&self, start: u64) -> Result<Bytes, StageError> {
        let size = self.target.size;
        if start >= size {
            return Ok(Bytes::new());
        }
        {
            let mut cache = self.lock_cache();
            cache.clock += 1;
            let clock = cache.clock;
            if let Some(segment) = cache
                .segments
                .iter_mut()
                .find(|s| s.start <= start && start < s.end())
            {
                segment.last_used = clock;
                return Ok(segment.data.slice((start - segment.start) as usize..));
            }
        }
        let (range, region) = self.plan(start, (start + UNMAPPED_READ).min(size));
        let data = self.fetch(range.clone())?;
        let wanted = data.slice((start - range.start) as usize..);
        self.insert(range.start, data, region);
        Ok(wanted)
    }

    /// The buffered bytes `start..end`, or those from `start` to the end of the segment
    /// holding `start`.
    fn lookup(&self, start: u64, end: u64) -> Lookup {
        let mut cache = self.lock_cache();
        cache.clock += 1;
        let clock = cache.clock;
        let mut partial = None;
        for segment in cache.segments.iter_mut() {
            if segment.start <= start && start < segment.end() {
                segment.last_used = clock;
                let offset = (start - segment.start) as usize;
                if end <= segment.end() {
                    let end = (end - segment.start) as usize;
                    return Lookup::Hit(segment.data.slice(offset..end));
                }
                partial = Some(segment.data.slice(offset..));
            }
        }
        partial.map_or(Lookup::Miss, Lookup::Partial)
    }

    /// The range to fetch for a miss on `start..end`: inside a column chunk, a window from
    /// `start` to the chunk's end (at most the window size); elsewhere just what is asked.
    fn plan(&self, start: u64, end: u64) -> (Range<u64>, Option<usize>) {
        let regions = self.regions.get().map(Vec::as_slice).unwrap_or_default();
        let index = regions.partition_point(|region| region.start <= start);
        if let Some(index) = index.checked_sub(1)
            && start < regions[index].end
        {
            let window = self.window.load(Ordering::Relaxed);
            let window_end = regions[index].end.min(start.saturating_add(window));
            return (start..end.max(window_end), Some(index));
        }
        (start..end, None)
    }

    /// One ranged read, with the listing's ETag as a precondition.
    fn fetch(&self, range: Range<u64>) -> Result<Bytes, StageError> {
        let store = Arc::clone(&self.target.store);
        let location = self.target.location.clone();
        let options = GetOptions::default()
            .with_range(Some(GetRange::Bounded(range.clone())))
            .with_if_match(self.target.e_tag.clone());
        let result = block_on(async move {
            let result = store.get_opts(&location, options).await?;
            result.bytes().await
        })?;
        let data = result.map_err(|error| self.storage_error(error))?;
        let expected = range.end - range.start;
        if data.len() as u64 != expected {
            return Err(StageError::Changed {
                object: self.target.name.clone(),
                reason: format!(
                    "a read of bytes {}..{} returned {} bytes: the object is no longer the {} \
                     bytes listed",
                    range.start,
                    range.end,
                    data.len(),
                    self.target.size
                ),
            });
        }
        let mut cache = self.lock_cache();
        cache.stats.requests += 1;
        cache.stats.bytes_fetched += expected;
        cache.stats.max_request_bytes = cache.stats.max_request_bytes.max(expected);
        Ok(data)
    }

    fn storage_error(&self, error: object_store::Error) -> StageError {
        let object = self.target.name.clone();
        match error {
            object_store::Error::NotFound { .. } => StageError::Vanished { object },
            object_store::Error::Precondition { .. } => {
                // Azure answers a conditional read of a deleted blob with 412 too.
                let store = Arc::clone(&self.target.store);
                let location = self.target.location.clone();
                let head = block_on(async move { store.head(&location).await });
                if let Ok(Err(object_store::Error::NotFound { .. })) = head {
                    return StageError::Vanished { object };
                }
                StageError::Changed {
                    object,
                    reason: "its ETag no longer matches the listing's (it was overwritten)".into(),
                }
            }
            other => {
                let message = self.target.redactor.explain(&other.to_string());
                // A range past the end of the object: it shrank since the listing.
                if message.contains("416") || message.contains("InvalidRange") {
                    StageError::Changed {
                        object,
                        reason: format!("it is shorter than the {} bytes listed", self.target.size),
                    }
                } else {
                    StageError::Read {
                        object,
                        reason: message,
                    }
                }
            }
        }
    }

    /// Buffers a fetched segment: replaces the same column chunk's previous window and
    /// drops least-recently-used segments beyond the buffer size.
    fn insert(&self, start: u64, data: Bytes, region: Option<usize>) {
        let len = data.len() as u64;
        let mut cache = self.lock_cache();
        if region.is_some() {
            let mut freed = 0;
            cache.segments.retain(|segment| {
                let same = segment.region == region;
                if same {
                    freed += segment.data.len() as u64;
                }
                !same
            });
            cache.buffered -= freed;
        }
        while cache.buffered + len > self.tuning.buffer_bytes && !cache.segments.is_empty() {
            let oldest = cache
                .segments
                .iter()
                .enumerate()
                .min_by_key(|(_, segment)| segment.last_used)
                .map(|(index, _)| index)
                .unwrap_or(0);
            let removed = cache.segments.swap_remove(oldest);
            cache.buffered -= removed.data.len() as u64;
        }
        cache.clock += 1;
        let last_used = cache.clock;
        cache.segments.push(Segment {
            start,
            data,
            region,
            last_used,
        });
        cache.buffered += len;
        cache.stats.peak_buffered_bytes = cache.stats.peak_buffered_bytes.max(cache.buffered);
    }
}

impl Length for ObjectReader {
    fn len(&self) -> u64 {
        self.inner.target.size
    }
}

impl ChunkReader for ObjectReader {
    type T = ObjectRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<ObjectRead> {
        Ok(ObjectRead {
            reader: self.clone(),
            position: start,
            buffer: Bytes::new(),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let size = self.inner.target.size;
        let end = start.checked_add(length as u64);
        if end.is_none_or(|end| end > size) {
            return Err(ParquetError::EOF(format!(
                "bytes {start}..{} are past the end of the {size}-byte object",
                start.saturating_add(length as u64)
            )));
        }
        self.inner
            .bytes(start, length as u64)
            .map_err(|error| self.parquet_error(error))
    }
}

/// Sequential reading from an offset of an [`ObjectReader`] (page headers).
pub struct ObjectRead {
    reader: ObjectReader,
    position: u64,
    buffer: Bytes,
}

impl Read for ObjectRead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.buffer.is_empty() {
            self.buffer = self
                .reader
                .inner
                .bytes_from(self.position)
                .map_err(|error| std::io::Error::other(self.reader.parquet_error(error)))?;
            if self.buffer.is_empty() {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buffer.len());
        out[..n].copy_from_slice(&self.buffer[..n]);
        self.buffer.advance(n);
        self.position += n as u64;
        Ok(n)
    }
}

/// The reader of a stage file: a local file or an object.
pub enum StageReader {
    /// A local file.
    File(std::fs::File),
    /// An object in a store.
    Object(ObjectReader),
}

impl Length for StageReader {
    fn len(&self) -> u64 {
        match self {
            StageReader::File(file) => Length::len(file),
            StageReader::Object(object) => object.len(),
        }
    }
}

impl ChunkReader for StageReader {
    type T = StageRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<StageRead> {
        Ok(match self {
            StageReader::File(file) => StageRead::File(file.get_read(start)?),
            StageReader::Object(object) => StageRead::Object(object.get_read(start)?),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        match self {
            StageReader::File(file) => file.get_bytes(start, length),
            StageReader::Object(object) => object.get_bytes(start, length),
        }
    }
}

/// Sequential reading of a [`StageReader`].
pub enum StageRead {
    /// From a local file.
    File(<std::fs::File as ChunkReader>::T),
    /// From an object.
    Object(ObjectRead),
}

impl Read for StageRead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        match self {
            StageRead::File(read) => read.read(out),
            StageRead::Object(read) => read.read(out),
        }
    }
}
