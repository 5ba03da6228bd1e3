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

use arrow_schema::{DataType, TimeUnit as ArrowTimeUnit};

use super::values::Problem;
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
    pub reason: DeclarationProblem,
}

/// What is wrong with a column declaration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeclarationProblem {
    #[error("expected `NAME TYPE`, e.g. `CUSTOMER_ID NUMBER(38,0)`")]
    Shape,
    #[error("a quoted name must be followed by a space and the type")]
    QuotedNameNotEnded,
    #[error("the quoted name has no closing `\"`")]
    QuotedNameUnclosed,
    #[error("`{ty}`: expected `)` at the end of the type")]
    NoClosingParenthesis { ty: String },
    #[error("`{ty}`: the type's parameters must be whole numbers")]
    Parameters { ty: String },
    #[error("{base} takes no parameters")]
    NoParameters { base: String },
    #[error("{base} takes (precision[, scale])")]
    NumberParameters { base: String },
    #[error(
        "{base}({precision},{scale}): the precision must be 1 to {MAX_NUMBER_PRECISION} and \
         the scale 0 to the precision"
    )]
    NumberRange {
        base: String,
        precision: u32,
        scale: u32,
    },
    #[error("{base} takes one length of at least 1: {base}(n)")]
    Length { base: String },
    #[error("{base} takes one precision of 0 to {DEFAULT_TIMESTAMP_PRECISION}: {base}(p)")]
    TimestampPrecision { base: String },
    #[error(
        "TIME is not supported: times of day are not in the plugin contract (as for Parquet); \
         declare the column VARCHAR to receive its text"
    )]
    Time,
    #[error(
        "{base} is not supported in text files; declare the column VARCHAR to receive its text \
         (hex or base64, as the unload's BINARY_FORMAT wrote it)"
    )]
    Binary { base: String },
    #[error("unknown type `{base}`; known types: {KNOWN_TYPES}")]
    Unknown { base: String },
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
        let refuse = |reason: DeclarationProblem| DeclarationError {
            declaration: declaration.to_owned(),
            reason,
        };
        let trimmed = declaration.trim();
        let (name, rest) = split_name(trimmed).map_err(refuse)?;
        let rest = rest.trim();
        if name.is_empty() || rest.is_empty() {
            return Err(refuse(DeclarationProblem::Shape));
        }
        let (ty, nullable) = parse_type(rest).map_err(refuse)?;
        Ok(DeclaredColumn { name, ty, nullable })
    }
}

/// The name at the start of a declaration and the text after it.
fn split_name(text: &str) -> Result<(String, &str), DeclarationProblem> {
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
                return Err(DeclarationProblem::QuotedNameNotEnded);
            }
            return Ok((name, rest));
        }
        return Err(DeclarationProblem::QuotedNameUnclosed);
    }
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    Ok((text[..end].to_owned(), &text[end..]))
}

/// The type (and whether it is nullable) from its text: `NUMBER(38, 0) NOT NULL`.
fn parse_type(text: &str) -> Result<(SnowflakeType, bool), DeclarationProblem> {
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
                .ok_or_else(|| DeclarationProblem::NoClosingParenthesis { ty: normal.clone() })?;
            let params: Result<Vec<u32>, _> =
                inner.split(',').map(|p| p.trim().parse::<u32>()).collect();
            let params =
                params.map_err(|_| DeclarationProblem::Parameters { ty: normal.clone() })?;
            (normal[..open].trim_end().to_owned(), params)
        }
        None => (normal, Vec::new()),
    };
    let no_params = |ty: SnowflakeType| {
        if params.is_empty() {
            Ok(ty)
        } else {
            Err(DeclarationProblem::NoParameters { base: base.clone() })
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
            _ => return Err(DeclarationProblem::Length { base }),
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
            return Err(DeclarationProblem::Time);
        }
        "BINARY" | "VARBINARY" => {
            return Err(DeclarationProblem::Binary { base });
        }
        _ => return Err(DeclarationProblem::Unknown { base }),
    };
    Ok((ty, nullable))
}

fn number(base: &str, params: &[u32]) -> Result<SnowflakeType, DeclarationProblem> {
    let (precision, scale) = match params {
        [] => (u32::from(DEFAULT_NUMBER_PRECISION), 0),
        [precision] => (*precision, 0),
        [precision, scale] => (*precision, *scale),
        _ => {
            return Err(DeclarationProblem::NumberParameters {
                base: base.to_owned(),
            });
        }
    };
    if !(1..=u32::from(MAX_NUMBER_PRECISION)).contains(&precision) || scale > precision {
        return Err(DeclarationProblem::NumberRange {
            base: base.to_owned(),
            precision,
            scale,
        });
    }
    Ok(SnowflakeType::Number {
        precision: precision as u8,
        scale: scale as i8,
    })
}

fn timestamp_precision(base: &str, params: &[u32]) -> Result<u8, DeclarationProblem> {
    match params {
        [] => Ok(DEFAULT_TIMESTAMP_PRECISION),
        [precision] if *precision <= u32::from(DEFAULT_TIMESTAMP_PRECISION) => Ok(*precision as u8),
        _ => Err(DeclarationProblem::TimestampPrecision {
            base: base.to_owned(),
        }),
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

mod builder;
pub use builder::ColumnBuilder;

#[cfg(test)]
mod tests;
