//! Unit tests of the mapping: the configuration, compile errors and every function, run
//! through the same encoder as plugins (the records are the wire JSON).

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};

use super::*;
use crate::bindings::types::{ColumnType, ScalarType, SourceFile, TimeUnit, TimestampType};
use crate::config::RunConfig;
use crate::transform::{ArrowInput, Encoder};
use crate::wire::Shape;

fn col(name: &str, t: ScalarType) -> ColumnSchema {
    ColumnSchema {
        name: name.into(),
        type_: ColumnType::Scalar(t),
        nullable: true,
    }
}

/// A stage of every kind of column, three rows (the third mostly null).
fn stage() -> (Vec<ColumnSchema>, RecordBatch) {
    let schema = vec![
        col("CUSTOMER_ID", ScalarType::Decimal((38, 0))),
        col("EMAIL", ScalarType::Text),
        col("ATTRS", ScalarType::Text),
        col("SCORE", ScalarType::Float),
        col("N", ScalarType::Integer),
        col("ACTIVE", ScalarType::Boolean),
        col(
            "UPDATED_AT",
            ScalarType::Timestamp(TimestampType {
                unit: TimeUnit::Millis,
                wall_clock: true,
            }),
        ),
        col("AMOUNT", ScalarType::Decimal((10, 2))),
    ];
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            Decimal128Array::from(vec![Some(42), Some(43), None])
                .with_precision_and_scale(38, 0)
                .unwrap(),
        ),
        Arc::new(StringArray::from(vec![
            Some("  Ann@Example.COM "),
            Some("b@c.d"),
            None,
        ])),
        Arc::new(StringArray::from(vec![
            Some(r#"{"tags":["a","b"],"addr":{"city":"Oslo","zip":"0150"},"n":1.50}"#),
            Some(r#"{"tags":[]}"#),
            Some("not json"),
        ])),
        Arc::new(Float64Array::from(vec![Some(3.0), Some(2.5), None])),
        Arc::new(Int64Array::from(vec![Some(7), None, None])),
        Arc::new(BooleanArray::from(vec![Some(false), Some(true), None])),
        Arc::new(TimestampMillisecondArray::from(vec![
            Some(1_714_566_896_789),
            Some(0),
            None,
        ])),
        Arc::new(
            Decimal128Array::from(vec![Some(4200), Some(4250), None])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        ),
    ];
    let batch = RecordBatch::try_from_iter(
        schema
            .iter()
            .map(|c| c.name.clone())
            .zip(columns)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    (schema, batch)
}

fn mapping(toml: &str) -> MappingConfig {
    RunConfig::parse(toml).unwrap().mapping.unwrap()
}

fn compile_error(toml: &str) -> String {
    let (schema, _) = stage();
    validate(&mapping(toml), &schema).unwrap_err().to_string()
}

/// The records (wire JSON) and row errors of `toml` over the stage.
fn run(toml: &str) -> (Vec<String>, Vec<(u64, String)>) {
    let (schema, batch) = stage();
    let mut m = Mapping::start(Arc::new(MappingSpec::Declared(mapping(toml))), &schema).unwrap();
    let projection = m.projection().to_vec();
    let file = SourceFile {
        key: "f".into(),
        partitions: vec![],
    };
    let input = ArrowInput {
        file: &file,
        first_row: 0,
        batch: &batch,
        schema: &schema,
        projection: Some(&projection),
    };
    let result = m.transform(&input);
    let encoded = Encoder::new(Shape::Nested).encode(0, batch.num_rows(), &result);
    let records = encoded
        .records
        .iter()
        .map(|r| String::from_utf8(encoded.record_json(r).to_vec()).unwrap())
        .collect();
    let errors = encoded
        .failures
        .iter()
        .map(|f| (f.row, f.message.clone()))
        .collect();
    (records, errors)
}

/// The `p` property of each row's record with `p = expr` (`-`: not set; `error`: the row
/// failed). The id never fails, so every other row makes a record.
fn prop(expr: &str) -> Vec<String> {
    let toml = format!(
        "[mapping]\ntype = \"T\"\nid = \"coalesce(text(CUSTOMER_ID), 'none')\"\n[mapping.properties]\np = \"{}\"\n",
        expr.replace('"', "\\\"")
    );
    let (records, errors) = run(&toml);
    let mut records = records.into_iter();
    (0..3u64)
        .map(|row| {
            if errors.iter().any(|(r, _)| *r == row) {
                return "error".to_string();
            }
            let v: serde_json::Value = serde_json::from_str(&records.next().unwrap()).unwrap();
            v["properties"]
                .get("p")
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into())
        })
        .collect()
}

#[test]
fn properties_keep_their_order_and_star_adds_the_other_columns() {
    let (records, errors) = run(
        "[mapping]\ntype = \"Customer\"\nid = \"CUSTOMER_ID\"\ntimestamp = \"UPDATED_AT\"\ndeleted = \"ACTIVE\"\n[mapping.properties]\nz = \"N\"\nemail = \"lower(trim(EMAIL))\"\n\"*\" = \"*\"\n",
    );
    assert_eq!(errors, [(2, "CUSTOMER_ID is null".to_string())]);
    assert_eq!(
        records[0],
        r#"{"externalId":"42","type":"Customer","timestamp":"2024-05-01T12:34:56.789Z","properties":{"z":7,"email":"ann@example.com","ATTRS":"{\"tags\":[\"a\",\"b\"],\"addr\":{\"city\":\"Oslo\",\"zip\":\"0150\"},\"n\":1.50}","SCORE":3,"AMOUNT":42.00}}"#
    );
    // ACTIVE is true in row 1: a tombstone, with no properties.
    assert_eq!(
        records[1],
        r#"{"externalId":"43","type":"Customer","timestamp":"1970-01-01T00:00:00.000Z","properties":{},"deleted":true}"#
    );
}

#[test]
fn every_function() {
    assert_eq!(
        prop("lower(EMAIL)"),
        ["\"  ann@example.com \"", "\"b@c.d\"", "-"]
    );
    assert_eq!(
        prop("upper(trim(EMAIL))"),
        ["\"ANN@EXAMPLE.COM\"", "\"B@C.D\"", "-"]
    );
    assert_eq!(prop("coalesce(N, 0)"), ["7", "0", "0"]);
    assert_eq!(prop("'const'"), ["\"const\"", "\"const\"", "\"const\""]);
    assert_eq!(prop("true"), ["true", "true", "true"]);
    assert_eq!(
        prop("concat('c-', CUSTOMER_ID)"),
        ["\"c-42\"", "\"c-43\"", "-"]
    );
    assert_eq!(prop("text(AMOUNT)"), ["\"42.00\"", "\"42.50\"", "-"]);
    assert_eq!(prop("json(ATTRS, 'addr.city')"), ["\"Oslo\"", "-", "error"]);
    assert_eq!(
        prop("json(ATTRS, '$.addr')"),
        ["{\"city\":\"Oslo\",\"zip\":\"0150\"}", "-", "error"]
    );
    // (serde_json reads the record here; the wire keeps `1.50`, see the test above)
    assert_eq!(prop("json(ATTRS, 'n')"), ["1.5", "-", "error"]);
    assert_eq!(prop("json(ATTRS, 'tags[1]')"), ["\"b\"", "-", "error"]);
    assert_eq!(prop("json_len(ATTRS, 'tags')"), ["2", "0", "error"]);
    assert_eq!(prop("json_len(ATTRS)"), ["3", "1", "error"]);
    assert_eq!(prop("int(SCORE)"), ["\"3\"", "error", "-"]);
    assert_eq!(prop("int(CUSTOMER_ID)"), ["\"42\"", "\"43\"", "-"]);
    assert_eq!(
        prop("zone(UPDATED_AT, '+02:00')"),
        [
            "\"2024-05-01T10:34:56.789Z\"",
            "\"1969-12-31T22:00:00.000Z\"",
            "-"
        ]
    );
    assert_eq!(
        prop("timestamp(coalesce(json(ATTRS, 'when'), '2024-05-01T14:00:00+02:00'))"),
        [
            "\"2024-05-01T12:00:00Z\"",
            "\"2024-05-01T12:00:00Z\"",
            "error"
        ]
    );
    assert_eq!(prop("eq(N, 7)"), ["true", "false", "false"]);
    assert_eq!(prop("not(ACTIVE)"), ["true", "false", "-"]);
}

#[test]
fn row_errors_name_their_cause() {
    let errors = |p: &str| {
        run(&format!(
            "[mapping]\ntype = \"T\"\nid = \"coalesce(text(CUSTOMER_ID), 'x')\"\n[mapping.properties]\np = \"{p}\"\n"
        ))
        .1
    };
    assert_eq!(
        errors("int(SCORE)"),
        [(1, "int(): 2.5 is not a whole number".to_string())]
    );
    let e = errors("json(ATTRS, 'a')");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].0, 2);
    assert!(
        e[0].1.starts_with("json(): the value is not JSON: "),
        "{e:?}"
    );
    assert_eq!(
        errors("timestamp(EMAIL)"),
        [
            (
                0,
                "timestamp(): 'Ann@Example.COM' is not an RFC 3339 timestamp".to_string()
            ),
            (
                1,
                "timestamp(): 'b@c.d' is not an RFC 3339 timestamp".to_string()
            )
        ]
    );
}

#[test]
fn several_entities_from_one_row() {
    let (records, errors) = run(
        "[[mapping.entity]]\ntype = \"Customer\"\nid = \"CUSTOMER_ID\"\nproperties = { email = \"trim(EMAIL)\" }\n[[mapping.entity]]\ntype = \"Account\"\nid = \"concat('acct-', CUSTOMER_ID)\"\nproperties = { owner = \"CUSTOMER_ID\" }\n",
    );
    assert_eq!(errors, [(2, "CUSTOMER_ID is null".to_string())]);
    assert_eq!(
        records,
        [
            r#"{"externalId":"42","type":"Customer","properties":{"email":"Ann@Example.COM"}}"#,
            r#"{"externalId":"acct-42","type":"Account","properties":{"owner":42}}"#,
            r#"{"externalId":"43","type":"Customer","properties":{"email":"b@c.d"}}"#,
            r#"{"externalId":"acct-43","type":"Account","properties":{"owner":43}}"#,
        ]
    );
}

#[test]
fn never_set_properties_are_known() {
    let (schema, batch) = stage();
    let spec = MappingSpec::Declared(mapping(
        "[mapping]\ntype = \"T\"\nid = \"coalesce(text(CUSTOMER_ID), 'x')\"\n[mapping.properties]\nn = \"N\"\nnothing = \"json(ATTRS, 'missing')\"\n",
    ));
    let mut m = Mapping::start(Arc::new(spec), &schema).unwrap();
    let projection = m.projection().to_vec();
    let file = SourceFile {
        key: "f".into(),
        partitions: vec![],
    };
    let _ = m.transform(&ArrowInput {
        file: &file,
        first_row: 0,
        batch: &batch,
        schema: &schema,
        projection: Some(&projection),
    });
    assert_eq!(m.declared(), ["T.n", "T.nothing"]);
    assert_eq!(m.never_set(), ["T.nothing"]);
}

#[test]
fn compile_errors_name_the_column_and_list_the_others() {
    let columns = "CUSTOMER_ID, EMAIL, ATTRS, SCORE, N, ACTIVE, UPDATED_AT, AMOUNT";
    assert_eq!(
        compile_error("[mapping]\ntype = \"T\"\nid = \"CUSTOMERID\"\n"),
        format!("[mapping] id: no column CUSTOMERID in the stage (columns: {columns})")
    );
    assert_eq!(
        compile_error(
            "[mapping]\ntype = \"T\"\nid = \"customer_id\"\nproperties = { e = \"lower(EMAILS)\" }\n"
        ),
        format!("[mapping] properties.e: no column EMAILS in the stage (columns: {columns})")
    );
    assert_eq!(
        compile_error(
            "[mapping]\ntype = \"T\"\nid = \"N\"\nproperties = { e = \"json(SCORE, 'a')\" }\n"
        ),
        "[mapping] properties.e: json() needs json or text, but SCORE is float"
    );
    assert_eq!(
        compile_error(
            "[mapping]\ntype = \"T\"\nid = \"N\"\nproperties = { e = \"lower(AMOUNT)\" }\n"
        ),
        "[mapping] properties.e: lower() needs text or json, but AMOUNT is decimal"
    );
    assert_eq!(
        compile_error("[mapping]\ntype = \"T\"\nid = \"N\"\ntimestamp = \"EMAIL\"\n"),
        "[mapping] timestamp: EMAIL is text, not a date or timestamp; use timestamp(EMAIL) to read RFC 3339 text"
    );
    assert_eq!(
        compile_error("[mapping]\ntype = \"T\"\nid = \"N\"\ndeleted = \"UPDATED_AT\"\n"),
        "[mapping] deleted: UPDATED_AT is timestamp; a tombstone condition is a boolean (true/false, 1/0, 'true'/'false')"
    );
    assert_eq!(
        compile_error(
            "[mapping]\ntype = \"T\"\nid = \"N\"\nproperties = { z = \"zone(UPDATED_AT, 'Europe/Oslo')\" }\n"
        ),
        "[mapping] properties.z: zone 'Europe/Oslo' is not an offset like '+02:00', '-05:30' or 'UTC' (named zones need a zone database; convert in the unload's SELECT with CONVERT_TIMEZONE)"
    );
    assert_eq!(
        compile_error("[mapping]\ntype = \"T\"\nid = \"lowercase(N)\"\n"),
        format!("[mapping] id: unknown function lowercase() (functions: {FUNCTIONS})")
    );
    assert_eq!(
        compile_error("[mapping]\ntype = \"T\"\nid = \"lower(N, EMAIL)\"\n"),
        "[mapping] id: lower() takes 1 argument, not 2"
    );
    assert_eq!(
        compile_error("[mapping]\ntype = \"T\"\nid = \"lower(EMAIL\"\n"),
        "[mapping] id = \"lower(EMAIL\": lower( is not closed: expected `,` or `)`"
    );
    assert_eq!(
        compile_error("[mapping]\ntype = \"T\"\nid = \"coalesce(N, 'x')\"\n"),
        "[mapping] id: coalesce() mixes integer and text ('x'); convert one, e.g. with text()"
    );
    assert_eq!(
        compile_error("[mapping]\ntype = \"T\"\nid = \"N\"\nproperties = { \"*\" = \"N\" }\n"),
        "[mapping] properties: \"*\" = \"N\": the value of \"*\" must be \"*\" (every other column)"
    );
    assert_eq!(
        compile_error(
            "[[mapping.entity]]\ntype = \"A\"\nid = \"N\"\n[[mapping.entity]]\ntype = \"B\"\nid = \"NN\"\n"
        ),
        format!("[mapping] entity 2: id: no column NN in the stage (columns: {columns})")
    );
}

#[test]
fn invalid_sections_are_named() {
    let err = |t: &str| compile_error(t);
    assert_eq!(
        err("[mapping]\nid = \"N\"\n"),
        "[mapping] no type: set [mapping] type"
    );
    assert_eq!(
        err("[mapping]\ntype = \"T\"\n"),
        "[mapping] no id: set [mapping] id"
    );
    assert_eq!(
        err("[mapping]\nentity = []\n"),
        "[mapping] no entity: set type and id (or add [[mapping.entity]] tables)"
    );
    assert_eq!(
        err("[mapping]\ntype = \"T\"\nid = \"N\"\n[[mapping.entity]]\ntype = \"A\"\nid = \"N\"\n"),
        "[mapping] give the entity's keys (type, id, …) either in [mapping] or in [[mapping.entity]] tables, not both"
    );
    let parse = |t: &str| RunConfig::parse(t).unwrap_err().to_string();
    assert!(
        parse("[mapping]\ntype = \"T\"\nid = \"N\"\ntimestmp = \"X\"\n")
            .contains("unknown field `timestmp`")
    );
    assert!(
        parse("[mapping]\ntype = \"T\"\nid = \"N\"\nproperties = \"all\"\n")
            .contains("properties = \"all\": a string here must be \"*\"")
    );
    assert!(
        parse("[[mapping.entity]]\ntype = \"T\"\nid = \"N\"\nextra = 1\n")
            .contains("unknown field `extra`")
    );
}

#[test]
fn the_pass_through_names_what_is_missing() {
    let (schema, _) = stage();
    assert_eq!(
        pass_through(&schema).unwrap_err().to_string(),
        "no plugin and no [mapping], and the stage is not shaped for the pass-through: it lacks EXTERNALID, TYPE, TIMESTAMP, PROPERTIES (columns: CUSTOMER_ID, EMAIL, ATTRS, SCORE, N, ACTIVE, UPDATED_AT, AMOUNT). Set --plugin or [plugin] path, write a [mapping] (docs/mapping.md), or unload the columns EXTERNALID, TYPE, TIMESTAMP, PROPERTIES (an OBJECT) and optionally DELETED"
    );
    let shaped = vec![
        col("externalId", ScalarType::Text),
        col("TYPE", ScalarType::Text),
        col("TIMESTAMP", ScalarType::Float),
        col("PROPERTIES", ScalarType::Text),
    ];
    assert_eq!(
        pass_through(&shaped).unwrap_err().to_string(),
        "[mapping] pass-through column TIMESTAMP: it is float; it must be a timestamp, a date or RFC 3339 text"
    );
}
