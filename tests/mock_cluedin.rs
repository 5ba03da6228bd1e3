//! The local CluedIn stand-in answers like `docs/reference/cluedin-endpoint.md` says the real endpoint does.

use std::io::Write;

use serde_json::{Value, json};

use crate::util::{MOCK_TOKEN, http_client, mock_records, mock_requests, start_mock};
use stagepush::mock_cluedin::{MockAnswer, MockServer};

const EP: &str = "6F5B4C2A-1111-2222-3333-444455556666";

/// POSTs `body` with the mock's token; returns (status, headers, body text).
async fn post(
    server: &MockServer,
    body: impl Into<reqwest::Body>,
    headers: &[(&str, &str)],
) -> Result<(u16, reqwest::header::HeaderMap, String), reqwest::Error> {
    let mut req = http_client()
        .post(server.endpoint_url(EP))
        .bearer_auth(MOCK_TOKEN);
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.body(body).send().await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    Ok((status, headers, resp.text().await?))
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).expect("a JSON answer")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn is_uuid_v4(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok_and(|u| u.get_version_num() == 4)
}

#[tokio::test]
async fn mock_accepts_a_json_array_and_stores_each_record() {
    let (server, store) = start_mock(|_| {}).await;
    let body =
        r#"[{"externalId":"1","name":"Ada"},{"externalId":"2","properties":{"city":"Leeds"}}]"#;
    let (status, headers, text) = post(&server, body, &[("x-request-id", "req-1")])
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    let answer = json_of(&text);
    let receipt = answer["receiptId"].as_str().unwrap().to_string();
    assert!(is_uuid_v4(&receipt), "{receipt}");
    assert_eq!(
        answer,
        json!({"success":true,"warning":false,"warnings":[],"error":false,"receiptId":receipt})
    );
    let records = mock_records(store.path());
    assert_eq!(
        records,
        [
            json!({"endpointId":EP,"receiptId":receipt,"record":{"externalId":"1","name":"Ada"}}),
            json!({"endpointId":EP,"receiptId":receipt,"record":{"externalId":"2","properties":{"city":"Leeds"}}}),
        ]
    );
    // A second request gets a fresh receipt.
    let (_, _, text) = post(&server, "[{}]", &[]).await.unwrap();
    assert_ne!(json_of(&text)["receiptId"], receipt);
}

#[tokio::test]
async fn mock_requires_the_bearer_token() {
    let (server, store) = start_mock(|_| {}).await;
    let client = http_client();
    let url = server.endpoint_url(EP);
    let none = client.post(&url).body("[{}]").send().await.unwrap();
    assert_eq!(none.status().as_u16(), 401);
    let wrong = client
        .post(&url)
        .bearer_auth("not-the-token")
        .body("[{}]")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let basic = client
        .post(&url)
        .basic_auth("u", Some(MOCK_TOKEN))
        .body("[{}]")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status().as_u16(), 401);
    assert!(mock_records(store.path()).is_empty());
    let statuses: Vec<u64> = mock_requests(store.path())
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [401, 401, 401]);
    // Other paths and methods.
    let other = client
        .post(format!("{}/upload/api/other", server.base_url()))
        .bearer_auth(MOCK_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 404);
    let get = client
        .get(&url)
        .bearer_auth(MOCK_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);
}

#[tokio::test]
async fn mock_rejects_a_body_that_is_not_an_array() {
    let (server, store) = start_mock(|_| {}).await;
    for body in [r#"{"externalId":"1"}"#, "not json", ""] {
        let (status, _, text) = post(&server, body, &[]).await.unwrap();
        assert_eq!(status, 400, "{body}");
        let answer = json_of(&text);
        assert_eq!(answer["success"], false);
        assert_eq!(answer["error"], true);
        assert!(is_uuid_v4(answer["receiptId"].as_str().unwrap()));
        let e = &answer["errors"][0];
        assert_eq!(e["rowIndex"], json!(-1), "rowIndex is a number");
        assert_eq!(e["messageId"], "invalid-array-json-sent");
        assert_eq!(e["level"], "error");
        assert_eq!(e["domain"], "parsing");
    }
    assert!(mock_records(store.path()).is_empty());
}

#[tokio::test]
async fn mock_takes_ndjson_only_when_the_content_type_says_so() {
    let (server, store) = start_mock(|_| {}).await;
    let ndjson = "{\"externalId\":\"1\"}\n{\"externalId\":\"2\"}\n";
    let (status, _, _) = post(&server, ndjson, &[]).await.unwrap();
    assert_eq!(
        status, 400,
        "NDJSON sent as application/json is not an array"
    );
    let (status, _, _) = post(&server, ndjson, &[("content-type", "application/x-ndjson")])
        .await
        .unwrap();
    assert_eq!(status, 200);
    let stored: Vec<Value> = mock_records(store.path())
        .into_iter()
        .map(|r| r["record"].clone())
        .collect();
    assert_eq!(
        stored,
        [json!({"externalId":"1"}), json!({"externalId":"2"})]
    );
}

#[tokio::test]
async fn mock_accepts_gzip_bodies() {
    let (server, store) = start_mock(|_| {}).await;
    let body = gzip(br#"[{"externalId":"g1"},{"externalId":"g2"}]"#);
    let (status, _, _) = post(&server, body, &[("content-encoding", "gzip")])
        .await
        .unwrap();
    assert_eq!(status, 200);
    // A body that claims gzip but is not: 400, nothing stored.
    let (status, _, _) = post(&server, "[{}]", &[("content-encoding", "gzip")])
        .await
        .unwrap();
    assert_eq!(status, 400);
    let stored: Vec<Value> = mock_records(store.path())
        .into_iter()
        .map(|r| r["record"].clone())
        .collect();
    assert_eq!(
        stored,
        [json!({"externalId":"g1"}), json!({"externalId":"g2"})]
    );
    let encodings: Vec<Value> = mock_requests(store.path())
        .iter()
        .map(|r| r["content_encoding"].clone())
        .collect();
    assert_eq!(encodings, [json!("gzip"), json!("gzip")]);
}

#[tokio::test]
async fn mock_warns_on_spaces_or_dots_in_property_names() {
    let (server, store) = start_mock(|_| {}).await;
    let body = r#"[{"ok":1},{"first name":"Ada","customer.email":"a@example.com"}]"#;
    let (status, _, text) = post(&server, body, &[]).await.unwrap();
    assert_eq!(status, 200);
    let answer = json_of(&text);
    assert_eq!(answer["success"], true);
    assert_eq!(answer["warning"], true);
    let warnings = answer["warnings"].as_array().unwrap();
    let mut props: Vec<(&Value, &str)> = warnings
        .iter()
        .map(|w| (&w["rowIndex"], w["property"].as_str().unwrap()))
        .collect();
    props.sort_by_key(|p| p.1);
    assert_eq!(
        props,
        [(&json!("1"), "customer.email"), (&json!("1"), "first name")],
        "rowIndex is a string"
    );
    assert!(
        warnings
            .iter()
            .all(|w| w["messageId"] == "space-in-property" && w["level"] == "warning")
    );
    assert_eq!(
        mock_records(store.path()).len(),
        2,
        "warnings do not stop storing"
    );
}

#[tokio::test]
async fn mock_rejects_unsupported_characters_and_stores_nothing_of_that_request() {
    let (server, store) = start_mock(|_| {}).await;
    let body = r#"[{"a":"fine"},{"a":"tab\tand newline\n are fine"},{"a":"bell\u0007"},{"b":{"c":"\uffff"}}]"#;
    let (status, _, text) = post(&server, body, &[]).await.unwrap();
    assert_eq!(status, 400);
    let answer = json_of(&text);
    let rows: Vec<&Value> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["rowIndex"])
        .collect();
    assert_eq!(rows, [&json!(2), &json!(3)], "rowIndex is a number");
    assert_eq!(answer["errors"][1]["property"], "b.c");
    assert!(mock_records(store.path()).is_empty(), "all or nothing");
}

#[tokio::test]
async fn mock_counts_columns_after_flattening() {
    let (server, store) = start_mock(|_| {}).await;
    let row = |n: usize| {
        let props: serde_json::Map<String, Value> =
            (0..n - 1).map(|i| (format!("p{i}"), json!(i))).collect();
        json!({"externalId": "x", "properties": props})
    };
    let (status, _, _) = post(&server, json!([row(490)]).to_string(), &[])
        .await
        .unwrap();
    assert_eq!(status, 200, "490 columns are accepted");
    let (status, _, text) = post(&server, json!([row(490), row(491)]).to_string(), &[])
        .await
        .unwrap();
    assert_eq!(status, 400);
    let answer = json_of(&text);
    assert_eq!(answer["errors"][0]["rowIndex"], 1);
    assert_eq!(answer["errors"][0]["messageId"], "too-many-columns");
    assert_eq!(mock_records(store.path()).len(), 1);
}

#[tokio::test]
async fn mock_enforces_row_and_body_size_limits() {
    let (server, store) = start_mock(|a| {
        a.max_rows = 3;
        a.max_body_bytes = Some(100);
    })
    .await;
    let (status, _, _) = post(&server, "[{},{},{},{}]", &[]).await.unwrap();
    assert_eq!(status, 413, "more rows than --max-rows");
    let big = format!(r#"[{{"a":"{}"}}]"#, "x".repeat(100));
    let (status, _, text) = post(&server, big, &[]).await.unwrap();
    assert_eq!(status, 413);
    assert!(
        text.contains("413 Request Entity Too Large"),
        "a proxy-like HTML page"
    );
    let (status, _, _) = post(&server, "[{},{},{}]", &[]).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(mock_records(store.path()).len(), 3);
}

#[tokio::test]
async fn mock_plays_its_fault_sequence_in_order() {
    let (server, store) = start_mock(|a| {
        a.sequence = "429,503,drop,413,400,ok"
            .split(',')
            .map(|s| s.parse::<MockAnswer>().unwrap())
            .collect();
        a.retry_after = 7;
    })
    .await;
    let (status, headers, _) = post(&server, "[{}]", &[]).await.unwrap();
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "7");
    assert_eq!(post(&server, "[{}]", &[]).await.unwrap().0, 503);
    let dropped = post(&server, "[{}]", &[]).await;
    assert!(
        dropped.is_err(),
        "the connection is closed without an answer: {dropped:?}"
    );
    assert_eq!(post(&server, "[{}]", &[]).await.unwrap().0, 413);
    let (status, _, text) = post(&server, "[{}]", &[]).await.unwrap();
    assert_eq!(status, 400);
    assert_eq!(json_of(&text)["errors"][0]["rowIndex"], -1);
    assert_eq!(post(&server, r#"[{"n":1}]"#, &[]).await.unwrap().0, 200);
    assert_eq!(
        post(&server, r#"[{"n":2}]"#, &[]).await.unwrap().0,
        200,
        "then normal processing"
    );
    let log = mock_requests(store.path());
    let answers: Vec<(Value, &str)> = log
        .iter()
        .map(|r| (r["status"].clone(), r["answer"].as_str().unwrap()))
        .collect();
    assert_eq!(
        answers,
        [
            (json!(429), "fault"),
            (json!(503), "fault"),
            (Value::Null, "drop"),
            (json!(413), "fault"),
            (json!(400), "fault"),
            (json!(200), "normal"),
            (json!(200), "normal"),
        ]
    );
    assert_eq!(
        mock_records(store.path()).len(),
        2,
        "faulted requests store nothing"
    );
}

#[tokio::test]
async fn mock_logs_every_request() {
    let (server, store) = start_mock(|_| {}).await;
    post(
        &server,
        gzip(b"[{},{}]"),
        &[("content-encoding", "gzip"), ("x-request-id", "abc-1")],
    )
    .await
    .unwrap();
    post(&server, "[{}]", &[("x-request-id", "abc-2")])
        .await
        .unwrap();
    let log = mock_requests(store.path());
    assert_eq!(log.len(), 2);
    let first = &log[0];
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], format!("/upload/api/endpoint/{EP}"));
    assert_eq!(first["endpoint_id"], EP);
    assert_eq!(first["status"], 200);
    assert_eq!(first["rows"], 2);
    assert_eq!(first["request_id"], "abc-1");
    assert_eq!(first["content_encoding"], "gzip");
    assert_eq!(first["content_type"], "application/json");
    assert!(first["receipt_id"].as_str().is_some_and(is_uuid_v4));
    assert_eq!(log[1]["content_encoding"], Value::Null);
    assert!(log[1]["t_ms"].as_f64().unwrap() >= first["t_ms"].as_f64().unwrap());
    assert_eq!(log[1]["seq"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_answers_429_beyond_its_capacity_and_frees_places_as_answers_go() {
    let gate_dir = crate::util::temp_dir();
    let gate = gate_dir.path().join("hold");
    std::fs::write(&gate, b"").unwrap();
    let held_gate = gate.clone();
    let (server, store) = start_mock(move |a| {
        a.capacity = Some(2);
        a.retry_after = 3;
        a.hold_while_exists = Some(held_gate);
    })
    .await;
    let server = std::sync::Arc::new(server);
    let held: Vec<_> = (0..2)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move { post(&server, format!(r#"[{{"n":{i}}}]"#), &[]).await })
        })
        .collect();
    // Both held requests have their places once both arrivals are logged.
    let arrivals = store.path().join(stagepush::mock_cluedin::ARRIVALS_FILE);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_to_string(&arrivals)
        .map(|t| t.lines().count())
        .unwrap_or(0)
        < 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the two held requests never arrived"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let third = post(&server, r#"[{"n":9}]"#, &[]);
    let (status, headers, _) = tokio::time::timeout(std::time::Duration::from_secs(20), third)
        .await
        .expect("a request beyond the capacity is answered at once, not held")
        .unwrap();
    assert_eq!(status, 429, "a third request while two are answered");
    assert_eq!(headers["retry-after"], "3");
    std::fs::remove_file(&gate).unwrap();
    for h in held {
        assert_eq!(h.await.unwrap().unwrap().0, 200);
    }
    assert_eq!(
        post(&server, r#"[{"n":3}]"#, &[]).await.unwrap().0,
        200,
        "places are given back when answered"
    );
    let log = mock_requests(store.path());
    let over: Vec<&Value> = log
        .iter()
        .filter(|r| r["answer"] == "over-capacity")
        .collect();
    assert_eq!(over.len(), 1, "{log:?}");
    assert_eq!(over[0]["status"], 429);
    assert_eq!(
        mock_records(store.path()).len(),
        3,
        "the refused body is not stored"
    );
}
