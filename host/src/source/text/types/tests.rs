use std::sync::Arc;

use ::parquet::file::properties::WriterProperties;
use ::parquet::file::writer::SerializedFileWriter;
use ::parquet::schema::parser::parse_message_type;
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Float64Type, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef};
use serde_json::json;

use super::*;
use crate::source::parquet::ParquetSource;
use crate::source::text::TextSchema;

fn ty(declaration: &str) -> SnowflakeType {
    DeclaredColumn::parse(&format!("C {declaration}"))
        .unwrap_or_else(|e| panic!("{e}"))
        .ty
}

fn refused(declaration: &str) -> String {
    DeclaredColumn::parse(declaration).unwrap_err().to_string()
}

#[test]
fn type_names_and_synonyms_are_read() {
    let number = |precision, scale| SnowflakeType::Number { precision, scale };
    assert_eq!(ty("NUMBER"), number(38, 0));
    assert_eq!(ty("number(10)"), number(10, 0));
    assert_eq!(ty("DECIMAL(6,2)"), number(6, 2));
    assert_eq!(ty("NUMERIC ( 18 , 4 )"), number(18, 4));
    for int in ["INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "BYTEINT"] {
        assert_eq!(ty(int), number(38, 0), "{int}");
    }
    for float in [
        "FLOAT",
        "FLOAT4",
        "FLOAT8",
        "DOUBLE",
        "double  precision",
        "REAL",
    ] {
        assert_eq!(ty(float), SnowflakeType::Float, "{float}");
    }
    for text in [
        "VARCHAR",
        "VARCHAR(100)",
        "STRING",
        "TEXT",
        "CHAR",
        "CHARACTER(1)",
        "NCHAR",
        "NVARCHAR(16777216)",
        "GEOGRAPHY",
        "GEOMETRY",
    ] {
        assert_eq!(ty(text), SnowflakeType::Text, "{text}");
    }
    assert_eq!(ty("boolean"), SnowflakeType::Boolean);
    assert_eq!(ty("DATE"), SnowflakeType::Date);
    let ntz = |precision| SnowflakeType::TimestampNtz { precision };
    assert_eq!(ty("TIMESTAMP_NTZ"), ntz(9));
    assert_eq!(ty("TIMESTAMP_NTZ(3)"), ntz(3));
    assert_eq!(ty("DATETIME"), ntz(9));
    assert_eq!(ty("TIMESTAMP(0)"), ntz(0));
    let tz = |precision| SnowflakeType::TimestampTz { precision };
    assert_eq!(ty("TIMESTAMP_LTZ"), tz(9));
    assert_eq!(ty("timestamp_tz(6)"), tz(6));
    for variant in ["VARIANT", "OBJECT", "ARRAY"] {
        assert_eq!(ty(variant), SnowflakeType::Variant, "{variant}");
    }
}

#[test]
fn names_are_as_written_and_not_null_is_read() {
    let column = DeclaredColumn::parse("  customer_id   NUMBER(38,0)  ").unwrap();
    assert_eq!(
        column,
        DeclaredColumn::new(
            "customer_id",
            SnowflakeType::Number {
                precision: 38,
                scale: 0
            }
        )
    );
    let column =
        DeclaredColumn::parse(r#""Updated ""at"" time" TIMESTAMP_NTZ(3) not null"#).unwrap();
    assert_eq!(column.name, r#"Updated "at" time"#);
    assert_eq!(column.ty, SnowflakeType::TimestampNtz { precision: 3 });
    assert!(!column.nullable);
    assert!(DeclaredColumn::parse("A INT NULL").unwrap().nullable);
}

#[test]
fn unknown_and_unsupported_declarations_name_the_declaration_and_why() {
    assert_eq!(
        refused("START TIME"),
        "column declaration `START TIME`: TIME is not supported: times of day are not in the \
         plugin contract (as for Parquet); declare the column VARCHAR to receive its text"
    );
    assert!(
        refused("B BINARY").starts_with("column declaration `B BINARY`: BINARY is not supported"),
        "{}",
        refused("B BINARY")
    );
    assert!(
        refused("X MONEY")
            .starts_with("column declaration `X MONEY`: unknown type `MONEY`; known types: NUMBER"),
        "{}",
        refused("X MONEY")
    );
    assert_eq!(
        refused("ID"),
        "column declaration `ID`: expected `NAME TYPE`, e.g. `CUSTOMER_ID NUMBER(38,0)`"
    );
    assert_eq!(
        refused("N NUMBER(39,0)"),
        "column declaration `N NUMBER(39,0)`: NUMBER(39,0): the precision must be 1 to 38 and \
         the scale 0 to the precision"
    );
    assert_eq!(
        refused("N NUMBER(4,5)"),
        "column declaration `N NUMBER(4,5)`: NUMBER(4,5): the precision must be 1 to 38 and \
         the scale 0 to the precision"
    );
    assert_eq!(
        refused("T TIMESTAMP_NTZ(10)"),
        "column declaration `T TIMESTAMP_NTZ(10)`: TIMESTAMP_NTZ takes one precision of 0 to \
         9: TIMESTAMP_NTZ(p)"
    );
    assert_eq!(
        refused("I INT(5)"),
        "column declaration `I INT(5)`: INT takes no parameters"
    );
    assert_eq!(
        refused("N NUMBER(a)"),
        "column declaration `N NUMBER(a)`: `NUMBER(A)`: the type's parameters must be whole \
         numbers"
    );
    assert_eq!(
        refused(r#""open NUMBER"#),
        r#"column declaration `"open NUMBER`: the quoted name has no closing `"`"#
    );
}

#[test]
fn types_display_as_snowflake_writes_them() {
    let shown: Vec<String> = [
        "NUMBER",
        "DECIMAL(6,2)",
        "DOUBLE",
        "STRING",
        "BOOLEAN",
        "DATE",
        "DATETIME",
        "TIMESTAMP_LTZ(3)",
        "OBJECT",
    ]
    .iter()
    .map(|declaration| ty(declaration).to_string())
    .collect();
    assert_eq!(
        shown,
        [
            "NUMBER(38,0)",
            "NUMBER(6,2)",
            "FLOAT",
            "VARCHAR",
            "BOOLEAN",
            "DATE",
            "TIMESTAMP_NTZ(9)",
            "TIMESTAMP_TZ(3)",
            "VARIANT"
        ]
    );
}

/// Each declared type beside its column in a Parquet file written the way Snowflake
/// unloads that type (`docs/reference/snowflake-unload.md`): FLBA decimals of minimal
/// width, TIMESTAMP_NTZ as INT64 with only the TIMESTAMP_MILLIS converted type, VARIANT and
/// GEOGRAPHY as UTF8, NOT NULL as REQUIRED. TIMESTAMP_LTZ/TZ cannot be unloaded to Parquet
/// (Snowflake refuses): they are compared with a UTC-adjusted millisecond timestamp.
const SNOWFLAKE_PARQUET: &str = "
message schema {
  optional fixed_len_byte_array(16) ID (DECIMAL(38,0));
  required fixed_len_byte_array(8) BIG (DECIMAL(18,0));
  optional fixed_len_byte_array(4) PRICE (DECIMAL(6,2));
  optional double SCORE;
  optional binary NAME (UTF8);
  optional boolean ACTIVE;
  optional int32 BORN (DATE);
  required int64 UPDATED_AT (TIMESTAMP_MILLIS);
  optional int64 SEEN_AT (TIMESTAMP(MILLIS,true));
  optional binary DOC (UTF8);
  optional binary PLACE (UTF8);
}";

const DECLARED: [&str; 11] = [
    "ID NUMBER(38,0)",
    "BIG NUMBER(18,0) NOT NULL",
    "PRICE NUMBER(6,2)",
    "SCORE FLOAT",
    "NAME VARCHAR(100)",
    "ACTIVE BOOLEAN",
    "BORN DATE",
    "UPDATED_AT TIMESTAMP_NTZ NOT NULL",
    "SEEN_AT TIMESTAMP_TZ(3)",
    "DOC VARIANT",
    "PLACE GEOGRAPHY",
];

fn snowflake_parquet_file() -> ParquetSource<bytes::Bytes> {
    let schema = Arc::new(parse_message_type(SNOWFLAKE_PARQUET).unwrap());
    let mut out = Vec::new();
    let writer =
        SerializedFileWriter::new(&mut out, schema, Arc::new(WriterProperties::default())).unwrap();
    writer.close().unwrap();
    ParquetSource::new(bytes::Bytes::from(out), "snowflake.parquet").unwrap()
}

#[test]
fn declared_types_get_the_contract_and_arrow_types_of_snowflakes_parquet_unload() {
    let parquet = snowflake_parquet_file();
    let columns = DECLARED
        .iter()
        .map(|declaration| DeclaredColumn::parse(declaration).unwrap())
        .collect();
    let declared = TextSchema::new(columns);
    assert_eq!(declared.contract, parquet.contract_schema().unwrap());
    assert_eq!(declared.arrow.fields(), parquet.arrow_schema().fields());
}

#[test]
fn built_arrays_are_what_the_plugin_input_accepts_for_the_contract_type() {
    let declared = TextSchema::new(
        DECLARED
            .iter()
            .map(|declaration| DeclaredColumn::parse(declaration).unwrap())
            .collect(),
    );
    let texts = [
        "-123",
        "42",
        "1.5",
        "-2e10",
        "Ada",
        "TRUE",
        "2024-02-29",
        "2024-02-29 12:00:00.123",
        "2024-02-29 04:00:00.000 -0800",
        r#"{"a":[1,2]}"#,
        "POINT(1 2)",
    ];
    let arrays: Vec<ArrayRef> = declared
        .columns
        .iter()
        .zip(texts)
        .map(|(column, text)| {
            let mut builder = ColumnBuilder::for_column(column, 2);
            builder.push_text(text).unwrap();
            if column.nullable {
                builder.push_null_checked("\\N").unwrap();
            } else {
                builder.push_text(text).unwrap();
            }
            builder.finish()
        })
        .collect();
    let batch = arrow_array::RecordBatch::try_new(declared.arrow.clone(), arrays).unwrap();
    let input = crate::plugin::input::to_columns(&batch, &declared.contract, None);
    assert!(input.is_ok(), "{:?}", input.err());
}

/// `value` as a big-endian two's-complement decimal of `width` bytes (Parquet FLBA).
fn decimal_bytes(value: i128, width: usize) -> ::parquet::data_type::FixedLenByteArray {
    let bytes = value.to_be_bytes();
    ::parquet::data_type::ByteArray::from(bytes[16 - width..].to_vec()).into()
}

#[test]
fn a_csv_row_gives_the_same_arrays_as_the_parquet_unload_of_the_same_row() {
    use ::parquet::data_type::{
        BoolType, ByteArray, ByteArrayType, DoubleType, FixedLenByteArrayType, Int32Type, Int64Type,
    };
    let noon_123 = 19_782_i64 * 86_400_000 + 12 * 3_600_000 + 123;
    // Row 0 has every value; row 1 has NULL wherever the column is nullable.
    let schema = Arc::new(parse_message_type(SNOWFLAKE_PARQUET).unwrap());
    let mut out = Vec::new();
    let mut writer =
        SerializedFileWriter::new(&mut out, schema, Arc::new(WriterProperties::default())).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut index = 0;
    while let Some(mut column) = group.next_column().unwrap() {
        let optional = [1, 0];
        let text = |t: &str| vec![ByteArray::from(t)];
        match index {
            0 => column.typed::<FixedLenByteArrayType>().write_batch(
                &[decimal_bytes(-12_345_678_901_234_567_890, 16)],
                Some(&optional),
                None,
            ),
            1 => column.typed::<FixedLenByteArrayType>().write_batch(
                &[decimal_bytes(7, 8), decimal_bytes(-8, 8)],
                None,
                None,
            ),
            2 => column.typed::<FixedLenByteArrayType>().write_batch(
                &[decimal_bytes(12_345, 4)],
                Some(&optional),
                None,
            ),
            3 => column
                .typed::<DoubleType>()
                .write_batch(&[-1.5e10], Some(&optional), None),
            4 => column.typed::<ByteArrayType>().write_batch(
                &text("Ada, \"x\"\nLovelace"),
                Some(&optional),
                None,
            ),
            5 => column
                .typed::<BoolType>()
                .write_batch(&[true], Some(&optional), None),
            6 => column
                .typed::<Int32Type>()
                .write_batch(&[19_782], Some(&optional), None),
            7 => column
                .typed::<Int64Type>()
                .write_batch(&[noon_123, 0], None, None),
            8 => column
                .typed::<Int64Type>()
                .write_batch(&[noon_123], Some(&optional), None),
            9 => column.typed::<ByteArrayType>().write_batch(
                &text(r#"{"a":[1,2]}"#),
                Some(&optional),
                None,
            ),
            _ => column.typed::<ByteArrayType>().write_batch(
                &text("POINT(1 2)"),
                Some(&optional),
                None,
            ),
        }
        .unwrap();
        column.close().unwrap();
        index += 1;
    }
    group.close().unwrap();
    writer.close().unwrap();
    let parquet = ParquetSource::new(bytes::Bytes::from(out), "snowflake.parquet").unwrap();
    let from_parquet = parquet
        .batches(&crate::source::parquet::ReadOptions::default())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .batch;

    // The same two rows as Snowflake's CSV unload with FIELD_OPTIONALLY_ENCLOSED_BY='"'.
    let csv = "-12345678901234567890,7,123.45,-15000000000,\"Ada, \"\"x\"\"\nLovelace\",true,\
               2024-02-29,2024-02-29 12:00:00.123,2024-02-29 04:00:00.123 -0800,\
               \"{\"\"a\"\":[1,2]}\",\"POINT(1 2)\"\n\
               \\N,-8,\\N,\\N,\\N,\\N,\\N,1970-01-01 00:00:00.000,\\N,\\N,\\N\n";
    let options = crate::source::text::CsvOptions {
        field_optionally_enclosed_by: "\"".into(),
        columns: DECLARED.iter().map(|d| (*d).to_owned()).collect(),
        ..crate::source::text::CsvOptions::default()
    };
    let schema = crate::source::text::csv::csv_schema(
        &mut std::io::Cursor::new(csv.as_bytes()),
        "data_0_0_0.csv",
        &options,
    )
    .unwrap();
    let from_csv = crate::source::text::csv::CsvBatches::new(
        Box::new(std::io::Cursor::new(csv.as_bytes().to_vec())),
        "data_0_0_0.csv".into(),
        Arc::new(options),
        Arc::clone(&schema),
        &crate::source::parquet::ReadOptions::default(),
        1 << 20,
    )
    .next()
    .unwrap()
    .unwrap()
    .batch;
    assert_eq!(from_csv.num_rows(), 2);
    for (i, field) in from_parquet.schema().fields().iter().enumerate() {
        assert_eq!(
            from_csv.column(i).as_ref(),
            from_parquet.column(i).as_ref(),
            "column {}",
            field.name()
        );
    }
    let contract = parquet.contract_schema().unwrap();
    assert_eq!(
        crate::plugin::input::to_columns(&from_csv, &schema.contract, None).unwrap(),
        crate::plugin::input::to_columns(&from_parquet, &contract, None).unwrap(),
        "the plugin receives the same columns"
    );
}

mod values;
