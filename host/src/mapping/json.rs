//! Just enough JSON for a mapping, over the text as it is (no tree, no reordering, numbers
//! kept exactly as written): an object's entries in order, the value at a path, the length
//! of an array or object, and a JSON value as a [`V`].

use std::borrow::Cow;

use super::error::SyntaxError;
use super::value::V;

/// One step of a JSON path: a key or an array index.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Parses `a.b[0].c` (an optional leading `$` or `$.`; `["odd key"]` for keys with dots).
pub fn parse_path(p: &str) -> Result<Vec<Step>, SyntaxError> {
    let p = p.trim();
    let mut rest = p.strip_prefix('$').unwrap_or(p);
    let mut steps = Vec::new();
    let bad = || SyntaxError(format!("'{p}' is not a JSON path (like a.b[0].c)"));
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(bad)?;
            let inner = r[..end].trim();
            if let Some(q) = inner.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
                steps.push(Step::Key(q.to_string()));
            } else {
                steps.push(Step::Index(inner.parse().map_err(|_| bad())?));
            }
            rest = &r[end + 1..];
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(bad());
            }
            steps.push(Step::Key(r[..end].to_string()));
            rest = &r[end..];
        }
    }
    Ok(steps)
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The end of the value starting at `i` (the text is valid JSON).
fn skip(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'"') => skip_string(b, i),
        Some(b'{') | Some(b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            b.len()
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']') && !b[j].is_ascii_whitespace()
            {
                j += 1;
            }
            j
        }
    }
}

fn skip_string(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return j + 1,
            _ => j += 1,
        }
    }
    b.len()
}

/// A JSON string's value (its text without the quotes when it has no escapes).
fn string_value(raw: &str) -> Cow<'_, str> {
    let inner = &raw[1..raw.len() - 1];
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    Cow::Owned(serde_json::from_str::<String>(raw).unwrap_or_default())
}

/// Checks that `text` is JSON.
pub fn check(text: &str) -> Result<(), serde_json::Error> {
    serde_json::from_str::<serde::de::IgnoredAny>(text).map(|_| ())
}

/// The entries of a JSON object, in order (`None`: not an object). `text` must be JSON.
pub fn entries(text: &str) -> Option<Vec<(Cow<'_, str>, &str)>> {
    let b = text.as_bytes();
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let mut out = Vec::new();
    i = ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(out);
    }
    loop {
        let key_end = skip_string(b, i);
        let key = string_value(&text[i..key_end]);
        i = ws(b, key_end) + 1; // ':'
        i = ws(b, i);
        let end = skip(b, i);
        out.push((key, &text[i..end]));
        i = ws(b, end);
        match b.get(i) {
            Some(b',') => i = ws(b, i + 1),
            _ => return Some(out),
        }
    }
}

/// The items of a JSON array (`None`: not an array).
fn items(text: &str) -> Option<Vec<&str>> {
    let b = text.as_bytes();
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'[') {
        return None;
    }
    let mut out = Vec::new();
    i = ws(b, i + 1);
    if b.get(i) == Some(&b']') {
        return Some(out);
    }
    loop {
        let end = skip(b, i);
        out.push(&text[i..end]);
        i = ws(b, end);
        match b.get(i) {
            Some(b',') => i = ws(b, i + 1),
            _ => return Some(out),
        }
    }
}

/// The raw value at `path` in JSON `text` (`None`: not there).
pub fn at<'t>(text: &'t str, path: &[Step]) -> Option<&'t str> {
    let mut cur = text.trim();
    for step in path {
        cur = match step {
            Step::Key(k) => entries(cur)?.into_iter().find(|(key, _)| key == k)?.1,
            Step::Index(n) => *items(cur)?.get(*n)?,
        };
    }
    Some(cur)
}

/// The number of items of an array or entries of an object.
pub fn len(raw: &str) -> Option<usize> {
    items(raw)
        .map(|v| v.len())
        .or_else(|| entries(raw).map(|v| v.len()))
}

/// A raw JSON value as a mapping value: strings as text, booleans as booleans, `null` as
/// null, numbers, objects and arrays as JSON (numbers keep every digit as written).
pub fn value(raw: &str) -> V<'_> {
    match raw.as_bytes().first() {
        Some(b'"') => V::Text(string_value(raw)),
        Some(b't') => V::Bool(true),
        Some(b'f') => V::Bool(false),
        Some(b'n') | None => V::Null,
        _ => V::Json(Cow::Borrowed(raw)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#" {"a": {"b": [10, {"c": "x\"y"}]}, "n": 1.50, "e": [], "k.d": null} "#;

    #[test]
    fn entries_keep_order_and_raw_numbers() {
        let e = entries(DOC).unwrap();
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["a", "n", "e", "k.d"]);
        assert_eq!(e[1].1, "1.50");
        assert_eq!(e[0].1, r#"{"b": [10, {"c": "x\"y"}]}"#);
        assert!(entries("[1]").is_none());
        assert_eq!(entries("{}").unwrap().len(), 0);
    }

    #[test]
    fn paths_and_lengths() {
        let p = |s: &str| parse_path(s).unwrap();
        assert_eq!(at(DOC, &p("a.b[0]")), Some("10"));
        assert_eq!(
            value(at(DOC, &p("$.a.b[1].c")).unwrap()),
            V::Text("x\"y".into())
        );
        assert_eq!(at(DOC, &p(r#"["k.d"]"#)), Some("null"));
        assert_eq!(at(DOC, &p("a.zz")), None);
        assert_eq!(at(DOC, &p("n[0]")), None);
        assert_eq!(len(at(DOC, &p("a.b")).unwrap()), Some(2));
        assert_eq!(len(at(DOC, &p("e")).unwrap()), Some(0));
        assert_eq!(len(DOC.trim()), Some(4));
        assert_eq!(len("3"), None);
        assert!(parse_path("a..b").is_err());
        assert!(parse_path("a[x]").is_err());
    }
}
