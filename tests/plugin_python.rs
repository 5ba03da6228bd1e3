//! The Python example plugin (`plugins/customer-python`, on `plugins/sdk-python`) against the
//! Rust one (`plugins/customer-rust`): over the same inputs, through the real binary, the
//! records must be byte-identical and the row errors (and refusals) identical.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use parquet::file::properties::WriterProperties;

use crate::util::{
    Chunk, Output, Values, fixture, plugin, run, stagepush, temp_dir, write_parquet,
};

/// Runs `stagepush plugin test` with `name` over `inputs`.
fn plugin_test(dir: &Path, name: &str, inputs: &[PathBuf], args: &[&str]) -> Output {
    run(stagepush(dir)
        .args(["plugin", "test"])
        .arg(plugin(name))
        .args(inputs)
        .args(args))
}

/// The summary line without its timings.
fn summary(out: &Output) -> String {
    out.stderr_lines("summary:")
        .first()
        .map(|l| l.split(';').next().unwrap_or_default().to_string())
        .unwrap_or_default()
}

/// One compiled-plugin cache for every test here, filled before any of them runs a plugin:
/// compiling the Python component takes ~15 s, loading it from the cache ~0.1 s.
fn cache() -> &'static Path {
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            let dir = temp_dir();
            for name in ["customer-rust", "customer-python"] {
                let out = run(stagepush(dir.path())
                    .args(["plugin", "info"])
                    .arg(plugin(name)));
                assert!(out.status.success(), "{}", out.stderr);
            }
            dir
        })
        .path()
}

/// Runs both plugins and requires the same exit status, records, error lines and counts;
/// returns the Rust plugin's output.
fn same(inputs: &[PathBuf], args: &[&str]) -> Output {
    let dir = cache();
    let rust = plugin_test(dir, "customer-rust", inputs, args);
    let python = plugin_test(dir, "customer-python", inputs, args);
    assert_eq!(
        rust.status.code(),
        python.status.code(),
        "rust:\n{}\npython:\n{}",
        rust.stderr,
        python.stderr
    );
    assert!(
        rust.stdout == python.stdout,
        "records differ:\n--- rust\n{}\n--- python\n{}",
        rust.stdout,
        python.stdout
    );
    assert_eq!(rust.stderr_lines("error:"), python.stderr_lines("error:"));
    assert_eq!(summary(&rust), summary(&python));
    rust
}

#[test]
fn python_matches_rust_on_sample_stages_with_tombstones_and_bad_rows() {
    let dir = temp_dir();
    let options = stagepush::sample::CustomerFileOptions {
        tombstone_fraction: 0.05,
        null_id_fraction: 0.01,
        row_group_rows: 1500,
        ..Default::default()
    };
    let mut inputs = Vec::new();
    for (i, first) in [(0u64, 1u64), (1, 4001)] {
        let path = dir.path().join(format!("data_0_{i}_0.snappy.parquet"));
        stagepush::sample::write_customer_file(&path, first, 4000, &options)
            .expect("write customer file");
        inputs.push(path);
    }
    let out = same(&inputs, &["--plugin-batch-rows", "1000"]);
    assert_eq!(
        out.stdout_lines().len() + out.stderr_lines("error:").len(),
        8000
    );
    assert!(!out.stderr_lines("error:").is_empty(), "{}", out.stderr);
    assert!(out.stdout.contains("\"deleted\":true"), "no tombstones");
    same(&inputs, &["--shape", "flat", "--plugin-batch-rows", "333"]);
}

fn texts(values: &[&str]) -> Values {
    Values::Bytes(values.iter().map(|v| v.as_bytes().to_vec()).collect())
}

#[test]
fn python_matches_the_hand_checked_file() {
    let dir = temp_dir();
    let input = dir.path().join("data_0_0_0.snappy.parquet");
    crate::customer_plugin::write_customer_input(&input);
    let out = same(std::slice::from_ref(&input), &[]);
    let expected = std::fs::read_to_string(fixture("customer-rust/expected.ndjson")).unwrap();
    assert_eq!(out.stdout, expected);
    same(&[input], &["--shape", "flat"]);
}

/// Snowflake quirks and other layouts the customer transform accepts: lower-case names,
/// text and INT64 ids, scaled decimals, missing optional columns, other timestamp units and
/// zones, dates, flags as text or integers, JSON names, non-ASCII and odd whitespace, empty ids.
#[test]
fn python_matches_rust_on_snowflake_quirks() {
    let dir = temp_dir();
    let mut inputs = Vec::new();
    let mut file = |name: &str, schema: &str, chunks: Vec<Chunk>| {
        let path = dir.path().join(name);
        write_parquet(
            &path,
            schema,
            WriterProperties::builder().build(),
            vec![chunks],
        );
        inputs.push(path.clone());
        path
    };

    // Lower-case names (a quoted-identifier unload), text ids, no COUNTRY / IS_DELETED,
    // IS_ACTIVE as text, e-mails with Unicode case and whitespace (U+00A0 is trimmed, U+001F
    // is not: Rust's `trim`, not Python's `strip`).
    let text_ids = file(
        "text_ids.parquet",
        "message schema {
          optional binary customer_id (UTF8);
          optional binary name (UTF8);
          optional binary email (UTF8);
          optional binary is_active (UTF8);
          optional int64 updated_at (TIMESTAMP(MICROS,false));
        }",
        vec![
            Chunk::optional(
                texts(&["C-1", "  C-2 ", "", "Ünï 😀", "7"]),
                &[true, true, true, true, true, false],
            ),
            Chunk::optional(
                texts(&["A", "B", "C", "D", "E", "F"]),
                &[true, true, true, true, true, true],
            ),
            Chunk::optional(
                texts(&[
                    "  ÀDA@Exämple.COM\u{a0}",
                    "\u{1f}X@Y.Z\u{1f}",
                    "   ",
                    "ΣΊΣΥΦΟΣ@GR",
                    "\u{2003}İ@x\t\n",
                ]),
                &[true, true, true, true, true, false],
            ),
            Chunk::optional(
                texts(&["TRUE", "0", "yes", " False ", "1"]),
                &[true, true, true, true, false, true],
            ),
            Chunk::optional(
                Values::Int64(vec![1_714_566_896_789_123, -1, 0, 253_402_300_799_999_999]),
                &[true, true, false, true, true, false],
            ),
        ],
    );

    // INT64 ids, flags as text and as integers, UTC timestamps in nanoseconds.
    file(
        "int_ids.parquet",
        "message schema {
          optional int64 CUSTOMER_ID;
          optional binary NAME (UTF8);
          optional binary COUNTRY (UTF8);
          optional int32 IS_ACTIVE;
          optional int64 UPDATED_AT (TIMESTAMP(NANOS,true));
          optional binary IS_DELETED (UTF8);
        }",
        vec![
            Chunk::optional(
                Values::Int64(vec![i64::MIN, -1, 0, i64::MAX, 42]),
                &[true, true, true, true, true, false],
            ),
            Chunk::optional(
                texts(&["tab\there", "quote\"back\\slash", "nul\u{0}", "", "x"]),
                &[true, true, true, true, true, false],
            ),
            Chunk::optional(
                texts(&["GB", "GB", "NO"]),
                &[true, false, true, false, true, false],
            ),
            Chunk::optional(
                Values::Int32(vec![1, 0, 2, -1, 1]),
                &[true, true, true, true, true, false],
            ),
            Chunk::optional(
                Values::Int64(vec![1_714_566_896_789_123_456, -1, 5]),
                &[true, true, true, false, false, false],
            ),
            Chunk::optional(
                texts(&["TRUE", " 1 ", "yes", "false", "True"]),
                &[true, true, true, true, true, false],
            ),
        ],
    );

    // NUMBER(10,2) ids, a DATE as the timestamp, NAME as JSON, IS_DELETED as an integer.
    file(
        "scaled_ids.parquet",
        "message schema {
          optional int64 CUSTOMER_ID (DECIMAL(10,2));
          optional binary NAME (JSON);
          optional binary EMAIL (UTF8);
          optional int32 UPDATED_AT (DATE);
          optional int32 IS_DELETED;
        }",
        vec![
            Chunk::optional(
                Values::Int64(vec![1230, -5, 0, 100]),
                &[true, true, true, true],
            ),
            Chunk::optional(
                texts(&["{\"first\":\"Ada\"}", "[1,2]", "\"s\"", "null"]),
                &[true, true, true, true],
            ),
            Chunk::optional(texts(&["A@B", "C@D"]), &[true, false, true, false]),
            Chunk::optional(
                Values::Int32(vec![19_844, -719_528, 0]),
                &[true, true, false, true],
            ),
            Chunk::optional(Values::Int32(vec![0, 1, 2]), &[true, true, true, false]),
        ],
    );

    // UPDATED_AT as text: every row is an error ("entity timestamp must be …"), tombstones too.
    file(
        "text_timestamps.parquet",
        "message schema {
          optional binary CUSTOMER_ID (UTF8);
          optional binary UPDATED_AT (UTF8);
          optional boolean IS_DELETED;
        }",
        vec![
            Chunk::optional(texts(&["a", "b", "c"]), &[true, true, true]),
            Chunk::optional(texts(&["2024-05-01", "x"]), &[true, true, false]),
            Chunk::optional(Values::Bool(vec![true, false, true]), &[true, true, true]),
        ],
    );

    // One file per run: a stage's files share one schema.
    let mut stderr = String::new();
    for input in &inputs {
        let one = std::slice::from_ref(input);
        stderr += &same(one, &[]).stderr;
        same(one, &["--shape", "flat", "--plugin-batch-rows", "2"]);
    }
    same(&[text_ids], &["--limit", "3"]);
    for expected in [
        "entity timestamp must be a date or a timestamp, not text",
        "external id is empty",
        "customer_id is null",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
}

#[test]
fn python_refuses_what_rust_refuses() {
    let dir = temp_dir();
    let no_id = dir.path().join("no_id.parquet");
    write_parquet(
        &no_id,
        "message schema { optional binary NAME (UTF8); optional binary Customer (UTF8); }",
        WriterProperties::builder().build(),
        vec![vec![
            Chunk::optional(texts(&["a"]), &[true]),
            Chunk::optional(texts(&["b"]), &[true]),
        ]],
    );
    let header_false = fixture("snowflake-unload/header-false/comments/data_0_0_0.snappy.parquet");
    for input in [no_id, header_false] {
        let out = same(std::slice::from_ref(&input), &[]);
        assert!(!out.status.success());
        assert!(
            out.stderr
                .contains("required column CUSTOMER_ID not found (columns: "),
            "{}",
            out.stderr
        );
    }
    let sample = dir.path().join("sample.parquet");
    stagepush::sample::write_customer_file(&sample, 1, 10, &Default::default()).unwrap();
    let out = same(&[sample], &["--plugin-config", "mode=fast"]);
    assert!(
        out.stderr
            .contains("unknown config key 'mode': plugin customer takes no configuration"),
        "{}",
        out.stderr
    );
}

#[test]
fn python_plugin_describes_itself_like_the_rust_one() {
    let info = |name: &str| {
        let out = run(stagepush(cache())
            .args(["plugin", "info"])
            .arg(plugin(name)));
        assert!(out.status.success(), "{}", out.stderr);
        out.stdout
            .lines()
            .filter(|l| {
                ["name:", "version:", "description:", "contract:", "config:"]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let rust = info("customer-rust");
    assert_eq!(rust.len(), 5, "{rust:?}");
    let python = info("customer-python");
    // The same plugin on different contracts: the Python SDK implements 0.2.0.
    let without_contract = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| !l.starts_with("contract:"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(without_contract(&rust), without_contract(&python));
    assert!(
        python.contains(&"contract:    stagepush:transform@0.2.0".to_string()),
        "{python:?}"
    );
}
