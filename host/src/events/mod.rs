//! Object-store notifications → the objects they name.
//!
//! Accepted payloads (detected from the JSON, `docs/reference/storage-events.md`): an S3 event
//! notification (`Records[]`), the same wrapped by SNS (`Message` is a JSON string), an
//! SQS→Lambda batch (`Records[].body` is a JSON string), `aws sqs receive-message` output
//! (`Messages[].Body` is a JSON string), an EventBridge "Object Created"
//! event, an Azure Event Grid array of `Microsoft.Storage.BlobCreated`, CloudEvents 1.0
//! BlobCreated (one event or a batch array), Google Cloud Storage's Eventarc CloudEvents
//! (`google.cloud.storage.object.v1.finalized`, structured mode here, binary mode through
//! [`parse_binary`]) and Pub/Sub push deliveries of Cloud Storage notifications.
//!
//! Detection, in order, for a JSON object: `Records` → S3 / SQS / SNS→Lambda records (each
//! by its `eventSource`); `Messages` → `aws sqs receive-message` output; `Event: s3:TestEvent` → [`Notification::Test`]; `Type` + `Message`
//! → SNS envelope; `detail-type` → EventBridge; `message` (an object) → Pub/Sub push;
//! `specversion` → CloudEvents (Google's by a `google.cloud.*` type or a Cloud Storage
//! source, else Azure's); `eventType` → Event Grid.
//!
//! An event type that is not understood is ignored with a reason, unless its name says an
//! object was created or written (`…Created`, `…finalized`, `…Upload…`): then the payload
//! is refused ([`EventError::Unsupported`]) so that no trigger takes it as done. A JSON array is a batch: each element is detected on its own. Wrapped JSON
//! (SNS `Message`, SQS `body`) is parsed recursively, at most [`MAX_NESTING`] levels deep.

use serde_json::{Map, Value};

mod azure;
mod gcs;
mod s3;
#[cfg(test)]
mod tests;

pub use azure::{BlobUrl, blob_from_subject, parse_blob_url};
pub use s3::decode_s3_key;

/// The store a notification comes from ([`StoreKind::S3`], [`StoreKind::Azure`] or
/// [`StoreKind::Gcs`]).
pub use crate::storage::StoreKind;

/// An object a notification says was created.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub store: StoreKind,
    /// S3, GCS: the bucket; Azure: the container.
    pub bucket: String,
    /// Azure: the storage account (from `data.url` / `topic`); S3: `None`.
    pub account: Option<String>,
    /// The object key / blob path, decoded (S3: form-URL-decoded; `+` is a space; GCS: the
    /// object name as sent).
    pub key: String,
    /// The ETag the event reports, if any (unquoted as sent).
    pub e_tag: Option<String>,
    /// The size the event reports, if any.
    pub size: Option<u64>,
    /// The event's id (S3: `responseElements.x-amz-request-id` + sequencer; Event Grid /
    /// CloudEvents: `id`; Pub/Sub: `messageId`), for logs.
    pub event_id: Option<String>,
}

/// What one event in a payload means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// An object was created: deliver it.
    Created(ObjectRef),
    /// An `s3:TestEvent`: acknowledge and ignore.
    Test,
    /// Another event (a delete, an ADLS Gen2 write not finished by `FlushWithClose`, …):
    /// ignored, with a line saying why.
    Ignored { reason: String },
}

/// A payload that cannot be used. `Display` is one line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("the event is not JSON: {0}")]
    NotJson(String),
    #[error("unknown event shape: {0}")]
    UnknownShape(String),
    #[error("malformed {kind} event: {reason}")]
    Malformed { kind: &'static str, reason: String },
    /// An event whose type is not understood but says an object was created: refused, so
    /// that the sender keeps it rather than taking it as handled.
    #[error("unsupported event: {0}")]
    Unsupported(String),
}

/// Every event of a payload, in order.
pub fn parse(payload: &[u8]) -> Result<Vec<Notification>, EventError> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| not_json(payload, &e))?;
    let mut out = Vec::new();
    parse_value(&value, 0, &mut out)?;
    Ok(out)
}

impl Notification {
    /// The object, for [`Notification::Created`].
    pub fn as_created(&self) -> Option<&ObjectRef> {
        match self {
            Notification::Created(object) => Some(object),
            _ => None,
        }
    }
}

/// The events of a CloudEvent in binary content mode: its context attributes come from the
/// HTTP headers `ce-<name>` (`attributes` holds them without the prefix: `specversion`,
/// `type`, `source`, `subject`, `id`, …), its data is the payload (JSON; empty: no data).
/// It is then read as the structured event `{<attributes>, "data": <payload>}`.
pub fn parse_binary(
    attributes: &[(String, String)],
    payload: &[u8],
) -> Result<Vec<Notification>, EventError> {
    let mut map = Map::new();
    for (name, value) in attributes {
        map.insert(name.to_ascii_lowercase(), Value::String(value.clone()));
    }
    if !map.contains_key("specversion") {
        return Err(EventError::UnknownShape(format!(
            "a binary-mode CloudEvent needs the header ce-specversion (headers ce-{})",
            map.keys().cloned().collect::<Vec<_>>().join(", ce-")
        )));
    }
    let data = if payload.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(payload).map_err(|e| {
            inside(
                not_json(payload, &e),
                "the body of a binary-mode CloudEvent (its data)",
            )
        })?
    };
    map.insert("data".to_owned(), data);
    let event = Value::Object(map);
    let mut out = Vec::new();
    parse_value(&event, 0, &mut out).map_err(|e| inside(e, "a binary-mode CloudEvent"))?;
    Ok(out)
}

/// An event of a type not understood (`kind` says whose, `what` names its object): ignored
/// with a reason, unless the type's name says an object was created or written; then it is
/// refused, so that a trigger does not take a new object as handled.
pub(crate) fn unknown_type(kind: &str, ty: &str, what: &str) -> Result<Notification, EventError> {
    const CREATION: &[&str] = &["creat", "finaliz", "upload", "write", "written"];
    let lower = ty.to_ascii_lowercase();
    if CREATION.iter().any(|word| lower.contains(word)) {
        return Err(EventError::Unsupported(format!(
            "{kind} event of type {} for {what} looks like a new object but is not a type              stagepush understands (it delivers S3 ObjectCreated:*, Microsoft.Storage.BlobCreated,              google.cloud.storage.object.v1.finalized and OBJECT_FINALIZE); not acknowledged, so              that it is not lost",
            show(ty)
        )));
    }
    Ok(Notification::Ignored {
        reason: format!("{kind} event of type {} for {what}", show(ty)),
    })
}

/// How many JSON-in-a-string wrappings (SNS `Message`, SQS `body`) are followed: SQS → SNS → S3
/// is 2.
pub const MAX_NESTING: usize = 4;

/// What the payload may be, for error messages.
const EXPECTED: &str = "expected an S3 notification (Records[]), s3:TestEvent, SNS envelope, \
SQS→Lambda batch, `aws sqs receive-message` output (Messages[]), EventBridge Object Created, Event Grid array, CloudEvents 1.0 event or Pub/Sub push body";

fn not_json(payload: &[u8], error: &serde_json::Error) -> EventError {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return EventError::NotJson(format!("the payload is empty ({EXPECTED})"));
    }
    let head = String::from_utf8_lossy(&payload[..payload.len().min(40)]);
    EventError::NotJson(format!(
        "{error}; the payload starts with {} ({EXPECTED})",
        show(head.trim_start())
    ))
}

/// One JSON value of a payload (the top level, or a wrapped JSON `depth` levels down).
fn parse_value(value: &Value, depth: usize, out: &mut Vec<Notification>) -> Result<(), EventError> {
    match value {
        Value::Object(map) => parse_object(value, map, depth, out),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::Object(map) => parse_object(item, map, depth, out)
                        .map_err(|e| inside(e, &format!("element [{i}] of the array")))?,
                    other => {
                        return Err(EventError::UnknownShape(format!(
                            "element [{i}] of the array is a JSON {}, not an object ({EXPECTED})",
                            type_name(other)
                        )));
                    }
                }
            }
            Ok(())
        }
        other => Err(EventError::UnknownShape(format!(
            "the payload is a JSON {}, not an object or array ({EXPECTED})",
            type_name(other)
        ))),
    }
}

/// `value` is the object `map`.
fn parse_object(
    value: &Value,
    map: &Map<String, Value>,
    depth: usize,
    out: &mut Vec<Notification>,
) -> Result<(), EventError> {
    if let Some(records) = map.get("Records") {
        return s3::records(records, depth, out);
    }
    if let Some(messages) = map.get("Messages") {
        return s3::receive_message_output(messages, depth, out);
    }
    if let Some(event) = map.get("Event") {
        if event.as_str() == Some("s3:TestEvent") {
            out.push(Notification::Test);
            return Ok(());
        }
        if map.get("Service").and_then(Value::as_str) == Some("Amazon S3") {
            out.push(Notification::Ignored {
                reason: format!("Amazon S3 service message {}", show_value(event)),
            });
            return Ok(());
        }
    }
    if map.contains_key("Type") && (map.contains_key("Message") || map.contains_key("TopicArn")) {
        return s3::sns_envelope(map, "SNS", depth, out);
    }
    if map.contains_key("detail-type") {
        return s3::eventbridge(value, map, out);
    }
    if gcs::is_pubsub_push(map) {
        return gcs::pubsub_push(map, out);
    }
    if map.contains_key("specversion") {
        if gcs::is_google_cloud_event(map) {
            return gcs::cloud_event(value, map, out);
        }
        return azure::event(value, map, azure::Schema::CloudEvents, out);
    }
    if map.contains_key("eventType") {
        return azure::event(value, map, azure::Schema::EventGrid, out);
    }
    if map.get("kind").and_then(Value::as_str) == Some("storage#object") {
        return Err(EventError::UnknownShape(format!(
            "a bare GCS object resource (bucket {}, name {}) says neither what happened nor              that it is finished: a Pub/Sub push subscription must wrap its messages (no              --push-no-wrapper), and an Eventarc event needs its ce-* headers",
            map.get("bucket").map_or("?".to_owned(), show_value),
            map.get("name").map_or("?".to_owned(), show_value),
        )));
    }
    Err(EventError::UnknownShape(format!(
        "a JSON object with keys {} ({EXPECTED})",
        keys_of(map)
    )))
}

/// Parses JSON wrapped in a string (`what` names it, e.g. `SQS Records[0].body`).
fn nested(
    kind: &'static str,
    what: &str,
    wrapped: &Value,
    depth: usize,
    out: &mut Vec<Notification>,
) -> Result<(), EventError> {
    if depth >= MAX_NESTING {
        return Err(EventError::Malformed {
            kind,
            reason: format!("{what} wraps JSON more than {MAX_NESTING} levels deep"),
        });
    }
    let parsed;
    let value = match wrapped {
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text).map_err(|e| EventError::Malformed {
                kind,
                reason: format!(
                    "{what} is not JSON ({e}); it starts with {}",
                    show(&text.chars().take(40).collect::<String>())
                ),
            })?;
            &parsed
        }
        // Raw message delivery or a test harness: the JSON itself rather than a string.
        Value::Object(_) | Value::Array(_) => wrapped,
        other => {
            return Err(EventError::Malformed {
                kind,
                reason: format!(
                    "{what} is a JSON {}, not a string holding JSON",
                    type_name(other)
                ),
            });
        }
    };
    parse_value(value, depth + 1, out).map_err(|e| inside(e, what))
}

/// Adds where an error happened (`inside SQS Records[0].body`) to its message.
pub(crate) fn inside(error: EventError, what: &str) -> EventError {
    match error {
        EventError::NotJson(m) => EventError::NotJson(format!("{m}; inside {what}")),
        EventError::UnknownShape(m) => EventError::UnknownShape(format!("{m}; inside {what}")),
        EventError::Malformed { kind, reason } => EventError::Malformed {
            kind,
            reason: format!("{reason}; inside {what}"),
        },
        EventError::Unsupported(m) => EventError::Unsupported(format!("{m}; inside {what}")),
    }
}

/// A string for a one-line message: quoted, control characters escaped, at most 120 characters.
pub(crate) fn show(text: &str) -> String {
    const MAX: usize = 120;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// An object key for a one-line message: quoted, control characters (NUL, …) escaped.
pub fn show_key(key: &str) -> String {
    show(key)
}

/// A JSON value for a one-line message: strings as [`show`], others by type.
pub(crate) fn show_value(value: &Value) -> String {
    match value {
        Value::String(s) => show(s),
        Value::Number(n) => n.to_string(),
        other => format!("(a JSON {})", type_name(other)),
    }
}

/// The keys of an object for a one-line message: `["a", "b"]`, at most 12.
pub(crate) fn keys_of(map: &Map<String, Value>) -> String {
    const MAX: usize = 12;
    if map.is_empty() {
        return "[] (an empty object)".to_owned();
    }
    let mut keys: Vec<String> = map.keys().take(MAX).map(|k| show(k)).collect();
    if map.len() > MAX {
        keys.push(format!("and {} more", map.len() - MAX));
    }
    format!("[{}]", keys.join(", "))
}

pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Why a required string field is not there; shown as the end of a reason
/// (`has no s3.object.key`), the field dotted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FieldError {
    #[error("has no {0}")]
    Missing(String),
    #[error("has an empty {0}")]
    Empty(String),
    #[error("has {field} as a JSON {type_name}, not a string")]
    NotAString {
        field: String,
        type_name: &'static str,
    },
}

/// A required non-empty string at `pointer` (`/s3/object/key`) of `value`.
pub(crate) fn required_str<'a>(value: &'a Value, pointer: &str) -> Result<&'a str, FieldError> {
    let dotted = || pointer.trim_start_matches('/').replace('/', ".");
    match value.pointer(pointer) {
        None | Some(Value::Null) => Err(FieldError::Missing(dotted())),
        Some(Value::String(s)) if s.is_empty() => Err(FieldError::Empty(dotted())),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(FieldError::NotAString {
            field: dotted(),
            type_name: type_name(other),
        }),
    }
}

/// An optional non-empty string at `pointer`; other types count as absent.
pub(crate) fn optional_str(value: &Value, pointer: &str) -> Option<String> {
    match value.pointer(pointer) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// An optional size at `pointer`: a non-negative integer, or a string of digits.
pub(crate) fn optional_u64(value: &Value, pointer: &str) -> Option<u64> {
    match value.pointer(pointer)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}
