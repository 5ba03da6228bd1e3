//! Every `bindgen!` decision of the host lives here (as in wasmtime's `crates/wasi`).
//!
//! One module per contract version the host can run, named after the folder it is
//! generated from (Zed's `since_vX.Y.Z` pattern): when the contract changes, a new
//! `wit/since_vX.Y.Z/` folder and module are added beside the old ones, and the runtime
//! adapts the old types to the current ones, so plugins built for an earlier version
//! keep working.
//!
//! The host works with one set of types, [`types`] (0.1.0's): 0.2.0 changed only the
//! output, so its bindings reuse 0.1.0's input types as they are, and
//! `plugin::contract::since_v0_2_0::unpack` turns a 0.2.0 packed output into the 0.1.0
//! [`types::Output`] the encoder reads. What the host does per version (imports, linking,
//! output adapters) is in `plugin::contract::since_v*`.

/// Bindings for `stagepush:transform@0.1.0`: entities as lists of records and variants.
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

/// Bindings for `stagepush:transform@0.2.0`, the current contract: the output packed
/// into byte columns. The input types are identical to 0.1.0's and are mapped onto them
/// (the component model compares types by structure, not by name). The `host` import is
/// generated anew: a linker registers an interface under its versioned name.
pub mod since_v0_2_0 {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.2.0",
        world: "transformer",
        additional_derives: [PartialEq],
        with: {
            "stagepush:transform/types@0.2.0": super::since_v0_1_0::stagepush::transform::types,
        },
    });
}

pub use since_v0_1_0::stagepush::transform::host;
pub use since_v0_1_0::stagepush::transform::types;
/// The packed output of contract 0.2.0.
pub use since_v0_2_0::stagepush::transform::output as packed;

/// The contract package this host implements.
pub use crate::plugin::contract::CONTRACT_PACKAGE;
/// The interface a plugin exports.
pub const PLUGIN_INTERFACE: &str = "plugin";
