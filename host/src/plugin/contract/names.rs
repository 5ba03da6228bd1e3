//! The one rendering of a contract type, for every message and report that names one
//! (`plugin::input`'s type mismatches, `inspect`, schema differences):
//! `boolean`, `decimal(38, 0)`, `timestamp(millis, wall-clock)`, `timestamp(micros)` (an
//! instant), `list<date>`. The alternate form (`{:#}`) writes decimals without the space,
//! `decimal(38,0)`, as `inspect` and the schema differences always have.

use std::fmt;

use crate::bindings::types::{ColumnType, ScalarType, TimeUnit};

impl fmt::Display for ScalarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScalarType::Boolean => f.write_str("boolean"),
            ScalarType::Integer => f.write_str("integer"),
            ScalarType::Float => f.write_str("float"),
            ScalarType::Decimal((precision, scale)) if f.alternate() => {
                write!(f, "decimal({precision},{scale})")
            }
            ScalarType::Decimal((precision, scale)) => write!(f, "decimal({precision}, {scale})"),
            ScalarType::Text => f.write_str("text"),
            ScalarType::Json => f.write_str("json"),
            ScalarType::Date => f.write_str("date"),
            ScalarType::Timestamp(timestamp) => write!(
                f,
                "timestamp({}{})",
                timestamp.unit,
                if timestamp.wall_clock {
                    ", wall-clock"
                } else {
                    ""
                }
            ),
            ScalarType::Binary => f.write_str("binary"),
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::Scalar(scalar) => scalar.fmt(f),
            ColumnType::List(item) if f.alternate() => write!(f, "list<{item:#}>"),
            ColumnType::List(item) => write!(f, "list<{item}>"),
        }
    }
}

impl fmt::Display for TimeUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeUnit::Seconds => "seconds",
            TimeUnit::Millis => "millis",
            TimeUnit::Micros => "micros",
            TimeUnit::Nanos => "nanos",
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::bindings::types::TimestampType;

    use super::*;

    #[test]
    fn every_type_in_words() {
        let stamp = |unit, wall_clock| ScalarType::Timestamp(TimestampType { unit, wall_clock });
        let cases = [
            (ScalarType::Boolean, "boolean"),
            (ScalarType::Integer, "integer"),
            (ScalarType::Float, "float"),
            (ScalarType::Decimal((38, 2)), "decimal(38, 2)"),
            (ScalarType::Text, "text"),
            (ScalarType::Json, "json"),
            (ScalarType::Date, "date"),
            (ScalarType::Binary, "binary"),
            (
                stamp(TimeUnit::Millis, true),
                "timestamp(millis, wall-clock)",
            ),
            (stamp(TimeUnit::Micros, false), "timestamp(micros)"),
            (stamp(TimeUnit::Seconds, false), "timestamp(seconds)"),
            (stamp(TimeUnit::Nanos, true), "timestamp(nanos, wall-clock)"),
        ];
        for (scalar, words) in cases {
            assert_eq!(scalar.to_string(), words);
            assert_eq!(ColumnType::Scalar(scalar).to_string(), words);
            assert_eq!(
                ColumnType::List(scalar).to_string(),
                format!("list<{words}>")
            );
        }
    }

    #[test]
    fn the_alternate_form_writes_decimals_without_the_space() {
        let decimal = ScalarType::Decimal((38, 0));
        assert_eq!(format!("{decimal:#}"), "decimal(38,0)");
        assert_eq!(
            format!("{:#}", ColumnType::List(decimal)),
            "list<decimal(38,0)>"
        );
        assert_eq!(format!("{:#}", ScalarType::Date), "date");
    }
}
