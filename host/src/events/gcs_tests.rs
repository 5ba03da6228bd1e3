//! The GCS shapes against the fixtures `tests/fixtures/events/gcs-*.json` (written from the
//! documented shapes, see its PROVENANCE.md) and malformed variants of them.

use base64::Engine;
use serde_json::{Value, json};

use super::super::{EventError, Notification, ObjectRef, StoreKind, parse, parse_binary};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../../../tests/fixtures/events/", $name)).as_slice()
    };
}

const BUCKET: &str = "acme-snowflake-stage";
const NAME: &str = "unload/customers/date=2024-05-01/data_01b4f6a2-0603-5e2b-0000-00010a2b3c4d_006_4_0.snappy.parquet";

fn object(event_id: &str, with_resource: bool) -> ObjectRef {
    ObjectRef {
        store: StoreKind::Gcs,
        bucket: BUCKET.into(),
        account: None,
        key: NAME.into(),
        e_tag: with_resource.then(|| "CLOu0O2Y8IUDEAE=".into()),
        size: with_resource.then_some(15234),
        event_id: Some(event_id.into()),
    }
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("the fixture is JSON")
}

fn only(payload: &[u8]) -> Notification {
    match parse(payload).expect("parses").as_slice() {
        [one] => one.clone(),
        other => panic!("expected one notification, got {other:?}"),
    }
}

fn error_of(value: &Value) -> EventError {
    let e = parse(value.to_string().as_bytes()).expect_err("refused");
    let text = e.to_string();
    assert!(!text.contains(['\n', '\r']), "not one line: {text:?}");
    e
}

/// The binary-mode headers Eventarc sends with the structured fixture's attributes.
fn binary_attributes(event: &Value) -> Vec<(String, String)> {
    ["specversion", "type", "source", "subject", "id", "time"]
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), event[*name].as_str()?.to_owned())))
        .collect()
}

#[test]
fn eventarc_finalized_structured_names_the_object() {
    assert_eq!(
        only(fixture!("gcs-eventarc-finalized.json")),
        Notification::Created(object("11174823529543417", true))
    );
}

#[test]
fn eventarc_finalized_binary_mode_names_the_same_object() {
    let event = json_of(fixture!("gcs-eventarc-finalized.json"));
    let attributes = binary_attributes(&event);
    let got = parse_binary(&attributes, fixture!("gcs-object-resource.json")).unwrap();
    assert_eq!(
        got,
        [Notification::Created(object("11174823529543417", true))]
    );
    // Without a body the object comes from ce-source and ce-subject alone.
    let got = parse_binary(&attributes, b"").unwrap();
    assert_eq!(
        got,
        [Notification::Created(object("11174823529543417", false))]
    );
}

#[test]
fn eventarc_binary_mode_needs_specversion_and_a_json_body() {
    let event = json_of(fixture!("gcs-eventarc-finalized.json"));
    let mut attributes = binary_attributes(&event);
    attributes.retain(|(name, _)| name != "specversion");
    let e = parse_binary(&attributes, fixture!("gcs-object-resource.json")).unwrap_err();
    assert!(e.to_string().contains("ce-specversion"), "{e}");
    let e = parse_binary(&binary_attributes(&event), b"not json").unwrap_err();
    assert!(matches!(e, EventError::NotJson(_)), "{e:?}");
    assert!(e.to_string().contains("binary-mode CloudEvent"), "{e}");
}

#[test]
fn eventarc_subject_and_source_name_the_object_without_data() {
    let mut event = json_of(fixture!("gcs-eventarc-finalized.json"));
    event["data"] = Value::Null;
    event["subject"] = json!("objects/Q1 report/a=b.parquet");
    match only(event.to_string().as_bytes()) {
        Notification::Created(o) => {
            assert_eq!(
                (o.bucket.as_str(), o.key.as_str()),
                (BUCKET, "Q1 report/a=b.parquet")
            );
            assert_eq!(o.store, StoreKind::Gcs);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn eventarc_other_object_events_are_ignored_with_a_reason() {
    match only(fixture!("gcs-eventarc-deleted.json")) {
        Notification::Ignored { reason } => {
            assert!(reason.contains("v1.deleted"), "{reason}");
            assert!(reason.contains(NAME), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let mut event = json_of(fixture!("gcs-eventarc-finalized.json"));
    for ty in ["archived", "metadataUpdated"] {
        event["type"] = json!(format!("google.cloud.storage.object.v1.{ty}"));
        assert!(
            matches!(only(event.to_string().as_bytes()), Notification::Ignored { reason } if reason.contains(ty)),
            "{ty}"
        );
    }
}

#[test]
fn an_unknown_creation_type_is_refused_not_acknowledged() {
    let mut event = json_of(fixture!("gcs-eventarc-finalized.json"));
    event["type"] = json!("google.cloud.storage.object.v2.finalized");
    let e = error_of(&event);
    assert!(matches!(e, EventError::Unsupported(_)), "{e:?}");
    assert!(e.to_string().contains("v2.finalized"), "{e}");
    // Any CloudEvent, not only Google's: a type naming a creation is never taken as done.
    let other = json!({"specversion": "1.0", "type": "com.example.object.created",
        "source": "/x", "id": "1", "subject": "a.parquet", "data": {}});
    assert!(matches!(error_of(&other), EventError::Unsupported(_)));
    // A type that names no creation is ignored, with a reason.
    let unrelated = json!({"specversion": "1.0", "type": "com.example.ping", "source": "/x",
        "id": "2"});
    assert!(matches!(
        only(unrelated.to_string().as_bytes()),
        Notification::Ignored { reason } if reason.contains("com.example.ping")
    ));
}

#[test]
fn eventarc_malformed_events_say_what_is_missing() {
    let mut event = json_of(fixture!("gcs-eventarc-finalized.json"));
    event["data"] = json!("a string");
    assert!(
        error_of(&event)
            .to_string()
            .contains("data as a JSON string")
    );
    let mut event = json_of(fixture!("gcs-eventarc-finalized.json"));
    event["data"].as_object_mut().unwrap().remove("bucket");
    event["source"] = json!("//storage.googleapis.com/projects/_/other");
    let e = error_of(&event);
    assert!(e.to_string().contains("names no bucket"), "{e}");
    let mut event = json_of(fixture!("gcs-eventarc-finalized.json"));
    event["data"].as_object_mut().unwrap().remove("name");
    event.as_object_mut().unwrap().remove("subject");
    assert!(error_of(&event).to_string().contains("names no object"));
    let mut event = json_of(fixture!("gcs-eventarc-finalized.json"));
    event["type"] = json!(7);
    assert!(
        error_of(&event)
            .to_string()
            .contains("type as a JSON number")
    );
}

#[test]
fn pubsub_push_finalize_names_the_object_with_its_resource() {
    assert_eq!(
        only(fixture!("gcs-pubsub-push-finalize.json")),
        Notification::Created(object("11174823529543419", true))
    );
}

#[test]
fn pubsub_push_without_payload_names_the_object_from_its_attributes() {
    assert_eq!(
        only(fixture!("gcs-pubsub-push-finalize.payload-none.json")),
        Notification::Created(object("11174823529543420", false))
    );
}

#[test]
fn pubsub_push_object_ids_are_taken_as_they_are() {
    let mut push = json_of(fixture!("gcs-pubsub-push-finalize.payload-none.json"));
    push["message"]["attributes"]["objectId"] = json!("Q1 report/a%3Db+c.parquet");
    match only(push.to_string().as_bytes()) {
        Notification::Created(o) => assert_eq!(o.key, "Q1 report/a%3Db+c.parquet"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn pubsub_push_other_event_types_are_ignored() {
    match only(fixture!("gcs-pubsub-push-delete.json")) {
        Notification::Ignored { reason } => {
            assert!(
                reason.contains("OBJECT_DELETE") && reason.contains(NAME),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    let mut push = json_of(fixture!("gcs-pubsub-push-delete.json"));
    for ty in ["OBJECT_ARCHIVE", "OBJECT_METADATA_UPDATE"] {
        push["message"]["attributes"]["eventType"] = json!(ty);
        assert!(matches!(
            only(push.to_string().as_bytes()),
            Notification::Ignored { reason } if reason.contains(ty)
        ));
    }
    push["message"]["attributes"]["eventType"] = json!("OBJECT_CREATE");
    assert!(matches!(error_of(&push), EventError::Unsupported(_)));
}

#[test]
fn pubsub_push_malformed_messages_are_refused_with_the_reason() {
    let base = json_of(fixture!("gcs-pubsub-push-finalize.json"));
    let with = |change: &dyn Fn(&mut Value)| {
        let mut push = base.clone();
        change(&mut push);
        error_of(&push).to_string()
    };
    let e = with(&|p| {
        p["message"]["attributes"]
            .as_object_mut()
            .unwrap()
            .remove("bucketId");
    });
    assert!(e.contains("no attributes.bucketId"), "{e}");
    let e = with(&|p| {
        p["message"]["attributes"]
            .as_object_mut()
            .unwrap()
            .remove("objectId");
    });
    assert!(e.contains("no attributes.objectId"), "{e}");
    let e = with(&|p| p["message"]["data"] = json!("!!not base64!!"));
    assert!(e.contains("is not base64"), "{e}");
    let e = with(&|p| {
        p["message"]["data"] = json!(base64::engine::general_purpose::STANDARD.encode(b"not json"));
    });
    assert!(e.contains("not the JSON object resource"), "{e}");
    let e = with(&|p| p["message"]["data"] = json!(12));
    assert!(e.contains("data as a JSON number"), "{e}");
    let e = with(&|p| p["message"]["attributes"]["bucketId"] = json!(["b"]));
    assert!(e.contains("attributes.bucketId as a JSON array"), "{e}");
    let e = with(&|p| {
        p["message"].as_object_mut().unwrap().remove("attributes");
    });
    assert!(e.contains("has no attributes"), "{e}");
    let e = with(&|p| p["message"]["attributes"] = json!({"foo": "bar"}));
    assert!(e.contains("no attributes.eventType"), "{e}");
    assert!(e.contains("11174823529543419"), "names the message: {e}");
}

#[test]
fn eventarc_pubsub_message_published_carries_a_push_body() {
    let push = json_of(fixture!("gcs-pubsub-push-finalize.json"));
    let event = json!({"specversion": "1.0", "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": "//pubsub.googleapis.com/projects/acme-data/topics/stage", "id": "9",
        "data": push});
    assert_eq!(
        only(event.to_string().as_bytes()),
        Notification::Created(object("11174823529543419", true))
    );
    let bad = json!({"specversion": "1.0", "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": "//pubsub.googleapis.com/projects/acme-data/topics/stage", "id": "9",
        "data": {"message": {"attributes": {"eventType": "OBJECT_FINALIZE"}}}});
    let e = error_of(&bad).to_string();
    assert!(
        e.contains("bucketId") && e.contains("Eventarc event \"9\""),
        "{e}"
    );
}

#[test]
fn a_bare_object_resource_is_refused_with_what_to_change() {
    let e = parse(fixture!("gcs-object-resource.json")).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, EventError::UnknownShape(_)), "{e:?}");
    assert!(
        text.contains("--push-no-wrapper")
            && text.contains("ce-* headers")
            && text.contains(BUCKET),
        "{text}"
    );
}
