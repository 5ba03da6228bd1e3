//! Object-store notifications (`stagepush::events`) against the fixtures in
//! `tests/fixtures/events/` (see its PROVENANCE.md): each resolves to the object the shared
//! fixtures README names.

use stagepush::events::{EventError, Notification, ObjectRef, StoreKind, parse};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("fixtures/events/", $name)).as_slice()
    };
}

const BUCKET: &str = "acme-snowflake-stage";
const S3_KEY: &str = "unload/customers/date=2024-05-01/data_01b4f6a2-0603-5e2b-0000-00010a2b3c4d_006_4_0.snappy.parquet";
const S3_ETAG: &str = "0f343b0931126a20f133d67c2b018a3b";
const BLOB: &str =
    "customers/date=2024-05-01/data_01b4f6a2-0603-5e2b-0000-00010a2b3c4d_006_4_0.snappy.parquet";

/// The object of the S3 "put" fixture and of everything that wraps it.
fn s3_put_object() -> ObjectRef {
    ObjectRef {
        store: StoreKind::S3,
        bucket: BUCKET.into(),
        account: None,
        key: S3_KEY.into(),
        e_tag: Some(S3_ETAG.into()),
        size: Some(15234),
        event_id: Some("8KQ7Z2M1VX0C3B4N:00663186E36D8E1A5C".into()),
    }
}

/// The blob of the Event Grid and CloudEvents fixtures.
fn azure_blob() -> ObjectRef {
    ObjectRef {
        store: StoreKind::Azure,
        bucket: "unload".into(),
        account: Some("acmesnowstage".into()),
        key: BLOB.into(),
        e_tag: Some("0x8DC69B1E5F2A3C4".into()),
        size: Some(15234),
        event_id: Some("7c1e0a52-801e-0046-3f6b-9b1f2b06a1d4".into()),
    }
}

fn created(payload: &[u8]) -> Vec<ObjectRef> {
    parse(payload)
        .expect("the payload parses")
        .into_iter()
        .map(|n| match n {
            Notification::Created(object) => object,
            other => panic!("expected only Created, got {other:?}"),
        })
        .collect()
}

fn error(payload: &[u8]) -> EventError {
    let e = parse(payload).expect_err("the payload is rejected");
    let text = e.to_string();
    assert!(!text.contains(['\n', '\r']), "not one line: {text:?}");
    e
}

#[test]
fn events_s3_put_resolves_partition_key_decoded() {
    assert_eq!(
        created(fixture!("s3-objectcreated-put.json")),
        [s3_put_object()]
    );
}

#[test]
fn events_s3_multipart_resolves_key_with_space() {
    assert_eq!(
        created(fixture!("s3-objectcreated-multipart.json")),
        [ObjectRef {
            store: StoreKind::S3,
            bucket: BUCKET.into(),
            account: None,
            key: "unload/orders/Q1 report/data_0_1_0.snappy.parquet".into(),
            e_tag: Some("d41d8cd98f00b204e9800998ecf8427e-8".into()),
            size: Some(134_209_871),
            event_id: Some("9R2D8T1Q0W7E6Y5U:00663187024F0B2C11".into()),
        }]
    );
}

#[test]
fn events_sns_envelope_resolves_the_same_object() {
    assert_eq!(
        created(fixture!("s3-objectcreated-put.sns-envelope.json")),
        [s3_put_object()]
    );
}

#[test]
fn events_sqs_lambda_batch_resolves_the_same_object() {
    assert_eq!(
        created(fixture!("s3-objectcreated-put.sqs-lambda-event.json")),
        [s3_put_object()]
    );
}

#[test]
fn events_sqs_body_holding_sns_envelope_resolves_the_same_object() {
    assert_eq!(
        created(fixture!("s3-objectcreated-put.sqs-sns-envelope.json")),
        [s3_put_object()]
    );
}

#[test]
fn events_s3_test_event_is_test_plain_and_via_sns() {
    assert_eq!(
        parse(fixture!("s3-test-event.json")).unwrap(),
        [Notification::Test]
    );
    assert_eq!(
        parse(fixture!("s3-test-event.sns-envelope.json")).unwrap(),
        [Notification::Test]
    );
}

#[test]
fn events_s3_delete_is_ignored() {
    let payload = br#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectRemoved:Delete",
        "s3":{"bucket":{"name":"b"},"object":{"key":"a%3Db"}}}]}"#;
    match parse(payload).unwrap().as_slice() {
        [Notification::Ignored { reason }] => {
            assert!(reason.contains("ObjectRemoved:Delete"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn events_eventbridge_key_taken_as_is() {
    let mut expected = s3_put_object();
    expected.event_id = Some("2d4eba74-fd51-3966-4bfa-b013c9da8ff1".into());
    assert_eq!(
        created(fixture!("eventbridge-object-created.json")),
        [expected]
    );
    // Not form-decoded: `+` and `%3D` stay.
    let payload = br#"{"version":"0","id":"x","detail-type":"Object Created","source":"aws.s3",
        "detail":{"bucket":{"name":"b"},"object":{"key":"Q1+report/date%3D1.parquet"}}}"#;
    assert_eq!(created(payload)[0].key, "Q1+report/date%3D1.parquet");
}

#[test]
fn events_eventgrid_resolves_container_blob_and_account() {
    assert_eq!(
        created(fixture!("eventgrid-blobcreated.json")),
        [azure_blob()]
    );
}

#[test]
fn events_eventgrid_subscription_validation_is_ignored() {
    assert_eq!(
        parse(fixture!("eventgrid-subscription-validation.json")).unwrap(),
        [Notification::Ignored {
            reason: "subscription validation (answered by serve)".into()
        }]
    );
}

#[test]
fn events_adls_gen2_only_flush_with_close_is_created() {
    let notifications = parse(fixture!("eventgrid-adls-gen2-blobcreated.json")).unwrap();
    let mut expected = azure_blob();
    expected.event_id = Some("9a1b2c3d-101e-0046-3f6b-9b1f2b06a1d6".into());
    match notifications.as_slice() {
        [
            Notification::Ignored { reason },
            Notification::Created(object),
        ] => {
            assert!(reason.contains("CreateFile"), "{reason}");
            assert_eq!(object, &expected);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn events_cloudevents_single_and_batch() {
    assert_eq!(
        created(fixture!("cloudevents-blobcreated.json")),
        [azure_blob()]
    );
    assert_eq!(
        created(fixture!("cloudevents-blobcreated.batch.json")),
        [azure_blob()]
    );
}

#[test]
fn events_not_json_is_a_one_line_error() {
    let e = error(b"<html>\r\n<body>502 Bad Gateway</body>\r\n</html>");
    assert!(matches!(e, EventError::NotJson(_)), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("<html>"), "says what it got: {text}");
    assert!(
        text.contains("S3 notification"),
        "says what it expects: {text}"
    );
    let truncated = &fixture!("s3-objectcreated-put.json")[..100];
    assert!(matches!(error(truncated), EventError::NotJson(_)));
}

#[test]
fn events_unknown_shape_names_top_level_keys() {
    let e = error(br#"{"hello":"world","items":[1,2]}"#);
    assert!(matches!(e, EventError::UnknownShape(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(r#"["hello", "items"]"#),
        "names the keys: {text}"
    );
    assert!(matches!(error(b"[1, 2]"), EventError::UnknownShape(_)));
    assert!(matches!(error(b"\"s3\""), EventError::UnknownShape(_)));
}

#[test]
fn events_create_without_key_is_malformed() {
    let s3 = br#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put",
        "s3":{"bucket":{"name":"b"},"object":{"size":3}}}]}"#;
    let e = error(s3);
    assert_eq!(
        e.to_string(),
        "malformed S3 event: Records[0] (ObjectCreated:Put) has no s3.object.key"
    );
    let no_bucket = br#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put",
        "s3":{"object":{"key":"k"}}}]}"#;
    assert!(error(no_bucket).to_string().contains("s3.bucket.name"));
    let eventbridge = br#"{"source":"aws.s3","detail-type":"Object Created",
        "detail":{"bucket":{"name":"b"},"object":{}}}"#;
    let e = error(eventbridge);
    assert!(
        matches!(&e, EventError::Malformed { kind: "EventBridge", reason } if reason.contains("detail.object.key")),
        "{e}"
    );
    let eventgrid = br#"[{"eventType":"Microsoft.Storage.BlobCreated","id":"e1",
        "subject":"/blobServices/default/containers/unload","data":{"api":"PutBlob"}}]"#;
    let e = error(eventgrid);
    assert!(
        matches!(&e, EventError::Malformed { kind: "Event Grid", reason } if reason.contains("names no blob")),
        "{e}"
    );
}
