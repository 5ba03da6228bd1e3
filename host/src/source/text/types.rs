//! Declared columns of text files: Snowflake type names → contract and Arrow types, and
//! values parsed the way Snowflake writes them in CSV and JSON unloads.
//!
//! The mapping is the one a Parquet unload of the same table gives (see
//! `docs/reference/snowflake-unload.md` and [`crate::source::parquet::contract`]), so one
//! plugin produces the same records from either unload: `NUMBER(p,s)` (and `INT`,
//! `INTEGER`, `BIGINT`, … = `NUMBER(38,0)`) → decimal(p,s) in a `Decimal128`; `FLOAT`,
//! `DOUBLE`, `REAL` → float; `VARCHAR`, `STRING`, `TEXT`, `CHAR` → text; `BOOLEAN`;
//! `DATE` → days; `TIMESTAMP_NTZ(p)` → wall-clock timestamp (ms for p ≤ 3, µs ≤ 6, else
//! ns); `TIMESTAMP_LTZ`/`_TZ` → an instant (the text's offset applied); `VARIANT`,
//! `OBJECT`, `ARRAY` → json.

use arrow_array::ArrayRef;
use arrow_schema::DataType;

use crate::bindings::types::ColumnType;

/// A Snowflake column type, as declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnowflakeType {
    /// `NUMBER(precision, scale)` and its synonyms.
    Number { precision: u8, scale: i8 },
    /// `FLOAT`, `DOUBLE`, `REAL`, …
    Float,
    /// `VARCHAR`, `STRING`, `TEXT`, `CHAR`, …
    Text,
    /// `BOOLEAN`.
    Boolean,
    /// `DATE`.
    Date,
    /// `TIMESTAMP_NTZ(p)` (`TIMESTAMP`, `DATETIME`): wall-clock.
    TimestampNtz { precision: u8 },
    /// `TIMESTAMP_LTZ(p)` / `TIMESTAMP_TZ(p)`: instants.
    TimestampTz { precision: u8 },
    /// `VARIANT`, `OBJECT`, `ARRAY`: JSON text.
    Variant,
}

/// One declared column: `"CUSTOMER_ID NUMBER(38,0)"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredColumn {
    pub name: String,
    pub ty: SnowflakeType,
}

/// A declaration that cannot be read; the message names it and lists the known types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column declaration `{declaration}`: {reason}")]
pub struct DeclarationError {
    pub declaration: String,
    pub reason: String,
}

/// A value that does not parse as its column's declared type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a {ty}: {reason}")]
pub struct ValueError {
    /// The value (at most [`super::ROW_TEXT_QUOTED`] bytes of it).
    pub value: String,
    /// The declared type as written in Snowflake (`NUMBER(38,0)`).
    pub ty: String,
    pub reason: String,
}

impl DeclaredColumn {
    /// Parses `"NAME TYPE"` (the name may be `"quoted"`; the type case-insensitive).
    pub fn parse(declaration: &str) -> Result<DeclaredColumn, DeclarationError> {
        let _ = declaration;
        todo!("csv helper: DeclaredColumn::parse")
    }
}

impl SnowflakeType {
    /// The contract type (what the Parquet unload of such a column gives).
    pub fn column_type(&self) -> ColumnType {
        todo!("csv helper: SnowflakeType::column_type")
    }

    /// The Arrow type of the batches' column.
    pub fn arrow_type(&self) -> DataType {
        todo!("csv helper: SnowflakeType::arrow_type")
    }
}

impl std::fmt::Display for SnowflakeType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let _ = f;
        todo!("csv helper: SnowflakeType Display (NUMBER(38,0), TIMESTAMP_NTZ(3), …)")
    }
}

/// Builds one column of a batch from values as Snowflake writes them.
pub struct ColumnBuilder {
    _private: (),
}

impl ColumnBuilder {
    /// A builder for `ty`, with room for `rows` values.
    pub fn new(ty: SnowflakeType, rows: usize) -> ColumnBuilder {
        let _ = (ty, rows);
        todo!("csv helper: ColumnBuilder::new")
    }

    /// Appends a NULL.
    pub fn push_null(&mut self) {
        todo!("csv helper: push_null")
    }

    /// Appends a value from its text (a CSV field, unescaped; a JSON string).
    pub fn push_text(&mut self, text: &str) -> Result<(), ValueError> {
        let _ = text;
        todo!("csv helper: push_text")
    }

    /// Appends a JSON value (JSON files): numbers, booleans and strings parsed as the type;
    /// objects and arrays only into VARIANT (their JSON text) or TEXT.
    pub fn push_json(&mut self, value: &serde_json::Value) -> Result<(), ValueError> {
        let _ = value;
        todo!("csv helper: push_json")
    }

    /// Removes the last value (a row that failed in a later column).
    pub fn pop(&mut self) {
        todo!("csv helper: pop (or build per row then commit)")
    }

    /// The column.
    pub fn finish(&mut self) -> ArrayRef {
        todo!("csv helper: finish")
    }
}
