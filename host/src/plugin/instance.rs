//! Loading a plugin (compile or cache, contract check, link) and calling one instance of
//! it under the time and memory limits.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::component::{Component, Linker};
use wasmtime::{Store, Trap};

use super::contract::{self, CONTRACT_PACKAGE, ContractVersion, Exports, LinkError, Linked};
use super::engine::{Limits, PluginEngine};
use super::sandbox::{State, truncate};
use super::{Fault, PluginError, cache};
use crate::bindings::{self, types};

/// How to load a plugin.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Refuse the plugin unless its SHA-256 is this (lower-case hex).
    pub expected_sha256: Option<String>,
}

/// A plugin compiled and linked, ready to be instantiated any number of times.
pub struct Plugin {
    engine: wasmtime::Engine,
    limits: Limits,
    pre: Linked,
    path: PathBuf,
    digest: String,
    size: u64,
    info: types::PluginInfo,
    name: Arc<str>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Reads, verifies, compiles (or loads from cache) and links the plugin at `path`,
    /// then asks it to describe itself.
    pub fn load(
        engine: &PluginEngine,
        path: &Path,
        options: &LoadOptions,
    ) -> Result<Plugin, PluginError> {
        let bytes = std::fs::read(path).map_err(|source| PluginError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let digest = cache::digest(&bytes);
        if let Some(expected) = &options.expected_sha256
            && !expected.eq_ignore_ascii_case(&digest)
        {
            return Err(PluginError::DigestMismatch {
                path: path.to_path_buf(),
                expected: expected.to_ascii_lowercase(),
                found: digest,
            });
        }
        if !bytes.starts_with(b"\0asm") {
            return Err(PluginError::NotAComponent {
                path: path.to_path_buf(),
                message: "the file does not start with the WebAssembly magic number".into(),
            });
        }
        // A core module (version 1) is not a component; say so instead of a parse error.
        if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
            return Err(PluginError::NotAComponent {
                path: path.to_path_buf(),
                message: "it is a core WebAssembly module; build it as a component \
                          (e.g. target wasm32-wasip2)"
                    .into(),
            });
        }
        let wasm = engine.engine();
        let component = cache::load(wasm, options.cache_dir.as_deref(), path, &bytes, &digest)?;
        let contract = check_contract(wasm, &component, path)?;

        let engine_error = |e: wasmtime::Error| PluginError::Engine(format!("{e:#}"));
        let link_error = |e: wasmtime::Error| PluginError::Link {
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        };
        let mut linker = Linker::<State>::new(wasm);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(engine_error)?;
        let pre = contract
            .link(&mut linker, &component)
            .map_err(|e| match e {
                LinkError::Engine(e) => engine_error(e),
                LinkError::Imports(e) => link_error(e),
            })?;

        let file_name: Arc<str> = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plugin".into())
            .into();
        let mut plugin = Plugin {
            engine: wasm.clone(),
            limits: engine.limits(),
            pre,
            path: path.to_path_buf(),
            digest,
            size: bytes.len() as u64,
            info: types::PluginInfo {
                name: file_name.to_string(),
                version: String::new(),
                description: String::new(),
                config: Vec::new(),
            },
            name: file_name,
        };
        let mut instance = plugin.instantiate()?;
        let info = instance
            .describe()
            .map_err(|fault| plugin.fault("describe", fault))?;
        if !info.name.trim().is_empty() {
            plugin.name = info.name.trim().into();
        }
        plugin.info = info;
        Ok(plugin)
    }

    /// The plugin's name (what it says in `describe`, else its file name).
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    pub fn info(&self) -> &types::PluginInfo {
        &self.info
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The contract version the plugin was built for (printed as e.g. `0.2.0`).
    pub fn contract_version(&self) -> ContractVersion {
        self.pre.version()
    }

    /// SHA-256 of the plugin file.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A fresh instance with its own store, memory and limits.
    pub fn instantiate(&self) -> Result<Instance, PluginError> {
        let mut store = Store::new(
            &self.engine,
            State::new(self.name.clone(), self.limits.memory_bytes),
        );
        store.limiter(|state| state.limiter());
        store.epoch_deadline_trap();
        let bindings = guarded(&mut store, self.limits, |store| self.pre.instantiate(store))
            .map_err(|fault| self.fault("instantiation", fault))?;
        Ok(Instance {
            store,
            bindings,
            limits: self.limits,
        })
    }

    /// Wraps a fault with the plugin's identity.
    pub fn fault(&self, call: &'static str, fault: Fault) -> PluginError {
        PluginError::Fault {
            plugin: self.name.to_string(),
            call,
            fault,
        }
    }
}

/// A plugin's refusal to start, in its own words (the contract's `init` error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InitRefusal(pub String);

/// One live instance of a plugin. After any fault it must be discarded: a trapped
/// component instance cannot be entered again.
pub struct Instance {
    store: Store<State>,
    bindings: Exports,
    limits: Limits,
}

impl Instance {
    /// Runs `f` against the instance with a fresh deadline and classifies any failure.
    fn call<R>(
        &mut self,
        f: impl FnOnce(&Exports, &mut Store<State>) -> wasmtime::Result<R>,
    ) -> Result<R, Fault> {
        let bindings = &self.bindings;
        guarded(&mut self.store, self.limits, |store| f(bindings, store))
    }

    pub fn describe(&mut self) -> Result<types::PluginInfo, Fault> {
        self.call(|b, s| b.describe(s))
    }

    /// Calls `init`: `Ok(Err(_))` is the plugin's refusal of the schema or configuration.
    pub fn init(
        &mut self,
        schema: &[types::ColumnSchema],
        config: &[(String, String)],
    ) -> Result<Result<types::InitResult, InitRefusal>, Fault> {
        self.store.data_mut().collect_warnings(true);
        let result = self.call(|b, s| b.init(s, schema, config));
        self.store.data_mut().collect_warnings(false);
        result
    }

    /// The warnings the guest logged during `init` (each once).
    pub fn take_init_warnings(&mut self) -> Vec<String> {
        self.store.data_mut().take_warnings()
    }

    /// Transforms a batch; a 0.2.0 plugin's packed output is unpacked (a malformed one
    /// is [`Fault::InvalidOutput`]).
    pub fn transform(&mut self, batch: &types::Batch) -> Result<types::Output, Fault> {
        self.call(|b, s| b.transform(s, batch))?
            .map_err(Fault::InvalidOutput)
    }
}

/// Runs `f` on the store with a fresh deadline, and turns any error into a [`Fault`].
fn guarded<R>(
    store: &mut Store<State>,
    limits: Limits,
    f: impl FnOnce(&mut Store<State>) -> wasmtime::Result<R>,
) -> Result<R, Fault> {
    store.set_epoch_deadline(limits.deadline_ticks());
    store.data_mut().clear_recent_stderr();
    f(store).map_err(|error| classify(store.data(), limits, error))
}

fn classify(state: &State, limits: Limits, error: wasmtime::Error) -> Fault {
    if state.memory_limit_hit() {
        return Fault::MemoryLimit {
            limit_mib: limits.memory_bytes / (1024 * 1024),
        };
    }
    let trap = error.downcast_ref::<Trap>();
    if let Some(Trap::Interrupt) = trap {
        return Fault::Timeout {
            limit_ms: u64::try_from(limits.call_timeout.as_millis()).unwrap_or(u64::MAX),
        };
    }
    let mut message = match trap {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    // A Rust panic prints its message on stderr before aborting: that is the cause a
    // person wants to read.
    let stderr: Vec<String> = state
        .recent_stderr()
        .into_iter()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("note: run with"))
        .collect();
    if !stderr.is_empty() {
        message = format!("{message}; plugin stderr: {}", stderr.join(" | "));
    }
    Fault::Trap {
        message: truncate(&message, 4096),
    }
}

/// Checks that the component exports the plugin interface of a contract version this
/// host runs, and names both versions when it does not. Returns the version (the newest,
/// should a component export several).
fn check_contract(
    engine: &wasmtime::Engine,
    component: &Component,
    path: &Path,
) -> Result<ContractVersion, PluginError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let prefix = format!("{CONTRACT_PACKAGE}/{}@", bindings::PLUGIN_INTERFACE);
    let versions: Vec<&str> = exports
        .iter()
        .filter_map(|name| name.strip_prefix(&prefix))
        .collect();
    if let Some(version) = versions
        .iter()
        .filter_map(|v| ContractVersion::parse(v).ok())
        .max()
    {
        return Ok(version);
    }
    if let Some(found) = versions.first() {
        return Err(PluginError::UnsupportedContract {
            path: path.to_path_buf(),
            package: CONTRACT_PACKAGE.to_string(),
            found: found.to_string(),
            supported: contract::supported_list(),
        });
    }
    Err(PluginError::NotAPlugin {
        path: path.to_path_buf(),
        expected: format!("{prefix}{}", ContractVersion::newest()),
        exports: if exports.is_empty() {
            "nothing".into()
        } else {
            exports.join(", ")
        },
    })
}
