//! Request bodies: framing (`json-array` or `ndjson`) and gzip.
//!
//! The batcher writes records straight into a framed buffer (`[a,b,c]` or `a\nb\nc\n`), so the
//! common case compresses one contiguous buffer in one call. Subsets (after a 413 split or a
//! 400 naming rows) are re-framed from the records' spans ([`RecordSpans`]).

use std::io::Write;
use std::ops::Range;

use bytes::Bytes;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

/// How records are framed in a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BodyFormat {
    /// `[rec,rec,…]`, `Content-Type: application/json`: what every real client sends.
    #[default]
    JsonArray,
    /// One record per line, each line ending in `\n`, `Content-Type: application/x-ndjson`.
    Ndjson,
}

impl BodyFormat {
    /// The `Content-Type` header value.
    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::JsonArray => "application/json",
            BodyFormat::Ndjson => "application/x-ndjson",
        }
    }

    /// Bytes written before the first record.
    pub(crate) fn open(self) -> &'static [u8] {
        match self {
            BodyFormat::JsonArray => b"[",
            BodyFormat::Ndjson => b"",
        }
    }

    /// Bytes written before every record but the first.
    pub(crate) fn separator(self) -> &'static [u8] {
        match self {
            BodyFormat::JsonArray => b",",
            BodyFormat::Ndjson => b"",
        }
    }

    /// Bytes written after every record.
    pub(crate) fn terminator(self) -> &'static [u8] {
        match self {
            BodyFormat::JsonArray => b"",
            BodyFormat::Ndjson => b"\n",
        }
    }

    /// Bytes written after the last record.
    pub(crate) fn close(self) -> &'static [u8] {
        match self {
            BodyFormat::JsonArray => b"]",
            BodyFormat::Ndjson => b"",
        }
    }

    /// Framing bytes one more record adds to a body holding `rows` records.
    pub(crate) fn per_record_overhead(self, rows: usize) -> usize {
        let sep = if rows == 0 { 0 } else { self.separator().len() };
        sep + self.terminator().len()
    }

    /// Framing bytes of an empty body.
    pub(crate) fn fixed_overhead(self) -> usize {
        self.open().len() + self.close().len()
    }
}

/// Body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    /// gzip (`Content-Encoding: gzip`) at the configured level.
    #[default]
    Gzip,
    /// No compression, no `Content-Encoding` header.
    None,
}

/// Framing plus compression: everything needed to turn records into a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyEncoding {
    /// Framing.
    pub format: BodyFormat,
    /// `Some(level)` for gzip, `None` for identity.
    pub gzip_level: Option<u32>,
}

impl BodyEncoding {
    /// The `Content-Encoding` header value, if any.
    pub fn content_encoding(&self) -> Option<&'static str> {
        self.gzip_level.map(|_| "gzip")
    }

    /// Compresses (or not) a framed buffer into a ready body.
    pub fn finish(&self, framed: &[u8], rows: usize) -> std::io::Result<Body> {
        let bytes = match self.gzip_level {
            Some(level) => Bytes::from(gzip(framed, level)?),
            None => Bytes::copy_from_slice(framed),
        };
        Ok(Body {
            bytes,
            raw_len: framed.len(),
            rows,
        })
    }
}

/// A request body ready to send (cheap to clone for retries).
#[derive(Debug, Clone)]
pub struct Body {
    /// The bytes on the wire (compressed if gzip is on).
    pub bytes: Bytes,
    /// Uncompressed length, framing included.
    pub raw_len: usize,
    /// Records in the body.
    pub rows: usize,
}

/// gzip `data` at `level` (0–9) with flate2's zlib-rs backend.
pub fn gzip(data: &[u8], level: u32) -> std::io::Result<Vec<u8>> {
    // JSON compresses 4-8x: start at a quarter to avoid most re-allocations.
    let mut enc = GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::new(level),
    );
    enc.write_all(data)?;
    enc.finish()
}

/// Records as spans of one framed buffer.
#[derive(Debug, Default, Clone)]
pub struct RecordSpans {
    /// The framed body (`[a,b]` or `a\nb\n`).
    pub(crate) framed: Vec<u8>,
    /// Each record's byte range in `framed`.
    pub(crate) spans: Vec<Range<usize>>,
}

impl RecordSpans {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The JSON of record `i`.
    pub fn json(&self, i: usize) -> &[u8] {
        self.spans
            .get(i)
            .and_then(|r| self.framed.get(r.clone()))
            .unwrap_or_default()
    }

    /// The whole framed buffer (all records).
    pub fn framed(&self) -> &[u8] {
        &self.framed
    }

    /// A framed buffer holding the records `rows` (indices into this set), in that order.
    pub fn frame_subset(&self, format: BodyFormat, rows: impl Iterator<Item = usize>) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(format.open());
        for (n, i) in rows.enumerate() {
            if n > 0 {
                out.extend_from_slice(format.separator());
            }
            out.extend_from_slice(self.json(i));
            out.extend_from_slice(format.terminator());
        }
        out.extend_from_slice(format.close());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn spans(format: BodyFormat, recs: &[&str]) -> RecordSpans {
        let mut s = RecordSpans::default();
        s.framed.extend_from_slice(format.open());
        for (n, r) in recs.iter().enumerate() {
            if n > 0 {
                s.framed.extend_from_slice(format.separator());
            }
            let start = s.framed.len();
            s.framed.extend_from_slice(r.as_bytes());
            s.spans.push(start..s.framed.len());
            s.framed.extend_from_slice(format.terminator());
        }
        s.framed.extend_from_slice(format.close());
        s
    }

    #[test]
    fn json_array_and_ndjson_framing() {
        let recs = [r#"{"a":1}"#, r#"{"b":"x"}"#, r#"{"c":null}"#];
        let arr = spans(BodyFormat::JsonArray, &recs);
        assert_eq!(arr.framed(), br#"[{"a":1},{"b":"x"},{"c":null}]"#);
        assert_eq!(
            arr.frame_subset(BodyFormat::JsonArray, [2, 0].into_iter()),
            br#"[{"c":null},{"a":1}]"#
        );
        assert_eq!(
            arr.frame_subset(BodyFormat::JsonArray, std::iter::empty()),
            b"[]"
        );
        let nd = spans(BodyFormat::Ndjson, &recs);
        assert_eq!(nd.framed(), b"{\"a\":1}\n{\"b\":\"x\"}\n{\"c\":null}\n");
        assert_eq!(
            nd.frame_subset(BodyFormat::Ndjson, [1].into_iter()),
            b"{\"b\":\"x\"}\n"
        );
        assert_eq!(nd.json(1), br#"{"b":"x"}"#);
        assert_eq!(nd.json(9), b"");
        assert_eq!(BodyFormat::JsonArray.content_type(), "application/json");
        assert_eq!(BodyFormat::Ndjson.content_type(), "application/x-ndjson");
    }

    #[test]
    fn gzip_round_trips_and_identity_is_verbatim() {
        let data = br#"[{"customer.name":"Ada"},{"customer.name":"Grace"}]"#.repeat(50);
        for level in [0, 1, 6, 9] {
            let enc = BodyEncoding {
                format: BodyFormat::JsonArray,
                gzip_level: Some(level),
            };
            let body = enc.finish(&data, 100).unwrap();
            assert_eq!(&body.bytes[..2], &[0x1f, 0x8b], "gzip magic");
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&body.bytes[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
            assert_eq!(body.raw_len, data.len());
            assert_eq!(enc.content_encoding(), Some("gzip"));
        }
        let enc = BodyEncoding {
            format: BodyFormat::Ndjson,
            gzip_level: None,
        };
        let body = enc.finish(&data, 100).unwrap();
        assert_eq!(&body.bytes[..], &data[..]);
        assert_eq!(enc.content_encoding(), None);
    }
}
