//! Stage URLs: which object store a stage lives in, its bucket (or container) and the key
//! or key prefix of its files.
//!
//! Accepted forms (see the README's *Stages in object storage*):
//!
//! | form | store |
//! |---|---|
//! | `s3://BUCKET/prefix/` (also `s3a://`) | S3 |
//! | `https://BUCKET.s3.REGION.amazonaws.com/prefix/`, `https://s3.REGION.amazonaws.com/BUCKET/prefix/` | S3 |
//! | `az://CONTAINER/prefix/`, `azure://CONTAINER/prefix/` (account from the config or environment) | Azure |
//! | `azure://ACCOUNT.blob.core.windows.net/CONTAINER/prefix/` (Snowflake's form) | Azure |
//! | `https://ACCOUNT.blob.core.windows.net/CONTAINER/prefix/[?SAS]` (also `.dfs.`) | Azure |
//! | `abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/prefix/` (also `abfs://`, `abfss://CONTAINER/prefix/`) | Azure |
//! | `gs://BUCKET/prefix/`, `https://storage.googleapis.com/BUCKET/prefix/` | GCS |
//! | `file:///abs/path`, `/abs/path`, `relative/path` | local file system |
//!
//! In the `s3://`, `gs://`, `az://`, `azure://` and `abfs[s]://` forms the key is taken as
//! written (as the AWS CLI, `gsutil` and Snowflake do): `s3://b/my folder/date=2024-05-01/`
//! names the keys under `my folder/date=2024-05-01/`. `https://` and `file://` URLs are
//! real URLs: their paths are percent-decoded (`%20` is a space). A key that ends in `/`
//! (or an empty key) is a prefix; any other key is an object if one exists by that name,
//! and otherwise a prefix.
//!
//! An `https://` host may carry the default port `:443` (it is dropped); no other port.
//!
//! A `?` query is only accepted on an Azure `https://` URL, where it is a SAS token; it is
//! never shown in errors, logs or `Debug` output.

use std::fmt;
use std::path::PathBuf;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use super::StorageError;
use super::redact::redact_url;
use super::secret::Secret;

/// The kind of store a stage lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Amazon S3 or an S3-compatible server.
    S3,
    /// Azure Blob Storage (including ADLS Gen2 accounts, through the blob API).
    Azure,
    /// Google Cloud Storage.
    Gcs,
    /// The local file system.
    Local,
}

impl StoreKind {
    /// A human name for messages.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::S3 => "S3",
            StoreKind::Azure => "Azure Blob Storage",
            StoreKind::Gcs => "Google Cloud Storage",
            StoreKind::Local => "the local file system",
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The schemes that are URLs here (anything else with `://` is refused, anything without
/// is a local path).
const SCHEMES: [&str; 10] = [
    "s3", "s3a", "gs", "az", "azure", "abfs", "abfss", "https", "http", "file",
];

/// Characters percent-encoded when a key is shown inside an `https://` URL.
const URL_PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// A parsed stage URL. Holds no credentials except an `https://` URL's SAS token, which
/// `Debug` and `Display` leave out.
#[derive(Clone, PartialEq, Eq)]
pub struct StageUrl {
    kind: StoreKind,
    /// S3/GCS bucket or Azure container; empty for a local stage.
    bucket: String,
    /// The Azure storage account the URL names.
    account: Option<String>,
    /// The account's blob endpoint when the URL names a host outside Azure's public cloud
    /// (`https://ACCOUNT.blob.core.chinacloudapi.cn`).
    endpoint: Option<String>,
    /// The S3 region an `https://…amazonaws.com` URL names.
    region: Option<String>,
    /// The key or key prefix, without a leading `/`. For a local stage, the path as given.
    key: String,
    /// The SAS token of an Azure `https://` URL.
    sas: Option<Secret>,
    /// How objects of this stage are shown: `base + key`.
    base: String,
    /// `base` is an `https://` URL: keys are percent-encoded when shown.
    encode_keys: bool,
}

impl fmt::Debug for StageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StageUrl")
            .field("kind", &self.kind)
            .field("bucket", &self.bucket)
            .field("account", &self.account)
            .field("key", &self.key)
            .field("sas", &self.sas.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl fmt::Display for StageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.object_url(&self.key))
    }
}

impl StageUrl {
    /// Parses a stage URL or local path. Errors say what is wrong without repeating a
    /// query string or credentials.
    pub fn parse(text: &str) -> Result<Self, StorageError> {
        let error = |reason: &str| StorageError::Url {
            url: redact_url(text),
            reason: reason.to_owned(),
        };
        if text.trim().is_empty() {
            return Err(error("the stage URL is empty"));
        }
        if text.chars().any(|c| c.is_control()) {
            return Err(error("the URL contains control characters"));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            if let Some((scheme, _)) = text.split_once(':') {
                let scheme = scheme.to_ascii_lowercase();
                if SCHEMES.contains(&scheme.as_str()) {
                    return Err(error(&format!(
                        "expected `{scheme}://` at the start of the URL"
                    )));
                }
            }
            return Ok(Self::local(PathBuf::from(text)));
        };
        let scheme = scheme.to_ascii_lowercase();
        match scheme.as_str() {
            "s3" | "s3a" => {
                let (bucket, key) = raw_bucket_and_key(rest).map_err(|r| error(&r))?;
                check_bucket(bucket, "S3 bucket").map_err(|r| error(&r))?;
                Ok(Self::remote(
                    StoreKind::S3,
                    bucket,
                    key,
                    format!("s3://{bucket}/"),
                ))
            }
            "gs" => {
                let (bucket, key) = raw_bucket_and_key(rest).map_err(|r| error(&r))?;
                check_bucket(bucket, "GCS bucket").map_err(|r| error(&r))?;
                Ok(Self::remote(
                    StoreKind::Gcs,
                    bucket,
                    key,
                    format!("gs://{bucket}/"),
                ))
            }
            "az" | "azure" => {
                let (first, key) = raw_bucket_and_key(rest).map_err(|r| error(&r))?;
                if first.contains('.') {
                    // Snowflake's `azure://ACCOUNT.blob.core.windows.net/CONTAINER/path`.
                    let host = AzureHost::parse(first).map_err(|r| error(&r))?;
                    let (container, key) = split_first_segment(key);
                    if container.is_empty() {
                        return Err(error("the URL names no container after the account host"));
                    }
                    check_container(container).map_err(|r| error(&r))?;
                    let base = format!("{scheme}://{first}/{container}/");
                    Ok(Self::remote(StoreKind::Azure, container, key, base).with_azure_host(host))
                } else {
                    check_container(first).map_err(|r| error(&r))?;
                    let base = format!("{scheme}://{first}/");
                    Ok(Self::remote(StoreKind::Azure, first, key, base))
                }
            }
            "abfs" | "abfss" => {
                let (authority, key) = raw_bucket_and_key(rest).map_err(|r| error(&r))?;
                match authority.split_once('@') {
                    Some((container, host)) => {
                        let host = AzureHost::parse(host).map_err(|r| error(&r))?;
                        check_container(container).map_err(|r| error(&r))?;
                        let base = format!("{scheme}://{authority}/");
                        Ok(Self::remote(StoreKind::Azure, container, key, base)
                            .with_azure_host(host))
                    }
                    None => {
                        check_container(authority).map_err(|r| error(&r))?;
                        let base = format!("{scheme}://{authority}/");
                        Ok(Self::remote(StoreKind::Azure, authority, key, base))
                    }
                }
            }
            "https" => Self::parse_https(rest).map_err(|r| error(&r)),
            "http" => Err(error(
                "plain http:// URLs are not stage URLs: use s3://BUCKET/… or az://CONTAINER/… \
                 with `endpoint` and `allow_http` in the stage config",
            )),
            "file" => {
                let rest = rest.strip_prefix("localhost").unwrap_or(rest);
                let path = rest.split(['?', '#']).next().unwrap_or(rest);
                if !path.starts_with('/') {
                    return Err(error(
                        "a file:// URL needs an absolute path (file:///path or file://localhost/path)",
                    ));
                }
                let path = percent_decode_str(path)
                    .decode_utf8()
                    .map_err(|_| error("the path is not UTF-8 after percent-decoding"))?;
                Ok(Self::local(PathBuf::from(path.as_ref())))
            }
            other => Err(error(&format!(
                "unsupported scheme `{other}://` (supported: s3://, az://, azure://, abfss://, \
                 https://, gs://, file:// and local paths)"
            ))),
        }
    }

    fn local(path: PathBuf) -> Self {
        Self {
            kind: StoreKind::Local,
            bucket: String::new(),
            account: None,
            endpoint: None,
            region: None,
            key: path.to_string_lossy().into_owned(),
            sas: None,
            base: String::new(),
            encode_keys: false,
        }
    }

    fn remote(kind: StoreKind, bucket: &str, key: &str, base: String) -> Self {
        Self {
            kind,
            bucket: bucket.to_owned(),
            account: None,
            endpoint: None,
            region: None,
            key: key.to_owned(),
            sas: None,
            base,
            encode_keys: false,
        }
    }

    fn with_azure_host(mut self, host: AzureHost) -> Self {
        self.account = Some(host.account);
        self.endpoint = host.endpoint;
        self
    }

    /// `https://` URLs: Azure account hosts, S3 and GCS hosts.
    fn parse_https(rest: &str) -> Result<Self, String> {
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        if rest.contains('#') {
            return Err("a URL fragment (`#…`) is not part of a stage URL".into());
        }
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut host = host.to_ascii_lowercase();
        // The default port names the same server.
        if let Some(bare) = host.strip_suffix(":443") {
            host = bare.to_owned();
        }
        if host.contains('@') {
            return Err("credentials in the URL are not supported".into());
        }
        let path = percent_decode_str(path)
            .decode_utf8()
            .map_err(|_| "the path is not UTF-8 after percent-decoding".to_owned())?
            .into_owned();
        check_key(&path)?;
        let (first, key) = split_first_segment(&path);
        let sas = match query {
            Some(query) if !query.is_empty() => Some(query),
            _ => None,
        };
        if let Some(azure) = AzureHost::parse_opt(&host)? {
            if first.is_empty() {
                return Err("the URL names no container after the account host".into());
            }
            check_container(first)?;
            let mut url = Self::remote(
                StoreKind::Azure,
                first,
                key,
                format!("https://{host}/{first}/"),
            )
            .with_azure_host(azure);
            url.encode_keys = true;
            url.sas = sas.map(|sas| Secret::new(sas.to_owned()));
            return Ok(url);
        }
        if sas.is_some() {
            return Err("a query string is only accepted on Azure URLs (as a SAS token)".into());
        }
        if host == "storage.googleapis.com" {
            if first.is_empty() {
                return Err("the URL names no bucket".into());
            }
            check_bucket(first, "GCS bucket")?;
            let mut url = Self::remote(StoreKind::Gcs, first, key, format!("gs://{first}/"));
            url.encode_keys = false;
            return Ok(url);
        }
        if let Some(s3) = s3_host(&host) {
            let (bucket, key) = match s3.bucket {
                Some(bucket) => (bucket, path.as_str()),
                None => (first, key),
            };
            if bucket.is_empty() {
                return Err("the URL names no bucket".into());
            }
            check_bucket(bucket, "S3 bucket")?;
            let mut url = Self::remote(StoreKind::S3, bucket, key, format!("s3://{bucket}/"));
            url.region = s3.region.map(str::to_owned);
            return Ok(url);
        }
        Err(format!(
            "`{host}` is not a known storage host (*.blob.core.windows.net, \
             *.dfs.core.windows.net, *.amazonaws.com, storage.googleapis.com); for other \
             servers use s3://BUCKET/… with `endpoint` in the stage config"
        ))
    }

    /// The kind of store.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The S3 or GCS bucket, or the Azure container; empty for a local stage.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The Azure storage account the URL names (`ACCOUNT.blob.core.windows.net`).
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// The Azure blob endpoint for an account host outside the public cloud.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The S3 region an `https://…amazonaws.com` URL names.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// The key or key prefix (no leading `/`); for a local stage the path as given.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// True when the URL can only name a prefix: an empty key or one ending in `/`.
    pub fn is_prefix(&self) -> bool {
        self.key.is_empty() || self.key.ends_with('/')
    }

    /// The SAS token an Azure `https://` URL carries.
    pub fn sas_token(&self) -> Option<&Secret> {
        self.sas.as_ref()
    }

    /// How the object `key` of this stage's bucket is shown in messages: `s3://b/key`,
    /// `azure://acct.blob.core.windows.net/c/key`, … (never with a SAS token). For a local
    /// stage `key` is a path and is shown as it is.
    pub fn object_url(&self, key: &str) -> String {
        if self.encode_keys {
            format!("{}{}", self.base, utf8_percent_encode(key, URL_PATH))
        } else {
            format!("{}{key}", self.base)
        }
    }
}

/// `BUCKET/key…` of a raw URL: the key as written (no percent-decoding).
fn raw_bucket_and_key(rest: &str) -> Result<(&str, &str), String> {
    if rest.contains('?') {
        return Err(
            "a `?` query is not accepted here (a SAS token goes in AZURE_STORAGE_SAS_TOKEN, \
             the stage's `sas_token`, or an https:// URL)"
                .into(),
        );
    }
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err("the URL names no bucket or container".into());
    }
    if let Some((user, _)) = bucket.split_once('@')
        && user.contains(':')
    {
        return Err("credentials in the URL are not supported".into());
    }
    check_key(key)?;
    Ok((bucket, key))
}

/// Splits `container/rest` at the first `/`.
fn split_first_segment(path: &str) -> (&str, &str) {
    path.split_once('/').unwrap_or((path, ""))
}

/// Rejects keys object stores (and object_store's paths) cannot hold: empty segments
/// (`a//b`, a leading `/`) and `.`/`..` segments.
fn check_key(key: &str) -> Result<(), String> {
    let trimmed = key.strip_suffix('/').unwrap_or(key);
    if trimmed.is_empty() {
        return Ok(());
    }
    for segment in trimmed.split('/') {
        if segment.is_empty() {
            return Err("the key has an empty path segment (`//` or a leading `/`)".into());
        }
        if segment == "." || segment == ".." {
            return Err("the key has a `.` or `..` segment".into());
        }
    }
    Ok(())
}

/// Why no stage file can have the object key `key`, if none can: stagepush reads objects
/// through paths that cannot hold an empty key, an empty segment (`a//b`, or a leading
/// `/`, which S3 allows but which would be read as another key without it), a `.` or `..`
/// segment, a control character (NUL, …), or a trailing `/` (a folder).
pub fn check_object_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    if let Some(c) = key.chars().find(|c| c.is_control()) {
        return Err(format!(
            "the key contains the control character U+{:04X}: stagepush cannot read it",
            u32::from(c)
        ));
    }
    if key.starts_with('/') {
        return Err(
            "the key starts with `/`: stagepush cannot read it (it would read the key without \
             the `/`, another object)"
                .into(),
        );
    }
    if key.ends_with('/') {
        return Err("the key ends with `/`: a folder, not a file".into());
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return Err(
                "the key has an empty path segment (`//`): stagepush cannot read it".into(),
            );
        }
        if segment == "." || segment == ".." {
            return Err(format!(
                "the key has a `{segment}` segment: stagepush cannot read it"
            ));
        }
    }
    Ok(())
}

/// S3 and GCS bucket names: letters, digits, `.`, `-`, `_` (legacy S3 buckets may have
/// upper-case letters and underscores; the server has the last word).
fn check_bucket(bucket: &str, what: &str) -> Result<(), String> {
    let valid = !bucket.is_empty()
        && bucket.len() <= 255
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && bucket.as_bytes()[0].is_ascii_alphanumeric();
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{bucket}` is not a valid {what} name (letters, digits, `.`, `-`, `_`)"
        ))
    }
}

/// Azure container names: 3 to 63 lower-case letters, digits and hyphens, or `$root`,
/// `$web`, `$logs`.
fn check_container(container: &str) -> Result<(), String> {
    let valid = matches!(container, "$root" | "$web" | "$logs")
        || ((3..=63).contains(&container.len())
            && container
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !container.starts_with('-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{container}` is not a valid Azure container name (3-63 lower-case letters, \
             digits and hyphens)"
        ))
    }
}

/// An Azure storage account host: `ACCOUNT.blob.core.windows.net`, `ACCOUNT.dfs.…`, and
/// the same under sovereign clouds' suffixes.
struct AzureHost {
    account: String,
    /// The blob endpoint when the suffix is not the public cloud's.
    endpoint: Option<String>,
}

impl AzureHost {
    fn parse(host: &str) -> Result<Self, String> {
        Self::parse_opt(&host.to_ascii_lowercase())?.ok_or_else(|| {
            format!(
                "`{host}` is not an Azure storage account host (ACCOUNT.blob.core.windows.net \
                 or ACCOUNT.dfs.core.windows.net)"
            )
        })
    }

    /// `None` when `host` is not an account host at all.
    fn parse_opt(host: &str) -> Result<Option<Self>, String> {
        let mut labels = host.splitn(3, '.');
        let (Some(account), Some(service), Some(suffix)) =
            (labels.next(), labels.next(), labels.next())
        else {
            return Ok(None);
        };
        if !matches!(service, "blob" | "dfs") || !suffix.starts_with("core.") {
            return Ok(None);
        }
        if suffix.contains(':') {
            return Err("an Azure account host takes no port".into());
        }
        let valid = (3..=24).contains(&account.len())
            && account
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid {
            return Err(format!(
                "`{account}` is not a valid Azure storage account name (3-24 lower-case \
                 letters and digits)"
            ));
        }
        let endpoint =
            (suffix != "core.windows.net").then(|| format!("https://{account}.blob.{suffix}"));
        Ok(Some(Self {
            account: account.to_owned(),
            endpoint,
        }))
    }
}

/// What an `*.amazonaws.com` host says.
struct S3Host<'a> {
    /// Virtual-hosted style: the bucket is in the host.
    bucket: Option<&'a str>,
    region: Option<&'a str>,
}

/// `s3.amazonaws.com`, `s3.REGION.amazonaws.com`, `s3-REGION.amazonaws.com` (path style),
/// and `BUCKET.` in front of any of them (virtual-hosted style).
fn s3_host(host: &str) -> Option<S3Host<'_>> {
    let service = host.strip_suffix(".amazonaws.com")?;
    // The S3 label is the last `s3` or `s3-REGION` label that is followed by at most a
    // region label.
    let labels: Vec<&str> = service.split('.').collect();
    let (index, region) = match labels.as_slice() {
        [.., s3] if *s3 == "s3" => (labels.len() - 1, None),
        [.., s3] if s3.starts_with("s3-") => (labels.len() - 1, Some(&s3[3..])),
        [.., s3, region] if *s3 == "s3" => (labels.len() - 2, Some(*region)),
        _ => return None,
    };
    let bucket = if index == 0 {
        None
    } else {
        // The bucket is everything before the S3 label (bucket names may contain dots).
        let end = labels[..index].iter().map(|l| l.len() + 1).sum::<usize>() - 1;
        Some(&service[..end])
    };
    Some(S3Host { bucket, region })
}

#[cfg(test)]
mod tests {
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
            assert!(reason.contains(expected), "{key:?}: {reason}");
        }
    }
}
