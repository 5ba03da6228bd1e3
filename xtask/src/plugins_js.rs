//! Builds the JavaScript plugins of plugins/ (issue 7): every `plugins/<name>-js/` folder
//! with an `app.js` becomes `<out_dir>/<name>-js.wasm`.
//!
//! - The build tool, `@bytecodealliance/componentize-js` (pinned), is installed with npm
//!   into `<target>/plugin-tools/js` (a `package.json` with exact versions there), once:
//!   later builds, offline ones included, reuse it.
//! - ComponentizeJS takes one module and resolves relative imports only, so the plugin's
//!   `.js` files are staged in `<target>/plugins-build/js/<name>/` beside a copy of the SDK
//!   (`plugins/sdk-js/index.js` as `stagepush-plugin.js`), with
//!   `from 'stagepush-plugin'` rewritten to `from './stagepush-plugin.js'`.
//! - The JS SDK implements contract 0.2.0 (`wit/since_v0.2.0`, packed output columns), so
//!   the plugins are built against that folder (the Rust plugins are on 0.1.0: the host
//!   runs every version it ships).
//! - `-d http fetch-event`: without it the component imports `wasi:http`, which the host
//!   does not link.
//! - A component newer than every input (the plugin's and the SDK's files, the WIT, the
//!   tool's `package.json`) is not rebuilt: a JS build takes ~45 s.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::{Result, root, run, target_dir};

/// ComponentizeJS release the plugins are built with (0.23.0 builds offline once installed;
/// `--aot` would download at build time, so it is not used).
const COMPONENTIZE_JS_VERSION: &str = "0.23.0";

/// The contract folder under `wit/` the JS SDK (`plugins/sdk-js/index.js`) implements.
const CONTRACT_DIR: &str = "since_v0.2.0";

/// The module name plugins import the SDK by.
const SDK_MODULE: &str = "stagepush-plugin";

/// Builds every js plugin into `out_dir`; returns the components written.
pub(crate) fn build(out_dir: &Path) -> Result<Vec<PathBuf>> {
    let root = root();
    let plugins = js_plugins(&root.join("plugins"))?;
    if plugins.is_empty() {
        return Ok(Vec::new());
    }
    let tools = ensure_componentize_js()?;
    let sdk = root.join("plugins").join("sdk-js").join("index.js");
    let wit = root.join("wit").join(CONTRACT_DIR);
    let mut outputs = Vec::new();
    for (name, dir) in plugins {
        let out = out_dir.join(format!("{name}.wasm"));
        let mut inputs = js_files(&dir)?;
        inputs.push(sdk.clone());
        inputs.extend(files_under(&wit)?);
        inputs.push(tools.package_json.clone());
        if is_up_to_date(&out, &inputs) {
            eprintln!("xtask: {} is up to date", out.display());
            outputs.push(out);
            continue;
        }
        let stage = target_dir().join("plugins-build").join("js").join(&name);
        stage_sources(&dir, &sdk, &stage)?;
        let tmp = out_dir.join(format!(".{name}.wasm.tmp"));
        let _ = fs::remove_file(&tmp);
        run(Command::new("node")
            .arg(&tools.cli)
            .arg("--wit")
            .arg(&wit)
            .args([
                "--world-name",
                "transformer",
                "-d",
                "http",
                "fetch-event",
                "-o",
            ])
            .arg(&tmp)
            .arg(stage.join("app.js")))?;
        if !tmp.is_file() {
            return Err(format!("componentize-js wrote no {}", tmp.display()));
        }
        fs::rename(&tmp, &out).map_err(|e| format!("{}: {e}", out.display()))?;
        outputs.push(out);
    }
    Ok(outputs)
}

/// `(name, folder)` of every `plugins/*-js` folder with an `app.js`, sorted.
fn js_plugins(plugins: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(plugins).map_err(|e| format!("{}: {e}", plugins.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.ends_with("-js") && !name.starts_with("sdk-") && path.join("app.js").is_file() {
            found.push((name, path));
        }
    }
    found.sort();
    Ok(found)
}

/// The installed build tool.
struct Tools {
    /// `componentize-js`'s CLI script (run with `node`).
    cli: PathBuf,
    /// The tool folder's `package.json` (an input of every build).
    package_json: PathBuf,
}

/// Installs ComponentizeJS into `<target>/plugin-tools/js` unless that version is there.
fn ensure_componentize_js() -> Result<Tools> {
    let dir = target_dir().join("plugin-tools").join("js");
    let package_json = dir.join("package.json");
    let module = dir
        .join("node_modules")
        .join("@bytecodealliance")
        .join("componentize-js");
    let cli = module.join("src").join("cli.js");
    let wanted = serde_json::to_string_pretty(&serde_json::json!({
        "name": "stagepush-plugin-tools-js",
        "private": true,
        "description": "Build tools of the JavaScript plugins (written by `cargo xtask plugins`)",
        "dependencies": {
            "@bytecodealliance/componentize-js": COMPONENTIZE_JS_VERSION,
        },
    }))
    .map_err(|e| e.to_string())?
        + "\n";
    let installed = installed_version(&module.join("package.json"));
    let same_manifest = fs::read_to_string(&package_json).is_ok_and(|s| s == wanted);
    if installed.as_deref() == Some(COMPONENTIZE_JS_VERSION) && cli.is_file() {
        if !same_manifest {
            // Keep the manifest exact without reinstalling (no network needed).
            write(&package_json, &wanted)?;
        }
        return Ok(Tools { cli, package_json });
    }
    eprintln!(
        "xtask: installing @bytecodealliance/componentize-js {COMPONENTIZE_JS_VERSION} (npm) \
         into {}",
        dir.display()
    );
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    write(&package_json, &wanted)?;
    run(Command::new(npm()).current_dir(&dir).args([
        "install",
        "--no-audit",
        "--no-fund",
        "--prefer-offline",
    ]))
    .map_err(|e| format!("{e}\n(the JavaScript plugins need Node.js 20+ and npm)"))?;
    match installed_version(&module.join("package.json")) {
        Some(v) if v == COMPONENTIZE_JS_VERSION && cli.is_file() => Ok(Tools { cli, package_json }),
        other => Err(format!(
            "npm installed componentize-js {other:?}, expected {COMPONENTIZE_JS_VERSION} \
             with {}",
            cli.display()
        )),
    }
}

/// The `componentize-js` command npm linked into `node_modules/.bin` (installing the tool
/// if needed), for projects made by `stagepush plugin new --lang js`.
pub(crate) fn componentize_js_bin() -> Result<PathBuf> {
    let tools = ensure_componentize_js()?;
    let dir = tools.package_json.parent().unwrap_or(Path::new("."));
    let bin = dir
        .join("node_modules")
        .join(".bin")
        .join("componentize-js");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!("npm linked no {}", bin.display()))
    }
}

fn npm() -> &'static str {
    if cfg!(windows) { "npm.cmd" } else { "npm" }
}

/// The `version` of an installed package's `package.json`.
fn installed_version(package_json: &Path) -> Option<String> {
    let text = fs::read_to_string(package_json).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["version"].as_str().map(str::to_owned)
}

fn write(path: &Path, text: &str) -> Result {
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Copies the plugin's `.js` files and the SDK into `stage`, resolving the SDK import.
fn stage_sources(plugin: &Path, sdk: &Path, stage: &Path) -> Result {
    let _ = fs::remove_dir_all(stage);
    fs::create_dir_all(stage).map_err(|e| format!("{}: {e}", stage.display()))?;
    let sdk_text = fs::read_to_string(sdk).map_err(|e| format!("{}: {e}", sdk.display()))?;
    write(&stage.join(format!("{SDK_MODULE}.js")), &sdk_text)?;
    for file in js_files(plugin)? {
        let rel = file.strip_prefix(plugin).map_err(|e| e.to_string())?;
        let text = fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        // The SDK sits at the top of the staging folder.
        let depth = rel.components().count() - 1;
        let target = if depth == 0 {
            format!("./{SDK_MODULE}.js")
        } else {
            format!("{}{SDK_MODULE}.js", "../".repeat(depth))
        };
        let text = resolve_sdk_import(&text, &target);
        let dest = stage.join(rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        write(&dest, &text)?;
    }
    Ok(())
}

/// Rewrites `'stagepush-plugin'` / `"stagepush-plugin"` module specifiers (after `from` or
/// `import`) to `target`.
fn resolve_sdk_import(source: &str, target: &str) -> String {
    let mut text = source.to_owned();
    for quote in ['\'', '"'] {
        for keyword in ["from ", "import ", "import("] {
            let pattern = format!("{keyword}{quote}{SDK_MODULE}{quote}");
            let replacement = format!("{keyword}{quote}{target}{quote}");
            text = text.replace(&pattern, &replacement);
        }
    }
    text
}

/// The `.js` / `.mjs` files under `dir` (skipping `node_modules`), sorted.
fn js_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(files_under(dir)?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "js" || e == "mjs"))
        .collect())
}

/// Every file under `dir`, recursively, sorted (skipping `node_modules`).
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let entry = entry.map_err(|e| e.to_string())?;
            let path = entry.path();
            let ty = entry.file_type().map_err(|e| e.to_string())?;
            if ty.is_dir() {
                if entry.file_name() != "node_modules" {
                    todo.push(path);
                }
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// True when `out` exists and is newer than every input.
fn is_up_to_date(out: &Path, inputs: &[PathBuf]) -> bool {
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(built) = modified(out) else {
        return false;
    };
    inputs
        .iter()
        .all(|p| modified(p).is_some_and(|m: SystemTime| m <= built))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_imports_are_resolved() {
        let src = "import { a } from 'stagepush-plugin';\nimport * as b from \"stagepush-plugin\";\n\
                   import 'stagepush-plugin-extra';\n";
        assert_eq!(
            resolve_sdk_import(src, "./stagepush-plugin.js"),
            "import { a } from './stagepush-plugin.js';\n\
             import * as b from \"./stagepush-plugin.js\";\nimport 'stagepush-plugin-extra';\n"
        );
    }
}
