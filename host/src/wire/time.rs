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
    let secs_of_day = seconds.rem_euclid(86_400);
    write_date(out, days);
    out.push(b'T');
    write_2(out, (secs_of_day / 3600) as u32);
    out.push(b':');
    write_2(out, ((secs_of_day / 60) % 60) as u32);
    out.push(b':');
    write_2(out, (secs_of_day % 60) as u32);
    if digits > 0 {
        out.push(b'.');
        let mut buf = [b'0'; 9];
        let mut f = fraction;
        for slot in buf[..digits].iter_mut().rev() {
            *slot = b'0' + (f % 10) as u8;
            f /= 10;
        }
        out.extend_from_slice(&buf[..digits]);
    }
    out.push(b'Z');
}

fn write_ymd(out: &mut Vec<u8>, y: i64, m: u32, d: u32) {
    if (0..=9999).contains(&y) {
        let y = y as u32;
        out.extend_from_slice(&[
            b'0' + (y / 1000) as u8,
            b'0' + (y / 100 % 10) as u8,
            b'0' + (y / 10 % 10) as u8,
            b'0' + (y % 10) as u8,
        ]);
    } else {
        // RFC 3339 has no such years; ISO 8601's expanded form keeps them readable.
        out.extend_from_slice(format!("{y:+05}").as_bytes());
    }
    out.push(b'-');
    write_2(out, m);
    out.push(b'-');
    write_2(out, d);
}

fn write_2(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10) as u8);
    out.push(b'0' + (v % 10) as u8);
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
