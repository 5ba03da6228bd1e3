//! The CSV tokenizer: Snowflake's rules over a byte stream, one record at a time, with
//! SIMD searches (`memchr`) for the few bytes that matter. A record with no escape or
//! enclosure byte (the common case) is cut with one search for the record delimiter and
//! one pass over the field delimiters; any other record goes through the state machine.
//! The buffer holds at most one record beyond what is read ahead (bounded by
//! [`MAX_RECORD_BYTES`]).

use std::io::{ErrorKind, Read};

use memchr::{memchr, memchr_iter, memchr2, memchr3};

/// Bytes read from the stream at once.
pub(super) const READ_CHUNK: usize = 256 * 1024;
pub use super::super::MAX_RECORD_BYTES;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The `[source.csv]` characters, checked, as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Dialect {
    /// `None`: `FIELD_DELIMITER = NONE`, one field per record.
    pub delimiter: Option<u8>,
    pub record: u8,
    pub enclose: Option<u8>,
    pub escape_unenclosed: Option<u8>,
    pub escape: Option<u8>,
    pub null_if: Vec<Vec<u8>>,
    pub empty_field_as_null: bool,
}

/// A field's span in its record, and how to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Field {
    pub start: usize,
    pub end: usize,
    /// Enclosed in the enclosure character (`start..end` is the inside).
    pub enclosed: bool,
    /// Holds escapes (or doubled enclosure characters) to undo.
    pub escaped: bool,
}

/// Something wrong with a record's syntax (it is still cut where it ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Malformed {
    /// An enclosed field is not closed before the end of the file.
    Unclosed,
    /// Text follows an enclosed field's closing character.
    AfterClosing,
}

impl Malformed {
    pub fn reason(self, enclose: u8) -> String {
        let quote = char::from(enclose);
        match self {
            Malformed::Unclosed => {
                format!("an enclosed field (`{quote}`) is not closed before the end of the file")
            }
            Malformed::AfterClosing => format!(
                "text after the closing `{quote}` of an enclosed field (a delimiter or the end \
                 of the record must follow it)"
            ),
        }
    }
}

/// Why the stream could not be read on.
#[derive(Debug, thiserror::Error)]
pub(super) enum ScanError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "a record is longer than {} MiB (an enclosed field never closed?)",
        MAX_RECORD_BYTES / (1024 * 1024)
    )]
    TooLong,
}

/// One step of the scan over the buffered bytes.
enum Step {
    /// A record of `len` bytes (delimiter included) whose content ends at `content_end`.
    Record {
        len: usize,
        content_end: usize,
        malformed: Option<Malformed>,
    },
    NeedMore,
}

/// Reads records from a stream.
pub(super) struct Scanner<R> {
    read: R,
    dialect: Dialect,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    at_file_start: bool,
    /// The record last returned: its length (to skip before the next) and content end.
    last_len: usize,
    content_end: usize,
    fields: Vec<Field>,
    max_record: usize,
    /// A read error that came after bytes of the same fill: returned by the next fill,
    /// once the records complete before it are scanned.
    error: Option<std::io::Error>,
}

impl<R: Read> Scanner<R> {
    pub fn new(read: R, dialect: Dialect) -> Scanner<R> {
        Scanner {
            read,
            dialect,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            eof: false,
            at_file_start: true,
            last_len: 0,
            content_end: 0,
            fields: Vec::new(),
            max_record: MAX_RECORD_BYTES,
            error: None,
        }
    }

    /// The same scanner with another bound on a record's length (at least one read chunk).
    #[cfg(test)]
    pub fn with_max_record(mut self, bytes: usize) -> Scanner<R> {
        self.max_record = bytes.max(READ_CHUNK);
        self
    }

    pub fn dialect(&self) -> &Dialect {
        &self.dialect
    }

    /// The next record (`Ok(None)` at the end of the stream); read it with [`Self::record`]
    /// and [`Self::fields`].
    pub fn next_record(&mut self) -> Result<Option<Option<Malformed>>, ScanError> {
        self.start += self.last_len;
        self.last_len = 0;
        loop {
            if self.at_file_start {
                if self.end - self.start < UTF8_BOM.len() && !self.eof {
                    self.fill()?;
                    continue;
                }
                if self.buf[self.start..self.end].starts_with(UTF8_BOM) {
                    self.start += UTF8_BOM.len();
                }
                self.at_file_start = false;
            }
            if self.start == self.end {
                if self.eof {
                    return Ok(None);
                }
                self.fill()?;
                continue;
            }
            match self.scan() {
                Step::Record {
                    len,
                    content_end,
                    malformed,
                } => {
                    self.last_len = len;
                    self.content_end = content_end;
                    return Ok(Some(malformed));
                }
                Step::NeedMore => self.fill()?,
            }
        }
    }

    /// The current record's bytes (without its record delimiter).
    pub fn record(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.content_end]
    }

    /// The current record's bytes, its record delimiter included.
    pub fn record_len(&self) -> usize {
        self.last_len
    }

    /// The current record's fields (spans in [`Self::record`]).
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// Reads more of the stream behind the unread bytes (moving them to the front, or
    /// growing the buffer when they fill it).
    fn fill(&mut self) -> Result<(), ScanError> {
        if let Some(error) = self.error.take() {
            return Err(ScanError::Io(error));
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= self.max_record {
                return Err(ScanError::TooLong);
            }
            let grown = (self.buf.len() * 2).min(self.max_record);
            self.buf.resize(grown, 0);
        }
        // Fill the buffer: a record is scanned again after each fill, so each fill at least
        // doubles what is buffered (linear time even when the stream hands out little
        // pieces).
        let before = self.end;
        while self.end < self.buf.len() {
            match self.read.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                // The bytes read before it (a truncated gzip stream's last records) are
                // scanned first: the error ends the read at the next fill.
                Err(error) if self.end > before => {
                    self.error = Some(error);
                    break;
                }
                Err(error) => return Err(ScanError::Io(error)),
            }
        }
        Ok(())
    }

    /// Cuts the record at the start of the unread bytes, or says more are needed.
    fn scan(&mut self) -> Step {
        let buf = &self.buf[self.start..self.end];
        let dialect = &self.dialect;
        self.fields.clear();
        if let Some(newline) = memchr(dialect.record, buf) {
            let line = &buf[..newline];
            let special = match (dialect.escape_unenclosed, dialect.enclose) {
                (Some(escape), Some(quote)) => memchr2(escape, quote, line),
                (Some(escape), None) => memchr(escape, line),
                (None, Some(quote)) => memchr(quote, line),
                (None, None) => None,
            };
            if special.is_none() {
                let content_end = if dialect.record == b'\n' && line.last() == Some(&b'\r') {
                    newline - 1
                } else {
                    newline
                };
                split_plain(&line[..content_end], dialect.delimiter, &mut self.fields);
                return Step::Record {
                    len: newline + 1,
                    content_end,
                    malformed: None,
                };
            }
        }
        scan_record(buf, self.eof, dialect, &mut self.fields)
    }
}

/// The fields of a record without escapes or enclosures.
fn split_plain(line: &[u8], delimiter: Option<u8>, fields: &mut Vec<Field>) {
    let mut start = 0;
    if let Some(delimiter) = delimiter {
        for at in memchr_iter(delimiter, line) {
            fields.push(Field {
                start,
                end: at,
                enclosed: false,
                escaped: false,
            });
            start = at + 1;
        }
    }
    fields.push(Field {
        start,
        end: line.len(),
        enclosed: false,
        escaped: false,
    });
}

/// The state machine: a record with escapes or enclosed fields.
fn scan_record(buf: &[u8], eof: bool, dialect: &Dialect, fields: &mut Vec<Field>) -> Step {
    let n = buf.len();
    let record = dialect.record;
    let mut i = 0;
    loop {
        let field_start = i;
        if dialect.enclose.is_some() && buf.get(i).copied() == dialect.enclose {
            let quote = buf[i];
            i += 1;
            let mut escaped = false;
            // Find the closing character.
            let close = loop {
                let hit = match dialect.escape {
                    Some(escape) if escape != quote => memchr2(quote, escape, &buf[i..]),
                    _ => memchr(quote, &buf[i..]),
                };
                let Some(k) = hit else {
                    return if eof {
                        fields.push(Field {
                            start: field_start + 1,
                            end: n,
                            enclosed: true,
                            escaped,
                        });
                        Step::Record {
                            len: n,
                            content_end: n,
                            malformed: Some(Malformed::Unclosed),
                        }
                    } else {
                        Step::NeedMore
                    };
                };
                let at = i + k;
                if at + 1 >= n && !eof {
                    return Step::NeedMore;
                }
                if buf[at] != quote {
                    // The escape: the next byte is literal.
                    escaped = true;
                    i = at + 2;
                    if i > n {
                        i = n;
                    }
                    continue;
                }
                if buf.get(at + 1) == Some(&quote) {
                    escaped = true;
                    i = at + 2;
                    continue;
                }
                break at;
            };
            fields.push(Field {
                start: field_start + 1,
                end: close,
                enclosed: true,
                escaped,
            });
            i = close + 1;
            if i == n {
                return Step::Record {
                    len: n,
                    content_end: n,
                    malformed: None,
                };
            }
            let next = buf[i];
            if Some(next) == dialect.delimiter {
                i += 1;
                continue;
            }
            if next == record {
                return Step::Record {
                    len: i + 1,
                    content_end: i,
                    malformed: None,
                };
            }
            if next == b'\r' && record == b'\n' {
                match buf.get(i + 1) {
                    Some(b'\n') => {
                        return Step::Record {
                            len: i + 2,
                            content_end: i,
                            malformed: None,
                        };
                    }
                    None if !eof => return Step::NeedMore,
                    _ => {}
                }
            }
            // Junk after the closing character: the record ends at the next delimiter.
            return match memchr(record, &buf[i..]) {
                Some(k) => Step::Record {
                    len: i + k + 1,
                    content_end: i + k,
                    malformed: Some(Malformed::AfterClosing),
                },
                None if eof => Step::Record {
                    len: n,
                    content_end: n,
                    malformed: Some(Malformed::AfterClosing),
                },
                None => Step::NeedMore,
            };
        }
        // An unenclosed field.
        let mut escaped = false;
        let mut last_escaped = usize::MAX;
        loop {
            let rest = &buf[i..];
            let hit = match (dialect.delimiter, dialect.escape_unenclosed) {
                (Some(delimiter), Some(escape)) => memchr3(delimiter, record, escape, rest),
                (Some(delimiter), None) => memchr2(delimiter, record, rest),
                (None, Some(escape)) => memchr2(record, escape, rest),
                (None, None) => memchr(record, rest),
            };
            let Some(k) = hit else {
                if !eof {
                    return Step::NeedMore;
                }
                fields.push(Field {
                    start: field_start,
                    end: n,
                    enclosed: false,
                    escaped,
                });
                return Step::Record {
                    len: n,
                    content_end: n,
                    malformed: None,
                };
            };
            let at = i + k;
            let byte = buf[at];
            if Some(byte) == dialect.escape_unenclosed {
                if at + 1 >= n {
                    if !eof {
                        return Step::NeedMore;
                    }
                    // A lone escape at the end of the file is kept as it is.
                    i = n;
                    continue;
                }
                escaped = true;
                last_escaped = at + 1;
                i = at + 2;
                continue;
            }
            if Some(byte) == dialect.delimiter {
                fields.push(Field {
                    start: field_start,
                    end: at,
                    enclosed: false,
                    escaped,
                });
                i = at + 1;
                break;
            }
            // The record delimiter.
            let end = if record == b'\n'
                && at > field_start
                && buf[at - 1] == b'\r'
                && last_escaped != at - 1
            {
                at - 1
            } else {
                at
            };
            fields.push(Field {
                start: field_start,
                end,
                enclosed: false,
                escaped,
            });
            return Step::Record {
                len: at + 1,
                content_end: end,
                malformed: None,
            };
        }
    }
}

/// An unenclosed field's text with its escapes undone: the escape makes the next byte
/// literal, and stands for a control character before `n`, `t`, `r`, `b`, `f`, `0`.
pub(super) fn unescape_unenclosed(raw: &[u8], escape: u8, out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < raw.len() {
        let byte = raw[i];
        if byte == escape && i + 1 < raw.len() {
            out.push(match raw[i + 1] {
                b'n' => b'\n',
                b't' => b'\t',
                b'r' => b'\r',
                b'b' => 0x08,
                b'f' => 0x0c,
                b'0' => 0,
                other => other,
            });
            i += 2;
        } else {
            out.push(byte);
            i += 1;
        }
    }
}

/// An enclosed field's inside with doubled enclosure characters and escapes undone.
pub(super) fn unescape_enclosed(raw: &[u8], quote: u8, escape: Option<u8>, out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < raw.len() {
        let byte = raw[i];
        if (byte == quote || Some(byte) == escape) && i + 1 < raw.len() {
            out.push(raw[i + 1]);
            i += 2;
        } else {
            out.push(byte);
            i += 1;
        }
    }
}
