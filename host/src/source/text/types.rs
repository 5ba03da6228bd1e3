//! Declared columns of text files: Snowflake type names → contract and Arrow types, and
//! values parsed the way Snowflake writes them in CSV and JSON unloads ([`super::values`]).
//!
//! The mapping is the one [`crate::source::parquet::contract_schema`] gives for a Parquet
//! unload of the same table (see `docs/reference/snowflake-unload.md`), so one plugin
//! produces the same records from either unload:
//! - `NUMBER(p,s)` (`DECIMAL`, `NUMERIC`; `INT`, `INTEGER`, `BIGINT`, … = `NUMBER(38,0)`)
//!   → decimal(p,s) in a `Decimal128(p,s)`;
//! - `FLOAT`, `DOUBLE`, `REAL`, … → float (`Float64`);
//! - `VARCHAR`, `STRING`, `TEXT`, `CHAR`, … and `GEOGRAPHY`/`GEOMETRY` (WKT text) → text;
//! - `BOOLEAN`; `DATE` → days (`Date32`);
//! - `TIMESTAMP_NTZ(p)` (`TIMESTAMP`, `DATETIME`) → wall-clock timestamp in milliseconds,
//!   whatever `p`: Snowflake's Parquet unload writes every TIMESTAMP_NTZ as INT64
//!   `TIMESTAMP_MILLIS`, which arrow-rs reads as `Timestamp(ms, "UTC")`;
//! - `TIMESTAMP_LTZ(p)`/`TIMESTAMP_TZ(p)` → an instant in milliseconds (the text's offset
//!   applied; Snowflake refuses to unload them to Parquet, so this is Parquet's
//!   `TIMESTAMP(MILLIS, isAdjustedToUTC=true)`);
//! - `VARIANT`, `OBJECT`, `ARRAY` → text holding JSON (validated): Snowflake's Parquet
//!   unload writes them as UTF8 strings without the JSON annotation, so `contract_schema`
//!   gives text for them.
//!
//! `TIME`, `BINARY` and anything else are refused with the declaration named.
//! `NOT NULL` after the type makes the column not nullable (a NULL in it is a row error).

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, StringArray,
    TimestampMillisecondArray,
};
use arrow_buffer::{BooleanBuffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, TimeUnit as ArrowTimeUnit};

use super::values::{self, Problem};
use crate::bindings::types::{ColumnType, ScalarType, TimeUnit, TimestampType};

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

/// Snowflake's default NUMBER precision.
pub const DEFAULT_NUMBER_PRECISION: u8 = 38;
/// Snowflake's largest NUMBER precision.
pub const MAX_NUMBER_PRECISION: u8 = 38;
/// Snowflake's default (and largest) fractional-seconds precision of timestamps.
pub const DEFAULT_TIMESTAMP_PRECISION: u8 = 9;

/// The type names [`DeclaredColumn::parse`] knows (for its error message).
const KNOWN_TYPES: &str = "NUMBER/DECIMAL/NUMERIC(p,s), INT/INTEGER/BIGINT/SMALLINT/TINYINT/BYTEINT, \
FLOAT/FLOAT4/FLOAT8/DOUBLE/DOUBLE PRECISION/REAL, VARCHAR/STRING/TEXT/CHAR/CHARACTER/NCHAR/NVARCHAR(n), \
BOOLEAN, DATE, TIMESTAMP_NTZ/DATETIME/TIMESTAMP(p), TIMESTAMP_LTZ(p), TIMESTAMP_TZ(p), \
VARIANT/OBJECT/ARRAY, GEOGRAPHY/GEOMETRY";

/// One declared column: `"CUSTOMER_ID NUMBER(38,0)"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredColumn {
    pub name: String,
    pub ty: SnowflakeType,
    /// False when declared `NOT NULL` (a NULL value is then a row error).
    pub nullable: bool,
}

/// A declaration that cannot be read; the message names it and says why.
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

impl ValueError {
    fn new(value: &str, ty: SnowflakeType, problem: Problem) -> ValueError {
        ValueError {
            value: truncated(value, super::ROW_TEXT_QUOTED).to_owned(),
            ty: ty.to_string(),
            reason: problem.to_string(),
        }
    }
}

/// At most `limit` bytes of `text`, cut at a character boundary.
pub(crate) fn truncated(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl DeclaredColumn {
    /// A nullable column of `ty`.
    pub fn new(name: impl Into<String>, ty: SnowflakeType) -> DeclaredColumn {
        DeclaredColumn {
            name: name.into(),
            ty,
            nullable: true,
        }
    }

    /// Parses `"NAME TYPE [NOT NULL]"`: the name as written (`"quoted"` keeps its case and
    /// may hold spaces, `""` inside stands for `"`), the type case-insensitive.
    pub fn parse(declaration: &str) -> Result<DeclaredColumn, DeclarationError> {
        let refuse = |reason: String| DeclarationError {
            declaration: declaration.to_owned(),
            reason,
        };
        let trimmed = declaration.trim();
        let (name, rest) = split_name(trimmed).map_err(refuse)?;
        let rest = rest.trim();
        if name.is_empty() || rest.is_empty() {
            return Err(refuse(
                "expected `NAME TYPE`, e.g. `CUSTOMER_ID NUMBER(38,0)`".to_owned(),
            ));
        }
        let (ty, nullable) = parse_type(rest).map_err(refuse)?;
        Ok(DeclaredColumn { name, ty, nullable })
    }
}

/// The name at the start of a declaration and the text after it.
fn split_name(text: &str) -> Result<(String, &str), String> {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '"' {
                name.push(c);
                continue;
            }
            if quoted[i + 1..].starts_with('"') {
                name.push('"');
                chars.next();
                continue;
            }
            let rest = &quoted[i + 1..];
            if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
                return Err("a quoted name must be followed by a space and the type".to_owned());
            }
            return Ok((name, rest));
        }
        return Err("the quoted name has no closing `\"`".to_owned());
    }
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    Ok((text[..end].to_owned(), &text[end..]))
}

/// The type (and whether it is nullable) from its text: `NUMBER(38, 0) NOT NULL`.
fn parse_type(text: &str) -> Result<(SnowflakeType, bool), String> {
    // Upper-case, one space between words, none around parentheses and commas.
    let mut normal = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !normal.is_empty() && !normal.ends_with(['(', ',']) && !word.starts_with([')', '(', ','])
        {
            normal.push(' ');
        }
        normal.push_str(&word.to_ascii_uppercase());
    }
    let (normal, nullable) = match normal.strip_suffix(" NOT NULL") {
        Some(ty) => (ty.to_owned(), false),
        None => match normal.strip_suffix(" NULL") {
            Some(ty) => (ty.to_owned(), true),
            None => (normal, true),
        },
    };
    let (base, params) = match normal.find('(') {
        Some(open) => {
            let inner = normal[open + 1..]
                .strip_suffix(')')
                .ok_or_else(|| format!("`{normal}`: expected `)` at the end of the type"))?;
            let params: Result<Vec<u32>, _> =
                inner.split(',').map(|p| p.trim().parse::<u32>()).collect();
            let params = params
                .map_err(|_| format!("`{normal}`: the type's parameters must be whole numbers"))?;
            (normal[..open].trim_end().to_owned(), params)
        }
        None => (normal, Vec::new()),
    };
    let no_params = |ty: SnowflakeType| {
        if params.is_empty() {
            Ok(ty)
        } else {
            Err(format!("{base} takes no parameters"))
        }
    };
    let ty = match base.as_str() {
        "NUMBER" | "DECIMAL" | "NUMERIC" => number(&base, &params)?,
        "INT" | "INTEGER" | "BIGINT" | "SMALLINT" | "TINYINT" | "BYTEINT" => {
            no_params(SnowflakeType::Number {
                precision: DEFAULT_NUMBER_PRECISION,
                scale: 0,
            })?
        }
        "FLOAT" | "FLOAT4" | "FLOAT8" | "DOUBLE" | "DOUBLE PRECISION" | "REAL" => {
            no_params(SnowflakeType::Float)?
        }
        "VARCHAR" | "STRING" | "TEXT" | "CHAR" | "CHARACTER" | "NCHAR" | "NVARCHAR"
        | "NVARCHAR2" | "CHAR VARYING" | "NCHAR VARYING" => match params.as_slice() {
            [] => SnowflakeType::Text,
            [length] if *length >= 1 => SnowflakeType::Text,
            _ => return Err(format!("{base} takes one length of at least 1: {base}(n)")),
        },
        "GEOGRAPHY" | "GEOMETRY" => no_params(SnowflakeType::Text)?,
        "BOOLEAN" => no_params(SnowflakeType::Boolean)?,
        "DATE" => no_params(SnowflakeType::Date)?,
        "TIMESTAMP_NTZ"
        | "TIMESTAMPNTZ"
        | "DATETIME"
        | "TIMESTAMP"
        | "TIMESTAMP WITHOUT TIME ZONE" => SnowflakeType::TimestampNtz {
            precision: timestamp_precision(&base, &params)?,
        },
        "TIMESTAMP_LTZ"
        | "TIMESTAMPLTZ"
        | "TIMESTAMP WITH LOCAL TIME ZONE"
        | "TIMESTAMP_TZ"
        | "TIMESTAMPTZ"
        | "TIMESTAMP WITH TIME ZONE" => SnowflakeType::TimestampTz {
            precision: timestamp_precision(&base, &params)?,
        },
        "VARIANT" | "OBJECT" | "ARRAY" => no_params(SnowflakeType::Variant)?,
        "TIME" => {
            return Err(
                "TIME is not supported: times of day are not in the plugin contract (as for \
                 Parquet); declare the column VARCHAR to receive its text"
                    .to_owned(),
            );
        }
        "BINARY" | "VARBINARY" => {
            return Err(format!(
                "{base} is not supported in text files; declare the column VARCHAR to receive \
                 its text (hex or base64, as the unload's BINARY_FORMAT wrote it)"
            ));
        }
        _ => return Err(format!("unknown type `{base}`; known types: {KNOWN_TYPES}")),
    };
    Ok((ty, nullable))
}

fn number(base: &str, params: &[u32]) -> Result<SnowflakeType, String> {
    let (precision, scale) = match params {
        [] => (u32::from(DEFAULT_NUMBER_PRECISION), 0),
        [precision] => (*precision, 0),
        [precision, scale] => (*precision, *scale),
        _ => return Err(format!("{base} takes (precision[, scale])")),
    };
    if !(1..=u32::from(MAX_NUMBER_PRECISION)).contains(&precision) || scale > precision {
        return Err(format!(
            "{base}({precision},{scale}): the precision must be 1 to {MAX_NUMBER_PRECISION} \
             and the scale 0 to the precision"
        ));
    }
    Ok(SnowflakeType::Number {
        precision: precision as u8,
        scale: scale as i8,
    })
}

fn timestamp_precision(base: &str, params: &[u32]) -> Result<u8, String> {
    match params {
        [] => Ok(DEFAULT_TIMESTAMP_PRECISION),
        [precision] if *precision <= u32::from(DEFAULT_TIMESTAMP_PRECISION) => Ok(*precision as u8),
        _ => Err(format!(
            "{base} takes one precision of 0 to {DEFAULT_TIMESTAMP_PRECISION}: {base}(p)"
        )),
    }
}

impl SnowflakeType {
    /// The contract type (what the Parquet unload of such a column gives).
    pub fn column_type(&self) -> ColumnType {
        ColumnType::Scalar(match *self {
            SnowflakeType::Number { precision, scale } => ScalarType::Decimal((precision, scale)),
            SnowflakeType::Float => ScalarType::Float,
            SnowflakeType::Text | SnowflakeType::Variant => ScalarType::Text,
            SnowflakeType::Boolean => ScalarType::Boolean,
            SnowflakeType::Date => ScalarType::Date,
            SnowflakeType::TimestampNtz { .. } => ScalarType::Timestamp(TimestampType {
                unit: TimeUnit::Millis,
                wall_clock: true,
            }),
            SnowflakeType::TimestampTz { .. } => ScalarType::Timestamp(TimestampType {
                unit: TimeUnit::Millis,
                wall_clock: false,
            }),
        })
    }

    /// The Arrow type of the batches' column (the one arrow-rs gives the Parquet unload).
    pub fn arrow_type(&self) -> DataType {
        match *self {
            SnowflakeType::Number { precision, scale } => DataType::Decimal128(precision, scale),
            SnowflakeType::Float => DataType::Float64,
            SnowflakeType::Text | SnowflakeType::Variant => DataType::Utf8,
            SnowflakeType::Boolean => DataType::Boolean,
            SnowflakeType::Date => DataType::Date32,
            SnowflakeType::TimestampNtz { .. } | SnowflakeType::TimestampTz { .. } => {
                DataType::Timestamp(ArrowTimeUnit::Millisecond, Some(UTC.into()))
            }
        }
    }
}

/// The zone arrow-rs gives every Snowflake timestamp column read from Parquet.
const UTC: &str = "UTC";

impl std::fmt::Display for SnowflakeType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnowflakeType::Number { precision, scale } => write!(f, "NUMBER({precision},{scale})"),
            SnowflakeType::Float => f.write_str("FLOAT"),
            SnowflakeType::Text => f.write_str("VARCHAR"),
            SnowflakeType::Boolean => f.write_str("BOOLEAN"),
            SnowflakeType::Date => f.write_str("DATE"),
            SnowflakeType::TimestampNtz { precision } => write!(f, "TIMESTAMP_NTZ({precision})"),
            SnowflakeType::TimestampTz { precision } => write!(f, "TIMESTAMP_TZ({precision})"),
            SnowflakeType::Variant => f.write_str("VARIANT"),
        }
    }
}

/// The values of a column being built (one entry per row, nulls included).
enum Values {
    Decimal(Vec<i128>),
    Float(Vec<f64>),
    Boolean(Vec<bool>),
    Date(Vec<i32>),
    Timestamp(Vec<i64>),
    /// UTF-8 bytes and the end offset of each value.
    Text {
        data: Vec<u8>,
        ends: Vec<i32>,
    },
}

/// Builds one column of a batch from values as Snowflake writes them.
pub struct ColumnBuilder {
    ty: SnowflakeType,
    nullable: bool,
    values: Values,
    /// Per row, whether it holds a value.
    valid: Vec<bool>,
    nulls: usize,
}

impl ColumnBuilder {
    /// A builder for `ty`, with room for `rows` values (nullable: see [`Self::for_column`]).
    pub fn new(ty: SnowflakeType, rows: usize) -> ColumnBuilder {
        let values = match ty {
            SnowflakeType::Number { .. } => Values::Decimal(Vec::with_capacity(rows)),
            SnowflakeType::Float => Values::Float(Vec::with_capacity(rows)),
            SnowflakeType::Boolean => Values::Boolean(Vec::with_capacity(rows)),
            SnowflakeType::Date => Values::Date(Vec::with_capacity(rows)),
            SnowflakeType::TimestampNtz { .. } | SnowflakeType::TimestampTz { .. } => {
                Values::Timestamp(Vec::with_capacity(rows))
            }
            SnowflakeType::Text | SnowflakeType::Variant => Values::Text {
                data: Vec::new(),
                ends: Vec::with_capacity(rows),
            },
        };
        ColumnBuilder {
            ty,
            nullable: true,
            values,
            valid: Vec::with_capacity(rows),
            nulls: 0,
        }
    }

    /// A builder for a declared column: a NULL in a `NOT NULL` column is refused by
    /// [`Self::push_null_checked`].
    pub fn for_column(column: &DeclaredColumn, rows: usize) -> ColumnBuilder {
        let mut builder = ColumnBuilder::new(column.ty, rows);
        builder.nullable = column.nullable;
        builder
    }

    /// Rows pushed so far.
    pub fn len(&self) -> usize {
        self.valid.len()
    }

    /// Whether no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.valid.is_empty()
    }

    /// Appends a NULL (unchecked: see [`Self::push_null_checked`]).
    pub fn push_null(&mut self) {
        match &mut self.values {
            Values::Decimal(values) => values.push(0),
            Values::Float(values) => values.push(0.0),
            Values::Boolean(values) => values.push(false),
            Values::Date(values) => values.push(0),
            Values::Timestamp(values) => values.push(0),
            Values::Text { data, ends } => ends.push(data.len() as i32),
        }
        self.valid.push(false);
        self.nulls += 1;
    }

    /// Appends a NULL, or refuses it when the column is `NOT NULL`; `written` is how the
    /// file wrote it (`\N`, an empty field, `null`), for the message.
    pub fn push_null_checked(&mut self, written: &str) -> Result<(), ValueError> {
        if !self.nullable {
            return Err(ValueError {
                value: truncated(written, super::ROW_TEXT_QUOTED).to_owned(),
                ty: format!("{} NOT NULL", self.ty),
                reason: Problem::NotNull.to_string(),
            });
        }
        self.push_null();
        Ok(())
    }

    /// Appends a value from its text (a CSV field, unescaped; a JSON string).
    pub fn push_text(&mut self, text: &str) -> Result<(), ValueError> {
        let ty = self.ty;
        let error = |problem| ValueError::new(text, ty, problem);
        match &mut self.values {
            Values::Decimal(values) => {
                let SnowflakeType::Number { precision, scale } = ty else {
                    unreachable!("a decimal builder is built for NUMBER")
                };
                values.push(values::decimal(text, precision, scale).map_err(error)?);
            }
            Values::Float(values) => values.push(values::float(text).map_err(error)?),
            Values::Boolean(values) => values.push(values::boolean(text).map_err(error)?),
            Values::Date(values) => values.push(values::date(text).map_err(error)?),
            Values::Timestamp(values) => {
                let zoned = matches!(ty, SnowflakeType::TimestampTz { .. });
                values.push(values::timestamp_millis(text, zoned).map_err(error)?);
            }
            Values::Text { data, ends } => {
                if ty == SnowflakeType::Variant
                    && serde_json::from_str::<serde::de::IgnoredAny>(text).is_err()
                {
                    return Err(error(Problem::NotJson));
                }
                let end =
                    i32::try_from(data.len() + text.len()).map_err(|_| error(Problem::TooLong))?;
                data.extend_from_slice(text.as_bytes());
                ends.push(end);
            }
        }
        self.valid.push(true);
        Ok(())
    }

    /// Appends a JSON value (JSON files): numbers, booleans and strings parsed as the type;
    /// objects and arrays only into VARIANT (their JSON text) or TEXT; `null` as
    /// [`Self::push_null_checked`].
    pub fn push_json(&mut self, value: &serde_json::Value) -> Result<(), ValueError> {
        use serde_json::Value;
        let kind = |found| {
            let text = value.to_string();
            Err(ValueError::new(&text, self.ty, Problem::JsonKind { found }))
        };
        match (self.ty, value) {
            (_, Value::Null) => self.push_null_checked("null"),
            (SnowflakeType::Variant, _) => self.push_text(&value.to_string()),
            (_, Value::String(text)) => self.push_text(text),
            (SnowflakeType::Float, Value::Number(number)) => match number.as_f64() {
                Some(float) => {
                    if let Values::Float(values) = &mut self.values {
                        values.push(float);
                    }
                    self.valid.push(true);
                    Ok(())
                }
                None => self.push_text(&number.to_string()),
            },
            (SnowflakeType::Boolean, Value::Bool(flag)) => {
                if let Values::Boolean(values) = &mut self.values {
                    values.push(*flag);
                }
                self.valid.push(true);
                Ok(())
            }
            (
                SnowflakeType::Number { .. } | SnowflakeType::Text | SnowflakeType::Boolean,
                Value::Number(number),
            ) => self.push_text(&number.to_string()),
            (SnowflakeType::Text, Value::Bool(_) | Value::Array(_) | Value::Object(_)) => {
                self.push_text(&value.to_string())
            }
            (_, Value::Bool(_)) => kind("boolean"),
            (_, Value::Number(_)) => kind("number"),
            (_, Value::Array(_)) => kind("array"),
            (_, Value::Object(_)) => kind("object"),
        }
    }

    /// Removes the last value (a row that failed in a later column). Does nothing when
    /// the builder is empty.
    pub fn pop(&mut self) {
        let Some(valid) = self.valid.pop() else {
            return;
        };
        if !valid {
            self.nulls -= 1;
        }
        match &mut self.values {
            Values::Decimal(values) => {
                values.pop();
            }
            Values::Float(values) => {
                values.pop();
            }
            Values::Boolean(values) => {
                values.pop();
            }
            Values::Date(values) => {
                values.pop();
            }
            Values::Timestamp(values) => {
                values.pop();
            }
            Values::Text { data, ends } => {
                ends.pop();
                data.truncate(ends.last().map_or(0, |&end| end as usize));
            }
        }
    }

    /// The column of every value pushed since the last `finish`; the builder is then empty
    /// (and keeps its capacity for the next batch).
    pub fn finish(&mut self) -> ArrayRef {
        let rows = self.valid.len();
        let nulls = (self.nulls > 0)
            .then(|| NullBuffer::new(BooleanBuffer::from_iter(self.valid.iter().copied())));
        self.valid.clear();
        self.nulls = 0;
        match &mut self.values {
            Values::Decimal(values) => {
                let values = std::mem::replace(values, Vec::with_capacity(rows));
                let SnowflakeType::Number { precision, scale } = self.ty else {
                    unreachable!("a decimal builder is built for NUMBER")
                };
                Arc::new(
                    Decimal128Array::new(ScalarBuffer::from(values), nulls)
                        .with_data_type(DataType::Decimal128(precision, scale)),
                )
            }
            Values::Float(values) => {
                let values = std::mem::replace(values, Vec::with_capacity(rows));
                Arc::new(Float64Array::new(ScalarBuffer::from(values), nulls))
            }
            Values::Boolean(values) => {
                let values = std::mem::replace(values, Vec::with_capacity(rows));
                Arc::new(BooleanArray::new(BooleanBuffer::from(values), nulls))
            }
            Values::Date(values) => {
                let values = std::mem::replace(values, Vec::with_capacity(rows));
                Arc::new(Date32Array::new(ScalarBuffer::from(values), nulls))
            }
            Values::Timestamp(values) => {
                let values = std::mem::replace(values, Vec::with_capacity(rows));
                Arc::new(
                    TimestampMillisecondArray::new(ScalarBuffer::from(values), nulls)
                        .with_timezone(UTC),
                )
            }
            Values::Text { data, ends } => {
                let bytes = data.len();
                let data = std::mem::replace(data, Vec::with_capacity(bytes));
                let ends = std::mem::replace(ends, Vec::with_capacity(rows));
                let mut offsets = Vec::with_capacity(ends.len() + 1);
                offsets.push(0i32);
                offsets.extend_from_slice(&ends);
                // The offsets grow by construction and every value was a `&str`: the
                // checked constructor cannot fail.
                Arc::new(
                    StringArray::try_new(
                        OffsetBuffer::new(ScalarBuffer::from(offsets)),
                        data.into(),
                        nulls,
                    )
                    .expect("offsets are monotonic and every value was UTF-8"),
                )
            }
        }
    }
}

#[cfg(test)]
#[path = "types_tests.rs"]
mod tests;
