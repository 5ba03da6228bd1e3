//! The plugin workbench: `plugin test --expect` and `--json-input`, and `plugin info`'s
//! imports, size and cache state.

use crate::util::{customer_file, plugin, run, stagepush, temp_dir};

/// `plugin test` of the customer plugin over a 3-row Parquet file, `extra` flags added.
fn test_customer(dir: &std::path::Path, extra: &[&str]) -> crate::util::Output {
    let input = customer_file(dir, "data_0_0_0.snappy.parquet", 3);
    run(stagepush(dir)
        .args(["plugin", "test"])
        .arg(plugin("customer-rust"))
        .arg(&input)
        .args(extra))
}

#[test]
fn expect_matching_records_exits_0_and_says_so() {
    let dir = temp_dir();
    let first = test_customer(dir.path(), &[]);
    assert!(first.status.success(), "{}", first.stderr);
    assert_eq!(first.stdout_lines().len(), 3);
    let expected = dir.path().join("expected.ndjson");
    std::fs::write(&expected, &first.stdout).unwrap();

    let out = test_customer(dir.path(), &["--expect", expected.to_str().unwrap()]);
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout, first.stdout, "records are still printed");
    assert!(
        out.stderr.contains("expect: ok, all 3 records match"),
        "{}",
        out.stderr
    );
    // Time per row on stderr.
    assert!(
        out.stderr.contains("3 rows in ") && out.stderr.contains(" µs/row"),
        "{}",
        out.stderr
    );
}

/// Records are compared by entity type and external id, not by line: a changed id is one
/// missing and one unexpected record, a changed property one differing record, and nothing
/// else is reported.
#[test]
fn expect_names_missing_unexpected_and_differing_records_by_identity() {
    let dir = temp_dir();
    let first = test_customer(dir.path(), &[]);
    assert!(first.status.success(), "{}", first.stderr);
    let lines = first.stdout_lines();
    let got = lines[1].to_owned();
    let changed = got.replacen("\"externalId\":\"2\"", "\"externalId\":\"two\"", 1);
    assert_ne!(
        changed, got,
        "the record has an external id to change: {got}"
    );
    let third = lines[2].to_owned();
    let mut value: serde_json::Value = serde_json::from_str(&third).unwrap();
    value["properties"]["name"] = "Someone Else".into();
    let renamed = serde_json::to_string(&value).unwrap();
    // Expected: 3 with another name, 1, two (instead of 2), and a record with no type.
    let expected_text = [
        renamed.clone(),
        lines[0].to_owned(),
        changed.clone(),
        "{\"externalId\":\"4\"}".to_owned(),
    ];
    let expected = dir.path().join("expected.ndjson");
    std::fs::write(&expected, expected_text.join("\n") + "\n").unwrap();

    let out = test_customer(dir.path(), &["--expect", expected.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let expected_report = format!(
        "expect: MISMATCH with {}: 3 records produced, 4 expected; 2 missing, 1 unexpected, 1 differing\n\
         \x20 differing Customer 3:\n    expected: {renamed}\n    got:      {third}\n\
         \x20 missing Customer two (expected line 3):\n    expected: {changed}\n\
         \x20 missing line `{{\"externalId\":\"4\"}}` (expected line 4):\n    expected: {{\"externalId\":\"4\"}}\n\
         \x20 unexpected Customer 2:\n    got:      {got}\n",
        expected.display()
    );
    assert!(out.stderr.ends_with(&expected_report), "{}", out.stderr);
}

#[test]
fn expect_ignores_key_order_and_spacing() {
    let dir = temp_dir();
    let first = test_customer(dir.path(), &[]);
    assert!(first.status.success(), "{}", first.stderr);
    // The same records, pretty-printed keys in another order (serde_json sorts them).
    let reordered: Vec<String> = first
        .stdout_lines()
        .iter()
        .map(|l| {
            let value: serde_json::Value = serde_json::from_str(l).unwrap();
            serde_json::to_string(&value)
                .unwrap()
                .replace("\":", "\": ")
        })
        .collect();
    let expected = dir.path().join("expected.ndjson");
    std::fs::write(&expected, reordered.join("\n") + "\n\n").unwrap();
    let out = test_customer(dir.path(), &["--expect", expected.to_str().unwrap()]);
    assert!(out.status.success(), "{}", out.stderr);
}

#[test]
fn json_input_runs_the_plugin_like_parquet() {
    let dir = temp_dir();
    let rows = dir.path().join("rows.json");
    std::fs::write(
        &rows,
        concat!(
            r#"{"CUSTOMER_ID": 1, "NAME": "Ann", "EMAIL": " Ann@Example.COM ", "COUNTRY": "NL", "IS_ACTIVE": true, "UPDATED_AT": "2024-05-01T12:34:56.789", "IS_DELETED": false}"#,
            "\n",
            r#"{"CUSTOMER_ID": 2, "NAME": "Bob", "EMAIL": "bob@x.org", "COUNTRY": null, "IS_ACTIVE": false, "UPDATED_AT": "2024-05-02 00:00:00", "IS_DELETED": true}"#,
            "\n",
            r#"{"CUSTOMER_ID": null, "NAME": "Cy", "EMAIL": "c@x.org", "COUNTRY": "DE", "IS_ACTIVE": true, "UPDATED_AT": null, "IS_DELETED": false}"#,
            "\n",
        ),
    )
    .unwrap();
    let out = run(stagepush(dir.path())
        .args(["plugin", "test"])
        .arg(plugin("customer-rust"))
        .arg("--json-input")
        .arg(&rows));
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(
        out.stdout_lines(),
        [
            r#"{"externalId":"1","type":"Customer","timestamp":"2024-05-01T12:34:56.789000Z","properties":{"name":"Ann","country":"NL","email":"ann@example.com","isActive":true,"updatedAt":"2024-05-01T12:34:56.789000Z"}}"#,
            r#"{"externalId":"2","type":"Customer","timestamp":"2024-05-02T00:00:00.000000Z","properties":{},"deleted":true}"#,
        ]
    );
    assert_eq!(
        out.stderr_lines("error:"),
        [format!(
            "error: {} row 2: plugin `customer` rejected the row (rejected): CUSTOMER_ID is null",
            rows.display()
        )]
    );
    assert!(
        out.stderr
            .contains("summary: 3 rows read, 2 records, 0 filtered, 1 errors"),
        "{}",
        out.stderr
    );
}

#[test]
fn json_input_text_that_is_not_a_timestamp_stays_text() {
    let dir = temp_dir();
    let rows = dir.path().join("rows.json");
    std::fs::write(
        &rows,
        "{\"CUSTOMER_ID\": \"C-1\", \"UPDATED_AT\": \"yesterday\"}\n{\"CUSTOMER_ID\": \"C-2\"}\n",
    )
    .unwrap();
    let out = run(stagepush(dir.path())
        .args(["plugin", "test"])
        .arg(plugin("customer-rust"))
        .arg("--json-input")
        .arg(&rows));
    assert!(out.status.success(), "{}", out.stderr);
    // The plugin wants a timestamp: the text one is its row error; the row without one
    // is a record without a timestamp.
    assert_eq!(
        out.stderr_lines("error:"),
        [format!(
            "error: {} row 0: plugin `customer` rejected the row (rejected): entity \
             timestamp must be a date or a timestamp, not text",
            rows.display()
        )]
    );
    assert_eq!(out.stdout_lines().len(), 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("\"externalId\":\"C-2\""),
        "{}",
        out.stdout
    );
}

#[test]
fn json_input_and_parquet_inputs_do_not_mix() {
    let dir = temp_dir();
    let rows = dir.path().join("rows.json");
    std::fs::write(&rows, "{\"CUSTOMER_ID\": 1}\n").unwrap();
    let out = run(stagepush(dir.path())
        .args(["plugin", "test"])
        .arg(plugin("customer-rust"))
        .arg(dir.path())
        .arg("--json-input")
        .arg(&rows));
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
}

#[test]
fn info_lists_imports_size_and_cache_state() {
    let dir = temp_dir();
    let wasm = plugin("customer-rust");
    let size = std::fs::metadata(&wasm).unwrap().len();
    let info = || {
        let out = run(stagepush(dir.path()).args(["plugin", "info"]).arg(&wasm));
        assert!(out.status.success(), "{}", out.stderr);
        out
    };
    let before = info();
    assert!(
        before.stdout.contains("name:        customer"),
        "{}",
        before.stdout
    );
    assert!(
        before.stdout.contains(&format!("({size} bytes)")),
        "{}",
        before.stdout
    );
    assert!(
        before.stdout.contains("cached:      no"),
        "{}",
        before.stdout
    );
    let imports: Vec<&str> = before
        .stdout
        .lines()
        .skip_while(|l| *l != "imports:")
        .skip(1)
        .map(str::trim)
        .collect();
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("stagepush:transform/host@")),
        "{}",
        before.stdout
    );
    assert!(
        imports.iter().any(|i| i.starts_with("wasi:io/streams@")),
        "{}",
        before.stdout
    );

    // `plugin info` itself loaded (and so cached) the plugin; a fresh cache is cached
    // after a `plugin test` too.
    assert!(info().stdout.contains("cached:      yes"));
    let fresh = temp_dir();
    test_customer(fresh.path(), &[]);
    let out = run(stagepush(fresh.path()).args(["plugin", "info"]).arg(&wasm));
    assert!(out.stdout.contains("cached:      yes"), "{}", out.stdout);
    assert_eq!(
        out.stdout.lines().skip_while(|l| *l != "imports:").count(),
        imports.len() + 1,
        "imports are read from the cached copy too"
    );
}

/// `plugin info` says which imports the sandbox denies: a plugin importing sockets and the
/// filesystem gets neither.
#[test]
fn info_marks_the_imports_the_sandbox_denies() {
    let dir = temp_dir();
    let out = run(stagepush(dir.path())
        .args(["plugin", "info"])
        .arg(plugin("misbehave-rust")));
    assert!(out.status.success(), "{}", out.stderr);
    let imports: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| *l != "imports:")
        .skip(1)
        .map(str::trim)
        .collect();
    let sockets: Vec<&&str> = imports
        .iter()
        .filter(|i| i.starts_with("wasi:sockets/"))
        .collect();
    assert!(!sockets.is_empty(), "{}", out.stdout);
    for import in sockets {
        assert!(import.ends_with("(denied: no network)"), "{}", out.stdout);
    }
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("wasi:filesystem/preopens@")
                && i.ends_with("(denied: no directories)")),
        "{}",
        out.stdout
    );
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("wasi:io/streams@") && !i.contains('(')),
        "{}",
        out.stdout
    );
}
