//! [`MockToken`]: the mock's own API token type. The mock is a test oracle, so it shares no
//! type with the product it checks (the product's token is `storage::ApiToken`): it holds
//! the token clients must send as `Authorization: Bearer TOKEN`, never shown by `Debug` or
//! `Display`.

use std::fmt;
use std::str::FromStr;

/// What `Debug` and `Display` print instead of the token.
const REDACTED: &str = "[redacted]";

/// The token the mock expects (`--token`).
#[derive(Clone, PartialEq, Eq)]
pub struct MockToken(String);

impl MockToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The `Authorization` header value a client must send.
    pub(crate) fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl fmt::Debug for MockToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MockToken({REDACTED})")
    }
}

impl fmt::Display for MockToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl FromStr for MockToken {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(MockToken::new(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_redacted_and_sent_as_bearer() {
        let token: MockToken = "s3cr3t".parse().unwrap();
        assert_eq!(format!("{token:?}"), "MockToken([redacted])");
        assert_eq!(token.to_string(), "[redacted]");
        assert_eq!(token.bearer(), "Bearer s3cr3t");
    }
}
