//! Local stages, stage URLs, and `stagepush inspect`.

use parquet::file::properties::WriterProperties;
use stagepush::source::{
    ReadOptions, Selection, Stage, StageConfig, StageError, StageSource, StageUrl, StoreKind,
};

use crate::stage_servers::customer_file;
use crate::util::{Chunk, Values, decimal_bytes, fixture, run, stagepush, temp_dir, write_parquet};

const QUERY_ID: &str = "01b2c3d4-0000-1111-2222-333344445555";

#[test]
fn a_local_folder_lists_like_an_object_store() {
    let dir = temp_dir();
    let stage_dir = dir.path().join("stage");
    customer_file(
        &stage_dir,
        &format!("date=2024-05-01/data_{QUERY_ID}_0_0_0.snappy.parquet"),
        1,
        10,
        usize::MAX,
    );
    customer_file(
        &stage_dir,
        &format!("date=_NULL_/data_{QUERY_ID}_0_1_0.snappy.parquet"),
        11,
        10,
        usize::MAX,
    );
    customer_file(
        &stage_dir,
        "my folder/data_0_0_0.snappy.parquet",
        21,
        10,
        usize::MAX,
    );
    customer_file(&stage_dir, "single/data", 31, 10, usize::MAX);
    std::fs::write(stage_dir.join("_SUCCESS"), b"").unwrap();
    std::fs::write(stage_dir.join("notes.txt"), b"not data").unwrap();
    std::fs::write(stage_dir.join("README"), b"no extension, no magic").unwrap();
    std::fs::create_dir_all(stage_dir.join("empty/folder")).unwrap();

    let stage = Stage::from_url(stage_dir.to_str().unwrap()).unwrap();
    assert_eq!(stage.kind(), StoreKind::Local);
    let files = stage.list().unwrap();
    let relative: Vec<&str> = files.iter().map(|f| f.relative.as_str()).collect();
    assert_eq!(
        relative,
        [
            format!("date=2024-05-01/data_{QUERY_ID}_0_0_0.snappy.parquet").as_str(),
            &format!("date=_NULL_/data_{QUERY_ID}_0_1_0.snappy.parquet"),
            "my folder/data_0_0_0.snappy.parquet",
            "single/data",
        ]
    );
    let canonical = std::fs::canonicalize(&stage_dir).unwrap();
    assert_eq!(
        files[2].key,
        canonical
            .join("my folder/data_0_0_0.snappy.parquet")
            .to_str()
            .unwrap()
    );
    assert_eq!(files[2].url, files[2].key);
    assert_eq!(
        files[0].partitions,
        [("date".to_owned(), Some("2024-05-01".to_owned()))]
    );
    assert_eq!(files[1].partitions, [("date".to_owned(), None)]);
    assert_eq!(files[0].name.query_id.as_deref(), Some(QUERY_ID));

    // The file:// form, with a percent-encoded space, names the same stage.
    let url = format!("file://{}", canonical.display()).replace(' ', "%20");
    assert_eq!(Stage::from_url(&url).unwrap().list().unwrap(), files);

    // One file.
    let one = Stage::from_url(
        stage_dir
            .join("my folder/data_0_0_0.snappy.parquet")
            .to_str()
            .unwrap(),
    )
    .unwrap()
    .list()
    .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].relative, "data_0_0_0.snappy.parquet");

    // A key list, relative and absolute.
    let keys = Selection::parse_keys(&format!(
        "single/data\n{}\n",
        canonical
            .join("my folder/data_0_0_0.snappy.parquet")
            .display()
    ));
    let selected = stage
        .select(&Selection {
            keys: Some(keys),
            ..Selection::default()
        })
        .unwrap();
    assert_eq!(selected.len(), 2);

    // Rows.
    let source = stage.open(&files[3]).unwrap();
    let rows: usize = source
        .batches(&ReadOptions::default())
        .unwrap()
        .map(|b| b.unwrap().batch.num_rows())
        .sum();
    assert_eq!(rows, 10);
    assert!(source.read_stats().is_none());

    // A missing stage.
    let missing = Stage::from_url(dir.path().join("nope").to_str().unwrap())
        .unwrap()
        .list()
        .unwrap_err();
    assert!(
        matches!(missing, StageError::NotFound { .. }),
        "{missing:?}"
    );
    assert!(
        missing.to_string().ends_with("nope: no such object"),
        "{missing}"
    );
}

#[test]
fn every_stage_url_form_parses_and_malformed_ones_say_why() {
    let cases = [
        (
            "s3://bucket/prefix/",
            StoreKind::S3,
            "bucket",
            None,
            "prefix/",
        ),
        (
            "s3://bucket/my folder/x=1/",
            StoreKind::S3,
            "bucket",
            None,
            "my folder/x=1/",
        ),
        (
            "az://container/prefix/",
            StoreKind::Azure,
            "container",
            None,
            "prefix/",
        ),
        (
            "azure://account1.blob.core.windows.net/container/prefix/",
            StoreKind::Azure,
            "container",
            Some("account1"),
            "prefix/",
        ),
        (
            "https://account1.blob.core.windows.net/container/pre%20fix/",
            StoreKind::Azure,
            "container",
            Some("account1"),
            "pre fix/",
        ),
        (
            "abfss://container@account1.dfs.core.windows.net/prefix/data",
            StoreKind::Azure,
            "container",
            Some("account1"),
            "prefix/data",
        ),
        (
            "gs://bucket/prefix/",
            StoreKind::Gcs,
            "bucket",
            None,
            "prefix/",
        ),
        (
            "file:///tmp/stage/",
            StoreKind::Local,
            "",
            None,
            "/tmp/stage/",
        ),
        (
            "relative/stage",
            StoreKind::Local,
            "",
            None,
            "relative/stage",
        ),
    ];
    for (text, kind, bucket, account, key) in cases {
        let url = StageUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            (url.kind(), url.bucket(), url.account(), url.key()),
            (kind, bucket, account, key),
            "{text}"
        );
    }
    // A GCS stage builds (GCS is supported through object_store; no server here).
    let gcs = Stage::new(&StageConfig {
        url: Some("gs://bucket/prefix/".into()),
        skip_signature: Some(true),
        ..StageConfig::default()
    })
    .unwrap();
    assert_eq!(gcs.kind(), StoreKind::Gcs);

    for (text, reason) in [
        ("s3:/bucket/x", "expected `s3://`"),
        ("s3://", "names no bucket"),
        ("gs://bad bucket/", "not a valid GCS bucket"),
        ("az://UPPER/x", "not a valid Azure container"),
        ("azure://account1.blob.core.windows.net/", "no container"),
        ("https://example.com/x", "not a known storage host"),
        ("ftp://host/x", "unsupported scheme"),
        ("s3://bucket/a//b", "empty path segment"),
    ] {
        let error = StageError::from(StageUrl::parse(text).unwrap_err());
        assert!(matches!(error, StageError::Url { .. }));
        assert!(error.to_string().contains(reason), "{text}: {error}");
    }
}

#[test]
fn stage_sources_move_between_threads() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<StageSource>();
    send::<stagepush::source::StageBatches>();
    send_sync::<Stage>();
    send_sync::<stagepush::source::StageReader>();
}

/// A stage of Snowflake-quirk files: FLBA decimals, TIMESTAMP_MILLIS without a logical
/// type, JSON text, and a second file whose `BIG` column is INT32.
fn quirk_stage(dir: &std::path::Path) {
    let schema = |big: &str| {
        format!(
            "message schema {{
              required fixed_len_byte_array(16) ID (DECIMAL(38,0));
              optional fixed_len_byte_array(4) PRICE (DECIMAL(6,2));
              required int64 UPDATED_AT (TIMESTAMP_MILLIS);
              optional binary NAME (UTF8);
              optional binary DOC (JSON);
              optional int32 DAY (DATE);
              optional double SCORE;
              optional boolean ACTIVE;
              optional {big} BIG;
            }}"
        )
    };
    let chunks = |big: Values| {
        vec![
            Chunk::required(Values::Fixed(vec![
                decimal_bytes(1, 16),
                decimal_bytes(2, 16),
            ])),
            Chunk::optional(Values::Fixed(vec![decimal_bytes(1999, 4)]), &[true, false]),
            Chunk::required(Values::Int64(vec![1_714_566_896_789, 1_714_566_896_790])),
            Chunk::optional(Values::Bytes(vec![b"Anna".to_vec()]), &[true, false]),
            Chunk::optional(Values::Bytes(vec![br#"{"a":1}"#.to_vec()]), &[true, false]),
            Chunk::optional(Values::Int32(vec![19_844]), &[true, false]),
            Chunk::optional(Values::Double(vec![0.5]), &[true, false]),
            Chunk::optional(Values::Bool(vec![true]), &[true, false]),
            Chunk::optional(big, &[true, false]),
        ]
    };
    std::fs::create_dir_all(dir).unwrap();
    write_parquet(
        &dir.join("data_0_0_0.snappy.parquet"),
        &schema("int64"),
        WriterProperties::builder().build(),
        vec![chunks(Values::Int64(vec![7]))],
    );
    write_parquet(
        &dir.join("data_0_1_0.snappy.parquet"),
        &schema("int32"),
        WriterProperties::builder().build(),
        vec![chunks(Values::Int32(vec![7]))],
    );
}

#[test]
fn inspect_names_the_likely_snowflake_types_and_warns() {
    let dir = temp_dir();
    let stage = dir.path().join("quirks");
    quirk_stage(&stage);
    let out = run(stagepush(dir.path()).arg("inspect").arg(&stage));
    assert!(out.status.success(), "{}", out.stderr);
    let text = &out.stdout;
    for expected in [
        "files:   2 (",
        "4 rows in 2 row groups",
        "data_0_0_0.snappy.parquet",
        "data 0_1_0",
        "REQUIRED FIXED_LEN_BYTE_ARRAY(16) DECIMAL(38,0)",
        "NUMBER(38,0)",
        "NUMBER(6,2)",
        "REQUIRED INT64 TIMESTAMP_MILLIS (converted type only)",
        "TIMESTAMP_NTZ",
        "VARCHAR",
        "VARIANT",
        "DATE",
        "FLOAT",
        "BOOLEAN",
        "non-null decimal(38,0)",
        "integer column(s) ID were unloaded as DECIMAL",
        "1 file(s) have a schema different from",
        "`BIG` is OPTIONAL INT32 instead of OPTIONAL INT64",
    ] {
        assert!(
            text.contains(expected),
            "`{expected}` missing from:\n{text}"
        );
    }
    assert!(!text.contains("HEADER=FALSE"), "{text}");

    let out = run(stagepush(dir.path())
        .arg("inspect")
        .arg(&stage)
        .arg("--json"));
    assert!(out.status.success(), "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["store"], "local");
    assert_eq!(report["totals"]["files"], 2);
    assert_eq!(report["totals"]["rows"], 4);
    let columns = report["schema"].as_array().unwrap();
    let snowflake: Vec<&str> = columns
        .iter()
        .map(|c| c["snowflake"].as_str().unwrap())
        .collect();
    assert_eq!(
        snowflake,
        [
            "NUMBER(38,0)",
            "NUMBER(6,2)",
            "TIMESTAMP_NTZ",
            "VARCHAR",
            "VARIANT",
            "DATE",
            "FLOAT",
            "BOOLEAN",
            "NUMBER"
        ]
    );
    assert_eq!(report["files"][1]["schema_differs"], true);
    assert_eq!(report["files"][0]["name"]["numbers"][1], "0");
    assert_eq!(report["files"][0]["name"]["compression"], "snappy");
    assert_eq!(report["warnings"].as_array().unwrap().len(), 2);
}

#[test]
fn inspect_warns_about_header_false_names_in_a_real_snowflake_file() {
    let dir = temp_dir();
    let stage = fixture("snowflake-unload/header-false/comments");
    let out = run(stagepush(dir.path())
        .arg("inspect")
        .arg(&stage)
        .arg("--json"));
    assert!(out.status.success(), "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["totals"]["rows"], 11_126);
    assert_eq!(report["schema"][0]["name"], "_COL_0");
    assert_eq!(report["schema"][0]["snowflake"], "VARCHAR");
    assert!(
        report["files"][0]["created_by"]
            .as_str()
            .unwrap()
            .starts_with("parquet-cpp-arrow")
    );
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("_COL_0 … _COL_7"), "{warnings}");
    assert!(warnings.contains("HEADER=FALSE"), "{warnings}");

    // An empty selection: a report saying so, and exit 1.
    let out = run(stagepush(dir.path())
        .arg("inspect")
        .arg(&stage)
        .args(["--include", "*.csv"]));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stdout.contains("no data files found"), "{}", out.stdout);
    assert!(out.stderr.contains("no data files in"), "{}", out.stderr);
}
