//! The values a mapping computes ([`V`]), their static types ([`Ty`]) and text forms, and
//! RFC 3339 text to timestamps.

use std::borrow::Cow;

use crate::bindings::types::{ColumnType, ScalarType, TimeUnit};
use crate::wire::json::{decimal_text, write_i64};
use crate::wire::time::{write_date, write_timestamp};

/// The static type of an expression, checked when the mapping is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Bool,
    Int,
    Float,
    Decimal,
    Text,
    Json,
    Date,
    Timestamp,
    Binary,
    /// The `null` literal: fits anywhere.
    Null,
}

impl Ty {
    /// A column's type: list columns are read as JSON arrays.
    pub fn of(t: &ColumnType) -> Ty {
        match t {
            ColumnType::Scalar(s) => match s {
                ScalarType::Boolean => Ty::Bool,
                ScalarType::Integer => Ty::Int,
                ScalarType::Float => Ty::Float,
                ScalarType::Decimal(_) => Ty::Decimal,
                ScalarType::Text => Ty::Text,
                ScalarType::Json => Ty::Json,
                ScalarType::Date => Ty::Date,
                ScalarType::Timestamp(_) => Ty::Timestamp,
                ScalarType::Binary => Ty::Binary,
            },
            ColumnType::List(_) => Ty::Json,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Ty::Bool => "boolean",
            Ty::Int => "integer",
            Ty::Float => "float",
            Ty::Decimal => "decimal",
            Ty::Text => "text",
            Ty::Json => "json",
            Ty::Date => "date",
            Ty::Timestamp => "timestamp",
            Ty::Binary => "binary",
            Ty::Null => "null",
        }
    }
}

/// One computed value of one row; text borrows from the batch where it can.
#[derive(Debug, Clone, PartialEq)]
pub enum V<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Decimal(i128, i8),
    Text(Cow<'a, str>),
    /// JSON text (embedded as JSON when sent).
    Json(Cow<'a, str>),
    Date(i32),
    Timestamp(i64, TimeUnit),
    Binary(&'a [u8]),
}

impl V<'_> {
    pub fn is_null(&self) -> bool {
        matches!(self, V::Null)
    }

    /// A boolean as the SDKs read one: booleans; 0/1; text `true`/`false`/`1`/`0`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            V::Bool(b) => Some(*b),
            V::Int(0) => Some(false),
            V::Int(1) => Some(true),
            V::Decimal(v, s) => match whole(*v, *s) {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            V::Text(t) => {
                let t = t.trim();
                if t.eq_ignore_ascii_case("true") || t == "1" {
                    Some(true)
                } else if t.eq_ignore_ascii_case("false") || t == "0" {
                    Some(false)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// Appends the value's text form: text as is, numbers exactly, dates and timestamps in
    /// RFC 3339, binary in base64 (what an external id made of it looks like).
    pub fn write_text(&self, out: &mut Vec<u8>) {
        match self {
            V::Null => {}
            V::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            V::Int(i) => write_i64(out, *i),
            V::Float(f) => out.extend_from_slice(f.to_string().as_bytes()),
            V::Decimal(v, s) => decimal_text(out, *v, *s),
            V::Text(t) | V::Json(t) => out.extend_from_slice(t.as_bytes()),
            V::Date(d) => write_date(out, *d as i64),
            V::Timestamp(v, u) => write_timestamp(out, *v, *u),
            V::Binary(b) => {
                use base64::Engine as _;
                let mut s = String::new();
                base64::engine::general_purpose::STANDARD.encode_string(b, &mut s);
                out.extend_from_slice(s.as_bytes());
            }
        }
    }

    /// The text form as a string.
    pub fn to_text(&self) -> String {
        match self {
            V::Text(t) | V::Json(t) => t.to_string(),
            v => {
                let mut out = Vec::new();
                v.write_text(&mut out);
                String::from_utf8(out).unwrap_or_default()
            }
        }
    }
}

/// `value × 10^-scale` as an i128 when it is a whole number.
pub fn whole(value: i128, scale: i8) -> Option<i128> {
    if scale <= 0 {
        value.checked_mul(10i128.checked_pow(u32::from(scale.unsigned_abs()))?)
    } else {
        let f = 10i128.checked_pow(scale as u32)?;
        (value % f == 0).then_some(value / f)
    }
}

/// Nanoseconds per unit.
pub fn nanos_per(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Seconds => 1_000_000_000,
        TimeUnit::Millis => 1_000_000,
        TimeUnit::Micros => 1_000,
        TimeUnit::Nanos => 1,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A zone offset: `Z`, `UTC`, `+02:00`, `-0530`, `+02` → seconds east of UTC.
pub fn parse_offset(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") {
        return Some(0);
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let h: i64 = digits[..2].parse().ok()?;
    let m: i64 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    (h <= 23 && m <= 59).then_some(sign * (h * 3600 + m * 60))
}

/// RFC 3339 text (`2024-05-01T12:34:56.789Z`, `2024-05-01 12:34:56+02:00`, or a bare
/// date-time, read as UTC) → the instant in the unit its fraction has (none: seconds, up to
/// 3 digits: millis, 6: micros, 9: nanos), so it is sent with the precision it was given.
pub fn parse_timestamp(s: &str) -> Option<(i64, TimeUnit)> {
    let (ns, digits) = parse_timestamp_ns(s)?;
    let unit = match digits {
        0 => TimeUnit::Seconds,
        1..=3 => TimeUnit::Millis,
        4..=6 => TimeUnit::Micros,
        _ => TimeUnit::Nanos,
    };
    Some((ns.div_euclid(nanos_per(unit)), unit))
}

/// RFC 3339 text → (nanoseconds since 1970 in UTC, digits of the fraction).
fn parse_timestamp_ns(s: &str) -> Option<(i64, usize)> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, mo, d) * 86_400;
    let mut nanos = 0i64;
    let mut fraction = 0usize;
    let mut rest = &s[10..];
    if !rest.is_empty() {
        if !matches!(rest.as_bytes()[0], b'T' | b't' | b' ') || rest.len() < 9 {
            return None;
        }
        let t = &rest[1..];
        let tb = t.as_bytes();
        if tb[2] != b':' || tb[5] != b':' {
            return None;
        }
        let n = |r: std::ops::Range<usize>| -> Option<i64> {
            let x = t.get(r)?;
            x.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| x.parse().ok())?
        };
        let (h, mi, se) = (n(0..2)?, n(3..5)?, n(6..8)?);
        if h > 23 || mi > 59 || se > 60 {
            return None;
        }
        secs += h * 3600 + mi * 60 + se;
        rest = &t[8..];
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 9 {
                return None;
            }
            nanos = frac[..digits].parse::<i64>().ok()? * 10i64.pow(9 - digits as u32);
            fraction = digits;
            rest = &frac[digits..];
        }
        if !rest.is_empty() {
            secs -= parse_offset(rest)?;
        }
    }
    Some((
        secs.checked_mul(1_000_000_000)?.checked_add(nanos)?,
        fraction,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_with_zones_and_fractions() {
        assert_eq!(parse_timestamp("1970-01-01"), Some((0, TimeUnit::Seconds)));
        assert_eq!(
            parse_timestamp("2024-05-01T12:34:56.789Z"),
            Some((1_714_566_896_789, TimeUnit::Millis))
        );
        assert_eq!(
            parse_timestamp("2024-05-01 14:34:56.789+02:00"),
            Some((1_714_566_896_789, TimeUnit::Millis))
        );
        assert_eq!(
            parse_timestamp("2024-05-01T12:34:56"),
            Some((1_714_566_896, TimeUnit::Seconds))
        );
        assert_eq!(
            parse_timestamp("2024-05-01T12:34:56.1234567Z"),
            Some((1_714_566_896_123_456_700, TimeUnit::Nanos))
        );
        assert_eq!(parse_timestamp("2024-13-01"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("2024-05-01T12:34:56+25:00"), None);
    }

    #[test]
    fn offsets_and_whole_numbers() {
        assert_eq!(parse_offset("+02:00"), Some(7200));
        assert_eq!(parse_offset("-0530"), Some(-19_800));
        assert_eq!(parse_offset("UTC"), Some(0));
        assert_eq!(parse_offset("Europe/Paris"), None);
        assert_eq!(whole(4200, 2), Some(42));
        assert_eq!(whole(4201, 2), None);
        assert_eq!(whole(42, -1), Some(420));
    }

    #[test]
    fn text_forms_are_exact() {
        let t = |v: V<'_>| v.to_text();
        assert_eq!(t(V::Decimal(42, 0)), "42");
        assert_eq!(t(V::Decimal(-1230, 2)), "-12.30");
        assert_eq!(t(V::Int(-7)), "-7");
        assert_eq!(t(V::Date(0)), "1970-01-01");
        assert_eq!(
            t(V::Timestamp(5, TimeUnit::Millis)),
            "1970-01-01T00:00:00.005Z"
        );
        assert_eq!(V::Text("1".into()).as_bool(), Some(true));
        assert_eq!(V::Decimal(100, 2).as_bool(), Some(true));
    }
}
