//! Dates and timestamps as RFC 3339 text, without a date library (hot path).

use crate::bindings::types::TimeUnit;

/// Writes `YYYY-MM-DD` for `days` since 1970-01-01.
pub fn write_date(out: &mut Vec<u8>, days: i64) {
    let (y, m, d) = civil_from_days(days);
    write_ymd(out, y, m, d);
}

/// Writes an RFC 3339 UTC timestamp ending in `Z`, with as many fraction digits as the
/// unit has (none for seconds, 3 for millis, 6 for micros, 9 for nanos). Wall-clock
/// (TIMESTAMP_NTZ) values are written as they are, as if they were UTC.
pub fn write_timestamp(out: &mut Vec<u8>, value: i64, unit: TimeUnit) {
    // Records often carry the same instant twice (the entity timestamp and an
    // `updatedAt` property): remember the last one written on this thread.
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 == value && last.1 == Some(unit) {
            out.extend_from_slice(&last.2);
            return;
        }
        let start = out.len();
        format_timestamp(out, value, unit);
        last.0 = value;
        last.1 = Some(unit);
        last.2.clear();
        last.2.extend_from_slice(&out[start..]);
    });
}

thread_local! {
    static LAST: std::cell::RefCell<(i64, Option<TimeUnit>, Vec<u8>)> =
        const { std::cell::RefCell::new((0, None, Vec::new())) };
}

fn format_timestamp(out: &mut Vec<u8>, value: i64, unit: TimeUnit) {
    let (per_second, digits) = match unit {
        TimeUnit::Seconds => (1i64, 0usize),
        TimeUnit::Millis => (1_000, 3),
        TimeUnit::Micros => (1_000_000, 6),
        TimeUnit::Nanos => (1_000_000_000, 9),
    };
    let seconds = value.div_euclid(per_second);
    let fraction = value.rem_euclid(per_second);
    let days = seconds.div_euclid(86_400);
    let secs_of_day = seconds.rem_euclid(86_400) as u32;
    // `YYYY-MM-DDTHH:MM:SS.fffffffffZ`, built on the stack and appended once.
    let mut buf = [0u8; 30];
    let (y, m, d) = civil_from_days(days);
    let date_len = if put_ymd(&mut buf, y, m, d) {
        10
    } else {
        // An expanded year goes out first; the buffer then holds only the time.
        write_ymd(out, y, m, d);
        0
    };
    buf[date_len] = b'T';
    let len = date_len + 1 + put_time(&mut buf[date_len + 1..], secs_of_day, fraction, digits);
    out.extend_from_slice(&buf[..len]);
}

/// `HH:MM:SS[.fraction]Z` into `buf`; returns its length.
fn put_time(buf: &mut [u8], secs_of_day: u32, fraction: i64, digits: usize) -> usize {
    put_2(&mut buf[0..2], secs_of_day / 3600);
    buf[2] = b':';
    put_2(&mut buf[3..5], (secs_of_day / 60) % 60);
    buf[5] = b':';
    put_2(&mut buf[6..8], secs_of_day % 60);
    let mut len = 8;
    if digits > 0 {
        buf[8] = b'.';
        let mut f = fraction;
        for slot in buf[9..9 + digits].iter_mut().rev() {
            *slot = b'0' + (f % 10) as u8;
            f /= 10;
        }
        len = 9 + digits;
    }
    buf[len] = b'Z';
    len + 1
}

/// `YYYY-MM-DD` into `buf[..10]` when the year has four digits (0–9999); false otherwise.
fn put_ymd(buf: &mut [u8], y: i64, m: u32, d: u32) -> bool {
    let Ok(y @ 0..=9999) = u32::try_from(y) else {
        return false;
    };
    put_2(&mut buf[0..2], y / 100);
    put_2(&mut buf[2..4], y % 100);
    buf[4] = b'-';
    put_2(&mut buf[5..7], m);
    buf[7] = b'-';
    put_2(&mut buf[8..10], d);
    true
}

fn put_2(buf: &mut [u8], v: u32) {
    buf[0] = b'0' + (v / 10) as u8;
    buf[1] = b'0' + (v % 10) as u8;
}

/// `YYYY-MM-DD`, or ISO 8601's expanded form (`+10000-01-01`) for years without four
/// digits, which RFC 3339 has no form for.
fn write_ymd(out: &mut Vec<u8>, y: i64, m: u32, d: u32) {
    let mut buf = [0u8; 10];
    if put_ymd(&mut buf, y, m, d) {
        out.extend_from_slice(&buf);
        return;
    }
    out.extend_from_slice(format!("{y:+05}").as_bytes());
    // The same month and day as a four-digit year's, after its `YYYY`.
    put_ymd(&mut buf, 0, m, d);
    out.extend_from_slice(&buf[4..]);
}

/// Howard Hinnant's `civil_from_days`: proleptic Gregorian (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Milliseconds since 1970 (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Milliseconds since 1970 as RFC 3339 UTC with milliseconds.
pub fn rfc3339_ms(ms: u64) -> String {
    let mut out = Vec::new();
    write_timestamp(&mut out, ms as i64, TimeUnit::Millis);
    String::from_utf8(out).unwrap_or_default()
}

/// The current time as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    rfc3339_ms(now_ms())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(value: i64, unit: TimeUnit) -> String {
        let mut out = Vec::new();
        write_timestamp(&mut out, value, unit);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn epoch_and_known_instants() {
        assert_eq!(ts(0, TimeUnit::Seconds), "1970-01-01T00:00:00Z");
        assert_eq!(
            ts(1_714_566_896_789, TimeUnit::Millis),
            "2024-05-01T12:34:56.789Z"
        );
        assert_eq!(
            ts(951_782_400_000_001, TimeUnit::Micros),
            "2000-02-29T00:00:00.000001Z"
        );
        assert_eq!(ts(-1, TimeUnit::Nanos), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(ts(-1_000, TimeUnit::Millis), "1969-12-31T23:59:59.000Z");
        // Years without four digits take the expanded form, time of day included.
        assert_eq!(
            ts(253_402_300_800_000_123, TimeUnit::Micros),
            "+10000-01-01T00:00:00.000123Z"
        );
        assert_eq!(
            ts(-62_167_219_201, TimeUnit::Seconds),
            "-0001-12-31T23:59:59Z"
        );
        assert_eq!(
            ts(-62_167_219_200, TimeUnit::Seconds),
            "0000-01-01T00:00:00Z"
        );
    }

    #[test]
    fn timestamps_match_chrono_across_years_and_units() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Seconds from year 0 to 9999.
            let secs = (seed % 315_537_897_600) as i64 - 62_167_219_200;
            let nanos = (seed >> 40) as i64 % 1_000_000_000;
            let at = chrono::DateTime::from_timestamp(secs, nanos as u32).unwrap();
            let cases = [
                (TimeUnit::Seconds, secs, at.format("%Y-%m-%dT%H:%M:%SZ")),
                (
                    TimeUnit::Millis,
                    secs * 1_000 + nanos / 1_000_000,
                    at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                ),
            ];
            for (unit, value, expected) in cases {
                assert_eq!(ts(value, unit), expected.to_string(), "{value} {unit:?}");
            }
            if let Some(value) = secs
                .checked_mul(1_000_000_000)
                .and_then(|s| s.checked_add(nanos))
            {
                assert_eq!(
                    ts(value, TimeUnit::Nanos),
                    at.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
                );
            }
        }
    }

    #[test]
    fn dates_across_eras() {
        let date = |d| {
            let mut out = Vec::new();
            write_date(&mut out, d);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(19_844), "2024-05-01");
        assert_eq!(date(-719_468), "0000-03-01");
        assert_eq!(date(2_932_896), "9999-12-31");
        assert_eq!(date(2_932_897), "+10000-01-01");
    }
}
