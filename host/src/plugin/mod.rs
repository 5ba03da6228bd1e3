//! The sandboxed WebAssembly plugin runtime.
//!
//! [`PluginEngine`] is a hardened wasmtime engine; [`Plugin`] a compiled, contract-checked
//! and linked component; [`Runner`] one instance bound to a schema that transforms
//! batches, containing faults to the rows that cause them.

mod cache;
pub mod cache_admin;
pub mod contract;
mod engine;
mod error;
pub mod input;
mod instance;
mod output;
mod runner;
mod sandbox;

pub use cache::{CACHE_DIR_ENV, cache_path, default_cache_dir, digest, is_cached};
pub use contract::{CONTRACT_PACKAGE, ContractVersion, ContractVersionError};
pub use engine::{DEFAULT_BATCH_TIMEOUT, DEFAULT_MEMORY_LIMIT_BYTES, Limits, PluginEngine};
pub use error::{Fault, PluginError};
pub use instance::{InitRefusal, Instance, LoadOptions, Plugin};
pub use output::OutputError;
pub use runner::{
    BatchResult, BatchSource, Failure, FaultsOfKind, Piece, RowFailure, Runner, RunnerStats,
};
pub use sandbox::import_note;
