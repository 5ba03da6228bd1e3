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
//! What the file guarantees: it holds every dead letter the delivery state holds for the
//! rows this run wrote. A letter is written to the file before it is handed to the state,
//! and the checkpointer flushes and fsyncs the file ([`letter_sync`]) before it writes a
//! chunk of dead letters to the state, so a crash (`kill -9`, SIGTERM, power loss) never
//! leaves the state with a dead letter the file lacks. After a crash the file may hold rows
//! the state does not (their segment was not acknowledged): the rerun reads those rows
//! again and writes them again, so a row can appear twice (the later line is current, as
//! `retry` reads the state). Lines are whole: a line cut by a crash is ended before the
//! next run appends.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::state::checkpoint::{LetterSync, LetterSyncError};
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
    /// Creates the folder and opens the file for appending. A last line cut short by a
    /// crash is ended first, so the next letter starts a line of its own.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(DEAD_LETTER_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        if ends_mid_line(&mut file)? {
            file.write_all(b"\n")?;
        }
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

    /// Writes what is buffered and makes the file durable (fsync).
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

/// Whether the file's last byte is not a newline (a line cut short).
fn ends_mid_line(file: &mut File) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// Makes the dead-letter file durable before the state records the letters it holds: what
/// the checkpointer calls before it writes a chunk of dead letters (see the module docs).
pub fn letter_sync(writer: Arc<Mutex<DeadLetterWriter>>) -> LetterSync {
    Box::new(move || {
        let mut writer = writer.lock().unwrap_or_else(|p| p.into_inner());
        writer.flush().map_err(|source| LetterSyncError {
            path: writer.path().to_path_buf(),
            source,
        })
    })
}
