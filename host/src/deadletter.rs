//! The dead-letter output: every row that did not reach CluedIn and was not filtered by
//! the plugin, with its file, row, stage, cause and the input row as JSON.
//!
//! `<dir>/dead-letters.ndjson`, one JSON object per line:
//!
//! ```json
//! {"file":"stage/data_0_0_0.snappy.parquet","row":17,"stage":"plugin","kind":"rejected",
//!  "message":"CUSTOMER_ID is null","plugin":"customer","input":{"CUSTOMER_ID":null,…}}
//! {"file":"…","row":42,"stage":"endpoint","kind":"http-400","status":400,
//!  "receiptId":"…","message":"…","entityType":"Customer","record":{…},"input":{…}}
//! ```
//!
//! Lines are appended with one `write` each and flushed per batch, so a reader never sees
//! a partial line from a finished run.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::transform::RowStage;

/// File name of the dead letters inside the dead-letter folder.
pub const DEAD_LETTER_FILE: &str = "dead-letters.ndjson";

/// One dead-lettered row.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub file: String,
    /// The object key (the state's dead letters; for `retry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The file version the row belongs to (see `state::files::identity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    pub row: u64,
    pub stage: RowStage,
    pub kind: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    /// The record as it was sent (endpoint rejections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<serde_json::Value>,
    /// The input row (the columns that were read), as JSON.
    #[serde(default)]
    pub input: serde_json::Value,
}

/// Appends dead letters to `<dir>/dead-letters.ndjson`.
pub struct DeadLetterWriter {
    path: PathBuf,
    out: BufWriter<File>,
    count: u64,
}

impl DeadLetterWriter {
    /// Creates the folder and opens the file for appending.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(DEAD_LETTER_FILE);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(DeadLetterWriter {
            path,
            out: BufWriter::new(file),
            count: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Dead letters written by this writer.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn write(&mut self, letter: &DeadLetter) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(letter).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.write_line(&line)
    }

    /// Writes one serialized letter (ending in a newline).
    pub fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.out.write_all(line)?;
        self.count += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}
