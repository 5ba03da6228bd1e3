//! The one secret type: store keys and SAS tokens ([`Secret`]), the CluedIn API token
//! ([`ApiToken`]), the relay's and `serve`'s shared secrets. Its `Debug` and `Display`
//! never show the value; only [`Secret::expose_secret`] does, for the client that needs it.

use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Deserializer};

/// What a secret is, for its redacted `Debug` output.
pub trait SecretKind {
    /// What `Debug` prints instead of the value.
    const DEBUG: &'static str;
}

/// A secret setting (key, token) of a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting;

impl SecretKind for Setting {
    const DEBUG: &'static str = "<redacted>";
}

/// The CluedIn API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token;

impl SecretKind for Token {
    const DEBUG: &'static str = "ApiToken([redacted])";
}

/// The CluedIn API token: a [`Secret`] whose `Debug` says what it is.
pub type ApiToken = Secret<Token>;

/// What `Display` prints instead of a secret's value.
pub const REDACTED: &str = "[redacted]";

/// A secret value. `Debug` prints the kind's placeholder (`<redacted>`,
/// `ApiToken([redacted])`), `Display` prints [`REDACTED`]; read it with
/// [`Secret::expose_secret`]. Deserialised from a plain string.
pub struct Secret<K: SecretKind = Setting> {
    value: String,
    kind: PhantomData<K>,
}

impl<K: SecretKind> Secret<K> {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            kind: PhantomData,
        }
    }

    /// The secret itself: pass it to a client, never to a log or a message.
    pub fn expose_secret(&self) -> &str {
        &self.value
    }
}

impl<K: SecretKind> Clone for Secret<K> {
    fn clone(&self) -> Self {
        Self::new(self.value.clone())
    }
}

impl<K: SecretKind> PartialEq for Secret<K> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<K: SecretKind> Eq for Secret<K> {}

impl<K: SecretKind> fmt::Debug for Secret<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(K::DEBUG)
    }
}

impl<K: SecretKind> fmt::Display for Secret<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<'de, K: SecretKind> Deserialize<'de> for Secret<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neither_debug_nor_display_nor_a_config_shows_the_value() {
        let setting: Secret = toml::from_str::<std::collections::BTreeMap<String, Secret>>(
            "key = \"topsecretvalue\"",
        )
        .unwrap()
        .remove("key")
        .unwrap();
        assert_eq!(format!("{setting:?}"), "<redacted>");
        assert_eq!(setting.to_string(), "[redacted]");
        assert_eq!(setting.expose_secret(), "topsecretvalue");
        let token = ApiToken::new("topsecretvalue");
        assert_eq!(format!("{token:?}"), "ApiToken([redacted])");
        assert_eq!(token.to_string(), "[redacted]");
        assert_eq!(token, token.clone());
    }
}
