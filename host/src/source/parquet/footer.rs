//! Checks before a Parquet footer is parsed (the `PAR1` magic at both ends, an encrypted
//! footer), footer errors in words, and the row groups the footer lists.

use ::parquet::arrow::arrow_reader::ArrowReaderMetadata;
use ::parquet::errors::ParquetError;
use ::parquet::file::reader::ChunkReader;

use super::{RowGroupInfo, SourceError};

/// The magic bytes at both ends of a Parquet file.
const MAGIC: &[u8; 4] = b"PAR1";
/// The trailing magic of a file whose footer is encrypted.
const MAGIC_ENCRYPTED: &[u8; 4] = b"PARE";
/// Leading magic + footer length + trailing magic: the smallest possible Parquet file.
const MIN_FILE_LEN: u64 = 12;

/// Tells a file that is not Parquet from one that is truncated, before parsing anything.
pub(super) fn check_magic<R: ChunkReader>(reader: &R, name: &str) -> Result<(), SourceError> {
    let len = reader.len();
    let head = if len >= 4 {
        reader
            .get_bytes(0, 4)
            .map_err(|error| SourceError::Corrupt {
                file: name.to_owned(),
                reason: format!("cannot read the first bytes: {error}"),
            })?
    } else {
        bytes::Bytes::new()
    };
    if head.as_ref() != MAGIC {
        return Err(SourceError::NotParquet {
            file: name.to_owned(),
            reason: if len == 0 {
                "the file is empty".to_owned()
            } else if len < 4 {
                format!("the file is only {len} bytes long")
            } else {
                format!("it starts with {} instead of `PAR1`", describe_bytes(&head))
            },
        });
    }
    if len < MIN_FILE_LEN {
        return Err(SourceError::Corrupt {
            file: name.to_owned(),
            reason: format!("the file is only {len} bytes long, too short for a footer"),
        });
    }
    let tail = reader
        .get_bytes(len - 4, 4)
        .map_err(|error| SourceError::Corrupt {
            file: name.to_owned(),
            reason: format!("cannot read the footer: {error}"),
        })?;
    if tail.as_ref() == MAGIC_ENCRYPTED {
        return Err(SourceError::Unsupported {
            file: name.to_owned(),
            reason: "the footer is encrypted".to_owned(),
        });
    }
    if tail.as_ref() != MAGIC {
        return Err(SourceError::Corrupt {
            file: name.to_owned(),
            reason: format!(
                "the file ends with {} instead of `PAR1`: it is truncated or was still being written",
                describe_bytes(&tail)
            ),
        });
    }
    Ok(())
}

/// `"PAR1"`-style text when the bytes are printable ASCII, else hex.
fn describe_bytes(bytes: &[u8]) -> String {
    if bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("`{}`", String::from_utf8_lossy(bytes))
    } else {
        let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("bytes {}", hex.join(" "))
    }
}

pub(super) fn footer_error(name: &str, error: ParquetError) -> SourceError {
    if let Some(refused) = super::codec::unknown_codec(name, &error) {
        return refused;
    }
    match error {
        ParquetError::NYI(reason) => SourceError::Unsupported {
            file: name.to_owned(),
            reason,
        },
        other => SourceError::Corrupt {
            file: name.to_owned(),
            reason: format!("cannot read the footer: {other}"),
        },
    }
}

pub(super) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "unknown panic".to_owned()
    }
}

pub(super) fn row_group_infos(
    name: &str,
    metadata: &ArrowReaderMetadata,
) -> Result<Vec<RowGroupInfo>, SourceError> {
    let mut first_row = 0u64;
    let mut infos = Vec::with_capacity(metadata.metadata().num_row_groups());
    for (index, group) in metadata.metadata().row_groups().iter().enumerate() {
        let rows = u64::try_from(group.num_rows()).map_err(|_| SourceError::Corrupt {
            file: name.to_owned(),
            reason: format!("row group {index} has a negative row count"),
        })?;
        infos.push(RowGroupInfo {
            index,
            first_row,
            rows,
            compressed_bytes: u64::try_from(group.compressed_size()).unwrap_or(0),
        });
        first_row = first_row.saturating_add(rows);
    }
    Ok(infos)
}
