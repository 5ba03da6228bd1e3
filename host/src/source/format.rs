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
    let last = name
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(name)
        .to_ascii_lowercase();
    if last.ends_with(".parquet") && last.len() > ".parquet".len() {
        return Some((FileFormat::Parquet, Compression::None));
    }
    let (stem, compression) = match last.rsplit_once('.') {
        Some((stem, "gz" | "gzip")) => (stem, Compression::Gzip),
        Some((stem, "bz2")) => (stem, Compression::Bzip2),
        Some((stem, "zst" | "zstd")) => (stem, Compression::Zstd),
        _ => (last.as_str(), Compression::None),
    };
    let (base, extension) = stem.rsplit_once('.')?;
    if base.is_empty() {
        return None;
    }
    let format = match extension {
        "csv" => FileFormat::Csv,
        "json" | "ndjson" | "jsonl" => FileFormat::Json,
        _ => return None,
    };
    Some((format, compression))
}

/// The first bytes of a file [`sniff`] looks at (what listing reads of an extension-less
/// object): enough for a first zstd block (at most 128 KiB of text) of unload data.
pub const SNIFF_BYTES: usize = 64 * 1024;
/// Decompressed bytes [`sniff`] looks into for the first non-blank character.
const SNIFF_TEXT_BYTES: usize = 1024;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const BZIP2_MAGIC: &[u8] = b"BZh";
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const PARQUET_MAGIC: &[u8] = b"PAR1";

/// The format and compression a file's first bytes say (an extension-less file, e.g. the
/// `data` of `SINGLE = TRUE`): `PAR1` is Parquet; gzip, bzip2 and zstd magic numbers are
/// decompressed (as far as `head` goes) and the text inside is JSON when its first
/// non-blank character is `{`, CSV otherwise. `None` when nothing can be said (empty).
///
/// bzip2 compresses whole blocks of 100–900 kB (zstd: up to 128 KiB), so a head of
/// [`SNIFF_BYTES`] may decompress to nothing: such a file is taken as CSV (`[source] format
/// = "json"` says otherwise).
pub fn sniff(head: &[u8]) -> Option<(FileFormat, Compression)> {
    if head.is_empty() {
        return None;
    }
    if head.starts_with(PARQUET_MAGIC) {
        return Some((FileFormat::Parquet, Compression::None));
    }
    let (compression, text) = if head.starts_with(GZIP_MAGIC) {
        let decoder = flate2::read::MultiGzDecoder::new(head);
        (Compression::Gzip, read_some(decoder))
    } else if head.starts_with(BZIP2_MAGIC) {
        let decoder = bzip2::read::MultiBzDecoder::new(head);
        (Compression::Bzip2, read_some(decoder))
    } else if head.starts_with(ZSTD_MAGIC) {
        let text = match zstd::stream::read::Decoder::new(head) {
            Ok(decoder) => read_some(decoder),
            Err(_) => Vec::new(),
        };
        (Compression::Zstd, text)
    } else {
        (Compression::None, head.to_vec())
    };
    let first = text.iter().find(|byte| !byte.is_ascii_whitespace());
    let first = match (first, compression) {
        // A UTF-8 byte-order mark before the text.
        (Some(0xef), _) => text
            .strip_prefix(&[0xef, 0xbb, 0xbf])
            .and_then(|rest| rest.iter().find(|byte| !byte.is_ascii_whitespace())),
        (first, _) => first,
    };
    match first {
        Some(b'{') => Some((FileFormat::Json, compression)),
        Some(_) => Some((FileFormat::Csv, compression)),
        // Compressed, but nothing decompressed from the head (or blank text).
        None if compression != Compression::None => Some((FileFormat::Csv, compression)),
        None => None,
    }
}

/// Up to [`SNIFF_TEXT_BYTES`] bytes of `read`, stopping at its end or first error (a head
/// cut off mid-stream ends in one).
fn read_some(read: impl std::io::Read) -> Vec<u8> {
    let mut out = Vec::with_capacity(SNIFF_TEXT_BYTES);
    let mut limited = read.take(SNIFF_TEXT_BYTES as u64);
    let mut buffer = [0u8; 256];
    loop {
        match std::io::Read::read(&mut limited, &mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buffer[..n]),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn names_say_format_and_compression() {
        use Compression::*;
        use FileFormat::*;
        let cases: &[(&str, Option<(FileFormat, Compression)>)] = &[
            ("data_0_0_0.snappy.parquet", Some((Parquet, None))),
            ("a/b/RESULT.PARQUET", Some((Parquet, None))),
            ("data_0_0_0.csv", Some((Csv, None))),
            ("date=2024-05-01/data_0_0_0.csv.gz", Some((Csv, Gzip))),
            ("data_0_0_0.CSV.GZ", Some((Csv, Gzip))),
            ("data_0_0_0.csv.bz2", Some((Csv, Bzip2))),
            ("data_0_0_0.csv.zst", Some((Csv, Zstd))),
            ("data_0_0_0.json", Some((Json, None))),
            ("data_0_0_0.json.gz", Some((Json, Gzip))),
            ("data_0_0_0.json.bz2", Some((Json, Bzip2))),
            ("data_0_0_0.json.zst", Some((Json, Zstd))),
            ("rows.ndjson", Some((Json, None))),
            ("rows.jsonl.gz", Some((Json, Gzip))),
            ("data", Option::None),
            (".parquet", Option::None),
            (".csv.gz", Option::None),
            ("data_0_0_0.gz", Option::None),
            ("data_0_0_0.txt", Option::None),
            ("_SUCCESS", Option::None),
            ("a.csv/data", Option::None),
            ("data.csv.gz.tmp", Option::None),
        ];
        for (name, expected) in cases {
            assert_eq!(detect_name(name), *expected, "{name}");
        }
    }

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text).unwrap();
        encoder.finish().unwrap()
    }

    fn bzip2(text: &[u8]) -> Vec<u8> {
        let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        encoder.write_all(text).unwrap();
        encoder.finish().unwrap()
    }

    fn zstd(text: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(text, 1).unwrap()
    }

    #[test]
    fn content_says_format_and_compression() {
        use Compression::*;
        use FileFormat::*;
        let csv = b"1,Ada,2024-05-01 10:00:00.000\n2,Bob,\\N\n";
        let json = b"\n  {\"ID\":1,\"NAME\":\"Ada\"}\n{\"ID\":2}\n";
        assert_eq!(sniff(b"PAR1\x15\x04"), Some((Parquet, None)));
        assert_eq!(sniff(csv), Some((Csv, None)));
        assert_eq!(sniff(json), Some((Json, None)));
        assert_eq!(sniff(b"\xef\xbb\xbf{\"A\":1}\n"), Some((Json, None)));
        assert_eq!(sniff(&gzip(csv)), Some((Csv, Gzip)));
        assert_eq!(sniff(&gzip(json)), Some((Json, Gzip)));
        assert_eq!(sniff(&bzip2(csv)), Some((Csv, Bzip2)));
        assert_eq!(sniff(&bzip2(json)), Some((Json, Bzip2)));
        assert_eq!(sniff(&zstd(csv)), Some((Csv, Zstd)));
        assert_eq!(sniff(&zstd(json)), Some((Json, Zstd)));
        assert_eq!(sniff(b""), Option::None);
        assert_eq!(sniff(b"  \n"), Option::None);
    }

    #[test]
    fn a_head_cut_off_mid_stream_is_enough() {
        use Compression::*;
        use FileFormat::*;
        let mut json = Vec::new();
        let mut csv = Vec::new();
        for i in 0..100_000 {
            json.extend_from_slice(format!("{{\"ID\":{i},\"X\":\"{}\"}}\n", i * 7919).as_bytes());
            csv.extend_from_slice(format!("{i},{}\n", i * 7919).as_bytes());
        }
        let gz = gzip(&json);
        assert!(gz.len() > SNIFF_BYTES);
        assert_eq!(sniff(&gz[..SNIFF_BYTES]), Some((Json, Gzip)));
        assert_eq!(sniff(&gz[..100]), Some((Json, Gzip)));
        let zst = zstd(&json);
        assert!(zst.len() > SNIFF_BYTES, "{}", zst.len());
        assert_eq!(sniff(&zst[..SNIFF_BYTES]), Some((Json, Zstd)));
        // bzip2's first block is not complete in the head: compressed text, taken as CSV.
        let bz = bzip2(&csv);
        assert!(bz.len() > SNIFF_BYTES);
        assert_eq!(sniff(&bz[..SNIFF_BYTES]), Some((Csv, Bzip2)));
    }
}
