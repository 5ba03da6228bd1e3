//! Lenient parsing of the endpoint's answers (`docs/reference/cluedin-endpoint.md`).
//!
//! Keys on `success`; `receiptId`; `warnings[]` (where `rowIndex` is a string) and `errors[]`
//! (where `rowIndex` is a number — either form is accepted in both); a top-level message
//! (`message`, `errorMessage`, `error` when a string, or ASP.NET's `title`/`detail`) for an
//! answer that names no row. Wrong types are ignored field by field; a body that is not JSON
//! (a proxy's HTML 413 page, a 503 text) yields an empty response with an excerpt of the text.
//!
//! CluedIn answers every request with a JSON object carrying a boolean `success` (`docs/reference/cluedin-endpoint.md`):
//! [`IngestResponse::is_cluedin_answer`]. A 2xx without one (an HTML page, an empty body) came
//! from something else on the way — see [`super::service`] for what the sink does with it.

use serde_json::Value;

/// Longest excerpt of a non-JSON body kept for messages.
pub const MAX_EXCERPT_CHARS: usize = 300;

/// What the endpoint answered, as far as it could be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestResponse {
    /// The `success` flag, if present and boolean.
    pub success: Option<bool>,
    /// The `receiptId` (shown in CluedIn under Monitoring → Ingestion reports).
    pub receipt_id: Option<String>,
    /// `warnings[]`.
    pub warnings: Vec<RowMessage>,
    /// `errors[]`.
    pub errors: Vec<RowMessage>,
    /// A top-level message of a JSON answer (`message`, `errorMessage`, `error` when it is a
    /// string, `title`, `detail`; the first present).
    pub message: Option<String>,
    /// The start of the body when it was not a JSON object.
    pub text: Option<String>,
}

/// One entry of `warnings[]` or `errors[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowMessage {
    /// `rowIndex` (number or numeric string); `-1` or absent when the message names no row.
    pub row_index: Option<i64>,
    /// `property`.
    pub property: Option<String>,
    /// `messageId`, e.g. `space-in-property`, `invalid-array-json-sent`.
    pub message_id: Option<String>,
    /// `level`.
    pub level: Option<String>,
    /// `domain`.
    pub domain: Option<String>,
    /// `errorMessage`.
    pub message: Option<String>,
}

impl RowMessage {
    /// The row of the request this message names, if it names one (`rowIndex ≥ 0`).
    pub fn row(&self) -> Option<usize> {
        self.row_index.and_then(|i| usize::try_from(i).ok())
    }

    /// A one-line description: `messageId: errorMessage (property p)`.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if let Some(id) = &self.message_id {
            s.push_str(id);
        }
        if let Some(m) = &self.message {
            if !s.is_empty() {
                s.push_str(": ");
            }
            s.push_str(m);
        }
        if let Some(p) = &self.property {
            s.push_str(&format!(" (property {p:?})"));
        }
        if s.is_empty() {
            s.push_str("(no message)");
        }
        s
    }
}

impl IngestResponse {
    /// Rows named by `errors[]` (`rowIndex ≥ 0`), with their messages.
    pub fn row_errors(&self) -> impl Iterator<Item = (usize, &RowMessage)> {
        self.errors.iter().filter_map(|e| e.row().map(|r| (r, e)))
    }

    /// Whether the body was CluedIn's answer: a JSON object with a boolean `success`.
    pub fn is_cluedin_answer(&self) -> bool {
        self.success.is_some()
    }

    /// What the answer said, if anything: its first error (and how many more), else its
    /// top-level message, else the start of a body that was not JSON.
    pub fn detail(&self) -> Option<String> {
        if let Some(e) = self.errors.first() {
            let more = self.errors.len() - 1;
            Some(if more > 0 {
                format!("{} (+{more} more)", e.describe())
            } else {
                e.describe()
            })
        } else {
            self.message.clone().or_else(|| self.text.clone())
        }
    }

    /// A one-line summary of the answer for logs and rejection messages.
    pub fn summary(&self) -> String {
        self.detail()
            .unwrap_or_else(|| String::from("(empty body)"))
    }
}

/// Top-level fields that may carry an answer's message, in order of preference.
const MESSAGE_FIELDS: [&str; 5] = ["message", "errorMessage", "error", "title", "detail"];

/// Parses a response body. Never fails.
pub fn parse_response(body: &[u8]) -> IngestResponse {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return IngestResponse {
                text: excerpt(body),
                ..IngestResponse::default()
            };
        }
    };
    IngestResponse {
        success: value.get("success").and_then(Value::as_bool),
        receipt_id: value.get("receiptId").and_then(string_of),
        warnings: messages(value.get("warnings")),
        errors: messages(value.get("errors")),
        message: MESSAGE_FIELDS.iter().find_map(|f| {
            value
                .get(*f)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(one_line)
        }),
        text: None,
    }
}

fn messages(v: Option<&Value>) -> Vec<RowMessage> {
    let Some(Value::Array(items)) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter(|m| m.is_object())
        .map(|m| RowMessage {
            row_index: m.get("rowIndex").and_then(index_of),
            property: m.get("property").and_then(string_of),
            message_id: m.get("messageId").and_then(string_of),
            level: m.get("level").and_then(string_of),
            domain: m.get("domain").and_then(string_of),
            message: m.get("errorMessage").and_then(string_of),
        })
        .collect()
}

/// `rowIndex` as a number (`3`, `3.0`) or a numeric string (`"3"`).
fn index_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn string_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn excerpt(body: &[u8]) -> Option<String> {
    let text = one_line(&String::from_utf8_lossy(body));
    (!text.is_empty()).then_some(text)
}

/// `text` on one line (runs of whitespace become one space), cut at [`MAX_EXCERPT_CHARS`].
fn one_line(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = text.chars().take(MAX_EXCERPT_CHARS).collect();
    if text.chars().count() > MAX_EXCERPT_CHARS {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_body() {
        let r = parse_response(
            br#"{"success":true,"warning":false,"warnings":[],"error":false,"receiptId":"3f1c2a4e-8b7d-4c1e-9f00-aa11bb22cc33"}"#,
        );
        assert_eq!(r.success, Some(true));
        assert_eq!(
            r.receipt_id.as_deref(),
            Some("3f1c2a4e-8b7d-4c1e-9f00-aa11bb22cc33")
        );
        assert!(r.warnings.is_empty() && r.errors.is_empty() && r.text.is_none());
    }

    #[test]
    fn warning_body_with_row_index_as_string() {
        let r = parse_response(
            br#"{"success":true,"warning":true,"warnings":[{"rowIndex":"0","property":"first name","messageId":"space-in-property","level":"warning","errorMessage":"Property 'first name' contains a space"}],"error":false,"receiptId":"r-1"}"#,
        );
        assert_eq!(r.success, Some(true));
        assert_eq!(r.warnings.len(), 1);
        let w = &r.warnings[0];
        assert_eq!(w.row_index, Some(0));
        assert_eq!(w.row(), Some(0));
        assert_eq!(w.property.as_deref(), Some("first name"));
        assert_eq!(w.message_id.as_deref(), Some("space-in-property"));
        assert_eq!(w.level.as_deref(), Some("warning"));
        assert!(w.describe().contains("space-in-property"));
    }

    #[test]
    fn error_body_with_row_index_minus_one_names_no_row() {
        let r = parse_response(
            br#"{"success":false,"error":true,"receiptId":"r-2","errors":[{"rowIndex":-1,"messageId":"invalid-array-json-sent","level":"error","domain":"parsing","errorMessage":"The body must be a JSON array"}]}"#,
        );
        assert_eq!(r.success, Some(false));
        assert_eq!(r.receipt_id.as_deref(), Some("r-2"));
        assert_eq!(r.errors[0].row_index, Some(-1));
        assert_eq!(r.errors[0].row(), None);
        assert_eq!(r.errors[0].domain.as_deref(), Some("parsing"));
        assert_eq!(r.row_errors().count(), 0);
        assert_eq!(
            r.summary(),
            "invalid-array-json-sent: The body must be a JSON array"
        );
    }

    #[test]
    fn error_row_index_as_number_or_string() {
        let r = parse_response(
            br#"{"success":false,"errors":[{"rowIndex":2,"errorMessage":"a"},{"rowIndex":"5","errorMessage":"b"},{"rowIndex":7.0},{"rowIndex":"x"},{"rowIndex":null},"junk"]}"#,
        );
        let rows: Vec<usize> = r.row_errors().map(|(i, _)| i).collect();
        assert_eq!(rows, [2, 5, 7]);
        assert_eq!(r.errors.len(), 5, "non-object entries are skipped");
        assert!(r.summary().ends_with("(+4 more)"), "{}", r.summary());
    }

    #[test]
    fn top_level_messages_are_read() {
        let r = parse_response(
            br#"{"success":false,"error":true,"message":"  Endpoint\n is disabled "}"#,
        );
        assert_eq!(r.message.as_deref(), Some("Endpoint is disabled"));
        assert_eq!(r.summary(), "Endpoint is disabled");
        // `error` is CluedIn's boolean flag; a string there is a message.
        let r = parse_response(br#"{"success":false,"error":"quota exceeded"}"#);
        assert_eq!(r.detail().as_deref(), Some("quota exceeded"));
        let r = parse_response(br#"{"title":"Bad Request","detail":"x"}"#);
        assert_eq!(r.message.as_deref(), Some("Bad Request"));
        // Row errors come first.
        let r = parse_response(
            br#"{"success":false,"message":"m","errors":[{"rowIndex":1,"errorMessage":"e"}]}"#,
        );
        assert_eq!(r.summary(), "e");
        let r = parse_response(br#"{"success":false,"error":true,"message":""}"#);
        assert_eq!(r.detail(), None);
        assert_eq!(r.summary(), "(empty body)");
    }

    #[test]
    fn only_an_object_with_a_boolean_success_is_cluedins_answer() {
        assert!(parse_response(br#"{"success":true,"receiptId":"r"}"#).is_cluedin_answer());
        assert!(parse_response(br#"{"success":false}"#).is_cluedin_answer());
        for body in [
            &b""[..],
            b"<html><body>Sign in</body></html>",
            b"{}",
            br#"{"success":"true"}"#,
            b"[]",
            b"OK",
        ] {
            assert!(!parse_response(body).is_cluedin_answer(), "{body:?}");
        }
    }

    #[test]
    fn non_json_and_odd_bodies_are_tolerated() {
        let r =
            parse_response(b"<html><body><h1>413 Request Entity Too Large</h1></body></html>\n");
        assert_eq!(r.success, None);
        assert_eq!(
            r.text.as_deref(),
            Some("<html><body><h1>413 Request Entity Too Large</h1></body></html>")
        );
        assert_eq!(parse_response(b""), IngestResponse::default());
        assert_eq!(parse_response(b"[1,2]").text.as_deref(), Some("[1,2]"));
        let r = parse_response(br#"{"success":"yes","receiptId":42,"warnings":{},"errors":"no"}"#);
        assert_eq!(r.success, None);
        assert_eq!(r.receipt_id.as_deref(), Some("42"));
        assert!(r.warnings.is_empty() && r.errors.is_empty());
        let long = "x".repeat(1000);
        assert_eq!(
            parse_response(long.as_bytes())
                .text
                .unwrap()
                .chars()
                .count(),
            MAX_EXCERPT_CHARS + 1
        );
        assert!(parse_response(&[0xff, 0xfe, b'a']).text.is_some());
    }
}
