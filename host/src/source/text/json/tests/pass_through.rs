//! A record already shaped as CluedIn wants passes through a JSON unload as it does through
//! the SQL-shaped Parquet unload of the same rows (the seed guide's `SELECT`, README "No
//! plugin needed"): same records, byte for byte, nested and flat.

use std::sync::Arc;

use parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use super::*;
use crate::bindings::types::{ColumnSchema, SourceFile};
use crate::mapping::{Mapping, MappingSpec};
use crate::source::parquet::ParquetSource;
use crate::transform::{ArrowInput, Encoder};
use crate::wire::Shape;

type Row = (&'static str, i64, &'static str, bool);

/// `(EXTERNALID, TIMESTAMP ms, PROPERTIES as Snowflake writes the OBJECT, DELETED)`;
/// TYPE is `Customer`. Row 1 had a NULL email: OBJECT_CONSTRUCT left it out.
const ROWS: [Row; 3] = [
    (
        "1",
        1_714_566_896_789,
        r#"{"address":{"city":"Oslo","lines":["a","b"]},"balance":1.50,"email":"ann@example.com","id":12345678901234567890123,"isActive":true,"updatedAt":"2024-05-01 12:34:56.789"}"#,
        false,
    ),
    (
        "2",
        1_714_608_000_000,
        r#"{"isActive":false,"name":"Bo","updatedAt":"2024-05-02 00:00:00.000"}"#,
        false,
    ),
    ("3", 1_714_780_799_999, r#"{"name":"Cy"}"#, true),
];

/// The SQL-shaped Parquet unload, as Snowflake writes it (TIMESTAMP_NTZ: INT64 with the
/// converted type TIMESTAMP_MILLIS only; the OBJECT as UTF8 JSON text).
fn parquet_unload() -> (Vec<ColumnSchema>, Vec<RecordBatch>) {
    let schema = "message schema {
        optional binary EXTERNALID (STRING);
        optional binary TYPE (STRING);
        optional int64 TIMESTAMP (TIMESTAMP_MILLIS);
        optional binary PROPERTIES (STRING);
        optional boolean DELETED;
    }";
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let mut file = Vec::new();
    let mut writer =
        SerializedFileWriter::new(&mut file, schema, Arc::new(WriterProperties::new())).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let defs = [1i16; ROWS.len()];
    let text = |f: fn(&Row) -> &'static str| -> Vec<ByteArray> {
        ROWS.iter().map(|r| ByteArray::from(f(r))).collect()
    };
    let mut column = group.next_column().unwrap().unwrap();
    column
        .typed::<ByteArrayType>()
        .write_batch(&text(|r| r.0), Some(&defs), None)
        .unwrap();
    column.close().unwrap();
    let mut column = group.next_column().unwrap().unwrap();
    column
        .typed::<ByteArrayType>()
        .write_batch(&text(|_| "Customer"), Some(&defs), None)
        .unwrap();
    column.close().unwrap();
    let mut column = group.next_column().unwrap().unwrap();
    let times: Vec<i64> = ROWS.iter().map(|r| r.1).collect();
    column
        .typed::<Int64Type>()
        .write_batch(&times, Some(&defs), None)
        .unwrap();
    column.close().unwrap();
    let mut column = group.next_column().unwrap().unwrap();
    column
        .typed::<ByteArrayType>()
        .write_batch(&text(|r| r.2), Some(&defs), None)
        .unwrap();
    column.close().unwrap();
    let mut column = group.next_column().unwrap().unwrap();
    let deleted: Vec<bool> = ROWS.iter().map(|r| r.3).collect();
    column
        .typed::<BoolType>()
        .write_batch(&deleted, Some(&defs), None)
        .unwrap();
    column.close().unwrap();
    group.close().unwrap();
    writer.close().unwrap();
    let source = ParquetSource::new(bytes::Bytes::from(file), "data_0_0_0.snappy.parquet").unwrap();
    let batches = source
        .batches(&ReadOptions::default())
        .unwrap()
        .map(|b| b.unwrap().batch)
        .collect();
    (source.contract_schema().unwrap(), batches)
}

/// The same rows unloaded with `SELECT OBJECT_CONSTRUCT(*) FROM (<the same SELECT>)` and
/// `FILE_FORMAT = (TYPE = JSON)`: keys sorted, the timestamp as Snowflake writes it.
fn json_unload() -> String {
    let timestamps = [
        "2024-05-01 12:34:56.789",
        "2024-05-02 00:00:00.000",
        "2024-05-03 23:59:59.999",
    ];
    ROWS.iter()
        .zip(timestamps)
        .map(|(r, t)| {
            format!(
                r#"{{"DELETED":{},"EXTERNALID":"{}","PROPERTIES":{},"TIMESTAMP":"{t}","TYPE":"Customer"}}"#,
                r.3, r.0, r.2
            ) + "\n"
        })
        .collect()
}

/// The records (wire JSON) the pass-through makes of `batches`.
fn records(schema: &[ColumnSchema], batches: &[RecordBatch], shape: Shape) -> Vec<String> {
    let mut mapping = Mapping::start(Arc::new(MappingSpec::PassThrough), schema).unwrap();
    let projection = mapping.projection().to_vec();
    let file = SourceFile {
        key: "f".into(),
        partitions: vec![],
    };
    let mut records = Vec::new();
    let mut first_row = 0;
    for batch in batches {
        let input = ArrowInput {
            file: &file,
            first_row,
            batch,
            schema,
            projection: Some(&projection),
        };
        let result = mapping.transform(&input);
        let encoded = Encoder::new(shape).encode(first_row, batch.num_rows(), &result);
        assert!(encoded.failures.is_empty(), "{:?}", encoded.failures);
        records.extend(
            encoded
                .records
                .iter()
                .map(|r| String::from_utf8(encoded.record_json(r).to_vec()).unwrap()),
        );
        first_row += batch.num_rows() as u64;
    }
    records
}

#[test]
fn a_sql_shaped_json_unload_passes_through_as_the_parquet_unload_does() {
    let (parquet_schema, parquet_batches) = parquet_unload();
    let text = json_unload();
    let schema = inferred(&text);
    let json_batches: Vec<RecordBatch> = all(&text, &schema)
        .into_iter()
        .map(|b| b.unwrap().batch)
        .collect();
    for shape in [Shape::Nested, Shape::Flat] {
        let from_parquet = records(&parquet_schema, &parquet_batches, shape);
        let from_json = records(&schema.contract, &json_batches, shape);
        assert_eq!(from_parquet.len(), 3);
        assert_eq!(from_json, from_parquet, "{shape:?}");
    }
    let nested = records(&schema.contract, &json_batches, Shape::Nested);
    assert_eq!(
        nested[0],
        r#"{"externalId":"1","type":"Customer","timestamp":"2024-05-01T12:34:56.789Z","properties":{"address":{"city":"Oslo","lines":["a","b"]},"balance":1.50,"email":"ann@example.com","id":12345678901234567890123,"isActive":true,"updatedAt":"2024-05-01 12:34:56.789"}}"#
    );
    assert!(nested[2].contains(r#""deleted":true"#), "{}", nested[2]);

    // The columns a plugin sees are the Parquet unload's, but PROPERTIES: JSON (a nested
    // object in the file) where the Parquet unload has text holding JSON.
    let described = |s: &[ColumnSchema]| {
        let mut d: Vec<(String, String)> = s
            .iter()
            .map(|c| (c.name.clone(), format!("{:?}", c.type_)))
            .collect();
        d.sort();
        d
    };
    let (ours, theirs) = (described(&schema.contract), described(&parquet_schema));
    for (o, t) in ours.iter().zip(&theirs) {
        if o.0 == "PROPERTIES" {
            assert!(o.1.contains("Json") && t.1.contains("Text"), "{o:?} {t:?}");
        } else {
            assert_eq!(o, t);
        }
    }
}
