//! A `stagepush serve` process on a free port ([`ServeProcess`]) and the one raw HTTP/1.1
//! client the tests talk to it with ([`request`], [`Reply`]).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ChildStdout, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::command::{Background, TestCommand};

/// How long a request, a start or a stop of `serve` may take before a test fails.
pub const SERVE_DEADLINE: Duration = Duration::from_secs(120);
/// How often [`ServeProcess::wait_until`] looks.
const POLL: Duration = Duration::from_millis(100);

/// `stagepush serve` running as its own process, its log (stderr) in a file; killed when
/// dropped.
pub struct ServeProcess {
    process: Background,
    /// Kept open: the process's stdout.
    _stdout: BufReader<ChildStdout>,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl ServeProcess {
    /// Starts `cmd` (a `serve` command) with its log in `log`; returns once it listens.
    pub fn start(mut cmd: TestCommand, log: &Path) -> ServeProcess {
        let mut process = cmd.spawn(log, Stdio::piped());
        let mut stdout = BufReader::new(process.child().stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read serve's stdout");
        let Some(base) = line.trim().strip_prefix("listening on ") else {
            let (status, log) = process.kill();
            panic!(
                "serve did not start ({status}): first line {line:?}\n{}\n{log}",
                cmd.describe()
            );
        };
        ServeProcess {
            base: base.to_owned(),
            process,
            _stdout: stdout,
        }
    }

    /// What serve has logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// One request to serve on a fresh connection.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        request(&self.base, method, path, headers, body)
    }

    /// `GET /metrics`, asserted to answer 200.
    pub fn metrics(&self) -> String {
        let reply = self.request("GET", "/metrics", &[], b"");
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }

    /// The value of the sample `name` (with its labels) in /metrics; fails when absent.
    pub fn metric(&self, name: &str) -> f64 {
        let text = self.metrics();
        super::metric_value(&text, name).unwrap_or_else(|| panic!("no {name} in\n{text}"))
    }

    /// The value of `sample` in /metrics, 0 when absent (a label not seen yet).
    pub fn metric_or_zero(&self, sample: &str) -> f64 {
        super::metric_value(&self.metrics(), sample).unwrap_or(0.0)
    }

    /// Waits until `done` holds, checking every 100 ms; fails after [`SERVE_DEADLINE`] with
    /// serve's log.
    pub fn wait_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < SERVE_DEADLINE,
                "timed out waiting for {what}:\n{}",
                self.log()
            );
            std::thread::sleep(POLL);
        }
    }

    /// SIGTERM; the exit status and the log (within [`SERVE_DEADLINE`]).
    pub fn terminate(mut self) -> (ExitStatus, String) {
        self.process.signal(libc::SIGTERM);
        self.process.wait(SERVE_DEADLINE, "after SIGTERM")
    }

    /// SIGTERM, asserted to exit with status 0; the log.
    pub fn stop(self) -> String {
        let (status, log) = self.terminate();
        assert_eq!(status.code(), Some(0), "{log}");
        log
    }

    /// SIGKILL, as a crash; the log.
    pub fn kill(mut self) -> String {
        let (status, log) = self.process.kill();
        assert_eq!(status.signal(), Some(9));
        log
    }
}

/// An HTTP answer.
pub struct Reply {
    pub status: u16,
    /// The status line and headers.
    pub head: String,
    /// The headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Reply {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The body as JSON; fails when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// One HTTP/1.1 request to `base` (`http://host:port`) on a fresh connection; the answer
/// is read within [`SERVE_DEADLINE`].
pub fn request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let host = base.strip_prefix("http://").expect("an http:// base URL");
    let mut stream = TcpStream::connect(host).expect("connect to the server");
    stream
        .set_read_timeout(Some(SERVE_DEADLINE))
        .expect("set a read timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .expect("write the request head");
    // The server may answer (413) before reading the whole body.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_reply(&raw)
}

/// Parses a whole HTTP/1.1 answer (head, blank line, body).
pub fn parse_reply(raw: &[u8]) -> Reply {
    let raw = String::from_utf8(raw.to_vec()).expect("a UTF-8 answer");
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {raw:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {raw:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        head: head.to_owned(),
        headers,
        body: body.to_owned(),
    }
}
