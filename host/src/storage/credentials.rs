//! Cloud credentials that cannot be found, said plainly: which credential is missing and
//! where it was looked for.
//!
//! object_store falls back to the cloud's metadata service (`169.254.169.254`) when no
//! credential is configured; off the cloud that fails as `Generic S3 error: Error
//! performing PUT http://169.254.169.254/latest/api/token …`, after retrying a connection
//! that cannot succeed. So:
//! - S3: when the instance metadata service is the only source left, the client is not
//!   built unless its address accepts a TCP connection within [`METADATA_PROBE_TIMEOUT`]
//!   ([`probe_metadata`]); otherwise [`no_credentials`] names every place looked in.
//! - Every store: an error that names the metadata service ([`explain`]) gets the same
//!   sentence in front.
//!
//! No message here holds a credential's value, only the names of settings and variables.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::url::StoreKind;

/// The metadata services' address (AWS IMDS, Azure managed identity, GCE metadata).
pub const METADATA_HOST: &str = "169.254.169.254";
/// How long the S3 client waits for the instance metadata service to accept a connection
/// before it says no credentials were found (on EC2 it answers in microseconds).
pub const METADATA_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Where each store's client looks for credentials, in order.
fn looked_in(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::S3 => {
            "the stage's `access_key_id`/`secret_access_key`, AWS_ACCESS_KEY_ID/\
             AWS_SECRET_ACCESS_KEY, AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, \
             AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/_FULL_URI, and the EC2 instance metadata \
             service (AWS_METADATA_ENDPOINT, default http://169.254.169.254); stagepush does \
             not read AWS_PROFILE or ~/.aws: export the profile's keys (`eval \"$(aws configure \
             export-credentials --format env)\"`), or set `skip_signature = true` for a public \
             bucket"
        }
        StoreKind::Azure => {
            "the stage's `account_key`/`sas_token` (or a SAS in the URL), AZURE_STORAGE_ACCOUNT_KEY, \
             AZURE_STORAGE_SAS_KEY/AZURE_STORAGE_SAS_TOKEN, AZURE_CLIENT_ID with \
             AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE, `use_emulator`/\
             AZURE_STORAGE_USE_EMULATOR for Azurite, and the managed identity endpoint at \
             http://169.254.169.254"
        }
        StoreKind::Gcs => {
            "the stage's `service_account_path`, GOOGLE_SERVICE_ACCOUNT/\
             GOOGLE_SERVICE_ACCOUNT_PATH/GOOGLE_APPLICATION_CREDENTIALS (a service-account or \
             `gcloud auth application-default login` JSON file), \
             ~/.config/gcloud/application_default_credentials.json, and the GCE metadata \
             server at http://169.254.169.254"
        }
        StoreKind::Local => "nowhere (a local folder needs none)",
    }
}

/// The cloud's name in messages.
fn cloud(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::S3 => "AWS",
        StoreKind::Azure => "Azure",
        StoreKind::Gcs => "Google Cloud",
        StoreKind::Local => "local",
    }
}

/// `no AWS credentials found (looked in …): DETAIL`.
pub fn no_credentials(kind: StoreKind, detail: &str) -> String {
    format!(
        "no {} credentials found (looked in {}): {detail}",
        cloud(kind),
        looked_in(kind)
    )
}

/// A store error as people should read it: one that names the metadata service (the last
/// place credentials are looked for) gets [`no_credentials`] in front.
pub fn explain(kind: StoreKind, message: &str) -> String {
    let about_metadata = message.contains(METADATA_HOST)
        || message.contains("metadata.google.internal")
        || message.contains("Error performing token request");
    if kind != StoreKind::Local && about_metadata && !message.starts_with("no ") {
        no_credentials(kind, &format!("the metadata service failed: {message}"))
    } else {
        message.to_string()
    }
}

/// Whether the metadata service at `endpoint` (`http://HOST[:PORT]`) accepts a TCP
/// connection within [`METADATA_PROBE_TIMEOUT`]; the error says why not.
pub fn probe_metadata(endpoint: &str) -> Result<(), MetadataProbeError> {
    let authority = endpoint
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap_or_default();
    let address = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let endpoint = endpoint.to_owned();
    let addrs = match address.to_socket_addrs() {
        Ok(addrs) => addrs,
        Err(source) => return Err(MetadataProbeError::Resolve { endpoint, source }),
    };
    let mut last = MetadataProbeError::NoAddress {
        endpoint: endpoint.clone(),
    };
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, METADATA_PROBE_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(source) => {
                last = MetadataProbeError::Unreachable {
                    endpoint: endpoint.clone(),
                    source,
                }
            }
        }
    }
    Err(last)
}

/// S3: when `builder` has no credential source configured but the instance metadata
/// service (no keys, web identity or container credentials), whether that service is there.
pub fn probe_s3_metadata_if_only_source(
    builder: &object_store::aws::AmazonS3Builder,
) -> Result<(), MetadataProbeError> {
    use object_store::aws::AmazonS3ConfigKey as K;
    let set = |key: K| {
        builder
            .get_config_value(&key)
            .is_some_and(|v| !v.is_empty())
    };
    let keys = set(K::AccessKeyId) && set(K::SecretAccessKey);
    let web_identity = set(K::WebIdentityTokenFile) && set(K::RoleArn);
    let container = set(K::ContainerCredentialsRelativeUri)
        || (set(K::ContainerCredentialsFullUri) && set(K::ContainerAuthorizationTokenFile));
    if keys || web_identity || container {
        return Ok(());
    }
    let endpoint = builder
        .get_config_value(&K::MetadataEndpoint)
        .unwrap_or_else(|| format!("http://{METADATA_HOST}"));
    probe_metadata(&endpoint)
}

/// Why the instance metadata service is not there ([`probe_metadata`]).
#[derive(Debug, thiserror::Error)]
pub enum MetadataProbeError {
    #[error("the instance metadata service {endpoint}: {source}")]
    Resolve {
        endpoint: String,
        source: std::io::Error,
    },
    #[error("the instance metadata service {endpoint} has no address")]
    NoAddress { endpoint: String },
    #[error("the instance metadata service {endpoint} is not reachable: {source}")]
    Unreachable {
        endpoint: String,
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_failures_say_that_no_credentials_were_found_and_where_they_were_looked_for() {
        let imds = "Generic S3 error: Error performing PUT http://169.254.169.254/latest/api/token in 1.2s - HTTP status client error (403 Forbidden)";
        let text = explain(StoreKind::S3, imds);
        assert!(
            text.starts_with("no AWS credentials found (looked in the stage's `access_key_id`"),
            "{text}"
        );
        assert!(
            text.contains("AWS_ACCESS_KEY_ID") && text.contains("AWS_PROFILE"),
            "{text}"
        );
        assert!(text.ends_with(imds), "{text}");
        let azure = explain(
            StoreKind::Azure,
            "Error performing token request: http://169.254.169.254/metadata/identity/oauth2/token",
        );
        assert!(azure.starts_with("no Azure credentials found"), "{azure}");
        assert!(azure.contains("AZURE_STORAGE_ACCOUNT_KEY"), "{azure}");
        let gcs = explain(StoreKind::Gcs, "Error performing token request: …");
        assert!(gcs.contains("GOOGLE_APPLICATION_CREDENTIALS"), "{gcs}");
        // Other errors stay as they are.
        let other = "Generic S3 error: 403 Forbidden: SignatureDoesNotMatch";
        assert_eq!(explain(StoreKind::S3, other), other);
    }

    #[test]
    fn a_metadata_service_that_is_not_there_is_found_out_quickly() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let started = std::time::Instant::now();
        let error = probe_metadata(&format!("http://127.0.0.1:{port}")).unwrap_err();
        assert!(started.elapsed() < 10 * METADATA_PROBE_TIMEOUT);
        assert!(
            matches!(error, MetadataProbeError::Unreachable { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("not reachable"), "{error}");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        probe_metadata(&format!("http://127.0.0.1:{port}/")).unwrap();
    }
}
