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

use super::record::DeadLetter;
use crate::state::checkpoint::{LetterSync, LetterSyncError};

/// File name of the dead letters inside the dead-letter folder.
pub const DEAD_LETTER_FILE: &str = "dead-letters.ndjson";

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deadletter::RowStage;

    fn letter(row: u64) -> DeadLetter {
        DeadLetter {
            file: "f.parquet".into(),
            key: None,
            identity: None,
            row,
            stage: RowStage::Read,
            kind: "unreadable-file".into(),
            message: "m".into(),
            plugin: None,
            status: None,
            receipt_id: None,
            entity_type: None,
            record: None,
            input: serde_json::Value::Null,
        }
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn letters_are_appended_one_a_line_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("letters");
        let mut writer = DeadLetterWriter::open(&folder).unwrap();
        writer.write(&letter(1)).unwrap();
        writer.write(&letter(2)).unwrap();
        writer.flush().unwrap();
        assert_eq!(writer.count(), 2);
        assert_eq!(writer.path(), folder.join(DEAD_LETTER_FILE));
        drop(writer);

        let mut again = DeadLetterWriter::open(&folder).unwrap();
        again.write(&letter(3)).unwrap();
        again.flush().unwrap();
        assert_eq!(again.count(), 1);
        let rows: Vec<u64> = lines(again.path())
            .iter()
            .map(|l| serde_json::from_str::<DeadLetter>(l).unwrap().row)
            .collect();
        assert_eq!(rows, [1, 2, 3]);
    }

    #[test]
    fn a_line_cut_by_a_crash_is_ended_before_the_next_letter() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DEAD_LETTER_FILE), b"{\"file\":\"f.par").unwrap();
        let mut writer = DeadLetterWriter::open(dir.path()).unwrap();
        writer.write(&letter(7)).unwrap();
        writer.flush().unwrap();
        let lines = lines(writer.path());
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0], "{\"file\":\"f.par");
        assert_eq!(
            serde_json::from_str::<DeadLetter>(&lines[1]).unwrap().row,
            7
        );
    }

    #[test]
    fn letter_sync_writes_out_what_is_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let writer = Arc::new(Mutex::new(DeadLetterWriter::open(dir.path()).unwrap()));
        let path = dir.path().join(DEAD_LETTER_FILE);
        writer.lock().unwrap().write(&letter(4)).unwrap();
        assert!(lines(&path).is_empty(), "buffered until synced");
        let sync = letter_sync(writer.clone());
        sync().unwrap();
        assert_eq!(lines(&path).len(), 1);
    }
}
