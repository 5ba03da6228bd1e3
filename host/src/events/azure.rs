//! Azure shapes: Event Grid schema and CloudEvents 1.0 `Microsoft.Storage.BlobCreated`.

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::{
    EventError, Notification, ObjectRef, StoreKind, optional_str, optional_u64, show, show_value,
    type_name,
};

/// The two envelopes Event Grid delivers storage events in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Schema {
    /// `eventType`, `topic`, `subject`, `data`, `id`.
    EventGrid,
    /// `type`, `source`, `subject`, `data`, `id`, `specversion`.
    CloudEvents,
}

impl Schema {
    fn kind(self) -> &'static str {
        match self {
            Schema::EventGrid => "Event Grid",
            Schema::CloudEvents => "CloudEvents",
        }
    }
    fn type_key(self) -> &'static str {
        match self {
            Schema::EventGrid => "eventType",
            Schema::CloudEvents => "type",
        }
    }
    fn source_key(self) -> &'static str {
        match self {
            Schema::EventGrid => "topic",
            Schema::CloudEvents => "source",
        }
    }
}

const BLOB_CREATED: &str = "Microsoft.Storage.BlobCreated";
const SUBSCRIPTION_VALIDATION: &str = "Microsoft.EventGrid.SubscriptionValidationEvent";
/// Azure Data Lake Storage Gen2 (DFS endpoint) operations; a `BlobCreated` from one of them is
/// a finished file only for `FlushWithClose`.
const DFS_APIS: &[&str] = &[
    "CreateFile",
    "FlushWithClose",
    "AppendFile",
    "CreateDirectory",
    "RenameFile",
    "RenameDirectory",
    "DeleteFile",
    "DeleteDirectory",
];

/// A blob URL taken apart (`https://<account>.blob.core.windows.net/<container>/<path>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobUrl {
    /// The storage account: the first label of the host, or (emulators such as Azurite on an
    /// IP address or `localhost`) the first path segment.
    pub account: String,
    pub container: String,
    /// The blob path, percent-decoded.
    pub path: String,
    /// The host is a Data Lake Storage Gen2 endpoint (`<account>.dfs.core.windows.net`).
    pub dfs: bool,
}

/// Parses a blob URL (`http(s)://host/container/path`, query and fragment dropped); `None`
/// if it names no blob.
pub fn parse_blob_url(url: &str) -> Option<BlobUrl> {
    let rest = strip_prefix_ignore_case(url, "https://")
        .or_else(|| strip_prefix_ignore_case(url, "http://"))?;
    let rest = rest.split(['?', '#']).next()?;
    let (authority, path) = rest.split_once('/')?;
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty() => name,
        _ => host,
    };
    let host = host.to_ascii_lowercase();
    let path_style = host == "localhost"
        || host.starts_with('[')
        || host.parse::<IpAddr>().is_ok()
        || !host.contains('.');
    let (account, path) = if path_style {
        let (account, path) = path.split_once('/')?;
        (decode(account)?, path)
    } else {
        (host.split('.').next()?.to_owned(), path)
    };
    let (container, blob) = path.split_once('/')?;
    let (container, blob) = (decode(container)?, decode(blob)?);
    if account.is_empty() || container.is_empty() || blob.is_empty() {
        return None;
    }
    Some(BlobUrl {
        account,
        container,
        path: blob,
        dfs: host.contains(".dfs."),
    })
}

/// The container and blob path of an Event Grid `subject`
/// (`/blobServices/default/containers/<container>/blobs/<path>`, not encoded).
pub fn blob_from_subject(subject: &str) -> Option<(String, String)> {
    let rest = subject.strip_prefix("/blobServices/default/containers/")?;
    let (container, path) = rest.split_once("/blobs/")?;
    if container.is_empty() || container.contains('/') || path.is_empty() {
        return None;
    }
    Some((container.to_owned(), path.to_owned()))
}

/// The storage account of a resource id (`…/providers/Microsoft.Storage/storageAccounts/<a>`).
fn account_from_resource_id(id: &str) -> Option<String> {
    const MARK: &str = "/storageaccounts/";
    let at = id.to_ascii_lowercase().find(MARK)? + MARK.len();
    let account = id.get(at..)?.split('/').next()?;
    (!account.is_empty()).then(|| account.to_owned())
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn decode(text: &str) -> Option<String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// One Event Grid or CloudEvents event (`event` is the object `map`).
pub(super) fn event(
    event: &Value,
    map: &Map<String, Value>,
    schema: Schema,
    out: &mut Vec<Notification>,
) -> Result<(), EventError> {
    let kind = schema.kind();
    let malformed = |reason: String| EventError::Malformed { kind, reason };
    let ty = match map.get(schema.type_key()) {
        Some(Value::String(ty)) => ty.as_str(),
        None | Some(Value::Null) => {
            return Err(malformed(format!(
                "event has no {} (keys {})",
                schema.type_key(),
                super::keys_of(map)
            )));
        }
        Some(other) => {
            return Err(malformed(format!(
                "event has {} as a JSON {}, not a string",
                schema.type_key(),
                type_name(other)
            )));
        }
    };
    if ty == SUBSCRIPTION_VALIDATION {
        out.push(Notification::Ignored {
            reason: "subscription validation (answered by serve)".to_owned(),
        });
        return Ok(());
    }
    let subject = map.get("subject").and_then(Value::as_str);
    if ty != BLOB_CREATED && !ty.starts_with("Microsoft.") {
        let what = subject.map_or("?".to_owned(), show);
        out.push(super::unknown_type(kind, ty, &what)?);
        return Ok(());
    }
    if ty != BLOB_CREATED {
        out.push(Notification::Ignored {
            reason: format!(
                "{kind} {} event for {} (only {BLOB_CREATED} is delivered)",
                show(ty),
                subject.map_or("?".to_owned(), show)
            ),
        });
        return Ok(());
    }
    let id = optional_str(event, "/id");
    let label = id
        .as_deref()
        .map_or(String::new(), |id| format!(" {}", show(id)));
    match map.get("data") {
        None | Some(Value::Null | Value::Object(_)) => {}
        Some(other) => {
            return Err(malformed(format!(
                "BlobCreated event{label} has data as a JSON {}, not an object",
                type_name(other)
            )));
        }
    }
    let url = event
        .pointer("/data/url")
        .and_then(Value::as_str)
        .and_then(parse_blob_url);
    let (container, path) = match subject.and_then(blob_from_subject) {
        Some(blob) => blob,
        None => match &url {
            Some(url) => (url.container.clone(), url.path.clone()),
            None => {
                return Err(malformed(format!(
                    "BlobCreated event{label} names no blob: subject {} is not \
                     /blobServices/default/containers/<container>/blobs/<path> and data.url {} \
                     is not https://<account>.blob.core.windows.net/<container>/<path>",
                    map.get("subject").map_or("(none)".to_owned(), show_value),
                    event
                        .pointer("/data/url")
                        .map_or("(none)".to_owned(), show_value),
                )));
            }
        },
    };
    let account = url.as_ref().map(|url| url.account.clone()).or_else(|| {
        map.get(schema.source_key())
            .and_then(Value::as_str)
            .and_then(account_from_resource_id)
    });
    let api = event.pointer("/data/api").and_then(Value::as_str);
    if let Some(api) = api {
        let dfs = url.as_ref().is_some_and(|url| url.dfs) || DFS_APIS.contains(&api);
        if dfs && api != "FlushWithClose" {
            out.push(Notification::Ignored {
                reason: format!(
                    "ADLS Gen2 {} on {}: the file is complete only at FlushWithClose",
                    show(api),
                    show(&format!("{container}/{path}"))
                ),
            });
            return Ok(());
        }
    }
    out.push(Notification::Created(ObjectRef {
        store: StoreKind::Azure,
        bucket: container,
        account,
        key: path,
        e_tag: optional_str(event, "/data/eTag"),
        size: optional_u64(event, "/data/contentLength"),
        event_id: id,
    }));
    Ok(())
}
