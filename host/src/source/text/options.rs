//! `[source.csv]` and `[source.json]`: Snowflake's file-format options by their Snowflake
//! names (lower-case in TOML), with Snowflake's **unload** defaults as ours, so a default
//! `COPY INTO @stage` reads with no options at all. Unknown keys are refused.

use serde::Deserialize;

/// `[source.csv]` (Snowflake `TYPE = CSV` options).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsvOptions {
    /// `FIELD_DELIMITER`, one character (default `,`).
    pub field_delimiter: String,
    /// `RECORD_DELIMITER`, one character (default `\n`; a `\r` before it is dropped).
    pub record_delimiter: String,
    /// `FIELD_OPTIONALLY_ENCLOSED_BY`: `"NONE"` (default), `"\""` or `"'"`. Inside an
    /// enclosed field the character is doubled (`""`) or escaped with `escape`.
    pub field_optionally_enclosed_by: String,
    /// `ESCAPE_UNENCLOSED_FIELD` (default `\`; `"NONE"` for none): in an unenclosed field it
    /// escapes the delimiters, itself, and stands for `\n`, `\t`, `\r`, `\b`, `\f`, `\0`.
    pub escape_unenclosed_field: String,
    /// `ESCAPE` for enclosed fields (default `"NONE"`).
    pub escape: String,
    /// `NULL_IF`: field texts that mean SQL NULL (default `["\\N"]`), compared before any
    /// unescaping, on unenclosed fields.
    pub null_if: Vec<String>,
    /// `EMPTY_FIELD_AS_NULL` (default true): an empty unenclosed field is NULL (an enclosed
    /// empty field `""` is always the empty string).
    pub empty_field_as_null: bool,
    /// The unload's `HEADER` (default false): true when the first line holds the column
    /// names; false names them `_COL_0`, `_COL_1`, … unless `columns` names them.
    pub header: bool,
    /// Declared columns, in file order: `"NAME TYPE"` with Snowflake type names
    /// (`"CUSTOMER_ID NUMBER(38,0)"`, `"UPDATED_AT TIMESTAMP_NTZ(3)"`). Empty: every
    /// column is text.
    pub columns: Vec<String>,
}

/// The default `FIELD_DELIMITER`.
pub const DEFAULT_FIELD_DELIMITER: &str = ",";
/// The default `RECORD_DELIMITER`.
pub const DEFAULT_RECORD_DELIMITER: &str = "\n";
/// The default `ESCAPE_UNENCLOSED_FIELD`.
pub const DEFAULT_ESCAPE_UNENCLOSED_FIELD: &str = "\\";
/// The default `NULL_IF`.
pub const DEFAULT_NULL_IF: &str = "\\N";
/// `NONE`, as Snowflake spells "no character".
pub const NONE: &str = "NONE";

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            field_delimiter: DEFAULT_FIELD_DELIMITER.into(),
            record_delimiter: DEFAULT_RECORD_DELIMITER.into(),
            field_optionally_enclosed_by: NONE.into(),
            escape_unenclosed_field: DEFAULT_ESCAPE_UNENCLOSED_FIELD.into(),
            escape: NONE.into(),
            null_if: vec![DEFAULT_NULL_IF.into()],
            empty_field_as_null: true,
            header: false,
            columns: Vec::new(),
        }
    }
}

/// Rows a JSON stage's columns are inferred from when `columns` is empty.
pub const DEFAULT_INFER_ROWS: usize = 10_000;

/// `[source.json]` (Snowflake `TYPE = JSON` unloads: one object per line).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JsonOptions {
    /// Declared columns, as in `[source.csv]`: each object's keys are read as these typed
    /// columns. Empty: inferred from the stage's first file.
    pub columns: Vec<String>,
    /// Rows of the first file the inference reads (default 10,000).
    pub infer_rows: usize,
}

impl Default for JsonOptions {
    fn default() -> Self {
        JsonOptions {
            columns: Vec::new(),
            infer_rows: DEFAULT_INFER_ROWS,
        }
    }
}
