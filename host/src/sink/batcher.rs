//! Routing and batching: records → request bodies, cut by rows **and** uncompressed bytes.
//!
//! A [`Batcher`] keeps one open body per endpoint. It runs on the caller's (CPU) thread:
//! framing and gzip happen in [`Batcher::push`] / [`Batcher::flush`] when a body is cut, so
//! several pipeline workers, each with its own batcher, compress in parallel while the
//! [`super::CluedInSink`] only does network I/O.
//!
//! Limits are checked *before* a record is added, so one push yields at most one batch. A
//! record larger than `max_bytes` travels alone (the endpoint may still refuse it with 413,
//! which dead-letters it).
//!
//! Batches never mix endpoints. They may mix files; a pipeline that checkpoints per file can
//! call [`Batcher::flush`] at the end of each file, and every record keeps its [`RowRef`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::body::{Body, BodyEncoding, RecordSpans};
use super::config::SinkConfig;
use super::{RowRef, SinkError, WireRecord};

/// One ingestion endpoint (one CluedIn data set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Full URL, `{base}/upload/api/endpoint/{id}`.
    pub url: reqwest::Url,
    /// The endpoint id (last path segment), for logs and reports.
    pub id: String,
}

impl Endpoint {
    /// Parses an endpoint URL.
    pub fn parse(url: &str) -> Result<Self, SinkError> {
        let url = reqwest::Url::parse(url)
            .map_err(|e| SinkError::Config(format!("endpoint URL {url:?} does not parse: {e}")))?;
        let id = url
            .path_segments()
            .and_then(|mut s| s.rfind(|seg| !seg.is_empty()))
            .unwrap_or_default()
            .to_string();
        Ok(Self { url, id })
    }
}

/// Entity type → endpoint, shared by all batchers of a sink.
#[derive(Debug)]
pub(crate) struct Router {
    pub(crate) endpoints: Vec<Arc<Endpoint>>,
    by_type: HashMap<Box<str>, usize>,
    default: Option<usize>,
    pub(crate) encoding: BodyEncoding,
    max_rows: usize,
    max_bytes: usize,
    next_batch_id: AtomicU64,
}

impl Router {
    pub(crate) fn new(config: &SinkConfig) -> Result<Self, SinkError> {
        let mut endpoints: Vec<Arc<Endpoint>> = Vec::new();
        let mut index_of = |url: &str| -> Result<usize, SinkError> {
            let ep = Endpoint::parse(url)?;
            if let Some(i) = endpoints.iter().position(|e| e.url == ep.url) {
                return Ok(i);
            }
            endpoints.push(Arc::new(ep));
            Ok(endpoints.len() - 1)
        };
        let default = config.endpoint.as_deref().map(&mut index_of).transpose()?;
        let mut by_type = HashMap::new();
        for (entity_type, url) in &config.routes {
            by_type.insert(entity_type.as_str().into(), index_of(url)?);
        }
        let gzip_level = match config.compression {
            super::Compression::Gzip => Some(config.gzip_level),
            super::Compression::None => None,
        };
        Ok(Self {
            endpoints,
            by_type,
            default,
            encoding: BodyEncoding {
                format: config.body,
                gzip_level,
            },
            max_rows: config.batch.max_rows,
            max_bytes: config.batch.max_bytes,
            next_batch_id: AtomicU64::new(1),
        })
    }

    fn route(&self, entity_type: &str) -> Result<usize, SinkError> {
        self.by_type
            .get(entity_type)
            .copied()
            .or(self.default)
            .ok_or_else(|| SinkError::NoRoute {
                entity_type: entity_type.to_string(),
            })
    }
}

/// Identity of one record in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMeta {
    /// The input row.
    pub origin: RowRef,
    /// The entity type.
    pub entity_type: Arc<str>,
}

/// A cut request body with its records, ready for [`super::CluedInSink::deliver`].
#[derive(Debug)]
pub struct Payload {
    pub(crate) id: u64,
    pub(crate) endpoint: Arc<Endpoint>,
    pub(crate) records: RecordSpans,
    pub(crate) meta: Vec<RecordMeta>,
    pub(crate) encoding: BodyEncoding,
    /// The body of the first attempt (all records).
    pub(crate) body: Body,
}

impl Payload {
    /// Sink-wide unique batch id (logs, outcomes).
    pub fn id(&self) -> u64 {
        self.id
    }
    /// The endpoint the batch goes to.
    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.endpoint
    }
    /// Number of records.
    pub fn len(&self) -> usize {
        self.meta.len()
    }
    /// Whether the batch holds no record (never true for a batch from a [`Batcher`]).
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }
    /// The records' identities, in body order.
    pub fn records(&self) -> &[RecordMeta] {
        &self.meta
    }
    /// The JSON of record `i`.
    pub fn json(&self, i: usize) -> &[u8] {
        self.records.json(i)
    }
    /// Uncompressed body size, framing included.
    pub fn raw_len(&self) -> usize {
        self.body.raw_len
    }
    /// Body size on the wire.
    pub fn wire_len(&self) -> usize {
        self.body.bytes.len()
    }
    /// The uncompressed body (framing included): what `run --dry-run --write-bodies`
    /// writes.
    pub fn framed(&self) -> &[u8] {
        self.records.framed()
    }
}

/// A body being filled for one endpoint.
#[derive(Debug, Default)]
struct OpenBatch {
    records: RecordSpans,
    meta: Vec<RecordMeta>,
}

/// Routes records to endpoints and cuts request bodies. One per pipeline worker; get it from
/// [`super::CluedInSink::batcher`].
#[derive(Debug)]
pub struct Batcher {
    router: Arc<Router>,
    open: Vec<OpenBatch>,
}

impl Batcher {
    pub(crate) fn new(router: Arc<Router>) -> Self {
        let open = router
            .endpoints
            .iter()
            .map(|_| OpenBatch::default())
            .collect();
        Self { router, open }
    }

    /// Adds a record; returns the body it closed, if any.
    pub fn push(&mut self, record: WireRecord) -> Result<Option<Payload>, SinkError> {
        self.push_json(record.origin, &record.entity_type, &record.json)
    }

    /// Adds a record given as parts (the JSON is copied into the body: an encoder can reuse its
    /// buffer). Returns the body it closed, if any.
    pub fn push_json(
        &mut self,
        origin: RowRef,
        entity_type: &Arc<str>,
        json: &[u8],
    ) -> Result<Option<Payload>, SinkError> {
        let ep = self.router.route(entity_type)?;
        let format = self.router.encoding.format;
        let (max_rows, max_bytes) = (self.router.max_rows, self.router.max_bytes);
        let open = self.open.get(ep).map(|o| o.meta.len()).unwrap_or_default();
        let mut closed = None;
        if open > 0 {
            let current = self.open[ep].records.framed.len() + format.close().len();
            let grown = current + format.per_record_overhead(open) + json.len();
            if open >= max_rows || grown > max_bytes {
                closed = Some(self.cut(ep)?);
            }
        }
        let batch = &mut self.open[ep];
        let buf = &mut batch.records.framed;
        if batch.meta.is_empty() {
            buf.reserve(
                max_bytes.min(json.len().saturating_mul(max_rows)) + format.fixed_overhead(),
            );
            buf.extend_from_slice(format.open());
        } else {
            buf.extend_from_slice(format.separator());
        }
        let start = buf.len();
        buf.extend_from_slice(json);
        batch.records.spans.push(start..buf.len());
        buf.extend_from_slice(format.terminator());
        batch.meta.push(RecordMeta {
            origin,
            entity_type: Arc::clone(entity_type),
        });
        Ok(closed)
    }

    /// Closes every open body (end of a file or of the run).
    pub fn flush(&mut self) -> Result<Vec<Payload>, SinkError> {
        let mut out = Vec::new();
        for ep in 0..self.open.len() {
            if !self.open[ep].meta.is_empty() {
                out.push(self.cut(ep)?);
            }
        }
        Ok(out)
    }

    /// Records waiting in open bodies.
    pub fn pending_rows(&self) -> usize {
        self.open.iter().map(|o| o.meta.len()).sum()
    }

    /// Closes the open body of endpoint `ep`: framing, compression.
    fn cut(&mut self, ep: usize) -> Result<Payload, SinkError> {
        let mut open = std::mem::take(&mut self.open[ep]);
        let encoding = self.router.encoding;
        open.records
            .framed
            .extend_from_slice(encoding.format.close());
        let body = encoding.finish(&open.records.framed, open.meta.len())?;
        Ok(Payload {
            id: self.router.next_batch_id.fetch_add(1, Ordering::Relaxed),
            endpoint: Arc::clone(&self.router.endpoints[ep]),
            records: open.records,
            meta: open.meta,
            encoding,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{BodyFormat, Compression};

    const A: &str = "http://127.0.0.1:1/upload/api/endpoint/AAAA";
    const B: &str = "http://127.0.0.1:1/upload/api/endpoint/BBBB";

    fn rec(row: u64, ty: &str, json: String) -> WireRecord {
        WireRecord {
            origin: RowRef {
                file: "f.parquet".into(),
                row,
            },
            entity_type: ty.into(),
            json: json.into_bytes(),
        }
    }

    fn config(rows: usize, bytes: usize) -> SinkConfig {
        let mut c = SinkConfig::new(A);
        c.batch.max_rows = rows;
        c.batch.max_bytes = bytes;
        c.compression = Compression::None;
        c
    }

    fn batcher(c: &SinkConfig) -> Batcher {
        Batcher::new(Arc::new(Router::new(c).unwrap()))
    }

    #[test]
    fn cuts_by_rows() {
        let mut b = batcher(&config(3, 1 << 20));
        let mut batches = Vec::new();
        for i in 0..7 {
            batches.extend(b.push(rec(i, "/T", format!(r#"{{"i":{i}}}"#))).unwrap());
        }
        assert_eq!(b.pending_rows(), 1);
        batches.extend(b.flush().unwrap());
        let sizes: Vec<usize> = batches.iter().map(Payload::len).collect();
        assert_eq!(sizes, [3, 3, 1]);
        assert_eq!(&batches[0].body.bytes[..], br#"[{"i":0},{"i":1},{"i":2}]"#);
        assert_eq!(batches[2].records()[0].origin.row, 6);
        let ids: Vec<u64> = batches.iter().map(Payload::id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(b.pending_rows(), 0);
        assert!(b.flush().unwrap().is_empty());
    }

    #[test]
    fn cuts_by_uncompressed_bytes_including_framing() {
        // Each record is 10 bytes: `{"i":"ab"}`. `[` + 3 records + 2 commas + `]` = 34 bytes.
        let r = || r#"{"i":"ab"}"#.to_string();
        let mut b = batcher(&config(1000, 34));
        let mut batches = Vec::new();
        for i in 0..7 {
            batches.extend(b.push(rec(i, "/T", r())).unwrap());
        }
        batches.extend(b.flush().unwrap());
        let sizes: Vec<usize> = batches.iter().map(Payload::len).collect();
        assert_eq!(sizes, [3, 3, 1]);
        assert!(batches.iter().all(|b| b.raw_len() <= 34));
        assert_eq!(batches[0].raw_len(), 34);
        // NDJSON: 3 × 11 bytes = 33 ≤ 34, a 4th would be 44.
        let mut c = config(1000, 34);
        c.body = BodyFormat::Ndjson;
        let mut b = batcher(&c);
        let mut batches = Vec::new();
        for i in 0..4 {
            batches.extend(b.push(rec(i, "/T", r())).unwrap());
        }
        batches.extend(b.flush().unwrap());
        assert_eq!(batches.iter().map(Payload::len).collect::<Vec<_>>(), [3, 1]);
        assert_eq!(&batches[1].body.bytes[..], b"{\"i\":\"ab\"}\n");
    }

    #[test]
    fn oversized_record_travels_alone() {
        let mut b = batcher(&config(1000, 20));
        let mut batches = Vec::new();
        batches.extend(b.push(rec(0, "/T", r#"{"a":1}"#.into())).unwrap());
        batches.extend(
            b.push(rec(1, "/T", format!(r#"{{"big":"{}"}}"#, "x".repeat(100))))
                .unwrap(),
        );
        batches.extend(b.push(rec(2, "/T", r#"{"a":2}"#.into())).unwrap());
        batches.extend(b.flush().unwrap());
        assert_eq!(
            batches.iter().map(Payload::len).collect::<Vec<_>>(),
            [1, 1, 1]
        );
    }

    #[test]
    fn routes_by_entity_type_with_default() {
        let mut c = config(1000, 1 << 20);
        c.routes.insert("/Contact".into(), B.into());
        let mut b = batcher(&c);
        for (i, ty) in ["/Customer", "/Contact", "/Order", "/Contact"]
            .iter()
            .enumerate()
        {
            assert!(
                b.push(rec(i as u64, ty, format!(r#"{{"i":{i}}}"#)))
                    .unwrap()
                    .is_none()
            );
        }
        let batches = b.flush().unwrap();
        assert_eq!(batches.len(), 2);
        let by_ep: HashMap<&str, Vec<u64>> = batches
            .iter()
            .map(|b| {
                (
                    b.endpoint().id.as_str(),
                    b.records().iter().map(|m| m.origin.row).collect(),
                )
            })
            .collect();
        assert_eq!(by_ep["AAAA"], [0, 2]);
        assert_eq!(by_ep["BBBB"], [1, 3]);

        let mut c = config(10, 1 << 20);
        c.endpoint = None;
        c.routes.insert("/Contact".into(), B.into());
        let mut b = batcher(&c);
        let e = b.push(rec(0, "/Customer", "{}".into())).unwrap_err();
        assert!(matches!(e, SinkError::NoRoute { .. }), "{e}");
    }

    #[test]
    fn gzip_batches_are_compressed() {
        let mut c = config(1000, 1 << 20);
        c.compression = Compression::Gzip;
        let mut b = batcher(&c);
        for i in 0..200 {
            b.push(rec(
                i,
                "/T",
                format!(r#"{{"customer.name":"Ada Lovelace","i":{i}}}"#),
            ))
            .unwrap();
        }
        let batch = b.flush().unwrap().remove(0);
        assert!(
            batch.wire_len() * 3 < batch.raw_len(),
            "{} vs {}",
            batch.wire_len(),
            batch.raw_len()
        );
    }
}
