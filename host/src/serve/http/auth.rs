//! The shared secret of `serve`'s event routes: the `X-Stagepush-Token` header or the
//! `token` query parameter, compared by SHA-256 digest in constant time.

use hyper::Request;
use hyper::body::Incoming;
use sha2::{Digest, Sha256};

use super::{App, TOKEN_HEADER};

impl App {
    /// Whether `req` carries the shared secret (always, when none is configured).
    pub(super) fn authorized(&self, req: &Request<Incoming>) -> bool {
        let Some(expected) = &self.auth else {
            return true;
        };
        let header = req
            .headers()
            .get(TOKEN_HEADER)
            .map(|value| value.as_bytes().to_vec());
        let query = req
            .uri()
            .query()
            .and_then(token_from_query)
            .map(String::into_bytes);
        [header, query]
            .into_iter()
            .flatten()
            .any(|given| constant_time_eq(&digest(&given), expected))
    }
}

pub(super) fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `token` parameter of a query string, form-decoded.
fn token_from_query(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (name == "token").then(|| {
            percent_encoding::percent_decode_str(&value.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_token_is_form_decoded() {
        assert_eq!(
            token_from_query("a=1&token=s%2Fx+y").as_deref(),
            Some("s/x y")
        );
        assert_eq!(token_from_query("token").as_deref(), Some(""));
        assert_eq!(token_from_query("tokens=1"), None);
    }

    #[test]
    fn digests_compare_equal_only_when_equal() {
        assert!(constant_time_eq(&digest(b"a"), &digest(b"a")));
        assert!(!constant_time_eq(&digest(b"a"), &digest(b"b")));
    }
}
