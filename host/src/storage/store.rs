//! How to reach a store: the settings of a stage or state location ([`StageConfig`], the
//! `[source]` section of a run configuration) and the object_store clients built from a
//! URL plus those settings ([`build_store`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::{ClientConfigKey, ObjectStore, RetryConfig};
use serde::Deserialize;

use super::StorageError;
use super::credentials;
use super::redact::{Redactor, redact_url};
use super::secret::Secret;
use super::url::{StageUrl, StoreKind};
use crate::source::format::FormatSetting;
use crate::source::text::{CsvOptions, JsonOptions};
use crate::tls::install_crypto_provider;

/// The account name and key Azurite (and the old storage emulator) accept: published by
/// Microsoft, not a secret.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// See [`AZURITE_ACCOUNT`].
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Why store settings cannot be used: a setting of another store, an incomplete pair, a
/// bad endpoint or timeout. Never holds a secret (an endpoint is shown redacted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A setting of another kind of store.
    #[error("`{setting}` does not apply to a stage in {kind}")]
    DoesNotApply {
        /// The setting's name.
        setting: &'static str,
        /// The store the URL names.
        kind: StoreKind,
    },
    /// One of `access_key_id` and `secret_access_key` without the other.
    #[error("`access_key_id` and `secret_access_key` go together")]
    KeyPair,
    /// `session_token` without the key pair.
    #[error("`session_token` needs `access_key_id` and `secret_access_key`")]
    SessionTokenAlone,
    /// An endpoint that is no http(s) URL.
    #[error("`endpoint` must be an http:// or https:// URL, not `{endpoint}`")]
    EndpointScheme {
        /// The endpoint, without credentials or query.
        endpoint: String,
    },
    /// `http://` without `allow_http`.
    #[error("an http:// `endpoint` needs `allow_http = true`")]
    HttpEndpoint,
    /// A zero timeout.
    #[error("timeouts must be at least 1 second")]
    ZeroTimeout,
}

/// Where a stage is and how to reach it: the `[source]` section of a run configuration.
///
/// Only `url` is needed; everything else overrides what object_store's `from_env`
/// builders read from the environment (`AWS_*`, `AZURE_STORAGE_*`, `GOOGLE_*`). A setting
/// that does not apply to the URL's store (`sas_token` on an `s3://` stage) is an error.
///
/// ```toml
/// [source]
/// url = "s3://unload-bucket/customers/"
/// region = "eu-west-1"
/// endpoint = "http://127.0.0.1:8333"   # S3-compatible servers
/// allow_http = true
/// path_style = true
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// The stage: `s3://bucket/prefix/`, `az://container/prefix/`,
    /// `azure://ACCOUNT.blob.core.windows.net/container/prefix/`, `https://…`,
    /// `abfss://container@ACCOUNT.dfs.core.windows.net/…`, `gs://bucket/prefix/`,
    /// `file:///path` or a local path; a prefix or a single object.
    pub url: Option<String>,
    /// S3: the bucket's region (else `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`).
    pub region: Option<String>,
    /// S3, Azure, GCS: the service endpoint, for S3-compatible servers, Azurite, private
    /// endpoints (`http://127.0.0.1:8333`; Azure: the account URL).
    pub endpoint: Option<String>,
    /// Allow plain-HTTP endpoints.
    pub allow_http: Option<bool>,
    /// S3: `true` for path-style requests (`endpoint/bucket/key`, what most S3-compatible
    /// servers need), `false` for virtual-hosted style (`bucket.endpoint/key`; with
    /// `endpoint` set, the endpoint must then already name the bucket).
    pub path_style: Option<bool>,
    /// Azure: the storage account (else the URL's, else `AZURE_STORAGE_ACCOUNT_NAME`).
    pub account: Option<String>,
    /// S3: access key id (with `secret_access_key`).
    pub access_key_id: Option<String>,
    /// S3: secret access key.
    pub secret_access_key: Option<Secret>,
    /// S3: session token of temporary credentials.
    pub session_token: Option<Secret>,
    /// Azure: a SAS token (`sv=…&sig=…`, with or without the leading `?`).
    pub sas_token: Option<Secret>,
    /// Azure: the account's shared key.
    pub account_key: Option<Secret>,
    /// Azure: talk to Azurite: at `endpoint` if set (`http://127.0.0.1:10000`), else at
    /// `AZURITE_BLOB_STORAGE_URL` or `http://127.0.0.1:10000`, with its well-known account
    /// and key unless others are given.
    pub use_emulator: Option<bool>,
    /// S3, Azure, GCS: send unsigned requests (public buckets).
    pub skip_signature: Option<bool>,
    /// GCS: a service-account JSON file (else `GOOGLE_APPLICATION_CREDENTIALS`, …).
    pub service_account_path: Option<PathBuf>,
    /// Retries of a failed request (transient errors, throttling), with exponential
    /// back-off; object_store's default is 10.
    pub max_retries: Option<usize>,
    /// Give up retrying a request after this many seconds (default 180).
    pub retry_timeout_secs: Option<u64>,
    /// Time limit of one request, in seconds (default 30).
    pub request_timeout_secs: Option<u64>,
    /// Time limit of connecting, in seconds (default 5).
    pub connect_timeout_secs: Option<u64>,
    /// Which files are read, and as what (`auto`, `parquet`, `csv`, `json`; see
    /// [`crate::source::format`]). Not a store setting: `[source]` only.
    #[serde(default)]
    pub format: FormatSetting,
    /// `[source.csv]`: how CSV files are read (Snowflake's file-format options).
    #[serde(default)]
    pub csv: CsvOptions,
    /// `[source.json]`: how JSON files are read.
    #[serde(default)]
    pub json: JsonOptions,
}

impl StageConfig {
    /// A configuration with only a URL: everything else comes from the environment.
    pub fn from_url(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            ..Self::default()
        }
    }

    /// Refuses settings that do not apply to `kind` and incomplete pairs.
    pub(crate) fn check(&self, kind: StoreKind) -> Result<(), ConfigError> {
        use StoreKind::{Azure, Gcs, S3};
        const REMOTE: &[StoreKind] = &[S3, Azure, Gcs];
        let settings: [(&str, bool, &[StoreKind]); 16] = [
            ("region", self.region.is_some(), &[S3]),
            ("endpoint", self.endpoint.is_some(), REMOTE),
            ("allow_http", self.allow_http.is_some(), REMOTE),
            ("path_style", self.path_style.is_some(), &[S3]),
            ("account", self.account.is_some(), &[Azure]),
            ("access_key_id", self.access_key_id.is_some(), &[S3]),
            ("secret_access_key", self.secret_access_key.is_some(), &[S3]),
            ("session_token", self.session_token.is_some(), &[S3]),
            ("sas_token", self.sas_token.is_some(), &[Azure]),
            ("account_key", self.account_key.is_some(), &[Azure]),
            ("use_emulator", self.use_emulator.is_some(), &[Azure]),
            ("skip_signature", self.skip_signature.is_some(), REMOTE),
            (
                "service_account_path",
                self.service_account_path.is_some(),
                &[Gcs],
            ),
            ("max_retries", self.max_retries.is_some(), REMOTE),
            (
                "retry_timeout_secs",
                self.retry_timeout_secs.is_some(),
                REMOTE,
            ),
            (
                "request_timeout_secs / connect_timeout_secs",
                self.request_timeout_secs.is_some() || self.connect_timeout_secs.is_some(),
                REMOTE,
            ),
        ];
        for (name, set, kinds) in settings {
            if set && !kinds.contains(&kind) {
                return Err(ConfigError::DoesNotApply {
                    setting: name,
                    kind,
                });
            }
        }
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return Err(ConfigError::KeyPair);
        }
        if self.session_token.is_some() && self.access_key_id.is_none() {
            return Err(ConfigError::SessionTokenAlone);
        }
        if let Some(endpoint) = &self.endpoint {
            let lower = endpoint.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(ConfigError::EndpointScheme {
                    endpoint: redact_url(endpoint),
                });
            }
            if lower.starts_with("http://")
                && self.allow_http != Some(true)
                && self.use_emulator != Some(true)
            {
                return Err(ConfigError::HttpEndpoint);
            }
        }
        if self.request_timeout_secs == Some(0) || self.connect_timeout_secs == Some(0) {
            return Err(ConfigError::ZeroTimeout);
        }
        Ok(())
    }

    fn retry(&self) -> RetryConfig {
        let mut retry = RetryConfig::default();
        if let Some(max) = self.max_retries {
            retry.max_retries = max;
        }
        if let Some(secs) = self.retry_timeout_secs {
            retry.retry_timeout = Duration::from_secs(secs);
        }
        retry
    }

    /// The client settings shared by every store, as object_store config keys.
    fn client_settings(&self) -> Vec<(ClientConfigKey, String)> {
        let mut settings = Vec::new();
        if let Some(allow) = self.allow_http {
            settings.push((ClientConfigKey::AllowHttp, allow.to_string()));
        }
        if let Some(secs) = self.request_timeout_secs {
            settings.push((ClientConfigKey::Timeout, format!("{secs}s")));
        }
        if let Some(secs) = self.connect_timeout_secs {
            settings.push((ClientConfigKey::ConnectTimeout, format!("{secs}s")));
        }
        settings
    }

    /// The secrets this configuration holds, to scrub from messages.
    pub(crate) fn secrets(&self) -> Vec<String> {
        [
            &self.secret_access_key,
            &self.session_token,
            &self.sas_token,
            &self.account_key,
        ]
        .into_iter()
        .flatten()
        .map(|secret| secret.expose_secret().to_owned())
        .collect()
    }
}

/// The object_store client for a remote `url` (S3, Azure, GCS) with `config`'s settings
/// over the environment's; a local URL is [`StorageError::Config`]. The settings must have
/// passed [`StageConfig::check`]. Errors are scrubbed by `redactor`.
pub(crate) fn build_store(
    url: &StageUrl,
    config: &StageConfig,
    redactor: &Redactor,
) -> Result<Arc<dyn ObjectStore>, StorageError> {
    install_crypto_provider();
    match url.kind() {
        StoreKind::S3 => build_s3(url, config),
        StoreKind::Azure => build_azure(url, config),
        StoreKind::Gcs => build_gcs(url, config),
        StoreKind::Local => Err(BuildError::NotObjectStore),
    }
    .map_err(|reason| StorageError::Config {
        stage: url.to_string(),
        reason: redactor.explain(&reason.to_string()),
    })
}

/// Why an object_store client cannot be built (scrubbed by the stage's redactor before
/// it is shown: the store's message may quote a setting).
#[derive(Debug, thiserror::Error)]
enum BuildError {
    /// A local URL.
    #[error("not an object store")]
    NotObjectStore,
    /// The Azure account in the URL and the configured one differ.
    #[error("the URL names account `{in_url}` but `account` is `{configured}`")]
    AccountMismatch {
        /// The URL's account.
        in_url: String,
        /// The `account` setting.
        configured: String,
    },
    /// No credential is configured and the metadata service, the last place to look, is
    /// not there (`credentials::no_credentials`).
    #[error("{0}")]
    NoCredentials(String),
    /// object_store refused the settings.
    #[error("cannot configure the {store} client: {source}{hint}")]
    Client {
        /// `S3`, `Azure`, `GCS`.
        store: &'static str,
        /// object_store's error.
        source: object_store::Error,
        /// What to do about it, if anything helps (starts with a space).
        hint: &'static str,
    },
}

impl BuildError {
    fn client(store: &'static str) -> impl FnOnce(object_store::Error) -> Self {
        move |source| BuildError::Client {
            store,
            source,
            hint: "",
        }
    }
}

/// What a missing Azure account needs.
const AZURE_ACCOUNT_HINT: &str = " (set AZURE_STORAGE_ACCOUNT_NAME, the stage's `account`, \
                                  or use an azure://ACCOUNT.blob.core.windows.net/CONTAINER/… URL)";

fn build_s3(url: &StageUrl, config: &StageConfig) -> Result<Arc<dyn ObjectStore>, BuildError> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(url.bucket());
    if let Some(region) = config.region.as_deref().or(url.region()) {
        builder = builder.with_region(region);
    }
    if let Some(endpoint) = &config.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(path_style) = config.path_style {
        builder = builder.with_virtual_hosted_style_request(!path_style);
    }
    if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
        builder = builder
            .with_access_key_id(id)
            .with_secret_access_key(secret.expose_secret());
        // Temporary credentials from the environment do not belong to these keys.
        builder = builder.with_config(
            AmazonS3ConfigKey::Token,
            config
                .session_token
                .as_ref()
                .map(Secret::expose_secret)
                .unwrap_or(""),
        );
    }
    if let Some(skip) = config.skip_signature {
        builder = builder.with_skip_signature(skip);
    }
    for (key, value) in config.client_settings() {
        builder = builder.with_config(AmazonS3ConfigKey::Client(key), value);
    }
    s3_credentials_or_region_said(&builder)?;
    let store = builder
        .with_retry(config.retry())
        .build()
        .map_err(BuildError::client("S3"))?;
    Ok(Arc::new(store))
}

/// Refuses an S3 client whose only credential source left is the instance metadata service
/// when that is not there (`credentials`), and says which region is assumed when none is
/// set for AWS itself.
fn s3_credentials_or_region_said(builder: &AmazonS3Builder) -> Result<(), BuildError> {
    use AmazonS3ConfigKey as K;
    let set = |key: K| {
        builder
            .get_config_value(&key)
            .is_some_and(|v| !v.is_empty())
    };
    let unsigned = builder.get_config_value(&K::SkipSignature).as_deref() == Some("true");
    if !unsigned {
        credentials::probe_s3_metadata_if_only_source(builder).map_err(|detail| {
            BuildError::NoCredentials(credentials::no_credentials(
                StoreKind::S3,
                &detail.to_string(),
            ))
        })?;
    }
    if !set(K::Region) && !set(K::DefaultRegion) && !set(K::Endpoint) {
        tracing::warn!(
            "S3: no region set (the stage's `region`, AWS_REGION or AWS_DEFAULT_REGION): \
             assuming {DEFAULT_S3_REGION}; a bucket elsewhere fails until the region is set"
        );
    }
    Ok(())
}

/// The region object_store assumes when none is set.
const DEFAULT_S3_REGION: &str = "us-east-1";

fn build_azure(url: &StageUrl, config: &StageConfig) -> Result<Arc<dyn ObjectStore>, BuildError> {
    let account = match (config.account.as_deref(), url.account()) {
        (Some(configured), Some(in_url)) if configured != in_url => {
            return Err(BuildError::AccountMismatch {
                in_url: in_url.to_owned(),
                configured: configured.to_owned(),
            });
        }
        (configured, in_url) => configured.or(in_url),
    };
    let mut builder = MicrosoftAzureBuilder::from_env().with_container_name(url.bucket());
    if let Some(account) = account {
        builder = builder.with_account(account);
    }
    let sas = config.sas_token.as_ref().or(url.sas_token());
    let has_credential = sas.is_some() || config.account_key.is_some();
    match (config.use_emulator, &config.endpoint) {
        (Some(true), Some(endpoint)) => {
            // Azurite at a chosen address: its path-style account URL, its well-known
            // account and key unless others are given.
            let account = account.unwrap_or(AZURITE_ACCOUNT);
            builder = builder
                .with_use_emulator(false)
                .with_account(account)
                .with_endpoint(format!("{}/{account}", endpoint.trim_end_matches('/')))
                .with_allow_http(true);
            if !has_credential {
                builder = builder.with_access_key(AZURITE_KEY);
            }
        }
        (Some(use_emulator), None) => builder = builder.with_use_emulator(use_emulator),
        (_, Some(endpoint)) => builder = builder.with_endpoint(endpoint.clone()),
        (None, None) => {
            if let Some(endpoint) = url.endpoint() {
                builder = builder.with_endpoint(endpoint.to_owned());
            }
        }
    }
    if let Some(key) = &config.account_key {
        builder = builder.with_access_key(key.expose_secret());
    }
    if let Some(sas) = sas {
        builder = builder.with_config(
            AzureConfigKey::SasKey,
            sas.expose_secret().trim_start_matches('?'),
        );
    }
    if let Some(skip) = config.skip_signature {
        builder = builder.with_skip_signature(skip);
    }
    for (key, value) in config.client_settings() {
        builder = builder.with_config(AzureConfigKey::Client(key), value);
    }
    let store = builder
        .with_retry(config.retry())
        .build()
        .map_err(|source| {
            let about_account = source.to_string().to_ascii_lowercase().contains("account");
            BuildError::Client {
                store: "Azure",
                source,
                hint: if account.is_none() && about_account {
                    AZURE_ACCOUNT_HINT
                } else {
                    ""
                },
            }
        })?;
    Ok(Arc::new(store))
}

fn build_gcs(url: &StageUrl, config: &StageConfig) -> Result<Arc<dyn ObjectStore>, BuildError> {
    let mut builder = GoogleCloudStorageBuilder::from_env().with_bucket_name(url.bucket());
    if let Some(path) = &config.service_account_path {
        builder = builder.with_service_account_path(path.to_string_lossy());
    }
    if let Some(endpoint) = &config.endpoint {
        builder = builder.with_base_url(endpoint);
    }
    if let Some(skip) = config.skip_signature {
        builder = builder.with_skip_signature(skip);
    }
    for (key, value) in config.client_settings() {
        builder = builder.with_config(GoogleConfigKey::Client(key), value);
    }
    let store = builder
        .with_retry(config.retry())
        .build()
        .map_err(BuildError::client("GCS"))?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_strict_and_hides_secrets() {
        let config: StageConfig = toml::from_str(
            r#"
            url = "s3://bucket/prefix/"
            region = "eu-west-1"
            endpoint = "http://127.0.0.1:8333"
            allow_http = true
            path_style = true
            access_key_id = "AKIDEXAMPLE"
            secret_access_key = "wJalrXUtnFEMI/K7MDENG"
            max_retries = 3
            "#,
        )
        .unwrap();
        assert_eq!(config.region.as_deref(), Some("eu-west-1"));
        let debug = format!("{config:?}");
        assert!(!debug.contains("wJalrXUtnFEMI"), "{debug}");
        assert!(debug.contains("<redacted>"));

        let unknown = toml::from_str::<StageConfig>("url = \"s3://b/\"\nregoin = \"x\"\n");
        assert!(unknown.unwrap_err().to_string().contains("regoin"));
    }

    #[test]
    fn clients_that_cannot_be_built_say_why() {
        let build = |url: &str, config: StageConfig| {
            let url = StageUrl::parse(url).unwrap();
            let redactor = Redactor::for_store(&config, &url);
            match build_store(&url, &config, &redactor) {
                Ok(_) => panic!("{url} built"),
                Err(error) => error.to_string(),
            }
        };
        let config = StageConfig {
            account: Some("other".into()),
            ..StageConfig::default()
        };
        assert_eq!(
            build("azure://acct1.blob.core.windows.net/stage/", config),
            "azure://acct1.blob.core.windows.net/stage/: the URL names account `acct1` but \
             `account` is `other`"
        );
        let error = build("/tmp/stage", StageConfig::default());
        assert!(error.ends_with(": not an object store"), "{error}");
    }
}
