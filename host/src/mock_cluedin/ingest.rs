//! What the mock does with a decoded body: parse, validate, and the answers' JSON shapes.

use serde::Serialize;
use serde_json::{Map, Value};

/// CluedIn's limit of rows per request.
pub const DEFAULT_MAX_ROWS: usize = 100_000;
/// CluedIn's limit of columns (after flattening).
pub const DEFAULT_MAX_COLUMNS: usize = 490;

/// Limits applied to a body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits<'a> {
    pub max_rows: usize,
    pub max_columns: usize,
    /// `--reject-external-id`: records with one of these `externalId`s are row errors.
    pub reject_ids: &'a [String],
}

/// An entry of `warnings[]` (`docs/reference/cluedin-endpoint.md`: `rowIndex` is a **string** here).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WarningEntry {
    pub row_index: String,
    pub property: String,
    pub message_id: &'static str,
    pub level: &'static str,
    pub error_message: String,
}

/// An entry of `errors[]` (`docs/reference/cluedin-endpoint.md`: `rowIndex` is a **number** here, -1 for the whole body).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorEntry {
    pub row_index: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    pub message_id: &'static str,
    pub level: &'static str,
    pub domain: &'static str,
    pub error_message: String,
}

impl ErrorEntry {
    pub(crate) fn body(
        message_id: &'static str,
        domain: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            row_index: -1,
            property: None,
            message_id,
            level: "error",
            domain,
            error_message: message.into(),
        }
    }
}

/// The 200 body: `{"success":true,"warning":…,"warnings":[…],"error":false,"receiptId":"…"}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SuccessBody<'a> {
    pub success: bool,
    pub warning: bool,
    pub warnings: &'a [WarningEntry],
    pub error: bool,
    pub receipt_id: &'a str,
}

/// The 400 body: `{"success":false,"error":true,"receiptId":"…","errors":[…]}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorBody<'a> {
    pub success: bool,
    pub error: bool,
    pub receipt_id: &'a str,
    pub errors: &'a [ErrorEntry],
}

/// The verdict on a body.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Store the records, answer 200 with these warnings.
    Accepted {
        records: Vec<Value>,
        warnings: Vec<WarningEntry>,
    },
    /// Store nothing, answer `status` with these errors.
    Rejected {
        status: u16,
        rows: Option<usize>,
        errors: Vec<ErrorEntry>,
    },
}

/// Parses and validates a decoded body.
pub(crate) fn ingest(body: &[u8], ndjson: bool, limits: Limits<'_>) -> Verdict {
    let rows = match parse_rows(body, ndjson) {
        Ok(rows) => rows,
        Err(errors) => {
            return Verdict::Rejected {
                status: 400,
                rows: None,
                errors,
            };
        }
    };
    if rows.len() > limits.max_rows {
        let msg = format!(
            "{} rows sent; at most {} rows are accepted per request",
            rows.len(),
            limits.max_rows
        );
        return Verdict::Rejected {
            status: 413,
            rows: Some(rows.len()),
            errors: vec![ErrorEntry::body("too-many-rows", "validation", msg)],
        };
    }
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        match row {
            Value::Object(map) => check_row(i, map, limits, &mut warnings, &mut errors),
            _ => errors.push(ErrorEntry {
                row_index: i as i64,
                property: None,
                message_id: "invalid-object",
                level: "error",
                domain: "parsing",
                error_message: format!("row {i} is not a JSON object"),
            }),
        }
    }
    if errors.is_empty() {
        Verdict::Accepted {
            records: rows,
            warnings,
        }
    } else {
        Verdict::Rejected {
            status: 400,
            rows: Some(rows.len()),
            errors,
        }
    }
}

fn parse_rows(body: &[u8], ndjson: bool) -> Result<Vec<Value>, Vec<ErrorEntry>> {
    if ndjson {
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        let lines = body
            .split(|&b| b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace));
        for (i, line) in lines.enumerate() {
            match serde_json::from_slice::<Value>(line) {
                Ok(v) => rows.push(v),
                Err(e) => {
                    rows.push(Value::Null);
                    errors.push(ErrorEntry {
                        row_index: i as i64,
                        property: None,
                        message_id: "invalid-json",
                        level: "error",
                        domain: "parsing",
                        error_message: format!("line {i} is not valid JSON: {e}"),
                    });
                }
            }
        }
        return if errors.is_empty() {
            Ok(rows)
        } else {
            Err(errors)
        };
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(rows)) => Ok(rows),
        Ok(_) => Err(vec![ErrorEntry::body(
            "invalid-array-json-sent",
            "parsing",
            "The body must be a JSON array of objects",
        )]),
        Err(e) => Err(vec![ErrorEntry::body(
            "invalid-array-json-sent",
            "parsing",
            format!("The body is not valid JSON: {e}"),
        )]),
    }
}

/// Flattens a row like CluedIn (nested objects become `a.b` columns), counting columns and
/// collecting warnings (spaces or dots in names) and errors (unsupported characters, too
/// many columns).
fn check_row(
    i: usize,
    map: &Map<String, Value>,
    limits: Limits<'_>,
    warnings: &mut Vec<WarningEntry>,
    errors: &mut Vec<ErrorEntry>,
) {
    let mut check = RowCheck {
        row: i,
        row_text: i.to_string(),
        columns: 0,
        bad_char: None,
        warnings,
    };
    check.visit(map, "");
    if let Some((property, c)) = check.bad_char {
        errors.push(ErrorEntry {
            row_index: i as i64,
            property: Some(property.clone()),
            message_id: "invalid-character",
            level: "error",
            domain: "validation",
            error_message: format!(
                "Property '{property}' holds the unsupported character U+{:04X}",
                c as u32
            ),
        });
    }
    if let Some(id) = map.get("externalId").and_then(external_id_text)
        && limits.reject_ids.contains(&id)
    {
        errors.push(ErrorEntry {
            row_index: i as i64,
            property: Some("externalId".into()),
            message_id: "rejected-external-id",
            level: "error",
            domain: "validation",
            error_message: format!(
                "Record with externalId '{id}' is refused (mock-cluedin --reject-external-id)"
            ),
        });
    }
    if check.columns > limits.max_columns {
        errors.push(ErrorEntry {
            row_index: i as i64,
            property: None,
            message_id: "too-many-columns",
            level: "error",
            domain: "validation",
            error_message: format!(
                "{} columns after flattening; at most {} are accepted",
                check.columns, limits.max_columns
            ),
        });
    }
}

/// An `externalId` as text (a string, or a number as written).
fn external_id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The walk over one row (paths are built only for nested objects and errors).
struct RowCheck<'a> {
    row: usize,
    row_text: String,
    columns: usize,
    /// The first unsupported character and the path of its column.
    bad_char: Option<(String, char)>,
    warnings: &'a mut Vec<WarningEntry>,
}

impl RowCheck<'_> {
    fn visit(&mut self, map: &Map<String, Value>, prefix: &str) {
        for (key, value) in map {
            if key.contains([' ', '.']) {
                self.warnings.push(WarningEntry {
                    row_index: self.row_text.clone(),
                    property: key.clone(),
                    message_id: "space-in-property",
                    level: "warning",
                    error_message: format!(
                        "Property '{key}' of row {} contains a space or a dot; it was renamed",
                        self.row
                    ),
                });
            }
            self.check_text(prefix, key, key);
            match value {
                Value::Object(inner) => self.visit(inner, &join(prefix, key)),
                Value::Array(items) => {
                    self.columns += 1;
                    // Strings inside arrays are values too.
                    for item in items {
                        if let Value::String(s) = item {
                            self.check_text(prefix, key, s);
                        }
                    }
                }
                Value::String(s) => {
                    self.columns += 1;
                    self.check_text(prefix, key, s);
                }
                _ => self.columns += 1,
            }
        }
    }

    fn check_text(&mut self, prefix: &str, key: &str, text: &str) {
        if self.bad_char.is_none()
            && let Some(c) = find_unsupported_char(text)
        {
            self.bad_char = Some((join(prefix, key), c));
        }
    }
}

/// The first character of `text` that CluedIn does not accept in a value or a field name.
///
/// The mock's own reading of `docs/reference/cluedin-endpoint.md` ("Limits": control
/// characters 0x00–0x1F other than tab/LF/CR, lone surrogates, U+FFFE and U+FFFF are not
/// supported in values), written independently of the product's encoder
/// (`wire::json::is_unsupported_char`) so that the mock, a test oracle, catches a bug in it.
/// Lone surrogates cannot reach here: serde_json refuses a `\uD800`-style escape, and the
/// body is then answered 400 as not JSON.
fn find_unsupported_char(text: &str) -> Option<char> {
    const TAB: u32 = 0x09;
    const LF: u32 = 0x0A;
    const CR: u32 = 0x0D;
    text.chars().find(|&c| match u32::from(c) {
        TAB | LF | CR => false,
        0x00..=0x1F => true,
        0xFFFE | 0xFFFF => true,
        _ => false,
    })
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits<'static> = Limits {
        max_rows: DEFAULT_MAX_ROWS,
        max_columns: DEFAULT_MAX_COLUMNS,
        reject_ids: &[],
    };

    fn rejected(v: Verdict) -> (u16, Vec<ErrorEntry>) {
        match v {
            Verdict::Rejected { status, errors, .. } => (status, errors),
            Verdict::Accepted { .. } => panic!("accepted"),
        }
    }

    #[test]
    fn array_of_objects_is_accepted_with_warnings() {
        let v = ingest(
            br#"[{"a":1},{"first name":"x","p":{"b.c":2}}]"#,
            false,
            LIMITS,
        );
        let Verdict::Accepted { records, warnings } = v else {
            panic!()
        };
        assert_eq!(records.len(), 2);
        let w: Vec<(&str, &str)> = warnings
            .iter()
            .map(|w| (w.row_index.as_str(), w.property.as_str()))
            .collect();
        assert_eq!(w, [("1", "first name"), ("1", "b.c")]);
    }

    #[test]
    fn non_array_is_invalid_array_json_sent() {
        for body in [&br#"{"a":1}"#[..], b"not json", b""] {
            let (status, errors) = rejected(ingest(body, false, LIMITS));
            assert_eq!(status, 400);
            assert_eq!(errors[0].row_index, -1);
            assert_eq!(errors[0].message_id, "invalid-array-json-sent");
        }
        // A lone surrogate makes the body invalid JSON as a whole.
        let (_, errors) = rejected(ingest(br#"[{"a":"ok"},{"a":"\ud800"}]"#, false, LIMITS));
        assert_eq!(errors[0].row_index, -1);
    }

    #[test]
    fn the_unsupported_characters_are_cluedins() {
        assert_eq!(
            find_unsupported_char("plain text, tab\t lf\n cr\r é ü 中"),
            None
        );
        assert_eq!(find_unsupported_char("a\u{0}b"), Some('\u{0}'));
        assert_eq!(find_unsupported_char("bell\u{7}"), Some('\u{7}'));
        assert_eq!(find_unsupported_char("vt\u{B} ff\u{C}"), Some('\u{B}'));
        assert_eq!(find_unsupported_char("x\u{1F}"), Some('\u{1F}'));
        assert_eq!(find_unsupported_char("x\u{FFFE}"), Some('\u{FFFE}'));
        assert_eq!(find_unsupported_char("x\u{FFFF}"), Some('\u{FFFF}'));
        // DEL, U+FFFD and the other non-characters are accepted.
        assert_eq!(
            find_unsupported_char("\u{7F}\u{FFFD}\u{F000}\u{FDD0}"),
            None
        );
    }

    /// The oracle checks the product: the wire encoder refuses exactly what the mock
    /// refuses (a difference is a bug in one of the two readings of the rule).
    #[test]
    fn the_product_encoder_refuses_what_the_mock_refuses() {
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let mut buf = [0u8; 4];
            let text: &str = c.encode_utf8(&mut buf);
            let expected = find_unsupported_char(text);
            assert_eq!(
                crate::wire::json::is_unsupported_char(c),
                expected.is_some(),
                "U+{:04X}",
                u32::from(c)
            );
            let written = crate::wire::json::write_str(&mut Vec::new(), text);
            assert_eq!(
                written.err(),
                expected.map(crate::wire::json::StrProblem::Unsupported),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn control_characters_are_row_errors() {
        let (status, errors) = rejected(ingest(
            br#"[{"a":"ok"},{"a":{"b":"x\u0001"}},{"c":"fine\ttab"}]"#,
            false,
            LIMITS,
        ));
        assert_eq!(status, 400);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].row_index, 1);
        assert_eq!(errors[0].property.as_deref(), Some("a.b"));
        assert_eq!(errors[0].message_id, "invalid-character");
        let (_, errors) = rejected(ingest(br#"[{"a":["\uffff"]}]"#, false, LIMITS));
        assert_eq!(errors[0].row_index, 0);
    }

    #[test]
    fn columns_are_counted_after_flattening() {
        let limits = Limits {
            max_rows: 10,
            max_columns: 3,
            reject_ids: &[],
        };
        assert!(matches!(
            ingest(br#"[{"a":1,"n":{"b":1,"c":[1,2]}}]"#, false, limits),
            Verdict::Accepted { .. }
        ));
        let (_, errors) = rejected(ingest(
            br#"[{"a":1},{"a":1,"n":{"b":1,"c":2,"d":{"e":1}}}]"#,
            false,
            limits,
        ));
        assert_eq!(errors[0].row_index, 1);
        assert_eq!(errors[0].message_id, "too-many-columns");
    }

    #[test]
    fn row_limit_is_413() {
        let limits = Limits {
            max_rows: 2,
            max_columns: 10,
            reject_ids: &[],
        };
        let (status, _) = rejected(ingest(b"[{},{},{}]", false, limits));
        assert_eq!(status, 413);
    }

    #[test]
    fn chosen_external_ids_are_row_errors() {
        let ids = ["7".to_string()];
        let limits = Limits {
            reject_ids: &ids,
            ..LIMITS
        };
        let body =
            br#"[{"externalId":"6","type":"T"},{"externalId":"7","type":"T"},{"externalId":7}]"#;
        let (status, errors) = rejected(ingest(body, false, limits));
        assert_eq!(status, 400);
        let rows: Vec<i64> = errors.iter().map(|e| e.row_index).collect();
        assert_eq!(rows, [1, 2]);
        assert_eq!(errors[0].message_id, "rejected-external-id");
        assert!(matches!(
            ingest(br#"[{"externalId":"6"}]"#, false, limits),
            Verdict::Accepted { .. }
        ));
    }

    #[test]
    fn ndjson_lines() {
        let v = ingest(b"{\"a\":1}\n{\"a\":2}\n\n", true, LIMITS);
        assert!(matches!(v, Verdict::Accepted { ref records, .. } if records.len() == 2));
        let (status, errors) = rejected(ingest(b"{\"a\":1}\n{oops\n", true, LIMITS));
        assert_eq!((status, errors[0].row_index), (400, 1));
        // An array sent as NDJSON is one row that is not an object.
        let (_, errors) = rejected(ingest(b"[{\"a\":1}]", true, LIMITS));
        assert_eq!(errors[0].message_id, "invalid-object");
    }

    #[test]
    fn body_shapes_match_facts() {
        let w = [WarningEntry {
            row_index: "0".into(),
            property: "first name".into(),
            message_id: "space-in-property",
            level: "warning",
            error_message: "m".into(),
        }];
        let s = serde_json::to_string(&SuccessBody {
            success: true,
            warning: true,
            warnings: &w,
            error: false,
            receipt_id: "r",
        })
        .unwrap();
        assert_eq!(
            s,
            r#"{"success":true,"warning":true,"warnings":[{"rowIndex":"0","property":"first name","messageId":"space-in-property","level":"warning","errorMessage":"m"}],"error":false,"receiptId":"r"}"#
        );
        let e = [ErrorEntry::body("invalid-array-json-sent", "parsing", "m")];
        let s = serde_json::to_string(&ErrorBody {
            success: false,
            error: true,
            receipt_id: "r",
            errors: &e,
        })
        .unwrap();
        assert_eq!(
            s,
            r#"{"success":false,"error":true,"receiptId":"r","errors":[{"rowIndex":-1,"messageId":"invalid-array-json-sent","level":"error","domain":"parsing","errorMessage":"m"}]}"#
        );
    }
}
