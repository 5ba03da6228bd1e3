//! The plugin flags of every command that loads a plugin (`run`, `retry`, `serve`,
//! `plugin test`, `plugin info`): one name, one meaning, each the command-line form of a
//! `[plugin]` key. Also the old spellings of renamed flags, which fail naming the new one.
//!
//! | flag | `[plugin]` key | meaning |
//! |---|---|---|
//! | `--plugin-config KEY=VALUE` | `[plugin.config]` | the plugin's own settings |
//! | `--plugin-memory-mib` | `memory_mib` | memory cap of a plugin instance |
//! | `--plugin-timeout-ms` | `timeout_ms` | time limit of one plugin call |
//! | `--plugin-batch-rows` | `batch_rows` | rows per plugin call |
//! | `--plugin-batch-bytes` | `batch_bytes` | input bytes per plugin call |
//! | `--plugin-sha256` | `sha256` | refuse the plugin unless its digest is this |
//! | `--cache-dir` | — | where compiled plugins are cached |

use std::path::PathBuf;

use clap::Args;
use stagepush::config::PluginSection;

/// See the module docs. Every field is optional: what is not given comes from the config
/// file's `[plugin]` section, else its default.
#[derive(Args, Clone, Default, Debug)]
pub struct PluginFlags {
    /// Plugin configuration, KEY=VALUE (repeatable; `[plugin.config]`).
    #[arg(long = "plugin-config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub plugin_config: Vec<(String, String)>,
    /// Memory cap of a plugin instance, in MiB (default 256; `[plugin] memory_mib`).
    #[arg(long, value_name = "MIB")]
    pub plugin_memory_mib: Option<u64>,
    /// Time limit of one plugin call (one batch), in milliseconds (default 10000;
    /// `[plugin] timeout_ms`).
    #[arg(long, value_name = "MS")]
    pub plugin_timeout_ms: Option<u64>,
    /// Rows per plugin call (default 1024; `[plugin] batch_rows`). In `run` a call never
    /// spans two segments, so at most `--segment-rows`.
    #[arg(long, value_name = "N")]
    pub plugin_batch_rows: Option<usize>,
    /// Bytes of input rows per plugin call; a larger row goes alone (default 16 MiB;
    /// `[plugin] batch_bytes`).
    #[arg(long, value_name = "BYTES")]
    pub plugin_batch_bytes: Option<usize>,
    /// Refuse the plugin unless its SHA-256 digest is this (`[plugin] sha256`).
    #[arg(long, value_name = "HEX")]
    pub plugin_sha256: Option<String>,
    /// Where compiled plugins are cached (default: $STAGEPUSH_CACHE_DIR, else
    /// ~/.cache/stagepush).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl PluginFlags {
    /// The flags given, applied over `plugin` (the config file's section or the defaults).
    pub fn apply(&self, plugin: &mut PluginSection) {
        for (k, v) in &self.plugin_config {
            plugin.config.insert(k.clone(), v.clone());
        }
        if let Some(mib) = self.plugin_memory_mib {
            plugin.memory_mib = mib;
        }
        if let Some(ms) = self.plugin_timeout_ms {
            plugin.timeout_ms = ms;
        }
        if let Some(rows) = self.plugin_batch_rows {
            plugin.batch_rows = rows;
        }
        if let Some(bytes) = self.plugin_batch_bytes {
            plugin.batch_bytes = bytes;
        }
        if self.plugin_sha256.is_some() {
            plugin.sha256 = self.plugin_sha256.clone();
        }
    }

    /// The `[plugin]` settings of a command without a config file: the defaults with the
    /// flags applied.
    pub fn section(&self) -> PluginSection {
        let mut plugin = PluginSection::default();
        self.apply(&mut plugin);
        plugin
    }

    /// The compiled-plugin cache: `--cache-dir`, else the default.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(stagepush::plugin::default_cache_dir)
    }
}

/// `KEY=VALUE`, the key trimmed and not empty.
pub fn parse_key_value(s: &str) -> Result<(String, String), KeyValueError> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(KeyValueError(s.to_string())),
    }
}

/// A `--plugin-config` value that is not `KEY=VALUE`.
#[derive(Debug, thiserror::Error)]
#[error("expected KEY=VALUE, got `{0}`")]
pub struct KeyValueError(String);

/// The old spelling of a renamed flag was given: the message names the new flag.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RenamedFlag(&'static str);

/// A value parser that refuses every value with `hint` (for a hidden flag keeping a
/// renamed flag's old spelling, so that using it says what to use instead).
pub fn renamed(
    hint: &'static str,
) -> impl Fn(&str) -> Result<String, RenamedFlag> + Clone + Send + Sync + 'static {
    move |_| Err(RenamedFlag(hint))
}

/// `--config` of `plugin info` (plugin settings until 0.x), and of `plugin test` given
/// `KEY=VALUE` ([`config_file`]); `--config` is the TOML file everywhere else.
pub const RENAMED_CONFIG: &str = "renamed: plugin settings are --plugin-config KEY=VALUE \
     (--config is the TOML configuration file of run, retry, serve, status and plugin test)";
/// `--config FILE` of `plugin test`: the TOML file, as everywhere; a `KEY=VALUE` that
/// names no file is the old spelling of `--plugin-config`, refused naming it.
pub fn config_file(value: &str) -> Result<PathBuf, RenamedFlag> {
    let path = PathBuf::from(value);
    if value.contains('=') && !path.exists() {
        return Err(RenamedFlag(RENAMED_CONFIG));
    }
    Ok(path)
}

/// `--batch-rows` of `plugin test` (rows per plugin call); `--batch-rows` is records per
/// request everywhere else.
pub const RENAMED_BATCH_ROWS: &str = "renamed: rows per plugin call are --plugin-batch-rows N \
     (--batch-rows is records per request of run, retry and serve)";
/// `--endpoint` of `plugin test` and `inspect` (the object store's endpoint).
pub const RENAMED_ENDPOINT: &str = "renamed: the object store's endpoint is --stage-endpoint URL \
     (--endpoint is the CluedIn endpoint of run, retry and serve)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_section_and_absent_flags_keep_it() {
        let mut section = PluginSection {
            memory_mib: 64,
            timeout_ms: 5,
            ..PluginSection::default()
        };
        let flags = PluginFlags {
            plugin_config: vec![("region".into(), "EU".into())],
            plugin_memory_mib: Some(512),
            plugin_batch_rows: Some(7),
            ..PluginFlags::default()
        };
        flags.apply(&mut section);
        assert_eq!(section.memory_mib, 512);
        assert_eq!(section.timeout_ms, 5);
        assert_eq!(section.batch_rows, 7);
        assert_eq!(section.batch_bytes, PluginSection::default().batch_bytes);
        assert_eq!(section.config.get("region").map(String::as_str), Some("EU"));
    }

    #[test]
    fn key_values_need_a_key() {
        assert_eq!(
            parse_key_value(" a =b=c").unwrap(),
            ("a".to_string(), "b=c".to_string())
        );
        assert_eq!(
            parse_key_value("=x").unwrap_err().to_string(),
            "expected KEY=VALUE, got `=x`"
        );
    }
}
