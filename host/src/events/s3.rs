//! AWS shapes: S3 notification records, SQS→Lambda and SNS→Lambda records, SNS envelopes,
//! EventBridge "Object Created".

use serde_json::{Map, Value};

use super::{
    EventError, Notification, ObjectRef, StoreKind, keys_of, nested, optional_str, optional_u64,
    required_str, show, show_value, type_name,
};

/// Decodes an S3 notification key: form-URL encoding, so `+` is a space (replaced first),
/// then percent-decoding (`%3D` → `=`, `%2B` → `+`). Fails if the bytes are not UTF-8.
pub fn decode_s3_key(raw: &str) -> Result<String, std::str::Utf8Error> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|key| key.into_owned())
}

/// `Records[]`: S3 records, SQS messages (S3 JSON in `body`) or SNS→Lambda records (an SNS
/// envelope in `Sns`), each told by its `eventSource`.
pub(super) fn records(
    records: &Value,
    depth: usize,
    out: &mut Vec<Notification>,
) -> Result<(), EventError> {
    let Some(items) = records.as_array() else {
        return Err(EventError::Malformed {
            kind: "S3",
            reason: format!("Records is a JSON {}, not an array", type_name(records)),
        });
    };
    for (i, record) in items.iter().enumerate() {
        let Some(map) = record.as_object() else {
            return Err(EventError::Malformed {
                kind: "S3",
                reason: format!(
                    "Records[{i}] is a JSON {}, not an object",
                    type_name(record)
                ),
            });
        };
        let source = map
            .get("eventSource")
            .or_else(|| map.get("EventSource"))
            .and_then(Value::as_str);
        match source {
            Some("aws:s3") => s3_record(record, i, out)?,
            Some("aws:sqs") => sqs_record(map, i, depth, out)?,
            Some("aws:sns") => sns_record(map, i, depth, out)?,
            _ if map.contains_key("s3") => s3_record(record, i, out)?,
            _ if map.contains_key("body") => sqs_record(map, i, depth, out)?,
            _ if map.contains_key("Sns") => sns_record(map, i, depth, out)?,
            Some(other) => out.push(Notification::Ignored {
                reason: format!(
                    "Records[{i}] comes from event source {}, not S3, SQS or SNS",
                    show(other)
                ),
            }),
            None => {
                return Err(EventError::UnknownShape(format!(
                    "Records[{i}] has no eventSource and no s3, body or Sns (keys {})",
                    keys_of(map)
                )));
            }
        }
    }
    Ok(())
}

/// One S3 notification record.
fn s3_record(record: &Value, i: usize, out: &mut Vec<Notification>) -> Result<(), EventError> {
    let malformed = |reason: String| EventError::Malformed { kind: "S3", reason };
    let name =
        required_str(record, "/eventName").map_err(|e| malformed(format!("Records[{i}] {e}")))?;
    let bare = name.strip_prefix("s3:").unwrap_or(name);
    if !bare.starts_with("ObjectCreated:") {
        let bucket = record
            .pointer("/s3/bucket/name")
            .map_or("?".to_owned(), show_value);
        let key = match record.pointer("/s3/object/key") {
            Some(Value::String(raw)) => show(&decode_s3_key(raw).unwrap_or_else(|_| raw.clone())),
            _ => "?".to_owned(),
        };
        out.push(Notification::Ignored {
            reason: format!(
                "S3 {} event for bucket {bucket} key {key} (only ObjectCreated:* is delivered)",
                show(name)
            ),
        });
        return Ok(());
    }
    let what = |e: String| malformed(format!("Records[{i}] ({name}) {e}"));
    let bucket = required_str(record, "/s3/bucket/name").map_err(|e| what(e.to_string()))?;
    let raw_key = required_str(record, "/s3/object/key").map_err(|e| what(e.to_string()))?;
    let key = decode_s3_key(raw_key).map_err(|_| {
        what(format!(
            "has s3.object.key {} that is not UTF-8 once percent-decoded",
            show(raw_key)
        ))
    })?;
    let request_id = optional_str(record, "/responseElements/x-amz-request-id");
    let sequencer = optional_str(record, "/s3/object/sequencer");
    let event_id = match (request_id, sequencer) {
        (Some(request), Some(sequencer)) => Some(format!("{request}:{sequencer}")),
        (one, other) => one.or(other),
    };
    out.push(Notification::Created(ObjectRef {
        store: StoreKind::S3,
        bucket: bucket.to_owned(),
        account: None,
        key,
        e_tag: optional_str(record, "/s3/object/eTag"),
        size: optional_u64(record, "/s3/object/size"),
        event_id,
    }));
    Ok(())
}

/// One SQS→Lambda record: the message (S3 JSON, or an SNS envelope) is a string in `body`.
fn sqs_record(
    map: &Map<String, Value>,
    i: usize,
    depth: usize,
    out: &mut Vec<Notification>,
) -> Result<(), EventError> {
    let what = format!("SQS Records[{i}].body");
    match map.get("body") {
        None | Some(Value::Null) => Err(EventError::Malformed {
            kind: "SQS",
            reason: format!("Records[{i}] has no body"),
        }),
        Some(body) => nested("SQS", &what, body, depth, out),
    }
}

/// `aws sqs receive-message` output: `{"Messages": [{"MessageId", "ReceiptHandle", "Body",
/// …}]}`, each `Body` an S3 notification, SNS envelope or EventBridge event (like an
/// SQS→Lambda batch's `body`).
pub(super) fn receive_message_output(
    messages: &Value,
    depth: usize,
    out: &mut Vec<Notification>,
) -> Result<(), EventError> {
    let Value::Array(messages) = messages else {
        return Err(EventError::Malformed {
            kind: "SQS",
            reason: format!(
                "Messages is a JSON {}, not an array (as `aws sqs receive-message` writes it)",
                super::type_name(messages)
            ),
        });
    };
    for (i, message) in messages.iter().enumerate() {
        match message.get("Body") {
            None | Some(Value::Null) => {
                return Err(EventError::Malformed {
                    kind: "SQS",
                    reason: format!("Messages[{i}] has no Body"),
                });
            }
            Some(body) => nested("SQS", &format!("SQS Messages[{i}].Body"), body, depth, out)?,
        }
    }
    Ok(())
}

/// One SNS→Lambda record: an SNS envelope in `Sns`.
fn sns_record(
    map: &Map<String, Value>,
    i: usize,
    depth: usize,
    out: &mut Vec<Notification>,
) -> Result<(), EventError> {
    match map.get("Sns") {
        Some(Value::Object(envelope)) => {
            sns_envelope(envelope, &format!("SNS Records[{i}].Sns"), depth, out)
        }
        None | Some(Value::Null) => Err(EventError::Malformed {
            kind: "SNS",
            reason: format!("Records[{i}] has no Sns envelope"),
        }),
        Some(other) => Err(EventError::Malformed {
            kind: "SNS",
            reason: format!(
                "Records[{i}].Sns is a JSON {}, not an object",
                type_name(other)
            ),
        }),
    }
}

/// An SNS envelope (`Type: Notification`, the S3 JSON a string in `Message`); `at` names it.
pub(super) fn sns_envelope(
    map: &Map<String, Value>,
    at: &str,
    depth: usize,
    out: &mut Vec<Notification>,
) -> Result<(), EventError> {
    let kind = "SNS";
    let ty = match map.get("Type") {
        Some(Value::String(ty)) => ty.as_str(),
        other => {
            return Err(EventError::Malformed {
                kind,
                reason: format!(
                    "{at} has Type {}, expected \"Notification\"",
                    other.map_or("missing".to_owned(), show_value)
                ),
            });
        }
    };
    match ty {
        "Notification" => match map.get("Message") {
            None | Some(Value::Null) => Err(EventError::Malformed {
                kind,
                reason: format!("{at} notification has no Message"),
            }),
            Some(message) => nested(kind, &format!("{at} Message"), message, depth, out),
        },
        "SubscriptionConfirmation" => {
            out.push(Notification::Ignored {
                reason: "SNS subscription confirmation (confirm it by visiting its SubscribeURL)"
                    .to_owned(),
            });
            Ok(())
        }
        other => {
            out.push(Notification::Ignored {
                reason: format!("SNS message of Type {}", show(other)),
            });
            Ok(())
        }
    }
}

/// An EventBridge event; `Object Created` from `aws.s3` names an object (the key is not
/// encoded).
pub(super) fn eventbridge(
    event: &Value,
    map: &Map<String, Value>,
    out: &mut Vec<Notification>,
) -> Result<(), EventError> {
    let kind = "EventBridge";
    let source = map.get("source").and_then(Value::as_str).unwrap_or("");
    let detail_type = map.get("detail-type").map_or("?".to_owned(), show_value);
    if source != "aws.s3" {
        out.push(Notification::Ignored {
            reason: format!(
                "EventBridge {detail_type} event from source {}, not aws.s3",
                map.get("source").map_or("(none)".to_owned(), show_value)
            ),
        });
        return Ok(());
    }
    if map.get("detail-type").and_then(Value::as_str) != Some("Object Created") {
        let bucket = event
            .pointer("/detail/bucket/name")
            .map_or("?".to_owned(), show_value);
        let key = event
            .pointer("/detail/object/key")
            .map_or("?".to_owned(), show_value);
        out.push(Notification::Ignored {
            reason: format!(
                "EventBridge S3 {detail_type} event for bucket {bucket} key {key} \
                 (only Object Created is delivered)"
            ),
        });
        return Ok(());
    }
    let what = |e: String| EventError::Malformed {
        kind,
        reason: format!("Object Created event {e}"),
    };
    let bucket = required_str(event, "/detail/bucket/name").map_err(|e| what(e.to_string()))?;
    let key = required_str(event, "/detail/object/key").map_err(|e| what(e.to_string()))?;
    out.push(Notification::Created(ObjectRef {
        store: StoreKind::S3,
        bucket: bucket.to_owned(),
        account: None,
        key: key.to_owned(),
        e_tag: optional_str(event, "/detail/object/etag"),
        size: optional_u64(event, "/detail/object/size"),
        event_id: optional_str(event, "/id"),
    }));
    Ok(())
}
