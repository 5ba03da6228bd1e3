//! Zero-code transforms (`[mapping]` and the pass-through): the mapping equivalent to
//! `plugins/customer-rust` makes the same wire records byte for byte (and the same row
//! errors); `run` delivers through them to the mock with the plugin's accounting; schema
//! problems stop the run before any row is read, naming the column.

use std::path::Path;
use std::sync::Arc;

use parquet::file::properties::WriterProperties;
use stagepush::mapping::{MappingSpec, validate};
use stagepush::pipeline::transformer::{TransformSpec, Transformer};
use stagepush::plugin::{Limits, LoadOptions, Plugin, PluginEngine};
use stagepush::sample::{CustomerFileOptions, write_customer_file};
use stagepush::source::parquet::{ParquetSource, ReadOptions};
use stagepush::transform::ArrowInput;
use stagepush::wire::Shape;

use crate::util::command::TestCommand;
use crate::util::{
    Chunk, MockProcess, Values, plugin, read_ndjson, read_report, shared_plugin_cache, temp_dir,
    write_parquet,
};

const TOKEN: &str = "mapping-test-token";
const ENDPOINT_ID: &str = "0A1B2C3D-4E5F-4A5B-8C9D-0E1F2A3B4C5D";

/// `plugins/customer-rust` as a `[mapping]` (docs/mapping.md shows the same).
pub const CUSTOMER_MAPPING: &str = r#"
[mapping]
type = "Customer"
id = "CUSTOMER_ID"
timestamp = "UPDATED_AT"
deleted = "IS_DELETED"
[mapping.properties]
name = "NAME"
country = "COUNTRY"
email = "lower(trim(EMAIL))"
isActive = "IS_ACTIVE"
updatedAt = "UPDATED_AT"
"#;

fn customer_mapping() -> stagepush::mapping::MappingConfig {
    stagepush::config::RunConfig::parse(CUSTOMER_MAPPING)
        .unwrap()
        .mapping
        .unwrap()
}

/// Every record's bytes (one line each) and every row failure (`row: message`) of `spec`
/// over `file`, read in batches of `batch_rows`.
fn transform(
    spec: &TransformSpec,
    file: &Path,
    shape: Shape,
    batch_rows: usize,
) -> (String, Vec<String>) {
    let source = ParquetSource::open(file).unwrap();
    let schema = source.contract_schema().unwrap();
    let mut t = Transformer::start(spec, schema, shape).unwrap();
    let (projection, batch_schema) = t.read_plan();
    let source_file = stagepush::source::source_file("data_0_0_0.snappy.parquet");
    let (mut records, mut failures) = (String::new(), Vec::new());
    let options = ReadOptions {
        batch_rows,
        projection,
        ..ReadOptions::default()
    };
    for batch in source.batches(&options).unwrap() {
        let batch = batch.unwrap();
        let encoded = t
            .transform(&ArrowInput {
                file: &source_file,
                first_row: batch.first_row,
                batch: &batch.batch,
                schema: &batch_schema,
                projection: None,
            })
            .unwrap();
        for r in &encoded.records {
            records.push_str(std::str::from_utf8(encoded.record_json(r)).unwrap());
            records.push('\n');
        }
        failures.extend(
            encoded
                .failures
                .iter()
                .map(|f| format!("{}: {}", f.row, f.message)),
        );
    }
    (records, failures)
}

fn customer_rust() -> TransformSpec {
    let engine = PluginEngine::new(Limits::default()).unwrap();
    let plugin = Plugin::load(
        &engine,
        &plugin("customer-rust"),
        &LoadOptions {
            cache_dir: Some(shared_plugin_cache()),
            expected_sha256: None,
        },
    )
    .unwrap();
    TransformSpec::Plugin {
        plugin: Arc::new(plugin),
        config: Vec::new(),
    }
}

/// A sample stage with tombstones and null ids, `files` files of `rows` rows.
fn sample_stage(dir: &Path, files: u64, rows: u64) -> std::path::PathBuf {
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    let options = CustomerFileOptions {
        tombstone_fraction: 0.05,
        null_id_fraction: 0.01,
        row_group_rows: 1500,
        ..Default::default()
    };
    for i in 0..files {
        let path = stage.join(format!("data_0_{i}_0.snappy.parquet"));
        write_customer_file(&path, 1 + i * rows, rows, &options).unwrap();
    }
    stage
}

#[test]
fn the_customer_mapping_makes_customer_rusts_records_byte_for_byte() {
    let dir = temp_dir();
    let stage = sample_stage(dir.path(), 2, 4_000);
    let rust = customer_rust();
    let mapping = TransformSpec::Mapping(Arc::new(MappingSpec::Declared(customer_mapping())));
    for shape in [Shape::Nested, Shape::Flat] {
        for i in 0..2 {
            let file = stage.join(format!("data_0_{i}_0.snappy.parquet"));
            let (plugin_records, plugin_errors) = transform(&rust, &file, shape, 1000);
            let (mapping_records, mapping_errors) = transform(&mapping, &file, shape, 333);
            assert!(plugin_records.contains("\"deleted\":true"), "no tombstones");
            assert!(!plugin_errors.is_empty(), "no null ids");
            assert_eq!(plugin_records.lines().count() + plugin_errors.len(), 4_000);
            assert!(
                plugin_records == mapping_records,
                "records differ ({shape:?}, file {i})"
            );
            assert_eq!(plugin_errors, mapping_errors);
        }
    }
}

fn write_config(dir: &Path, mock: &MockProcess, extra: &str) -> std::path::PathBuf {
    let path = dir.join("stagepush.toml");
    std::fs::write(
        &path,
        format!(
            "[sink]\nendpoint = \"{}\"\n[auth]\ntoken_env = \"STAGEPUSH_MAPPING_TOKEN\"\n{extra}",
            mock.endpoint(ENDPOINT_ID)
        ),
    )
    .unwrap();
    path
}

/// `stagepush run` over `stage` with the config `extra` (no plugin unless given).
fn run_cmd(dir: &Path, stage: &Path, mock: &MockProcess, extra: &str) -> TestCommand {
    let config = write_config(dir, mock, extra);
    let mut cmd = TestCommand::new(dir);
    cmd.arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--source")
        .arg(stage)
        .env("STAGEPUSH_MAPPING_TOKEN", TOKEN)
        .arg("--dead-letter")
        .arg(dir.join("dead"))
        .arg("--report")
        .arg(dir.join("report.json"))
        .arg("--no-progress");
    cmd
}

fn records(mock: &MockProcess) -> Vec<String> {
    let mut r: Vec<String> = mock
        .records()
        .iter()
        .map(|l| l["record"].to_string())
        .collect();
    r.sort();
    r
}

#[test]
fn run_with_the_mapping_delivers_what_the_plugin_delivers() {
    let (a, b) = (temp_dir(), temp_dir());
    let stage = sample_stage(a.path(), 2, 1_500);
    let mock_a = MockProcess::start(a.path(), TOKEN, &[]);
    run_cmd(a.path(), &stage, &mock_a, "")
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .assert_exit(3);
    let mock_b = MockProcess::start(b.path(), TOKEN, &[]);
    run_cmd(b.path(), &stage, &mock_b, CUSTOMER_MAPPING).assert_exit(3);
    assert_eq!(records(&mock_a), records(&mock_b));
    let letters = |d: &Path| -> Vec<(String, u64, String, String)> {
        read_ndjson(&d.join("dead/dead-letters.ndjson"))
            .iter()
            .map(|l| {
                (
                    l["file"]
                        .as_str()
                        .unwrap()
                        .rsplit('/')
                        .next()
                        .unwrap()
                        .to_string(),
                    l["row"].as_u64().unwrap(),
                    l["stage"].as_str().unwrap().to_string(),
                    l["message"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    // Workers interleave their files' dead letters: compare them in (file, row) order.
    let (mut la, mut lb) = (letters(a.path()), letters(b.path()));
    la.sort();
    lb.sort();
    assert!(!la.is_empty());
    assert_eq!(la, lb);
    assert!(lb.iter().all(|l| l.3 == "CUSTOMER_ID is null"), "{lb:?}");
    let (ra, rb) = (read_report(a.path()), read_report(b.path()));
    assert_eq!(ra["rows"], rb["rows"]);
    assert_eq!(rb["plugin"]["name"], "mapping");
}

fn text(values: &[&str]) -> Values {
    Values::Bytes(values.iter().map(|v| v.as_bytes().to_vec()).collect())
}

/// A stage shaped by the seed guide's SELECT: `OBJECT_CONSTRUCT(...) AS PROPERTIES`.
fn object_construct_stage(dir: &Path) -> std::path::PathBuf {
    let stage = dir.join("seed");
    std::fs::create_dir_all(&stage).unwrap();
    let schema = "message schema {
        optional binary EXTERNALID (STRING);
        optional binary TYPE (STRING);
        required int64 TIMESTAMP (TIMESTAMP_MILLIS);
        optional binary PROPERTIES (STRING);
        required boolean DELETED;
    }";
    // Rows: a customer with a nested address, a tombstone, a null id, a null type,
    // PROPERTIES that is an array, PROPERTIES null.
    let present_id = [true, true, false, true, true, true];
    let present_type = [true, true, true, false, true, true];
    let present_props = [true, true, true, true, true, false];
    write_parquet(
        &stage.join("data_0_0_0.snappy.parquet"),
        schema,
        WriterProperties::builder().build(),
        vec![vec![
            Chunk::optional(text(&["c-1", "c-2", "c-4", "c-5", "c-6"]), &present_id),
            Chunk::optional(
                text(&["Customer", "Customer", "Customer", "Customer", "Customer"]),
                &present_type,
            ),
            Chunk::required(Values::Int64(vec![1_714_566_896_789; 6])),
            Chunk::optional(
                text(&[
                    r#"{"email":"ann@example.com","address":{"city":"Oslo","lines":["a","b"]},"score":1.50,"vip":true}"#,
                    r#"{"email":"gone@example.com"}"#,
                    r#"{"email":"x@example.com"}"#,
                    r#"{"email":"y@example.com"}"#,
                    r#"["not","an","object"]"#,
                ]),
                &present_props,
            ),
            Chunk::required(Values::Bool(vec![false, true, false, false, false, false])),
        ]],
    );
    stage
}

#[test]
fn the_pass_through_sends_object_construct_rows_as_they_are() {
    let dir = temp_dir();
    let stage = object_construct_stage(dir.path());
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let out = run_cmd(dir.path(), &stage, &mock, "").assert_exit(3);
    let got: Vec<String> = mock
        .records()
        .iter()
        .map(|l| l["record"].to_string())
        .collect();
    assert_eq!(
        got,
        [
            r#"{"externalId":"c-1","properties":{"address":{"city":"Oslo","lines":["a","b"]},"email":"ann@example.com","score":1.5,"vip":true},"timestamp":"2024-05-01T12:34:56.789Z","type":"Customer"}"#,
            r#"{"deleted":true,"externalId":"c-2","properties":{},"timestamp":"2024-05-01T12:34:56.789Z","type":"Customer"}"#,
            r#"{"externalId":"c-6","properties":{},"timestamp":"2024-05-01T12:34:56.789Z","type":"Customer"}"#,
        ],
        "{}",
        out.stderr
    );
    let letters: Vec<(u64, String)> = read_ndjson(&dir.path().join("dead/dead-letters.ndjson"))
        .iter()
        .map(|l| {
            (
                l["row"].as_u64().unwrap(),
                l["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        letters,
        [
            (2, "EXTERNALID is null".to_string()),
            (3, "TYPE is null".to_string()),
            (
                4,
                r#"PROPERTIES is not a JSON object: ["not","an","object"]"#.to_string()
            ),
        ]
    );
    assert_eq!(read_report(dir.path())["plugin"]["name"], "pass-through");
}

#[test]
fn schema_problems_stop_the_run_before_any_row_naming_the_column() {
    let dir = temp_dir();
    let stage = sample_stage(dir.path(), 1, 100);
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    // No plugin, no [mapping], a stage not shaped for the pass-through.
    let out = run_cmd(dir.path(), &stage, &mock, "").assert_exit(2);
    assert!(
        out.stderr.contains("it lacks EXTERNALID, TYPE, TIMESTAMP, PROPERTIES (columns: CUSTOMER_ID, NAME, EMAIL, COUNTRY, IS_ACTIVE, UPDATED_AT, IS_DELETED). Set --plugin or [plugin] path, write a [mapping]"),
        "{}",
        out.stderr
    );
    // A misspelt column.
    let misspelt = CUSTOMER_MAPPING.replace("\"NAME\"", "\"NAMES\"");
    let out = run_cmd(dir.path(), &stage, &mock, &misspelt).assert_exit(2);
    assert!(
        out.stderr.contains("error: [mapping] properties.name: no column NAMES in the stage (columns: CUSTOMER_ID, NAME, EMAIL, COUNTRY, IS_ACTIVE, UPDATED_AT, IS_DELETED)"),
        "{}",
        out.stderr
    );
    assert!(mock.requests().is_empty(), "nothing may be sent");
    // The same check `stagepush check` can call.
    let schema = ParquetSource::open(stage.join("data_0_0_0.snappy.parquet"))
        .unwrap()
        .contract_schema()
        .unwrap();
    assert!(validate(&customer_mapping(), &schema).is_ok());
}

#[test]
fn a_property_never_set_is_a_warning_in_the_summary_and_the_report() {
    let dir = temp_dir();
    let stage = sample_stage(dir.path(), 1, 200);
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let mapping = format!("{CUSTOMER_MAPPING}nickname = \"json(text(IS_ACTIVE), 'nick')\"\n");
    let out = run_cmd(dir.path(), &stage, &mock, &mapping).run();
    let warning = "the mapping's property Customer.nickname was not set on any record (its value was null in every row)";
    assert_eq!(
        out.stderr_lines("warning: the mapping's"),
        [format!("warning: {warning}")],
        "{}",
        out.stderr
    );
    let report = read_report(dir.path());
    let warnings: Vec<&serde_json::Value> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["messageId"] == "mapping-property-never-set")
        .collect();
    assert_eq!(warnings.len(), 1, "{report}");
    assert_eq!(warnings[0]["message"], warning);

    // A rerun that reads no row (everything delivered) has nothing to warn about.
    let again = run_cmd(dir.path(), &stage, &mock, &mapping).run();
    assert_eq!(
        read_report(dir.path())["rows"]["read"],
        0,
        "{}",
        again.stderr
    );
    assert!(
        again.stderr_lines("warning: the mapping's").is_empty(),
        "{}",
        again.stderr
    );
}

/// The real Snowflake unload (`HEADER=FALSE`: columns `_COL_0` … `_COL_7`): not shaped for the
/// pass-through (the error lists its columns), and a `[mapping]` by position sends every row
/// with `properties = "*"`.
#[test]
fn a_real_header_false_unload_maps_by_position_and_is_refused_by_the_pass_through() {
    let dir = temp_dir();
    let stage = crate::util::fixture("snowflake-unload/header-false/comments");
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let out = run_cmd(dir.path(), &stage, &mock, "").assert_exit(2);
    assert!(
        out.stderr.contains("it lacks EXTERNALID, TYPE, TIMESTAMP, PROPERTIES (columns: _COL_0, _COL_1, _COL_2, _COL_3, _COL_4, _COL_5, _COL_6, _COL_7)"),
        "{}",
        out.stderr
    );
    assert!(mock.requests().is_empty());
    let mapping = "[mapping]\ntype = \"Comment\"\nid = \"_col_0\"\nproperties = \"*\"\n";
    let out = run_cmd(dir.path(), &stage, &mock, mapping).run();
    let report = read_report(dir.path());
    let rows = &report["rows"];
    assert_eq!(rows["read"], 11_126, "{}", out.stderr);
    assert_eq!(
        rows["delivered"].as_u64().unwrap() + rows["deadLettered"].as_u64().unwrap(),
        11_126
    );
    let records = mock.records();
    assert!(!records.is_empty(), "{}", out.stderr);
    assert_eq!(records.len() as u64, rows["delivered"].as_u64().unwrap());
    for r in &records {
        let record = &r["record"];
        assert_eq!(record["type"], "Comment");
        let props = record["properties"].as_object().unwrap();
        assert!(
            props
                .keys()
                .all(|k| k.starts_with("_COL_") && k != "_COL_0"),
            "{record}"
        );
    }
}
