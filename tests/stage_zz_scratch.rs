use stagepush::source::{ReadOptions, Stage};
use crate::stage_servers::{AzureServer, S3Server, customer_file, put_file};
use crate::util::temp_dir;

fn measure(stage: &Stage, label: &str) {
    let files = stage.list().unwrap();
    let total: u64 = files.iter().map(|f| f.size).sum();
    for threads in [1usize, 2] {
        let started = std::time::Instant::now();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let rows = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(f) = files.get(i) else { break };
                    let src = stage.open(f).unwrap();
                    let n: usize = src.batches(&ReadOptions::default()).unwrap().map(|b| b.unwrap().batch.num_rows()).sum();
                    rows.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                });
            }
        });
        let e = started.elapsed();
        eprintln!("{label}: {threads} threads: {} files {:.1} MB {} rows in {e:?}: {:.0} MB/s {:.0} rows/s", files.len(), total as f64/1e6, rows.into_inner(), total as f64/1e6/e.as_secs_f64(), 0.0);
    }
    let started = std::time::Instant::now();
    let _ = stage.list().unwrap();
    eprintln!("{label}: list {:?}", started.elapsed());
}

#[test]
fn scratch_throughput() {
    let dir = temp_dir();
    let mut paths = Vec::new();
    for i in 0..6u64 {
        paths.push(customer_file(dir.path(), &format!("data_0_{i}_0.snappy.parquet"), i * 500_000 + 1, 500_000, usize::MAX));
    }
    let s3 = S3Server::start();
    let store = s3.store();
    for p in &paths { put_file(&store, &format!("t/{}", p.file_name().unwrap().to_str().unwrap()), p); }
    measure(&Stage::new(&s3.config("t/")).unwrap(), "s3 default");
    measure(&Stage::new(&s3.config("t/")).unwrap().with_read_tuning(stagepush::source::ReadTuning{window_bytes: 4<<20, buffer_bytes: 32<<20}), "s3 4MiB windows");
    let az = AzureServer::start();
    let store = az.store();
    for p in &paths { put_file(&store, &format!("t/{}", p.file_name().unwrap().to_str().unwrap()), p); }
    measure(&Stage::new(&az.config("t/")).unwrap(), "azure default");
    measure(&Stage::from_url(dir.path().to_str().unwrap()).unwrap(), "local");
}
