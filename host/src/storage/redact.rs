//! Keeping credentials out of messages: [`Redactor`] scrubs what a store client said
//! (known secret values, signed query strings, signature parameters), [`redact_url`]
//! hides the query and user info of a URL the user gave.

use super::store::StageConfig;
use super::url::{StageUrl, StoreKind};

/// Environment variables whose values are secrets (scrubbed from messages).
const SECRET_VARIABLES: [&str; 12] = [
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_TOKEN",
    "AZURE_CLIENT_SECRET",
    "AZURE_STORAGE_CLIENT_SECRET",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
];

fn environment_secrets() -> Vec<String> {
    SECRET_VARIABLES
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .collect()
}

/// Removes secrets from messages a store client produced: known secret values, URL query
/// strings and signature parameters.
pub struct Redactor {
    secrets: Vec<String>,
    /// The store the messages come from (for [`Redactor::explain`]).
    kind: Option<StoreKind>,
}

impl Redactor {
    pub fn new(mut secrets: Vec<String>) -> Self {
        // Very short values would blank ordinary words.
        secrets.retain(|secret| secret.len() >= 6);
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        Self {
            secrets,
            kind: None,
        }
    }

    /// A redactor for the clients of `url` with `config`: the configuration's secrets, the
    /// URL's SAS token and the secrets of the environment ([`SECRET_VARIABLES`]).
    pub fn for_store(config: &StageConfig, url: &StageUrl) -> Self {
        let mut secrets = config.secrets();
        secrets.extend(url.sas_token().map(|sas| sas.expose_secret().to_owned()));
        secrets.extend(environment_secrets());
        Self {
            kind: Some(url.kind()),
            ..Self::new(secrets)
        }
    }

    /// A store client's error as people should read it: [`Redactor::scrub`]bed, and a
    /// failure of the cloud's metadata service said as missing credentials, with where
    /// they were looked for (`credentials::explain`).
    pub fn explain(&self, message: &str) -> String {
        let scrubbed = self.scrub(message);
        match self.kind {
            Some(kind) => super::credentials::explain(kind, &scrubbed),
            None => scrubbed,
        }
    }

    /// `message` without the known secrets, signed query strings and signature values.
    pub fn scrub(&self, message: &str) -> String {
        let mut out = message.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "<redacted>");
            }
        }
        strip_queries(&out)
    }
}

/// True for a query string that may carry credentials (a SAS token, a presigned URL).
fn looks_signed(query: &str) -> bool {
    let query = query.to_ascii_lowercase();
    ["sig=", "x-amz-", "token", "key=", "credential"]
        .iter()
        .any(|marker| query.contains(marker))
}

/// Replaces the query string of every URL in `text` that may carry credentials with
/// `?<redacted>`, and the values of signature-like parameters anywhere.
fn strip_queries(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (before, url) = rest.split_at(start);
        out.push_str(before);
        let end = url
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '<' | '>' | ','))
            .unwrap_or(url.len());
        let token = &url[..end];
        match token.split_once('?') {
            Some((path, query)) if looks_signed(query) => {
                out.push_str(path);
                out.push_str("?<redacted>");
            }
            _ => out.push_str(token),
        }
        rest = &url[end..];
    }
    out.push_str(rest);
    for parameter in [
        "sig=",
        "X-Amz-Signature=",
        "X-Amz-Security-Token=",
        "X-Amz-Credential=",
    ] {
        let mut scrubbed = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(at) = rest.find(parameter) {
            let value_start = at + parameter.len();
            scrubbed.push_str(&rest[..value_start]);
            let value_end = rest[value_start..]
                .find(|c: char| c.is_whitespace() || matches!(c, '&' | ')' | '"' | ','))
                .map_or(rest.len(), |end| value_start + end);
            if value_end > value_start {
                scrubbed.push_str("<redacted>");
            }
            rest = &rest[value_end..];
        }
        scrubbed.push_str(rest);
        out = scrubbed;
    }
    out
}

/// `text` with a query string and URL credentials replaced, for error messages.
pub fn redact_url(text: &str) -> String {
    let mut out = match text.split_once('?') {
        Some((before, _)) => format!("{before}?<redacted>"),
        None => text.to_owned(),
    };
    if let Some((scheme, rest)) = out.split_once("://") {
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some((user, host)) = authority.rsplit_once('@')
            && user.contains(':')
        {
            out = format!("{scheme}://<redacted>@{host}{}", &rest[authority_end..]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbing_removes_secrets_and_queries() {
        let redactor = Redactor::new(vec!["topsecretkey".into()]);
        let message = "error sending request for url (https://a.blob.core.windows.net/c/x?sv=1&sig=abc%2F): key topsecretkey, sig=zzz&se=1";
        let scrubbed = redactor.scrub(message);
        assert!(!scrubbed.contains("topsecretkey"), "{scrubbed}");
        assert!(!scrubbed.contains("abc%2F"), "{scrubbed}");
        assert!(!scrubbed.contains("zzz"), "{scrubbed}");
        assert!(scrubbed.contains("https://a.blob.core.windows.net/c/x?<redacted>"));
        // A listing's query says what was asked and is kept.
        let listing = "GET http://127.0.0.1:1/stage?list-type=2&prefix=a%2F failed";
        assert_eq!(redactor.scrub(listing), listing);
    }

    #[test]
    fn redaction() {
        assert_eq!(redact_url("https://a/b?sig=x"), "https://a/b?<redacted>");
        assert_eq!(redact_url("s3://k:s@b/x"), "s3://<redacted>@b/x");
        assert_eq!(
            redact_url("abfss://c@a.dfs.core.windows.net/x"),
            "abfss://c@a.dfs.core.windows.net/x"
        );
    }
}
