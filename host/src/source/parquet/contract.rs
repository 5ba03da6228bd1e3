//! A Parquet file's schema mapped to the plugin contract ([`contract_schema`]): which
//! Arrow/Parquet types a plugin can receive, as which contract type, and why the others
//! are refused ([`UnsupportedType`]).

use ::parquet::basic::{ConvertedType, LogicalType, Repetition};
use ::parquet::schema::types::{SchemaDescriptor, Type as ParquetType};
use arrow_schema::{DataType, Field, Schema, TimeUnit as ArrowTimeUnit};

use super::SourceError;
use crate::bindings::types::{ColumnSchema, ColumnType, ScalarType, TimeUnit, TimestampType};

/// Why a column's type has no equivalent in the plugin contract (the `reason` of
/// [`SourceError::UnsupportedColumn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnsupportedType {
    /// A decimal of more than 38 digits (or none).
    #[error("decimal precision must be 1 to 38 digits, this column has {0}")]
    DecimalPrecision(u8),
    /// Parquet's UNKNOWN: nulls only.
    #[error("a column of nulls only (Parquet UNKNOWN) has no type")]
    NullOnly,
    /// TIME.
    #[error("times of day are not in the plugin contract")]
    TimeOfDay,
    /// Durations and intervals.
    #[error("durations and intervals are not in the plugin contract")]
    Duration,
    /// Structs, maps, lists of lists.
    #[error("only lists of scalar values are supported")]
    Nested,
    /// Anything else.
    #[error("the plugin contract has no such type")]
    Other,
}

/// Maps a file's schema to the plugin contract, one [`ColumnSchema`] per top-level column.
///
/// `parquet` and `arrow` are the two views of the same file schema (as
/// [`ParquetSource::parquet_schema`] and [`ParquetSource::arrow_schema`] return them);
/// `file` names the file in errors. The rules:
/// - REQUIRED columns are not nullable, OPTIONAL (and legacy REPEATED) ones are;
/// - a timestamp is `wall-clock` when its Parquet logical type says `isAdjustedToUTC=false`,
///   or when it has only a legacy converted type (`TIMESTAMP_MILLIS`/`_MICROS`), which is how
///   Snowflake writes TIMESTAMP_NTZ; with `isAdjustedToUTC=true` it is an instant. A
///   timestamp without either annotation (INT96, read as microseconds: see
///   [`super::int96`]) follows Arrow: no time zone = wall-clock;
/// - text annotated JSON is `json`; `UInt64` is `decimal(20, 0)`; Float16/32 widen to `float`;
/// - a LIST of scalars is a list column; structs, maps, nested lists, intervals, durations,
///   times of day and decimals above 38 digits are refused with the column named.
pub fn contract_schema(
    file: &str,
    parquet: &SchemaDescriptor,
    arrow: &Schema,
) -> Result<Vec<ColumnSchema>, SourceError> {
    let roots = parquet.root_schema().get_fields();
    if roots.len() != arrow.fields().len() {
        return Err(SourceError::Corrupt {
            file: file.to_owned(),
            reason: format!(
                "the Parquet schema has {} columns but decodes to {} Arrow columns",
                roots.len(),
                arrow.fields().len()
            ),
        });
    }
    roots
        .iter()
        .zip(arrow.fields().iter())
        .map(|(parquet_type, field)| column_schema(file, parquet_type, field))
        .collect()
}

fn column_schema(
    file: &str,
    parquet_type: &ParquetType,
    field: &Field,
) -> Result<ColumnSchema, SourceError> {
    let name = field.name();
    let refuse = |found: &DataType, reason: &str| SourceError::UnsupportedColumn {
        file: file.to_owned(),
        column: name.clone(),
        found: found.to_string(),
        reason: reason.to_owned(),
    };
    let nullable = parquet_type.get_basic_info().has_repetition()
        && parquet_type.get_basic_info().repetition() != Repetition::REQUIRED;
    let type_ = match field.data_type() {
        DataType::List(item) | DataType::LargeList(item) => {
            let leaf = single_leaf(parquet_type).ok_or_else(|| {
                refuse(
                    field.data_type(),
                    "only lists of scalar values are supported",
                )
            })?;
            if item.data_type().is_nested() {
                return Err(refuse(
                    field.data_type(),
                    "only lists of scalar values are supported",
                ));
            }
            ColumnType::List(
                scalar_type(leaf, item.data_type())
                    .map_err(|reason| refuse(field.data_type(), &reason.to_string()))?,
            )
        }
        data_type => {
            let leaf = match parquet_type {
                ParquetType::PrimitiveType { .. } => parquet_type,
                ParquetType::GroupType { .. } => {
                    return Err(refuse(
                        data_type,
                        "structs, maps and other groups are not supported",
                    ));
                }
            };
            ColumnType::Scalar(
                scalar_type(leaf, data_type)
                    .map_err(|reason| refuse(data_type, &reason.to_string()))?,
            )
        }
    };
    Ok(ColumnSchema {
        name: name.clone(),
        type_,
        nullable,
    })
}

/// The primitive at the bottom of a chain of single-child groups (a LIST of scalars).
fn single_leaf(parquet_type: &ParquetType) -> Option<&ParquetType> {
    match parquet_type {
        ParquetType::PrimitiveType { .. } => Some(parquet_type),
        ParquetType::GroupType { fields, .. } => match fields.as_slice() {
            [only] => single_leaf(only),
            _ => None,
        },
    }
}

/// The contract type of a scalar column (or list item) with Parquet leaf `leaf`.
fn scalar_type(leaf: &ParquetType, data_type: &DataType) -> Result<ScalarType, UnsupportedType> {
    Ok(match data_type {
        DataType::Boolean => ScalarType::Boolean,
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => ScalarType::Integer,
        DataType::UInt64 => ScalarType::Decimal((20, 0)),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => ScalarType::Float,
        DataType::Decimal32(precision, scale)
        | DataType::Decimal64(precision, scale)
        | DataType::Decimal128(precision, scale)
        | DataType::Decimal256(precision, scale) => {
            if !(1..=38).contains(precision) {
                return Err(UnsupportedType::DecimalPrecision(*precision));
            }
            ScalarType::Decimal((*precision, *scale))
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let info = leaf.get_basic_info();
            if matches!(info.logical_type_ref(), Some(LogicalType::Json))
                || info.converted_type() == ConvertedType::JSON
            {
                ScalarType::Json
            } else {
                ScalarType::Text
            }
        }
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => ScalarType::Binary,
        DataType::Date32 | DataType::Date64 => ScalarType::Date,
        DataType::Timestamp(unit, zone) => ScalarType::Timestamp(TimestampType {
            unit: time_unit(*unit),
            wall_clock: is_wall_clock(leaf, zone.is_none()),
        }),
        DataType::Null => return Err(UnsupportedType::NullOnly),
        DataType::Time32(_) | DataType::Time64(_) => {
            return Err(UnsupportedType::TimeOfDay);
        }
        DataType::Duration(_) | DataType::Interval(_) => {
            return Err(UnsupportedType::Duration);
        }
        other if other.is_nested() => {
            return Err(UnsupportedType::Nested);
        }
        _ => return Err(UnsupportedType::Other),
    })
}

/// Whether a timestamp column holds wall-clock (zone-less) values, by its Parquet annotation.
fn is_wall_clock(leaf: &ParquetType, arrow_has_no_zone: bool) -> bool {
    let info = leaf.get_basic_info();
    match info.logical_type_ref() {
        Some(LogicalType::Timestamp(timestamp)) => !timestamp.is_adjusted_to_u_t_c,
        // Legacy converted type only: Snowflake's TIMESTAMP_NTZ (`docs/reference/snowflake-unload.md`).
        _ => match info.converted_type() {
            ConvertedType::TIMESTAMP_MILLIS | ConvertedType::TIMESTAMP_MICROS => true,
            _ => arrow_has_no_zone,
        },
    }
}

/// The contract's name for an Arrow time unit.
pub(crate) fn time_unit(unit: ArrowTimeUnit) -> TimeUnit {
    match unit {
        ArrowTimeUnit::Second => TimeUnit::Seconds,
        ArrowTimeUnit::Millisecond => TimeUnit::Millis,
        ArrowTimeUnit::Microsecond => TimeUnit::Micros,
        ArrowTimeUnit::Nanosecond => TimeUnit::Nanos,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ::parquet::arrow::parquet_to_arrow_schema;
    use ::parquet::schema::parser::parse_message_type;

    use super::*;

    fn contract(message: &str) -> Result<Vec<ColumnSchema>, SourceError> {
        let descriptor = SchemaDescriptor::new(Arc::new(parse_message_type(message).unwrap()));
        let arrow = parquet_to_arrow_schema(&descriptor, None).unwrap();
        contract_schema("f.parquet", &descriptor, &arrow)
    }

    #[test]
    fn snowflake_columns_map_to_contract_types() {
        let columns = contract(
            "message schema {
              required fixed_len_byte_array(16) ID (DECIMAL(38,0));
              optional int64 AT (TIMESTAMP_MILLIS);
              optional int64 UTC (TIMESTAMP(MICROS,true));
              optional binary DOC (JSON);
              optional binary NAME (UTF8);
            }",
        )
        .unwrap();
        let types: Vec<(&str, &ColumnType, bool)> = columns
            .iter()
            .map(|column| (column.name.as_str(), &column.type_, column.nullable))
            .collect();
        let timestamp = |unit, wall_clock| {
            ColumnType::Scalar(ScalarType::Timestamp(TimestampType { unit, wall_clock }))
        };
        assert_eq!(
            types,
            [
                (
                    "ID",
                    &ColumnType::Scalar(ScalarType::Decimal((38, 0))),
                    false
                ),
                ("AT", &timestamp(TimeUnit::Millis, true), true),
                ("UTC", &timestamp(TimeUnit::Micros, false), true),
                ("DOC", &ColumnType::Scalar(ScalarType::Json), true),
                ("NAME", &ColumnType::Scalar(ScalarType::Text), true),
            ]
        );
    }

    #[test]
    fn unsupported_columns_are_refused_with_the_column_and_the_reason() {
        let error = contract("message schema { optional int32 T (TIME(MILLIS,true)); }")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "f.parquet: column `T` has type Time32(ms), which a plugin cannot receive: times \
             of day are not in the plugin contract"
        );
        assert_eq!(
            UnsupportedType::DecimalPrecision(40).to_string(),
            "decimal precision must be 1 to 38 digits, this column has 40"
        );
    }
}
