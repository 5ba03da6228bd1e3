//! Snowflake's rows (`{"data": [[row_number, args…], …]}`) as the columns of one Arrow
//! batch, with types inferred per column over the request by [`crate::source::json`].

use serde_json::{Map, Value};

use crate::source::json::{JsonColumns, JsonError, JsonRows};

/// One input row's arguments (its number is in [`row_numbers`]).
#[derive(Debug)]
pub(super) struct InputRow {
    pub(super) args: Vec<Value>,
}

/// Why a request body is not Snowflake's rows.
#[derive(Debug, thiserror::Error)]
pub(super) enum BodyError {
    #[error("the body is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("the body must be {envelope}", envelope = ENVELOPE)]
    NoData,
    #[error("the body must be {envelope}: {0}", envelope = ENVELOPE)]
    NotEnvelope(serde_json::Error),
    #[error("data[{0}] is not [row_number, args…] with a numeric row number")]
    BadRow(usize),
}

/// Parses `{"data": [[row_number, args…], …]}` (the rows keep the parsed values: nothing
/// is copied).
pub(super) fn parse_rows(body: &[u8]) -> Result<Vec<InputRow>, BodyError> {
    let mut value: Value = serde_json::from_slice(body).map_err(BodyError::NotJson)?;
    let Some(Value::Array(data)) = value.get_mut("data").map(Value::take) else {
        return Err(BodyError::NoData);
    };
    data.into_iter()
        .enumerate()
        .map(|(i, row)| match row {
            Value::Array(mut cells) if cells.first().is_some_and(Value::is_number) => {
                cells.remove(0);
                Ok(InputRow { args: cells })
            }
            _ => Err(BodyError::BadRow(i)),
        })
        .collect()
}

/// Checks that `body` is `{"data": [[row_number, args…], …]}` and returns the row numbers,
/// without keeping the arguments (a request waiting for a plugin holds its body and these
/// numbers only; [`parse_rows`] parses the rows when the plugin runs).
pub(super) fn row_numbers(body: &[u8]) -> Result<Vec<Value>, BodyError> {
    use serde_json::error::Category;
    match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope(numbers)) => Ok(numbers),
        Err(e)
            if matches!(
                e.classify(),
                Category::Syntax | Category::Eof | Category::Io
            ) =>
        {
            Err(BodyError::NotJson(e))
        }
        Err(e) => Err(BodyError::NotEnvelope(e)),
    }
}

const ENVELOPE: &str = r#"{"data": [[row_number, args…], …]}"#;

/// The row numbers of `{"data": [[row_number, args…], …]}` (the arguments are skipped).
struct Envelope(Vec<Value>);

impl<'de> serde::Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, IgnoredAny, MapAccess, SeqAccess, Visitor};

        struct EnvelopeVisitor;
        struct DataSeed;
        struct RowSeed(usize);

        impl<'de> Visitor<'de> for EnvelopeVisitor {
            type Value = Envelope;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(ENVELOPE)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
                let mut numbers = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "data" {
                        numbers = Some(map.next_value_seed(DataSeed)?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                numbers
                    .map(Envelope)
                    .ok_or_else(|| A::Error::custom("it has no \"data\""))
            }
        }

        impl<'de> serde::de::DeserializeSeed<'de> for DataSeed {
            type Value = Vec<Value>;
            fn deserialize<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Vec<Value>, D::Error> {
                d.deserialize_seq(self)
            }
        }

        impl<'de> Visitor<'de> for DataSeed {
            type Value = Vec<Value>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"data\" as an array of rows")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
                let mut numbers = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(number) = seq.next_element_seed(RowSeed(numbers.len()))? {
                    numbers.push(number);
                }
                Ok(numbers)
            }
        }

        impl<'de> serde::de::DeserializeSeed<'de> for RowSeed {
            type Value = Value;
            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
                d.deserialize_seq(self)
            }
        }

        impl<'de> Visitor<'de> for RowSeed {
            type Value = Value;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(
                    f,
                    "data[{}] as [row_number, args…] with a numeric row number",
                    self.0
                )
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let number = match seq.next_element::<Value>()? {
                    Some(number) if number.is_number() => number,
                    _ => {
                        return Err(A::Error::custom(format!(
                            "data[{}] is not [row_number, args…] with a numeric row number",
                            self.0
                        )));
                    }
                };
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(number)
            }
        }

        d.deserialize_map(EnvelopeVisitor)
    }
}

/// Which arguments are OBJECTs (their keys are columns) and which are positional.
pub(super) struct Layout {
    object_arg: Vec<bool>,
}

impl Layout {
    pub(super) fn of(rows: &[InputRow]) -> Self {
        let width = rows.iter().map(|r| r.args.len()).max().unwrap_or(0);
        let object_arg = (0..width)
            .map(|i| {
                rows.iter()
                    .any(|r| r.args.get(i).is_some_and(Value::is_object))
            })
            .collect();
        Self { object_arg }
    }

    /// The row's columns and values in argument order (an OBJECT's keys as parsed); a
    /// later column of the same name wins.
    fn cells<'a>(
        &self,
        row: &'a InputRow,
        mut each: impl FnMut(&'a str, Option<usize>, &'a Value),
    ) {
        for (i, arg) in row.args.iter().enumerate() {
            if self.object_arg.get(i).copied().unwrap_or(false) {
                if let Value::Object(fields) = arg {
                    for (k, v) in fields {
                        each(k, None, v);
                    }
                }
            } else {
                each("", Some(i), arg);
            }
        }
    }

    /// The row as a JSON object of its columns (dead letters), made only when needed.
    pub(super) fn input(&self, row: &InputRow) -> Value {
        let mut object = Map::new();
        self.cells(row, |name, position, value| {
            let name = match position {
                Some(i) => format!("ARG{i}"),
                None => name.to_owned(),
            };
            object.insert(name, value.clone());
        });
        Value::Object(object)
    }
}

/// Builds the batch: OBJECT arguments' keys and positional `ARG<i>` columns, types inferred
/// by [`crate::source::json`] (the rules `plugin test --json-input` uses too). The cells are
/// borrowed from the rows (no copy of the parsed values).
pub(super) fn columns(rows: &[InputRow]) -> Result<JsonColumns, JsonError> {
    let layout = Layout::of(rows);
    let mut builder = JsonRows::with_capacity(rows.len());
    for row in rows {
        builder.start_row();
        layout.cells(row, |name, position, value| match position {
            Some(i) => builder.cell(&format!("ARG{i}"), value),
            None => builder.cell(name, value),
        });
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rows(value: Value) -> Vec<InputRow> {
        parse_rows(json!({ "data": value }).to_string().as_bytes()).unwrap()
    }

    #[test]
    fn objects_become_columns_and_positional_args_are_numbered() {
        let rows = rows(json!([
            [0, "CUST-1", {"NAME": "Acme", "N": 1}, "2025-08-20 03:14:07.000"],
            [1, "CUST-2", null, "2025-08-20 03:15:11.250"],
            [2, null, {"NAME": "Globex", "N": 2.5, "TAGS": ["a"]}, null],
        ]));
        let cols = columns(&rows).unwrap();
        let described: Vec<(String, String)> = cols
            .schema
            .iter()
            .map(|c| (c.name.clone(), format!("{:?}", c.type_)))
            .collect();
        let names: Vec<&str> = described.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["ARG0", "N", "NAME", "ARG2", "TAGS"]);
        assert!(described[0].1.contains("Text"), "{described:?}");
        assert!(described[1].1.contains("Float"), "{described:?}");
        assert!(described[3].1.contains("Timestamp"), "{described:?}");
        assert!(described[4].1.contains("Json"), "{described:?}");
        assert_eq!(cols.batch.num_rows(), 3);
        let layout = Layout::of(&rows);
        assert_eq!(layout.input(&rows[1])["ARG0"], "CUST-2");
        assert_eq!(layout.input(&rows[0])["NAME"], "Acme");
        assert!(layout.input(&rows[1]).get("NAME").is_none());
    }

    #[test]
    fn bad_bodies_are_refused() {
        assert!(parse_rows(b"not json").is_err());
        assert!(parse_rows(br#"{"rows": []}"#).is_err());
        assert!(parse_rows(br#"{"data": [["x", 1]]}"#).is_err());
        assert!(parse_rows(br#"{"data": []}"#).unwrap().is_empty());
        let refused = |body: &[u8]| row_numbers(body).unwrap_err().to_string();
        assert!(refused(b"not json").starts_with("the body is not JSON"));
        assert!(refused(br#"{"rows": []}"#).contains("no \"data\""));
        assert!(refused(br#"[1]"#).contains(ENVELOPE));
        let message = refused(br#"{"data": [[0, 1], ["x", 1]]}"#);
        assert!(message.contains("data[1] is not [row_number"), "{message}");
        let message = refused(br#"{"data": [[0, 1], {"a": 1}]}"#);
        assert!(message.contains("data[1] as [row_number"), "{message}");
        assert!(row_numbers(br#"{"data": []}"#).unwrap().is_empty());
    }

    #[test]
    fn row_numbers_skip_the_arguments_parse_rows_keeps() {
        let body =
            br#"{"x": {"y": [1]}, "data": [[3, {"a": [1, {"b": 2}]}, "s"], [1.5], [7, null]]}"#;
        let numbers = row_numbers(body).unwrap();
        assert_eq!(numbers, vec![json!(3), json!(1.5), json!(7)]);
        let args: Vec<Vec<Value>> = parse_rows(body)
            .unwrap()
            .into_iter()
            .map(|r| r.args)
            .collect();
        assert_eq!(
            args,
            vec![
                vec![json!({"a": [1, {"b": 2}]}), json!("s")],
                vec![],
                vec![Value::Null]
            ]
        );
    }
}
