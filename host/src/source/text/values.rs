//! Values as Snowflake writes them in CSV and JSON unloads (its default output formats),
//! parsed exactly: a value that cannot be represented in its column's type without loss is
//! a [`Problem`], never rounded.
//!
//! - NUMBER: `-123`, `123.45` (an exponent is read too: JSON writers use one); more
//!   fractional digits than the scale (unless they are zeros) or more integer digits than
//!   `precision - scale` are refused;
//! - FLOAT: Rust's float syntax, which covers Snowflake's `inf`, `-inf`, `NaN` and exponents;
//! - BOOLEAN: what Snowflake's loader accepts, case-insensitive;
//! - DATE: `YYYY-MM-DD`;
//! - TIMESTAMP: `YYYY-MM-DD HH24:MI:SS[.F…]` (space or `T`, 0 to 9 fractional digits) in
//!   milliseconds (nonzero digits finer than that are refused), with a UTC offset (`Z`,
//!   `-0800`, `+01:00`, `+01`, after an optional space) for the zoned types.

/// Why a value does not parse (the reason of a [`super::types::ValueError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("not a number")]
    NotANumber,
    #[error("more than {scale} digits after the decimal point (the declared scale)")]
    Scale { scale: i8 },
    #[error(
        "more than {digits} digits before the decimal point (precision {precision}, scale {scale})"
    )]
    Precision {
        digits: u8,
        precision: u8,
        scale: i8,
    },
    #[error("not a floating-point number")]
    NotAFloat,
    #[error("not a boolean (true/false, t/f, yes/no, y/n, on/off, 1/0)")]
    NotABoolean,
    #[error("not a date of the form YYYY-MM-DD")]
    NotADate,
    #[error("no such day")]
    NoSuchDay,
    #[error("not a timestamp of the form YYYY-MM-DD HH24:MI:SS[.FFF]")]
    NotATimestamp,
    #[error("hour, minute or second out of range")]
    NoSuchTime,
    #[error(
        "nonzero digits finer than milliseconds (Snowflake's Parquet unload keeps milliseconds)"
    )]
    FinerThanMillis,
    #[error("a TIMESTAMP_NTZ value has no UTC offset")]
    UnexpectedOffset,
    #[error("no UTC offset (such as `Z`, `-0800` or `+01:00`) after the time")]
    MissingOffset,
    #[error("not a UTC offset (`Z`, `-0800`, `+01:00`)")]
    BadOffset,
    #[error("not valid JSON")]
    NotJson,
    #[error("the column is declared NOT NULL")]
    NotNull,
    #[error("a JSON {found} cannot be read as this type")]
    JsonKind { found: &'static str },
    #[error("the batch's text exceeds 2 GiB")]
    TooLong,
}

const MILLIS_PER_DAY: i64 = 86_400_000;

/// A NUMBER(precision, scale) as its unscaled value (`123.45` in (6,2) → 12345).
pub fn decimal(text: &str, precision: u8, scale: i8) -> Result<i128, Problem> {
    let bytes = text.as_bytes();
    let (negative, digits) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(b'+') => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let mut value: i128 = 0;
    let mut integer_digits: u32 = 0;
    let mut any_digit = false;
    let mut i = 0;
    while i < digits.len() && digits[i].is_ascii_digit() {
        let digit = digits[i] - b'0';
        any_digit = true;
        if integer_digits > 0 || digit != 0 {
            integer_digits += 1;
            if integer_digits > 38 {
                return Err(precision_problem(precision, scale));
            }
            value = value * 10 + i128::from(digit);
        }
        i += 1;
    }
    let mut fraction: Vec<u8> = Vec::new();
    if i < digits.len() && digits[i] == b'.' {
        i += 1;
        let start = i;
        while i < digits.len() && digits[i].is_ascii_digit() {
            i += 1;
        }
        any_digit |= i > start;
        fraction.extend_from_slice(&digits[start..i]);
    }
    if !any_digit {
        return Err(Problem::NotANumber);
    }
    let mut exponent: i32 = 0;
    if i < digits.len() && (digits[i] == b'e' || digits[i] == b'E') {
        let rest = std::str::from_utf8(&digits[i + 1..]).map_err(|_| Problem::NotANumber)?;
        exponent = rest.parse::<i32>().map_err(|_| Problem::NotANumber)?;
        i = digits.len();
    }
    if i != digits.len() {
        return Err(Problem::NotANumber);
    }
    if exponent != 0 {
        return scaled_with_exponent(negative, digits, exponent, precision, scale);
    }
    let integer_room = u32::from(precision).saturating_sub(scale.max(0) as u32);
    if integer_digits > integer_room {
        return Err(precision_problem(precision, scale));
    }
    let scale_digits = scale.max(0) as usize;
    for (k, &digit) in fraction.iter().enumerate() {
        if k < scale_digits {
            value = value * 10 + i128::from(digit - b'0');
        } else if digit != b'0' {
            return Err(Problem::Scale { scale });
        }
    }
    for _ in fraction.len()..scale_digits {
        value *= 10;
    }
    Ok(if negative { -value } else { value })
}

/// The slow path: a number with an exponent (`1.5e3`, `12e-2`), from its digit string.
fn scaled_with_exponent(
    negative: bool,
    text: &[u8],
    exponent: i32,
    precision: u8,
    scale: i8,
) -> Result<i128, Problem> {
    let mantissa_end = text
        .iter()
        .position(|&b| b == b'e' || b == b'E')
        .unwrap_or(text.len());
    let mantissa = &text[..mantissa_end];
    let point = mantissa
        .iter()
        .position(|&b| b == b'.')
        .unwrap_or(mantissa.len());
    let digits: Vec<u8> = mantissa
        .iter()
        .filter(|b| b.is_ascii_digit())
        .copied()
        .collect();
    // The value is 0.digits × 10^(point + exponent); as an unscaled integer at `scale`,
    // its first `point + exponent + scale` digits are the integer, the rest must be zeros.
    let keep = i64::try_from(point).unwrap_or(i64::MAX) + i64::from(exponent) + i64::from(scale);
    let mut value: i128 = 0;
    let mut significant: u32 = 0;
    for (k, &digit) in digits.iter().enumerate() {
        let digit = digit - b'0';
        if (k as i64) < keep {
            if significant > 0 || digit != 0 {
                significant += 1;
                if significant > u32::from(precision) {
                    return Err(precision_problem(precision, scale));
                }
            }
            value = value * 10 + i128::from(digit);
        } else if digit != 0 {
            return Err(Problem::Scale { scale });
        }
    }
    let mut padding = keep - digits.len() as i64;
    while padding > 0 && value != 0 {
        if value != 0 {
            significant += 1;
            if significant > u32::from(precision) {
                return Err(precision_problem(precision, scale));
            }
        }
        value *= 10;
        padding -= 1;
    }
    if significant > u32::from(precision) {
        return Err(precision_problem(precision, scale));
    }
    Ok(if negative { -value } else { value })
}

fn precision_problem(precision: u8, scale: i8) -> Problem {
    Problem::Precision {
        digits: precision.saturating_sub(scale.max(0) as u8),
        precision,
        scale,
    }
}

/// A FLOAT (`1.5`, `-2e10`, `inf`, `-inf`, `NaN`).
pub fn float(text: &str) -> Result<f64, Problem> {
    text.parse::<f64>().map_err(|_| Problem::NotAFloat)
}

/// A BOOLEAN, as Snowflake's loader reads one (case-insensitive).
pub fn boolean(text: &str) -> Result<bool, Problem> {
    const TRUE: [&str; 6] = ["true", "t", "yes", "y", "on", "1"];
    const FALSE: [&str; 6] = ["false", "f", "no", "n", "off", "0"];
    if TRUE.iter().any(|word| text.eq_ignore_ascii_case(word)) {
        Ok(true)
    } else if FALSE.iter().any(|word| text.eq_ignore_ascii_case(word)) {
        Ok(false)
    } else {
        Err(Problem::NotABoolean)
    }
}

/// A DATE (`YYYY-MM-DD`) as days since 1970-01-01.
pub fn date(text: &str) -> Result<i32, Problem> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 {
        return Err(Problem::NotADate);
    }
    let days = parse_date(bytes).ok_or(Problem::NotADate)??;
    i32::try_from(days).map_err(|_| Problem::NotADate)
}

/// `YYYY-MM-DD` at the start of `bytes`: `None` if it is not of that form, `Some(Err)` for
/// no such day.
fn parse_date(bytes: &[u8]) -> Option<Result<i64, Problem>> {
    if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year = digits(&bytes[0..4])?;
    let month = digits(&bytes[5..7])?;
    let day = digits(&bytes[8..10])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Some(Err(Problem::NoSuchDay));
    }
    Some(Ok(days_from_civil(year, month, day)))
}

/// A timestamp in milliseconds since 1970-01-01T00:00:00 (UTC when `zoned`: the offset
/// written is applied; wall-clock otherwise, and an offset is refused).
pub fn timestamp_millis(text: &str, zoned: bool) -> Result<i64, Problem> {
    let bytes = text.as_bytes();
    let days = parse_date(bytes).ok_or(Problem::NotATimestamp)??;
    if bytes.len() < 19 || !(bytes[10] == b' ' || bytes[10] == b'T') {
        return Err(Problem::NotATimestamp);
    }
    if bytes[13] != b':' || bytes[16] != b':' {
        return Err(Problem::NotATimestamp);
    }
    let hour = digits(&bytes[11..13]).ok_or(Problem::NotATimestamp)?;
    let minute = digits(&bytes[14..16]).ok_or(Problem::NotATimestamp)?;
    let second = digits(&bytes[17..19]).ok_or(Problem::NotATimestamp)?;
    if hour > 23 || minute > 59 || second > 59 {
        return Err(Problem::NoSuchTime);
    }
    let mut i = 19;
    let mut millis: i64 = 0;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let fraction = &bytes[start..i];
        if fraction.is_empty() || fraction.len() > 9 {
            return Err(Problem::NotATimestamp);
        }
        for k in 0..3 {
            millis = millis * 10 + fraction.get(k).map_or(0, |d| i64::from(d - b'0'));
        }
        if fraction.iter().skip(3).any(|&d| d != b'0') {
            return Err(Problem::FinerThanMillis);
        }
    }
    let wall = days * MILLIS_PER_DAY
        + (i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)) * 1000
        + millis;
    let rest = &bytes[i..];
    if !zoned {
        return if rest.is_empty() {
            Ok(wall)
        } else if offset_minutes(rest).is_some() {
            Err(Problem::UnexpectedOffset)
        } else {
            Err(Problem::NotATimestamp)
        };
    }
    if rest.is_empty() {
        return Err(Problem::MissingOffset);
    }
    let offset = offset_minutes(rest).ok_or(Problem::BadOffset)?;
    Ok(wall - i64::from(offset) * 60_000)
}

/// `Z`, `+HHMM`, `+HH:MM`, `+HH` (after at most one space) as minutes east of UTC.
fn offset_minutes(text: &[u8]) -> Option<i32> {
    let text = text.strip_prefix(b" ").unwrap_or(text);
    if text == b"Z" {
        return Some(0);
    }
    let sign = match text.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest = &text[1..];
    let (hours, minutes) = match rest.len() {
        2 => (digits(rest)?, 0),
        4 => (digits(&rest[0..2])?, digits(&rest[2..4])?),
        5 if rest[2] == b':' => (digits(&rest[0..2])?, digits(&rest[3..5])?),
        _ => return None,
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some(sign * (hours as i32 * 60 + minutes as i32))
}

/// ASCII digits as a number (`None` if any byte is not a digit).
fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |value, &b| {
        b.is_ascii_digit().then(|| value * 10 + u32::from(b - b'0'))
    })
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_exactly_or_not_at_all() {
        assert_eq!(decimal("-123", 38, 0), Ok(-123));
        assert_eq!(decimal("123.45", 6, 2), Ok(12345));
        assert_eq!(decimal("123.4", 6, 2), Ok(12340));
        assert_eq!(decimal("123", 6, 2), Ok(12300));
        assert_eq!(decimal("0.5", 3, 1), Ok(5));
        assert_eq!(decimal("-0", 38, 0), Ok(0));
        assert_eq!(decimal("007", 1, 0), Ok(7));
        assert_eq!(decimal("1.50", 3, 1), Ok(15), "trailing zeros lose nothing");
        assert_eq!(
            decimal("99999999999999999999999999999999999999", 38, 0),
            Ok(99_999_999_999_999_999_999_999_999_999_999_999_999)
        );
        assert_eq!(decimal("1.5e3", 38, 0), Ok(1500));
        assert_eq!(decimal("12E-2", 4, 2), Ok(12));
        assert_eq!(decimal("1e22", 38, 0), Ok(10_i128.pow(22)));
        assert_eq!(decimal("1.234", 6, 2), Err(Problem::Scale { scale: 2 }));
        assert_eq!(decimal("1.5", 38, 0), Err(Problem::Scale { scale: 0 }));
        assert_eq!(decimal("1.5e-1", 38, 0), Err(Problem::Scale { scale: 0 }));
        let too_big = Problem::Precision {
            digits: 4,
            precision: 6,
            scale: 2,
        };
        assert_eq!(decimal("12345", 6, 2), Err(too_big));
        assert_eq!(decimal("1e4", 6, 2), Err(too_big));
        assert_eq!(
            decimal("100000000000000000000000000000000000000", 38, 0),
            Err(Problem::Precision {
                digits: 38,
                precision: 38,
                scale: 0
            })
        );
        for bad in [
            "", "-", "abc", "1,5", "1.2.3", " 1", "1 ", "e5", "1e", "0x10", ".",
        ] {
            assert_eq!(decimal(bad, 38, 2), Err(Problem::NotANumber), "{bad:?}");
        }
    }

    #[test]
    fn floats_booleans_and_dates() {
        assert_eq!(float("1.5"), Ok(1.5));
        assert_eq!(float("-2e10"), Ok(-2e10));
        assert_eq!(float("inf"), Ok(f64::INFINITY));
        assert_eq!(float("-inf"), Ok(f64::NEG_INFINITY));
        assert!(float("NaN").is_ok_and(f64::is_nan));
        assert_eq!(float("1,5"), Err(Problem::NotAFloat));
        for yes in ["true", "TRUE", "t", "Yes", "y", "on", "1"] {
            assert_eq!(boolean(yes), Ok(true), "{yes}");
        }
        for no in ["false", "False", "f", "NO", "n", "off", "0"] {
            assert_eq!(boolean(no), Ok(false), "{no}");
        }
        assert_eq!(boolean("2"), Err(Problem::NotABoolean));
        assert_eq!(date("1970-01-01"), Ok(0));
        assert_eq!(date("2024-02-29"), Ok(19_782));
        assert_eq!(date("1969-12-31"), Ok(-1));
        assert_eq!(date("0001-01-01"), Ok(-719_162));
        assert_eq!(date("9999-12-31"), Ok(2_932_896));
        assert_eq!(date("2023-02-29"), Err(Problem::NoSuchDay));
        assert_eq!(date("2023-13-01"), Err(Problem::NoSuchDay));
        assert_eq!(date("2023-1-01"), Err(Problem::NotADate));
        assert_eq!(date("2023-01-01 00:00:00"), Err(Problem::NotADate));
    }

    #[test]
    fn timestamps_are_milliseconds_exactly() {
        let noon = 19_782 * MILLIS_PER_DAY + 12 * 3_600_000;
        assert_eq!(timestamp_millis("2024-02-29 12:00:00", false), Ok(noon));
        assert_eq!(
            timestamp_millis("2024-02-29T12:00:00.5", false),
            Ok(noon + 500)
        );
        assert_eq!(
            timestamp_millis("2024-02-29 12:00:00.123", false),
            Ok(noon + 123)
        );
        assert_eq!(
            timestamp_millis("2024-02-29 12:00:00.123000000", false),
            Ok(noon + 123)
        );
        assert_eq!(
            timestamp_millis("2024-02-29 12:00:00.1234", false),
            Err(Problem::FinerThanMillis)
        );
        assert_eq!(
            timestamp_millis("1969-12-31 23:59:59.999", false),
            Ok(-1),
            "before 1970"
        );
        assert_eq!(
            timestamp_millis("2024-02-29 12:00:00 Z", false),
            Err(Problem::UnexpectedOffset)
        );
        assert_eq!(
            timestamp_millis("2024-02-29 24:00:00", false),
            Err(Problem::NoSuchTime)
        );
        assert_eq!(
            timestamp_millis("2024-02-29 12:00", false),
            Err(Problem::NotATimestamp)
        );
        assert_eq!(
            timestamp_millis("2024-02-29 12:00:00.", false),
            Err(Problem::NotATimestamp)
        );
        // Zoned: the offset is applied, giving the UTC instant.
        assert_eq!(
            timestamp_millis("2024-02-29 04:00:00.000 -0800", true),
            Ok(noon)
        );
        assert_eq!(
            timestamp_millis("2024-02-29T13:00:00+01:00", true),
            Ok(noon)
        );
        assert_eq!(timestamp_millis("2024-02-29T12:00:00Z", true), Ok(noon));
        assert_eq!(timestamp_millis("2024-02-29 13:00:00 +01", true), Ok(noon));
        assert_eq!(
            timestamp_millis("2024-02-29 12:00:00", true),
            Err(Problem::MissingOffset)
        );
        assert_eq!(
            timestamp_millis("2024-02-29 12:00:00 CET", true),
            Err(Problem::BadOffset)
        );
    }
}
