//! Project tasks: `cargo xtask demo | test | plugins | bench [plugin|run]`.
//!
//! Everything a fresh machine needs is installed from here (the wasm32-wasip2 target,
//! later the storage emulators), so `cargo xtask test` is the whole CI.

use std::env;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

type Result<T = ()> = std::result::Result<T, String>;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  demo             build everything and run the pipeline on a generated sample stage
  test             install what the tests need, build the plugins, run every test
  plugins          build every plugin in plugins/ into <target>/plugins/<name>.wasm
  bench [plugin]   benchmarks (release build); `plugin`: decode -> plugin -> JSON
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("plugins") => build_plugins().map(|_| ()),
        Some("test") => test(&args[1..]),
        Some("demo") => demo(),
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

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
fn target_dir() -> PathBuf {
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

fn plugin_dir() -> PathBuf {
    target_dir().join("plugins")
}

fn run(cmd: &mut Command) -> Result {
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

fn cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
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
fn build_plugins() -> Result<Vec<PathBuf>> {
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

fn test(extra: &[String]) -> Result {
    build_plugins()?;
    let root = root();
    // The Rust SDK's own unit tests run natively.
    run(cargo()
        .current_dir(root.join("plugins"))
        .env("CARGO_TARGET_DIR", target_dir().join("plugins-build"))
        .args(["test", "--release", "-p", "stagepush-plugin"]))?;
    run(cargo()
        .current_dir(&root)
        .env("STAGEPUSH_TEST_PLUGINS", plugin_dir())
        .args(["test", "--release", "--workspace"])
        .args(extra))
}

fn stagepush_bin() -> Result<PathBuf> {
    run(cargo()
        .current_dir(root())
        .args(["build", "--release", "-p", "stagepush"]))?;
    Ok(target_dir().join("release").join("stagepush"))
}

fn demo() -> Result {
    let plugins = build_plugins()?;
    let bin = stagepush_bin()?;
    let plugin = plugins
        .iter()
        .find(|p| p.file_stem() == Some(OsStr::new("customer-rust")))
        .ok_or("the customer-rust plugin was not built")?;
    let demo_dir = target_dir().join("demo");
    let stage = demo_dir.join("stage");
    let _ = std::fs::remove_dir_all(&demo_dir);
    run(Command::new(&bin)
        .args(["sample-stage", "--files", "4", "--rows", "100000", "--out"])
        .arg(&stage))?;
    eprintln!("\nxtask: the customer plugin's records for the first rows of the sample stage:\n");
    run(Command::new(&bin)
        .args(["plugin", "test"])
        .arg(plugin)
        .arg(&stage)
        .args(["--limit", "20"]))?;
    eprintln!("\nxtask: sample stage at {}", stage.display());
    Ok(())
}

fn bench(args: &[String]) -> Result {
    let which = args.first().map(String::as_str).unwrap_or("plugin");
    match which {
        "plugin" => {
            build_plugins()?;
            run(cargo()
                .current_dir(root())
                .env("STAGEPUSH_TEST_PLUGINS", plugin_dir())
                .env("STAGEPUSH_BENCH_DIR", target_dir().join("bench"))
                .args([
                    "bench",
                    "--profile",
                    "release",
                    "-p",
                    "stagepush",
                    "--bench",
                    "plugin",
                ]))
        }
        other => Err(format!("unknown benchmark `{other}` (known: plugin)")),
    }
}
