//! Every `bindgen!` decision of the host lives here (as in wasmtime's `crates/wasi`).
//!
//! One module per contract version the host can run, named after the folder it is
//! generated from (Zed's `since_vX.Y.Z` pattern): when the contract changes, a new
//! `wit/since_vX.Y.Z/` folder and module are added beside the old ones, and the runtime
//! adapts the old types to the current ones, so plugins built for an earlier version
//! keep working.

/// Bindings for `stagepush:transform@0.1.0`, the current contract.
pub mod since_v0_1_0 {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.1.0",
        world: "transformer",
        // Schemas are compared across files; outputs in tests.
        additional_derives: [PartialEq],
        // Plugins are called synchronously from worker threads; host imports cannot
        // fail (the only one is `log`).
    });
}

pub use since_v0_1_0::exports::stagepush::transform::plugin;
pub use since_v0_1_0::stagepush::transform::host;
pub use since_v0_1_0::stagepush::transform::types;
pub use since_v0_1_0::{Transformer, TransformerPre};

/// The contract package this host implements.
pub const CONTRACT_PACKAGE: &str = "stagepush:transform";
/// The newest contract version this host implements.
pub const CONTRACT_VERSION: &str = "0.1.0";
/// Every contract version this host can run, oldest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.1.0"];
/// The interface a plugin exports.
pub const PLUGIN_INTERFACE: &str = "plugin";
