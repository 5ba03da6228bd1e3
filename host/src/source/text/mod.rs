//! CSV and JSON stage files (`COPY INTO @stage … FILE_FORMAT = (TYPE = CSV | JSON)`): their
//! rows as the same Arrow batches a Parquet file gives ([`SourceBatch`]), read as a stream
//! (constant memory whatever the file's size; whole-file compression is undone by the
//! caller, see [`super::format`]).
//!
//! - [`options`]: `[source.csv]` and `[source.json]`, by Snowflake's file-format option
//!   names, with Snowflake's unload defaults;
//! - [`types`]: declared columns (`"CUSTOMER_ID NUMBER(38,0)"`): Snowflake type names → the
//!   contract and Arrow types a Parquet unload of the same table gives, and the parsing of
//!   values as Snowflake writes them;
//! - [`csv`]: Snowflake's CSV rules (delimiters, optional enclosure, escapes, `NULL_IF`,
//!   `EMPTY_FIELD_AS_NULL`, `HEADER`);
//! - [`json`]: NDJSON, one object per line; columns declared or inferred with
//!   [`crate::source::json`]'s rules.
//!
//! A row that cannot be read (a value that does not parse as its declared type, a wrong
//! number of fields, a line that is not a JSON object) is [`SourceError::Row`]: the batch
//! iterators yield it **and go on** with the next row; every other error ends them.

use std::sync::Arc;

use arrow_schema::{Field, Schema, SchemaRef};

use crate::bindings::types::ColumnSchema;
#[allow(unused_imports)]
use crate::source::parquet::{SourceBatch, SourceError};

/// The longest record (CSV) or line (JSON) read (Snowflake's VARCHAR holds at most 128 MB;
/// escaping can double it): a longer one (most likely an enclosure never closed, or not
/// one object per line) ends the file's read.
pub const MAX_RECORD_BYTES: usize = 256 * 1024 * 1024;

pub mod csv;
pub mod json;
pub mod options;
pub mod types;
pub mod values;

pub use self::options::{CsvOptions, JsonOptions};
pub use self::types::{DeclaredColumn, SnowflakeType};

/// The columns of a text file: declared, from the header line, `_COL_0…` or inferred.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSchema {
    /// Each column's name and type (undeclared CSV columns are `VARCHAR`).
    pub columns: Vec<DeclaredColumn>,
    /// The Arrow schema of the batches (every column, before any projection).
    pub arrow: SchemaRef,
    /// The plugin contract's view of the same columns (what a Parquet unload of the same
    /// table gives: see [`types`]). Columns are nullable unless declared `NOT NULL`.
    pub contract: Vec<ColumnSchema>,
    /// `None`: each value is parsed as its column's declared [`SnowflakeType`]. `Some`: a
    /// JSON stage's inferred columns: values are read by the inference's rules
    /// ([`crate::source::json`]), `arrow` and `contract` are the relay's types (see
    /// [`json::InferredColumn`]), and `columns` name the nearest Snowflake type (an
    /// integer: `NUMBER(38,0)`).
    pub inferred: Option<Vec<json::InferredColumn>>,
}

impl TextSchema {
    /// The schema of these columns (Arrow and contract types from [`SnowflakeType`]).
    pub fn new(columns: Vec<DeclaredColumn>) -> Arc<TextSchema> {
        let fields: Vec<Field> = columns
            .iter()
            .map(|column| Field::new(&column.name, column.ty.arrow_type(), column.nullable))
            .collect();
        let contract = columns
            .iter()
            .map(|column| ColumnSchema {
                name: column.name.clone(),
                type_: column.ty.column_type(),
                nullable: column.nullable,
            })
            .collect();
        Arc::new(TextSchema {
            columns,
            arrow: Arc::new(Schema::new(fields)),
            contract,
            inferred: None,
        })
    }
}

/// How many bytes of a row's text a [`SourceError::Row`] quotes at most.
pub const ROW_TEXT_QUOTED: usize = 200;
