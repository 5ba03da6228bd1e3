//! The JavaScript customer plugin (`plugins/customer-js`, on the JS SDK `plugins/sdk-js`) is
//! the Rust one's twin: over the same inputs, byte-identical records and identical row errors.

use std::path::Path;

use parquet::file::properties::WriterProperties;

use crate::util::{
    Chunk, Output, Values, fixture, plugin, run, shared_plugin_cache, stagepush, temp_dir,
    write_parquet,
};

/// Runs `plugin test` with customer-rust and customer-js over `input`; asserts the records,
/// the row errors, the counts and the plugin's warnings are the same; returns the JS run.
fn assert_same(dir: &Path, input: &Path) -> Output {
    let go = |name: &str| {
        let out = run(stagepush(dir)
            .env("STAGEPUSH_CACHE_DIR", shared_plugin_cache())
            .args(["plugin", "test"])
            .arg(plugin(name))
            .arg(input));
        assert!(out.status.success(), "{name}: {}", out.stderr);
        out
    };
    let rust = go("customer-rust");
    let js = go("customer-js");
    assert_eq!(js.stdout, rust.stdout, "records of {}", input.display());
    assert_eq!(
        js.stderr_lines("error:"),
        rust.stderr_lines("error:"),
        "row errors of {}",
        input.display()
    );
    let summary = |o: &Output| -> Vec<String> {
        o.stderr
            .lines()
            .filter(|l| l.starts_with("summary:"))
            .map(|l| l.split(';').next().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(summary(&js), summary(&rust));
    assert_eq!(summary(&js).len(), 1, "{}", js.stderr);
    let warnings = |o: &Output| -> Vec<String> {
        o.stderr
            .lines()
            .filter_map(|l| l.find("no column ").map(|i| l[i..].to_string()))
            .collect()
    };
    assert_eq!(warnings(&js), warnings(&rust));
    js
}

fn s(v: &str) -> Vec<u8> {
    v.as_bytes().to_vec()
}

#[test]
fn the_js_plugin_describes_itself_as_the_customer_plugin() {
    let dir = temp_dir();
    let out = run(stagepush(dir.path())
        .env("STAGEPUSH_CACHE_DIR", shared_plugin_cache())
        .args(["plugin", "info"])
        .arg(plugin("customer-js")));
    assert!(out.status.success(), "{}", out.stderr);
    for line in [
        "name:        customer",
        "version:     0.1.0",
        "description: Snowflake customer rows to CluedIn Customer entities",
        "contract:    stagepush:transform@0.2.0",
        "config:      (none)",
    ] {
        assert!(out.stdout.contains(line), "{line} in\n{}", out.stdout);
    }
}

#[test]
fn sample_customers_with_tombstones_and_null_ids_map_identically() {
    let dir = temp_dir();
    let input = dir.path().join("data_0_0_0.snappy.parquet");
    let options = stagepush::sample::CustomerFileOptions {
        seed: 7,
        tombstone_fraction: 0.1,
        null_id_fraction: 0.05,
        row_group_rows: 1_500,
        snappy: true,
    };
    let summary = stagepush::sample::write_customer_file(&input, 1, 5_000, &options).unwrap();
    assert!(
        summary.tombstones > 0 && summary.null_ids > 0,
        "{summary:?}"
    );
    let js = assert_same(dir.path(), &input);
    let records = js.stdout_lines().len() as u64;
    assert_eq!(records, 5_000 - summary.null_ids);
    assert_eq!(
        js.stderr_lines("error:").len() as u64,
        summary.null_ids,
        "{}",
        js.stderr
    );
    assert!(js.stdout.contains("\"deleted\":true"), "no tombstone");
}

/// The hand-checked rows of tests/customer_plugin.rs (NUMBER(38,0) ids up to 10^38 - 1 and
/// negative, a null id, TIMESTAMP_NTZ before 1970, padded mixed-case e-mail, empty e-mail,
/// quotes and newlines, null booleans, a tombstone).
#[test]
fn the_hand_checked_rows_map_identically() {
    let dir = temp_dir();
    let input = dir.path().join("data_0_0_0.snappy.parquet");
    crate::customer_plugin::write_customer_input(&input);
    let js = assert_same(dir.path(), &input);
    let expected = std::fs::read_to_string(fixture("customer-rust/expected.ndjson")).unwrap();
    assert_eq!(js.stdout, expected);
    assert_eq!(
        js.stderr_lines("error:"),
        [format!(
            "error: {} row 2: plugin `customer` rejected the row (rejected): CUSTOMER_ID is null",
            input.display()
        )]
    );
}

/// Text ids (empty, padded, non-ASCII), lower-case column names, no COUNTRY or IS_DELETED
/// column, UTC microsecond timestamps, e-mails with Unicode white space and case rules
/// (final sigma, dotted capital I), a text IS_ACTIVE.
#[test]
fn text_ids_unicode_and_missing_columns_map_identically() {
    let dir = temp_dir();
    let input = dir.path().join("text_ids.parquet");
    let present = [true, true, false, true, true, true, true];
    write_parquet(
        &input,
        "message schema {
          optional binary customer_id (UTF8);
          optional binary Name (UTF8);
          optional binary email (UTF8);
          optional binary is_active (UTF8);
          optional int64 updated_at (TIMESTAMP(MICROS,true));
        }",
        WriterProperties::builder().build(),
        vec![vec![
            Chunk::optional(
                Values::Bytes(vec![
                    s("C-1"),
                    s(""),
                    s("  42 "),
                    s("Σίσυφος"),
                    s("ID\u{0}NUL"),
                    s("İ-7"),
                ]),
                &present,
            ),
            Chunk::optional(
                Values::Bytes(vec![s("Ann"), s("Empty Id"), s("Null Id"), s("Bob")]),
                &[true, true, true, false, true, false, false],
            ),
            Chunk::optional(
                Values::Bytes(vec![
                    s(" \u{a0}ÉMILE@Example.FR\u{3000}"),
                    s("a@b.c"),
                    s("x@y.z"),
                    s("\u{feff}X@Y.Z\u{85}"),
                    s("ΟΔΟΣ@X.GR"),
                    s("\tİSTANBUL@X.TR\n"),
                    s("İSTANBUL.ǅ@ẞ.DE"),
                ]),
                &[true; 7],
            ),
            Chunk::optional(
                Values::Bytes(vec![s("yes"), s("true"), s("0")]),
                &[true, false, true, false, false, true, false],
            ),
            Chunk::optional(
                Values::Int64(vec![1_714_566_896_789_123, 0, -1, 253_402_300_799_999_999]),
                &[true, true, true, false, false, true, false],
            ),
        ]],
    );
    let js = assert_same(dir.path(), &input);
    // The id with a NUL character is dropped the same way for both plugins (see assert_same).
    assert_eq!(js.stdout_lines().len(), 4, "{}\n{}", js.stdout, js.stderr);
    let errors = js.stderr_lines("error:");
    assert!(
        errors.iter().any(|e| e.ends_with("external id is empty")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.ends_with("customer_id is null")),
        "{errors:?}"
    );
}

/// INT64 ids (both extremes), DATE as the entity timestamp, a null IS_DELETED; and a
/// NUMBER(18,2) id written exactly.
#[test]
fn integer_and_scaled_decimal_ids_and_dates_map_identically() {
    let dir = temp_dir();
    let input = dir.path().join("int_ids.parquet");
    write_parquet(
        &input,
        "message schema {
          optional int64 CUSTOMER_ID;
          optional binary EMAIL (UTF8);
          optional int32 UPDATED_AT (DATE);
          optional boolean IS_DELETED;
        }",
        WriterProperties::builder().build(),
        vec![vec![
            Chunk::optional(
                Values::Int64(vec![i64::MIN, i64::MAX, 0, -1]),
                &[true, true, true, true],
            ),
            Chunk::optional(
                Values::Bytes(vec![s("A@B.C"), s("")]),
                &[true, false, true, false],
            ),
            Chunk::optional(
                Values::Int32(vec![0, -719_162, 2_932_896]),
                &[true, true, false, true],
            ),
            Chunk::optional(Values::Bool(vec![true, false]), &[false, true, true, false]),
        ]],
    );
    let js = assert_same(dir.path(), &input);
    assert_eq!(js.stdout_lines().len(), 4, "{}", js.stdout);

    let input = dir.path().join("decimal_ids.parquet");
    write_parquet(
        &input,
        "message schema {
          optional int64 CUSTOMER_ID (DECIMAL(18,2));
          optional boolean IS_DELETED;
        }",
        WriterProperties::builder().build(),
        vec![vec![
            Chunk::optional(
                Values::Int64(vec![1230, -5, 0, i64::MAX]),
                &[true, true, true, false, true],
            ),
            Chunk::optional(
                Values::Bool(vec![true]),
                &[false, true, false, false, false],
            ),
        ]],
    );
    let js = assert_same(dir.path(), &input);
    assert_eq!(js.stdout_lines().len(), 4, "{}", js.stdout);
    assert!(
        js.stdout.contains("\"externalId\":\"12.30\""),
        "{}",
        js.stdout
    );
    assert!(
        js.stdout.contains("\"externalId\":\"-0.05\""),
        "{}",
        js.stdout
    );
}

/// FLOAT ids (a DOUBLE column, or a JSON stage's inferred FLOAT): the external id is the
/// float as the Rust SDK writes it (`Display`: every digit, never an exponent), so `1e38`
/// is `100000000000000000000000000000000000000`, not JavaScript's `1e+38`.
#[test]
fn float_ids_are_written_as_the_rust_plugin_writes_them() {
    let dir = temp_dir();
    let input = dir.path().join("float_ids.parquet");
    let ids = vec![
        1e38,
        -1e38,
        1e21,
        1.8446744073709552e19,
        1e-7,
        1.5,
        -0.0,
        100_010.0,
    ];
    let rows = ids.len();
    write_parquet(
        &input,
        "message schema {
          optional double CUSTOMER_ID;
          optional boolean IS_DELETED;
        }",
        WriterProperties::builder().build(),
        vec![vec![
            Chunk::optional(Values::Double(ids), &vec![true; rows]),
            Chunk::optional(Values::Bool(vec![false; rows]), &vec![true; rows]),
        ]],
    );
    let js = assert_same(dir.path(), &input);
    let external_ids: Vec<String> = js
        .stdout_lines()
        .iter()
        .map(|l| {
            let record: serde_json::Value = serde_json::from_str(l).unwrap();
            record["externalId"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        external_ids,
        [
            "100000000000000000000000000000000000000",
            "-100000000000000000000000000000000000000",
            "1000000000000000000000",
            "18446744073709552000",
            "0.0000001",
            "1.5",
            "-0",
            "100010",
        ]
    );
}
