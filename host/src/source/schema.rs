//! The one schema diff: how a file's columns differ from the stage's, in words.
//!
//! A run reads one schema per stage (its first readable file's); [`describe_difference`]
//! says how another file's columns differ from it, for [`super::check_schema`]'s error,
//! the run's dead-letter reason and `inspect`'s warnings alike. It compares anything that
//! is a [`SchemaColumn`]: the contract's [`ColumnSchema`] (types as a plugin gets them,
//! [`describe_column`]) or `inspect`'s column report (Parquet types).

use super::stage::StageError;
use crate::bindings::types::ColumnSchema;

/// Differences named before "and N more".
const MAX_DIFFERENCES: usize = 3;

/// A column as [`describe_difference`] compares it: a name and a type.
pub trait SchemaColumn {
    /// The column name.
    fn column_name(&self) -> &str;
    /// True when `other` has the same type (and nullability).
    fn same_type(&self, other: &Self) -> bool;
    /// The type in words (`nullable decimal(38,0)`, `OPTIONAL INT64`).
    fn type_words(&self) -> String;
}

impl SchemaColumn for ColumnSchema {
    fn column_name(&self) -> &str {
        &self.name
    }

    fn same_type(&self, other: &Self) -> bool {
        self.type_ == other.type_ && self.nullable == other.nullable
    }

    fn type_words(&self) -> String {
        describe_column(self)
    }
}

/// Checks that `actual` (the columns of `file`) is the stage's schema `expected` (the
/// columns of `expected_from`); the error lists the first differences.
pub fn check_schema(
    expected: &[ColumnSchema],
    expected_from: &str,
    file: &str,
    actual: &[ColumnSchema],
) -> Result<(), StageError> {
    match describe_difference(expected, actual) {
        None => Ok(()),
        Some(difference) => Err(StageError::SchemaMismatch {
            object: file.to_owned(),
            expected_from: expected_from.to_owned(),
            difference,
        }),
    }
}

/// The first few differences between two column lists, in words, or `None` when they
/// have the same names and types in the same order: `2 columns instead of 3`, ``column 0
/// is `B` instead of `A` ``, ``column `X` is nullable text instead of non-null integer``,
/// ``extra column `X` ``, ``no column `X` ``, at most three, then `and N more`, joined by
/// `; `.
pub fn describe_difference<C: SchemaColumn>(expected: &[C], actual: &[C]) -> Option<String> {
    let mut differences = Vec::new();
    if expected.len() != actual.len() {
        differences.push(format!(
            "{} columns instead of {}",
            actual.len(),
            expected.len()
        ));
    }
    for (index, (want, got)) in expected.iter().zip(actual).enumerate() {
        if want.column_name() != got.column_name() {
            differences.push(format!(
                "column {index} is `{}` instead of `{}`",
                got.column_name(),
                want.column_name()
            ));
        } else if !want.same_type(got) {
            differences.push(format!(
                "column `{}` is {} instead of {}",
                got.column_name(),
                got.type_words(),
                want.type_words()
            ));
        }
    }
    for extra in actual.iter().skip(expected.len()) {
        differences.push(format!("extra column `{}`", extra.column_name()));
    }
    for missing in expected.iter().skip(actual.len()) {
        differences.push(format!("no column `{}`", missing.column_name()));
    }
    if differences.is_empty() {
        return None;
    }
    let more = differences.len().saturating_sub(MAX_DIFFERENCES);
    differences.truncate(MAX_DIFFERENCES);
    let mut text = differences.join("; ");
    if more > 0 {
        text.push_str(&format!("; and {more} more"));
    }
    Some(text)
}

/// `decimal(38,0)`, `nullable text`, `list<date>`: a column's contract type in words.
pub fn describe_column(column: &ColumnSchema) -> String {
    // The contract type's one rendering (plugin::contract::names), decimals unspaced.
    let type_ = &column.type_;
    if column.nullable {
        format!("nullable {type_:#}")
    } else {
        format!("non-null {type_:#}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::types::{ColumnType, ScalarType, TimeUnit, TimestampType};

    fn column(name: &str, scalar: ScalarType, nullable: bool) -> ColumnSchema {
        ColumnSchema {
            name: name.into(),
            type_: ColumnType::Scalar(scalar),
            nullable,
        }
    }

    fn schema() -> Vec<ColumnSchema> {
        vec![
            column("ID", ScalarType::Decimal((38, 0)), false),
            column("NAME", ScalarType::Text, true),
            column(
                "AT",
                ScalarType::Timestamp(TimestampType {
                    unit: TimeUnit::Millis,
                    wall_clock: true,
                }),
                true,
            ),
        ]
    }

    #[test]
    fn the_same_columns_have_no_difference() {
        assert_eq!(describe_difference(&schema(), &schema()), None);
        assert_eq!(describe_difference::<ColumnSchema>(&[], &[]), None);
    }

    #[test]
    fn renamed_and_retyped_columns_are_named() {
        let mut other = schema();
        other[0].name = "CUSTOMER_ID".into();
        other[1] = column("NAME", ScalarType::Integer, false);
        assert_eq!(
            describe_difference(&schema(), &other).unwrap(),
            "column 0 is `CUSTOMER_ID` instead of `ID`; column `NAME` is non-null integer \
             instead of nullable text"
        );
        let mut other = schema();
        other[1].nullable = false;
        assert_eq!(
            describe_difference(&schema(), &other).unwrap(),
            "column `NAME` is non-null text instead of nullable text"
        );
    }

    #[test]
    fn extra_and_missing_columns_are_counted_and_named() {
        let mut longer = schema();
        longer.push(column("EXTRA", ScalarType::Boolean, true));
        assert_eq!(
            describe_difference(&schema(), &longer).unwrap(),
            "4 columns instead of 3; extra column `EXTRA`"
        );
        assert_eq!(
            describe_difference(&schema(), &schema()[..1]).unwrap(),
            "1 columns instead of 3; no column `NAME`; no column `AT`"
        );
    }

    #[test]
    fn at_most_three_differences_then_how_many_more() {
        let other: Vec<ColumnSchema> = schema()
            .into_iter()
            .map(|mut column| {
                column.name.push('X');
                column
            })
            .collect();
        assert_eq!(
            describe_difference(&schema(), &other[..2]).unwrap(),
            "2 columns instead of 3; column 0 is `IDX` instead of `ID`; column 1 is `NAMEX` \
             instead of `NAME`; and 1 more"
        );
    }

    #[test]
    fn contract_types_in_words() {
        assert_eq!(describe_column(&schema()[0]), "non-null decimal(38,0)");
        assert_eq!(
            describe_column(&schema()[2]),
            "nullable timestamp(millis, wall-clock)"
        );
        let list = ColumnSchema {
            name: "L".into(),
            type_: ColumnType::List(ScalarType::Date),
            nullable: true,
        };
        assert_eq!(describe_column(&list), "nullable list<date>");
    }
}
