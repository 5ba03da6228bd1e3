//! Builds the Python plugins of plugins/ (issue 7): every `plugins/<name>-python/` folder
//! with an `app.py` becomes `<out_dir>/<name>-python.wasm`.
//!
//! - The build tool, `componentize-py` (pinned), is installed with pip into a virtualenv at
//!   `<target>/plugin-tools/python-venv`, once: later builds, offline ones included, reuse it
//!   (pip is not called when the venv already holds the pinned version).
//! - `componentize-py -d wit/since_v0.2.0 -w transformer componentize app -p <plugin> -p
//!   plugins/sdk-python -o <out>`: the app module `app` defines `Plugin` (through the SDK's
//!   `export`); the SDK imports the bindings componentize-py generates into the component
//!   (`wit_world`, `componentize_py_types`), so nothing is generated into the source tree.
//!   The SDK implements contract 0.2.0 (`wit/since_v0.2.0`): its output is packed into byte
//!   columns, which componentize-py copies in one piece instead of value by value.
//! - A component newer than every input (the plugin's and the SDK's files, the WIT, the
//!   venv's componentize-py) is not rebuilt: a Python build takes ~30 s.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::{Result, root, run, target_dir};

/// componentize-py release the plugins are built with (builds offline once installed).
const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The folder under `wit/` of the contract version the Python SDK implements.
const CONTRACT_DIR: &str = "since_v0.2.0";

/// The world of the contract the plugins implement.
const WORLD: &str = "transformer";

/// Builds every python plugin into `out_dir`; returns the components written.
pub(crate) fn build(out_dir: &Path) -> Result<Vec<PathBuf>> {
    let root = root();
    let plugins = python_plugins(&root.join("plugins"))?;
    if plugins.is_empty() {
        return Ok(Vec::new());
    }
    let tool = ensure_componentize_py()?;
    let sdk = root.join("plugins").join("sdk-python");
    let wit = root.join("wit").join(CONTRACT_DIR);
    let mut outputs = Vec::new();
    for (name, dir) in plugins {
        let out = out_dir.join(format!("{name}.wasm"));
        let mut inputs = files_under(&dir)?;
        inputs.extend(files_under(&sdk)?);
        inputs.extend(files_under(&wit)?);
        inputs.push(tool.clone());
        if is_up_to_date(&out, &inputs) {
            eprintln!("xtask: {} is up to date", out.display());
            outputs.push(out);
            continue;
        }
        let tmp = out_dir.join(format!(".{name}.wasm.tmp"));
        let _ = fs::remove_file(&tmp);
        run(Command::new(&tool)
            .arg("-q")
            .arg("-d")
            .arg(&wit)
            .args(["-w", WORLD, "componentize", "app", "-p"])
            .arg(&dir)
            .arg("-p")
            .arg(&sdk)
            .arg("-o")
            .arg(&tmp)
            // Only the two folders above: no site-packages of a surrounding venv.
            .env_remove("VIRTUAL_ENV")
            .env("PYTHONDONTWRITEBYTECODE", "1"))?;
        fs::rename(&tmp, &out).map_err(|e| format!("{}: {e}", out.display()))?;
        outputs.push(out);
    }
    Ok(outputs)
}

/// `(name, folder)` of every `plugins/<name>-python/` folder holding an `app.py`.
fn python_plugins(plugins: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(plugins).map_err(|e| format!("{}: {e}", plugins.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.ends_with("-python") && name != "sdk-python" && path.join("app.py").is_file() {
            found.push((name, path));
        }
    }
    found.sort();
    Ok(found)
}

/// The venv's `componentize-py`, installing the pinned version when it is missing or another
/// version.
pub(crate) fn ensure_componentize_py() -> Result<PathBuf> {
    let venv = target_dir().join("plugin-tools").join("python-venv");
    let bin = venv.join(if cfg!(windows) { "Scripts" } else { "bin" });
    let tool = bin.join(exe("componentize-py"));
    if installed_version(&tool).as_deref() == Some(COMPONENTIZE_PY_VERSION) {
        return Ok(tool);
    }
    let python = bin.join(exe("python"));
    if !python.is_file() {
        fs::create_dir_all(venv.parent().unwrap_or(&venv))
            .map_err(|e| format!("{}: {e}", venv.display()))?;
        let system = if cfg!(windows) { "python" } else { "python3" };
        run(Command::new(system).args(["-m", "venv"]).arg(&venv))?;
    }
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--quiet",
        &format!("componentize-py=={COMPONENTIZE_PY_VERSION}"),
    ]))?;
    match installed_version(&tool) {
        Some(v) if v == COMPONENTIZE_PY_VERSION => Ok(tool),
        v => Err(format!(
            "{}: expected componentize-py {COMPONENTIZE_PY_VERSION}, found {v:?}",
            tool.display()
        )),
    }
}

fn exe(name: &str) -> String {
    if cfg!(windows) {
        format!("{name}.exe")
    } else {
        name.to_string()
    }
}

/// `componentize-py --version` (`componentize-py 0.25.1`) → `0.25.1`.
fn installed_version(tool: &Path) -> Option<String> {
    if !tool.is_file() {
        return None;
    }
    let out = Command::new(tool).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().last()?.to_string();
    out.status.success().then_some(version)
}

/// Every file under `dir` (recursively), skipping `__pycache__` and hidden entries.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let entry = entry.map_err(|e| e.to_string())?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name == "__pycache__" {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    Ok(files)
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// True when `out` exists and is newer than every input.
fn is_up_to_date(out: &Path, inputs: &[PathBuf]) -> bool {
    let Some(built) = modified(out) else {
        return false;
    };
    inputs
        .iter()
        .all(|i| modified(i).is_some_and(|m| m <= built))
}
