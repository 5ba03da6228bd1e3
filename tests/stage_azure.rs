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
    put(&store, &format!("{prefix}/log.yaml"), b"{}".to_vec());

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
    assert_eq!(source.num_rows(), Some(50));
}

/// An Azure stage with an account but no credential: object_store falls back to the
/// managed identity endpoint; when that refuses (here a stand-in answering 403, as the
/// metadata address does off Azure), the error says no Azure credentials were found and
/// where they were looked for.
#[test]
fn azure_without_credentials_says_none_were_found_and_where_it_looked() {
    use std::io::{Read, Write};

    let server = AzureServer::start();
    let dir = temp_dir();
    // The managed identity endpoint: answers every request 403.
    let identity = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let identity_url = format!(
        "http://{}/metadata/identity/oauth2/token",
        identity.local_addr().unwrap()
    );
    std::thread::spawn(move || {
        for stream in identity.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    let mut command = crate::util::command::TestCommand::new(dir.path());
    for name in [
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_SAS_TOKEN",
        "AZURE_STORAGE_SAS_KEY",
        "AZURE_STORAGE_USE_EMULATOR",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_FEDERATED_TOKEN_FILE",
    ] {
        command.env_remove(name);
    }
    command
        .env(
            "AZURE_STORAGE_ACCOUNT_NAME",
            stagepush::storage::AZURITE_ACCOUNT,
        )
        .env("AZURE_MSI_ENDPOINT", &identity_url)
        .arg("inspect")
        .arg(format!("az://{}/inspect/", crate::stage_servers::CONTAINER))
        .args([
            "--stage-endpoint",
            &format!(
                "{}/{}",
                server.endpoint,
                stagepush::storage::AZURITE_ACCOUNT
            ),
            "--allow-http",
        ]);
    let out = command.run_within(std::time::Duration::from_secs(120));
    assert_ne!(out.status.code(), Some(0), "{}", command.dump(&out));
    let error = out
        .stderr
        .lines()
        .find(|l| l.contains("no Azure credentials found"))
        .unwrap_or_else(|| panic!("{}", command.dump(&out)));
    for place in [
        "account_key",
        "sas_token",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "use_emulator",
        "managed identity",
        "403",
    ] {
        assert!(error.contains(place), "{place} not in {error}");
    }
}
