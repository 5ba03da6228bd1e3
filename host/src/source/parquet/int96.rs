//! INT96 timestamps (the legacy Impala/Hive/Spark encoding; Snowflake never writes it): read
//! as **microseconds**, and checked against their raw julian day.
//!
//! arrow-rs reads INT96 as nanoseconds by default, which overflow `i64` outside 1677–2262
//! and wrap silently (`9999-12-31T03:00:00` became `1816-03-29T08:56:08.066277376`). An
//! `ArrowReaderOptions::with_schema` hint of `Timestamp(Microsecond)` makes it convert to
//! microseconds instead ([`micros_schema`]), which hold years 0001–9999 exactly (sub-µs
//! digits are dropped). The conversion still wraps for julian days beyond ±292,000 years, and
//! a wrapped value can land on any date, so the converted value is not trusted: the raw INT96
//! values of each row group's chunk are read again with the low-level column reader
//! ([`invalid_rows`]) and a value outside years 0001–9999 (or whose nanoseconds exceed a
//! day) is a row error, never another date. Only columns all of whose leaves are INT96 get
//! the hint (a plain column or a list of them); a struct mixing INT96 with other timestamps
//! keeps the default (the plugin contract refuses structs anyway).

use std::sync::Arc;

use ::parquet::basic::Type as PhysicalType;
use ::parquet::column::reader::ColumnReaderImpl;
use ::parquet::data_type::{Int96, Int96Type};
use ::parquet::errors::ParquetError;
use ::parquet::file::metadata::ParquetMetaData;
use ::parquet::file::reader::ChunkReader;
use ::parquet::file::serialized_reader::SerializedPageReader;
use ::parquet::file::statistics::Statistics;
use ::parquet::schema::types::SchemaDescriptor;
use arrow_schema::{DataType, Field, Schema, TimeUnit};

/// Julian day number of 0001-01-01 (proleptic Gregorian), the first day read.
pub const JULIAN_DAY_FIRST: i64 = 1_721_426;
/// Julian day number of 9999-12-31, the last day read.
pub const JULIAN_DAY_LAST: i64 = 5_373_484;
/// Julian day number of 1970-01-01.
const JULIAN_DAY_EPOCH: i64 = 2_440_588;
/// Nanoseconds in a day: an INT96's time of day is less.
const NANOS_PER_DAY: u64 = 86_400_000_000_000;
/// Records read from a column chunk at once while checking it.
const CHECK_RECORDS: usize = 4096;

/// An INT96 leaf column whose values are checked.
#[derive(Debug, Clone)]
pub(super) struct Int96Leaf {
    /// Its index among the file's leaf columns.
    pub(super) leaf: usize,
    /// The top-level column it belongs to.
    pub(super) root: usize,
    /// The top-level column's name.
    pub(super) name: String,
}

/// The INT96 leaves of top-level columns all of whose leaves are INT96 (the columns read as
/// microseconds).
pub(super) fn int96_leaves(schema: &SchemaDescriptor) -> Vec<Int96Leaf> {
    let roots = schema.root_schema().get_fields().len();
    let mut all_int96 = vec![true; roots];
    let mut any = vec![false; roots];
    for (leaf, column) in schema.columns().iter().enumerate() {
        let root = schema.get_column_root_idx(leaf);
        if column.physical_type() == PhysicalType::INT96 {
            any[root] = true;
        } else {
            all_int96[root] = false;
        }
    }
    schema
        .columns()
        .iter()
        .enumerate()
        .filter_map(|(leaf, _)| {
            let root = schema.get_column_root_idx(leaf);
            (any[root] && all_int96[root]).then(|| Int96Leaf {
                leaf,
                root,
                name: schema.root_schema().get_fields()[root].name().to_owned(),
            })
        })
        .collect()
}

/// `arrow` with the nanosecond timestamps of the `leaves`' top-level columns made
/// microseconds (the hint that makes arrow-rs convert INT96 to microseconds).
pub(super) fn micros_schema(arrow: &Schema, leaves: &[Int96Leaf]) -> Schema {
    let fields: Vec<Field> = arrow
        .fields()
        .iter()
        .enumerate()
        .map(|(index, field)| {
            if leaves.iter().any(|leaf| leaf.root == index) {
                field
                    .as_ref()
                    .clone()
                    .with_data_type(to_micros(field.data_type()))
            } else {
                field.as_ref().clone()
            }
        })
        .collect();
    Schema::new_with_metadata(fields, arrow.metadata().clone())
}

fn to_micros(data_type: &DataType) -> DataType {
    let item = |field: &Arc<Field>| {
        Arc::new(
            field
                .as_ref()
                .clone()
                .with_data_type(to_micros(field.data_type())),
        )
    };
    match data_type {
        DataType::Timestamp(TimeUnit::Nanosecond, zone) => {
            DataType::Timestamp(TimeUnit::Microsecond, zone.clone())
        }
        DataType::List(field) => DataType::List(item(field)),
        DataType::LargeList(field) => DataType::LargeList(item(field)),
        DataType::FixedSizeList(field, size) => DataType::FixedSizeList(item(field), *size),
        other => other.clone(),
    }
}

/// Why an INT96 value cannot be read as a timestamp of years 0001–9999, if it cannot.
pub fn int96_problem(value: &Int96) -> Option<String> {
    let [low, high, day] = *value.data() else {
        return Some("not 12 bytes".to_owned());
    };
    // The day is a signed 32-bit julian day (as arrow-rs reads it).
    let julian = i64::from(day as i32);
    let nanos = (u64::from(high) << 32) | u64::from(low);
    if !(JULIAN_DAY_FIRST..=JULIAN_DAY_LAST).contains(&julian) {
        return Some(format!(
            "the INT96 timestamp's julian day {julian} ({} days from 1970-01-01) is outside \
             years 0001–9999",
            julian - JULIAN_DAY_EPOCH
        ));
    }
    if nanos >= NANOS_PER_DAY {
        return Some(format!(
            "the INT96 timestamp's time of day ({nanos} ns) is longer than a day"
        ));
    }
    None
}

/// Why a column chunk's footer statistics show INT96 values stagepush cannot read, if they do.
pub fn int96_statistics_problem(statistics: &Statistics) -> Option<String> {
    let Statistics::Int96(values) = statistics else {
        return None;
    };
    [values.min_opt(), values.max_opt()]
        .into_iter()
        .flatten()
        .find_map(int96_problem)
}

/// The rows (within row group `group`, at or after `from`) whose value of `leaf` cannot be
/// read, with why: the raw INT96 values, read with the low-level column reader.
pub(super) fn invalid_rows<R: ChunkReader + 'static>(
    reader: Arc<R>,
    metadata: &ParquetMetaData,
    group: usize,
    leaf: &Int96Leaf,
    from: u64,
) -> Result<Vec<(u64, String)>, ParquetError> {
    let row_group = metadata.row_group(group);
    let chunk = row_group.column(leaf.leaf);
    let rows = usize::try_from(row_group.num_rows())
        .map_err(|_| ParquetError::General("a negative row count".into()))?;
    let pages = SerializedPageReader::new(reader, chunk, rows, None)?;
    let descr = metadata.file_metadata().schema_descr().column(leaf.leaf);
    let (max_def, repeated) = (descr.max_def_level(), descr.max_rep_level() > 0);
    let mut column = ColumnReaderImpl::<Int96Type>::new(descr, Box::new(pages));
    let (mut defs, mut reps, mut values) = (Vec::new(), Vec::new(), Vec::new());
    let mut invalid = Vec::new();
    let mut first_row = 0u64;
    loop {
        defs.clear();
        reps.clear();
        values.clear();
        let (records, _, levels) =
            column.read_records(CHECK_RECORDS, Some(&mut defs), Some(&mut reps), &mut values)?;
        if records == 0 {
            break;
        }
        let mut values_seen = values.iter();
        // The row of the level being looked at (rows start at repetition level 0).
        let mut row = first_row;
        for level in 0..levels {
            if level > 0 && (!repeated || reps[level] == 0) {
                row += 1;
            }
            let present = max_def == 0 || defs[level] == max_def;
            if !present {
                continue;
            }
            let Some(value) = values_seen.next() else {
                break;
            };
            if row >= from
                && invalid.last().is_none_or(|(last, _)| *last != row)
                && let Some(problem) = int96_problem(value)
            {
                invalid.push((row, format!("column `{}`: {problem}", leaf.name)));
            }
        }
        first_row += records as u64;
    }
    Ok(invalid)
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, NaiveDateTime};

    use super::*;

    /// The INT96 of `at` (Impala's layout: nanoseconds of the day, then the julian day).
    fn int96(at: NaiveDateTime) -> Int96 {
        let days = at
            .date()
            .signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap());
        let julian = days.num_days() + JULIAN_DAY_EPOCH;
        let nanos = at.time().signed_duration_since(chrono::NaiveTime::MIN);
        let nanos = nanos.num_nanoseconds().unwrap() as u64;
        Int96::from(vec![nanos as u32, (nanos >> 32) as u32, julian as u32])
    }

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").unwrap()
    }

    #[test]
    fn the_julian_day_bounds_are_years_1_and_9999() {
        let first = int96(at("0001-01-01T00:00:00"));
        let last = int96(at("9999-12-31T23:59:59"));
        assert_eq!(i64::from(first.data()[2]), JULIAN_DAY_FIRST);
        assert_eq!(i64::from(last.data()[2]), JULIAN_DAY_LAST);
        assert_eq!(int96_problem(&first), None);
        assert_eq!(int96_problem(&last), None);
        // arrow-rs's microseconds of the bounds are exact.
        let micros = |text: &str| at(text).and_utc().timestamp_micros();
        assert_eq!(last.to_micros(), micros("9999-12-31T23:59:59"));
        assert_eq!(first.to_micros(), micros("0001-01-01T00:00:00"));
        assert_eq!(
            int96(at("9999-12-31T03:00:00")).to_micros(),
            micros("9999-12-31T03:00:00")
        );
    }

    #[test]
    fn values_outside_years_1_to_9999_are_problems_even_where_the_conversion_wraps() {
        let after = Int96::from(vec![0, 0, (JULIAN_DAY_LAST + 1) as u32]);
        let before = Int96::from(vec![0, 0, (JULIAN_DAY_FIRST - 1) as u32]);
        let problem = int96_problem(&after).unwrap();
        assert!(problem.contains("julian day 5373485"), "{problem}");
        assert!(problem.contains("outside years 0001–9999"), "{problem}");
        assert!(int96_problem(&before).is_some());
        // A julian day whose microseconds overflow i64: arrow-rs wraps it to some date.
        let wraps = Int96::from(vec![0, 0, 0x7fff_0000]);
        let wrapped = wraps.to_micros();
        assert_ne!(
            i128::from(wrapped),
            (i128::from(0x7fff_0000u32) - i128::from(JULIAN_DAY_EPOCH)) * 86_400_000_000,
            "the conversion wraps"
        );
        assert!(int96_problem(&wraps).is_some());
        let long_day = Int96::from(vec![0, 0x5000_0000, 2_460_000]);
        let problem = int96_problem(&long_day).unwrap();
        assert!(problem.contains("longer than a day"), "{problem}");
    }

    #[test]
    fn only_columns_of_int96_leaves_are_read_as_microseconds() {
        use ::parquet::arrow::parquet_to_arrow_schema;
        use ::parquet::schema::parser::parse_message_type;
        let descriptor = SchemaDescriptor::new(Arc::new(
            parse_message_type(
                "message schema {
                  optional int96 OLD;
                  optional int64 NANOS (TIMESTAMP(NANOS,false));
                  optional group MIXED { optional int96 A; optional int64 B; }
                  optional group OLDS (LIST) { repeated group list { optional int96 element; } }
                }",
            )
            .unwrap(),
        ));
        let leaves = int96_leaves(&descriptor);
        let names: Vec<(&str, usize, usize)> = leaves
            .iter()
            .map(|leaf| (leaf.name.as_str(), leaf.leaf, leaf.root))
            .collect();
        assert_eq!(names, [("OLD", 0, 0), ("OLDS", 4, 3)]);
        let arrow = parquet_to_arrow_schema(&descriptor, None).unwrap();
        let hinted = micros_schema(&arrow, &leaves);
        let micros = DataType::Timestamp(TimeUnit::Microsecond, None);
        assert_eq!(hinted.field(0).data_type(), &micros);
        assert_eq!(hinted.field(1), arrow.field(1), "INT64 nanoseconds stay");
        assert_eq!(hinted.field(2), arrow.field(2), "a mixed struct stays");
        let DataType::List(item) = hinted.field(3).data_type() else {
            panic!("{:?}", hinted.field(3));
        };
        assert_eq!(item.data_type(), &micros);
    }
}
