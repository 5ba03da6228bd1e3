use serde_json::{Value, json};

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../../../tests/fixtures/events/", $name)).as_slice()
    };
}

const FIXTURES: &[(&str, &[u8])] = &[
    (
        "s3-objectcreated-put.json",
        fixture!("s3-objectcreated-put.json"),
    ),
    (
        "s3-objectcreated-multipart.json",
        fixture!("s3-objectcreated-multipart.json"),
    ),
    (
        "s3-objectcreated-put.sns-envelope.json",
        fixture!("s3-objectcreated-put.sns-envelope.json"),
    ),
    (
        "s3-objectcreated-put.sqs-lambda-event.json",
        fixture!("s3-objectcreated-put.sqs-lambda-event.json"),
    ),
    (
        "s3-objectcreated-put.sqs-sns-envelope.json",
        fixture!("s3-objectcreated-put.sqs-sns-envelope.json"),
    ),
    ("s3-test-event.json", fixture!("s3-test-event.json")),
    (
        "s3-test-event.sns-envelope.json",
        fixture!("s3-test-event.sns-envelope.json"),
    ),
    (
        "eventbridge-object-created.json",
        fixture!("eventbridge-object-created.json"),
    ),
    (
        "eventgrid-blobcreated.json",
        fixture!("eventgrid-blobcreated.json"),
    ),
    (
        "eventgrid-adls-gen2-blobcreated.json",
        fixture!("eventgrid-adls-gen2-blobcreated.json"),
    ),
    (
        "eventgrid-subscription-validation.json",
        fixture!("eventgrid-subscription-validation.json"),
    ),
    (
        "cloudevents-blobcreated.json",
        fixture!("cloudevents-blobcreated.json"),
    ),
    (
        "cloudevents-blobcreated.batch.json",
        fixture!("cloudevents-blobcreated.batch.json"),
    ),
    (
        "gcs-eventarc-finalized.json",
        fixture!("gcs-eventarc-finalized.json"),
    ),
    (
        "gcs-eventarc-deleted.json",
        fixture!("gcs-eventarc-deleted.json"),
    ),
    (
        "gcs-pubsub-push-finalize.json",
        fixture!("gcs-pubsub-push-finalize.json"),
    ),
    (
        "gcs-pubsub-push-finalize.payload-none.json",
        fixture!("gcs-pubsub-push-finalize.payload-none.json"),
    ),
    (
        "gcs-pubsub-push-delete.json",
        fixture!("gcs-pubsub-push-delete.json"),
    ),
];

const KEY: &str = "unload/customers/date=2024-05-01/data_01b4f6a2-0603-5e2b-0000-00010a2b3c4d_006_4_0.snappy.parquet";
const BLOB: &str =
    "customers/date=2024-05-01/data_01b4f6a2-0603-5e2b-0000-00010a2b3c4d_006_4_0.snappy.parquet";

fn parse_value_json(value: &Value) -> Result<Vec<Notification>, EventError> {
    parse(value.to_string().as_bytes())
}

fn only_created(payload: &[u8]) -> ObjectRef {
    match parse(payload).expect("parses").as_slice() {
        [Notification::Created(object)] => object.clone(),
        other => panic!("expected one Created, got {other:?}"),
    }
}

fn assert_one_line(text: &str) {
    assert!(
        !text.contains(['\n', '\r', '\u{2028}', '\u{2029}']),
        "not one line: {text:?}"
    );
}

/// Parses and checks the no-panic / one-line contract.
fn check_contract(payload: &[u8]) {
    match parse(payload) {
        Ok(notifications) => {
            for n in notifications {
                match n {
                    Notification::Created(object) => {
                        assert!(
                            !object.bucket.is_empty() && !object.key.is_empty(),
                            "{object:?}"
                        );
                    }
                    Notification::Ignored { reason } => assert_one_line(&reason),
                    Notification::Test => {}
                }
            }
        }
        Err(e) => assert_one_line(&e.to_string()),
    }
}

#[test]
fn s3_key_decodes_plus_as_space_before_percent() {
    assert_eq!(decode_s3_key("a+b%2Bc%3Dd%20e").unwrap(), "a b+c=d e");
    assert_eq!(
        decode_s3_key("date%3D2024-05-01/x").unwrap(),
        "date=2024-05-01/x"
    );
    assert_eq!(decode_s3_key("Q1+report").unwrap(), "Q1 report");
    assert_eq!(decode_s3_key("caf%C3%A9").unwrap(), "café");
    assert_eq!(decode_s3_key("100%").unwrap(), "100%");
    assert!(decode_s3_key("bad%FF").is_err());
}

#[test]
fn blob_urls_are_taken_apart() {
    let url = parse_blob_url(
        "https://acmesnowstage.blob.core.windows.net/unload/orders/Q1%20report/a%3Db.parquet?sv=1#x",
    )
    .unwrap();
    assert_eq!(
        url,
        BlobUrl {
            account: "acmesnowstage".into(),
            container: "unload".into(),
            path: "orders/Q1 report/a=b.parquet".into(),
            dfs: false,
        }
    );
    let dfs = parse_blob_url("https://acct.dfs.core.windows.net/fs/dir/f.parquet").unwrap();
    assert!(dfs.dfs);
    assert_eq!(
        (dfs.account.as_str(), dfs.container.as_str()),
        ("acct", "fs")
    );
    let azurite = parse_blob_url("http://127.0.0.1:10000/devstoreaccount1/c/p/q.parquet").unwrap();
    assert_eq!(
        (
            azurite.account.as_str(),
            azurite.container.as_str(),
            azurite.path.as_str()
        ),
        ("devstoreaccount1", "c", "p/q.parquet")
    );
    let named = parse_blob_url("http://azurite:10000/devstoreaccount1/c/p").unwrap();
    assert_eq!(named.account, "devstoreaccount1");
    for bad in [
        "",
        "unload/x",
        "https://acct.blob.core.windows.net",
        "https://acct.blob.core.windows.net/",
        "https://acct.blob.core.windows.net/container",
        "https://acct.blob.core.windows.net/container/",
        "https://acct.blob.core.windows.net/c/%FF",
        "ftp://acct.blob.core.windows.net/c/p",
        "httpé://x",
    ] {
        assert_eq!(parse_blob_url(bad), None, "{bad}");
    }
}

#[test]
fn subjects_name_container_and_blob() {
    assert_eq!(
        blob_from_subject("/blobServices/default/containers/unload/blobs/a/blobs/b c=1"),
        Some(("unload".into(), "a/blobs/b c=1".into()))
    );
    for bad in [
        "",
        "/blobServices/default/containers/unload",
        "/blobServices/default/containers//blobs/x",
        "/blobServices/default/containers/unload/blobs/",
        "/fileServices/default/containers/unload/blobs/x",
    ] {
        assert_eq!(blob_from_subject(bad), None, "{bad}");
    }
}

#[test]
fn show_keeps_messages_on_one_line() {
    assert_eq!(show("a\nb"), "\"a\\nb\"");
    assert_one_line(&show("x\u{2028}y\r"));
    let long = "é".repeat(500);
    let shown = show(&long);
    assert!(
        shown.ends_with('…') && shown.chars().count() < 130,
        "{shown}"
    );
}

#[test]
fn s3_put_fixture() {
    let object = only_created(fixture!("s3-objectcreated-put.json"));
    assert_eq!(
        object,
        ObjectRef {
            store: StoreKind::S3,
            bucket: "acme-snowflake-stage".into(),
            account: None,
            key: KEY.into(),
            e_tag: Some("0f343b0931126a20f133d67c2b018a3b".into()),
            size: Some(15234),
            event_id: Some("8KQ7Z2M1VX0C3B4N:00663186E36D8E1A5C".into()),
        }
    );
}

#[test]
fn s3_multipart_fixture_decodes_plus() {
    let object = only_created(fixture!("s3-objectcreated-multipart.json"));
    assert_eq!(
        object.key,
        "unload/orders/Q1 report/data_0_1_0.snappy.parquet"
    );
    assert_eq!(
        object.e_tag.as_deref(),
        Some("d41d8cd98f00b204e9800998ecf8427e-8")
    );
    assert_eq!(object.size, Some(134_209_871));
}

#[test]
fn wrapped_s3_fixtures_resolve_like_the_plain_one() {
    let plain = only_created(fixture!("s3-objectcreated-put.json"));
    for payload in [
        fixture!("s3-objectcreated-put.sns-envelope.json"),
        fixture!("s3-objectcreated-put.sqs-lambda-event.json"),
        fixture!("s3-objectcreated-put.sqs-sns-envelope.json"),
    ] {
        assert_eq!(only_created(payload), plain);
    }
}

#[test]
fn s3_test_events() {
    assert_eq!(
        parse(fixture!("s3-test-event.json")).unwrap(),
        [Notification::Test]
    );
    assert_eq!(
        parse(fixture!("s3-test-event.sns-envelope.json")).unwrap(),
        [Notification::Test]
    );
    // S3 → SQS directly: the body is the test event.
    let sqs = json!({"Records": [{"eventSource": "aws:sqs",
        "body": String::from_utf8_lossy(fixture!("s3-test-event.json"))}]});
    assert_eq!(parse_value_json(&sqs).unwrap(), [Notification::Test]);
}

#[test]
fn s3_other_events_are_ignored_and_prefixed_names_accepted() {
    let record = |name: &str| {
        json!({"Records": [{"eventSource": "aws:s3", "eventName": name,
            "s3": {"bucket": {"name": "b"}, "object": {"key": "a+b/c%3D1"}}}]})
    };
    match parse_value_json(&record("ObjectRemoved:Delete"))
        .unwrap()
        .as_slice()
    {
        [Notification::Ignored { reason }] => {
            assert!(reason.contains("ObjectRemoved:Delete"), "{reason}");
            assert!(reason.contains("a b/c=1"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let created = parse_value_json(&record("s3:ObjectCreated:Copy")).unwrap();
    assert_eq!(created[0].as_created().unwrap().key, "a b/c=1");
}

#[test]
fn sns_to_lambda_records_and_confirmations() {
    let message = String::from_utf8_lossy(fixture!("s3-objectcreated-put.json")).into_owned();
    let lambda = json!({"Records": [{"EventSource": "aws:sns",
        "Sns": {"Type": "Notification", "Message": message}}]});
    assert_eq!(
        parse_value_json(&lambda).unwrap()[0]
            .as_created()
            .unwrap()
            .key,
        KEY
    );
    let confirm = json!({"Type": "SubscriptionConfirmation", "TopicArn": "arn:aws:sns:x",
        "Message": "You have chosen to subscribe…", "SubscribeURL": "https://sns/confirm"});
    assert!(matches!(
        parse_value_json(&confirm).unwrap().as_slice(),
        [Notification::Ignored { reason }] if reason.contains("SubscribeURL")
    ));
}

#[test]
fn raw_object_bodies_are_accepted() {
    let s3: Value = serde_json::from_slice(fixture!("s3-objectcreated-put.json")).unwrap();
    let sqs = json!({"Records": [{"eventSource": "aws:sqs", "body": s3}]});
    assert_eq!(
        parse_value_json(&sqs).unwrap()[0].as_created().unwrap().key,
        KEY
    );
}

#[test]
fn nesting_is_bounded() {
    let mut payload = String::from_utf8_lossy(fixture!("s3-test-event.json")).into_owned();
    for _ in 0..=MAX_NESTING {
        payload = json!({"Type": "Notification", "Message": payload}).to_string();
    }
    let e = parse(payload.as_bytes()).unwrap_err();
    assert!(
        matches!(e, EventError::Malformed { kind: "SNS", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("levels deep"), "{e}");
    assert_one_line(&e.to_string());
}

#[test]
fn eventbridge_fixture_key_as_is() {
    let object = only_created(fixture!("eventbridge-object-created.json"));
    assert_eq!(object.key, KEY);
    assert_eq!(object.bucket, "acme-snowflake-stage");
    assert_eq!(
        object.event_id.as_deref(),
        Some("2d4eba74-fd51-3966-4bfa-b013c9da8ff1")
    );
    let plus = json!({"source": "aws.s3", "detail-type": "Object Created", "id": "1",
        "detail": {"bucket": {"name": "b"}, "object": {"key": "Q1+report%3D/x"}}});
    assert_eq!(
        parse_value_json(&plus).unwrap()[0]
            .as_created()
            .unwrap()
            .key,
        "Q1+report%3D/x"
    );
    let deleted = json!({"source": "aws.s3", "detail-type": "Object Deleted",
        "detail": {"bucket": {"name": "b"}, "object": {"key": "k"}}});
    assert!(matches!(
        parse_value_json(&deleted).unwrap().as_slice(),
        [Notification::Ignored { reason }] if reason.contains("Object Deleted")
    ));
    let other =
        json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change", "detail": {}});
    assert!(matches!(
        parse_value_json(&other).unwrap().as_slice(),
        [Notification::Ignored { reason }] if reason.contains("aws.ec2")
    ));
}

#[test]
fn eventgrid_fixture() {
    let object = only_created(fixture!("eventgrid-blobcreated.json"));
    assert_eq!(
        object,
        ObjectRef {
            store: StoreKind::Azure,
            bucket: "unload".into(),
            account: Some("acmesnowstage".into()),
            key: BLOB.into(),
            e_tag: Some("0x8DC69B1E5F2A3C4".into()),
            size: Some(15234),
            event_id: Some("7c1e0a52-801e-0046-3f6b-9b1f2b06a1d4".into()),
        }
    );
}

#[test]
fn cloudevents_fixtures_match_eventgrid() {
    let eventgrid = only_created(fixture!("eventgrid-blobcreated.json"));
    assert_eq!(
        only_created(fixture!("cloudevents-blobcreated.json")),
        eventgrid
    );
    assert_eq!(
        only_created(fixture!("cloudevents-blobcreated.batch.json")),
        eventgrid
    );
}

#[test]
fn adls_gen2_only_flush_with_close() {
    let events = parse(fixture!("eventgrid-adls-gen2-blobcreated.json")).unwrap();
    match events.as_slice() {
        [
            Notification::Ignored { reason },
            Notification::Created(object),
        ] => {
            assert!(
                reason.contains("CreateFile") && reason.contains("FlushWithClose"),
                "{reason}"
            );
            assert_eq!(object.key, BLOB);
            assert_eq!(object.account.as_deref(), Some("acmesnowstage"));
            assert_eq!(object.size, Some(15234));
        }
        other => panic!("{other:?}"),
    }
}

fn blob_event(api: &str, url: &str) -> Value {
    json!([{"eventType": "Microsoft.Storage.BlobCreated", "id": "e1",
        "subject": "/blobServices/default/containers/c/blobs/p/f.parquet",
        "topic": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/fromtopic",
        "data": {"api": api, "url": url, "eTag": "\"0x1\"", "contentLength": 7}}])
}

#[test]
fn adls_apis_and_blob_apis() {
    let blob = "https://acct.blob.core.windows.net/c/p/f.parquet";
    let dfs = "https://acct.dfs.core.windows.net/c/p/f.parquet";
    for api in ["PutBlob", "PutBlockList", "CopyBlob"] {
        let events = parse_value_json(&blob_event(api, blob)).unwrap();
        let object = events[0]
            .as_created()
            .unwrap_or_else(|| panic!("{api}: {events:?}"));
        assert_eq!(object.e_tag.as_deref(), Some("\"0x1\""));
    }
    for (api, url) in [
        ("CreateFile", blob),
        ("CreateFile", dfs),
        ("PutBlockList", dfs),
    ] {
        let events = parse_value_json(&blob_event(api, url)).unwrap();
        assert!(
            matches!(events[0], Notification::Ignored { .. }),
            "{api} {url}: {events:?}"
        );
    }
    let events = parse_value_json(&blob_event("FlushWithClose", dfs)).unwrap();
    assert_eq!(
        events[0].as_created().unwrap().account.as_deref(),
        Some("acct")
    );
}

#[test]
fn azure_blob_from_url_only_and_account_from_topic() {
    let url_only = json!([{"eventType": "Microsoft.Storage.BlobCreated", "id": "e",
        "data": {"api": "PutBlob",
            "url": "https://acct.blob.core.windows.net/unload/orders/Q1%20report/d%3D1.parquet"}}]);
    let object = only_created(url_only.to_string().as_bytes());
    assert_eq!(
        (
            object.account.as_deref(),
            object.bucket.as_str(),
            object.key.as_str()
        ),
        (Some("acct"), "unload", "orders/Q1 report/d=1.parquet")
    );
    let subject_only = json!({"specversion": "1.0", "type": "Microsoft.Storage.BlobCreated",
        "id": "e", "source": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/acct2",
        "subject": "/blobServices/default/containers/c/blobs/x y.parquet"});
    let object = only_created(subject_only.to_string().as_bytes());
    assert_eq!(
        (
            object.account.as_deref(),
            object.bucket.as_str(),
            object.key.as_str()
        ),
        (Some("acct2"), "c", "x y.parquet")
    );
    assert_eq!((object.e_tag, object.size), (None, None));
}

#[test]
fn azure_validation_and_other_types_are_ignored() {
    assert_eq!(
        parse(fixture!("eventgrid-subscription-validation.json")).unwrap(),
        [Notification::Ignored {
            reason: "subscription validation (answered by serve)".into()
        }]
    );
    let deleted = json!([{"eventType": "Microsoft.Storage.BlobDeleted",
        "subject": "/blobServices/default/containers/c/blobs/x", "data": {"api": "DeleteBlob"}}]);
    assert!(matches!(
        parse_value_json(&deleted).unwrap().as_slice(),
        [Notification::Ignored { reason }] if reason.contains("BlobDeleted")
    ));
}

#[test]
fn empty_batches_are_empty() {
    assert_eq!(parse(b"[]").unwrap(), []);
    assert_eq!(parse(br#"{"Records": []}"#).unwrap(), []);
}

#[test]
fn not_json_errors() {
    for payload in [
        &b""[..],
        b"  \n",
        b"<html>\nBad Gateway</html>",
        b"{\"Records\":",
        b"\xff\xfe",
    ] {
        let e = parse(payload).unwrap_err();
        assert!(matches!(e, EventError::NotJson(_)), "{e:?}");
        let text = e.to_string();
        assert_one_line(&text);
        assert!(text.starts_with("the event is not JSON: "), "{text}");
        assert!(text.contains("expected an S3 notification"), "{text}");
    }
    assert!(parse(b"").unwrap_err().to_string().contains("empty"));
}

#[test]
fn unknown_shapes_name_what_was_seen() {
    let e = parse(br#"{"foo": 1, "bar\nbaz": 2}"#).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, EventError::UnknownShape(_)), "{text}");
    assert!(
        text.contains(r#""foo""#) && text.contains(r#""bar\nbaz""#),
        "{text}"
    );
    assert_one_line(&text);
    for payload in [&b"42"[..], b"\"text\"", b"null", b"[1]", b"[{\"a\":1}]"] {
        let e = parse(payload).unwrap_err();
        assert!(matches!(e, EventError::UnknownShape(_)), "{e:?}");
        assert_one_line(&e.to_string());
    }
    let many: serde_json::Map<String, Value> =
        (0..40).map(|i| (format!("k{i}"), json!(i))).collect();
    let text = parse_value_json(&Value::Object(many))
        .unwrap_err()
        .to_string();
    assert!(text.contains("and 28 more"), "{text}");
}

#[test]
fn created_events_without_key_or_bucket_are_malformed() {
    let s3 = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "b"}, "object": {"size": 1}}}]});
    let e = parse_value_json(&s3).unwrap_err();
    assert_eq!(
        e,
        EventError::Malformed {
            kind: "S3",
            reason: "Records[0] (ObjectCreated:Put) has no s3.object.key".into()
        }
    );
    let s3 = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": 7}, "object": {"key": "k"}}}]});
    assert!(
        parse_value_json(&s3)
            .unwrap_err()
            .to_string()
            .contains("s3.bucket.name as a JSON number")
    );
    let eb = json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {"name": "b"}}});
    let e = parse_value_json(&eb).unwrap_err();
    assert!(
        matches!(
            e,
            EventError::Malformed {
                kind: "EventBridge",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("detail.object.key"), "{e}");
    let eg = json!([{"eventType": "Microsoft.Storage.BlobCreated", "id": "e9", "subject": "",
        "data": {"api": "PutBlob"}}]);
    let e = parse_value_json(&eg).unwrap_err();
    assert!(
        matches!(
            e,
            EventError::Malformed {
                kind: "Event Grid",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("names no blob"), "{e}");
    // Inside an SQS body, the error says where.
    let sqs = json!({"Records": [{"eventSource": "aws:sqs", "body": s3.to_string()}]});
    let text = parse_value_json(&sqs).unwrap_err().to_string();
    assert!(text.contains("inside SQS Records[0].body"), "{text}");
    let bad_body = json!({"Records": [{"eventSource": "aws:sqs", "body": "not json\nat all"}]});
    let e = parse_value_json(&bad_body).unwrap_err();
    assert!(
        matches!(e, EventError::Malformed { kind: "SQS", .. }),
        "{e}"
    );
    assert_one_line(&e.to_string());
}

/// Every prefix of every fixture: no panic, one-line errors.
#[test]
fn fuzz_truncated_fixtures() {
    for (name, payload) in FIXTURES {
        for end in 0..payload.len() {
            check_contract(&payload[..end]);
        }
        assert!(parse(payload).is_ok(), "{name}");
    }
}

/// Every single-node mutation (a value replaced by each JSON type, a key removed) of every
/// fixture, also inside JSON wrapped in strings: no panic, one-line messages.
#[test]
fn fuzz_wrong_types() {
    fn mutants(value: &Value, depth: usize) -> Vec<Value> {
        let mut out: Vec<Value> = [
            json!(null),
            json!(true),
            json!(-1),
            json!(1.5),
            json!(""),
            json!("x\ny"),
            json!([]),
            json!({}),
            json!([{}]),
        ]
        .into_iter()
        .collect();
        match value {
            Value::Object(map) => {
                for (k, child) in map {
                    let mut without = map.clone();
                    without.remove(k);
                    out.push(Value::Object(without));
                    for m in mutants(child, depth) {
                        let mut copy = map.clone();
                        copy.insert(k.clone(), m);
                        out.push(Value::Object(copy));
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    for m in mutants(child, depth) {
                        let mut copy = items.clone();
                        copy[i] = m;
                        out.push(Value::Array(copy));
                    }
                }
            }
            Value::String(text) if depth < 3 => {
                if let Ok(inner @ (Value::Object(_) | Value::Array(_))) =
                    serde_json::from_str::<Value>(text)
                {
                    out.extend(
                        mutants(&inner, depth + 1)
                            .iter()
                            .map(|m| json!(m.to_string())),
                    );
                }
            }
            _ => {}
        }
        out
    }
    let mut count = 0;
    for (_, payload) in FIXTURES {
        let value: Value = serde_json::from_slice(payload).unwrap();
        for mutant in mutants(&value, 0) {
            check_contract(mutant.to_string().as_bytes());
            count += 1;
        }
    }
    assert!(count > 1000, "{count}");
}

/// Random bytes, and fixtures with random bytes overwritten: no panic, one-line messages.
#[test]
fn fuzz_random_bytes() {
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for _ in 0..2000 {
        let len = rng.usize(0..64);
        let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        check_contract(&bytes);
    }
    for (_, payload) in FIXTURES {
        for _ in 0..300 {
            let mut bytes = payload.to_vec();
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(0..bytes.len());
                bytes[at] = *rng.choice(b"{}[]\":,\\ 0a\n%+").unwrap();
            }
            check_contract(&bytes);
        }
    }
}

#[test]
fn aws_sqs_receive_message_output_is_a_batch_of_bodies() {
    let s3 = String::from_utf8_lossy(fixture!("s3-objectcreated-put.json")).into_owned();
    let sns =
        String::from_utf8_lossy(fixture!("s3-objectcreated-put.sns-envelope.json")).into_owned();
    let test = String::from_utf8_lossy(fixture!("s3-test-event.json")).into_owned();
    let output = json!({"Messages": [
        {"MessageId": "1", "ReceiptHandle": "a", "Body": s3},
        {"MessageId": "2", "ReceiptHandle": "b", "Body": sns},
        {"MessageId": "3", "ReceiptHandle": "c", "Body": test},
    ]});
    let got = parse_value_json(&output).unwrap();
    let expected_object = parse(fixture!("s3-objectcreated-put.json")).unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0], expected_object[0]);
    assert_eq!(got[1], expected_object[0]);
    assert_eq!(got[2], Notification::Test);
    // No messages: nothing to do; a message without a body names where.
    assert_eq!(parse_value_json(&json!({"Messages": []})).unwrap(), []);
    let err = parse_value_json(&json!({"Messages": [{"MessageId": "1"}]})).unwrap_err();
    assert!(err.to_string().contains("Messages[0] has no Body"), "{err}");
    let err = parse_value_json(&json!({"Messages": {"Body": "{}"}})).unwrap_err();
    assert!(err.to_string().contains("not an array"), "{err}");
}
