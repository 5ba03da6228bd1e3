//! Unit tests of stage URL parsing and object key checks.

use super::*;

fn parse(text: &str) -> StageUrl {
    StageUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn parse_err(text: &str) -> String {
    match StageUrl::parse(text) {
        Ok(url) => panic!("{text} parsed as {url:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn s3_urls() {
    let url = parse("s3://my-bucket/unload/customers/");
    assert_eq!(url.kind(), StoreKind::S3);
    assert_eq!(url.bucket(), "my-bucket");
    assert_eq!(url.key(), "unload/customers/");
    assert!(url.is_prefix());
    assert_eq!(url.to_string(), "s3://my-bucket/unload/customers/");
    // Keys are raw: spaces, `=` and `%` stay as written.
    let url = parse("s3a://b/my folder/date=2024-05-01/a%3Db");
    assert_eq!(url.key(), "my folder/date=2024-05-01/a%3Db");
    assert!(!url.is_prefix());
    let root = parse("S3://bucket");
    assert_eq!(root.key(), "");
    assert!(root.is_prefix());
}

#[test]
fn s3_https_urls() {
    let url = parse("https://my.bucket.s3.eu-west-1.amazonaws.com/unload/data%20x/");
    assert_eq!(url.kind(), StoreKind::S3);
    assert_eq!(url.bucket(), "my.bucket");
    assert_eq!(url.region(), Some("eu-west-1"));
    assert_eq!(url.key(), "unload/data x/");
    let url = parse("https://s3.us-east-2.amazonaws.com/bkt/k");
    assert_eq!((url.bucket(), url.key()), ("bkt", "k"));
    assert_eq!(url.region(), Some("us-east-2"));
    let url = parse("https://bkt.s3.amazonaws.com/");
    assert_eq!((url.bucket(), url.region()), ("bkt", None));
    let url = parse("https://s3-eu-west-1.amazonaws.com/bkt/");
    assert_eq!((url.bucket(), url.region()), ("bkt", Some("eu-west-1")));
    // The default port is the same server.
    let url = parse("https://bkt.s3.eu-west-1.amazonaws.com:443/k/");
    assert_eq!((url.bucket(), url.key()), ("bkt", "k/"));
    assert_eq!(url.to_string(), "s3://bkt/k/");
}

#[test]
fn azure_urls() {
    let url = parse("az://stage/unload/");
    assert_eq!(url.kind(), StoreKind::Azure);
    assert_eq!(
        (url.bucket(), url.account(), url.key()),
        ("stage", None, "unload/")
    );

    let url = parse("azure://acct1.blob.core.windows.net/stage/unload/x=1/");
    assert_eq!(url.kind(), StoreKind::Azure);
    assert_eq!(url.account(), Some("acct1"));
    assert_eq!(url.bucket(), "stage");
    assert_eq!(url.key(), "unload/x=1/");
    assert_eq!(url.endpoint(), None);
    assert_eq!(
        url.object_url("unload/x=1/data_0_0_0.snappy.parquet"),
        "azure://acct1.blob.core.windows.net/stage/unload/x=1/data_0_0_0.snappy.parquet"
    );
    // object_store's own `azure://CONTAINER/path` form.
    let url = parse("azure://stage/p");
    assert_eq!((url.bucket(), url.account()), ("stage", None));

    let url = parse("https://acct1.blob.core.windows.net/stage/my%20dir/data");
    assert_eq!(url.account(), Some("acct1"));
    assert_eq!(url.key(), "my dir/data");
    assert_eq!(
        url.to_string(),
        "https://acct1.blob.core.windows.net/stage/my%20dir/data"
    );
    let url = parse("https://acct1.dfs.core.windows.net/stage/");
    assert_eq!((url.bucket(), url.key()), ("stage", ""));

    let url = parse("abfss://stage@acct1.dfs.core.windows.net/unload/");
    assert_eq!(url.account(), Some("acct1"));
    assert_eq!((url.bucket(), url.key()), ("stage", "unload/"));
    let url = parse("abfs://stage/unload/");
    assert_eq!((url.bucket(), url.account()), ("stage", None));

    let url = parse("azure://acct1.blob.core.chinacloudapi.cn/stage/");
    assert_eq!(
        url.endpoint(),
        Some("https://acct1.blob.core.chinacloudapi.cn")
    );
}

#[test]
fn a_sas_token_in_an_https_url_is_kept_but_never_shown() {
    let url = parse("https://acct1.blob.core.windows.net/stage/p/?sv=2022&sig=SECRETSIG");
    assert_eq!(
        url.sas_token().map(Secret::expose_secret),
        Some("sv=2022&sig=SECRETSIG")
    );
    assert_eq!(url.key(), "p/");
    assert!(!format!("{url:?}").contains("SECRETSIG"));
    assert!(!url.to_string().contains("SECRETSIG"));
    // An error about such a URL does not repeat it either.
    let err = parse_err("https://acct1.blob.core.windows.net/?sig=SECRETSIG");
    assert!(!err.contains("SECRETSIG"), "{err}");
}

#[test]
fn gcs_urls() {
    let url = parse("gs://my_bucket/unload/");
    assert_eq!(url.kind(), StoreKind::Gcs);
    assert_eq!((url.bucket(), url.key()), ("my_bucket", "unload/"));
    let url = parse("https://storage.googleapis.com/bkt/a%20b/");
    assert_eq!(url.kind(), StoreKind::Gcs);
    assert_eq!((url.bucket(), url.key()), ("bkt", "a b/"));
}

#[test]
fn local_paths_and_file_urls() {
    let url = parse("./stage");
    assert_eq!(url.kind(), StoreKind::Local);
    assert_eq!(url.key(), "./stage");
    assert_eq!(parse("/tmp/my stage/").key(), "/tmp/my stage/");
    assert_eq!(parse("file:///tmp/my%20stage/").key(), "/tmp/my stage/");
    assert_eq!(parse("file://localhost/tmp/x").key(), "/tmp/x");
    // A name with a colon that is not a known scheme is a path.
    assert_eq!(parse("data:2024").kind(), StoreKind::Local);
}

#[test]
fn malformed_urls_are_errors_that_say_why() {
    let cases = [
        ("", "empty"),
        ("s3://", "no bucket"),
        ("s3:///key", "no bucket"),
        ("s3:/bucket/key", "expected `s3://`"),
        ("s3:bucket", "expected `s3://`"),
        ("s3://bucket//x", "empty path segment"),
        ("s3://bucket/a/../b", "`..`"),
        ("s3://bu cket/x", "not a valid S3 bucket"),
        ("s3://key:secret@bucket/x", "credentials"),
        ("s3://bucket/x?versionId=1", "query"),
        ("gs://", "no bucket"),
        ("az://", "no bucket or container"),
        ("az://Stage/x", "not a valid Azure container"),
        ("azure://acct1.blob.core.windows.net/", "no container"),
        (
            "azure://acct1.example.com/stage/",
            "not an Azure storage account host",
        ),
        (
            "azure://Bad_Account.blob.core.windows.net/stage/",
            "storage account name",
        ),
        (
            "abfss://stage@acct1.example.com/x",
            "not an Azure storage account host",
        ),
        ("https://acct1.blob.core.windows.net", "no container"),
        ("https://example.com/bucket/x", "not a known storage host"),
        (
            "https://bkt.s3.amazonaws.com/x?sig=1",
            "only accepted on Azure",
        ),
        ("http://127.0.0.1:9000/bucket/", "plain http://"),
        ("ftp://host/x", "unsupported scheme"),
        ("file://otherhost/x", "absolute path"),
        ("s3://bucket/a\u{1}b", "control characters"),
    ];
    for (text, expected) in cases {
        let err = parse_err(text);
        assert!(
            err.contains(expected),
            "{text:?}: `{err}` lacks `{expected}`"
        );
    }
}

#[test]
fn unusable_object_keys_say_why() {
    for key in ["unload/data_0_0_0.snappy.parquet", "a b/c=d/e%20f", "x"] {
        assert_eq!(check_object_key(key), Ok(()), "{key}");
    }
    for (key, expected) in [
        ("", "empty"),
        ("unload/sub//x.parquet", "empty path segment"),
        ("unload/../x.parquet", "`..` segment"),
        ("unload/./x.parquet", "`.` segment"),
        ("..", "`..` segment"),
        ("unload/a\0b.parquet", "U+0000"),
        ("unload/a\u{85}b", "U+0085"),
        ("/unload/x.parquet", "starts with `/`"),
        ("unload/", "a folder"),
    ] {
        let reason = check_object_key(key).expect_err(key);
        let reason = reason.to_string();
        assert!(reason.contains(expected), "{key:?}: {reason}");
    }
}
