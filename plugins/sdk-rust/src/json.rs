//! A small JSON writer for building JSON-text properties without a serialization library
//! (the host turns entities into the wire JSON; plugins only need JSON for `Json` values).
//!
//! ```
//! use stagepush_plugin::{json, Value};
//! let mut out = Vec::new();
//! out.push(b'{');
//! json::write_str(&mut out, "name");
//! out.push(b':');
//! json::write_value(&mut out, &Value::Text("Ann \"A\""));
//! out.push(b'}');
//! assert_eq!(out, br#"{"name":"Ann \"A\""}"#);
//! ```

use crate::value::{List, Value, write_i64};

/// Appends `s` as a JSON string (quoted, escaped).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends `v` as JSON: null, booleans and integers as such; floats as numbers (`null` when
/// not finite); decimals as exact numbers (`-12.30`); text as a string; JSON text as is;
/// dates (`"2024-05-01"`) and timestamps (`"2024-05-01T12:34:56.789Z"`) as strings; binary
/// as a base64 string; lists as arrays.
pub fn write_value(out: &mut Vec<u8>, v: &Value<'_>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => write_i64(out, *i),
        Value::Float(f) if f.is_finite() => {
            use std::io::Write;
            let _ = write!(out, "{f:?}");
        }
        Value::Float(_) => out.extend_from_slice(b"null"),
        Value::Decimal(d) => d.write_to(out),
        Value::Text(s) => write_str(out, s),
        Value::Json(s) => out.extend_from_slice(s.as_bytes()),
        Value::Date(d) => {
            out.push(b'"');
            d.write_to(out);
            out.push(b'"');
        }
        Value::Timestamp(t) => {
            out.push(b'"');
            t.write_to(out);
            out.push(b'"');
        }
        Value::Binary(b) => {
            out.push(b'"');
            base64(out, b);
            out.push(b'"');
        }
        Value::List(l) => write_list(out, l),
    }
}

/// Appends a list as a JSON array of its items (see [`write_value`]).
pub fn write_list(out: &mut Vec<u8>, l: &List<'_>) {
    out.push(b'[');
    for (i, item) in l.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_value(out, &item);
    }
    out.push(b']');
}

/// `v` as a JSON text.
pub fn to_string(v: &Value<'_>) -> String {
    let mut out = Vec::new();
    write_value(&mut out, v);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends standard base64 (with padding) of `data`.
pub fn base64(out: &mut Vec<u8>, data: &[u8]) {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut chunks = data.chunks_exact(3);
    for c in &mut chunks {
        let n = (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]);
        out.extend_from_slice(&[
            A[(n >> 18) as usize & 63],
            A[(n >> 12) as usize & 63],
            A[(n >> 6) as usize & 63],
            A[n as usize & 63],
        ]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend_from_slice(&[
                A[(n >> 18) as usize & 63],
                A[(n >> 12) as usize & 63],
                b'=',
                b'=',
            ]);
        }
        [a, b] => {
            let n = (u32::from(a) << 16) | (u32::from(b) << 8);
            out.extend_from_slice(&[
                A[(n >> 18) as usize & 63],
                A[(n >> 12) as usize & 63],
                A[(n >> 6) as usize & 63],
                b'=',
            ]);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Date, Decimal, TimeUnit, Timestamp};

    fn j(v: Value<'_>) -> String {
        to_string(&v)
    }

    #[test]
    fn values_as_json() {
        assert_eq!(j(Value::Null), "null");
        assert_eq!(j(Value::Bool(false)), "false");
        assert_eq!(j(Value::Int(-3)), "-3");
        assert_eq!(j(Value::Float(1.5)), "1.5");
        assert_eq!(j(Value::Float(1.0)), "1.0");
        assert_eq!(j(Value::Float(f64::NAN)), "null");
        assert_eq!(j(Value::Decimal(Decimal::new(-1230, 2))), "-12.30");
        assert_eq!(j(Value::Text("a\"b\\c\n\u{1}é")), r#""a\"b\\c\n\u0001é""#);
        assert_eq!(j(Value::Json(r#"{"a":1}"#)), r#"{"a":1}"#);
        assert_eq!(j(Value::Date(Date(0))), r#""1970-01-01""#);
        assert_eq!(
            j(Value::Timestamp(Timestamp {
                value: 1,
                unit: TimeUnit::Seconds,
                wall_clock: false
            })),
            r#""1970-01-01T00:00:01Z""#
        );
        assert_eq!(j(Value::Binary(b"\x00\xff")), r#""AP8=""#);
    }

    #[test]
    fn base64_padding() {
        let b = |d: &[u8]| {
            let mut o = Vec::new();
            base64(&mut o, d);
            String::from_utf8(o).unwrap()
        };
        assert_eq!(b(b""), "");
        assert_eq!(b(b"f"), "Zg==");
        assert_eq!(b(b"fo"), "Zm8=");
        assert_eq!(b(b"foo"), "Zm9v");
        assert_eq!(b(b"foobar"), "Zm9vYmFy");
    }
}
