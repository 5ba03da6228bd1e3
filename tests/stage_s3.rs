//! Stages in S3, against a real S3 server (SeaweedFS, see `stage_servers`): what only S3
//! does. The tests every remote store passes run here too, in `stage_remote`.

use stagepush::source::Stage;

use crate::stage_servers::S3Server;
use crate::util::command::TestCommand;

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
