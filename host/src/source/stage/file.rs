//! One data file of a stage ([`StageFile`]) and how a listing classifies an object:
//! `*.parquet` files are data, extension-less files are data if they start with `PAR1`,
//! zero-byte objects and other files are skipped.

use std::fs::File;
use std::path::Path as FsPath;

use chrono::{DateTime, Utc};
use object_store::path::Path as ObjectPath;

use super::StageError;
use crate::bindings::types::SourceFile;
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

/// What the listing does with an object.
pub(super) enum Kind {
    Data,
    /// No extension: a data file if it starts with `PAR1`.
    MaybeData,
    Skip(&'static str),
}

pub(super) fn classify(file: &StageFile) -> Kind {
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

pub(super) fn starts_with_magic(path: &FsPath) -> bool {
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut magic))
        .is_ok()
        && &magic == b"PAR1"
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
