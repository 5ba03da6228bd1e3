//! The wasmtime engine: explicit hardening, pooling allocation, and the epoch ticker that
//! enforces per-call time limits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::PluginError;

/// Default memory cap of one plugin instance.
pub const DEFAULT_MEMORY_LIMIT_BYTES: u64 = 256 * 1024 * 1024;
/// Default time limit of one `transform` call (one batch).
pub const DEFAULT_BATCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the epoch advances; time limits are enforced to this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Plugin instances that may be alive at once (one per worker, plus rebuilds in flight).
const POOLED_INSTANCES: u32 = 64;

/// Resource limits applied to every plugin instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory an instance may use, in bytes (all its memories together).
    pub memory_bytes: u64,
    /// Wall-clock time one call may run before it is interrupted.
    pub call_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: DEFAULT_MEMORY_LIMIT_BYTES,
            call_timeout: DEFAULT_BATCH_TIMEOUT,
        }
    }
}

impl Limits {
    /// The epoch deadline, in ticks, for one call.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let ticks = self.call_timeout.as_nanos() / EPOCH_TICK.as_nanos();
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }
}

/// An engine plus the thread that advances its epoch. Dropping it stops the thread.
pub struct PluginEngine {
    engine: Engine,
    limits: Limits,
    stop: Arc<AtomicBool>,
}

impl PluginEngine {
    /// Builds a hardened engine for running untrusted plugins under `limits`.
    pub fn new(limits: Limits) -> Result<Self, PluginError> {
        let engine =
            Engine::new(&config(limits)).map_err(|e| PluginError::Engine(e.to_string()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let stop_flag = stop.clone();
        std::thread::Builder::new()
            .name("stagepush-epoch".into())
            .spawn(move || {
                while !stop_flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| PluginError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(PluginEngine {
            engine,
            limits,
            stop,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn config(limits: Limits) -> Config {
    let mut config = Config::new();
    // Time limits: a deadline is set before every call; hitting it traps the call.
    config.epoch_interruption(true);
    // Deterministic, explicit feature set: what Rust, componentize-py and
    // ComponentizeJS components use, and nothing that lets a guest escape its
    // instance (no shared memory or threads: those features are compiled out).
    config.wasm_component_model(true);
    config.wasm_memory64(false);
    config.parallel_compilation(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);

    let memory = usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOLED_INSTANCES)
        .total_core_instances(POOLED_INSTANCES * 8)
        .total_memories(POOLED_INSTANCES * 2)
        .total_tables(POOLED_INSTANCES * 4)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        .max_core_instances_per_component(64)
        .table_elements(100_000)
        .max_memory_size(memory)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}
