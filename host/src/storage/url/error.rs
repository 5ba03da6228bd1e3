//! What can be wrong with a stage URL ([`UrlError`], the `reason` of
//! [`crate::storage::StorageError::Url`]) or with an object key no stage file can have
//! ([`ObjectKeyError`]). The messages never repeat a query string or credentials.

/// Why a stage URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// A `?` query on a URL form that takes none.
    #[error(
        "a `?` query is not accepted here (a SAS token goes in AZURE_STORAGE_SAS_TOKEN, the \
         stage's `sas_token`, or an https:// URL)"
    )]
    Query,
    /// A query on an `https://` URL that is not Azure's.
    #[error("a query string is only accepted on Azure URLs (as a SAS token)")]
    QueryNotAzure,
    /// A `#fragment`.
    #[error("a URL fragment (`#…`) is not part of a stage URL")]
    Fragment,
    /// `user:password@`.
    #[error("credentials in the URL are not supported")]
    Credentials,
    /// Percent-decoding gives no UTF-8.
    #[error("the path is not UTF-8 after percent-decoding")]
    NotUtf8,
    /// `s3://`, `az://` with nothing after.
    #[error("the URL names no bucket or container")]
    NoBucketOrContainer,
    /// An S3 or GCS URL without a bucket.
    #[error("the URL names no bucket")]
    NoBucket,
    /// An Azure account host without a container.
    #[error("the URL names no container after the account host")]
    NoContainer,
    /// `a//b` or a leading `/` in the key.
    #[error("the key has an empty path segment (`//` or a leading `/`)")]
    EmptySegment,
    /// `.` or `..` in the key.
    #[error("the key has a `.` or `..` segment")]
    DotSegment,
    /// An S3 or GCS bucket name with other characters.
    #[error("`{bucket}` is not a valid {what} name (letters, digits, `.`, `-`, `_`)")]
    InvalidBucket {
        /// The name.
        bucket: String,
        /// `S3 bucket` or `GCS bucket`.
        what: &'static str,
    },
    /// An Azure container name out of the rules.
    #[error(
        "`{0}` is not a valid Azure container name (3-63 lower-case letters, digits and \
         hyphens)"
    )]
    InvalidContainer(String),
    /// An Azure storage account name out of the rules.
    #[error("`{0}` is not a valid Azure storage account name (3-24 lower-case letters and digits)")]
    InvalidAccount(String),
    /// An `azure://HOST/` or `abfss://C@HOST/` host that is not an account host.
    #[error(
        "`{0}` is not an Azure storage account host (ACCOUNT.blob.core.windows.net or \
         ACCOUNT.dfs.core.windows.net)"
    )]
    NotAzureHost(String),
    /// `ACCOUNT.blob.core.windows.net:PORT`.
    #[error("an Azure account host takes no port")]
    AzurePort,
    /// An `https://` host that is no known storage host.
    #[error(
        "`{0}` is not a known storage host (*.blob.core.windows.net, *.dfs.core.windows.net, \
         *.amazonaws.com, storage.googleapis.com); for other servers use s3://BUCKET/… with \
         `endpoint` in the stage config"
    )]
    UnknownHost(String),
}

/// Why no stage file can have an object key (see
/// [`check_object_key`](super::check_object_key)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectKeyError {
    /// The empty key.
    #[error("the key is empty")]
    Empty,
    /// NUL and other control characters.
    #[error("the key contains the control character U+{code:04X}: stagepush cannot read it")]
    ControlCharacter {
        /// The character's code point.
        code: u32,
    },
    /// A leading `/`.
    #[error(
        "the key starts with `/`: stagepush cannot read it (it would read the key without \
         the `/`, another object)"
    )]
    LeadingSlash,
    /// A trailing `/`.
    #[error("the key ends with `/`: a folder, not a file")]
    Folder,
    /// `a//b`.
    #[error(
        "the key has an empty path segment (`//`): stagepush cannot read it (it would read \
         the key with the `//` made `/`, another object)"
    )]
    EmptySegment,
    /// A `.` or `..` segment.
    #[error("the key has a `{0}` segment: stagepush cannot read it")]
    DotSegment(String),
}
