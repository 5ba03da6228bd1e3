//! Unit tests of stage configuration checks, key classification and builds without a
//! network.

use chrono::{DateTime, Utc};

use super::file::{Kind, classify, relative_key};
use super::*;
use crate::source::format::{Compression, FileFormat};

#[test]
fn settings_of_another_store_are_errors() {
    let check = |toml_text: &str| {
        let config: StageConfig = toml::from_str(toml_text).unwrap();
        Stage::new(&config).map(|_| ()).unwrap_err().to_string()
    };
    let error = check("url = \"s3://b/\"\nsas_token = \"sv=1&sig=SECRETSIG\"\n");
    assert!(error.contains("`sas_token` does not apply"), "{error}");
    assert!(!error.contains("SECRETSIG"));
    let error = check("url = \"az://container/\"\nregion = \"eu-west-1\"\n");
    assert!(error.contains("`region` does not apply"), "{error}");
    let error = check("url = \"./stage\"\nendpoint = \"http://x\"\n");
    assert!(error.contains("does not apply to a stage in the local file system"));
    let error = check("url = \"s3://b/\"\naccess_key_id = \"AKID\"\n");
    assert!(error.contains("go together"), "{error}");
    let error = check("url = \"s3://b/\"\nendpoint = \"http://127.0.0.1:1\"\n");
    assert!(error.contains("allow_http"), "{error}");
    let error = check("url = \"s3://b/\"\nendpoint = \"127.0.0.1:1\"\n");
    assert!(error.contains("http:// or https://"), "{error}");
}

#[test]
fn relative_keys_and_classification() {
    assert_eq!(relative_key("a/b/c.parquet", "a"), "b/c.parquet");
    assert_eq!(relative_key("a/b/c.parquet", ""), "a/b/c.parquet");
    assert_eq!(relative_key("ab/c", "a"), "ab/c");
    let file = |key: &str, size| {
        StageFile::new(
            key.into(),
            key.into(),
            key.into(),
            size,
            DateTime::<Utc>::UNIX_EPOCH,
        )
    };
    assert!(matches!(
        classify(&file("p/data_0_0_0.snappy.parquet", 10)),
        Kind::Data
    ));
    assert!(matches!(classify(&file("p/X.PARQUET", 10)), Kind::Data));
    assert!(matches!(classify(&file("p/data", 10)), Kind::MaybeData));
    assert!(matches!(classify(&file("p/data", 0)), Kind::Skip(_)));
    assert!(matches!(classify(&file("p/_SUCCESS", 0)), Kind::Skip(_)));
    // Issue 19: CSV and JSON files are data (`x.csv` was skipped before).
    assert!(matches!(classify(&file("p/x.csv", 10)), Kind::Data));
    assert!(matches!(
        classify(&file("p/data_0_0_0.csv.gz", 10)),
        Kind::Data
    ));
    assert!(matches!(
        classify(&file("p/data_0_0_0.json.zst", 10)),
        Kind::Data
    ));
    assert!(matches!(classify(&file("p/x.txt", 10)), Kind::Skip(_)));
    assert!(matches!(classify(&file("p/x.gz", 10)), Kind::Skip(_)));
    assert_eq!(
        file("p/data_0_0_0.csv.bz2", 10).format,
        Some((FileFormat::Csv, Compression::Bzip2))
    );
    assert_eq!(file("p/data", 10).format, None);
    assert_eq!(
        file("p/notes.txt", 10).format,
        Some((FileFormat::Parquet, Compression::None))
    );
    assert!(matches!(classify(&file("p/.parquet", 10)), Kind::Skip(_)));
}

#[test]
fn gcs_and_azure_stages_build_without_a_network() {
    let stage = Stage::new(&StageConfig {
        url: Some("gs://bucket/unload/".into()),
        skip_signature: Some(true),
        ..StageConfig::default()
    })
    .unwrap();
    assert_eq!(stage.kind(), StoreKind::Gcs);
    assert_eq!(stage.url(), "gs://bucket/unload/");
    let stage = Stage::from_url("azure://acct1.blob.core.windows.net/stage/unload/").unwrap();
    assert_eq!(stage.kind(), StoreKind::Azure);
}
