//! A Parquet column's type in words (`OPTIONAL FIXED_LEN_BYTE_ARRAY(16) DECIMAL(38,0)`) and
//! the Snowflake type it most likely had (`NUMBER(38,0)`), with a remark where one helps.

use parquet::basic::{ConvertedType, LogicalType, TimeUnit, Type as PhysicalType};
use parquet::schema::types::Type as ParquetType;

/// `OPTIONAL FIXED_LEN_BYTE_ARRAY(16) DECIMAL(38,0)`, `REQUIRED INT64 TIMESTAMP_MILLIS
/// (converted type only)`, `OPTIONAL BYTE_ARRAY UTF8`, `OPTIONAL group LIST`: the logical
/// type when there is one, else the legacy converted type.
pub fn describe_parquet(column: &ParquetType) -> String {
    let info = column.get_basic_info();
    let repetition = if info.has_repetition() {
        format!("{:?} ", info.repetition())
    } else {
        String::new()
    };
    let physical = match column {
        ParquetType::PrimitiveType {
            physical_type,
            type_length,
            ..
        } => match physical_type {
            PhysicalType::FIXED_LEN_BYTE_ARRAY => format!("FIXED_LEN_BYTE_ARRAY({type_length})"),
            other => format!("{other:?}"),
        },
        ParquetType::GroupType { .. } => "group".to_owned(),
    };
    let annotation = match (info.logical_type_ref(), info.converted_type()) {
        (Some(logical), _) => Some(describe_logical(logical)),
        (None, ConvertedType::NONE) => None,
        (None, ConvertedType::DECIMAL) => {
            let (precision, scale) = precision_scale(column);
            Some(format!("DECIMAL({precision},{scale})"))
        }
        // How Snowflake writes TIMESTAMP_NTZ: the missing logical type is the point.
        (None, converted @ (ConvertedType::TIMESTAMP_MILLIS | ConvertedType::TIMESTAMP_MICROS)) => {
            Some(format!("{converted:?} (converted type only)"))
        }
        (None, converted) => Some(format!("{converted:?}")),
    };
    match annotation {
        Some(annotation) => format!("{repetition}{physical} {annotation}"),
        None => format!("{repetition}{physical}"),
    }
}

fn describe_logical(logical: &LogicalType) -> String {
    match logical {
        LogicalType::String => "STRING".into(),
        LogicalType::Map => "MAP".into(),
        LogicalType::List => "LIST".into(),
        LogicalType::Enum => "ENUM".into(),
        LogicalType::Decimal(decimal) => {
            format!("DECIMAL({},{})", decimal.precision, decimal.scale)
        }
        LogicalType::Date => "DATE".into(),
        LogicalType::Time(time) => format!(
            "TIME({}, adjustedToUTC={})",
            unit_name(&time.unit),
            time.is_adjusted_to_u_t_c
        ),
        LogicalType::Timestamp(timestamp) => format!(
            "TIMESTAMP({}, adjustedToUTC={})",
            unit_name(&timestamp.unit),
            timestamp.is_adjusted_to_u_t_c
        ),
        LogicalType::Integer(int) => format!(
            "INT({}, {})",
            int.bit_width,
            if int.is_signed { "signed" } else { "unsigned" }
        ),
        LogicalType::Json => "JSON".into(),
        LogicalType::Bson => "BSON".into(),
        LogicalType::Uuid => "UUID".into(),
        LogicalType::Float16 => "FLOAT16".into(),
        other => format!("{other:?}").to_uppercase(),
    }
}

fn unit_name(unit: &TimeUnit) -> &'static str {
    match unit {
        TimeUnit::MILLIS => "MILLIS",
        TimeUnit::MICROS => "MICROS",
        TimeUnit::NANOS => "NANOS",
    }
}

fn precision_scale(column: &ParquetType) -> (i32, i32) {
    match column {
        ParquetType::PrimitiveType {
            precision, scale, ..
        } => (*precision, *scale),
        ParquetType::GroupType { .. } => (0, 0),
    }
}

/// The Snowflake type a column most likely had, from its Parquet type (see `docs/reference/snowflake-unload.md`),
/// and a remark when there is one to make.
pub fn snowflake_type(column: &ParquetType) -> (String, Option<String>) {
    let info = column.get_basic_info();
    let logical = info.logical_type_ref();
    let converted = info.converted_type();
    let physical = match column {
        ParquetType::GroupType { .. } => {
            return match (logical, converted) {
                (Some(LogicalType::List), _) | (None, ConvertedType::LIST) => (
                    "ARRAY".into(),
                    Some("a Parquet LIST (not written by Snowflake)".into()),
                ),
                _ => (
                    "OBJECT".into(),
                    Some("a Parquet group (not written by Snowflake)".into()),
                ),
            };
        }
        ParquetType::PrimitiveType { physical_type, .. } => *physical_type,
    };
    let note = |text: &str| Some(text.to_owned());
    match (logical, converted) {
        (Some(LogicalType::Decimal(decimal)), _) => {
            let remark = (decimal.scale == 0 && physical == PhysicalType::FIXED_LEN_BYTE_ARRAY)
                .then(|| "an integer unloaded as a decimal".to_owned());
            (
                format!("NUMBER({},{})", decimal.precision, decimal.scale),
                remark,
            )
        }
        (None, ConvertedType::DECIMAL) => {
            let (precision, scale) = precision_scale(column);
            (format!("NUMBER({precision},{scale})"), None)
        }
        (Some(LogicalType::Timestamp(timestamp)), _) => {
            if timestamp.is_adjusted_to_u_t_c {
                (
                    "TIMESTAMP_LTZ".into(),
                    note(
                        "an instant in UTC (Snowflake does not unload TIMESTAMP_LTZ/TZ: another tool wrote this)",
                    ),
                )
            } else {
                ("TIMESTAMP_NTZ".into(), note("wall-clock time, no zone"))
            }
        }
        (None, ConvertedType::TIMESTAMP_MILLIS | ConvertedType::TIMESTAMP_MICROS) => (
            "TIMESTAMP_NTZ".into(),
            note("wall-clock time, no zone (legacy TIMESTAMP annotation, as Snowflake writes it)"),
        ),
        (Some(LogicalType::Date), _) | (None, ConvertedType::DATE) => ("DATE".into(), None),
        (Some(LogicalType::Time(_)), _)
        | (None, ConvertedType::TIME_MILLIS | ConvertedType::TIME_MICROS) => ("TIME".into(), None),
        (Some(LogicalType::Json), _) | (None, ConvertedType::JSON) => (
            "VARIANT".into(),
            note("JSON text: VARIANT, OBJECT or ARRAY"),
        ),
        (Some(LogicalType::String | LogicalType::Enum), _)
        | (None, ConvertedType::UTF8 | ConvertedType::ENUM) => ("VARCHAR".into(), None),
        (Some(LogicalType::Uuid), _) => ("VARCHAR".into(), note("a UUID")),
        (Some(LogicalType::Integer(int)), _) => (
            "NUMBER".into(),
            Some(format!(
                "a {}-bit integer: the unload query cast it",
                int.bit_width
            )),
        ),
        (
            None,
            ConvertedType::INT_8
            | ConvertedType::INT_16
            | ConvertedType::INT_32
            | ConvertedType::INT_64
            | ConvertedType::UINT_8
            | ConvertedType::UINT_16
            | ConvertedType::UINT_32
            | ConvertedType::UINT_64,
        ) => (
            "NUMBER".into(),
            note("an integer: the unload query cast it"),
        ),
        _ => match physical {
            PhysicalType::BOOLEAN => ("BOOLEAN".into(), None),
            PhysicalType::INT32 | PhysicalType::INT64 => (
                "NUMBER".into(),
                note("an integer: the unload query cast it"),
            ),
            PhysicalType::INT96 => (
                "TIMESTAMP_NTZ".into(),
                note("legacy INT96 timestamp (not written by Snowflake)"),
            ),
            PhysicalType::FLOAT | PhysicalType::DOUBLE => ("FLOAT".into(), None),
            PhysicalType::BYTE_ARRAY | PhysicalType::FIXED_LEN_BYTE_ARRAY => {
                ("BINARY".into(), None)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::schema::parser::parse_message_type;

    fn columns(schema: &str) -> Vec<(String, String, String)> {
        let message = parse_message_type(schema).unwrap();
        message
            .get_fields()
            .iter()
            .map(|column| {
                (
                    column.name().to_owned(),
                    describe_parquet(column),
                    snowflake_type(column).0,
                )
            })
            .collect()
    }

    #[test]
    fn snowflake_types_from_parquet_types() {
        let found = columns(
            "message schema {
              optional fixed_len_byte_array(16) ID (DECIMAL(38,0));
              optional fixed_len_byte_array(4) PRICE (DECIMAL(6,2));
              required int64 UPDATED_AT (TIMESTAMP_MILLIS);
              optional int64 AT_UTC (TIMESTAMP(MICROS,true));
              optional int64 AT_LOCAL (TIMESTAMP(MICROS,false));
              optional binary NAME (UTF8);
              optional binary DOC (JSON);
              optional int32 DAY (DATE);
              optional double SCORE;
              optional boolean ACTIVE;
              optional int64 BIG;
              optional int32 SMALL (INTEGER(32,true));
              optional binary RAW;
              optional int96 OLD;
            }",
        );
        let expected = [
            (
                "ID",
                "OPTIONAL FIXED_LEN_BYTE_ARRAY(16) DECIMAL(38,0)",
                "NUMBER(38,0)",
            ),
            (
                "PRICE",
                "OPTIONAL FIXED_LEN_BYTE_ARRAY(4) DECIMAL(6,2)",
                "NUMBER(6,2)",
            ),
            (
                "UPDATED_AT",
                "REQUIRED INT64 TIMESTAMP_MILLIS (converted type only)",
                "TIMESTAMP_NTZ",
            ),
            (
                "AT_UTC",
                "OPTIONAL INT64 TIMESTAMP(MICROS, adjustedToUTC=true)",
                "TIMESTAMP_LTZ",
            ),
            (
                "AT_LOCAL",
                "OPTIONAL INT64 TIMESTAMP(MICROS, adjustedToUTC=false)",
                "TIMESTAMP_NTZ",
            ),
            ("NAME", "OPTIONAL BYTE_ARRAY UTF8", "VARCHAR"),
            ("DOC", "OPTIONAL BYTE_ARRAY JSON", "VARIANT"),
            ("DAY", "OPTIONAL INT32 DATE", "DATE"),
            ("SCORE", "OPTIONAL DOUBLE", "FLOAT"),
            ("ACTIVE", "OPTIONAL BOOLEAN", "BOOLEAN"),
            ("BIG", "OPTIONAL INT64", "NUMBER"),
            ("SMALL", "OPTIONAL INT32 INT(32, signed)", "NUMBER"),
            ("RAW", "OPTIONAL BYTE_ARRAY", "BINARY"),
            ("OLD", "OPTIONAL INT96", "TIMESTAMP_NTZ"),
        ];
        assert_eq!(found.len(), expected.len());
        for ((name, parquet, snowflake), (want_name, want_parquet, want_snowflake)) in
            found.iter().zip(expected)
        {
            assert_eq!(name, want_name);
            assert_eq!(snowflake, want_snowflake, "{name}");
            assert_eq!(parquet, want_parquet, "{name}");
        }
    }
}
