//! Reading Parquet files as Snowflake writes them, and converting them to contract columns.

use std::fs;
use std::path::Path;

use parquet::basic::{Compression, ConvertedType};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use stagepush::bindings::types::{
    Column, ColumnData, ColumnSchema, ColumnType, Decimal, ScalarType, TimeUnit, Values,
};
use stagepush::plugin::input::{scalar_name, to_columns};
use stagepush::sample::{CUSTOMER_COLUMNS, CustomerFileOptions, customer, write_customer_file};
use stagepush::source::{ParquetSource, ReadOptions, SourceBatch, SourceError};

use crate::util::{Chunk, Values as Raw, decimal_bytes, fixture, temp_dir, write_parquet};

const COMMENTS: &str = "snowflake-unload/header-false/comments/data_0_0_0.snappy.parquet";

/// 10^38 - 1: the largest NUMBER(38,0).
const MAX_38: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;

/// A schema the way Snowflake unloads it (HEADER=FALSE names), plus the Parquet
/// annotations other writers use for the same contract types.
const SNOWFLAKE_SCHEMA: &str = "
message schema {
  required fixed_len_byte_array(2) _COL_0 (DECIMAL(4,0));
  optional fixed_len_byte_array(4) _COL_1 (DECIMAL(9,2));
  optional fixed_len_byte_array(8) _COL_2 (DECIMAL(18,0));
  optional fixed_len_byte_array(16) _COL_3 (DECIMAL(38,0));
  optional int64 _COL_4 (TIMESTAMP_MILLIS);
  required int64 _COL_5 (TIMESTAMP(MICROS,true));
  optional int64 _COL_6 (TIMESTAMP(MILLIS,false));
  optional binary _COL_7 (STRING);
  optional binary _COL_8 (JSON);
  optional int32 _COL_9 (DATE);
  required int32 _COL_10;
  optional int64 _COL_11;
  optional double _COL_12;
  optional boolean _COL_13;
  optional int64 _COL_14 (INTEGER(64,false));
  optional fixed_len_byte_array(2) _COL_15 (FLOAT16);
  optional binary _COL_16;
}";

// ---------------------------------------------------------------------------------------
// Helpers to look inside contract columns.

fn type_name(column: &ColumnSchema) -> String {
    match &column.type_ {
        ColumnType::Scalar(scalar) => scalar_name(scalar),
        ColumnType::List(item) => format!("list<{}>", scalar_name(item)),
    }
}

fn scalar(column: &Column) -> &Values {
    match &column.data {
        ColumnData::Scalar(values) => values,
        ColumnData::List(_) => panic!("expected a scalar column"),
    }
}

fn decimals(column: &Column) -> Vec<(i128, i8)> {
    match scalar(column) {
        Values::Decimal(values) => values.iter().map(decimal_value).collect(),
        other => panic!("expected decimals, got {other:?}"),
    }
}

fn decimal_value(decimal: &Decimal) -> (i128, i8) {
    (
        (i128::from(decimal.hi) << 64) | i128::from(decimal.lo),
        decimal.scale,
    )
}

fn integers(column: &Column) -> Vec<i64> {
    match scalar(column) {
        Values::Integer(values) => values.clone(),
        other => panic!("expected integers, got {other:?}"),
    }
}

fn timestamps(column: &Column) -> Vec<i64> {
    match scalar(column) {
        Values::Timestamp(values) => values.clone(),
        other => panic!("expected timestamps, got {other:?}"),
    }
}

fn texts(column: &Column) -> Vec<String> {
    let bytes = match scalar(column) {
        Values::Text(bytes) | Values::Json(bytes) | Values::Binary(bytes) => bytes,
        other => panic!("expected a byte column, got {other:?}"),
    };
    assert_eq!(bytes.offsets.first(), Some(&0), "offsets start at 0");
    assert_eq!(
        bytes.offsets.last().map(|&end| end as usize),
        Some(bytes.data.len()),
        "offsets end at the data's end"
    );
    bytes
        .offsets
        .windows(2)
        .map(|w| String::from_utf8(bytes.data[w[0] as usize..w[1] as usize].to_vec()).unwrap())
        .collect()
}

fn booleans(column: &Column) -> Vec<u8> {
    match scalar(column) {
        Values::Boolean(values) => values.clone(),
        other => panic!("expected booleans, got {other:?}"),
    }
}

/// Rows whose null byte is set.
fn null_rows(column: &Column) -> Vec<usize> {
    column
        .nulls
        .iter()
        .enumerate()
        .filter(|(_, null)| **null != 0)
        .map(|(row, _)| row)
        .collect()
}

fn read_all(source: &ParquetSource<fs::File>, options: &ReadOptions) -> Vec<SourceBatch> {
    source
        .batches(options)
        .expect("start reading")
        .collect::<Result<Vec<_>, _>>()
        .expect("read every batch")
}

fn snappy() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build()
}

// ---------------------------------------------------------------------------------------
// The Snowflake physical layout, converted exactly.

/// Writes four rows in Snowflake's layout; row 3 is null wherever the column allows.
fn write_snowflake_layout(path: &Path) {
    let present = [true, true, true, false];
    let fixed = |values: &[i128], width| {
        Raw::Fixed(values.iter().map(|&v| decimal_bytes(v, width)).collect())
    };
    let text = |values: &[&str]| Raw::Bytes(values.iter().map(|v| v.as_bytes().to_vec()).collect());
    let chunks = vec![
        Chunk::required(fixed(&[9_999, -9_999, 0, -1], 2)),
        Chunk::optional(fixed(&[123_456_789, -1, 999_999_999], 4), &present),
        Chunk::optional(
            fixed(&[999_999_999_999_999_999, -999_999_999_999_999_999, 0], 8),
            &present,
        ),
        Chunk::optional(
            fixed(&[MAX_38, -MAX_38, i128::from(i64::MAX) + 1], 16),
            &present,
        ),
        // 2024-02-29T23:59:59.999, 1969-12-31T23:59:59.999, 1970-01-01T00:00:00.
        Chunk::optional(Raw::Int64(vec![1_709_251_199_999, -1, 0]), &present),
        Chunk::required(Raw::Int64(vec![1, -1, 0, i64::MAX])),
        Chunk::optional(Raw::Int64(vec![7, 8, 9]), &present),
        Chunk::optional(text(&[r#"{"a":[1,2]}"#, r#"[null]"#, "\"Zoë\""]), &present),
        Chunk::optional(text(&["{}", "1", "true"]), &present),
        // 2024-02-29, 1969-12-31, 0001-01-01.
        Chunk::optional(Raw::Int32(vec![19_782, -1, -719_162]), &present),
        Chunk::required(Raw::Int32(vec![i32::MIN, i32::MAX, 0, -1])),
        Chunk::optional(Raw::Int64(vec![i64::MIN, i64::MAX, 0]), &present),
        Chunk::optional(Raw::Double(vec![0.1, -0.0, f64::MAX]), &present),
        Chunk::optional(Raw::Bool(vec![true, false, true]), &present),
        Chunk::optional(Raw::Int64(vec![-1, 0, 1]), &present),
        // f16 1.0 and -2.5, little-endian.
        Chunk::optional(
            Raw::Fixed(vec![vec![0x00, 0x3c], vec![0x00, 0xc1], vec![0, 0]]),
            &present,
        ),
        Chunk::optional(Raw::Bytes(vec![vec![0, 255], vec![], vec![1]]), &present),
    ];
    write_parquet(path, SNOWFLAKE_SCHEMA, snappy(), vec![chunks]);
}

#[test]
fn the_writer_puts_no_logical_type_on_timestamp_millis() {
    let dir = temp_dir();
    let path = dir.path().join("data_0_0_0.snappy.parquet");
    write_snowflake_layout(&path);
    let reader = SerializedFileReader::new(fs::File::open(&path).unwrap()).unwrap();
    let schema = reader.metadata().file_metadata().schema_descr();
    let ntz = schema.column(4);
    assert_eq!(ntz.name(), "_COL_4");
    assert_eq!(ntz.converted_type(), ConvertedType::TIMESTAMP_MILLIS);
    assert_eq!(
        ntz.logical_type_ref(),
        None,
        "Snowflake writes no logical type here"
    );
    // The decimals are FLBA of the widths Snowflake uses.
    let widths: Vec<i32> = (0..4).map(|i| schema.column(i).type_length()).collect();
    assert_eq!(widths, vec![2, 4, 8, 16]);
}

#[test]
fn snowflake_layout_maps_to_the_contract_schema() {
    let dir = temp_dir();
    let path = dir.path().join("data_0_0_0.snappy.parquet");
    write_snowflake_layout(&path);
    let source = ParquetSource::open(&path).unwrap();
    let schema = source.contract_schema().unwrap();
    let described: Vec<(String, String, bool)> = schema
        .iter()
        .map(|c| (c.name.clone(), type_name(c), c.nullable))
        .collect();
    let expected = [
        ("decimal(4, 0)", false),
        ("decimal(9, 2)", true),
        ("decimal(18, 0)", true),
        ("decimal(38, 0)", true),
        ("timestamp(millis, wall-clock)", true),
        ("timestamp(micros)", false),
        ("timestamp(millis, wall-clock)", true),
        ("text", true),
        ("json", true),
        ("date", true),
        ("integer", false),
        ("integer", true),
        ("float", true),
        ("boolean", true),
        ("decimal(20, 0)", true),
        ("float", true),
        ("binary", true),
    ];
    let expected: Vec<(String, String, bool)> = expected
        .iter()
        .enumerate()
        .map(|(i, (ty, nullable))| (format!("_COL_{i}"), (*ty).to_owned(), *nullable))
        .collect();
    assert_eq!(described, expected);
}

#[test]
fn snowflake_layout_converts_every_value_exactly() {
    let dir = temp_dir();
    let path = dir.path().join("data_0_0_0.snappy.parquet");
    write_snowflake_layout(&path);
    let source = ParquetSource::open(&path).unwrap();
    assert_eq!(source.num_rows(), 4);
    let schema = source.contract_schema().unwrap();
    let batches = read_all(&source, &ReadOptions::default());
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].first_row, 0);
    let c = to_columns(&batches[0].batch, &schema, None).unwrap();
    assert_eq!(c.len(), 17);

    // REQUIRED columns have no null mask; optional ones one byte per row.
    for required in [0, 5, 10] {
        assert!(c[required].nulls.is_empty(), "column {required}");
    }
    for optional in [1, 2, 3, 4, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16] {
        assert_eq!(null_rows(&c[optional]), vec![3], "column {optional}");
    }

    assert_eq!(
        decimals(&c[0]),
        vec![(9_999, 0), (-9_999, 0), (0, 0), (-1, 0)]
    );
    assert_eq!(
        decimals(&c[1])[..3],
        [(123_456_789, 2), (-1, 2), (999_999_999, 2)]
    );
    assert_eq!(
        decimals(&c[2])[..3],
        [
            (999_999_999_999_999_999, 0),
            (-999_999_999_999_999_999, 0),
            (0, 0)
        ]
    );
    assert_eq!(
        decimals(&c[3])[..3],
        [(MAX_38, 0), (-MAX_38, 0), (i128::from(i64::MAX) + 1, 0)]
    );
    // The two words of the wire form, for one negative value.
    let Values::Decimal(raw) = scalar(&c[3]) else {
        panic!()
    };
    assert_eq!(
        (raw[1].lo, raw[1].hi, raw[1].scale),
        ((-MAX_38) as u64, ((-MAX_38) >> 64) as i64, 0)
    );

    assert_eq!(timestamps(&c[4])[..3], [1_709_251_199_999, -1, 0]);
    assert_eq!(timestamps(&c[5]), vec![1, -1, 0, i64::MAX]);
    assert_eq!(timestamps(&c[6])[..3], [7, 8, 9]);
    let ColumnType::Scalar(ScalarType::Timestamp(ntz)) = &schema[4].type_ else {
        panic!()
    };
    assert_eq!((ntz.unit, ntz.wall_clock), (TimeUnit::Millis, true));

    assert_eq!(texts(&c[7])[..3], [r#"{"a":[1,2]}"#, "[null]", "\"Zoë\""]);
    assert!(matches!(scalar(&c[7]), Values::Text(_)));
    assert!(matches!(scalar(&c[8]), Values::Json(_)));
    assert_eq!(texts(&c[8])[..3], ["{}", "1", "true"]);

    let Values::Date(dates) = scalar(&c[9]) else {
        panic!()
    };
    assert_eq!(dates[..3], [19_782, -1, -719_162]);
    assert_eq!(
        integers(&c[10]),
        vec![i64::from(i32::MIN), i64::from(i32::MAX), 0, -1]
    );
    assert_eq!(integers(&c[11])[..3], [i64::MIN, i64::MAX, 0]);
    let Values::Float(floats) = scalar(&c[12]) else {
        panic!()
    };
    assert_eq!(floats[0], 0.1);
    assert!(floats[1] == 0.0 && floats[1].is_sign_negative());
    assert_eq!(floats[2], f64::MAX);
    assert_eq!(booleans(&c[13])[..3], [1, 0, 1]);
    // UINT_64: -1 as stored is u64::MAX, a lossless decimal(20, 0).
    assert_eq!(
        decimals(&c[14])[..3],
        [(i128::from(u64::MAX), 0), (0, 0), (1, 0)]
    );
    let Values::Float(halves) = scalar(&c[15]) else {
        panic!()
    };
    assert_eq!(halves[..3], [1.0, -2.5, 0.0]);
    let Values::Binary(binary) = scalar(&c[16]) else {
        panic!()
    };
    assert_eq!(binary.offsets[..4], [0, 2, 2, 3]);
    assert_eq!(binary.data, vec![0, 255, 1]);
}

#[test]
fn projections_pick_and_order_columns() {
    let dir = temp_dir();
    let path = dir.path().join("data_0_0_0.snappy.parquet");
    write_snowflake_layout(&path);
    let source = ParquetSource::open(&path).unwrap();
    let schema = source.contract_schema().unwrap();

    // Converter projection: indices into the full batch, in the order asked.
    let batches = read_all(&source, &ReadOptions::default());
    let c = to_columns(&batches[0].batch, &schema, Some(&[10, 0, 10])).unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(integers(&c[0]), integers(&c[2]));
    assert_eq!(decimals(&c[1])[0], (9_999, 0));

    // Reader projection: only those columns are decoded, in the order asked.
    let options = ReadOptions {
        projection: Some(vec![13, 3]),
        ..ReadOptions::default()
    };
    let batches = read_all(&source, &options);
    let batch = &batches[0].batch;
    assert_eq!(batch.num_columns(), 2);
    assert_eq!(batch.schema().field(0).name(), "_COL_13");
    let projected = [schema[13].clone(), schema[3].clone()];
    let c = to_columns(batch, &projected, None).unwrap();
    assert_eq!(booleans(&c[0])[..3], [1, 0, 1]);
    assert_eq!(decimals(&c[1])[0], (MAX_38, 0));

    // A plugin that reads no column still gets every row.
    let nothing = ReadOptions {
        projection: Some(Vec::new()),
        ..ReadOptions::default()
    };
    let batches = read_all(&source, &nothing);
    assert_eq!(
        (batches[0].batch.num_rows(), batches[0].batch.num_columns()),
        (4, 0)
    );

    let bad = ReadOptions {
        projection: Some(vec![17]),
        ..ReadOptions::default()
    };
    assert!(matches!(
        source.batches(&bad),
        Err(SourceError::Options { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Lists and unsupported types.

#[test]
fn a_list_of_strings_becomes_a_list_column() {
    let dir = temp_dir();
    let path = dir.path().join("lists.parquet");
    let schema = "
    message schema {
      optional group TAGS (LIST) {
        repeated group list {
          optional binary element (STRING);
        }
      }
    }";
    // Rows: ["a", null], [], null, ["b"].
    let chunk = Chunk {
        values: Raw::Bytes(vec![b"a".to_vec(), b"b".to_vec()]),
        defs: Some(vec![3, 2, 1, 0, 3]),
        reps: Some(vec![0, 1, 0, 0, 0]),
    };
    write_parquet(&path, schema, snappy(), vec![vec![chunk]]);
    let source = ParquetSource::open(&path).unwrap();
    let schema = source.contract_schema().unwrap();
    assert_eq!(type_name(&schema[0]), "list<text>");
    assert!(schema[0].nullable);
    let batches = read_all(&source, &ReadOptions::default());
    let c = to_columns(&batches[0].batch, &schema, None).unwrap();
    assert_eq!(null_rows(&c[0]), vec![2]);
    let ColumnData::List(list) = &c[0].data else {
        panic!()
    };
    assert_eq!(list.offsets, vec![0, 2, 2, 2, 3]);
    assert_eq!(list.item_nulls, vec![0, 1, 0]);
    let Values::Text(items) = &list.items else {
        panic!()
    };
    assert_eq!(items.data, b"ab");
    assert_eq!(items.offsets, vec![0, 1, 1, 2]);
}

#[test]
fn unsupported_columns_are_named_with_the_file() {
    let dir = temp_dir();
    let cases = [
        (
            "struct.parquet",
            "message schema { optional int32 OK; optional group ADDRESS { optional binary CITY (STRING); } }",
            "ADDRESS",
        ),
        (
            "nested.parquet",
            "message schema { optional group MATRIX (LIST) { repeated group list { optional group element (LIST) { repeated group list { optional int32 element; } } } } }",
            "MATRIX",
        ),
        (
            "time.parquet",
            "message schema { optional int32 AT (TIME(MILLIS,true)); }",
            "AT",
        ),
    ];
    for (name, schema, column) in cases {
        let path = dir.path().join(name);
        let parsed = parquet::schema::parser::parse_message_type(schema).unwrap();
        // An empty file is enough: the schema is in the footer.
        let file = fs::File::create(&path).unwrap();
        let writer = parquet::file::writer::SerializedFileWriter::new(
            file,
            std::sync::Arc::new(parsed),
            Default::default(),
        )
        .unwrap();
        writer.close().unwrap();
        let source = ParquetSource::open(&path).unwrap();
        let error = source.contract_schema().unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(&error, SourceError::UnsupportedColumn { column: c, .. } if c == column),
            "{message}"
        );
        assert!(message.contains(name), "{message}");
        assert!(message.contains(column), "{message}");
    }
}

// ---------------------------------------------------------------------------------------
// Row groups and row numbers.

#[test]
fn batches_across_row_groups_keep_their_row_numbers() {
    let dir = temp_dir();
    let path = dir.path().join("data_0_0_0.snappy.parquet");
    let options = CustomerFileOptions {
        row_group_rows: 1_000,
        null_id_fraction: 0.1,
        ..CustomerFileOptions::default()
    };
    let summary = write_customer_file(&path, 5_001, 3_500, &options).unwrap();
    assert_eq!((summary.rows, summary.row_groups), (3_500, 4));

    let source = ParquetSource::open(&path).unwrap();
    assert_eq!(source.num_rows(), 3_500);
    let groups: Vec<(u64, u64)> = source
        .row_groups()
        .iter()
        .map(|g| (g.first_row, g.rows))
        .collect();
    assert_eq!(
        groups,
        vec![(0, 1_000), (1_000, 1_000), (2_000, 1_000), (3_000, 500)]
    );

    let read = ReadOptions {
        batch_rows: 300,
        ..ReadOptions::default()
    };
    // The iterator can be handed to a worker thread.
    let batches = std::thread::scope(|scope| {
        let iterator = source.batches(&read).unwrap();
        scope
            .spawn(move || iterator.collect::<Result<Vec<_>, _>>())
            .join()
            .unwrap()
            .unwrap()
    });
    let tagged: Vec<(u64, usize, usize)> = batches
        .iter()
        .map(|b| (b.first_row, b.row_group, b.batch.num_rows()))
        .collect();
    let mut expected = Vec::new();
    for (group, (first, rows)) in groups.iter().enumerate() {
        let mut row = 0;
        while row < *rows {
            let n = 300.min(rows - row);
            expected.push((first + row, group, n as usize));
            row += n;
        }
    }
    assert_eq!(tagged, expected, "batches never span row groups");

    // Each row holds what the generator says row `first_row + i` holds.
    let schema = source.contract_schema().unwrap();
    let mut null_ids = 0;
    for batch in &batches {
        let c = to_columns(&batch.batch, &schema, Some(&[0])).unwrap();
        let ids = decimals(&c[0]);
        for (i, (id, _)) in ids.iter().enumerate() {
            let row = batch.first_row + i as u64;
            let expected = customer(5_001 + row, &options);
            if c[0].nulls.get(i).copied().unwrap_or(0) != 0 {
                assert_eq!(expected.id, None, "row {row}");
                null_ids += 1;
            } else {
                assert_eq!(expected.id, Some(u64::try_from(*id).unwrap()), "row {row}");
            }
        }
    }
    assert_eq!(null_ids, summary.null_ids);
    assert!(null_ids > 0);

    // Resuming mid-file starts at that row, skipping earlier row groups.
    let resume = ReadOptions {
        batch_rows: 300,
        start_row: 2_950,
        ..ReadOptions::default()
    };
    let tagged: Vec<(u64, usize, usize)> = read_all(&source, &resume)
        .iter()
        .map(|b| (b.first_row, b.row_group, b.batch.num_rows()))
        .collect();
    assert_eq!(
        tagged,
        vec![(2_950, 2, 50), (3_000, 3, 300), (3_300, 3, 200)]
    );
    let past_the_end = ReadOptions {
        start_row: 3_500,
        ..ReadOptions::default()
    };
    assert!(read_all(&source, &past_the_end).is_empty());
}

#[test]
fn the_customer_sample_is_snowflake_shaped_and_round_trips() {
    let dir = temp_dir();
    let path = dir.path().join("data_0_0_0.snappy.parquet");
    let options = CustomerFileOptions {
        tombstone_fraction: 0.2,
        null_id_fraction: 0.05,
        ..CustomerFileOptions::default()
    };
    let summary = write_customer_file(&path, 1, 2_000, &options).unwrap();
    assert_eq!(summary.row_groups, 1);
    assert!(summary.tombstones > 0 && summary.null_ids > 0);

    let source = ParquetSource::open(&path).unwrap();
    let ntz = source.parquet_schema().column(5);
    assert_eq!(ntz.converted_type(), ConvertedType::TIMESTAMP_MILLIS);
    assert_eq!(ntz.logical_type_ref(), None);
    assert_eq!(source.parquet_schema().column(0).type_length(), 16);

    let schema = source.contract_schema().unwrap();
    let described: Vec<(String, String, bool)> = schema
        .iter()
        .map(|c| (c.name.clone(), type_name(c), c.nullable))
        .collect();
    let expected: Vec<(String, String, bool)> = CUSTOMER_COLUMNS
        .iter()
        .zip([
            ("decimal(38, 0)", true),
            ("text", true),
            ("text", true),
            ("text", true),
            ("boolean", true),
            ("timestamp(millis, wall-clock)", false),
            ("boolean", false),
        ])
        .map(|(name, (ty, nullable))| ((*name).to_owned(), ty.to_owned(), nullable))
        .collect();
    assert_eq!(described, expected);

    let mut row = 0u64;
    let mut tombstones = 0;
    for batch in read_all(&source, &ReadOptions::default()) {
        let c = to_columns(&batch.batch, &schema, None).unwrap();
        let (ids, names, emails, countries) =
            (decimals(&c[0]), texts(&c[1]), texts(&c[2]), texts(&c[3]));
        let (active, updated, deleted) = (booleans(&c[4]), timestamps(&c[5]), booleans(&c[6]));
        assert!(c[5].nulls.is_empty() && c[6].nulls.is_empty());
        for i in 0..batch.batch.num_rows() {
            let want = customer(1 + row, &options);
            let is_null = |column: &Column| column.nulls.get(i).copied().unwrap_or(0) != 0;
            let id = (!is_null(&c[0])).then(|| u64::try_from(ids[i].0).unwrap());
            assert_eq!(id, want.id, "row {row}");
            assert_eq!(names[i], want.name);
            let email = (!is_null(&c[2])).then(|| emails[i].clone());
            assert_eq!(email, want.email);
            assert_eq!(countries[i], want.country);
            assert_eq!(active[i] != 0, want.is_active);
            assert_eq!(updated[i], want.updated_at_ms);
            assert_eq!(deleted[i] != 0, want.is_deleted);
            tombstones += u64::from(deleted[i]);
            row += 1;
        }
    }
    assert_eq!(row, 2_000);
    assert_eq!(tombstones, summary.tombstones);
}

// ---------------------------------------------------------------------------------------
// The real Snowflake unload.

#[test]
fn the_real_header_false_unload_reads_as_pyarrow_reads_it() {
    let path = fixture(COMMENTS);
    let source = ParquetSource::open(&path).unwrap();
    assert_eq!(source.num_rows(), 11_126);
    assert_eq!(source.row_groups().len(), 1);
    assert_eq!(source.created_by(), Some("parquet-cpp-arrow version 8.0.0"));
    let schema = source.contract_schema().unwrap();
    let names: Vec<&str> = schema.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "_COL_0", "_COL_1", "_COL_2", "_COL_3", "_COL_4", "_COL_5", "_COL_6", "_COL_7"
        ]
    );
    assert!(schema.iter().all(|c| type_name(c) == "text" && c.nullable));

    let mut rows: Vec<Vec<Option<String>>> = Vec::new();
    let mut nulls = [0usize; 8];
    let mut body_bytes = 0usize;
    let mut batches = 0;
    for batch in read_all(&source, &ReadOptions::default()) {
        assert_eq!(batch.first_row, rows.len() as u64);
        batches += 1;
        let c = to_columns(&batch.batch, &schema, None).unwrap();
        let values: Vec<Vec<String>> = c.iter().map(texts).collect();
        if let Values::Text(body) = scalar(&c[3]) {
            body_bytes += body.data.len();
        }
        for i in 0..batch.batch.num_rows() {
            let row = c
                .iter()
                .zip(&values)
                .zip(nulls.iter_mut())
                .map(|((column, values), null_count)| {
                    let null = column.nulls.get(i).copied().unwrap_or(0) != 0;
                    *null_count += usize::from(null);
                    (!null).then(|| values[i].clone())
                })
                .collect();
            rows.push(row);
        }
    }
    assert_eq!(rows.len(), 11_126);
    assert_eq!(batches, 11); // 10 x 1,024 + 886
    // Ground truth from pyarrow 26.0.1 (see tests/fixtures/README.md).
    assert_eq!(nulls, [0, 0, 0, 0, 0, 11_098, 28, 0]);
    assert_eq!(body_bytes, 1_911_721);
    let text = |row: usize, col: usize| rows[row][col].as_deref();
    assert_eq!(text(0, 0), Some("133230897"));
    assert_eq!(text(0, 1), Some("71941945"));
    assert_eq!(text(0, 2), Some("0"));
    assert_eq!(
        text(0, 3),
        Some(
            "Where is this line supposed to go exactly in the `docker-compose.yml` file? I'm running into the same issue but not sure where to edit the `.yml` file to get this to work."
        )
    );
    assert_eq!(text(0, 4), Some("2023-02-20T19:34:38.503"));
    assert_eq!(text(0, 5), None);
    assert_eq!(text(0, 6), Some("17667524"));
    assert_eq!(text(0, 7), Some("CC BY-SA 4.0"));
    assert_eq!(text(78, 0), Some("80669258"));
    assert_eq!(text(78, 5), Some("user6473579"));
    assert_eq!(text(78, 6), None);
    assert_eq!(text(78, 7), Some("CC BY-SA 3.0"));
    assert!(text(90, 3).unwrap().contains("skip´some"));
    assert_eq!(text(5_000, 0), Some("121543809"));
    assert_eq!(text(5_000, 4), Some("2021-08-13T15:16:33.717"));
    assert_eq!(text(11_125, 0), Some("132947330"));
    assert_eq!(text(11_125, 6), Some("3907405"));
    let id_sum: u64 = rows
        .iter()
        .map(|row| row[0].as_deref().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(id_sum, 1_251_265_703_390);
}

// ---------------------------------------------------------------------------------------
// Files that are not (whole) Parquet files.

fn open_error(path: &Path) -> SourceError {
    match ParquetSource::open(path) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(error) => error,
    }
}

#[test]
fn a_file_that_is_not_parquet_is_named_in_the_error() {
    let dir = temp_dir();
    let csv = dir.path().join("data_0_0_0.csv");
    fs::write(&csv, "ID,NAME\n1,Anna\n").unwrap();
    let error = open_error(&csv);
    assert!(matches!(error, SourceError::NotParquet { .. }), "{error}");
    assert!(error.to_string().contains("data_0_0_0.csv"), "{error}");
    assert!(error.to_string().contains("`ID,N`"), "{error}");

    let empty = dir.path().join("data");
    fs::write(&empty, "").unwrap();
    let error = open_error(&empty);
    assert!(matches!(error, SourceError::NotParquet { .. }), "{error}");
    assert!(error.to_string().contains("empty"), "{error}");

    let missing = dir.path().join("missing.parquet");
    let error = open_error(&missing);
    assert!(matches!(error, SourceError::Open { .. }), "{error}");
    assert!(error.to_string().contains("missing.parquet"), "{error}");
}

#[test]
fn a_truncated_file_is_a_corrupt_file() {
    let dir = temp_dir();
    let whole = fs::read(fixture(COMMENTS)).unwrap();
    for keep in [4, 11, 1_000, whole.len() / 2, whole.len() - 1] {
        let path = dir.path().join(format!("truncated_{keep}.snappy.parquet"));
        fs::write(&path, &whole[..keep]).unwrap();
        let error = open_error(&path);
        assert!(
            matches!(error, SourceError::Corrupt { .. }),
            "{keep}: {error}"
        );
        assert!(
            error.to_string().contains(&format!("truncated_{keep}")),
            "{error}"
        );
    }
}

#[test]
fn a_damaged_footer_is_a_corrupt_file() {
    let dir = temp_dir();
    let mut bytes = fs::read(fixture(COMMENTS)).unwrap();
    let len = bytes.len();
    // The footer sits before its 4-byte length and the trailing magic.
    let footer_len = u32::from_le_bytes(bytes[len - 8..len - 4].try_into().unwrap()) as usize;
    for byte in &mut bytes[len - 8 - footer_len..len - 8 - footer_len / 2] {
        *byte = 0xff;
    }
    let path = dir.path().join("damaged_footer.parquet");
    fs::write(&path, &bytes).unwrap();
    let error = open_error(&path);
    assert!(matches!(error, SourceError::Corrupt { .. }), "{error}");
    assert!(
        error.to_string().contains("damaged_footer.parquet"),
        "{error}"
    );

    // A footer length pointing before the file's start.
    let mut bytes = fs::read(fixture(COMMENTS)).unwrap();
    bytes[len - 8..len - 4].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    let error = open_error(&path);
    assert!(matches!(error, SourceError::Corrupt { .. }), "{error}");
}

#[test]
fn damaged_data_pages_are_a_typed_error_not_a_panic() {
    let dir = temp_dir();
    let whole = fs::read(fixture(COMMENTS)).unwrap();
    let len = whole.len();
    let footer_len = u32::from_le_bytes(whole[len - 8..len - 4].try_into().unwrap()) as usize;
    let data_end = len - 8 - footer_len;
    // Damage different places of the column chunks: page headers and compressed data.
    let mut damaged = 0;
    for (n, start) in [4, 5_000, 200_000, data_end / 2, data_end - 600_000]
        .into_iter()
        .enumerate()
    {
        let mut bytes = whole.clone();
        for byte in &mut bytes[start..start + 512] {
            *byte = 0xa5;
        }
        let path = dir.path().join(format!("damaged_{n}.snappy.parquet"));
        fs::write(&path, &bytes).unwrap();
        let source = ParquetSource::open(&path).expect("the footer is intact");
        let schema = source.contract_schema().unwrap();
        let mut failed = None;
        for batch in source.batches(&ReadOptions::default()).unwrap() {
            match batch {
                // Damage inside a value can decode to other valid text: that is fine.
                Ok(batch) => {
                    to_columns(&batch.batch, &schema, None).unwrap();
                }
                Err(error) => {
                    failed = Some(error);
                    break;
                }
            }
        }
        if let Some(error) = failed {
            damaged += 1;
            assert!(
                matches!(
                    error,
                    SourceError::Decode { .. } | SourceError::Corrupt { .. }
                ),
                "{error}"
            );
            assert!(
                error.to_string().contains(&format!("damaged_{n}")),
                "{error}"
            );
        }
    }
    // Snappy and the page headers catch most damage.
    assert!(
        damaged >= 3,
        "only {damaged} of 5 damaged files failed to decode"
    );
}
