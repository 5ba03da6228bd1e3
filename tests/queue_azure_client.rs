//! The Azure Storage Queue client (`stagepush::queue::azure`) against Azurite's queue service:
//! receiving, visibility changes and their new pop receipts, deletes, Event Grid bodies, the
//! credentials it signs or is given, and a service that is not there.

use std::time::{Duration, Instant};

use base64::Engine;
use stagepush::queue::azure::AzureQueue;
use stagepush::queue::{Message, QueueClient, QueueError, QueueKind, QueueUrl};
use stagepush::source::{Secret, StageConfig};
use stagepush::storage::{AZURITE_ACCOUNT, AZURITE_KEY};

use crate::stage_servers::AzureQueueServer;

/// A BlobCreated event as Event Grid writes it to a Storage Queue (one event per message).
fn blob_created(key: &str) -> String {
    serde_json::json!({
        "topic": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/devstoreaccount1",
        "subject": format!("/blobServices/default/containers/stage/blobs/{key}"),
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": format!("id-{key}"),
        "data": {
            "api": "PutBlob",
            "contentLength": 10,
            "blobType": "BlockBlob",
            "url": format!("https://devstoreaccount1.blob.core.windows.net/stage/{key}"),
        },
        "dataVersion": "",
        "metadataVersion": "1",
        "eventTime": "2026-12-07T18:00:00Z",
    })
    .to_string()
}

fn base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The emulator's settings, as a stage on Azurite has them.
fn emulator_stage() -> StageConfig {
    StageConfig {
        use_emulator: Some(true),
        ..StageConfig::default()
    }
}

fn client(server: &AzureQueueServer, queue: &str, stage: &StageConfig) -> AzureQueue {
    let url = QueueUrl::parse(&server.queue_url(queue), Some(QueueKind::Azure)).unwrap();
    AzureQueue::new(&url, stage).unwrap_or_else(|e| panic!("an Azure queue client: {e}"))
}

/// Receives until `count` messages came (each receive hides them for `visibility`), failing
/// after 30 s.
fn receive_all(queue: &AzureQueue, count: usize, visibility: Duration) -> Vec<Message> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut messages = Vec::new();
    while messages.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} messages came",
            messages.len()
        );
        messages.extend(
            queue
                .receive(32, visibility, Duration::from_secs(5))
                .unwrap(),
        );
    }
    messages
}

#[test]
fn azure_queue_receives_up_to_the_maximum_with_receive_counts_and_waits_when_empty() {
    let server = AzureQueueServer::start();
    server.create_queue("events");
    let queue = client(&server, "events", &emulator_stage());
    for n in 0..5 {
        server.send("events", &blob_created(&format!("f{n}.parquet")));
    }
    let first = queue
        .receive(3, Duration::from_secs(60), Duration::from_secs(5))
        .unwrap();
    assert_eq!(first.len(), 3, "at most the maximum asked for");
    let rest = receive_all(&queue, 2, Duration::from_secs(60));
    let mut keys: Vec<String> = first
        .iter()
        .chain(&rest)
        .map(|message| {
            assert_eq!(message.receive_count, Some(1));
            let event: serde_json::Value = serde_json::from_slice(&message.body).unwrap();
            event["subject"].as_str().unwrap().to_owned()
        })
        .collect();
    keys.sort();
    let expected: Vec<String> = (0..5)
        .map(|n| format!("/blobServices/default/containers/stage/blobs/f{n}.parquet"))
        .collect();
    assert_eq!(keys, expected);
    // All five are invisible now: a receive waits its time, polling, and returns none.
    let started = Instant::now();
    let none = queue
        .receive(32, Duration::from_secs(60), Duration::from_secs(2))
        .unwrap();
    assert!(none.is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(10),
        "waited {waited:?}"
    );
}

#[test]
fn azure_queue_a_message_hidden_again_stays_hidden_past_its_first_timeout() {
    let server = AzureQueueServer::start();
    server.create_queue("slow");
    let queue = client(&server, "slow", &emulator_stage());
    server.send("slow", &blob_created("big.parquet"));
    let mut message = receive_all(&queue, 1, Duration::from_secs(2)).remove(0);
    queue
        .set_visibility(&mut message, Duration::from_secs(12))
        .unwrap();
    // Well past the first 2 s timeout, the message is still hidden...
    let none = queue
        .receive(32, Duration::from_secs(30), Duration::from_secs(5))
        .unwrap();
    assert!(none.is_empty(), "the extended message came back: {none:?}");
    assert_eq!(server.message_count("slow"), 1);
    // ...and comes back once the extension is over, received a second time.
    let again = receive_all(&queue, 1, Duration::from_secs(30));
    assert_eq!(again[0].id, message.id);
    assert_eq!(again[0].receive_count, Some(2));
}

#[test]
fn azure_queue_the_new_pop_receipt_deletes_and_the_old_one_fails_clearly() {
    let server = AzureQueueServer::start();
    server.create_queue("receipts");
    let queue = client(&server, "receipts", &emulator_stage());
    server.send("receipts", &blob_created("a.parquet"));
    let mut message = receive_all(&queue, 1, Duration::from_secs(60)).remove(0);
    let old = message.clone();
    queue
        .set_visibility(&mut message, Duration::from_secs(60))
        .unwrap();
    assert_ne!(
        message.receipt, old.receipt,
        "Update Message gives a new pop receipt"
    );
    let error = queue.delete(&old).unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(
            error,
            QueueError::Service {
                operation: "delete",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        text.contains("PopReceiptMismatch") && text.contains("no longer valid"),
        "{text}"
    );
    assert_eq!(server.message_count("receipts"), 1);
    queue.delete(&message).unwrap();
    assert_eq!(server.message_count("receipts"), 0);
}

#[test]
fn azure_queue_event_grid_bodies_in_base64_and_plain_json_are_the_event() {
    let server = AzureQueueServer::start();
    server.create_queue("grid");
    let queue = client(&server, "grid", &emulator_stage());
    let encoded = blob_created("encoded.parquet");
    let plain = blob_created("plain.parquet");
    server.send("grid", &base64(&encoded));
    server.send("grid", &plain);
    let messages = receive_all(&queue, 2, Duration::from_secs(60));
    let mut bodies: Vec<Vec<u8>> = messages.iter().map(|m| m.body.clone()).collect();
    bodies.sort();
    let mut expected = vec![encoded.into_bytes(), plain.into_bytes()];
    expected.sort();
    assert_eq!(bodies, expected);
    for body in &bodies {
        let notifications = stagepush::events::parse(body).unwrap();
        let object = notifications[0].as_created().expect("a BlobCreated event");
        assert_eq!(object.bucket, "stage");
    }
}

#[test]
fn azure_queue_credentials_a_signed_sas_a_given_sas_and_a_wrong_one() {
    let server = AzureQueueServer::start();
    server.create_queue("keyed");
    server.create_queue("other");
    server.send("keyed", &blob_created("k.parquet"));
    // The account key as the stage gives it (not the emulator switch): SAS signed here.
    let keyed = StageConfig {
        account_key: Some(Secret::new(AZURITE_KEY)),
        ..StageConfig::default()
    };
    let queue = client(&server, "keyed", &keyed);
    let message = receive_all(&queue, 1, Duration::from_secs(60)).remove(0);
    queue.delete(&message).unwrap();
    // A SAS in the queue URL.
    server.send("keyed", &blob_created("s.parquet"));
    let sas = server.sas("keyed", "rup");
    let url = QueueUrl::parse(
        &format!("{}?{sas}", server.queue_url("keyed")),
        Some(QueueKind::Azure),
    )
    .unwrap();
    let with_sas = AzureQueue::new(&url, &StageConfig::default()).unwrap();
    let message = receive_all(&with_sas, 1, Duration::from_secs(60)).remove(0);
    with_sas.delete(&message).unwrap();
    // A SAS for another queue is refused, said without the SAS.
    let other_sas = server.sas("other", "raup");
    let url = QueueUrl::parse(
        &format!("{}?{other_sas}", server.queue_url("keyed")),
        Some(QueueKind::Azure),
    )
    .unwrap();
    let wrong = AzureQueue::new(&url, &StageConfig::default()).unwrap();
    let error = wrong
        .receive(1, Duration::from_secs(30), Duration::ZERO)
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, QueueError::Service { .. }), "{error:?}");
    assert!(text.contains("HTTP 403"), "{text}");
    let signature = other_sas.split("sig=").nth(1).unwrap();
    assert!(!text.contains(signature), "{text}");
    // The stage's key of another account is refused before any request.
    let elsewhere = StageConfig {
        account: Some("someoneelse".into()),
        account_key: Some(Secret::new(AZURITE_KEY)),
        ..StageConfig::default()
    };
    let url = QueueUrl::parse(&server.queue_url("keyed"), Some(QueueKind::Azure)).unwrap();
    let error = AzureQueue::new(&url, &elsewhere).err().expect("an error");
    assert!(
        matches!(error, QueueError::Credentials { .. }) && error.to_string().contains("SAS"),
        "{error}"
    );
    assert!(!error.to_string().contains(AZURITE_KEY));
}

#[test]
fn azure_queue_that_is_not_there_is_a_connect_error_at_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = QueueUrl::parse(
        &format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}/gone"),
        Some(QueueKind::Azure),
    )
    .unwrap();
    let queue = AzureQueue::new(&url, &emulator_stage()).unwrap();
    let started = Instant::now();
    let error = queue
        .receive(10, Duration::from_secs(30), Duration::from_secs(20))
        .unwrap_err();
    assert!(matches!(error, QueueError::Connect { .. }), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert!(!error.to_string().contains("sig="), "{error}");
}
