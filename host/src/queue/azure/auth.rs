//! How the Azure queue client authorises its requests. `azure_storage_queue` takes an Entra ID
//! `TokenCredential` (https only) or a SAS already in the URL; it has no shared key. So
//! [`Authorize`], a policy of the client's pipeline, adds one of:
//!
//! - a SAS token given in the queue URL, the stage's `sas_token` or `AZURE_STORAGE_SAS_TOKEN`
//!   (it must grant the queue: a queue service SAS or an account SAS with `ss` containing `q`);
//! - with an account key (the stage's `account_key`, `AZURE_STORAGE_ACCOUNT_KEY`, Azurite's
//!   well-known key with `use_emulator`): a queue service SAS signed here ([`QueueSasSigner`],
//!   `docs/reference/storage-events.md`), valid [`SAS_LIFETIME`] and renewed
//!   [`SAS_RENEW_MARGIN`] before it expires;
//! - otherwise an Entra ID bearer token from object_store's Azure credential chain (client
//!   secret, federated token file, Azure CLI, managed identity), the chain the stage uses.
//!
//! No key, SAS or token appears in a message: [`secrets`](ResolvedAuth::secrets) lists them for
//! the client's redactor.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request};
use chrono::{DateTime, Utc};
use object_store::azure::{
    AzureConfigKey, AzureCredential, AzureCredentialProvider, MicrosoftAzureBuilder,
};

use crate::source::StageConfig;
use crate::storage::credentials::{METADATA_HOST, no_credentials, probe_metadata};
use crate::storage::{AZURITE_ACCOUNT, AZURITE_KEY, Secret, StoreKind};

/// How long a SAS signed with the account key is valid.
pub const SAS_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::hours(1);
/// A signed SAS is replaced when less than this is left of it (a request and its retries
/// never outlive it).
pub const SAS_RENEW_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// The permissions of the SAS signed for the consumer: read, add, update, process (receive
/// and delete); the order is the service's.
pub const CONSUMER_PERMISSIONS: &str = "raup";
/// The `sv` of the signed SAS: its string-to-sign is the one for 2015-04-05 and later.
const SAS_VERSION: &str = "2021-08-06";

/// Why the queue's credentials cannot be used (becomes `QueueError::Credentials`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

/// Signs queue service SAS tokens for one queue with the account key.
pub struct QueueSasSigner {
    account: String,
    queue: String,
    key: ring::hmac::Key,
    https_only: bool,
}

impl QueueSasSigner {
    /// `key`: the account key as the portal shows it (base64). `https_only`: the token says
    /// `spr=https`.
    pub fn new(account: &str, queue: &str, key: &str, https_only: bool) -> Result<Self, AuthError> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key.trim())
            .map_err(|_| AuthError("the account key is not base64".into()))?;
        Ok(Self {
            account: account.to_owned(),
            queue: queue.to_owned(),
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes),
            https_only,
        })
    }

    /// A SAS token (`sv=…&se=…&sp=…&sig=…`, no `?`) granting `permissions` (in the service's
    /// order, e.g. `raup`) on the queue until `expiry`. The string-to-sign of a queue service
    /// SAS (version 2015-04-05 and later): permissions, start, expiry, `/queue/ACCOUNT/QUEUE`,
    /// identifier, IP, protocol, version, one per line.
    pub fn sign(&self, permissions: &str, expiry: DateTime<Utc>) -> String {
        use base64::Engine;
        let expiry = expiry.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let protocol = if self.https_only { "https" } else { "" };
        let resource = format!("/queue/{}/{}", self.account, self.queue);
        let string_to_sign = [
            permissions,
            "",
            &expiry,
            &resource,
            "",
            "",
            protocol,
            SAS_VERSION,
        ]
        .join("\n");
        let signature = ring::hmac::sign(&self.key, string_to_sign.as_bytes());
        let signature = base64::engine::general_purpose::STANDARD.encode(signature.as_ref());
        let mut pairs = vec![
            ("sv", SAS_VERSION.to_owned()),
            ("se", expiry),
            ("sp", permissions.to_owned()),
        ];
        if self.https_only {
            pairs.push(("spr", protocol.to_owned()));
        }
        pairs.push(("sig", signature));
        pairs
            .iter()
            .map(|(name, value)| format!("{name}={}", encode(value)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

fn encode(value: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(value, SET).to_string()
}

/// What authorises the requests.
enum Auth {
    /// A SAS token, appended to every request's query.
    Sas(Secret),
    /// A SAS signed here with the account key, renewed before it expires.
    Key {
        signer: Box<QueueSasSigner>,
        current: Mutex<Option<(Secret, DateTime<Utc>)>>,
    },
    /// Entra ID bearer tokens from object_store's credential chain (it caches and renews).
    Token(AzureCredentialProvider),
}

impl Auth {
    fn describe(&self) -> &'static str {
        match self {
            Auth::Sas(_) => "a SAS token",
            Auth::Key { .. } => "SAS tokens signed with the account key",
            Auth::Token(_) => "Entra ID tokens",
        }
    }

    /// The SAS for a request made now.
    fn key_sas(
        signer: &QueueSasSigner,
        current: &Mutex<Option<(Secret, DateTime<Utc>)>>,
    ) -> String {
        let now = Utc::now();
        let mut current = current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match &*current {
            Some((sas, expiry)) if *expiry - now > SAS_RENEW_MARGIN => {
                sas.expose_secret().to_owned()
            }
            _ => {
                let expiry = now + SAS_LIFETIME;
                let sas = signer.sign(CONSUMER_PERMISSIONS, expiry);
                *current = Some((Secret::new(sas.clone()), expiry));
                sas
            }
        }
    }
}

/// The credentials of one queue, and the secrets to keep out of messages.
pub struct ResolvedAuth {
    auth: Arc<Auth>,
    /// Known secret values (keys, SAS tokens) for the redactor.
    pub secrets: Vec<String>,
}

impl ResolvedAuth {
    /// The pipeline policy that authorises each call.
    pub fn policy(&self) -> Arc<dyn Policy> {
        Arc::new(Authorize(Arc::clone(&self.auth)))
    }

    /// What authorises the requests, for a log line (no value).
    pub fn describe(&self) -> &'static str {
        self.auth.describe()
    }
}

/// The queue's credentials: the URL's SAS, else the stage's `account_key` / `sas_token`,
/// else Azurite's key with `use_emulator`, else the environment (`AZURE_STORAGE_ACCOUNT_KEY`,
/// `AZURE_STORAGE_SAS_TOKEN`, then Entra ID through object_store's chain).
pub fn resolve(
    account: &str,
    queue: &str,
    https: bool,
    url_sas: Option<&Secret>,
    stage: &StageConfig,
) -> Result<ResolvedAuth, AuthError> {
    let key = |key: &str, secrets: Vec<String>| -> Result<ResolvedAuth, AuthError> {
        let signer = QueueSasSigner::new(account, queue, key, https)?;
        Ok(ResolvedAuth {
            auth: Arc::new(Auth::Key {
                signer: Box::new(signer),
                current: Mutex::new(None),
            }),
            secrets,
        })
    };
    let sas = |sas: &str| ResolvedAuth {
        auth: Arc::new(Auth::Sas(Secret::new(sas.trim_start_matches('?')))),
        secrets: vec![sas.trim_start_matches('?').to_owned()],
    };
    if let Some(url_sas) = url_sas {
        return Ok(sas(url_sas.expose_secret()));
    }
    if let Some(account_key) = &stage.account_key {
        if let Some(other) = stage.account.as_deref().filter(|other| *other != account) {
            return Err(AuthError(format!(
                "the stage's `account_key` is the key of account `{other}`, the queue is in \
                 account `{account}`: give the queue URL a SAS (…/{queue}?sv=…&sig=…) or grant \
                 an Entra ID identity the role Storage Queue Data Contributor"
            )));
        }
        let value = account_key.expose_secret();
        return key(value, vec![value.to_owned()]);
    }
    if let Some(stage_sas) = &stage.sas_token {
        return Ok(sas(stage_sas.expose_secret()));
    }
    // The environment, read as the stage's Azure client reads it.
    let mut builder = MicrosoftAzureBuilder::from_env()
        .with_account(account)
        .with_container_name("unused");
    if let Some(use_emulator) = stage.use_emulator {
        builder = builder.with_use_emulator(use_emulator);
    }
    let set = |key: AzureConfigKey| builder.get_config_value(&key).filter(|v| !v.is_empty());
    if let Some(value) = set(AzureConfigKey::AccessKey) {
        return key(&value, vec![value.clone()]);
    }
    if let Some(value) = set(AzureConfigKey::SasKey) {
        return Ok(sas(&value));
    }
    if set(AzureConfigKey::UseEmulator).is_some_and(|v| v == "true") {
        if account != AZURITE_ACCOUNT {
            tracing::warn!(
                "queue account `{account}` with use_emulator: signing with Azurite's key of \
                 `{AZURITE_ACCOUNT}`"
            );
        }
        return key(AZURITE_KEY, Vec::new());
    }
    token_chain(builder, stage)
}

/// Entra ID through object_store's chain; off Azure without a configured identity the
/// managed identity endpoint is probed first, so that a missing credential is said at once
/// instead of after the token requests' retries.
fn token_chain(
    builder: MicrosoftAzureBuilder,
    stage: &StageConfig,
) -> Result<ResolvedAuth, AuthError> {
    let set = |key: AzureConfigKey| {
        builder
            .get_config_value(&key)
            .is_some_and(|v| !v.is_empty())
    };
    let configured = (set(AzureConfigKey::ClientId)
        && (set(AzureConfigKey::ClientSecret) || set(AzureConfigKey::FederatedTokenFile)))
        || set(AzureConfigKey::Token)
        || builder
            .get_config_value(&AzureConfigKey::UseAzureCli)
            .is_some_and(|v| v == "true");
    if !configured {
        let endpoint = builder
            .get_config_value(&AzureConfigKey::MsiEndpoint)
            .unwrap_or_else(|| format!("http://{METADATA_HOST}"));
        probe_metadata(&endpoint)
            .map_err(|detail| AuthError(no_credentials(StoreKind::Azure, &detail.to_string())))?;
    }
    let mut builder = builder;
    if let Some(max) = stage.max_retries {
        builder = builder.with_retry(object_store::RetryConfig {
            max_retries: max,
            ..Default::default()
        });
    }
    let store = builder
        .build()
        .map_err(|e| AuthError(format!("cannot set up Entra ID credentials: {e}")))?;
    Ok(ResolvedAuth {
        auth: Arc::new(Auth::Token(Arc::clone(store.credentials()))),
        secrets: Vec::new(),
    })
}

/// The pipeline policy adding the credential to each call (before the retries).
struct Authorize(Arc<Auth>);

impl std::fmt::Debug for Authorize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Authorize({})", self.0.describe())
    }
}

fn append_sas(request: &mut Request, sas: &str) {
    let url = request.url_mut();
    let query = match url.query() {
        Some(query) if !query.is_empty() => format!("{query}&{sas}"),
        _ => sas.to_owned(),
    };
    url.set_query(Some(&query));
}

#[async_trait]
impl Policy for Authorize {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        match &*self.0 {
            Auth::Sas(sas) => append_sas(request, sas.expose_secret()),
            Auth::Key { signer, current } => {
                let sas = Auth::key_sas(signer, current);
                append_sas(request, &sas);
            }
            Auth::Token(provider) => {
                let credential = provider.get_credential().await.map_err(|e| {
                    azure_core::Error::with_message(
                        azure_core::error::ErrorKind::Credential,
                        format!("cannot get an Entra ID token: {e}"),
                    )
                })?;
                match &*credential {
                    AzureCredential::BearerToken(token) => {
                        request.insert_header("authorization", format!("Bearer {token}"));
                    }
                    AzureCredential::SASToken(pairs) => {
                        let sas = pairs
                            .iter()
                            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                            .collect::<Vec<_>>()
                            .join("&");
                        append_sas(request, &sas);
                    }
                    AzureCredential::AccessKey(_) => {
                        return Err(azure_core::Error::with_message(
                            azure_core::error::ErrorKind::Credential,
                            "the credential chain gave an account key where a token was expected",
                        ));
                    }
                }
            }
        }
        next[0].send(ctx, request, &next[1..]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signature was computed independently: Python's `hmac.new(base64.b64decode(KEY),
    /// b"raup\n\n2030-01-01T00:00:00Z\n/queue/devstoreaccount1/events\n\n\n\n2021-08-06",
    /// hashlib.sha256)`, base64, percent-encoded.
    #[test]
    fn a_signed_sas_carries_the_documented_fields() {
        let signer = QueueSasSigner::new(AZURITE_ACCOUNT, "events", AZURITE_KEY, false).unwrap();
        let expiry = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let sas = signer.sign("raup", expiry);
        assert_eq!(
            sas,
            "sv=2021-08-06&se=2030-01-01T00%3A00%3A00Z&sp=raup\
             &sig=irXNDvenyb%2BBzpGR33DqV5dU7UZWprqGWg9mOYb7onI%3D"
        );
        assert!(!sas.contains("spr="), "{sas}");
        let https = QueueSasSigner::new(AZURITE_ACCOUNT, "events", AZURITE_KEY, true).unwrap();
        assert!(https.sign("raup", expiry).contains("&spr=https&sig="));
        assert!(QueueSasSigner::new("a", "q", "not base64!", false).is_err());
    }

    #[test]
    fn the_key_sas_is_reused_until_it_is_near_its_expiry() {
        let signer = QueueSasSigner::new(AZURITE_ACCOUNT, "events", AZURITE_KEY, false).unwrap();
        let current = Mutex::new(None);
        let first = Auth::key_sas(&signer, &current);
        assert_eq!(Auth::key_sas(&signer, &current), first);
        // An old SAS close to its expiry is replaced.
        let soon = Utc::now() + SAS_RENEW_MARGIN - chrono::TimeDelta::seconds(1);
        *current.lock().unwrap() = Some((Secret::new("old"), soon));
        let renewed = Auth::key_sas(&signer, &current);
        assert_ne!(renewed, "old");
        assert!(renewed.contains("sig="));
    }

    #[test]
    fn the_url_sas_comes_first_then_the_stage_key_then_the_stage_sas() {
        let keyed = StageConfig {
            account_key: Some(Secret::new(AZURITE_KEY)),
            sas_token: Some(Secret::new("?sv=2&sig=stage")),
            ..StageConfig::default()
        };
        let url_sas = Secret::new("sv=1&sig=url");
        let resolved = resolve("acct", "q", true, Some(&url_sas), &keyed).unwrap();
        assert_eq!(resolved.describe(), "a SAS token");
        assert_eq!(resolved.secrets, ["sv=1&sig=url"]);
        let resolved = resolve("acct", "q", true, None, &keyed).unwrap();
        assert_eq!(
            resolved.describe(),
            "SAS tokens signed with the account key"
        );
        assert_eq!(resolved.secrets, [AZURITE_KEY]);
        let sas_only = StageConfig {
            sas_token: Some(Secret::new("?sv=2&sig=stage")),
            ..StageConfig::default()
        };
        let resolved = resolve("acct", "q", true, None, &sas_only).unwrap();
        assert_eq!(resolved.describe(), "a SAS token");
        assert_eq!(resolved.secrets, ["sv=2&sig=stage"]);
        // The stage's key of another account is refused, without the key.
        let elsewhere = StageConfig {
            account: Some("other".into()),
            ..keyed
        };
        let Err(error) = resolve("acct", "q", true, None, &elsewhere) else {
            panic!("a key of another account was used")
        };
        assert!(error.0.contains("account `other`"), "{}", error.0);
        assert!(!error.0.contains(AZURITE_KEY));
    }
}
