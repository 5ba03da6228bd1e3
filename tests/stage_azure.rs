//! Stages in Azure Blob Storage, against Azurite (see `stage_servers`): what only Azure
//! does. The tests every remote store passes run here too, in `stage_remote`.

use stagepush::source::{Stage, StageConfig};

use crate::stage_servers::{AzureServer, customer_file, put};
use crate::util::temp_dir;

#[test]
fn azure_stage_lists_the_same_files_in_snowflakes_azure_url_form() {
    let server = AzureServer::start();
    let store = server.store();
    let dir = temp_dir();
    let small = customer_file(dir.path(), "small.parquet", 1, 50, usize::MAX);
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
    put(
        &store,
        &format!("{prefix}/big/data_0_0_0.snappy.parquet"),
        bytes.clone(),
    );
    put(&store, &format!("{prefix}/_SUCCESS"), Vec::new());
    put(&store, &format!("{prefix}/log.json"), b"{}".to_vec());

    let stage = Stage::new(&server.config("unload/customers/")).unwrap();
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

    // The extension-less SINGLE=TRUE file reads too.
    let source = stage.open(&files[3]).unwrap();
    assert_eq!(source.num_rows(), 50);
}
