//! Errors of the plugin layer. Every guest-caused error carries the plugin's identity.

use std::path::PathBuf;

/// Why a plugin could not be loaded or run at all. These stop a run.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot read plugin {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("plugin {path} is not a WebAssembly component: {message}")]
    NotAComponent { path: PathBuf, message: String },
    #[error(
        "plugin {path} is not a stagepush plugin: it does not export `{expected}` (it exports: {exports})"
    )]
    NotAPlugin {
        path: PathBuf,
        expected: String,
        exports: String,
    },
    #[error(
        "plugin {path} was built for contract {package}@{found}; this stagepush runs {supported}"
    )]
    UnsupportedContract {
        path: PathBuf,
        package: String,
        found: String,
        supported: String,
    },
    #[error("plugin {path} needs imports stagepush does not provide: {message}")]
    Link { path: PathBuf, message: String },
    #[error("plugin digest mismatch for {path}: expected sha256 {expected}, found {found}")]
    DigestMismatch {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("plugin `{plugin}` refused to start: {message}")]
    InitRefused { plugin: String, message: String },
    #[error("plugin `{plugin}` failed in {call}: {fault}")]
    Fault {
        plugin: String,
        call: &'static str,
        fault: Fault,
    },
    #[error("cannot set up the plugin engine: {0}")]
    Engine(String),
    #[error("compiled-plugin cache at {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What went wrong inside one call into a plugin.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Fault {
    /// The call ran past its time limit (epoch interruption).
    #[error("ran longer than the time limit of {limit_ms} ms and was stopped")]
    Timeout { limit_ms: u64 },
    /// The guest tried to grow its memory past the cap.
    #[error("tried to use more than the memory limit of {limit_mib} MiB and was stopped")]
    MemoryLimit { limit_mib: u64 },
    /// The guest trapped (panic, unreachable, out-of-bounds access, stack overflow ...).
    #[error("trapped: {message}")]
    Trap { message: String },
    /// The guest returned output that breaks the contract.
    #[error("returned invalid output: {0}")]
    InvalidOutput(#[from] super::output::OutputError),
}

impl Fault {
    /// A short stable name for reports and dead letters.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Timeout { .. } => "timeout",
            Fault::MemoryLimit { .. } => "memory-limit",
            Fault::Trap { .. } => "trap",
            Fault::InvalidOutput { .. } => "invalid-output",
        }
    }
}
