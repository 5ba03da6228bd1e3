//! The members of a one-line JSON object, each value as its JSON text as written (a
//! structural scan: nested objects and arrays are checked with serde_json, not parsed).

use std::borrow::Cow;

use super::{VALUE_QUOTED, quote};

/// Why a line is not a row.
#[derive(Debug, PartialEq, thiserror::Error)]
pub(super) enum LineError {
    #[error("the line is not valid JSON ({0})")]
    NotJson(String),
    #[error("the line is JSON but not an object")]
    NotObject,
}

/// The members of a one-line JSON object, in the order written, each value as its JSON
/// text (nested objects and arrays are checked to be JSON, not parsed).
pub(super) fn members(line: &str) -> Result<Vec<(Cow<'_, str>, &str)>, LineError> {
    let b = line.as_bytes();
    let mut i = skip_space(b, 0);
    if b.get(i) != Some(&b'{') {
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(line) {
            Ok(_) => LineError::NotObject,
            Err(e) => LineError::NotJson(e.to_string()),
        });
    }
    let at = |what: &str, i: usize| LineError::NotJson(format!("{what} at byte {}", i + 1));
    let mut out = Vec::new();
    i = skip_space(b, i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if b.get(i) != Some(&b'"') {
                return Err(at("expected a key", i));
            }
            let end = string_end(b, i).ok_or_else(|| at("unterminated key", i))?;
            let key = &line[i..end];
            let key = if key.bytes().all(|c| c != b'\\' && c >= 0x20) {
                Cow::Borrowed(&key[1..key.len() - 1])
            } else {
                Cow::Owned(
                    serde_json::from_str::<String>(key)
                        .map_err(|e| LineError::NotJson(e.to_string()))?,
                )
            };
            i = skip_space(b, end);
            if b.get(i) != Some(&b':') {
                return Err(at("expected `:`", i));
            }
            let start = skip_space(b, i + 1);
            let end = value_end(b, start).ok_or_else(|| at("expected a value", start))?;
            let raw = &line[start..end];
            if matches!(b[start], b'{' | b'[') {
                serde_json::from_str::<serde::de::IgnoredAny>(raw).map_err(|e| {
                    LineError::NotJson(format!("in `{}`: {e}", quote(&key, VALUE_QUOTED)))
                })?;
            }
            out.push((key, raw));
            i = skip_space(b, end);
            match b.get(i) {
                Some(b',') => i = skip_space(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return Err(at("expected `,` or `}`", i)),
            }
        }
    }
    if skip_space(b, i) != b.len() {
        return Err(at("unexpected text after the object", skip_space(b, i)));
    }
    Ok(out)
}

fn skip_space(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The end (exclusive) of the string starting at `i` (a `"`).
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// The end (exclusive) of the value starting at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let end = b[i..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .map_or(b.len(), |n| i + n);
            (end > i).then_some(end)
        }
    }
}
