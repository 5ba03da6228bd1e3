//! Stages in S3, against a real S3 server (SeaweedFS, see `stage_servers`): what only S3
//! does, and a CSV unload partitioned by date delivered by `run` (`--include`, partition
//! values) and by `run --event`. The tests every remote store passes run in `stage_remote`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use stagepush::sample::CustomerFileOptions;
use stagepush::sample_text::{CUSTOMER_CSV_COLUMNS, write_customer_text_file};
use stagepush::source::Stage;
use stagepush::source::format::FileFormat;

use crate::stage_servers::{S3Server, put_file};
use crate::util::command::TestCommand;
use crate::util::{MockProcess, mock_records, plugin, temp_dir};

#[test]
fn s3_listing_pages_through_more_than_1000_objects() {
    let server = S3Server::start();
    let store = server.store();
    // 1,050 data files over three partitions, plus 60 other objects; S3 pages at 1,000.
    let mut objects = Vec::new();
    for i in 0..1050 {
        objects.push((
            format!("many/part={}/data_0_{i:04}_0.snappy.parquet", i % 3),
            b"PAR1 not really".to_vec(),
        ));
    }
    for i in 0..60 {
        objects.push((format!("many/part=0/manifest_{i}.yaml"), b"{}".to_vec()));
    }
    crate::stage_servers::put_many(&store, objects);

    let stage = Stage::new(&server.config("many/")).unwrap();
    let started = std::time::Instant::now();
    let files = stage.list().unwrap();
    let elapsed = started.elapsed();
    eprintln!(
        "listed 1,110 objects (1,050 data files) in {elapsed:?} ({:.0} objects/s)",
        1110.0 / elapsed.as_secs_f64()
    );
    assert_eq!(files.len(), 1050);
    assert!(files.windows(2).all(|pair| pair[0].key < pair[1].key));
    let mut keys: Vec<&str> = files.iter().map(|f| f.key.as_str()).collect();
    keys.dedup();
    assert_eq!(keys.len(), 1050, "every object exactly once");
    assert_eq!(files[0].relative, "part=0/data_0_0000_0.snappy.parquet");
    assert_eq!(
        files[0].partitions,
        [("part".to_owned(), Some("0".to_owned()))]
    );
}

/// An S3 stage with no credentials anywhere: the error says so and names where they were
/// looked for, in about a second (not object_store's retries of the instance metadata
/// service, nor its `Error performing PUT http://169.254.169.254/latest/api/token`).
#[test]
fn s3_without_credentials_says_none_were_found_and_where_it_looked() {
    let server = S3Server::start();
    let dir = crate::util::temp_dir();
    // A metadata service that is not there, whatever machine the test runs on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut command = TestCommand::new(dir.path());
    let flags = server.cli(command.command());
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_SKIP_SIGNATURE",
    ] {
        command.env_remove(name);
    }
    command
        .env(
            "AWS_METADATA_ENDPOINT",
            format!("http://127.0.0.1:{closed}"),
        )
        .arg("inspect")
        .arg(format!("s3://{}/inspect/", crate::stage_servers::BUCKET))
        .args(&flags);
    let started = std::time::Instant::now();
    let out = command.run_within(std::time::Duration::from_secs(60));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert_ne!(out.status.code(), Some(0), "{}", command.dump(&out));
    let error = out
        .stderr
        .lines()
        .find(|l| l.contains("no AWS credentials found"))
        .unwrap_or_else(|| panic!("{}", command.dump(&out)));
    for place in [
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        "access_key_id",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "instance metadata service",
        "AWS_PROFILE",
        &format!("127.0.0.1:{closed}"),
    ] {
        assert!(error.contains(place), "{place} not in {error}");
    }
    assert!(!out.stderr.contains("Generic S3 error"), "{}", out.stderr);
}

const TOKEN: &str = "s3-csv-token-9d2";

/// `COPY INTO @stage/unload/ PARTITION BY ('date=' || …) FILE_FORMAT = (TYPE = CSV)`: three
/// `.csv.gz` files of 300 customers (ids from 1, 301, 601), one per partition, the last
/// the NULL partition.
const CSV_KEYS: [&str; 3] = [
    "unload/date=2024-05-01/data_0_0_0.csv.gz",
    "unload/date=2024-05-02/data_0_1_0.csv.gz",
    "unload/date=_NULL_/data_0_2_0.csv.gz",
];

/// Uploads [`CSV_KEYS`]; returns a config reading them with the customer table's columns.
fn upload_csv_unload(server: &S3Server, dir: &Path) -> PathBuf {
    let store = server.store();
    let options = CustomerFileOptions {
        tombstone_fraction: 0.0,
        null_id_fraction: 0.0,
        ..Default::default()
    };
    for (n, key) in CSV_KEYS.iter().enumerate() {
        let path = dir.join(format!("{n}.csv.gz"));
        write_customer_text_file(&path, FileFormat::Csv, 1 + n as u64 * 300, 300, &options)
            .unwrap();
        put_file(&store, key, &path);
    }
    let columns: Vec<String> = CUSTOMER_CSV_COLUMNS
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect();
    let config = dir.join("stagepush.toml");
    std::fs::write(
        &config,
        format!("[source.csv]\ncolumns = [{}]\n", columns.join(", ")),
    )
    .unwrap();
    config
}

/// `run` of `s3://stage/unload/` on `server` with `plugin`, state under `dir`.
fn run_csv(
    server: &S3Server,
    dir: &Path,
    config: &Path,
    plugin_name: &str,
    mock: &MockProcess,
    endpoint: &str,
) -> TestCommand {
    let mut command = TestCommand::new(dir);
    let flags = server.cli(command.command());
    command
        .arg("run")
        .arg("--config")
        .arg(config)
        .args([
            "--source",
            &format!("s3://{}/unload/", crate::stage_servers::BUCKET),
        ])
        .args(&flags)
        .arg("--plugin")
        .arg(plugin(plugin_name))
        .args(["--endpoint", &mock.endpoint(endpoint)])
        .args(["--token-env", "S3_CSV_TOKEN", "--no-progress"])
        .env("S3_CSV_TOKEN", TOKEN)
        .arg("--dead-letter")
        .arg(dir.join("dead"));
    command
}

/// externalId → how many times the mock stored it for `endpoint`.
fn received(mock: &MockProcess, endpoint: &str) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for r in mock_records(&mock.store) {
        if r["endpointId"] == endpoint {
            let id = r["record"]["externalId"].as_str().unwrap().parse().unwrap();
            *out.entry(id).or_default() += 1;
        }
    }
    out
}

#[test]
fn a_partitioned_csv_unload_on_s3_is_delivered_by_run_with_include() {
    let server = S3Server::start();
    let dir = temp_dir();
    let config = upload_csv_unload(&server, dir.path());
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    // One partition first: exactly its file.
    let mut command = run_csv(&server, dir.path(), &config, "customer-rust", &mock, "s3");
    command.args(["--include", "date=2024-05-01/**"]);
    let out = command.run();
    assert_eq!(out.status.code(), Some(0), "{}", command.dump(&out));
    let got = received(&mock, "s3");
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (1..=300).collect::<Vec<_>>()
    );
    // Then the whole stage: the rest, and the first partition not again.
    let mut command = run_csv(&server, dir.path(), &config, "customer-rust", &mock, "s3");
    let out = command.run();
    assert_eq!(out.status.code(), Some(0), "{}", command.dump(&out));
    let got = received(&mock, "s3");
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (1..=900).collect::<Vec<_>>()
    );
    assert!(got.values().all(|n| *n == 1), "sent twice: {got:?}");
    // The plugin gets each file's key and PARTITION BY values (`_NULL_` is a null).
    let echo = dir.path().join("echo");
    let mut command = run_csv(&server, &echo, &config, "echo-rust", &mock, "echo");
    command.args(["--include", "date=_NULL_/**"]);
    let out = command.run();
    assert_eq!(out.status.code(), Some(0), "{}", command.dump(&out));
    let records: Vec<serde_json::Value> = mock_records(&mock.store)
        .into_iter()
        .filter(|r| r["endpointId"] == "echo")
        .collect();
    assert_eq!(records.len(), 300);
    let ids: Vec<u64> = records
        .iter()
        .map(|r| r["record"]["properties"]["CUSTOMER_ID"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, (601..=900).collect::<Vec<_>>());
    for record in &records {
        let properties = &record["record"]["properties"];
        assert_eq!(properties["_partitions"], serde_json::json!({"date": null}));
        assert_eq!(properties["_file"], CSV_KEYS[2], "{properties}");
    }
}

/// An S3 notification naming one `.csv.gz` object of the stage, delivered twice (S3
/// delivers at least once): exactly that file's rows, once.
#[test]
fn an_s3_event_naming_a_csv_gz_object_delivers_exactly_that_file() {
    let server = S3Server::start();
    let dir = temp_dir();
    let config = upload_csv_unload(&server, dir.path());
    // `run_event` gives the token `run_event::TOKEN`.
    let mock = MockProcess::start(dir.path(), crate::run_event::TOKEN, &[]);
    let event = crate::run_event::s3_event(&[CSV_KEYS[1]]);
    for attempt in 0..2 {
        let out = crate::run_event::run_event(
            dir.path(),
            &format!("s3://{}/unload/", crate::stage_servers::BUCKET),
            |c| {
                let mut flags = server.cli(c);
                flags.push("--config".into());
                flags.push(config.display().to_string());
                flags
            },
            &mock,
            "event",
            &event,
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "attempt {attempt}: {}",
            out.stderr
        );
    }
    let got = received(&mock, "event");
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (301..=600).collect::<Vec<_>>()
    );
    assert!(got.values().all(|n| *n == 1), "sent twice: {got:?}");
}
