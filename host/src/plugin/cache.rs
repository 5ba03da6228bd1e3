//! Compiled components cached on disk, keyed by the component's SHA-256 digest and the
//! engine's compatibility hash: a 15 MB Python or JS component compiles for 10-25 s
//! cold and loads in milliseconds from here. A load from the cache touches the entry, so
//! its modification time is its last use (`cache_admin` lists and prunes by it).

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::PluginError;

/// Environment variable that overrides the cache directory.
pub const CACHE_DIR_ENV: &str = "STAGEPUSH_CACHE_DIR";

/// The default cache directory: `$STAGEPUSH_CACHE_DIR`, else `$XDG_CACHE_HOME/stagepush`,
/// else `$HOME/.cache/stagepush`, else a folder in the system temp dir.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(CACHE_DIR_ENV) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("stagepush");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".cache").join("stagepush");
    }
    std::env::temp_dir().join("stagepush-cache")
}

/// SHA-256 of a plugin file, lower-case hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Where the compiled form of a component with `digest` lives for `engine`.
pub fn cache_path(engine: &Engine, dir: &Path, digest: &str) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    dir.join("components")
        .join(format!("{digest}-{:016x}.cwasm", hasher.finish()))
}

/// Whether the compiled form is already cached.
pub fn is_cached(engine: &Engine, dir: &Path, digest: &str) -> bool {
    cache_path(engine, dir, digest).is_file()
}

/// Loads the component from the cache, or compiles it and stores the compiled form.
/// `source` names the plugin in errors.
pub fn load(
    engine: &Engine,
    dir: Option<&Path>,
    source: &Path,
    bytes: &[u8],
    digest: &str,
) -> Result<Component, PluginError> {
    let Some(dir) = dir else {
        return compile(engine, source, bytes);
    };
    let path = cache_path(engine, dir, digest);
    if path.is_file() {
        // SAFETY: the file was written by `store` below from `Component::serialize` of a
        // component with this digest, for an engine with this compatibility hash, and
        // is only ever replaced atomically. wasmtime still checks its header.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => {
                super::cache_admin::touch(&path);
                return Ok(component);
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "discarding unreadable compiled plugin");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let component = compile(engine, source, bytes)?;
    if let Err(source) = store(&component, &path) {
        // A cache that cannot be written only costs time: say so and go on.
        tracing::warn!(path = %path.display(), error = %source, "cannot cache the compiled plugin");
    }
    Ok(component)
}

fn compile(engine: &Engine, source: &Path, bytes: &[u8]) -> Result<Component, PluginError> {
    Component::from_binary(engine, bytes).map_err(|e| PluginError::NotAComponent {
        path: source.to_path_buf(),
        message: format!("{e:#}"),
    })
}

fn store(component: &Component, path: &Path) -> std::io::Result<()> {
    let bytes = component
        .serialize()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile_in(dir)?;
    tmp.1.write_all(&bytes)?;
    tmp.1.sync_all()?;
    std::fs::rename(&tmp.0, path)
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = format!(
        ".tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    )
    .replace(['(', ')'], "");
    let path = dir.join(name);
    let file = std::fs::File::create(&path)?;
    Ok((path, file))
}
