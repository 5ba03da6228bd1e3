//! The compression codecs of a Parquet file's column chunks: which ones stagepush reads
//! (every codec of the Parquet format but LZO: UNCOMPRESSED, SNAPPY, GZIP, BROTLI, LZ4 in
//! both framings, ZSTD, LZ4_RAW), and the check at open that refuses a file with any other
//! before a row is read ([`SourceError::Codec`], naming the codec and the fix).
//!
//! Snowflake's Parquet unload writes `COMPRESSION = AUTO | LZO | SNAPPY | NONE` (AUTO is
//! SNAPPY); arrow-rs has no LZO decoder, so an LZO unload is refused with the Snowflake
//! option that fixes it (`docs/reference/snowflake-unload.md`).

use ::parquet::basic::Compression;
use ::parquet::errors::ParquetError;
use ::parquet::file::metadata::ParquetMetaData;

use super::SourceError;

/// What to do about an LZO file: the Snowflake unload options stagepush reads.
pub const LZO_FIX: &str = "unload with COMPRESSION = SNAPPY (or AUTO)";
/// What to do about a file in a codec stagepush does not know (another tool wrote it).
pub const OTHER_CODEC_FIX: &str = "rewrite it with SNAPPY, ZSTD, GZIP, LZ4_RAW, BROTLI or no \
     compression (a Snowflake unload: COMPRESSION = SNAPPY or AUTO)";
/// The start of arrow-rs's footer error for a codec id the Parquet format does not define.
const UNKNOWN_CODEC_ERROR: &str = "Unexpected CompressionCodec ";

/// The codec's name as the Parquet format spells it (`SNAPPY`, `LZ4_RAW`, `UNCOMPRESSED`).
pub fn codec_name(codec: Compression) -> &'static str {
    match codec {
        Compression::UNCOMPRESSED => "UNCOMPRESSED",
        Compression::SNAPPY => "SNAPPY",
        Compression::GZIP(_) => "GZIP",
        Compression::LZO => "LZO",
        Compression::BROTLI(_) => "BROTLI",
        Compression::LZ4 => "LZ4",
        Compression::ZSTD(_) => "ZSTD",
        Compression::LZ4_RAW => "LZ4_RAW",
    }
}

/// Whether stagepush decodes column chunks compressed with `codec` (LZ4 in the legacy
/// Hadoop framing, and with the raw-block pages older writers put under the same codec).
pub fn is_readable(codec: Compression) -> bool {
    !matches!(codec, Compression::LZO)
}

/// The codecs of the file's column chunks, each once, in the order they first appear.
pub fn file_codecs(metadata: &ParquetMetaData) -> Vec<Compression> {
    let mut codecs: Vec<Compression> = Vec::new();
    for group in metadata.row_groups() {
        for column in group.columns() {
            let codec = column.compression();
            if !codecs
                .iter()
                .any(|seen| codec_name(*seen) == codec_name(codec))
            {
                codecs.push(codec);
            }
        }
    }
    codecs
}

/// Refuses the file if any column chunk has a codec stagepush cannot decode, naming the
/// first such column.
pub(super) fn check_codecs(name: &str, metadata: &ParquetMetaData) -> Result<(), SourceError> {
    for group in metadata.row_groups() {
        for column in group.columns() {
            let codec = column.compression();
            if !is_readable(codec) {
                return Err(SourceError::Codec {
                    file: name.to_owned(),
                    codec: codec_name(codec).to_owned(),
                    column: Some(column.column_path().string()),
                    fix: fix_for(codec).to_owned(),
                });
            }
        }
    }
    Ok(())
}

fn fix_for(codec: Compression) -> &'static str {
    match codec {
        Compression::LZO => LZO_FIX,
        _ => OTHER_CODEC_FIX,
    }
}

/// A footer error that is a codec id the Parquet format does not define, as
/// [`SourceError::Codec`].
pub(super) fn unknown_codec(name: &str, error: &ParquetError) -> Option<SourceError> {
    let text = error.to_string();
    let id = text.split_once(UNKNOWN_CODEC_ERROR)?.1.trim();
    Some(SourceError::Codec {
        file: name.to_owned(),
        codec: format!("an unknown codec (id {id})"),
        column: None,
        fix: OTHER_CODEC_FIX.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_but_lzo_is_readable() {
        for codec in [
            Compression::UNCOMPRESSED,
            Compression::SNAPPY,
            Compression::GZIP(Default::default()),
            Compression::BROTLI(Default::default()),
            Compression::LZ4,
            Compression::ZSTD(Default::default()),
            Compression::LZ4_RAW,
        ] {
            assert!(is_readable(codec), "{}", codec_name(codec));
        }
        assert!(!is_readable(Compression::LZO));
    }

    #[test]
    fn an_unknown_codec_id_in_the_footer_is_a_codec_error() {
        let error = ParquetError::General("Unexpected CompressionCodec 9".into());
        let refused = unknown_codec("f.parquet", &error).unwrap();
        assert_eq!(
            refused.to_string(),
            format!(
                "f.parquet: compressed with an unknown codec (id 9), which stagepush cannot read: {OTHER_CODEC_FIX}"
            )
        );
        let other = ParquetError::General("Unexpected end of file".into());
        assert!(unknown_codec("f.parquet", &other).is_none());
    }
}
