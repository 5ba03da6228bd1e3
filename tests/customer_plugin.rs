//! The example customer plugin, and the echo plugin proving every Parquet value reaches a
//! plugin exactly, through the real binary.

use parquet::file::properties::WriterProperties;

use crate::util::{
    Chunk, Values, decimal_bytes, fixture, plugin, run, stagepush, temp_dir, write_parquet,
};

/// The customer table as Snowflake unloads it (NUMBER(38,0) id as FLBA(16), TIMESTAMP_NTZ
/// as INT64 with the TIMESTAMP_MILLIS converted type only, NOT NULL UPDATED_AT REQUIRED).
const CUSTOMER_SCHEMA: &str = "
message schema {
  optional fixed_len_byte_array(16) CUSTOMER_ID (DECIMAL(38,0));
  optional binary NAME (UTF8);
  optional binary EMAIL (UTF8);
  optional binary COUNTRY (UTF8);
  optional boolean IS_ACTIVE;
  required int64 UPDATED_AT (TIMESTAMP_MILLIS);
  optional boolean IS_DELETED;
}";

fn s(v: &str) -> Vec<u8> {
    v.as_bytes().to_vec()
}

/// Six hand-picked rows; `tests/fixtures/customer-rust/expected.ndjson` was written by hand
/// from them. The Python and JS equivalence tests use the same rows.
pub(crate) fn write_customer_input(path: &std::path::Path) {
    let max38 = 10i128.pow(38) - 1;
    let ids = [Some(1i128), Some(2), None, Some(max38), Some(5), Some(-7)];
    let present = |v: &[bool]| v.to_vec();
    let chunks = vec![
        Chunk::optional(
            Values::Fixed(
                ids.iter()
                    .flatten()
                    .map(|&v| decimal_bytes(v, 16))
                    .collect(),
            ),
            &ids.map(|i| i.is_some()),
        ),
        Chunk::optional(
            Values::Bytes(vec![
                s("Ada Lovelace"),
                s("Émile Zola"),
                s("No Id"),
                s("Big"),
                s("Gone"),
                s("He said \"hi\"\n"),
            ]),
            &[true; 6],
        ),
        Chunk::optional(
            Values::Bytes(vec![
                s("  Ada@Example.COM "),
                s("x@y.z"),
                s("BIG@EXAMPLE.COM"),
                s("g@x.y"),
                s(""),
            ]),
            &present(&[true, false, true, true, true, true]),
        ),
        Chunk::optional(
            Values::Bytes(vec![s("GB"), s("FR"), s("US"), s("SE"), s("NO")]),
            &[true, true, true, false, true, true],
        ),
        Chunk::optional(
            Values::Bool(vec![true, false, true, true, true]),
            &[true, true, true, false, true, true],
        ),
        Chunk::required(Values::Int64(vec![
            1_714_566_896_789,
            0,
            1_714_566_896_789,
            1_714_566_896_789,
            1_700_000_000_000,
            -86_400_000,
        ])),
        Chunk::optional(
            Values::Bool(vec![false, false, false, true, false]),
            &[true, false, true, true, true, true],
        ),
    ];
    write_parquet(
        path,
        CUSTOMER_SCHEMA,
        WriterProperties::builder().build(),
        vec![chunks],
    );
}

#[test]
fn the_customer_plugin_output_matches_the_hand_checked_file() {
    let dir = temp_dir();
    let input = dir.path().join("data_0_0_0.snappy.parquet");
    write_customer_input(&input);
    let out = run(stagepush(dir.path())
        .args(["plugin", "test"])
        .arg(plugin("customer-rust"))
        .arg(&input));
    assert!(out.status.success(), "{}", out.stderr);
    let expected = std::fs::read_to_string(fixture("customer-rust/expected.ndjson")).unwrap();
    assert_eq!(out.stdout, expected);
    assert_eq!(
        out.stderr_lines("error:"),
        [format!(
            "error: {} row 2: plugin `customer` rejected the row (rejected): CUSTOMER_ID is null",
            input.display()
        )]
    );
    assert!(
        out.stderr
            .contains("summary: 6 rows read, 5 records, 0 filtered, 1 errors"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_flat_shape_puts_properties_beside_the_identity() {
    let dir = temp_dir();
    let input = dir.path().join("in.parquet");
    write_customer_input(&input);
    let out = run(stagepush(dir.path())
        .args(["plugin", "test"])
        .arg(plugin("customer-rust"))
        .arg(&input)
        .args(["--shape", "flat", "--limit", "1"]));
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "{\"externalId\":\"1\",\"type\":\"Customer\",\"timestamp\":\"2024-05-01T12:34:56.789Z\",\
         \"name\":\"Ada Lovelace\",\"country\":\"GB\",\"email\":\"ada@example.com\",\"isActive\":true,\
         \"updatedAt\":\"2024-05-01T12:34:56.789Z\"}\n"
    );
    assert!(
        out.stderr.contains("summary: 1 rows read"),
        "{}",
        out.stderr
    );
}

#[test]
fn every_snowflake_value_reaches_the_plugin_exactly() {
    // The echo plugin returns each column as a property with the value it received.
    let dir = temp_dir();
    let stage = dir
        .path()
        .join("unload/customers/date=2024-05-01/region=_NULL_");
    std::fs::create_dir_all(&stage).unwrap();
    let input = stage.join("data_0_0_0.snappy.parquet");
    write_customer_input(&input);
    let out = run(stagepush(dir.path())
        .args(["plugin", "test"])
        .arg(plugin("echo-rust"))
        .arg(&input));
    assert!(out.status.success(), "{}", out.stderr);
    let records: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 6);
    let p = |r: usize| &records[r]["properties"];
    // NUMBER(38,0): exact, as a number when a double holds it, else as a string.
    assert_eq!(p(0)["CUSTOMER_ID"], serde_json::json!(1));
    assert_eq!(
        p(3)["CUSTOMER_ID"],
        serde_json::json!("99999999999999999999999999999999999999")
    );
    assert_eq!(p(5)["CUSTOMER_ID"], serde_json::json!(-7));
    assert_eq!(p(2)["CUSTOMER_ID"], serde_json::Value::Null);
    // TIMESTAMP_NTZ: millisecond wall-clock values, written as they are.
    assert_eq!(p(0)["UPDATED_AT"], "2024-05-01T12:34:56.789Z");
    assert_eq!(p(5)["UPDATED_AT"], "1969-12-31T00:00:00.000Z");
    assert_eq!(p(1)["NAME"], "Émile Zola");
    assert_eq!(p(5)["NAME"], "He said \"hi\"\n");
    assert_eq!(p(5)["EMAIL"], "");
    assert_eq!(p(1)["EMAIL"], serde_json::Value::Null);
    assert_eq!(p(3)["IS_ACTIVE"], serde_json::Value::Null);
    assert_eq!(p(1)["IS_DELETED"], serde_json::Value::Null);
    assert_eq!(p(4)["IS_DELETED"], true);
    // File context: key and PARTITION BY values (a `_NULL_` partition has no value).
    assert_eq!(p(0)["_file"], input.display().to_string());
    assert_eq!(
        p(0)["_partitions"],
        serde_json::json!({"date": "2024-05-01", "region": null})
    );
    // Row numbers are the external ids.
    let ids: Vec<&str> = records
        .iter()
        .map(|r| r["externalId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["0", "1", "2", "3", "4", "5"]);
    // The schema as the plugin saw it: types, wall-clock flag, nullability.
    let schema: Vec<(String, String, bool)> = p(0)["_schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["type"].as_str().unwrap().to_string(),
                c["nullable"].as_bool().unwrap(),
            )
        })
        .collect();
    let expect = |n: &str, t: &str, null: bool| (n.to_string(), t.to_string(), null);
    assert_eq!(
        schema,
        [
            expect("CUSTOMER_ID", "decimal(38,0)", true),
            expect("NAME", "text", true),
            expect("EMAIL", "text", true),
            expect("COUNTRY", "text", true),
            expect("IS_ACTIVE", "boolean", true),
            expect("UPDATED_AT", "timestamp(millis,wall-clock)", false),
            expect("IS_DELETED", "boolean", true),
        ]
    );
}

#[test]
fn the_real_header_false_unload_passes_through_a_plugin() {
    let dir = temp_dir();
    let input = fixture("snowflake-unload/header-false/comments/data_0_0_0.snappy.parquet");
    let out = run(stagepush(dir.path())
        .args(["plugin", "test"])
        .arg(plugin("echo-rust"))
        .arg(&input));
    assert!(out.status.success(), "{}", out.stderr);
    let lines = out.stdout_lines();
    assert_eq!(lines.len(), 11_126);
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let props = first["properties"].as_object().unwrap();
    for i in 0..8 {
        assert!(props.contains_key(&format!("_COL_{i}")), "{props:?}");
    }
    assert!(
        out.stderr
            .contains("summary: 11126 rows read, 11126 records, 0 filtered, 0 errors"),
        "{}",
        out.stderr
    );
}
