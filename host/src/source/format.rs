//! What kind of file a stage object is: its [`FileFormat`] (Parquet, CSV, JSON) and, for
//! the text formats, the whole-file [`Compression`] around it. Known from the name
//! ([`detect_name`]: `data_0_0_0.csv.gz`, `data_0_0_0.snappy.parquet`) or, for an
//! extension-less `SINGLE = TRUE` file, from its first bytes ([`sniff`]). `[source] format`
//! ([`FormatSetting`]) names the format when the files do not say it, and is required when
//! a stage mixes formats. See `docs/reference/snowflake-unload.md`.

use serde::Deserialize;

/// A stage file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// Apache Parquet (`TYPE = PARQUET`); compression is inside the file, per column chunk.
    Parquet,
    /// Delimited text (`TYPE = CSV`, Snowflake's default unload format).
    Csv,
    /// Newline-delimited JSON, one object per line (`TYPE = JSON`).
    Json,
}

impl FileFormat {
    /// The format's name as config and messages spell it (`parquet`, `csv`, `json`).
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Parquet => "parquet",
            FileFormat::Csv => "csv",
            FileFormat::Json => "json",
        }
    }
}

impl std::fmt::Display for FileFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whole-file compression of a text file (Parquet compresses inside the file instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Plain text.
    None,
    /// gzip (`.gz`; Snowflake's `COMPRESSION = AUTO` for CSV and JSON).
    Gzip,
    /// bzip2 (`.bz2`).
    Bzip2,
    /// Zstandard (`.zst`).
    Zstd,
}

impl Compression {
    /// The name as messages spell it (`none`, `gzip`, `bz2`, `zstd`).
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bz2",
            Compression::Zstd => "zstd",
        }
    }
}

/// `[source] format`: which files of a stage are read, and as what.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatSetting {
    /// From each file's name (or content, for an extension-less file); a stage whose
    /// files are of more than one format is refused, naming a file of each.
    #[default]
    Auto,
    /// Only Parquet files.
    Parquet,
    /// Only CSV files (`[source.csv]`).
    Csv,
    /// Only JSON files (`[source.json]`).
    Json,
}

impl FormatSetting {
    /// The one format this setting names, if it names one.
    pub fn format(self) -> Option<FileFormat> {
        match self {
            FormatSetting::Auto => None,
            FormatSetting::Parquet => Some(FileFormat::Parquet),
            FormatSetting::Csv => Some(FileFormat::Csv),
            FormatSetting::Json => Some(FileFormat::Json),
        }
    }
}

/// The format and compression a file's name says, if it says one: `*.parquet`;
/// `*.csv`, `*.csv.gz`, `*.csv.bz2`, `*.csv.zst`; `*.json`, `*.json.gz`, `*.json.bz2`,
/// `*.json.zst` (also `.ndjson`, `.jsonl`). Case-insensitive; only the last path segment
/// counts.
pub fn detect_name(name: &str) -> Option<(FileFormat, Compression)> {
    let _ = name;
    todo!("integration helper: detect_name")
}

/// The format and compression a file's first bytes say (an extension-less file, e.g. the
/// `data` of `SINGLE = TRUE`): `PAR1` is Parquet; gzip, bzip2 and zstd magic numbers are
/// decompressed (as far as `head` goes) and the text inside is JSON when its first
/// non-blank character is `{`, CSV otherwise. `None` when nothing can be said (empty).
pub fn sniff(head: &[u8]) -> Option<(FileFormat, Compression)> {
    let _ = head;
    todo!("integration helper: sniff")
}
