//! moto in server mode (`moto_server`, PyPI `moto[server]`) as the SQS server of the queue
//! tests, on a free 127.0.0.1 port, killed when dropped; and the test's own SQS calls
//! (create, send, receive, count) through aws-sdk-sqs.
//!
//! `cargo xtask test` installs it under `<target>/test-tools/moto/` and passes its path in
//! `STAGEPUSH_TEST_MOTO`; without it the default install path is tried, and a missing
//! server fails the test saying to run `cargo xtask test`.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;

use crate::stage_servers::runtime;

/// The credentials every queue test uses (moto accepts any).
pub const KEY_ID: &str = "test";
pub const SECRET: &str = "test";
/// How long moto may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `moto_server`.
pub struct Moto {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    client: aws_sdk_sqs::Client,
}

fn moto_binary() -> PathBuf {
    let path = std::env::var_os("STAGEPUSH_TEST_MOTO")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::util::target_dir().join("test-tools/moto/bin/moto_server"));
    assert!(
        path.is_file(),
        "moto is not installed ({} does not exist): run `cargo xtask test`, which installs it \
         and sets STAGEPUSH_TEST_MOTO",
        path.display()
    );
    path
}

impl Moto {
    pub fn start() -> Moto {
        let dir = crate::util::temp_dir();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = dir.path().join("moto.log");
        let file = std::fs::File::create(&log).expect("create the moto log");
        let child = Command::new(moto_binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file)
            .spawn()
            .expect("start moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .http_client(http)
            .endpoint_url(&endpoint)
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                KEY_ID, SECRET, None, None, "test",
            ))
            .build();
        let mut moto = Moto {
            child,
            log,
            _dir: dir,
            endpoint,
            client: aws_sdk_sqs::Client::from_conf(config),
        };
        moto.wait_ready(port);
        moto
    }

    fn wait_ready(&mut self, port: u16) {
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("moto exited ({status}) before answering:\n{}", self.log());
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "moto did not answer within {READY_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Creates queue `name`; its URL (`http://127.0.0.1:PORT/123456789012/NAME`).
    pub fn create_queue(&self, name: &str) -> String {
        let out = runtime()
            .block_on(self.client.create_queue().queue_name(name).send())
            .unwrap_or_else(|e| panic!("create queue {name}: {e:?}"));
        out.queue_url().expect("a queue URL").to_owned()
    }

    pub fn send(&self, url: &str, body: &str) {
        runtime()
            .block_on(
                self.client
                    .send_message()
                    .queue_url(url)
                    .message_body(body)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("send to {url}: {e:?}"));
    }

    /// One receive (up to 10 messages, hidden for `visibility`, waiting up to 1 s): the
    /// bodies.
    pub fn receive(&self, url: &str, visibility: i32) -> Vec<String> {
        let out = runtime()
            .block_on(
                self.client
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(10)
                    .visibility_timeout(visibility)
                    .wait_time_seconds(1)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("receive from {url}: {e:?}"));
        out.messages()
            .iter()
            .map(|m| m.body().unwrap_or_default().to_owned())
            .collect()
    }

    /// Messages in the queue: (visible, in flight).
    pub fn counts(&self, url: &str) -> (u64, u64) {
        let out = runtime()
            .block_on(
                self.client
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("attributes of {url}: {e:?}"));
        let get = |name: QueueAttributeName| {
            out.attributes()
                .and_then(|a| a.get(&name))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        (
            get(QueueAttributeName::ApproximateNumberOfMessages),
            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
