//! `https://` stage URLs (Azure account hosts, S3 and GCS hosts) and what an Azure or
//! S3 host name says: the account and sovereign-cloud endpoint, the bucket and region.

use percent_encoding::percent_decode_str;

use super::checks::{check_bucket, check_container, check_key, split_first_segment};
use super::{StageUrl, StoreKind, UrlError};
use crate::storage::secret::Secret;

impl StageUrl {
    /// `https://` URLs: Azure account hosts, S3 and GCS hosts.
    pub(super) fn parse_https(rest: &str) -> Result<Self, UrlError> {
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        if rest.contains('#') {
            return Err(UrlError::Fragment);
        }
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut host = host.to_ascii_lowercase();
        // The default port names the same server.
        if let Some(bare) = host.strip_suffix(":443") {
            host = bare.to_owned();
        }
        if host.contains('@') {
            return Err(UrlError::Credentials);
        }
        let path = percent_decode_str(path)
            .decode_utf8()
            .map_err(|_| UrlError::NotUtf8)?
            .into_owned();
        check_key(&path)?;
        let (first, key) = split_first_segment(&path);
        let sas = match query {
            Some(query) if !query.is_empty() => Some(query),
            _ => None,
        };
        if let Some(azure) = AzureHost::parse_opt(&host)? {
            if first.is_empty() {
                return Err(UrlError::NoContainer);
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
            return Err(UrlError::QueryNotAzure);
        }
        if host == "storage.googleapis.com" {
            if first.is_empty() {
                return Err(UrlError::NoBucket);
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
                return Err(UrlError::NoBucket);
            }
            check_bucket(bucket, "S3 bucket")?;
            let mut url = Self::remote(StoreKind::S3, bucket, key, format!("s3://{bucket}/"));
            url.region = s3.region.map(str::to_owned);
            return Ok(url);
        }
        Err(UrlError::UnknownHost(host))
    }
}

/// An Azure storage account host: `ACCOUNT.blob.core.windows.net`, `ACCOUNT.dfs.…`, and
/// the same under sovereign clouds' suffixes.
pub(super) struct AzureHost {
    pub(super) account: String,
    /// The blob endpoint when the suffix is not the public cloud's.
    pub(super) endpoint: Option<String>,
}

impl AzureHost {
    pub(super) fn parse(host: &str) -> Result<Self, UrlError> {
        Self::parse_opt(&host.to_ascii_lowercase())?
            .ok_or_else(|| UrlError::NotAzureHost(host.to_owned()))
    }

    /// `None` when `host` is not an account host at all.
    fn parse_opt(host: &str) -> Result<Option<Self>, UrlError> {
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
            return Err(UrlError::AzurePort);
        }
        let valid = (3..=24).contains(&account.len())
            && account
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid {
            return Err(UrlError::InvalidAccount(account.to_owned()));
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
