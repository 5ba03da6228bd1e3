//! Snowflake CSV (`TYPE = CSV`): the columns of a file ([`csv_schema`]) and its rows as
//! batches ([`CsvBatches`]), read as a stream. The rules are Snowflake's, with the options
//! of [`CsvOptions`]: see `docs/reference/snowflake-unload.md`.

use std::io::BufRead;
use std::sync::Arc;

use super::{CsvOptions, TextSchema};
use crate::source::parquet::{ReadOptions, SourceBatch, SourceError};

/// The columns of a CSV file: `options.columns` when declared (a header line, if
/// `options.header`, is then checked to have as many fields); else the header's names, or
/// `_COL_0…` for as many fields as the first record has, all `VARCHAR`. `read` is the
/// start of the file (already decompressed); `name` names the file in errors.
pub fn csv_schema(
    read: &mut dyn BufRead,
    name: &str,
    options: &CsvOptions,
) -> Result<Arc<TextSchema>, SourceError> {
    let _ = (read, name, options);
    todo!("csv helper: csv_schema")
}

/// The rows of a CSV file in batches of at most `read.batch_rows` rows and about
/// `max_bytes` bytes of text, from row `read.start_row` on (earlier rows are parsed and
/// skipped; the header line is not a row), with the columns of `read.projection`.
/// Row numbers count records (0-based), not lines.
pub struct CsvBatches {
    _private: (),
}

impl CsvBatches {
    /// Reads `read` (the whole file, decompressed) with `schema` (from [`csv_schema`]).
    pub fn new(
        read: Box<dyn BufRead + Send>,
        name: String,
        options: Arc<CsvOptions>,
        schema: Arc<TextSchema>,
        read_options: &ReadOptions,
        max_bytes: usize,
    ) -> CsvBatches {
        let _ = (read, name, options, schema, read_options, max_bytes);
        todo!("csv helper: CsvBatches::new")
    }
}

impl Iterator for CsvBatches {
    type Item = Result<SourceBatch, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        todo!("csv helper: CsvBatches::next")
    }
}
