//! What a plugin instance can reach: a deny-all WASI context (no preopened directories,
//! no environment, no arguments, no network, closed stdin), guest stdout/stderr turned
//! into log lines and a memory limiter. The contract's imports (`host.log`) are each
//! version's, in `plugin::contract::since_v*`.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// What the sandbox lets an imported WASI interface do, when that is less than its name
/// says: the note `plugin info` prints beside the import (`wasi:sockets/tcp@0.2.6`).
pub fn import_note(import: &str) -> Option<&'static str> {
    let interface = import.split('@').next().unwrap_or(import);
    match interface {
        i if i.starts_with("wasi:sockets/") => Some("denied: no network"),
        i if i.starts_with("wasi:filesystem/") => Some("denied: no directories"),
        "wasi:cli/environment" => Some("empty: no variables or arguments"),
        "wasi:cli/stdin" => Some("closed"),
        "wasi:cli/stdout" | "wasi:cli/stderr" => Some("to the log"),
        _ => None,
    }
}

/// Longest guest log line kept; the rest is cut with a marker.
pub const MAX_LOG_LINE_BYTES: usize = 2048;
/// Guest stderr lines remembered to explain a trap (a Rust panic prints its message there).
const REMEMBERED_STDERR_LINES: usize = 8;

/// The per-instance store data.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    plugin: Arc<str>,
    stderr: GuestOutput,
    /// Warnings the guest logged while collecting (during `init`), at most
    /// [`MAX_INIT_WARNINGS`].
    warnings: Vec<String>,
    collecting_warnings: bool,
}

/// Warnings kept of one `init` call.
pub const MAX_INIT_WARNINGS: usize = 100;

impl State {
    pub fn new(plugin: Arc<str>, memory_limit: u64) -> Self {
        let stdout = GuestOutput::new(plugin.clone(), "stdout");
        let stderr = GuestOutput::new(plugin.clone(), "stderr");
        let wasi = WasiCtx::builder()
            .stdout(stdout)
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        State {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                limit: memory_limit,
                used: 0,
                hit: false,
            },
            plugin,
            stderr,
            warnings: Vec::new(),
            collecting_warnings: false,
        }
    }

    /// Starts or stops keeping the guest's warnings (`init` keeps them).
    pub fn collect_warnings(&mut self, on: bool) {
        self.collecting_warnings = on;
    }

    /// Keeps a warning the guest logged, while collecting.
    pub fn warned(&mut self, message: &str) {
        if self.collecting_warnings && self.warnings.len() < MAX_INIT_WARNINGS {
            self.warnings.push(message.to_string());
        }
    }

    /// The warnings kept so far (and forgets them).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    pub fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }

    /// The plugin's name, for its log lines.
    pub fn plugin_name(&self) -> &str {
        &self.plugin
    }

    /// Whether the memory limit was hit since the instance was created.
    pub fn memory_limit_hit(&self) -> bool {
        self.limiter.hit
    }

    /// Forgets remembered stderr lines (before each call).
    pub fn clear_recent_stderr(&mut self) {
        self.stderr.clear();
    }

    /// The last lines the guest wrote to stderr, oldest first.
    pub fn recent_stderr(&self) -> Vec<String> {
        self.stderr.recent()
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps the total linear memory of an instance; records that the cap was hit so the
/// resulting trap can be explained.
pub struct MemoryLimiter {
    limit: u64,
    used: u64,
    hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current) as u64;
        if self.used.saturating_add(growth) > self.limit {
            self.hit = true;
            return Err(wasmtime::format_err!(
                "memory limit of {} MiB exceeded",
                self.limit / (1024 * 1024)
            ));
        }
        self.used += growth;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million is far beyond any real plugin.
        Ok(desired <= 1_000_000)
    }
}

/// Guest stdout/stderr: each complete line becomes a log line attributed to the plugin
/// (truncated); nothing reaches the host's own stdout.
#[derive(Clone)]
pub struct GuestOutput {
    inner: Arc<Mutex<OutputInner>>,
}

struct OutputInner {
    plugin: Arc<str>,
    stream: &'static str,
    partial: Vec<u8>,
    recent: VecDeque<String>,
}

impl GuestOutput {
    fn new(plugin: Arc<str>, stream: &'static str) -> Self {
        GuestOutput {
            inner: Arc::new(Mutex::new(OutputInner {
                plugin,
                stream,
                partial: Vec::new(),
                recent: VecDeque::new(),
            })),
        }
    }

    fn recent(&self) -> Vec<String> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.flush_partial();
        inner.recent.iter().cloned().collect()
    }

    fn clear(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.recent.clear();
    }

    fn write(&self, bytes: &[u8]) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for &b in bytes {
            if b == b'\n' {
                inner.emit();
            } else if inner.partial.len() < MAX_LOG_LINE_BYTES + 1 {
                inner.partial.push(b);
            }
        }
    }
}

impl OutputInner {
    fn flush_partial(&mut self) {
        if !self.partial.is_empty() {
            self.emit();
        }
    }

    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        let line = truncate(&line, MAX_LOG_LINE_BYTES);
        tracing::info!(plugin = &*self.plugin, stream = self.stream, "{line}");
        if self.recent.len() == REMEMBERED_STDERR_LINES {
            self.recent.pop_front();
        }
        self.recent.push_back(line);
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes cut]", &s[..end], s.len() - end)
}
