//! stagepush: Snowflake stage exports into CluedIn through sandboxed WebAssembly
//! transforms.

pub mod bindings;
pub mod columns;
pub mod mock_cluedin;
pub mod plugin;
pub mod sample;
pub mod sink;
pub mod source;
pub mod transform;
pub mod wire;
