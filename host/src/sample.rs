//! Writes Snowflake-like sample files for the demo, the benchmarks and the tests.
//!
//! [`write_customer_file`] writes the Parquet file a Snowflake
//! `COPY INTO @stage/customers FROM (SELECT …) FILE_FORMAT=(TYPE=PARQUET) HEADER=TRUE` of a
//! customer table would produce, with the physical layout Snowflake uses (see
//! `docs/reference/snowflake-unload.md`), written column chunk by column chunk with the low-level Parquet
//! writer so nothing is left to a library's defaults:
//!
//! | column | Parquet | note |
//! |---|---|---|
//! | `CUSTOMER_ID` | OPTIONAL FIXED_LEN_BYTE_ARRAY(16) DECIMAL(38,0) | null in the "bad rows" |
//! | `NAME` | OPTIONAL BYTE_ARRAY STRING | `First Last` |
//! | `EMAIL` | OPTIONAL BYTE_ARRAY STRING | some mixed-case or space-padded, ~2 % null |
//! | `COUNTRY` | OPTIONAL BYTE_ARRAY STRING | ISO 3166 alpha-2 |
//! | `IS_ACTIVE` | OPTIONAL BOOLEAN | |
//! | `UPDATED_AT` | REQUIRED INT64, converted type TIMESTAMP_MILLIS, **no logical type** | TIMESTAMP_NTZ: wall-clock milliseconds in 2024 |
//! | `IS_DELETED` | REQUIRED BOOLEAN | the tombstones |
//!
//! Every value of row `i` is a function of `(seed, first_id + i)` alone (see [`customer`]),
//! so a test can recompute what any row of any file holds, and files of one seed with
//! consecutive id ranges look like one table unloaded in pieces. The generator needs no
//! per-row allocation: a million rows take well under a second to generate.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::Compression;
use parquet::data_type::{
    BoolType, ByteArray, ByteArrayType, FixedLenByteArray, FixedLenByteArrayType, Int64Type,
};
use parquet::errors::ParquetError;
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::parser::parse_message_type;

/// The customer file's Parquet schema, as Snowflake writes such a table.
pub const CUSTOMER_SCHEMA: &str = "
message schema {
  optional fixed_len_byte_array(16) CUSTOMER_ID (DECIMAL(38,0));
  optional binary NAME (STRING);
  optional binary EMAIL (STRING);
  optional binary COUNTRY (STRING);
  optional boolean IS_ACTIVE;
  required int64 UPDATED_AT (TIMESTAMP_MILLIS);
  required boolean IS_DELETED;
}";

/// The columns of a customer file, in order.
pub const CUSTOMER_COLUMNS: [&str; 7] = [
    "CUSTOMER_ID",
    "NAME",
    "EMAIL",
    "COUNTRY",
    "IS_ACTIVE",
    "UPDATED_AT",
    "IS_DELETED",
];

/// 2024-01-01T00:00:00 in milliseconds since the epoch (wall-clock).
const YEAR_2024_MS: i64 = 1_704_067_200_000;
/// Milliseconds in 2024 (a leap year).
const YEAR_MS: u64 = 366 * 86_400_000;
/// Rows generated per `write_batch` call: bounds the generator's buffers.
const CHUNK_ROWS: usize = 64 * 1024;
/// Fraction of rows whose EMAIL is null.
const NULL_EMAIL_FRACTION: f64 = 0.02;

const FIRST_NAMES: [&str; 16] = [
    "Anna", "Bram", "Chloé", "Daan", "Emma", "Finn", "Greta", "Hugo", "Ines", "Jonas", "Karin",
    "Lars", "Mila", "Noah", "Olga", "Pieter",
];
const LAST_NAMES: [&str; 16] = [
    "Jansen", "de Vries", "Müller", "Smith", "Dubois", "Hansen", "Nielsen", "Rossi", "García",
    "Novak", "Kowalski", "Berg", "O'Brien", "Visser", "Schmidt", "Larsen",
];
const COUNTRIES: [&str; 10] = ["NL", "DE", "GB", "US", "FR", "DK", "SE", "NO", "ES", "IT"];

/// What can go wrong writing a sample file.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The file could not be created or written.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The Parquet writer failed.
    #[error("{file}: cannot write Parquet: {source}")]
    Parquet {
        /// The file.
        file: String,
        /// The writer's error.
        #[source]
        source: ParquetError,
    },
    /// The options are out of range.
    #[error("invalid sample options: {0}")]
    Options(String),
}

/// How [`write_customer_file`] shapes the file.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerFileOptions {
    /// Seed of the generator: the same seed and ids give the same rows.
    pub seed: u64,
    /// Fraction (0–1) of rows with `IS_DELETED = true`.
    pub tombstone_fraction: f64,
    /// Fraction (0–1) of rows whose CUSTOMER_ID is null: rows a transform must reject.
    pub null_id_fraction: f64,
    /// Rows per row group (at least 1). Snowflake writes one row group per file, which is
    /// the default (`usize::MAX`).
    pub row_group_rows: usize,
    /// Snappy compression (Snowflake's default) or none.
    pub snappy: bool,
}

impl Default for CustomerFileOptions {
    fn default() -> Self {
        Self {
            seed: 42,
            tombstone_fraction: 0.05,
            null_id_fraction: 0.0,
            row_group_rows: usize::MAX,
            snappy: true,
        }
    }
}

/// What [`write_customer_file`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerFileSummary {
    /// Rows written.
    pub rows: u64,
    /// Row groups written.
    pub row_groups: usize,
    /// Rows with a null CUSTOMER_ID.
    pub null_ids: u64,
    /// Rows with `IS_DELETED = true` (whatever their id).
    pub tombstones: u64,
    /// Bytes in the file.
    pub bytes: u64,
}

/// One customer row, as [`write_customer_file`] writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    /// CUSTOMER_ID; `None` for a bad row.
    pub id: Option<u64>,
    /// NAME.
    pub name: String,
    /// EMAIL, possibly mixed-case or padded with spaces.
    pub email: Option<String>,
    /// COUNTRY.
    pub country: &'static str,
    /// IS_ACTIVE.
    pub is_active: bool,
    /// UPDATED_AT: wall-clock milliseconds since 1970-01-01T00:00:00.
    pub updated_at_ms: i64,
    /// IS_DELETED.
    pub is_deleted: bool,
}

/// The draws that decide one row; text is written from these without allocating.
#[derive(Debug, Clone, Copy)]
struct Draw {
    id: u64,
    null_id: bool,
    first: usize,
    last: usize,
    email_style: u8,
    null_email: bool,
    country: usize,
    is_active: bool,
    updated_at_ms: i64,
    is_deleted: bool,
}

impl Draw {
    fn new(seed: u64, id: u64, options: &CustomerFileOptions) -> Self {
        let mut rng = XorShift::new(seed, id);
        Self {
            id,
            null_id: rng.chance(options.null_id_fraction),
            first: rng.below(FIRST_NAMES.len() as u64) as usize,
            last: rng.below(LAST_NAMES.len() as u64) as usize,
            email_style: rng.below(8) as u8,
            null_email: rng.chance(NULL_EMAIL_FRACTION),
            country: rng.below(COUNTRIES.len() as u64) as usize,
            is_active: rng.below(4) != 0,
            updated_at_ms: YEAR_2024_MS + rng.below(YEAR_MS) as i64,
            is_deleted: rng.chance(options.tombstone_fraction),
        }
    }

    fn write_name(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(FIRST_NAMES[self.first].as_bytes());
        out.push(b' ');
        out.extend_from_slice(LAST_NAMES[self.last].as_bytes());
    }

    /// `first.last<id>@example.com`; style 0 mixed case, 1 padded, 2 both, else lower case.
    fn write_email(&self, out: &mut Vec<u8>) {
        let padded = matches!(self.email_style, 1 | 2);
        let mixed = matches!(self.email_style, 0 | 2);
        if padded {
            out.extend_from_slice(b"  ");
        }
        let start = out.len();
        for (i, part) in [FIRST_NAMES[self.first], LAST_NAMES[self.last]]
            .iter()
            .enumerate()
        {
            if i > 0 {
                out.push(b'.');
            }
            for c in part.chars().filter(|c| c.is_ascii_alphabetic()) {
                out.push(c.to_ascii_lowercase() as u8);
            }
        }
        // Writing a number into a Vec cannot fail.
        let _ = write!(out, "{}@example.com", self.id);
        if mixed {
            if let Some(first) = out.get_mut(start) {
                first.make_ascii_uppercase();
            }
            let end = out.len();
            out[end - "example.com".len()].make_ascii_uppercase();
            out[end - 3..].make_ascii_uppercase();
        }
        if padded {
            out.push(b' ');
        }
    }

    fn customer(&self) -> Customer {
        let mut name = Vec::new();
        self.write_name(&mut name);
        let mut email = Vec::new();
        self.write_email(&mut email);
        Customer {
            id: (!self.null_id).then_some(self.id),
            name: String::from_utf8_lossy(&name).into_owned(),
            email: (!self.null_email).then(|| String::from_utf8_lossy(&email).into_owned()),
            country: COUNTRIES[self.country],
            is_active: self.is_active,
            updated_at_ms: self.updated_at_ms,
            is_deleted: self.is_deleted,
        }
    }
}

/// The row [`write_customer_file`] writes for customer `id` (the row's would-be id: a row
/// whose id is null still has one, used to draw its other values).
pub fn customer(id: u64, options: &CustomerFileOptions) -> Customer {
    Draw::new(options.seed, id, options).customer()
}

/// Writes `rows` customers with ids `first_id ..` to a new file at `path`.
pub fn write_customer_file(
    path: impl AsRef<Path>,
    first_id: u64,
    rows: u64,
    options: &CustomerFileOptions,
) -> Result<CustomerFileSummary, SampleError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    check_options(options)?;
    let file = File::create(path).map_err(|source| SampleError::Io {
        file: name.clone(),
        source,
    })?;
    let parquet_error = |source| SampleError::Parquet {
        file: name.clone(),
        source,
    };
    let schema = Arc::new(parse_message_type(CUSTOMER_SCHEMA).map_err(parquet_error)?);
    let properties = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(if options.snappy {
            Compression::SNAPPY
        } else {
            Compression::UNCOMPRESSED
        })
        .set_created_by("stagepush sample (Snowflake unload layout)".to_owned())
        .build();
    let mut writer = SerializedFileWriter::new(BufWriter::new(file), schema, Arc::new(properties))
        .map_err(parquet_error)?;

    let mut summary = CustomerFileSummary {
        rows,
        row_groups: 0,
        null_ids: 0,
        tombstones: 0,
        bytes: 0,
    };
    let group_rows = u64::try_from(options.row_group_rows).unwrap_or(u64::MAX);
    let mut start = 0u64;
    while start < rows {
        let count = group_rows.min(rows - start);
        let ids = first_id.saturating_add(start)..first_id.saturating_add(start + count);
        let mut group = writer.next_row_group().map_err(parquet_error)?;
        let (null_ids, tombstones) =
            write_row_group(&mut group, ids, options).map_err(parquet_error)?;
        group.close().map_err(parquet_error)?;
        summary.row_groups += 1;
        summary.null_ids += null_ids;
        summary.tombstones += tombstones;
        start += count;
    }
    let out = writer.into_inner().map_err(parquet_error)?;
    let file = out.into_inner().map_err(|error| SampleError::Io {
        file: name.clone(),
        source: error.into_error(),
    })?;
    file.sync_all().map_err(|source| SampleError::Io {
        file: name.clone(),
        source,
    })?;
    summary.bytes = file
        .metadata()
        .map_err(|source| SampleError::Io { file: name, source })?
        .len();
    Ok(summary)
}

fn check_options(options: &CustomerFileOptions) -> Result<(), SampleError> {
    for (what, fraction) in [
        ("tombstone_fraction", options.tombstone_fraction),
        ("null_id_fraction", options.null_id_fraction),
    ] {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(SampleError::Options(format!(
                "{what} must be between 0 and 1, not {fraction}"
            )));
        }
    }
    if options.row_group_rows == 0 {
        return Err(SampleError::Options(
            "row_group_rows must be at least 1".into(),
        ));
    }
    Ok(())
}

/// Writes the seven column chunks of one row group; returns (null ids, tombstones).
fn write_row_group<W: Write + Send>(
    group: &mut SerializedRowGroupWriter<'_, W>,
    ids: std::ops::Range<u64>,
    options: &CustomerFileOptions,
) -> Result<(u64, u64), ParquetError> {
    let mut column = 0;
    let mut null_ids = 0;
    let mut tombstones = 0;
    while let Some(mut writer) = group.next_column()? {
        let mut chunk_start = ids.start;
        while chunk_start < ids.end {
            let chunk_end = ids.end.min(chunk_start + CHUNK_ROWS as u64);
            let draws: Vec<Draw> = (chunk_start..chunk_end)
                .map(|id| Draw::new(options.seed, id, options))
                .collect();
            let flag = |present: bool| i16::from(present);
            match column {
                0 => {
                    let defs: Vec<i16> = draws.iter().map(|d| flag(!d.null_id)).collect();
                    null_ids += draws.iter().filter(|d| d.null_id).count() as u64;
                    let mut buffer = Vec::with_capacity(draws.len() * 16);
                    for draw in draws.iter().filter(|d| !d.null_id) {
                        buffer.extend_from_slice(&i128::from(draw.id).to_be_bytes());
                    }
                    let buffer = Bytes::from(buffer);
                    let values: Vec<FixedLenByteArray> = (0..buffer.len() / 16)
                        .map(|i| ByteArray::from(buffer.slice(i * 16..i * 16 + 16)).into())
                        .collect();
                    writer.typed::<FixedLenByteArrayType>().write_batch(
                        &values,
                        Some(&defs),
                        None,
                    )?;
                }
                1..=3 => {
                    let mut defs = Vec::with_capacity(draws.len());
                    let mut buffer = Vec::with_capacity(draws.len() * 32);
                    let mut ends = Vec::with_capacity(draws.len());
                    for draw in &draws {
                        let present = column != 2 || !draw.null_email;
                        defs.push(flag(present));
                        if !present {
                            continue;
                        }
                        match column {
                            1 => draw.write_name(&mut buffer),
                            2 => draw.write_email(&mut buffer),
                            _ => buffer.extend_from_slice(COUNTRIES[draw.country].as_bytes()),
                        }
                        ends.push(buffer.len());
                    }
                    let buffer = Bytes::from(buffer);
                    let mut start = 0;
                    let values: Vec<ByteArray> = ends
                        .iter()
                        .map(|&end| {
                            let value = ByteArray::from(buffer.slice(start..end));
                            start = end;
                            value
                        })
                        .collect();
                    writer
                        .typed::<ByteArrayType>()
                        .write_batch(&values, Some(&defs), None)?;
                }
                4 => {
                    let values: Vec<bool> = draws.iter().map(|d| d.is_active).collect();
                    let defs = vec![1i16; draws.len()];
                    writer
                        .typed::<BoolType>()
                        .write_batch(&values, Some(&defs), None)?;
                }
                5 => {
                    let values: Vec<i64> = draws.iter().map(|d| d.updated_at_ms).collect();
                    writer
                        .typed::<Int64Type>()
                        .write_batch(&values, None, None)?;
                }
                _ => {
                    let values: Vec<bool> = draws.iter().map(|d| d.is_deleted).collect();
                    tombstones += values.iter().filter(|&&deleted| deleted).count() as u64;
                    writer
                        .typed::<BoolType>()
                        .write_batch(&values, None, None)?;
                }
            }
            chunk_start = chunk_end;
        }
        writer.close()?;
        column += 1;
    }
    Ok((null_ids, tombstones))
}

/// A small deterministic generator (xorshift64*), seeded from a seed and a row id.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64, id: u64) -> Self {
        // splitmix64 of the pair, so neighbouring ids get unrelated streams.
        let mut z = seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64) < p * (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_and_id_give_the_same_row() {
        let options = CustomerFileOptions::default();
        assert_eq!(customer(7, &options), customer(7, &options));
        let other = CustomerFileOptions {
            seed: 43,
            ..options.clone()
        };
        assert_ne!(customer(7, &options), customer(7, &other));
    }

    #[test]
    fn emails_come_in_every_style() {
        let options = CustomerFileOptions::default();
        let emails: Vec<String> = (0..200)
            .filter_map(|id| customer(id, &options).email)
            .collect();
        assert!(
            emails
                .iter()
                .any(|e| e.starts_with("  ") && e.ends_with(' '))
        );
        assert!(emails.iter().any(|e| e.ends_with(".COM")));
        assert!(
            emails
                .iter()
                .any(|e| e == &e.to_lowercase() && !e.starts_with(' '))
        );
        assert!(
            emails
                .iter()
                .all(|e| e.trim().to_lowercase().ends_with("@example.com"))
        );
    }

    #[test]
    fn fractions_are_roughly_honoured() {
        let options = CustomerFileOptions {
            tombstone_fraction: 0.1,
            null_id_fraction: 0.2,
            ..CustomerFileOptions::default()
        };
        let rows: Vec<Customer> = (0..10_000).map(|id| customer(id, &options)).collect();
        let deleted = rows.iter().filter(|c| c.is_deleted).count();
        let null_ids = rows.iter().filter(|c| c.id.is_none()).count();
        assert!((800..1200).contains(&deleted), "{deleted}");
        assert!((1800..2200).contains(&null_ids), "{null_ids}");
        let none = CustomerFileOptions {
            tombstone_fraction: 0.0,
            ..options
        };
        assert!((0..1000).all(|id| !customer(id, &none).is_deleted));
    }

    #[test]
    fn bad_options_are_refused() {
        let options = CustomerFileOptions {
            null_id_fraction: 1.5,
            ..CustomerFileOptions::default()
        };
        let path = std::env::temp_dir().join("stagepush-sample-never-written.parquet");
        assert!(matches!(
            write_customer_file(&path, 1, 10, &options),
            Err(SampleError::Options(_))
        ));
    }
}
