//! Stages in remote stores, the same tests against each storage server (see
//! `stage_servers`): SeaweedFS for S3, Azurite for Azure Blob Storage. Each test body takes a
//! [`StorageServer`] and has one `#[test]` per server. What only one store does is in
//! `stage_s3` and `stage_azure`.

use stagepush::source::{
    ParquetSource, ReadOptions, ReadTuning, Selection, SourceError, Stage, StageError, check_schema,
};

use crate::stage_servers::{StorageServer, customer_file, delete, put, put_file};
use crate::util::command::TestCommand;
use crate::util::{plugin, temp_dir};

const QUERY_ID: &str = "019c059d-0502-d90c-0000-438300ad6596";

/// One `#[test]` per storage server for each test body.
macro_rules! for_each_server {
    ($($body:ident),* $(,)?) => {
        mod s3 {
            $(
                #[test]
                fn $body() {
                    super::$body(crate::stage_servers::StorageServer::S3);
                }
            )*
        }
        mod azure {
            $(
                #[test]
                fn $body() {
                    super::$body(crate::stage_servers::StorageServer::Azure);
                }
            )*
        }
    };
}

for_each_server!(
    lists_data_files_with_partitions_in_key_order,
    reads_a_large_file_in_bounded_ranged_reads,
    truncated_vanished_and_changed_objects_are_typed_errors,
    plugin_test_prints_what_it_prints_for_the_local_folder,
    inspect_reads_footers_only_and_errors_keep_secrets_out,
);

fn lists_data_files_with_partitions_in_key_order(kind: StorageServer) {
    let server = kind.start();
    let store = server.store();
    let dir = temp_dir();
    let bytes = std::fs::read(customer_file(dir.path(), "c.parquet", 1, 10, usize::MAX)).unwrap();
    let prefix = "unload/customers";
    for key in [
        format!("{prefix}/date=2024-05-01/data_{QUERY_ID}_0_0_0.snappy.parquet"),
        format!("{prefix}/date=_NULL_/data_{QUERY_ID}_0_1_0.snappy.parquet"),
        format!("{prefix}/my folder/data_0_0_0.snappy.parquet"),
        format!("{prefix}/single/data"),
        "unload/other/data_0_0_0.snappy.parquet".to_owned(),
        "unload/customers2/data_0_0_0.snappy.parquet".to_owned(),
    ] {
        put(&store, &key, bytes.clone());
    }
    put(&store, &format!("{prefix}/_SUCCESS"), Vec::new());
    put(
        &store,
        &format!("{prefix}/empty.snappy.parquet"),
        Vec::new(),
    );
    put(&store, &format!("{prefix}/notes.txt"), b"not data".to_vec());
    put(&store, &format!("{prefix}/log.yaml"), b"{}".to_vec());
    put(
        &store,
        &format!("{prefix}/README"),
        b"no extension, no magic".to_vec(),
    );

    let stage = Stage::new(&server.config("unload/customers/")).unwrap();
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
    let spaced = &files[2];
    assert_eq!(
        spaced.key,
        "unload/customers/my folder/data_0_0_0.snappy.parquet"
    );
    assert_eq!(
        spaced.url,
        server.url("unload/customers/my folder/data_0_0_0.snappy.parquet")
    );
    assert_eq!(spaced.size, bytes.len() as u64);
    assert!(spaced.e_tag.is_some());
    assert_eq!(
        files[0].partitions,
        [("date".to_owned(), Some("2024-05-01".to_owned()))]
    );
    assert_eq!(files[1].partitions, [("date".to_owned(), None)]);
    assert_eq!(files[0].name.query_id.as_deref(), Some(QUERY_ID));
    assert_eq!(
        files[1].name.numbers,
        Some(["0".to_owned(), "1".to_owned(), "0".to_owned()])
    );
    assert!(files[3].name.is_single());
    assert_eq!(files[3].url, server.url("unload/customers/single/data"));

    // Without the trailing slash the URL still names the folder.
    let same = Stage::new(&server.config("unload/customers")).unwrap();
    assert_eq!(same.list().unwrap(), files);

    // A URL naming one object lists just it.
    let one = Stage::new(&server.config("unload/customers/my folder/data_0_0_0.snappy.parquet"))
        .unwrap()
        .list()
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].relative, "data_0_0_0.snappy.parquet");
    assert_eq!(one[0].key, spaced.key);

    // Selections.
    let select = |selection: Selection| -> Vec<String> {
        stage
            .select(&selection)
            .unwrap()
            .into_iter()
            .map(|f| f.relative)
            .collect()
    };
    assert_eq!(
        select(Selection {
            include: vec!["date=*/**".into()],
            ..Selection::default()
        })
        .len(),
        2
    );
    assert_eq!(
        select(Selection {
            exclude: vec!["data".into(), "date=_NULL_/*".into()],
            ..Selection::default()
        }),
        [
            format!("date=2024-05-01/data_{QUERY_ID}_0_0_0.snappy.parquet"),
            "my folder/data_0_0_0.snappy.parquet".to_owned()
        ]
    );
    assert!(
        select(Selection {
            modified_since: Some(Selection::parse_time("2999-01-01T00:00:00Z").unwrap()),
            ..Selection::default()
        })
        .is_empty()
    );
    assert_eq!(
        select(Selection {
            keys: Some(vec![
                server.url("unload/customers/single/data"),
                "my folder/data_0_0_0.snappy.parquet".into(),
            ]),
            ..Selection::default()
        }),
        ["my folder/data_0_0_0.snappy.parquet", "single/data"]
    );
    let missing = stage
        .select(&Selection {
            keys: Some(vec!["date=2024-05-02/data_0_0_0.snappy.parquet".into()]),
            ..Selection::default()
        })
        .unwrap_err();
    assert!(
        matches!(missing, StageError::NotFound { .. }),
        "{missing:?}"
    );
    assert_eq!(
        missing.to_string(),
        format!(
            "{}: no such object",
            server.url("unload/customers/date=2024-05-02/data_0_0_0.snappy.parquet")
        )
    );
    let outside = stage
        .select(&Selection {
            keys: Some(vec![server.url("unload/other/data_0_0_0.snappy.parquet")]),
            ..Selection::default()
        })
        .unwrap_err();
    assert!(
        outside
            .to_string()
            .contains("is not an object under the stage")
    );

    // Every listed file reads back (the extension-less SINGLE=TRUE one too).
    for file in &files {
        let source = stage.open(file).unwrap();
        let rows: usize = source
            .batches(&ReadOptions::default())
            .unwrap()
            .map(|batch| batch.unwrap().batch.num_rows())
            .sum();
        assert_eq!(rows, 10, "{}", file.url);
    }
}

fn reads_a_large_file_in_bounded_ranged_reads(kind: StorageServer) {
    let server = kind.start();
    let store = server.store();
    let dir = temp_dir();
    // 10 row groups of 40,000 rows.
    let path = customer_file(dir.path(), "big.snappy.parquet", 1, 400_000, 40_000);
    let size = std::fs::metadata(&path).unwrap().len();
    put_file(&store, "big/data_0_0_0.snappy.parquet", &path);

    let tuning = ReadTuning {
        window_bytes: 512 * 1024,
        buffer_bytes: 4 * 1024 * 1024,
    };
    assert!(
        size > 2 * tuning.buffer_bytes,
        "the file ({size} bytes) is big enough"
    );
    let stage = Stage::new(&server.config("big/"))
        .unwrap()
        .with_read_tuning(tuning);
    let files = stage.list().unwrap();
    assert_eq!(files.len(), 1);
    // Bounded ranged reads (each with the listed size: Azure refuses suffix ranges), the
    // same rows as locally.
    let started = std::time::Instant::now();
    let source = stage.open(&files[0]).unwrap();
    assert_eq!(source.parquet().unwrap().row_groups().len(), 10);
    let local = ParquetSource::open(&path).unwrap();
    let options = ReadOptions {
        batch_rows: 8192,
        ..ReadOptions::default()
    };
    let mut rows = 0;
    for (remote, local) in source
        .batches(&options)
        .unwrap()
        .zip(local.batches(&options).unwrap())
    {
        let (remote, local) = (remote.unwrap(), local.unwrap());
        assert_eq!(remote.first_row, local.first_row);
        assert_eq!(remote.batch, local.batch);
        rows += remote.batch.num_rows();
    }
    let elapsed = started.elapsed();
    assert_eq!(rows, 400_000);
    let stats = source.read_stats().unwrap();
    eprintln!(
        "read {size} bytes, {rows} rows in {elapsed:?} ({:.1} MB/s, {:.0} rows/s) with \
         {stats:?}",
        size as f64 / 1e6 / elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64()
    );
    assert!(stats.requests > 5, "{stats:?}");
    assert!(stats.max_request_bytes <= tuning.window_bytes, "{stats:?}");
    assert!(
        stats.peak_buffered_bytes <= tuning.buffer_bytes,
        "{stats:?}"
    );
    assert!(stats.peak_buffered_bytes < size / 2, "{stats:?}");
    // Every byte about once: windows do not overlap.
    assert!(stats.bytes_fetched <= size + size / 10, "{stats:?}");

    // With the default tuning (16 MiB windows) a file this size is one request.
    let default = Stage::new(&server.config("big/")).unwrap();
    let started = std::time::Instant::now();
    let source = default.open(&files[0]).unwrap();
    let rows: usize = source
        .batches(&options)
        .unwrap()
        .map(|batch| batch.unwrap().batch.num_rows())
        .sum();
    let elapsed = started.elapsed();
    assert_eq!(rows, 400_000);
    let stats = source.read_stats().unwrap();
    eprintln!(
        "default tuning: {:.1} MB/s, {:.0} rows/s, {stats:?}",
        size as f64 / 1e6 / elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(stats.requests, 1, "{stats:?}");
}

fn truncated_vanished_and_changed_objects_are_typed_errors(kind: StorageServer) {
    let server = kind.start();
    let store = server.store();
    let dir = temp_dir();
    let good = std::fs::read(customer_file(
        dir.path(),
        "good.parquet",
        1,
        1000,
        usize::MAX,
    ))
    .unwrap();
    let big = customer_file(dir.path(), "big.parquet", 1, 60_000, 5_000);
    let other = customer_file(dir.path(), "other.parquet", 5000, 900, usize::MAX);
    put(
        &store,
        "bad/data_0_0_0.snappy.parquet",
        good[..good.len() * 3 / 5].to_vec(),
    );
    put(&store, "bad/data_0_1_0.snappy.parquet", good.clone());
    put_file(&store, "bad/data_0_2_0.snappy.parquet", &big);
    put(&store, "bad/data_0_3_0.snappy.parquet", good.clone());
    let tuning = ReadTuning {
        window_bytes: 64 * 1024,
        buffer_bytes: 256 * 1024,
    };
    let stage = Stage::new(&server.config("bad/"))
        .unwrap()
        .with_read_tuning(tuning);
    let files = stage.list().unwrap();
    assert_eq!(files.len(), 4);

    // Truncated: the Parquet reader says so, naming the object.
    let error = stage.open(&files[0]).unwrap_err();
    assert!(
        matches!(&error, StageError::Source(SourceError::Corrupt { file, .. }) if *file == files[0].url),
        "{error:?}"
    );
    assert!(error.is_bad_file());
    assert_eq!(error.object(), Some(files[0].url.as_str()));
    assert!(error.to_string().contains("truncated"), "{error}");

    // Deleted after listing: at open.
    delete(&store, &files[1].key);
    let error = stage.open(&files[1]).unwrap_err();
    assert!(
        matches!(&error, StageError::Vanished { object } if *object == files[1].url),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "{}: the object was listed but no longer exists (deleted or renamed since)",
            server.url("bad/data_0_1_0.snappy.parquet")
        )
    );

    // Deleted while being read.
    let source = stage.open(&files[2]).unwrap();
    let mut batches = source.batches(&ReadOptions::default()).unwrap();
    assert!(batches.next().unwrap().is_ok());
    delete(&store, &files[2].key);
    let error = batches
        .find_map(|batch| batch.err())
        .expect("an error after the object is gone");
    assert!(
        matches!(&error, StageError::Vanished { object } if *object == files[2].url),
        "{error:?}"
    );
    assert!(error.is_bad_file());

    // Overwritten after listing: its ETag no longer matches.
    put_file(&store, &files[3].key, &other);
    let error = stage.open(&files[3]).unwrap_err();
    assert!(
        matches!(&error, StageError::Changed { object, .. } if *object == files[3].url),
        "{error:?}"
    );

    // A schema different from the first file's.
    put_file(&store, "bad/x/other.parquet", &other);
    let first = stage.file("x/other.parquet").unwrap();
    let first_schema = stage.open(&first).unwrap().contract_schema().unwrap();
    let mut changed = first_schema.clone();
    changed[0].name = "ID".into();
    let error = check_schema(
        &changed,
        &server.url("bad/first"),
        &first.url,
        &first_schema,
    )
    .unwrap_err();
    assert!(matches!(error, StageError::SchemaMismatch { .. }));
    assert_eq!(
        error.to_string(),
        format!(
            "{}: its schema differs from {}'s: column 0 is `CUSTOMER_ID` instead of `ID`",
            server.url("bad/x/other.parquet"),
            server.url("bad/first")
        )
    );
}

fn plugin_test_prints_what_it_prints_for_the_local_folder(kind: StorageServer) {
    let server = kind.start();
    let store = server.store();
    let dir = temp_dir();
    let local = dir.path().join("stage");
    for (index, first_id) in [1u64, 2001, 4001].into_iter().enumerate() {
        let name = format!("data_0_{index}_0.snappy.parquet");
        let path = customer_file(&local, &name, first_id, 2000, 700);
        put_file(&store, &format!("export/customers/{name}"), &path);
    }
    let plugin = plugin("customer-rust");
    let mut command = TestCommand::new(dir.path());
    command.args(["plugin", "test"]).arg(&plugin).arg(&local);
    let expected = command.assert_exit(0);
    assert_eq!(expected.stdout_lines().len(), 6000);

    let mut command = TestCommand::new(dir.path());
    let flags = server.cli(command.command());
    command
        .args(["plugin", "test"])
        .arg(&plugin)
        .arg(server.url("export/customers/"))
        .args(&flags);
    let out = command.assert_exit(0);
    assert_eq!(out.stdout, expected.stdout);
    assert!(
        out.stderr.contains("summary: 6000 rows read, 6000 records"),
        "{}",
        command.dump(&out)
    );

    // A selection narrows the stage down.
    let mut command = TestCommand::new(dir.path());
    let flags = server.cli(command.command());
    command
        .args(["plugin", "test"])
        .arg(&plugin)
        .arg(server.url("export/customers/"))
        .args(["--include", "data_0_1_0.*"])
        .args(&flags);
    let out = command.assert_exit(0);
    assert_eq!(out.stdout_lines().len(), 2000);
    assert_eq!(out.stdout_lines()[..], expected.stdout_lines()[2000..4000]);
}

fn inspect_reads_footers_only_and_errors_keep_secrets_out(kind: StorageServer) {
    let server = kind.start();
    let store = server.store();
    let dir = temp_dir();
    let path = customer_file(dir.path(), "c.parquet", 1, 100_000, 25_000);
    let size = std::fs::metadata(&path).unwrap().len();
    put_file(
        &store,
        "inspect/date=2024-05-01/data_0_0_0.snappy.parquet",
        &path,
    );
    put_file(
        &store,
        "inspect/date=2024-05-02/data_0_0_0.snappy.parquet",
        &path,
    );

    // The footer alone: one ranged read of the tail, one of the magic.
    let stage = Stage::new(&server.config("inspect/")).unwrap();
    let files = stage.list().unwrap();
    let footer = stage.open_footer(&files[0]).unwrap();
    assert_eq!(footer.num_rows(), Some(100_000));
    let stats = footer.read_stats().unwrap();
    assert!(
        stats.bytes_fetched <= 64 * 1024 + 4,
        "{stats:?} for {size} bytes"
    );

    let mut command = TestCommand::new(dir.path());
    let flags = server.cli(command.command());
    command
        .arg("inspect")
        .arg(server.url("inspect/"))
        .arg("--json")
        .args(&flags);
    let out = command.assert_exit(0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["store"], server.store_name());
    assert_eq!(report["totals"]["rows"], 200_000);
    assert_eq!(report["totals"]["row_groups"], 8);
    assert_eq!(report["files"][1]["partitions"][0]["value"], "2024-05-02");
    assert_eq!(report["schema"][0]["snowflake"], "NUMBER(38,0)");
    assert_eq!(report["schema"][5]["snowflake"], "TIMESTAMP_NTZ");

    // A wrong secret (S3 secret key, Azure SAS token): the error names the stage, never
    // the secret.
    let (secret, telltale) = server.wrong_secret();
    let config = server.config_with_secret("inspect/", secret);
    assert!(!format!("{config:?}").contains(telltale));
    let error = Stage::new(&config).unwrap().list().unwrap_err();
    assert!(matches!(error, StageError::List { .. }), "{error:?}");
    let message = error.to_string();
    let cannot_list = format!("{}: cannot list the stage", server.url("inspect/"));
    assert!(message.starts_with(&cannot_list), "{message}");
    assert!(!message.contains(telltale), "{message}");
    assert!(!format!("{error:?}").contains(telltale));

    let mut command = TestCommand::new(dir.path());
    let flags = server.cli_with_secret(command.command(), secret);
    command
        .arg("inspect")
        .arg(server.url("inspect/"))
        .args(&flags)
        .arg("-vvv");
    let out = command.assert_exit(1);
    assert!(out.stderr.contains(&cannot_list), "{}", command.dump(&out));
    assert!(!out.stderr.contains(telltale), "{}", out.stderr);
    assert!(!out.stdout.contains(telltale), "{}", out.stdout);
}
