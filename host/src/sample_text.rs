//! The customer sample as Snowflake's CSV and JSON unloads write it (`stagepush sample-stage
//! --format csv|json`): the same rows as [`crate::sample::write_customer_file`]'s Parquet,
//! gzip-compressed (`COMPRESSION = AUTO`).
//!
//! - CSV (`FILE_FORMAT = (TYPE = CSV)`, every option at its default): no header, `,`
//!   between fields, `\n` after each record, no enclosure, `\` escaping the delimiters and
//!   itself in a field, `\N` for NULL; numbers as digits, booleans `true`/`false`,
//!   `TIMESTAMP_NTZ(3)` as `YYYY-MM-DD HH24:MI:SS.FF3`. The types are not in the file:
//!   [`CUSTOMER_CSV_COLUMNS`] is the `[source.csv] columns` declaration that reads it as the
//!   Parquet unload's types.
//! - JSON (`COPY INTO … FROM (SELECT OBJECT_CONSTRUCT(*) FROM customers) FILE_FORMAT =
//!   (TYPE = JSON)`): one object per line, keys sorted (Snowflake's OBJECT order), a NULL
//!   column's key left out (what `OBJECT_CONSTRUCT(*)` does), timestamps as strings.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use chrono::DateTime;
use flate2::write::GzEncoder;

use crate::sample::{Customer, CustomerFileOptions, CustomerFileSummary, SampleError, customer};
use crate::source::format::FileFormat;

/// `[source.csv] columns` for the customer sample: the Snowflake types of the table whose
/// Parquet unload [`crate::sample::write_customer_file`] writes.
pub const CUSTOMER_CSV_COLUMNS: [&str; 7] = [
    "CUSTOMER_ID NUMBER(38,0)",
    "NAME VARCHAR",
    "EMAIL VARCHAR",
    "COUNTRY VARCHAR",
    "IS_ACTIVE BOOLEAN",
    "UPDATED_AT TIMESTAMP_NTZ(3)",
    "IS_DELETED BOOLEAN",
];

/// The file name of unload file `n` in `format` (`data_0_<n>_0.csv.gz`, …).
pub fn file_name(format: FileFormat, n: u64) -> String {
    match format {
        FileFormat::Parquet => format!("data_0_{n}_0.snappy.parquet"),
        FileFormat::Csv => format!("data_0_{n}_0.csv.gz"),
        FileFormat::Json => format!("data_0_{n}_0.json.gz"),
    }
}

/// Writes `rows` customers with ids `first_id ..` to a new gzip file at `path`, as CSV or
/// JSON (`format`; Parquet is [`crate::sample::write_customer_file`]'s).
pub fn write_customer_text_file(
    path: impl AsRef<Path>,
    format: FileFormat,
    first_id: u64,
    rows: u64,
    options: &CustomerFileOptions,
) -> Result<CustomerFileSummary, SampleError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let io_error = |source| SampleError::Io {
        file: name.clone(),
        source,
    };
    if format == FileFormat::Parquet {
        return Err(SampleError::Options(
            "Parquet files are written by write_customer_file".into(),
        ));
    }
    let file = File::create(path).map_err(io_error)?;
    let mut out = GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
    let mut summary = CustomerFileSummary {
        rows,
        row_groups: 0,
        null_ids: 0,
        tombstones: 0,
        bytes: 0,
    };
    let mut line = Vec::with_capacity(256);
    for id in first_id..first_id + rows {
        let row = customer(id, options);
        summary.null_ids += u64::from(row.id.is_none());
        summary.tombstones += u64::from(row.is_deleted);
        line.clear();
        match format {
            FileFormat::Csv => csv_line(&row, &mut line),
            _ => json_line(&row, &mut line),
        }
        out.write_all(&line).map_err(io_error)?;
    }
    out.finish()
        .and_then(|mut inner| inner.flush())
        .map_err(io_error)?;
    summary.bytes = std::fs::metadata(path).map_err(io_error)?.len();
    Ok(summary)
}

/// `TIMESTAMP_NTZ(3)` as Snowflake writes it: `2024-05-01 10:00:00.000`.
fn timestamp(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_default()
}

/// A text field without enclosure: `\` escapes the delimiters and itself.
fn csv_field(text: &str, out: &mut Vec<u8>) {
    for byte in text.bytes() {
        match byte {
            b'\\' | b',' => out.extend_from_slice(&[b'\\', byte]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(byte),
        }
    }
}

const CSV_NULL: &[u8] = b"\\N";

fn csv_line(row: &Customer, out: &mut Vec<u8>) {
    match row.id {
        Some(id) => out.extend_from_slice(id.to_string().as_bytes()),
        None => out.extend_from_slice(CSV_NULL),
    }
    out.push(b',');
    csv_field(&row.name, out);
    out.push(b',');
    match &row.email {
        Some(email) => csv_field(email, out),
        None => out.extend_from_slice(CSV_NULL),
    }
    out.push(b',');
    csv_field(row.country, out);
    out.push(b',');
    out.extend_from_slice(if row.is_active { b"true" } else { b"false" });
    out.push(b',');
    out.extend_from_slice(timestamp(row.updated_at_ms).as_bytes());
    out.push(b',');
    out.extend_from_slice(if row.is_deleted { b"true" } else { b"false" });
    out.push(b'\n');
}

fn json_line(row: &Customer, out: &mut Vec<u8>) {
    // Keys in Snowflake's OBJECT order (sorted); a NULL column's key is left out.
    let mut object = serde_json::Map::new();
    object.insert("COUNTRY".into(), row.country.into());
    if let Some(id) = row.id {
        object.insert("CUSTOMER_ID".into(), id.into());
    }
    if let Some(email) = &row.email {
        object.insert("EMAIL".into(), email.clone().into());
    }
    object.insert("IS_ACTIVE".into(), row.is_active.into());
    object.insert("IS_DELETED".into(), row.is_deleted.into());
    object.insert("NAME".into(), row.name.clone().into());
    object.insert("UPDATED_AT".into(), timestamp(row.updated_at_ms).into());
    // Serializing a map of strings, numbers and booleans cannot fail.
    let _ = serde_json::to_writer(&mut *out, &object);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn read_gz(path: &Path) -> String {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn csv_and_json_as_snowflake_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let options = CustomerFileOptions {
            null_id_fraction: 0.3,
            ..CustomerFileOptions::default()
        };
        let csv = dir.path().join(file_name(FileFormat::Csv, 0));
        let summary = write_customer_text_file(&csv, FileFormat::Csv, 1, 50, &options).unwrap();
        assert_eq!(summary.rows, 50);
        let text = read_gz(&csv);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 50);
        let first = customer(1, &options);
        let fields: Vec<&str> = lines[0].split(',').collect();
        assert_eq!(fields.len(), 7, "{}", lines[0]);
        assert_eq!(fields[1], first.name);
        assert_eq!(fields[5], timestamp(first.updated_at_ms));
        assert_eq!(fields[5].len(), "2024-05-01 10:00:00.000".len());
        let nulls = lines.iter().filter(|l| l.starts_with("\\N,")).count() as u64;
        assert_eq!(nulls, summary.null_ids);
        assert!(nulls > 0);

        let json = dir.path().join(file_name(FileFormat::Json, 0));
        write_customer_text_file(&json, FileFormat::Json, 1, 50, &options).unwrap();
        let text = read_gz(&json);
        for (i, line) in text.lines().enumerate() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let row = customer(1 + i as u64, &options);
            assert_eq!(value.get("CUSTOMER_ID").and_then(|v| v.as_u64()), row.id);
            assert_eq!(value["NAME"], row.name.as_str());
            assert_eq!(value["IS_DELETED"], row.is_deleted);
        }
    }
}
