//! How a 3xx answer is reported. The sink follows no redirect (a 301/302/303 to a sign-in
//! page answering 200 would be taken for an acknowledgement; a 307/308 would send customer
//! records to another host), so a 3xx stops the run with [`super::SinkError::Redirect`],
//! naming where the endpoint pointed.
//!
//! The `Location` is resolved against the endpoint URL (a relative one is shown absolute) and
//! redacted: a redirect to a sign-in page often carries a session, a SAML request or a token
//! in its query, so every query value, the user info (name and password) and the fragment
//! are replaced by `[redacted]`. The scheme, host, port and path stay: they are what the user
//! needs to check the URL.

use reqwest::Url;

/// What replaces a redacted part.
pub const REDACTED: &str = "[redacted]";
/// Shown when a 3xx carries no `Location` header.
pub const NO_LOCATION: &str = "(no Location header)";
/// Longest location shown, characters (longer ones are cut, with `…`).
pub const MAX_LOCATION_CHARS: usize = 300;

/// The `Location` of a 3xx answer to a request to `endpoint`, resolved and redacted.
pub fn describe_location(endpoint: &Url, location: Option<&[u8]>) -> String {
    let Some(raw) = location else {
        return NO_LOCATION.to_string();
    };
    let raw = String::from_utf8_lossy(raw);
    let raw = raw.trim();
    let shown = match endpoint.join(raw) {
        Ok(url) => redact_url(url),
        // Not a URL even relative to the endpoint: keep what precedes a query or fragment.
        Err(_) => {
            let end = raw.find(['?', '#']).unwrap_or(raw.len());
            let mut s: String = raw[..end].chars().filter(|c| !c.is_control()).collect();
            if end < raw.len() {
                s.push_str(&format!("?{REDACTED}"));
            }
            s
        }
    };
    cut(shown)
}

fn redact_url(mut url: Url) -> String {
    // A user name is as likely a key as a name: the whole user info goes.
    let userinfo = !url.username().is_empty() || url.password().is_some();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let query = url.query().map(redact_query);
    let fragment = url.fragment().is_some();
    url.set_query(None);
    url.set_fragment(None);
    let mut s = url.to_string();
    if userinfo && let Some(at) = s.find("://") {
        s.insert_str(at + 3, &format!("{REDACTED}@"));
    }
    if let Some(q) = query {
        s.push('?');
        s.push_str(&q);
    }
    if fragment {
        s.push('#');
        s.push_str(REDACTED);
    }
    s
}

/// `a=1&b=&c` → `a=[redacted]&b=&[redacted]`: names stay, values go (a bare word may be a
/// token itself).
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, "")) => format!("{name}="),
            Some((name, _)) => format!("{name}={REDACTED}"),
            None if pair.is_empty() => String::new(),
            None => REDACTED.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn cut(s: String) -> String {
    if s.chars().count() <= MAX_LOCATION_CHARS {
        return s;
    }
    let mut out: String = s.chars().take(MAX_LOCATION_CHARS).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Url {
        Url::parse("https://app.example.com/upload/api/endpoint/6F5B").unwrap()
    }

    fn show(location: &str) -> String {
        describe_location(&endpoint(), Some(location.as_bytes()))
    }

    #[test]
    fn relative_locations_are_resolved_against_the_endpoint() {
        assert_eq!(show("/login"), "https://app.example.com/login");
        assert_eq!(
            show("other"),
            "https://app.example.com/upload/api/endpoint/other"
        );
        assert_eq!(
            show("https://new.example.com/upload/api/endpoint/6F5B"),
            "https://new.example.com/upload/api/endpoint/6F5B"
        );
    }

    #[test]
    fn query_values_credentials_and_fragments_are_redacted() {
        let shown = show(
            "https://user:pa55@sso.example.com/saml?SAMLRequest=s3cr3t&RelayState=x%2Fy&empty=&bare#access_token=t0k",
        );
        assert_eq!(
            shown,
            "https://[redacted]@sso.example.com/saml?SAMLRequest=[redacted]&RelayState=[redacted]&empty=&[redacted]#[redacted]"
        );
        for secret in ["s3cr3t", "pa55", "user", "t0k", "x%2Fy"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    #[test]
    fn a_missing_or_odd_location_is_described() {
        assert_eq!(describe_location(&endpoint(), None), NO_LOCATION);
        // Not resolvable: the part before the query is kept.
        let odd = describe_location(
            &endpoint(),
            Some(b"http://[bad-host/path?token=abc".as_slice()),
        );
        assert_eq!(odd, "http://[bad-host/path?[redacted]");
        let long = show(&format!("/{}", "a".repeat(1000)));
        assert_eq!(long.chars().count(), MAX_LOCATION_CHARS + 1);
        assert!(long.ends_with('…'));
        // Bytes that are not UTF-8 are shown, not refused.
        let lossy = describe_location(&endpoint(), Some(b"/l\xffgin?k=v".as_slice()));
        assert!(lossy.starts_with("https://app.example.com/l"), "{lossy}");
        assert!(lossy.ends_with("?k=[redacted]"), "{lossy}");
    }
}
