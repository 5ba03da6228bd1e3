//! `cargo xtask bench memory`: the resident memory of `serve` under a burst of External
//! Function requests, and of `run` on a file of a few huge string values (issue 14,
//! item 10). A measurement, not a test: it prints numbers and asserts nothing.
//!
//! - **relay**: `stagepush serve` (customer plugin, `mock-cluedin --accept-all` as the
//!   endpoint), then `STAGEPUSH_MEM_REQUESTS` (16) concurrent POSTs of customer rows, each
//!   body just under `STAGEPUSH_MEM_BODY_BYTES` (default: the relay's default body limit).
//!   A request answered 429 is sent again after its `Retry-After`, as Snowflake does.
//!   Prints serve's peak RSS (`VmHWM`) and its RSS 1 s and 5 s after the last answer.
//!   `STAGEPUSH_MEM_SERVE_ARGS` adds flags to `serve` (split on spaces), e.g.
//!   `--relay-max-body-bytes 8388608`.
//! - **run**: a Parquet file of `STAGEPUSH_MEM_HUGE_ROWS` (10) rows, each with a text value of
//!   `STAGEPUSH_MEM_HUGE_MB` (30) MB, through the echo plugin; prints the run report's
//!   `peakRssBytes` and plugin calls. `STAGEPUSH_MEM_RUN_ARGS` adds flags to `run`.
//!
//! `STAGEPUSH_MEM_ONLY=relay|run` runs one of the two.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel};
use parquet::file::properties::WriterProperties;

const TOKEN: &str = "memory-bench-token";
const MIB: f64 = 1024.0 * 1024.0;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_stagepush")
}

fn plugin(name: &str) -> PathBuf {
    let dir = std::env::var_os("STAGEPUSH_TEST_PLUGINS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(|t| PathBuf::from(t).join("plugins")))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    dir.join(format!("{name}.wasm"))
}

/// A child killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` and returns it with the URL of its first stdout line `listening on URL`.
fn start(mut cmd: Command) -> (Proc, String, BufReader<std::process::ChildStdout>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("start stagepush");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("first line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (Proc(child), url, out)
}

fn mock(dir: &Path) -> (Proc, String) {
    let mut cmd = Command::new(bin());
    cmd.args(["mock-cluedin", "--listen", "127.0.0.1:0", "--token", TOKEN])
        .arg("--accept-all")
        .stderr(Stdio::null())
        .current_dir(dir);
    let (p, url, _) = start(cmd);
    (p, url)
}

/// `VmRSS` and `VmHWM` of `pid`, bytes.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Customer rows as `{"data": [[i, {...}], …]}`, just under `bytes`.
fn relay_body(bytes: usize) -> Vec<u8> {
    let mut body = b"{\"data\":[".to_vec();
    let mut i = 0u64;
    loop {
        let row = format!(
            "[{i},{{\"CUSTOMER_ID\":{id},\"NAME\":\"Customer {id}\",\"EMAIL\":\" C{id}@Example.com \",\"COUNTRY\":\"AU\",\"IS_ACTIVE\":{active},\"UPDATED_AT\":\"2025-08-20 03:14:07.000\"}}]",
            id = 1_000_000 + i,
            active = i.is_multiple_of(2)
        );
        if body.len() + row.len() + 3 > bytes {
            break;
        }
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(row.as_bytes());
        i += 1;
    }
    body.extend_from_slice(b"]}");
    body
}

/// One POST on a fresh connection; the status and `Retry-After` (seconds).
fn post(host: &str, path: &str, batch_id: &str, body: &[u8]) -> (u16, Option<u64>) {
    let mut stream = TcpStream::connect(host).expect("connect to serve");
    stream
        .set_read_timeout(Some(Duration::from_secs(600)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\nsf-external-function-format: json\r\nsf-external-function-format-version: 1.0\r\nsf-external-function-current-query-id: mem-bench\r\nsf-external-function-query-batch-id: {batch_id}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let retry_after = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("retry-after")
            .then(|| value.trim().parse().ok())
            .flatten()
    });
    (status, retry_after)
}

fn relay(dir: &Path) {
    let requests: usize = env_or("STAGEPUSH_MEM_REQUESTS", 16);
    let body_bytes: usize = env_or(
        "STAGEPUSH_MEM_BODY_BYTES",
        stagepush::serve::relay::DEFAULT_MAX_BODY_BYTES,
    );
    let extra: Vec<String> = std::env::var("STAGEPUSH_MEM_SERVE_ARGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let (_mock, mock_url) = mock(dir);
    std::fs::create_dir_all(dir.join("stage")).unwrap();
    let mut cmd = Command::new(bin());
    cmd.current_dir(dir)
        .env("STAGEPUSH_CACHE_DIR", dir.join("cache"))
        .env("STAGEPUSH_STATE", dir.join("state"))
        .env("MEM_TOKEN", TOKEN)
        .args(["serve", "--listen", "127.0.0.1:0", "--source", "stage"])
        .arg("--plugin")
        .arg(plugin("customer-rust"))
        .args(["--endpoint", &format!("{mock_url}/upload/api/endpoint/mem")])
        .args(["--token-env", "MEM_TOKEN", "--no-progress"])
        .arg("--dead-letter")
        .arg(dir.join("dead"))
        .args(&extra)
        .stderr(std::fs::File::create(dir.join("serve.log")).unwrap());
    let (serve, url, _out) = start(cmd);
    let pid = serve.0.id();
    let host = url.trim_start_matches("http://").to_string();
    let body = Arc::new(relay_body(body_bytes));
    let (idle, _) = rss(pid);

    let done = Arc::new(AtomicBool::new(false));
    let max_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, max_rss) = (Arc::clone(&done), Arc::clone(&max_rss));
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                max_rss.fetch_max(rss(pid).0, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let started = Instant::now();
    let clients: Vec<_> = (0..requests)
        .map(|i| {
            let (host, body) = (host.clone(), Arc::clone(&body));
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                loop {
                    let (status, retry_after) =
                        post(&host, "/external-function/mem", &format!("b{i}"), &body);
                    statuses.push(status);
                    match status {
                        429 | 503 => {
                            std::thread::sleep(Duration::from_secs(retry_after.unwrap_or(1)))
                        }
                        _ => return statuses,
                    }
                }
            })
        })
        .collect();
    let mut answers: std::collections::BTreeMap<u16, usize> = Default::default();
    for c in clients {
        for s in c.join().expect("client thread") {
            *answers.entry(s).or_default() += 1;
        }
    }
    let elapsed = started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let (after_1s, _) = rss(pid);
    std::thread::sleep(Duration::from_secs(4));
    let (after_5s, hwm) = rss(pid);
    done.store(true, Ordering::SeqCst);
    let _ = sampler.join();
    if std::env::var_os("STAGEPUSH_MEM_SMAPS").is_some() {
        print_largest_mappings(pid);
    }
    println!(
        "relay: {requests} requests of {:.2} MB ({} rows each), serve {}",
        body.len() as f64 / 1e6,
        body.iter().filter(|&&b| b == b'[').count() - 1,
        if extra.is_empty() {
            "(defaults)".to_string()
        } else {
            extra.join(" ")
        }
    );
    println!("  answers (status: count, including 429 retries): {answers:?}");
    println!("  burst took {:.1} s", elapsed.as_secs_f64());
    println!(
        "  RSS idle {:.0} MiB; peak {:.0} MiB (VmHWM; sampled max {:.0} MiB); after the burst +1 s {:.0} MiB, +5 s {:.0} MiB",
        idle as f64 / MIB,
        hwm as f64 / MIB,
        max_rss.load(Ordering::SeqCst) as f64 / MIB,
        after_1s as f64 / MIB,
        after_5s as f64 / MIB
    );
}

/// The mappings holding the most resident memory (what stays after a burst).
fn print_largest_mappings(pid: u32) {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut maps: Vec<(u64, String)> = Vec::new();
    let mut current = String::new();
    for line in smaps.lines() {
        if line.starts_with("Rss:") {
            let kib: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            maps.push((kib, current.clone()));
        } else if line
            .split_whitespace()
            .next()
            .is_some_and(|f| f.contains('-'))
        {
            current = line.to_string();
        }
    }
    maps.sort_by_key(|m| std::cmp::Reverse(m.0));
    for (kib, map) in maps.iter().take(12) {
        println!("  {:>8} KiB  {map}", kib);
    }
}

/// A file of `rows` rows: `ID` (int64) and `BIG`, a text of `mb` MB per row (gzip-compressed
/// pseudo-random letters from a small alphabet).
fn huge_file(path: &Path, rows: usize, mb: usize) {
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("ID", arrow_schema::DataType::Int64, false),
        arrow_schema::Field::new("BIG", arrow_schema::DataType::Utf8, false),
    ]));
    let props = WriterProperties::builder()
        .set_compression(Compression::GZIP(GzipLevel::default()))
        .set_dictionary_enabled(false)
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let values: Vec<String> = (0..rows)
        .map(|_| {
            (0..mb * 1_000_000)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    b"acgt"[(state % 4) as usize] as char
                })
                .collect()
        })
        .collect();
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
    let big: ArrayRef = Arc::new(StringArray::from_iter_values(values.iter()));
    let batch = RecordBatch::try_new(schema, vec![ids, big]).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn run(dir: &Path) {
    let rows: usize = env_or("STAGEPUSH_MEM_HUGE_ROWS", 10);
    let mb: usize = env_or("STAGEPUSH_MEM_HUGE_MB", 30);
    let extra: Vec<String> = std::env::var("STAGEPUSH_MEM_RUN_ARGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let stage = dir.join("huge-stage");
    std::fs::create_dir_all(&stage).unwrap();
    let file = stage.join("data_0_0_0.snappy.parquet");
    huge_file(&file, rows, mb);
    let (_mock, mock_url) = mock(dir);
    let report = dir.join("report.json");
    let out = Command::new(bin())
        .current_dir(dir)
        .env("STAGEPUSH_CACHE_DIR", dir.join("cache"))
        .env("MEM_TOKEN", TOKEN)
        .arg("run")
        .arg("--source")
        .arg(&stage)
        .arg("--plugin")
        .arg(plugin("echo-rust"))
        .args(["--endpoint", &format!("{mock_url}/upload/api/endpoint/mem")])
        .args(["--token-env", "MEM_TOKEN", "--no-progress"])
        .arg("--state")
        .arg(dir.join("run-state"))
        .arg("--dead-letter")
        .arg(dir.join("run-dead"))
        .arg("--report")
        .arg(&report)
        .args(&extra)
        .stdin(Stdio::null())
        .output()
        .expect("run stagepush");
    let report: serde_json::Value = std::fs::read(&report)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| {
            panic!(
                "no report ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    println!(
        "run: {rows} rows × {mb} MB text in one {:.1} MB file, run {}: exit {}",
        std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) as f64 / 1e6,
        if extra.is_empty() {
            "(defaults)".to_string()
        } else {
            extra.join(" ")
        },
        out.status.code().unwrap_or(-1)
    );
    println!(
        "  peakRssBytes {} ({:.0} MiB); rows delivered {}, dead-lettered {}; plugin calls {}, faults {}",
        report["peakRssBytes"],
        report["peakRssBytes"].as_f64().unwrap_or(0.0) / MIB,
        report["rows"]["delivered"],
        report["rows"]["deadLettered"],
        report["plugin"]["calls"],
        report["plugin"]["faults"]
    );
}

fn main() {
    let dir = tempfile::Builder::new()
        .prefix("stagepush-mem-")
        .tempdir()
        .expect("temporary directory");
    let only = std::env::var("STAGEPUSH_MEM_ONLY").unwrap_or_default();
    if only.is_empty() || only == "relay" {
        relay(dir.path());
    }
    if only.is_empty() || only == "run" {
        run(dir.path());
    }
}
