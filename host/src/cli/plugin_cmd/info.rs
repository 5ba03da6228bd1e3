//! `plugin info`: what a plugin says about itself and what its component imports.

use std::process::ExitCode;

use anyhow::Context;
use stagepush::plugin::PluginEngine;

use super::{InfoArgs, cache_dir, engine, load_with};
use crate::cli::PluginOptions;
use crate::cli::exit::Outcome;

pub(super) fn info(args: InfoArgs) -> anyhow::Result<ExitCode> {
    if let Err(e) = args.plugin_options.flags.section().check_limits() {
        eprintln!("error: {e}");
        return Ok(Outcome::Usage.into());
    }
    let engine = engine(&args.plugin_options)?;
    let bytes = std::fs::read(&args.plugin)
        .with_context(|| format!("cannot read plugin {}", args.plugin.display()))?;
    let cached = cache_dir(&args.plugin_options).is_some_and(|dir| {
        stagepush::plugin::is_cached(engine.engine(), &dir, &stagepush::plugin::digest(&bytes))
    });
    let plugin = load_with(&engine, &args.plugin, &args.plugin_options)?;
    let imports = component_imports(&engine, &args.plugin_options, &bytes)?;
    let info = plugin.info();
    println!("name:        {}", info.name);
    println!("version:     {}", info.version);
    if !info.description.is_empty() {
        println!("description: {}", info.description);
    }
    println!(
        "contract:    {}@{}",
        stagepush::bindings::CONTRACT_PACKAGE,
        plugin.contract_version()
    );
    println!(
        "file:        {} ({} bytes)",
        plugin.path().display(),
        plugin.size()
    );
    println!("sha256:      {}", plugin.digest());
    println!("cached:      {}", if cached { "yes" } else { "no" });
    if info.config.is_empty() {
        println!("config:      (none)");
    } else {
        println!("config:");
        for key in &info.config {
            let required = if key.required { " (required)" } else { "" };
            let default = key
                .default_value
                .as_deref()
                .map(|d| format!(" [default: {d}]"))
                .unwrap_or_default();
            println!("  {}{required}{default}: {}", key.name, key.description);
        }
    }
    if imports.is_empty() {
        println!("imports:     (none)");
    } else {
        println!("imports:");
        for import in &imports {
            match stagepush::plugin::import_note(import) {
                Some(note) => println!("  {import} ({note})"),
                None => println!("  {import}"),
            }
        }
    }
    Ok(Outcome::Done.into())
}

/// The names of what the component imports (WASI and host interfaces), sorted. Read from
/// the compiled copy `Plugin::load` just cached; compiled once more with `--no-cache`.
fn component_imports(
    engine: &PluginEngine,
    options: &PluginOptions,
    bytes: &[u8],
) -> anyhow::Result<Vec<String>> {
    use wasmtime::component::{Component, types::ComponentItem};
    let wasm = engine.engine();
    let cached = cache_dir(options)
        .map(|dir| stagepush::plugin::cache_path(wasm, &dir, &stagepush::plugin::digest(bytes)))
        .filter(|path| path.is_file());
    let component = match cached {
        // SAFETY: as in the plugin cache itself: the file is the `Component::serialize`
        // output the cache stored for this digest and engine (wasmtime checks its header).
        Some(path) => unsafe { Component::deserialize_file(wasm, &path) }?,
        None => Component::from_binary(wasm, bytes)?,
    };
    let mut imports: Vec<String> = component
        .component_type()
        .imports(wasm)
        .map(|(name, item)| {
            let kind = match item.ty {
                ComponentItem::ComponentInstance(_) => "",
                ComponentItem::ComponentFunc(_) | ComponentItem::CoreFunc(_) => " (function)",
                ComponentItem::Module(_) | ComponentItem::Component(_) => " (module)",
                ComponentItem::Type(_) | ComponentItem::Resource(_) => " (type)",
            };
            format!("{name}{kind}")
        })
        .collect();
    imports.sort();
    Ok(imports)
}
