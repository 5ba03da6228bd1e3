//! Cell values: [`Value`] (a borrowed view of one cell of a batch, or of something a plugin
//! wants to write) and the exact types behind it ([`Decimal`], [`Timestamp`], [`Date`],
//! [`List`]), with their text forms.

use core::fmt;

use crate::batch::Data;
pub use crate::bindings::stagepush::transform::types::TimeUnit;

/// One cell: what [`Row::get`](crate::Row::get) returns and what entity builders accept.
///
/// Text, JSON, binary and list values borrow from the batch's buffers: getting a value never
/// allocates. `Display` prints the natural text form (decimals exactly, timestamps and dates as
/// RFC 3339, binary as base64, lists as JSON, null as `null`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// SQL NULL (or a column the plugin did not find; see [`Row::get`](crate::Row::get)).
    Null,
    /// BOOLEAN.
    Bool(bool),
    /// A 64-bit integer (Parquet INT32/INT64: columns the unload query cast to an integer).
    Int(i64),
    /// FLOAT / DOUBLE.
    Float(f64),
    /// NUMBER(p, s): exact. Snowflake's integer ids arrive as `Decimal` with scale 0.
    Decimal(Decimal),
    /// VARCHAR.
    Text(&'a str),
    /// VARIANT, OBJECT, ARRAY: JSON text. As a property it is embedded as JSON, not as a string.
    Json(&'a str),
    /// DATE.
    Date(Date),
    /// TIMESTAMP_NTZ (wall clock) or an instant.
    Timestamp(Timestamp),
    /// BINARY.
    Binary(&'a [u8]),
    /// A Parquet LIST cell. As a property it becomes JSON text (an array).
    List(List<'a>),
}

impl<'a> Value<'a> {
    /// True for [`Value::Null`].
    #[inline]
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The kind of value, for messages: `null`, `boolean`, `integer`, `float`, `decimal`,
    /// `text`, `json`, `date`, `timestamp`, `binary` or `list`.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Decimal(_) => "decimal",
            Value::Text(_) => "text",
            Value::Json(_) => "json",
            Value::Date(_) => "date",
            Value::Timestamp(_) => "timestamp",
            Value::Binary(_) => "binary",
            Value::List(_) => "list",
        }
    }

    /// The text of a `Text` or `Json` value.
    #[inline]
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            Value::Text(s) | Value::Json(s) => Some(s),
            _ => None,
        }
    }

    /// A boolean: `Bool`; integers and decimals `0`/`1`; text `true`/`false`/`1`/`0`
    /// (trimmed, any case). Anything else (including null) is `None`.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            Value::Int(0) => Some(false),
            Value::Int(1) => Some(true),
            Value::Decimal(d) => match d.to_i64() {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            Value::Text(s) => {
                let s = s.trim();
                if s.eq_ignore_ascii_case("true") || s == "1" {
                    Some(true)
                } else if s.eq_ignore_ascii_case("false") || s == "0" {
                    Some(false)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// An integer: `Int`; a `Decimal` whose value is a whole number that fits (the usual
    /// NUMBER(38,0) id); text holding a (trimmed) decimal integer. Anything else is `None`.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::Decimal(d) => d.to_i64(),
            Value::Text(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A float: `Float`, `Int`, `Decimal` (nearest f64) or text that parses as a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(f) => Some(f),
            Value::Int(i) => Some(i as f64),
            Value::Decimal(d) => Some(d.to_f64()),
            Value::Text(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// An exact decimal: `Decimal`, or `Int` as a scale-0 decimal.
    pub fn as_decimal(&self) -> Option<Decimal> {
        match *self {
            Value::Decimal(d) => Some(d),
            Value::Int(i) => Some(Decimal::new(i as i128, 0)),
            _ => None,
        }
    }

    /// A timestamp: `Timestamp`, or a `Date` as midnight (unit: seconds, wall clock).
    pub fn as_timestamp(&self) -> Option<Timestamp> {
        match *self {
            Value::Timestamp(t) => Some(t),
            Value::Date(d) => Some(d.to_timestamp()),
            _ => None,
        }
    }

    /// A date: `Date`, or the date part (UTC) of a `Timestamp`.
    pub fn as_date(&self) -> Option<Date> {
        match *self {
            Value::Date(d) => Some(d),
            Value::Timestamp(t) => Some(Date(t.split().0.div_euclid(86_400) as i32)),
            _ => None,
        }
    }

    /// The bytes of a `Binary` value (or of text).
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match *self {
            Value::Binary(b) => Some(b),
            Value::Text(s) | Value::Json(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The items of a `List` value.
    pub fn as_list(&self) -> Option<List<'a>> {
        match *self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The same value with surrounding whitespace removed from text (no allocation); other
    /// values unchanged. Whitespace-only text stays an empty `Text`, not null.
    #[inline]
    pub fn trimmed(self) -> Value<'a> {
        match self {
            Value::Text(s) => Value::Text(s.trim()),
            v => v,
        }
    }

    /// `Null` for empty (or, with [`trimmed`](Self::trimmed) first, blank) text; other values
    /// unchanged. Handy with [`EntityBuilder::prop`](crate::EntityBuilder::prop), which
    /// omits nulls.
    #[inline]
    pub fn empty_as_null(self) -> Value<'a> {
        match self {
            Value::Text("") => Value::Null,
            v => v,
        }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => fmt::Display::fmt(b, f),
            Value::Int(i) => fmt::Display::fmt(i, f),
            Value::Float(x) => fmt::Display::fmt(x, f),
            Value::Decimal(d) => fmt::Display::fmt(d, f),
            Value::Text(s) | Value::Json(s) => f.write_str(s),
            Value::Date(d) => fmt::Display::fmt(d, f),
            Value::Timestamp(t) => fmt::Display::fmt(t, f),
            Value::Binary(b) => {
                let mut out = Vec::with_capacity(b.len().div_ceil(3) * 4);
                crate::json::base64(&mut out, b);
                f.write_str(core::str::from_utf8(&out).map_err(|_| fmt::Error)?)
            }
            Value::List(l) => {
                let mut out = Vec::new();
                crate::json::write_list(&mut out, l);
                f.write_str(core::str::from_utf8(&out).map_err(|_| fmt::Error)?)
            }
        }
    }
}

/// An exact decimal number: `value × 10^-scale` (Snowflake NUMBER(p, s), p ≤ 38).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decimal {
    /// The unscaled integer.
    pub value: i128,
    /// Digits after the decimal point (negative: trailing zeros before it).
    pub scale: i8,
}

/// Longest decimal text: sign, 39 digits, 128 zeros.
const DECIMAL_BUF: usize = 176;

impl Decimal {
    /// `value × 10^-scale`.
    pub const fn new(value: i128, scale: i8) -> Self {
        Decimal { value, scale }
    }

    /// The value as an `i64` when it is a whole number that fits (any scale: `12.00` → 12).
    pub fn to_i64(self) -> Option<i64> {
        let v = if self.scale <= 0 {
            let f = 10i128.checked_pow(u32::from(self.scale.unsigned_abs()))?;
            self.value.checked_mul(f)?
        } else {
            match 10i128.checked_pow(self.scale as u32) {
                Some(f) if self.value % f == 0 => self.value / f,
                Some(_) => return None,
                // 10^scale exceeds any i128: only zero is whole.
                None if self.value == 0 => 0,
                None => return None,
            }
        };
        i64::try_from(v).ok()
    }

    /// The nearest `f64` (may round for more than ~15 significant digits).
    pub fn to_f64(self) -> f64 {
        (self.value as f64) * 10f64.powi(-i32::from(self.scale))
    }

    /// Exact text into a stack buffer: `-12.30` keeps its scale, scale 0 prints an integer.
    pub(crate) fn format(self, buf: &mut [u8; DECIMAL_BUF]) -> &str {
        let mut digits = [0u8; 40];
        let mut n = 0;
        let mut abs = self.value.unsigned_abs();
        // Nine digits at a time in u32 arithmetic, one wide division per chunk: WebAssembly
        // has no 64-bit multiply-high, so each u64 or u128 division by 10 would be a real
        // division, while a u32 one becomes a multiply and a shift.
        loop {
            let (rest, mut chunk) = match u32::try_from(abs) {
                Ok(small) => (0, small),
                Err(_) => (abs / 1_000_000_000, (abs % 1_000_000_000) as u32),
            };
            let chunk_start = n;
            while chunk != 0 || n == chunk_start || (rest != 0 && n - chunk_start < 9) {
                digits[39 - n] = b'0' + (chunk % 10) as u8;
                chunk /= 10;
                n += 1;
            }
            if rest == 0 {
                break;
            }
            abs = rest;
        }
        let digits = &digits[40 - n..];
        let mut len = 0;
        let mut push = |bytes: &[u8]| {
            buf[len..len + bytes.len()].copy_from_slice(bytes);
            len += bytes.len();
        };
        if self.value < 0 {
            push(b"-");
        }
        if self.scale <= 0 {
            push(digits);
            if self.value != 0 {
                for _ in 0..self.scale.unsigned_abs() {
                    push(b"0");
                }
            }
        } else {
            let s = self.scale as usize;
            if n > s {
                push(&digits[..n - s]);
                push(b".");
                push(&digits[n - s..]);
            } else {
                push(b"0.");
                for _ in 0..s - n {
                    push(b"0");
                }
                push(digits);
            }
        }
        // Only ASCII digits, '-' and '.' were written.
        core::str::from_utf8(&buf[..len]).unwrap_or_default()
    }

    /// Appends the exact text (as [`Display`](fmt::Display) prints it).
    pub fn write_to(self, out: &mut Vec<u8>) {
        let mut buf = [0u8; DECIMAL_BUF];
        out.extend_from_slice(self.format(&mut buf).as_bytes());
    }
}

impl fmt::Display for Decimal {
    /// Exact: `Decimal::new(-1230, 2)` prints `-12.30`, `Decimal::new(42, 0)` prints `42`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; DECIMAL_BUF];
        f.write_str(self.format(&mut buf))
    }
}

/// Days since 1970-01-01 (Snowflake DATE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date(pub i32);

impl Date {
    /// The date of a (proleptic Gregorian) year, month (1-12) and day (1-31).
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Date {
        Date(days_from_civil(i64::from(year), month, day) as i32)
    }

    /// (year, month 1-12, day 1-31).
    pub fn ymd(self) -> (i64, u32, u32) {
        civil_from_days(i64::from(self.0))
    }

    /// Midnight of this date, as a wall-clock timestamp in seconds.
    pub fn to_timestamp(self) -> Timestamp {
        Timestamp {
            value: i64::from(self.0) * 86_400,
            unit: TimeUnit::Seconds,
            wall_clock: true,
        }
    }

    pub(crate) fn format(self, buf: &mut [u8; 32]) -> &str {
        let (y, m, d) = self.ymd();
        let mut w = StackWriter { buf, len: 0 };
        write_ymd(&mut w, y, m, d);
        w.into_str()
    }

    /// Appends `YYYY-MM-DD`.
    pub fn write_to(self, out: &mut Vec<u8>) {
        let mut buf = [0u8; 32];
        out.extend_from_slice(self.format(&mut buf).as_bytes());
    }
}

impl fmt::Display for Date {
    /// RFC 3339 full-date: `2024-05-01`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 32];
        f.write_str(self.format(&mut buf))
    }
}

/// A timestamp: `value` units since 1970-01-01T00:00:00.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// Units since the epoch.
    pub value: i64,
    /// The unit of `value`.
    pub unit: TimeUnit,
    /// True for a local date-time with no zone (Snowflake TIMESTAMP_NTZ); false for an
    /// instant (UTC). Entities carry only `value` and `unit`: the host decides how
    /// wall-clock times are sent.
    pub wall_clock: bool,
}

impl Timestamp {
    /// A timestamp in milliseconds (not wall clock).
    pub const fn from_millis(value: i64) -> Timestamp {
        Timestamp {
            value,
            unit: TimeUnit::Millis,
            wall_clock: false,
        }
    }

    /// Whole seconds since the epoch (floored) and the nanoseconds within that second.
    pub fn split(self) -> (i64, u32) {
        let per_sec = self.unit.per_second();
        (
            self.value.div_euclid(per_sec),
            (self.value.rem_euclid(per_sec) * (1_000_000_000 / per_sec)) as u32,
        )
    }

    /// Milliseconds since the epoch (floored), whatever the unit; `None` on overflow.
    pub fn to_millis(self) -> Option<i64> {
        match self.unit {
            TimeUnit::Seconds => self.value.checked_mul(1000),
            TimeUnit::Millis => Some(self.value),
            TimeUnit::Micros => Some(self.value.div_euclid(1000)),
            TimeUnit::Nanos => Some(self.value.div_euclid(1_000_000)),
        }
    }

    pub(crate) fn format(self, buf: &mut [u8; 48]) -> &str {
        let (secs, nanos) = self.split();
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400) as u32;
        let mut w = StackWriter { buf, len: 0 };
        write_ymd(&mut w, y, m, d);
        w.push(b'T');
        w.digits(u64::from(sod / 3600), 2);
        w.push(b':');
        w.digits(u64::from(sod / 60 % 60), 2);
        w.push(b':');
        w.digits(u64::from(sod % 60), 2);
        let frac = match self.unit {
            TimeUnit::Seconds => 0,
            TimeUnit::Millis => 3,
            TimeUnit::Micros => 6,
            TimeUnit::Nanos => 9,
        };
        if frac > 0 {
            w.push(b'.');
            w.digits(u64::from(nanos) / 10u64.pow(9 - frac), frac as usize);
        }
        w.push(b'Z');
        w.into_str()
    }

    /// Appends the RFC 3339 text (as [`Display`](fmt::Display) prints it).
    pub fn write_to(self, out: &mut Vec<u8>) {
        let mut buf = [0u8; 48];
        out.extend_from_slice(self.format(&mut buf).as_bytes());
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with the unit's precision: `2024-05-01T12:34:56.789Z` (millis),
    /// `…:56Z` (seconds), 6 or 9 fraction digits for micros and nanos. A wall-clock
    /// (NTZ) value is printed as if it were UTC.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 48];
        f.write_str(self.format(&mut buf))
    }
}

impl TimeUnit {
    /// Units per second: 1, 1 000, 1 000 000 or 1 000 000 000.
    pub const fn per_second(self) -> i64 {
        match self {
            TimeUnit::Seconds => 1,
            TimeUnit::Millis => 1_000,
            TimeUnit::Micros => 1_000_000,
            TimeUnit::Nanos => 1_000_000_000,
        }
    }

    /// `seconds`, `millis`, `micros` or `nanos`.
    pub const fn name(self) -> &'static str {
        match self {
            TimeUnit::Seconds => "seconds",
            TimeUnit::Millis => "millis",
            TimeUnit::Micros => "micros",
            TimeUnit::Nanos => "nanos",
        }
    }
}

/// The items of one list cell, borrowed from the batch.
#[derive(Clone, Copy)]
pub struct List<'a> {
    pub(crate) items: &'a Data<'a>,
    pub(crate) item_nulls: &'a [u8],
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl<'a> List<'a> {
    /// Number of items.
    #[inline]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when the list has no items.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Item `i` (`Null` for a null item or past the end).
    pub fn get(&self, i: usize) -> Value<'a> {
        let j = self.start + i;
        if j >= self.end || self.item_nulls.get(j).is_some_and(|&n| n != 0) {
            return Value::Null;
        }
        self.items.get(j)
    }

    /// The items, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Value<'a>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

impl PartialEq for List<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl fmt::Debug for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

// ---------------------------------------------------------------------------------------
// Calendar arithmetic (Howard Hinnant's algorithms, proleptic Gregorian) and small writers.

pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
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

pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

struct StackWriter<'b, const N: usize> {
    buf: &'b mut [u8; N],
    len: usize,
}

impl<'b, const N: usize> StackWriter<'b, N> {
    fn push(&mut self, b: u8) {
        if self.len < N {
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    /// `v` in decimal, zero-padded to at least `width` digits.
    fn digits(&mut self, mut v: u64, width: usize) {
        let mut tmp = [b'0'; 20];
        let mut n = 0;
        while v != 0 || n < width {
            tmp[19 - n] = b'0' + (v % 10) as u8;
            v /= 10;
            n += 1;
        }
        for &b in &tmp[20 - n..] {
            self.push(b);
        }
    }

    fn into_str(self) -> &'b str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

fn write_ymd<const N: usize>(w: &mut StackWriter<'_, N>, y: i64, m: u32, d: u32) {
    if y < 0 {
        w.push(b'-');
    }
    w.digits(y.unsigned_abs(), 4);
    w.push(b'-');
    w.digits(u64::from(m), 2);
    w.push(b'-');
    w.digits(u64::from(d), 2);
}

/// Appends the decimal text of an integer (no allocation).
pub(crate) fn write_i64(out: &mut Vec<u8>, v: i64) {
    let mut tmp = [0u8; 20];
    let mut n = 0;
    let mut u = v.unsigned_abs();
    loop {
        tmp[19 - n] = b'0' + (u % 10) as u8;
        u /= 10;
        n += 1;
        if u == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&tmp[20 - n..]);
}

/// Conversion into a [`Value`] for entity builders: implemented for [`Value`], `&str`,
/// `String`, `Cow<str>`, `bool`, the integer types, `f32`/`f64`, [`Decimal`],
/// [`Timestamp`], [`Date`], [`List`], and `Option<T>` of any of them (`None` is null).
///
/// It hands the value to a closure so owned values (`String`) can be lent without copying.
pub trait IntoValue {
    /// Calls `f` with the value.
    fn with_value<R>(self, f: impl FnOnce(Value<'_>) -> R) -> R;
}

impl IntoValue for Value<'_> {
    #[inline]
    fn with_value<R>(self, f: impl FnOnce(Value<'_>) -> R) -> R {
        f(self)
    }
}

impl IntoValue for &Value<'_> {
    #[inline]
    fn with_value<R>(self, f: impl FnOnce(Value<'_>) -> R) -> R {
        f(*self)
    }
}

impl IntoValue for &str {
    #[inline]
    fn with_value<R>(self, f: impl FnOnce(Value<'_>) -> R) -> R {
        f(Value::Text(self))
    }
}

impl IntoValue for &String {
    #[inline]
    fn with_value<R>(self, f: impl FnOnce(Value<'_>) -> R) -> R {
        f(Value::Text(self))
    }
}

impl IntoValue for String {
    #[inline]
    fn with_value<R>(self, f: impl FnOnce(Value<'_>) -> R) -> R {
        f(Value::Text(&self))
    }
}

impl IntoValue for std::borrow::Cow<'_, str> {
    #[inline]
    fn with_value<R>(self, f: impl FnOnce(Value<'_>) -> R) -> R {
        f(Value::Text(&self))
    }
}

impl IntoValue for bool {
    #[inline]
    fn with_value<R>(self, f: impl FnOnce(Value<'_>) -> R) -> R {
        f(Value::Bool(self))
    }
}

macro_rules! into_int {
    ($($t:ty),*) => {$(
        impl IntoValue for $t {
            #[inline]
            fn with_value<R>(self, f: impl FnOnce(Value<'_>) -> R) -> R {
                f(Value::Int(i64::from(self)))
            }
        }
    )*};
}
into_int!(i8, i16, i32, i64, u8, u16, u32);

macro_rules! into_wide_int {
    ($($t:ty),*) => {$(
        impl IntoValue for $t {
            /// An `Int` when it fits in `i64`, else an exact scale-0 `Decimal`.
            #[inline]
            fn with_value<R>(self, f: impl FnOnce(Value<'_>) -> R) -> R {
                match i64::try_from(self) {
                    Ok(i) => f(Value::Int(i)),
                    Err(_) => f(Value::Decimal(Decimal::new(self as i128, 0))),
                }
            }
        }
    )*};
}
into_wide_int!(u64, usize, isize);

impl IntoValue for f64 {
    #[inline]
    fn with_value<R>(self, f: impl FnOnce(Value<'_>) -> R) -> R {
        f(Value::Float(self))
    }
}

impl IntoValue for f32 {
    #[inline]
    fn with_value<R>(self, f: impl FnOnce(Value<'_>) -> R) -> R {
        f(Value::Float(f64::from(self)))
    }
}

impl IntoValue for Decimal {
    #[inline]
    fn with_value<R>(self, f: impl FnOnce(Value<'_>) -> R) -> R {
        f(Value::Decimal(self))
    }
}

impl IntoValue for Timestamp {
    #[inline]
    fn with_value<R>(self, f: impl FnOnce(Value<'_>) -> R) -> R {
        f(Value::Timestamp(self))
    }
}

impl IntoValue for Date {
    #[inline]
    fn with_value<R>(self, f: impl FnOnce(Value<'_>) -> R) -> R {
        f(Value::Date(self))
    }
}

impl IntoValue for List<'_> {
    #[inline]
    fn with_value<R>(self, f: impl FnOnce(Value<'_>) -> R) -> R {
        f(Value::List(self))
    }
}

impl<T: IntoValue> IntoValue for Option<T> {
    #[inline]
    fn with_value<R>(self, f: impl FnOnce(Value<'_>) -> R) -> R {
        match self {
            Some(v) => v.with_value(f),
            None => f(Value::Null),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(v: i128, s: i8) -> String {
        Decimal::new(v, s).to_string()
    }

    #[test]
    fn decimal_text_is_exact() {
        assert_eq!(dec(-1230, 2), "-12.30");
        assert_eq!(dec(42, 0), "42");
        assert_eq!(dec(0, 0), "0");
        assert_eq!(dec(0, 2), "0.00");
        assert_eq!(dec(5, 3), "0.005");
        assert_eq!(dec(-5, 3), "-0.005");
        assert_eq!(dec(123, 3), "0.123");
        assert_eq!(dec(12, -2), "1200");
        assert_eq!(dec(0, -2), "0");
        let max = 10i128.pow(38) - 1;
        assert_eq!(dec(max, 0), "9".repeat(38));
        assert_eq!(
            dec(-max, 10),
            format!("-{}.{}", "9".repeat(28), "9".repeat(10))
        );
        assert_eq!(
            dec(i128::MIN, 0),
            "-170141183460469231731687303715884105728"
        );
        assert_eq!(dec(1, 127).len(), 129);
        assert_eq!(dec(i128::MIN, -128).len(), 1 + 39 + 128);
        // Each side of the u32 and u64 limits and of nine-digit chunks, signed.
        for v in [
            999_999_999,
            1_000_000_000,
            5_000_000_000,
            1_000_000_000_000_000_007,
            10i128.pow(27),
            u32::MAX as i128 - 1,
            u32::MAX as i128,
            u32::MAX as i128 + 1,
            u64::MAX as i128,
            u64::MAX as i128 + 1,
        ] {
            assert_eq!(dec(v, 0), v.to_string());
            assert_eq!(dec(-v, 0), (-v).to_string());
        }
    }

    #[test]
    fn decimal_to_i64() {
        assert_eq!(Decimal::new(42, 0).to_i64(), Some(42));
        assert_eq!(Decimal::new(-4200, 2).to_i64(), Some(-42));
        assert_eq!(Decimal::new(4201, 2).to_i64(), None);
        assert_eq!(Decimal::new(42, -3).to_i64(), Some(42_000));
        assert_eq!(Decimal::new(i64::MAX as i128 + 1, 0).to_i64(), None);
        assert_eq!(Decimal::new(i64::MIN as i128, 0).to_i64(), Some(i64::MIN));
        assert_eq!(Decimal::new(0, 100).to_i64(), Some(0));
        assert_eq!(Decimal::new(1, 100).to_i64(), None);
        assert_eq!(Decimal::new(1, -100).to_i64(), None);
        assert!((Decimal::new(-1230, 2).to_f64() + 12.3).abs() < 1e-12);
    }

    #[test]
    fn timestamp_text_is_rfc3339_utc() {
        let ts = |value, unit| {
            Timestamp {
                value,
                unit,
                wall_clock: true,
            }
            .to_string()
        };
        assert_eq!(ts(0, TimeUnit::Seconds), "1970-01-01T00:00:00Z");
        assert_eq!(
            ts(1_714_566_896_789, TimeUnit::Millis),
            "2024-05-01T12:34:56.789Z"
        );
        assert_eq!(
            ts(1_714_566_896_000, TimeUnit::Millis),
            "2024-05-01T12:34:56.000Z"
        );
        assert_eq!(
            ts(1_714_566_896_000_001, TimeUnit::Micros),
            "2024-05-01T12:34:56.000001Z"
        );
        assert_eq!(
            ts(1_714_566_896_123_456_789, TimeUnit::Nanos),
            "2024-05-01T12:34:56.123456789Z"
        );
        assert_eq!(ts(-1, TimeUnit::Millis), "1969-12-31T23:59:59.999Z");
        assert_eq!(ts(951_782_400, TimeUnit::Seconds), "2000-02-29T00:00:00Z");
        assert_eq!(
            ts(-62_135_596_800, TimeUnit::Seconds),
            "0001-01-01T00:00:00Z"
        );
        assert_eq!(
            ts(253_402_300_799, TimeUnit::Seconds),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(Timestamp::from_millis(-1).split(), (-1, 999_000_000));
        assert_eq!(
            Timestamp {
                value: 1_500,
                unit: TimeUnit::Micros,
                wall_clock: false
            }
            .to_millis(),
            Some(1)
        );
    }

    #[test]
    fn dates() {
        assert_eq!(Date(0).to_string(), "1970-01-01");
        assert_eq!(Date(19_844).to_string(), "2024-05-01");
        assert_eq!(Date(-1).to_string(), "1969-12-31");
        assert_eq!(Date::from_ymd(2024, 5, 1), Date(19_844));
        assert_eq!(Date::from_ymd(2000, 2, 29).ymd(), (2000, 2, 29));
        for d in [-800_000, -1, 0, 59, 60, 365, 11_016, 2_932_896] {
            let (y, m, dd) = Date(d).ymd();
            assert_eq!(Date::from_ymd(y as i32, m, dd), Date(d));
        }
        assert_eq!(Date(1).to_timestamp().value, 86_400);
        assert_eq!(
            Value::Timestamp(Date(1).to_timestamp()).as_date(),
            Some(Date(1))
        );
    }

    #[test]
    fn value_accessors() {
        assert_eq!(Value::Int(7).as_i64(), Some(7));
        assert_eq!(Value::Decimal(Decimal::new(700, 2)).as_i64(), Some(7));
        assert_eq!(Value::Text(" 12 ").as_i64(), Some(12));
        assert_eq!(Value::Text("12a").as_i64(), None);
        assert_eq!(Value::Float(1.0).as_i64(), None);
        assert_eq!(Value::Null.as_i64(), None);
        assert_eq!(Value::Bool(true).as_bool(), Some(true));
        assert_eq!(Value::Text("FALSE").as_bool(), Some(false));
        assert_eq!(Value::Int(1).as_bool(), Some(true));
        assert_eq!(Value::Int(2).as_bool(), None);
        assert_eq!(Value::Text("x").as_str(), Some("x"));
        assert_eq!(Value::Json("{}").as_str(), Some("{}"));
        assert_eq!(Value::Int(1).as_str(), None);
        assert_eq!(Value::Int(3).as_f64(), Some(3.0));
        assert_eq!(
            Value::Int(3).as_decimal(),
            Some(Decimal { value: 3, scale: 0 })
        );
        assert_eq!(Value::Text("  a ").trimmed(), Value::Text("a"));
        assert_eq!(Value::Text(" ").trimmed().empty_as_null(), Value::Null);
        assert_eq!(Value::Decimal(Decimal::new(-1230, 2)).to_string(), "-12.30");
        assert_eq!(Value::Binary(b"hi!").to_string(), "aGkh");
        assert_eq!(Value::Null.kind(), "null");
        assert!(Value::Null.is_null());
    }

    #[test]
    fn into_value() {
        fn v(x: impl IntoValue) -> String {
            x.with_value(|v| format!("{v:?}"))
        }
        assert_eq!(v("a"), "Text(\"a\")");
        assert_eq!(v(String::from("a")), "Text(\"a\")");
        assert_eq!(v(3u8), "Int(3)");
        assert_eq!(
            v(u64::MAX),
            "Decimal(Decimal { value: 18446744073709551615, scale: 0 })"
        );
        assert_eq!(v(None::<&str>), "Null");
        assert_eq!(v(Some(true)), "Bool(true)");
    }

    #[test]
    fn write_integers() {
        let mut out = Vec::new();
        for i in [0, 7, -7, i64::MAX, i64::MIN] {
            out.clear();
            write_i64(&mut out, i);
            assert_eq!(std::str::from_utf8(&out).unwrap(), i.to_string());
        }
    }
}
