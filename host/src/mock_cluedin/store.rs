//! The mock's store: `records.ndjson`, `requests.ndjson` and `arrivals.ndjson`, appended one
//! `write` per request.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use super::{ARRIVALS_FILE, MockError, RECORDS_FILE, REQUESTS_FILE};

/// One line of `records.ndjson`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RecordLine<'a> {
    endpoint_id: &'a str,
    receipt_id: &'a str,
    record: &'a Value,
}

/// One line of `requests.ndjson`.
#[derive(Debug, Serialize)]
pub(crate) struct RequestLine<'a> {
    pub seq: u64,
    pub t_ms: f64,
    pub method: &'a str,
    pub path: &'a str,
    pub endpoint_id: Option<&'a str>,
    pub status: Option<u16>,
    pub answer: &'static str,
    pub rows: Option<usize>,
    pub request_id: Option<&'a str>,
    pub content_encoding: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body_bytes: usize,
    pub receipt_id: Option<&'a str>,
}

/// One line of `arrivals.ndjson`: a request whose body was read, before any delay or gate.
#[derive(Debug, Serialize)]
pub(crate) struct ArrivalLine<'a> {
    pub seq: u64,
    pub t_ms: f64,
    pub path: &'a str,
    pub request_id: Option<&'a str>,
    pub body_bytes: usize,
}

/// The append-only files.
#[derive(Debug)]
pub(crate) struct Store {
    records: Mutex<File>,
    requests: Mutex<File>,
    arrivals: Mutex<File>,
}

impl Store {
    pub(crate) fn open(dir: &Path) -> Result<Self, MockError> {
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| MockError::Store { path, source }
        };
        std::fs::create_dir_all(dir).map_err(err(dir))?;
        let open = |name: &str| {
            let path = dir.join(name);
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(err(&path))
        };
        Ok(Self {
            records: Mutex::new(open(RECORDS_FILE)?),
            requests: Mutex::new(open(REQUESTS_FILE)?),
            arrivals: Mutex::new(open(ARRIVALS_FILE)?),
        })
    }

    /// Appends the accepted records of one request (one `write_all` under the lock).
    pub(crate) fn append_records(
        &self,
        endpoint_id: &str,
        receipt_id: &str,
        records: &[Value],
    ) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(records.len() * 128);
        for record in records {
            serde_json::to_writer(
                &mut buf,
                &RecordLine {
                    endpoint_id,
                    receipt_id,
                    record,
                },
            )?;
            buf.push(b'\n');
        }
        write_all(&self.records, &buf)
    }

    /// Appends one request line.
    pub(crate) fn append_request(&self, line: &RequestLine<'_>) -> std::io::Result<()> {
        let mut buf = serde_json::to_vec(line)?;
        buf.push(b'\n');
        write_all(&self.requests, &buf)
    }

    /// Appends one arrival line.
    pub(crate) fn append_arrival(&self, line: &ArrivalLine<'_>) -> std::io::Result<()> {
        let mut buf = serde_json::to_vec(line)?;
        buf.push(b'\n');
        write_all(&self.arrivals, &buf)
    }
}

fn write_all(file: &Mutex<File>, buf: &[u8]) -> std::io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
    f.write_all(buf)
}
