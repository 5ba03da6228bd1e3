//! JSON text pieces: strings (with CluedIn's character rules), numbers and decimals.

/// A character CluedIn does not accept in values (`docs/reference/cluedin-endpoint.md`): control characters other
/// than tab, LF and CR, and the non-characters U+FFFE and U+FFFF. (Lone surrogates
/// cannot occur in valid UTF-8.)
pub fn is_unsupported_char(c: char) -> bool {
    (c < '\u{20}' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}'
}

/// Why bytes cannot be written as a JSON string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrProblem {
    /// The bytes are not valid UTF-8.
    InvalidUtf8,
    /// A character CluedIn does not accept ([`is_unsupported_char`]).
    Unsupported(char),
}

/// Writes `s` as a JSON string. Fails on the first unsupported character, in which case
/// `out` holds a partial string and must be discarded by the caller.
pub fn write_str(out: &mut Vec<u8>, s: &str) -> Result<(), StrProblem> {
    write_utf8(out, s.as_bytes())
}

/// Writes `bytes`, which must be UTF-8, as a JSON string, checking the encoding in the
/// same pass as the escaping (one scan of each value instead of two). On an error `out`
/// holds a partial string and must be discarded by the caller.
pub fn write_utf8(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), StrProblem> {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Skip 8 plain ASCII bytes at a time (most values have nothing to escape).
        if i + 8 <= bytes.len() {
            let word = u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap_or([0; 8]));
            if !needs_attention(word) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => return Err(StrProblem::Unsupported(b as char)),
            0x80.. => {
                i = non_ascii_run(bytes, i)?;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
    Ok(())
}

/// Checks the run of non-ASCII bytes starting at `from` (complete UTF-8 sequences, since
/// no sequence holds an ASCII byte, and no U+FFFE/U+FFFF) and returns where it ends.
fn non_ascii_run(bytes: &[u8], from: usize) -> Result<usize, StrProblem> {
    let end = bytes[from..]
        .iter()
        .position(|b| b.is_ascii())
        .map_or(bytes.len(), |n| from + n);
    let run = std::str::from_utf8(&bytes[from..end]).map_err(|_| StrProblem::InvalidUtf8)?;
    // U+FFFE / U+FFFF are EF BF BE / EF BF BF in UTF-8.
    if run.as_bytes().contains(&0xEF)
        && let Some(c) = run.chars().find(|&c| is_unsupported_char(c))
    {
        return Err(StrProblem::Unsupported(c));
    }
    Ok(end)
}

/// Whether any byte of `word` is a control character, `"`, `\\` or not ASCII, using SWAR
/// bit tricks.
#[inline]
fn needs_attention(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    // Bytes below 0x20 (only meaningful for bytes < 0x80; those are caught by HIGH).
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    word & HIGH != 0
        || below_space != 0
        || has_zero(word ^ (ONES * b'"' as u64)) != 0
        || has_zero(word ^ (ONES * b'\\' as u64)) != 0
}

/// Writes a JSON number for a float; NaN and infinities, which JSON cannot hold, become
/// the strings `"NaN"`, `"Infinity"` and `"-Infinity"`.
pub fn write_f64(out: &mut Vec<u8>, v: f64) {
    use std::io::Write;
    if v.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 {
            b"\"Infinity\""
        } else {
            b"\"-Infinity\""
        });
    } else {
        // Rust's shortest round-trip representation.
        let _ = write!(out, "{v}");
    }
}

pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    let mut buf = itoa_buf();
    out.extend_from_slice(format_i128(&mut buf, v as i128));
}

fn itoa_buf() -> [u8; 48] {
    [0; 48]
}

fn format_i128(buf: &mut [u8; 48], v: i128) -> &[u8] {
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// The exact decimal text of `value * 10^-scale` (`-12.30` keeps its scale).
pub fn decimal_text(out: &mut Vec<u8>, value: i128, scale: i8) {
    let mut buf = itoa_buf();
    let digits = format_i128(&mut buf, value);
    let (sign, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if sign {
        out.push(b'-');
    }
    if scale <= 0 {
        out.extend_from_slice(digits);
        if value != 0 {
            out.extend(std::iter::repeat_n(b'0', (-(scale as i32)) as usize));
        }
        return;
    }
    let scale = scale as usize;
    if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    } else {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', scale - digits.len()));
        out.extend_from_slice(digits);
    }
}

/// Largest integer every JSON parser that reads numbers as doubles keeps exactly.
const MAX_EXACT_INTEGER: u128 = 1 << 53;
/// Significant decimal digits that always survive a round trip through a double.
const MAX_EXACT_DIGITS: usize = 15;

/// Writes a decimal as a JSON number when a reader that parses numbers as doubles gets
/// the same value back, otherwise as a JSON string with the exact digits.
pub fn write_decimal(out: &mut Vec<u8>, value: i128, scale: i8) {
    if decimal_fits_double(value, scale) {
        decimal_text(out, value, scale);
    } else {
        out.push(b'"');
        decimal_text(out, value, scale);
        out.push(b'"');
    }
}

fn decimal_fits_double(value: i128, scale: i8) -> bool {
    let magnitude = value.unsigned_abs();
    if scale == 0 && magnitude <= MAX_EXACT_INTEGER {
        return true;
    }
    let mut m = magnitude;
    // Trailing zeros are not significant.
    while m != 0 && m.is_multiple_of(10) {
        m /= 10;
    }
    let significant = if m == 0 { 1 } else { m.ilog10() as usize + 1 };
    let exponent_ok = (-300..=300).contains(&(scale as i32));
    significant <= MAX_EXACT_DIGITS && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_and_checked() {
        assert_eq!(
            s(|o| write_str(o, "a\"b\\c\nd\te\r").unwrap()),
            r#""a\"b\\c\nd\te\r""#
        );
        assert_eq!(s(|o| write_str(o, "héllo €").unwrap()), "\"héllo €\"");
        let unsupported = |c| Err(StrProblem::Unsupported(c));
        assert_eq!(write_str(&mut Vec::new(), "a\u{1}b"), unsupported('\u{1}'));
        assert_eq!(
            write_str(&mut Vec::new(), "x\u{FFFE}"),
            unsupported('\u{FFFE}')
        );
        assert_eq!(
            write_str(&mut Vec::new(), "x\u{FFFF}"),
            unsupported('\u{FFFF}')
        );
        // U+FFFD is fine.
        assert!(write_str(&mut Vec::new(), "x\u{FFFD}").is_ok());
        assert!(is_unsupported_char('\u{0}') && !is_unsupported_char('\t'));
        // Every position of a longer string, so the 8-byte fast path is crossed.
        for special in ['"', '\\', '\n', '\u{1f}', '\u{FFFF}', 'é'] {
            for pos in 0..20 {
                let mut text: String = "abcdefghijklmnopqrstu".chars().take(20).collect();
                text.insert(pos, special);
                let mut out = Vec::new();
                let result = write_str(&mut out, &text);
                match special {
                    '\u{1f}' | '\u{FFFF}' => assert_eq!(result, unsupported(special), "{text:?}"),
                    _ => {
                        result.unwrap();
                        let back: String = serde_json::from_slice(&out).unwrap();
                        assert_eq!(back, text);
                    }
                }
            }
        }
    }

    #[test]
    fn bytes_are_checked_for_utf8_while_escaped() {
        let write = |bytes: &[u8]| {
            let mut out = Vec::new();
            write_utf8(&mut out, bytes).map(|()| out)
        };
        let bad: [&[u8]; 7] = [
            b"\xff",
            b"abc\xc3",              // a sequence cut at the end
            b"abcdefgh\x80ijklmnop", // a lone continuation byte after the fast path
            b"\xc0\xaf",             // overlong
            b"\xed\xa0\x80",         // a surrogate
            b"\xe2\x82",             // cut before an ASCII byte
            b"caf\xc3\xa9\xe2\x82z", // valid, then cut
        ];
        for bytes in bad {
            assert_eq!(write(bytes), Err(StrProblem::InvalidUtf8), "{bytes:?}");
        }
        assert_eq!(
            write("Chloé García €".as_bytes()).unwrap(),
            b"\"Chlo\xc3\xa9 Garc\xc3\xada \xe2\x82\xac\""
        );
        assert_eq!(
            write("ab\u{FFFF}".as_bytes()),
            Err(StrProblem::Unsupported('\u{FFFF}'))
        );
        // Against std's validation and serde_json's escaping, on bytes from a fixed PRNG that
        // mixes ASCII, escapes and pieces of multi-byte sequences.
        let pieces: [&[u8]; 9] = [
            b"a",
            b"bcdefghi",
            b"\"",
            b"\n",
            b"\xc3",
            b"\xa9",
            b"\xe2\x82\xac",
            b"\xef\xbf",
            b"\xbe",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..5_000 {
            let mut bytes = Vec::new();
            for _ in 0..(seed % 24) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                bytes.extend_from_slice(pieces[(seed % pieces.len() as u64) as usize]);
            }
            let expected = match std::str::from_utf8(&bytes) {
                Err(_) => Err(StrProblem::InvalidUtf8),
                Ok(text) => match text.chars().find(|&c| is_unsupported_char(c)) {
                    Some(c) => Err(StrProblem::Unsupported(c)),
                    // serde_json escapes the characters CluedIn accepts as we do.
                    None => Ok(serde_json::to_vec(text).unwrap()),
                },
            };
            assert_eq!(write(&bytes), expected, "{bytes:?}");
        }
    }

    #[test]
    fn decimals_keep_every_digit() {
        assert_eq!(s(|o| write_decimal(o, 12345, 0)), "12345");
        assert_eq!(s(|o| write_decimal(o, -1230, 2)), "-12.30");
        assert_eq!(s(|o| write_decimal(o, 5, 3)), "0.005");
        assert_eq!(s(|o| write_decimal(o, -5, 3)), "-0.005");
        assert_eq!(s(|o| write_decimal(o, 0, 2)), "0.00");
        assert_eq!(s(|o| write_decimal(o, 1 << 53, 0)), "9007199254740992");
        assert_eq!(
            s(|o| write_decimal(o, (1 << 53) + 1, 0)),
            "\"9007199254740993\""
        );
        let max38 = 10i128.pow(38) - 1;
        assert_eq!(
            s(|o| write_decimal(o, max38, 0)),
            "\"99999999999999999999999999999999999999\""
        );
        assert_eq!(
            s(|o| write_decimal(o, -max38, 10)),
            "\"-9999999999999999999999999999.9999999999\""
        );
        assert_eq!(s(|o| write_decimal(o, 12, -3)), "12000");
        assert_eq!(
            s(|o| write_decimal(o, i128::MIN, 0)),
            format!("\"{}\"", i128::MIN)
        );
    }

    #[test]
    fn floats_and_integers() {
        assert_eq!(s(|o| write_f64(o, 0.1)), "0.1");
        assert_eq!(s(|o| write_f64(o, -2.5e-8)), "-0.000000025");
        assert_eq!(s(|o| write_f64(o, f64::NAN)), "\"NaN\"");
        assert_eq!(s(|o| write_f64(o, f64::NEG_INFINITY)), "\"-Infinity\"");
        assert_eq!(s(|o| write_i64(o, i64::MIN)), i64::MIN.to_string());
        assert_eq!(s(|o| write_i64(o, 0)), "0");
    }
}
