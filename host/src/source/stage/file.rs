//! One data file of a stage ([`StageFile`]) and how a listing classifies an object:
//! `*.parquet`, `*.csv[.gz|.bz2|.zst]` and `*.json[.gz|.bz2|.zst]` files are data,
//! extension-less files are data if their first bytes say so (`PAR1`, compressed text, or
//! plain text when `[source] format` names a text format), zero-byte objects and other
//! files are skipped.

use std::fs::File;
use std::io::Read;
use std::path::Path as FsPath;

use chrono::{DateTime, Utc};
use object_store::path::Path as ObjectPath;

use super::StageError;
use crate::bindings::types::SourceFile;
use crate::source::format::{Compression, FileFormat, SNIFF_BYTES, detect_name};
use crate::source::path::{UnloadFileName, parse_file_name, source_file};

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
    /// The file's format and whole-file compression, as its name says ([`detect_name`]; a
    /// name with another extension is read as Parquet) or, once the listing read its first
    /// bytes, its content. `None`: an extension-less file not looked into yet (opening it
    /// does).
    pub format: Option<(FileFormat, Compression)>,
}

impl StageFile {
    pub(super) fn new(
        key: String,
        relative: String,
        url: String,
        size: u64,
        last_modified: DateTime<Utc>,
    ) -> Self {
        let name = parse_file_name(&key);
        let partitions = source_file(&key).partitions;
        let format = name_format(&key);
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
            format,
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

/// What the listing does with an object.
pub(super) enum Kind {
    Data,
    /// No extension: a data file if its first bytes say so ([`sniff`]).
    MaybeData,
    Skip(&'static str),
}

/// The format a key's name says: [`detect_name`]'s; `None` without an extension (the
/// content says); Parquet for any other name (what an event or key list names is read as
/// Parquet, as before text formats were read).
pub(crate) fn name_format(key: &str) -> Option<(FileFormat, Compression)> {
    let name = file_name(key);
    match detect_name(name) {
        Some(format) => Some(format),
        None if !name.contains('.') => None,
        None => Some((FileFormat::Parquet, Compression::None)),
    }
}

pub(super) fn classify(file: &StageFile) -> Kind {
    if file.size == 0 {
        return Kind::Skip("zero-byte object (folder marker or empty file)");
    }
    let name = file_name(&file.key);
    if detect_name(name).is_some() {
        return Kind::Data;
    }
    if !name.contains('.') {
        return Kind::MaybeData;
    }
    Kind::Skip(
        "not a data file (neither `.parquet`, `.csv[.gz|.bz2|.zst]`, `.json[.gz|.bz2|.zst]` \
         nor an extension-less data file)",
    )
}

/// The first [`SNIFF_BYTES`] bytes of a local file (fewer if it is shorter).
pub(super) fn local_head(path: &FsPath) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    File::open(path)?
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

pub(super) fn path_text(path: &FsPath) -> Option<String> {
    path.to_str().map(str::to_owned)
}

pub(super) fn modified(meta: &std::fs::Metadata) -> DateTime<Utc> {
    meta.modified()
        .map(DateTime::<Utc>::from)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// The last segment of a key.
pub(super) fn file_name(key: &str) -> &str {
    key.trim_end_matches('/').rsplit('/').next().unwrap_or(key)
}

/// `key` relative to the folder `prefix` (no trailing `/`; empty = everything).
pub(super) fn relative_key<'a>(key: &'a str, prefix: &str) -> &'a str {
    if prefix.is_empty() {
        return key;
    }
    key.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(key)
}

/// An object_store path for a raw key (no percent-encoding: the key is the key).
pub(super) fn object_path(key: &str, url: &str) -> Result<ObjectPath, StageError> {
    ObjectPath::parse(key).map_err(|error| StageError::Read {
        object: url.to_owned(),
        reason: format!("the key cannot be used: {error}"),
    })
}
