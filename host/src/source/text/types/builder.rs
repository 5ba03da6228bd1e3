//! [`ColumnBuilder`]: one column of a text file's batch built from values as Snowflake
//! writes them, parsed by the declared [`SnowflakeType`] ([`super::values`]), NULLs checked
//! against `NOT NULL`.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, StringArray,
    TimestampMillisecondArray,
};
use arrow_buffer::{BooleanBuffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::DataType;

use super::super::values::{self, Problem};
use super::{DeclaredColumn, SnowflakeType, UTC, ValueError, truncated};

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
                value: truncated(written, super::super::ROW_TEXT_QUOTED).to_owned(),
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
