//! Request bodies: framing (`json-array` or `ndjson`) and gzip.
//!
//! The batcher writes records straight into a framed buffer (`[a,b,c]` or `a\nb\nc\n`), so the
//! common case compresses one contiguous buffer in one call. Subsets (after a 413 split or a
//! 400 naming rows) are re-framed from the records' spans ([`RecordSpans`]).
//!
//! gzip is libdeflate's (whole-buffer, levels 0–12): bodies are whole buffers already, so a
//! streaming encoder buys nothing, and at level 1 libdeflate sends a quarter fewer bytes of
//! customer JSON than zlib-rs did for about the same CPU (see `DEFAULT_GZIP_LEVEL`).

use std::cell::RefCell;
use std::ops::Range;

use bytes::Bytes;
use libdeflater::{CompressionLvl, Compressor};
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

/// Highest gzip level (libdeflate's scale: 0 = stored blocks, 1 fastest … 12 smallest).
pub const MAX_GZIP_LEVEL: u32 = 12;

thread_local! {
    /// This thread's compressor and its level (allocating one costs more than compressing a
    /// small body, and bodies are cut on the CPU workers, one at a time per thread).
    static COMPRESSOR: RefCell<Option<(u32, Compressor)>> = const { RefCell::new(None) };
}

/// gzip `data` at `level` (0–[`MAX_GZIP_LEVEL`]) with libdeflate: one gzip member, readable by
/// any gzip decoder. A level out of range is an `InvalidInput` error (config validation
/// rejects it first).
pub fn gzip(data: &[u8], level: u32) -> std::io::Result<Vec<u8>> {
    let lvl = i32::try_from(level)
        .ok()
        .and_then(|l| CompressionLvl::new(l).ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("gzip level must be 0..={MAX_GZIP_LEVEL}, got {level}"),
            )
        })?;
    COMPRESSOR.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            if slot.as_ref().is_none_or(|(l, _)| *l != level) {
                *slot = Some((level, Compressor::new(lvl)));
            }
            match slot.as_mut() {
                Some((_, c)) => compress_with(c, data),
                None => compress_with(&mut Compressor::new(lvl), data),
            }
        }
        // Only if a caller re-entered while compressing: use a fresh compressor.
        Err(_) => compress_with(&mut Compressor::new(lvl), data),
    })
}

/// Compresses into a buffer of libdeflate's worst-case bound, then gives back the unused tail.
fn compress_with(c: &mut Compressor, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = vec![0u8; c.gzip_compress_bound(data.len())];
    let n = c
        .gzip_compress(data, &mut out)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    out.truncate(n);
    out.shrink_to_fit();
    Ok(out)
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

    #[test]
    fn gzip_levels_0_to_12_decode_with_any_gzip_decoder_and_13_is_refused() {
        let data = customer_bodies(1).remove(0);
        let mut sizes = Vec::new();
        for level in 0..=MAX_GZIP_LEVEL {
            let gz = gzip(&data, level).unwrap();
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "level {level}");
            sizes.push(gz.len());
        }
        assert!(sizes[0] > data.len(), "level 0 stores: {sizes:?}");
        assert!(sizes[12] < sizes[1], "level 12 beats level 1: {sizes:?}");
        // Same level twice on this thread (cached compressor), then another level: same bytes.
        assert_eq!(gzip(&data, 6).unwrap(), gzip(&data, 6).unwrap());
        assert_eq!(gzip(&data, 1).unwrap().len(), sizes[1]);
        let e = gzip(&data, MAX_GZIP_LEVEL + 1).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("0..=12, got 13"), "{e}");
        assert_eq!(gzip(b"", 1).map(|g| !g.is_empty()).ok(), Some(true));
    }

    /// Customer-like wire JSON (~300 B a record, nested shape) in 1,000-record array bodies.
    fn customer_bodies(bodies: usize) -> Vec<Vec<u8>> {
        const FIRST: [&str; 12] = [
            "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Frances",
            "Niklaus", "Radia", "Tony",
        ];
        const LAST: [&str; 12] = [
            "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson",
            "Allen", "Wirth", "Perlman", "Hoare",
        ];
        const CITY: [(&str, &str); 8] = [
            ("London", "GB"),
            ("Oslo", "NO"),
            ("Lyon", "FR"),
            ("Austin", "US"),
            ("Porto", "PT"),
            ("Kraków", "PL"),
            ("Osaka", "JP"),
            ("Perth", "AU"),
        ];
        const SEGMENT: [&str; 4] = ["AUTOMOBILE", "BUILDING", "FURNITURE", "MACHINERY"];
        let mut rng = fastrand::Rng::with_seed(16);
        let mut id = 0u64;
        (0..bodies)
            .map(|_| {
                let mut b = Vec::with_capacity(320_000);
                b.push(b'[');
                for n in 0..1000 {
                    if n > 0 {
                        b.push(b',');
                    }
                    id += 1;
                    let (first, last) = (rng.choice(FIRST).unwrap(), rng.choice(LAST).unwrap());
                    let (city, country) = rng.choice(CITY).unwrap();
                    let rec = format!(
                        concat!(
                            r#"{{"entityType":"/Customer","origin":"snowflake:customer","#,
                            r#""originEntityCode":"{id}","name":"{first} {last}","properties":"#,
                            r#"{{"customer.id":{id},"customer.name":"{first} {last}","#,
                            r#""customer.email":"{}.{}{}@example.com","#,
                            r#""customer.phone":"+{}-{:03}-{:03}-{:04}","customer.city":"{city}","#,
                            r#""customer.country":"{country}","customer.segment":"{}","#,
                            r#""customer.balance":"{}.{:02}","#,
                            r#""customer.createdAt":"2026-{:02}-{:02}T{:02}:{:02}:{:02}Z"}}}}"#
                        ),
                        first.to_lowercase(),
                        last.to_lowercase(),
                        rng.u32(0..1000),
                        rng.u32(1..99),
                        rng.u32(0..1000),
                        rng.u32(0..1000),
                        rng.u32(0..10000),
                        rng.choice(SEGMENT).unwrap(),
                        rng.i32(-999..10000),
                        rng.u32(0..100),
                        rng.u32(1..13),
                        rng.u32(1..29),
                        rng.u32(0..24),
                        rng.u32(0..60),
                        rng.u32(0..60),
                        id = id,
                        first = first,
                        last = last,
                        city = city,
                        country = country,
                    );
                    b.extend_from_slice(rec.as_bytes());
                }
                b.push(b']');
                b
            })
            .collect()
    }
}
