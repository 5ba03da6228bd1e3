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
//!
//! Parts: [`error`] (what is wrong with a URL or an object key), `checks` (bucket,
//! container and key rules), `https` (the `https://` forms and the Azure and S3 hosts).

use std::fmt;
use std::path::PathBuf;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use super::StorageError;
use super::redact::redact_url;
use super::secret::Secret;

mod checks;
pub mod error;
mod https;
#[cfg(test)]
mod tests;

pub use self::checks::check_object_key;
use self::checks::{check_bucket, check_container, raw_bucket_and_key, split_first_segment};
pub use self::error::{ObjectKeyError, UrlError};
use self::https::AzureHost;

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
        let invalid = |reason: UrlError| error(&reason.to_string());
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
                let (bucket, key) = raw_bucket_and_key(rest).map_err(invalid)?;
                check_bucket(bucket, "S3 bucket").map_err(invalid)?;
                Ok(Self::remote(
                    StoreKind::S3,
                    bucket,
                    key,
                    format!("s3://{bucket}/"),
                ))
            }
            "gs" => {
                let (bucket, key) = raw_bucket_and_key(rest).map_err(invalid)?;
                check_bucket(bucket, "GCS bucket").map_err(invalid)?;
                Ok(Self::remote(
                    StoreKind::Gcs,
                    bucket,
                    key,
                    format!("gs://{bucket}/"),
                ))
            }
            "az" | "azure" => {
                let (first, key) = raw_bucket_and_key(rest).map_err(invalid)?;
                if first.contains('.') {
                    // Snowflake's `azure://ACCOUNT.blob.core.windows.net/CONTAINER/path`.
                    let host = AzureHost::parse(first).map_err(invalid)?;
                    let (container, key) = split_first_segment(key);
                    if container.is_empty() {
                        return Err(error("the URL names no container after the account host"));
                    }
                    check_container(container).map_err(invalid)?;
                    let base = format!("{scheme}://{first}/{container}/");
                    Ok(Self::remote(StoreKind::Azure, container, key, base).with_azure_host(host))
                } else {
                    check_container(first).map_err(invalid)?;
                    let base = format!("{scheme}://{first}/");
                    Ok(Self::remote(StoreKind::Azure, first, key, base))
                }
            }
            "abfs" | "abfss" => {
                let (authority, key) = raw_bucket_and_key(rest).map_err(invalid)?;
                match authority.split_once('@') {
                    Some((container, host)) => {
                        let host = AzureHost::parse(host).map_err(invalid)?;
                        check_container(container).map_err(invalid)?;
                        let base = format!("{scheme}://{authority}/");
                        Ok(Self::remote(StoreKind::Azure, container, key, base)
                            .with_azure_host(host))
                    }
                    None => {
                        check_container(authority).map_err(invalid)?;
                        let base = format!("{scheme}://{authority}/");
                        Ok(Self::remote(StoreKind::Azure, authority, key, base))
                    }
                }
            }
            "https" => Self::parse_https(rest).map_err(invalid),
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
