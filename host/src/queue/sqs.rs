//! Amazon SQS (and SQS-compatible servers: moto, LocalStack, ElasticMQ) as a
//! [`QueueClient`]: `aws-sdk-sqs` over aws-smithy's hyper client with rustls + ring (no
//! aws-config, no aws-lc).
//!
//! - Endpoint: the queue URL's scheme and host (a custom endpoint works as AWS does).
//! - Region: the URL's (`sqs.REGION.amazonaws.com`), else `AWS_REGION`/`AWS_DEFAULT_REGION`,
//!   else the stage's region, else [`FALLBACK_REGION`].
//! - Credentials: the stage's chain, object_store's S3 credential provider built as the stage
//!   builds it (the `[source]` keys when set, else environment keys, web identity, container
//!   and instance credentials), bridged to the SDK ([`StageCredentials`]).
//! - Long polling (`WaitTimeSeconds`), `ApproximateReceiveCount`, `ChangeMessageVisibility`,
//!   `DeleteMessage`. A server that cannot be reached is [`QueueError::Connect`] after
//!   [`MAX_ATTEMPTS`] attempts, each connection bounded by [`CONNECT_TIMEOUT`].

use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, error::CredentialsError};
use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Region};
use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsCredentialProvider};

use super::{Message, QueueClient, QueueError, QueueUrl};
use crate::storage::{StageConfig, block_on};

/// The region when neither the URL, the environment nor the stage says one.
pub const FALLBACK_REGION: &str = "us-east-1";
/// Attempts of one call (the SDK's standard retries, with back-off).
pub const MAX_ATTEMPTS: u32 = 3;
/// Longest time to open a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest answer time beyond a receive's long-polling wait.
pub const ANSWER_MARGIN: Duration = Duration::from_secs(20);

/// An SQS queue.
pub struct SqsClient {
    client: aws_sdk_sqs::Client,
    /// The queue URL as the API takes it.
    url: String,
}

/// The region for `url`: see the module doc.
pub fn region_of(
    url: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
    stage: Option<&str>,
) -> String {
    url.map(str::to_owned)
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .filter(|r| !r.trim().is_empty())
        .or_else(|| stage.map(str::to_owned))
        .unwrap_or_else(|| FALLBACK_REGION.to_owned())
}

impl SqsClient {
    /// A client for `url` with the credentials of the stage configured by `stage`.
    pub fn new(url: &QueueUrl, stage: &StageConfig) -> Result<SqsClient, QueueError> {
        let QueueUrl::Sqs {
            url: queue_url,
            endpoint,
            region,
            ..
        } = url
        else {
            return Err(QueueError::Service {
                queue: url.to_string(),
                operation: "connect",
                reason: "not an SQS queue URL".into(),
            });
        };
        let region = region_of(
            region.as_deref(),
            |name| std::env::var(name).ok(),
            stage.region.as_deref(),
        );
        let credentials = StageCredentials::new(queue_url, stage, &region)?;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http)
            .endpoint_url(endpoint.clone())
            .region(Region::new(region))
            .credentials_provider(credentials)
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .build(),
            )
            .build();
        Ok(SqsClient {
            client: aws_sdk_sqs::Client::from_conf(config),
            url: queue_url.clone(),
        })
    }

    fn error<E, R>(&self, operation: &'static str, error: SdkError<E, R>) -> QueueError
    where
        E: std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let reason = DisplayErrorContext(&error).to_string();
        if reason.to_ascii_lowercase().contains("credentials") {
            return QueueError::Credentials {
                queue: self.url.clone(),
                reason,
            };
        }
        match error {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => QueueError::Connect {
                queue: self.url.clone(),
                reason,
            },
            _ => QueueError::Service {
                queue: self.url.clone(),
                operation,
                reason,
            },
        }
    }
}

/// Seconds as the SQS API takes them.
fn secs(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
}

impl QueueClient for SqsClient {
    fn receive(
        &self,
        max: u32,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        let call = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(i32::try_from(max).unwrap_or(i32::MAX))
            .visibility_timeout(secs(visibility))
            .wait_time_seconds(secs(wait))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .customize()
            .config_override(
                aws_sdk_sqs::Config::builder().timeout_config(
                    TimeoutConfig::builder()
                        .connect_timeout(CONNECT_TIMEOUT)
                        .operation_attempt_timeout(wait + ANSWER_MARGIN)
                        .build(),
                ),
            );
        let output = block_on(call.send())?.map_err(|e| self.error("ReceiveMessage", e))?;
        Ok(output
            .messages()
            .iter()
            .filter_map(|m| {
                let receipt = m.receipt_handle()?.to_owned();
                Some(Message {
                    id: m.message_id().unwrap_or_default().to_owned(),
                    receipt,
                    body: m.body().unwrap_or_default().as_bytes().to_vec(),
                    receive_count: m
                        .attributes()
                        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                        .and_then(|n| n.parse().ok()),
                })
            })
            .collect())
    }

    fn set_visibility(
        &self,
        message: &mut Message,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        let call = self
            .client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(&message.receipt)
            .visibility_timeout(secs(visibility));
        block_on(call.send())?.map_err(|e| self.error("ChangeMessageVisibility", e))?;
        Ok(())
    }

    fn delete(&self, message: &Message) -> Result<(), QueueError> {
        let call = self
            .client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&message.receipt);
        block_on(call.send())?.map_err(|e| self.error("DeleteMessage", e))?;
        Ok(())
    }
}

/// object_store's S3 credential provider (the stage's chain) as the SDK's.
#[derive(Debug)]
pub struct StageCredentials {
    provider: AwsCredentialProvider,
}

impl StageCredentials {
    /// The provider object_store builds from the environment and the stage's keys.
    pub fn new(
        queue: &str,
        stage: &StageConfig,
        region: &str,
    ) -> Result<StageCredentials, QueueError> {
        // object_store's HTTP client needs the process's rustls provider.
        crate::tls::install_crypto_provider();
        // A bucket name is required to build; only the credentials are used.
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name("stagepush-queue-credentials")
            .with_region(region);
        if let (Some(id), Some(secret)) = (&stage.access_key_id, &stage.secret_access_key) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret.expose_secret())
                .with_config(
                    AmazonS3ConfigKey::Token,
                    stage
                        .session_token
                        .as_ref()
                        .map(|t| t.expose_secret())
                        .unwrap_or(""),
                );
        }
        no_chain_left(&builder, queue)?;
        let store = builder.build().map_err(|e| QueueError::Credentials {
            queue: queue.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(StageCredentials {
            provider: Arc::clone(store.credentials()),
        })
    }
}

/// As for an S3 stage: when the only source left is the instance metadata service and it is
/// not there, say so now (else every call would wait for it).
fn no_chain_left(builder: &AmazonS3Builder, queue: &str) -> Result<(), QueueError> {
    use crate::storage::credentials;
    credentials::probe_s3_metadata_if_only_source(builder).map_err(|detail| {
        QueueError::Credentials {
            queue: queue.to_owned(),
            reason: credentials::no_credentials(crate::storage::StoreKind::S3, &detail.to_string()),
        }
    })
}

impl ProvideCredentials for StageCredentials {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let provider = Arc::clone(&self.provider);
        provider::future::ProvideCredentials::new(async move {
            let credential = provider
                .get_credential()
                .await
                .map_err(CredentialsError::provider_error)?;
            Ok(Credentials::new(
                credential.key_id.clone(),
                credential.secret_key.clone(),
                credential.token.clone().filter(|t| !t.is_empty()),
                None,
                "stagepush-stage-chain",
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_the_url_then_the_environment_then_the_stage() {
        let env = |name: &str| (name == "AWS_DEFAULT_REGION").then(|| "eu-north-1".to_owned());
        let none = |_: &str| None;
        assert_eq!(region_of(Some("eu-west-1"), env, Some("x")), "eu-west-1");
        assert_eq!(region_of(None, env, Some("x")), "eu-north-1");
        assert_eq!(region_of(None, none, Some("ap-south-1")), "ap-south-1");
        assert_eq!(region_of(None, none, None), FALLBACK_REGION);
    }

    #[test]
    fn no_credentials_anywhere_is_said_at_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let nothing = AmazonS3Builder::new().with_config(
            AmazonS3ConfigKey::MetadataEndpoint,
            format!("http://127.0.0.1:{port}"),
        );
        let err = no_chain_left(&nothing, "q").unwrap_err();
        assert!(matches!(err, QueueError::Credentials { .. }), "{err:?}");
        assert!(
            err.to_string().contains("no AWS credentials found"),
            "{err}"
        );
        let keys = AmazonS3Builder::new()
            .with_access_key_id("id")
            .with_secret_access_key("secret");
        assert!(no_chain_left(&keys, "q").is_ok());
    }

    #[test]
    fn unreachable_servers_are_connect_errors_soon() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = QueueUrl::parse(
            &format!("http://127.0.0.1:{port}/123456789012/q"),
            Some(super::super::QueueKind::Sqs),
        )
        .unwrap();
        let stage = StageConfig {
            access_key_id: Some("test".into()),
            secret_access_key: Some(crate::storage::Secret::new("sekrit-value")),
            ..StageConfig::default()
        };
        let client = SqsClient::new(&url, &stage).unwrap();
        let started = std::time::Instant::now();
        let err = client
            .receive(1, Duration::from_secs(1), Duration::from_secs(1))
            .unwrap_err();
        assert!(matches!(err, QueueError::Connect { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(!err.to_string().contains("sekrit-value"), "{err}");
    }
}
