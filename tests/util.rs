//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod command;
pub mod moto;
pub mod serve;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::data_type::{
    BoolType, ByteArray, ByteArrayType, DoubleType, FixedLenByteArray, FixedLenByteArrayType,
    Int32Type, Int64Type,
};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

/// The path of a file under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("stagepush-test-")
        .tempdir()
        .expect("create a temporary directory")
}

/// The values of one column chunk, in the Parquet physical type of the column.
pub enum Values {
    Bool(Vec<bool>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Double(Vec<f64>),
    /// BYTE_ARRAY values.
    Bytes(Vec<Vec<u8>>),
    /// FIXED_LEN_BYTE_ARRAY values.
    Fixed(Vec<Vec<u8>>),
}

/// One column chunk: its non-null values, and its definition and repetition levels
/// (`None` for a REQUIRED, non-repeated column).
pub struct Chunk {
    pub values: Values,
    pub defs: Option<Vec<i16>>,
    pub reps: Option<Vec<i16>>,
}

impl Chunk {
    /// A REQUIRED column's chunk.
    pub fn required(values: Values) -> Self {
        Self {
            values,
            defs: None,
            reps: None,
        }
    }

    /// An OPTIONAL column's chunk: `present[i]` says whether row `i` has a value; `values`
    /// holds the present values only.
    pub fn optional(values: Values, present: &[bool]) -> Self {
        Self {
            values,
            defs: Some(present.iter().map(|&p| i16::from(p)).collect()),
            reps: None,
        }
    }
}

/// The big-endian two's-complement bytes of `value` in `width` bytes: how Parquet stores a
/// FIXED_LEN_BYTE_ARRAY decimal.
pub fn decimal_bytes(value: i128, width: usize) -> Vec<u8> {
    value.to_be_bytes()[16 - width..].to_vec()
}

/// Writes a Parquet file with the low-level writer: `schema` in Parquet's message syntax
/// (the physical layout is exactly what it says), one `Vec<Chunk>` per row group, one
/// chunk per leaf column in schema order.
pub fn write_parquet(
    path: &Path,
    schema: &str,
    properties: WriterProperties,
    row_groups: Vec<Vec<Chunk>>,
) {
    let schema = Arc::new(parse_message_type(schema).expect("parse the test schema"));
    let file = File::create(path).expect("create the test file");
    let mut writer =
        SerializedFileWriter::new(file, schema, Arc::new(properties)).expect("open the writer");
    for chunks in row_groups {
        let mut group = writer.next_row_group().expect("start a row group");
        for chunk in chunks {
            let mut column = group
                .next_column()
                .expect("next column")
                .expect("as many chunks as columns");
            let defs = chunk.defs.as_deref();
            let reps = chunk.reps.as_deref();
            match chunk.values {
                Values::Bool(values) => column.typed::<BoolType>().write_batch(&values, defs, reps),
                Values::Int32(values) => {
                    column.typed::<Int32Type>().write_batch(&values, defs, reps)
                }
                Values::Int64(values) => {
                    column.typed::<Int64Type>().write_batch(&values, defs, reps)
                }
                Values::Double(values) => column
                    .typed::<DoubleType>()
                    .write_batch(&values, defs, reps),
                Values::Bytes(values) => {
                    let values: Vec<ByteArray> = values.into_iter().map(ByteArray::from).collect();
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(&values, defs, reps)
                }
                Values::Fixed(values) => {
                    let values: Vec<FixedLenByteArray> = values
                        .into_iter()
                        .map(|value| ByteArray::from(value).into())
                        .collect();
                    column
                        .typed::<FixedLenByteArrayType>()
                        .write_batch(&values, defs, reps)
                }
            }
            .expect("write a column chunk");
            column.close().expect("close the column");
        }
        assert!(
            group.next_column().expect("next column").is_none(),
            "a chunk per column"
        );
        group.close().expect("close the row group");
    }
    writer.close().expect("write the footer");
}

/// The cargo target folder (`CARGO_TARGET_DIR`, else `target/` of the workspace).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// A compiled-plugin cache shared by the tests that run the same interpreted plugin many
/// times (the host writes it atomically): a Python or JS component takes 15–25 s to
/// compile, from the cache ~0.1 s.
pub fn shared_plugin_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache")
}

/// Every file below `dir` (recursively) with extension `ext`, or every file with `None`,
/// sorted; none when `dir` does not exist.
pub fn files_under(dir: &Path, ext: Option<&str>) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten() {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if ext.is_none_or(|ext| path.extension().is_some_and(|e| e == ext)) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The component built from `plugins/<name>` by `cargo xtask plugins`.
pub fn plugin(name: &str) -> PathBuf {
    let dir = std::env::var_os("STAGEPUSH_TEST_PLUGINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("plugins"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: build the plugins with `cargo xtask plugins` (or run `cargo xtask test`)",
        path.display()
    );
    path
}

/// A `stagepush` command with a private compiled-plugin cache and delivery state under `dir`.
pub fn stagepush(dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stagepush"));
    cmd.env("STAGEPUSH_CACHE_DIR", dir.join("cache"))
        .env("STAGEPUSH_STATE", dir.join("state"))
        .env_remove("STAGEPUSH_FAILPOINT")
        .env_remove("STAGEPUSH_LOG")
        .stdin(std::process::Stdio::null());
    cmd
}

/// What a finished command printed.
pub struct Output {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
    /// stderr lines starting with `prefix`.
    pub fn stderr_lines(&self, prefix: &str) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with(prefix))
            .collect()
    }
}

/// Runs `cmd` to completion and captures its output.
pub fn run(cmd: &mut std::process::Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
    Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A Snowflake-like customer file of `rows` rows with ids `1..=rows`, no tombstones or
/// null ids unless asked, in one row group.
pub fn customer_file(dir: &Path, name: &str, rows: u64) -> PathBuf {
    let path = dir.join(name);
    let options = stagepush::sample::CustomerFileOptions {
        tombstone_fraction: 0.0,
        null_id_fraction: 0.0,
        ..Default::default()
    };
    stagepush::sample::write_customer_file(&path, 1, rows, &options).expect("write customer file");
    path
}

// ---- mock CluedIn and sink helpers (tests/sink.rs, tests/mock_cluedin.rs) ----

/// The token the in-process mock CluedIn expects.
pub const MOCK_TOKEN: &str = "mock-token-7f3a9c";

/// Starts the mock CluedIn on 127.0.0.1:0 with a fresh store directory; `configure` adjusts
/// the arguments (faults, limits). Keep the `TempDir` alive for as long as the store is read.
pub async fn start_mock(
    configure: impl FnOnce(&mut stagepush::mock_cluedin::MockArgs),
) -> (stagepush::mock_cluedin::MockServer, tempfile::TempDir) {
    let dir = temp_dir();
    let mut args =
        stagepush::mock_cluedin::MockArgs::new(MOCK_TOKEN, Some(dir.path().to_path_buf()));
    configure(&mut args);
    let server = stagepush::mock_cluedin::MockServer::start(args)
        .await
        .expect("start the mock");
    (server, dir)
}

/// Reads an NDJSON file, ignoring a last line without its `\n` (a write in progress).
pub fn read_ndjson(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The mock's `records.ndjson` lines.
pub fn mock_records(store: &Path) -> Vec<serde_json::Value> {
    read_ndjson(&store.join(stagepush::mock_cluedin::RECORDS_FILE))
}

/// The mock's `requests.ndjson` lines, in arrival order (`seq`).
pub fn mock_requests(store: &Path) -> Vec<serde_json::Value> {
    let mut lines = read_ndjson(&store.join(stagepush::mock_cluedin::REQUESTS_FILE));
    lines.sort_by_key(|l| l["seq"].as_u64());
    lines
}

/// A plain-HTTP client for talking to the mock directly.
pub fn http_client() -> reqwest::Client {
    stagepush::tls::install_crypto_provider();
    reqwest::Client::builder().build().expect("an HTTP client")
}

/// `stagepush mock-cluedin` running as its own process (the real binary), killed on drop.
pub struct MockProcess {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    pub store: PathBuf,
}

impl MockProcess {
    /// Starts the mock with token `token`, storing under `dir/mock`, with extra flags.
    pub fn start(dir: &Path, token: &str, flags: &[&str]) -> MockProcess {
        use std::io::BufRead;
        let store = dir.join("mock");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stagepush"))
            .args([
                "mock-cluedin",
                "--listen",
                "127.0.0.1:0",
                "--token",
                token,
                "--store",
            ])
            .arg(&store)
            .args(flags)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start stagepush mock-cluedin");
        let stdout = child.stdout.take().expect("mock stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the mock prints its address");
        let base_url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from the mock: {line:?}"))
            .to_string();
        MockProcess {
            child,
            base_url,
            store,
        }
    }

    /// The URL of endpoint `id`.
    pub fn endpoint(&self, id: &str) -> String {
        format!("{}/upload/api/endpoint/{id}", self.base_url)
    }

    /// The records the mock stored (`records.ndjson`), in the order it stored them.
    pub fn records(&self) -> Vec<serde_json::Value> {
        mock_records(&self.store)
    }

    /// The requests the mock answered (`requests.ndjson`), in arrival order.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        mock_requests(&self.store)
    }

    /// externalId → how many times the mock stored a record with it.
    pub fn received(&self) -> std::collections::BTreeMap<String, u64> {
        let mut out = std::collections::BTreeMap::new();
        for r in self.records() {
            let id = r["record"]["externalId"]
                .as_str()
                .expect("a stored record has an externalId")
                .to_string();
            *out.entry(id).or_default() += 1;
        }
        out
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of one sample (`name` with its labels, e.g. `x_total{a="b"}`) in a Prometheus
/// text exposition, if present.
pub fn metric_value(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

/// Polls `done` (every 20 ms) until it holds; panics with `what` after `deadline`.
pub fn wait_until(deadline: std::time::Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The run report `dir/report.json` as JSON (panics naming the path if there is none).
pub fn read_report(dir: &Path) -> serde_json::Value {
    read_report_at(&dir.join("report.json"))
}

/// The run report at `path` as JSON (panics naming the path if there is none).
pub fn read_report_at(path: &Path) -> serde_json::Value {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("no report at {}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("report JSON")
}
