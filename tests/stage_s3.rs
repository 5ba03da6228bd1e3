//! Stages in S3, against a real S3 server (SeaweedFS, see `stage_servers`): what only S3
//! does. The tests every remote store passes run here too, in `stage_remote`.

use stagepush::source::Stage;

use crate::stage_servers::S3Server;

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
        objects.push((format!("many/part=0/manifest_{i}.json"), b"{}".to_vec()));
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
