//! stagepush: Snowflake stage exports into CluedIn through sandboxed WebAssembly
//! transforms.

pub mod bad_file;
pub mod batchbytes;
pub mod bindings;
pub mod cancel;
pub mod config;
pub mod config_template;
pub mod deadletter;
pub mod errors;
pub mod events;
pub mod failpoint;
pub mod job;
pub mod mapping;
pub mod memory;
pub mod mock_cluedin;
pub mod pipeline;
pub mod plugin;
pub mod procstat;
pub mod queue;
pub mod run_report;
pub mod sample;
pub mod sample_text;
pub mod scaffold;
pub mod serve;
pub mod shard;
pub mod sink;
pub mod source;
pub mod state;
pub mod storage;
pub mod sync;
pub mod tls;
pub mod transform;
pub mod trigger;
pub mod watermark;
pub mod wire;
