//! Google Cloud Storage shapes: Eventarc CloudEvents (`google.cloud.storage.object.v1.*`,
//! structured mode here, binary mode through [`super::parse_binary`]), Pub/Sub push
//! deliveries of Cloud Storage notifications (`{"message": {"attributes", "data", …},
//! "subscription"}`), and Eventarc's `google.cloud.pubsub.topic.v1.messagePublished` around
//! such a message. Facts and sources: `docs/reference/storage-events.md`.

use base64::Engine;
use serde_json::{Map, Value};

use super::{
    EventError, Notification, ObjectRef, StoreKind, keys_of, optional_str, optional_u64, show,
    show_value, type_name,
};

/// The Eventarc type of a finished upload (a new object or a new generation of one).
pub const FINALIZED: &str = "google.cloud.storage.object.v1.finalized";
/// Eventarc's prefix for Cloud Storage object events.
const OBJECT_TYPE_PREFIX: &str = "google.cloud.storage.object.v1.";
/// The other Cloud Storage object events: nothing to deliver.
const OTHER_OBJECT_TYPES: &[&str] = &["deleted", "archived", "metadataUpdated"];
/// Eventarc's type for a Pub/Sub message (`data` is the push body:
/// `{"message", "subscription"}`).
pub const PUBSUB_PUBLISHED: &str = "google.cloud.pubsub.topic.v1.messagePublished";
/// The `source` of an Eventarc Cloud Storage event names the bucket after this.
const SOURCE_PREFIX: &str = "//storage.googleapis.com/projects/_/buckets/";
/// The `subject` of an Eventarc Cloud Storage event names the object after this.
const SUBJECT_PREFIX: &str = "objects/";
/// The Pub/Sub notification `eventType` of a finished upload.
pub const OBJECT_FINALIZE: &str = "OBJECT_FINALIZE";
/// The other Pub/Sub notification event types: nothing to deliver.
const OTHER_EVENT_TYPES: &[&str] = &["OBJECT_DELETE", "OBJECT_ARCHIVE", "OBJECT_METADATA_UPDATE"];
/// The `payloadFormat` that puts the object resource (base64 JSON) in `message.data`.
const JSON_API_V1: &str = "JSON_API_V1";

/// Whether a CloudEvent is Google Cloud's: a `google.cloud.*` type or a Cloud Storage source.
pub(super) fn is_google_cloud_event(map: &Map<String, Value>) -> bool {
    let ty = map.get("type").and_then(Value::as_str).unwrap_or("");
    let source = map.get("source").and_then(Value::as_str).unwrap_or("");
    ty.starts_with("google.cloud.") || source.starts_with("//storage.googleapis.com/")
}

/// Whether a JSON object is a Pub/Sub push body: `message` an object (with `data`,
/// `attributes` or `messageId`).
pub(super) fn is_pubsub_push(map: &Map<String, Value>) -> bool {
    map.get("message")
        .and_then(Value::as_object)
        .is_some_and(|m| {
            m.contains_key("attributes")
                || m.contains_key("data")
                || m.contains_key("messageId")
                || m.contains_key("message_id")
        })
}

/// One Google Cloud CloudEvent in structured mode (`event` is the object `map`).
pub(super) fn cloud_event(
    event: &Value,
    map: &Map<String, Value>,
    out: &mut Vec<Notification>,
) -> Result<(), EventError> {
    let kind = "CloudEvents (GCS)";
    let malformed = |reason: String| EventError::Malformed { kind, reason };
    let ty = match map.get("type") {
        Some(Value::String(ty)) => ty.as_str(),
        None | Some(Value::Null) => {
            return Err(malformed(format!(
                "event has no type (keys {})",
                keys_of(map)
            )));
        }
        Some(other) => {
            return Err(malformed(format!(
                "event has type as a JSON {}, not a string",
                type_name(other)
            )));
        }
    };
    let id = optional_str(event, "/id");
    let label = id
        .as_deref()
        .map_or(String::new(), |id| format!(" {}", show(id)));
    if ty == PUBSUB_PUBLISHED {
        return match map.get("data") {
            Some(Value::Object(data)) => pubsub_push(data, out)
                .map_err(|e| super::inside(e, &format!("the data of Eventarc event{label}"))),
            other => Err(malformed(format!(
                "{PUBSUB_PUBLISHED} event{label} has data {}, not a Pub/Sub push body",
                other.map_or("(none)".to_owned(), |v| format!(
                    "as a JSON {}",
                    type_name(v)
                ))
            ))),
        };
    }
    let data = match map.get("data") {
        Some(Value::Object(data)) => Some(data),
        None | Some(Value::Null) => None,
        Some(other) => {
            return Err(malformed(format!(
                "{ty} event{label} has data as a JSON {}, not the object resource",
                type_name(other)
            )));
        }
    };
    let source = map.get("source").and_then(Value::as_str);
    let subject = map.get("subject").and_then(Value::as_str);
    let bucket = data
        .and_then(|d| non_empty(d.get("bucket")))
        .or_else(|| source.and_then(|s| s.strip_prefix(SOURCE_PREFIX)))
        .filter(|b| !b.is_empty() && !b.contains('/'));
    let name = data
        .and_then(|d| non_empty(d.get("name")))
        .or_else(|| subject.and_then(|s| s.strip_prefix(SUBJECT_PREFIX)))
        .filter(|n| !n.is_empty());
    let what = || {
        format!(
            "bucket {} object {}",
            bucket.map_or("?".to_owned(), show),
            name.map_or("?".to_owned(), show)
        )
    };
    if let Some(rest) = ty.strip_prefix(OBJECT_TYPE_PREFIX)
        && OTHER_OBJECT_TYPES.contains(&rest)
    {
        out.push(Notification::Ignored {
            reason: format!(
                "GCS {} event for {} (only {FINALIZED} is delivered)",
                show(ty),
                what()
            ),
        });
        return Ok(());
    }
    if ty != FINALIZED {
        out.push(super::unknown_type("GCS CloudEvents", ty, &what())?);
        return Ok(());
    }
    let Some(bucket) = bucket else {
        return Err(malformed(format!(
            "{FINALIZED} event{label} names no bucket: data.bucket is missing and source {} is \
             not {SOURCE_PREFIX}<bucket>",
            map.get("source").map_or("(none)".to_owned(), show_value)
        )));
    };
    let Some(name) = name else {
        return Err(malformed(format!(
            "{FINALIZED} event{label} names no object: data.name is missing and subject {} is \
             not {SUBJECT_PREFIX}<name>",
            map.get("subject").map_or("(none)".to_owned(), show_value)
        )));
    };
    out.push(Notification::Created(ObjectRef {
        store: StoreKind::Gcs,
        bucket: bucket.to_owned(),
        account: None,
        key: name.to_owned(),
        e_tag: optional_str(event, "/data/etag"),
        size: optional_u64(event, "/data/size"),
        event_id: id,
    }));
    Ok(())
}

/// A Pub/Sub push body (`map`): `{"message": {"attributes", "data", "messageId", …},
/// "subscription"}` carrying a Cloud Storage notification.
pub(super) fn pubsub_push(
    map: &Map<String, Value>,
    out: &mut Vec<Notification>,
) -> Result<(), EventError> {
    let kind = "Pub/Sub";
    let malformed = |reason: String| EventError::Malformed { kind, reason };
    let message = match map.get("message") {
        Some(Value::Object(message)) => message,
        None | Some(Value::Null) => {
            return Err(malformed(format!(
                "push body has no message (keys {})",
                keys_of(map)
            )));
        }
        Some(other) => {
            return Err(malformed(format!(
                "message is a JSON {}, not an object",
                type_name(other)
            )));
        }
    };
    let id = ["messageId", "message_id"]
        .iter()
        .find_map(|k| non_empty(message.get(*k)))
        .map(str::to_owned);
    let label = id
        .as_deref()
        .map_or(String::new(), |id| format!(" {}", show(id)));
    let attributes = match message.get("attributes") {
        Some(Value::Object(attributes)) => attributes,
        None | Some(Value::Null) => {
            return Err(malformed(format!(
                "message{label} has no attributes: not a Cloud Storage notification (expected \
                 eventType, bucketId, objectId)"
            )));
        }
        Some(other) => {
            return Err(malformed(format!(
                "message{label} has attributes as a JSON {}, not an object",
                type_name(other)
            )));
        }
    };
    let attribute = |name: &str| -> Result<Option<&str>, EventError> {
        match attributes.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(malformed(format!(
                "message{label} has attributes.{name} as a JSON {}, not a string",
                type_name(other)
            ))),
        }
    };
    let Some(event_type) = attribute("eventType")? else {
        return Err(malformed(format!(
            "message{label} has no attributes.eventType: not a Cloud Storage notification \
             (attributes {})",
            keys_of(attributes)
        )));
    };
    let bucket = attribute("bucketId")?;
    let object = attribute("objectId")?;
    let what = || {
        format!(
            "bucket {} object {}",
            bucket.map_or("?".to_owned(), show),
            object.map_or("?".to_owned(), show)
        )
    };
    if OTHER_EVENT_TYPES.contains(&event_type) {
        out.push(Notification::Ignored {
            reason: format!(
                "GCS notification {} for {} (only {OBJECT_FINALIZE} is delivered)",
                show(event_type),
                what()
            ),
        });
        return Ok(());
    }
    if event_type != OBJECT_FINALIZE {
        out.push(super::unknown_type(
            "GCS Pub/Sub notification",
            event_type,
            &what(),
        )?);
        return Ok(());
    }
    let Some(bucket) = bucket else {
        return Err(malformed(format!(
            "{OBJECT_FINALIZE} message{label} has no attributes.bucketId"
        )));
    };
    let Some(object) = object else {
        return Err(malformed(format!(
            "{OBJECT_FINALIZE} message{label} has no attributes.objectId"
        )));
    };
    // The object resource, with payloadFormat JSON_API_V1 (NONE: no data).
    let resource = match (attribute("payloadFormat")?, message.get("data")) {
        (Some(JSON_API_V1), Some(Value::String(data))) if !data.is_empty() => Some(
            object_resource(data)
                .map_err(|reason| malformed(format!("message{label} data {reason}")))?,
        ),
        (_, Some(Value::String(_)) | None | Some(Value::Null)) => None,
        (_, Some(other)) => {
            return Err(malformed(format!(
                "message{label} has data as a JSON {}, not a base64 string",
                type_name(other)
            )));
        }
    };
    out.push(Notification::Created(ObjectRef {
        store: StoreKind::Gcs,
        bucket: bucket.to_owned(),
        account: None,
        key: object.to_owned(),
        e_tag: resource.as_ref().and_then(|r| optional_str(r, "/etag")),
        size: resource.as_ref().and_then(|r| optional_u64(r, "/size")),
        event_id: id,
    }));
    Ok(())
}

/// The object resource in a message's base64 `data`; `Err` says why it is not one.
fn object_resource(data: &str) -> Result<Value, ResourceError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|error| ResourceError::NotBase64 {
            error,
            start: show(&data.chars().take(40).collect::<String>()),
        })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(ResourceError::NotJson)?;
    if !value.is_object() {
        return Err(ResourceError::NotAnObject(type_name(&value)));
    }
    Ok(value)
}

/// Why a message's `data` is not an object resource; `Display` ends a sentence whose subject
/// is the data.
#[derive(Debug, thiserror::Error)]
enum ResourceError {
    #[error("is not base64 ({error}); it starts with {start}")]
    NotBase64 {
        error: base64::DecodeError,
        start: String,
    },
    #[error("is not the JSON object resource payloadFormat JSON_API_V1 says ({0})")]
    NotJson(serde_json::Error),
    #[error("is a JSON {0}, not the object resource payloadFormat JSON_API_V1 says")]
    NotAnObject(&'static str),
}

fn non_empty(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}

#[cfg(test)]
#[path = "gcs_tests.rs"]
mod tests;
