//! Stages in Azure Blob Storage, against Azurite (see `stage_servers`).

use stagepush::source::{ParquetSource, ReadOptions, ReadTuning, Stage, StageConfig, StageError};

use crate::stage_servers::{AzureServer, customer_file, delete, put, put_file};
use crate::util::{plugin, run, stagepush, temp_dir};

#[test]
fn azure_stage_lists_and_reads_through_azurite() {
    let server = AzureServer::start();
    let store = server.store();
    let dir = temp_dir();
    let small = customer_file(dir.path(), "small.parquet", 1, 50, usize::MAX);
    let big = customer_file(dir.path(), "big.parquet", 1, 120_000, 20_000);
    let bytes = std::fs::read(&small).unwrap();
    let prefix = "unload/customers";
    put(
        &store,
        &format!("{prefix}/country=NL/data_0_0_0.snappy.parquet"),
        bytes.clone(),
    );
    put(
        &store,
        &format!("{prefix}/country=_NULL_/data_0_1_0.snappy.parquet"),
        bytes.clone(),
    );
    put(&store, &format!("{prefix}/with space/data"), bytes.clone());
    put_file(
        &store,
        &format!("{prefix}/big/data_0_0_0.snappy.parquet"),
        &big,
    );
    put(&store, &format!("{prefix}/_SUCCESS"), Vec::new());
    put(&store, &format!("{prefix}/log.json"), b"{}".to_vec());

    let tuning = ReadTuning {
        window_bytes: 256 * 1024,
        buffer_bytes: 2 * 1024 * 1024,
    };
    let stage = Stage::new(&server.config("unload/customers/"))
        .unwrap()
        .with_read_tuning(tuning);
    let files = stage.list().unwrap();
    let relative: Vec<&str> = files.iter().map(|f| f.relative.as_str()).collect();
    assert_eq!(
        relative,
        [
            "big/data_0_0_0.snappy.parquet",
            "country=NL/data_0_0_0.snappy.parquet",
            "country=_NULL_/data_0_1_0.snappy.parquet",
            "with space/data",
        ]
    );
    assert_eq!(
        files[1].partitions,
        [("country".to_owned(), Some("NL".to_owned()))]
    );
    assert_eq!(files[2].partitions, [("country".to_owned(), None)]);
    assert_eq!(files[3].url, "az://stage/unload/customers/with space/data");
    assert!(files[3].name.is_single());

    // Snowflake's form of the same stage (the account host is redirected to Azurite).
    let snowflake_form = Stage::new(&StageConfig {
        url: Some("azure://devstoreaccount1.blob.core.windows.net/stage/unload/customers/".into()),
        ..server.config("")
    })
    .unwrap();
    let same = snowflake_form.list().unwrap();
    assert_eq!(
        same.iter().map(|f| &f.key).collect::<Vec<_>>(),
        files.iter().map(|f| &f.key).collect::<Vec<_>>()
    );
    assert_eq!(
        same[0].url,
        "azure://devstoreaccount1.blob.core.windows.net/stage/unload/customers/big/data_0_0_0.snappy.parquet"
    );

    // A multi-row-group file in bounded ranged reads (each with the listed size: Azure
    // refuses suffix ranges), the same rows as locally.
    let source = stage.open(&files[0]).unwrap();
    let local = ParquetSource::open(&big).unwrap();
    let options = ReadOptions::default();
    let mut rows = 0;
    for (remote, local) in source
        .batches(&options)
        .unwrap()
        .zip(local.batches(&options).unwrap())
    {
        let (remote, local) = (remote.unwrap(), local.unwrap());
        assert_eq!(remote.batch, local.batch);
        rows += remote.batch.num_rows();
    }
    assert_eq!(rows, 120_000);
    let stats = source.read_stats().unwrap();
    assert!(stats.requests > 5, "{stats:?}");
    assert!(stats.max_request_bytes <= tuning.window_bytes, "{stats:?}");
    assert!(
        stats.peak_buffered_bytes <= tuning.buffer_bytes,
        "{stats:?}"
    );

    // The extension-less SINGLE=TRUE file reads too.
    let source = stage.open(&files[3]).unwrap();
    assert_eq!(source.num_rows(), 50);

    // Overwritten after listing, then deleted: typed errors naming the object.
    put(&store, &files[1].key, std::fs::read(&big).unwrap());
    let error = stage.open(&files[1]).unwrap_err();
    assert!(
        matches!(&error, StageError::Changed { object, .. } if *object == files[1].url),
        "{error:?}"
    );
    delete(&store, &files[2].key);
    let error = stage.open(&files[2]).unwrap_err();
    assert!(
        matches!(&error, StageError::Vanished { object } if *object == files[2].url),
        "{error:?}"
    );
}

#[test]
fn plugin_test_over_azure_prints_what_it_prints_for_the_local_folder() {
    let server = AzureServer::start();
    let store = server.store();
    let dir = temp_dir();
    let local = dir.path().join("stage");
    for (index, first_id) in [1u64, 1501].into_iter().enumerate() {
        let name = format!("data_0_{index}_0.snappy.parquet");
        let path = customer_file(&local, &name, first_id, 1500, 500);
        put_file(&store, &format!("export/{name}"), &path);
    }
    let plugin = plugin("customer-rust");
    let expected = run(stagepush(dir.path())
        .args(["plugin", "test"])
        .arg(&plugin)
        .arg(&local));
    assert!(expected.status.success(), "{}", expected.stderr);
    assert_eq!(expected.stdout_lines().len(), 3000);

    let mut command = stagepush(dir.path());
    let flags = server.cli(&mut command);
    let out = run(command
        .args(["plugin", "test"])
        .arg(&plugin)
        .arg("az://stage/export/")
        .args(&flags));
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout, expected.stdout);
    assert!(
        out.stderr.contains("summary: 3000 rows read, 3000 records"),
        "{}",
        out.stderr
    );

    // A SAS token Azurite refuses: the error names the stage, never the token.
    let sas = "sv=2021-08-06&ss=b&srt=sco&sp=rl&se=2099-01-01T00:00:00Z&sig=NotTheRealSignature0123456789";
    let out = run(stagepush(dir.path())
        .env("AZURE_STORAGE_SAS_TOKEN", sas)
        .env("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1")
        .env_remove("AZURE_STORAGE_ACCOUNT_KEY")
        .env_remove("AZURE_STORAGE_USE_EMULATOR")
        .args(["inspect", "az://stage/export/", "--endpoint"])
        .arg(format!("{}/devstoreaccount1", server.endpoint))
        .args(["--allow-http", "-vvv"]));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("az://stage/export/: cannot list the stage"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("NotTheRealSignature"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("NotTheRealSignature"),
        "{}",
        out.stdout
    );
}
