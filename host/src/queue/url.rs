//! Queue URLs: which service, account and queue a `--queue` URL names.
//!
//! - Amazon SQS: `https://sqs.REGION.amazonaws.com/ACCOUNT/NAME` (also the legacy
//!   `https://REGION.queue.amazonaws.com/…`); any other host with `--queue-kind sqs` is a
//!   custom endpoint (moto, LocalStack, ElasticMQ) whose URL is `ENDPOINT/ACCOUNT/NAME`.
//! - Azure Storage Queues: `https://ACCOUNT.queue.core.windows.net/NAME` (a SAS may follow
//!   as the query); any other host with `--queue-kind azure` is path-style
//!   `ENDPOINT/ACCOUNT/NAME` (Azurite).

use std::fmt;

/// Which queue service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum QueueKind {
    /// Amazon SQS (or an SQS-compatible server).
    Sqs,
    /// Azure Storage Queues (or Azurite).
    Azure,
}

impl QueueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueKind::Sqs => "sqs",
            QueueKind::Azure => "azure",
        }
    }
}

/// A parsed queue URL.
#[derive(Clone, PartialEq, Eq)]
pub enum QueueUrl {
    Sqs {
        /// The queue URL as given (what the SQS API takes), without a query.
        url: String,
        /// The service endpoint: `https://sqs.REGION.amazonaws.com` or the custom one.
        endpoint: String,
        /// From the host, for AWS hosts; a custom endpoint takes the region from the
        /// environment.
        region: Option<String>,
        account: String,
        name: String,
    },
    Azure {
        /// The queue service endpoint: `https://ACCOUNT.queue.core.windows.net` or, path-style,
        /// `http://127.0.0.1:10001/ACCOUNT`.
        endpoint: String,
        account: String,
        name: String,
        /// A SAS token from the URL's query (without the `?`), if any.
        sas: Option<crate::storage::Secret>,
    },
}

/// Why a queue URL cannot be used. Never repeats a query (a SAS).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueUrlError {
    #[error("queue URL {url}: not an http(s) URL")]
    NotHttp { url: String },
    #[error(
        "queue URL {url}: cannot tell from the host {host} whether it is an SQS or an Azure \
         Storage queue: add --queue-kind sqs or --queue-kind azure (`[trigger] queue_kind`)"
    )]
    UnknownHost { url: String, host: String },
    #[error("queue URL {url}: {reason} (expected {expected})")]
    Shape {
        url: String,
        reason: String,
        expected: &'static str,
    },
}

const SQS_SHAPE: &str = "https://sqs.REGION.amazonaws.com/ACCOUNT/NAME";
const AZURE_SHAPE: &str = "https://ACCOUNT.queue.core.windows.net/NAME";

impl QueueUrl {
    /// Parses `url`; `kind` is needed when the host is not an AWS or Azure one.
    pub fn parse(url: &str, kind: Option<QueueKind>) -> Result<QueueUrl, QueueUrlError> {
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (url, None),
        };
        let shown = base.to_owned();
        let (scheme, rest) = base
            .split_once("://")
            .filter(|(s, _)| *s == "https" || *s == "http")
            .ok_or_else(|| QueueUrlError::NotHttp { url: shown.clone() })?;
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host_name = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let aws_region = aws_region(&host_name);
        let azure_account = host_name
            .strip_suffix(".queue.core.windows.net")
            .map(str::to_owned);
        let kind = match (kind, &aws_region, &azure_account) {
            (Some(kind), _, _) => kind,
            (None, Some(_), _) => QueueKind::Sqs,
            (None, _, Some(_)) => QueueKind::Azure,
            (None, None, None) => {
                return Err(QueueUrlError::UnknownHost {
                    url: shown,
                    host: host.to_owned(),
                });
            }
        };
        let shape = |reason: &str, expected| QueueUrlError::Shape {
            url: shown.clone(),
            reason: reason.to_owned(),
            expected,
        };
        match kind {
            QueueKind::Sqs => {
                if query.is_some() {
                    return Err(shape("an SQS queue URL takes no query", SQS_SHAPE));
                }
                let [account, name] = segments[..] else {
                    return Err(shape("the path is not /ACCOUNT/NAME", SQS_SHAPE));
                };
                Ok(QueueUrl::Sqs {
                    url: base.trim_end_matches('/').to_owned(),
                    endpoint: format!("{scheme}://{host}"),
                    region: aws_region,
                    account: account.to_owned(),
                    name: name.to_owned(),
                })
            }
            QueueKind::Azure => {
                let sas = query
                    .filter(|q| !q.is_empty())
                    .map(crate::storage::Secret::new);
                match (azure_account, &segments[..]) {
                    (Some(account), [name]) => Ok(QueueUrl::Azure {
                        endpoint: format!("{scheme}://{host}"),
                        account,
                        name: (*name).to_owned(),
                        sas,
                    }),
                    (Some(_), _) => Err(shape("the path is not /NAME", AZURE_SHAPE)),
                    (None, [account, name]) => Ok(QueueUrl::Azure {
                        endpoint: format!("{scheme}://{host}/{account}"),
                        account: (*account).to_owned(),
                        name: (*name).to_owned(),
                        sas,
                    }),
                    (None, _) => Err(shape(
                        "a path-style Azure queue URL's path is not /ACCOUNT/NAME",
                        "http://127.0.0.1:10001/devstoreaccount1/NAME",
                    )),
                }
            }
        }
    }

    pub fn kind(&self) -> QueueKind {
        match self {
            QueueUrl::Sqs { .. } => QueueKind::Sqs,
            QueueUrl::Azure { .. } => QueueKind::Azure,
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        match self {
            QueueUrl::Sqs { name, .. } | QueueUrl::Azure { name, .. } => name,
        }
    }
}

/// The URL for messages, without a SAS.
impl fmt::Display for QueueUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueUrl::Sqs { url, .. } => f.write_str(url),
            QueueUrl::Azure { endpoint, name, .. } => write!(f, "{endpoint}/{name}"),
        }
    }
}

impl fmt::Debug for QueueUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QueueUrl({self})")
    }
}

/// `REGION` of `sqs.REGION.amazonaws.com` (also `.com.cn`) or `REGION.queue.amazonaws.com`.
fn aws_region(host: &str) -> Option<String> {
    let host = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let region = host
        .strip_prefix("sqs.")
        .or_else(|| host.strip_suffix(".queue"))?;
    (!region.is_empty() && !region.contains('.')).then(|| region.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_and_azure_hosts_say_their_kind() {
        let sqs = QueueUrl::parse(
            "https://sqs.eu-west-1.amazonaws.com/123456789012/stage-events",
            None,
        )
        .unwrap();
        assert_eq!(
            sqs,
            QueueUrl::Sqs {
                url: "https://sqs.eu-west-1.amazonaws.com/123456789012/stage-events".into(),
                endpoint: "https://sqs.eu-west-1.amazonaws.com".into(),
                region: Some("eu-west-1".into()),
                account: "123456789012".into(),
                name: "stage-events".into(),
            }
        );
        let legacy = QueueUrl::parse("https://us-east-2.queue.amazonaws.com/1/q", None).unwrap();
        assert!(matches!(legacy, QueueUrl::Sqs { region: Some(r), .. } if r == "us-east-2"));
        let azure = QueueUrl::parse(
            "https://acme.queue.core.windows.net/blobs?sv=1&sig=SECRET",
            None,
        )
        .unwrap();
        assert_eq!(
            azure.to_string(),
            "https://acme.queue.core.windows.net/blobs"
        );
        assert!(!format!("{azure:?}").contains("SECRET"));
        let QueueUrl::Azure { account, sas, .. } = azure else {
            panic!()
        };
        assert_eq!(account, "acme");
        assert_eq!(sas.unwrap().expose_secret(), "sv=1&sig=SECRET");
    }

    #[test]
    fn custom_endpoints_need_a_kind() {
        let err = QueueUrl::parse("http://127.0.0.1:5000/123456789012/q", None).unwrap_err();
        assert!(err.to_string().contains("--queue-kind sqs"), "{err}");
        let moto =
            QueueUrl::parse("http://127.0.0.1:5000/123456789012/q", Some(QueueKind::Sqs)).unwrap();
        assert!(matches!(&moto, QueueUrl::Sqs { endpoint, region: None, .. }
            if endpoint == "http://127.0.0.1:5000"));
        let azurite = QueueUrl::parse(
            "http://127.0.0.1:10001/devstoreaccount1/events",
            Some(QueueKind::Azure),
        )
        .unwrap();
        assert!(
            matches!(&azurite, QueueUrl::Azure { endpoint, account, name, sas: None }
            if endpoint == "http://127.0.0.1:10001/devstoreaccount1"
                && account == "devstoreaccount1" && name == "events")
        );
    }

    #[test]
    fn bad_shapes_say_what_was_expected() {
        for (url, kind, needle) in [
            ("ftp://x/y", None, "not an http(s) URL"),
            (
                "https://sqs.eu-west-1.amazonaws.com/q",
                None,
                "not /ACCOUNT/NAME",
            ),
            (
                "https://sqs.eu-west-1.amazonaws.com/1/q?x=1",
                None,
                "takes no query",
            ),
            ("https://acme.queue.core.windows.net/a/b", None, "not /NAME"),
            (
                "http://127.0.0.1:10001/q",
                Some(QueueKind::Azure),
                "/ACCOUNT/NAME",
            ),
        ] {
            let err = QueueUrl::parse(url, kind).unwrap_err().to_string();
            assert!(err.contains(needle), "{url}: {err}");
        }
    }
}
