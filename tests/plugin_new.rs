//! `stagepush plugin new NAME --lang rust|python|js`: each scaffolded project builds with its
//! language's real toolchain and passes its own `make test` without edits, and that test
//! fails when the records differ from `expected.ndjson`.
//!
//! The toolchains are the ones `cargo xtask test` installs (`STAGEPUSH_TEST_COMPONENTIZE_PY`,
//! `STAGEPUSH_TEST_COMPONENTIZE_JS`); the Rust projects build in one shared target folder
//! (`STAGEPUSH_TEST_SCAFFOLD_TARGET`) so that wit-bindgen is compiled once.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Output, run, stagepush, target_dir, temp_dir};

/// A tool `cargo xtask test` installs, by its environment variable, else under the target.
fn tool(var: &str, under_target: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join(under_target));
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask test` (it installs the plugin toolchains), or set {var}",
        path.display()
    );
    path
}

/// `stagepush plugin new NAME --lang LANG --dir DIR/NAME`.
fn scaffold(dir: &Path, name: &str, lang: &str) -> (PathBuf, Output) {
    let project = dir.join(name);
    let out = run(stagepush(dir)
        .args(["plugin", "new", name, "--lang", lang, "--dir"])
        .arg(&project));
    assert!(out.status.success(), "plugin new: {}", out.stderr);
    (project, out)
}

/// `make TARGET` in `project`, with the built `stagepush` and private caches.
fn make(dir: &Path, project: &Path, target: &str, vars: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new("make");
    cmd.current_dir(project)
        .arg(target)
        .arg(format!("STAGEPUSH={}", env!("CARGO_BIN_EXE_stagepush")))
        .env("STAGEPUSH_CACHE_DIR", dir.join("cache"))
        .env("STAGEPUSH_STATE", dir.join("state"))
        .env_remove("VIRTUAL_ENV")
        .stdin(std::process::Stdio::null());
    for (name, value) in vars {
        cmd.arg(format!("{name}={}", value.display()));
    }
    run(&mut cmd)
}

/// The scaffold's own check passes, then fails once `expected.ndjson` says otherwise;
/// returns what the passing `make test` printed. `contract` is the contract version the
/// language's SDK builds for.
fn passes_its_own_test_and_fails_on_other_records(
    dir: &Path,
    project: &Path,
    name: &str,
    contract: &str,
    vars: &[(&str, &Path)],
) -> Output {
    let out = make(dir, project, "test", vars);
    assert!(
        out.status.success(),
        "make test failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.contains("expect: ok, all 4 records match"),
        "{}",
        out.stderr
    );
    // The sample's null ID is the one row error, named with its row.
    assert!(
        out.stderr.contains("row 4") && out.stderr.contains("ID is null"),
        "{}",
        out.stderr
    );
    let component = project.join(format!("build/{name}.wasm"));
    assert!(component.is_file(), "no {}", component.display());

    // What the plugin says about itself: its name and the config key it declares.
    let info = run(stagepush(dir).args(["plugin", "info"]).arg(&component));
    assert!(info.status.success(), "{}", info.stderr);
    assert!(
        info.stdout.contains(name) && info.stdout.contains("entity-type"),
        "{}",
        info.stdout
    );
    assert!(
        info.stdout
            .contains(&format!("contract:    stagepush:transform@{contract}")),
        "{}",
        info.stdout
    );

    // The configured entity type reaches the records.
    let person = run(stagepush(dir)
        .args(["plugin", "test"])
        .arg(&component)
        .arg(project.join("sample.parquet"))
        .args(["--plugin-config", "entity-type=Person"]));
    assert!(person.status.success(), "{}", person.stderr);
    let types: Vec<String> = person
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["type"].to_string())
        .collect();
    assert_eq!(types, vec!["\"Person\""; 4], "{}", person.stdout);

    // The same test fails when the expected records differ.
    let expected = project.join("expected.ndjson");
    let text = std::fs::read_to_string(&expected).unwrap();
    let changed = text.replacen("ann.lee@example.com", "ann@example.com", 1);
    assert_ne!(changed, text, "expected.ndjson has Ann's email");
    std::fs::write(&expected, changed).unwrap();
    let mismatch = make(dir, project, "test", vars);
    assert!(
        !mismatch.status.success(),
        "make test passed on a wrong expectation"
    );
    assert!(
        mismatch.stderr.contains("expect: MISMATCH"),
        "{}",
        mismatch.stderr
    );
    out
}

/// Every project holds the same sample and expectation, the contract its SDK builds
/// for, and its language's files.
fn assert_layout(project: &Path, contract: &str, files: &[&str]) {
    let wit = format!("wit/since_v{contract}/transform.wit");
    for file in [
        "sample.parquet",
        "expected.ndjson",
        wit.as_str(),
        "Makefile",
        "README.md",
        ".gitignore",
    ]
    .iter()
    .chain(files)
    {
        assert!(project.join(file).is_file(), "no {file}");
    }
}

#[test]
fn a_new_rust_plugin_builds_and_passes_its_own_tests() {
    let dir = temp_dir();
    let (project, out) = scaffold(dir.path(), "orders", "rust");
    assert!(out.stdout.contains("make test"), "{}", out.stdout);
    assert_layout(
        &project,
        "0.2.0",
        &[
            "Cargo.toml",
            "src/lib.rs",
            "stagepush-plugin/Cargo.toml",
            "stagepush-plugin/src/lib.rs",
        ],
    );
    let target = std::env::var_os("STAGEPUSH_TEST_SCAFFOLD_TARGET")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("scaffold-build"));
    let cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"));
    let vars = [
        ("CARGO_TARGET_DIR", target.as_path()),
        ("CARGO", cargo.as_path()),
    ];
    // The generated code is as rustfmt writes it, so `cargo fmt` leaves the example alone.
    let fmt = run(Command::new(&cargo)
        .current_dir(&project)
        .args(["fmt", "--check"]));
    assert!(fmt.status.success(), "{}", fmt.stdout);
    let out = passes_its_own_test_and_fails_on_other_records(
        dir.path(),
        &project,
        "orders",
        "0.2.0",
        &vars,
    );
    // `make test` ran the native unit tests first.
    assert!(
        out.stdout.contains("test result: ok. 5 passed"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_new_python_plugin_builds_and_passes_its_own_test() {
    let dir = temp_dir();
    let (project, _) = scaffold(dir.path(), "orders-py", "python");
    assert_layout(
        &project,
        "0.2.0",
        &["src/app.py", "src/stagepush_plugin.py", "requirements.txt"],
    );
    let tool = tool(
        "STAGEPUSH_TEST_COMPONENTIZE_PY",
        "plugin-tools/python-venv/bin/componentize-py",
    );
    passes_its_own_test_and_fails_on_other_records(
        dir.path(),
        &project,
        "orders-py",
        "0.2.0",
        &[("COMPONENTIZE_PY", tool.as_path())],
    );
}

#[test]
fn a_new_js_plugin_builds_and_passes_its_own_test() {
    let dir = temp_dir();
    let (project, _) = scaffold(dir.path(), "orders-js", "js");
    assert_layout(
        &project,
        "0.2.0",
        &[
            "src/app.js",
            "src/stagepush-plugin.js",
            "src/stagepush-plugin.d.ts",
            "package.json",
        ],
    );
    let tool = tool(
        "STAGEPUSH_TEST_COMPONENTIZE_JS",
        "plugin-tools/js/node_modules/.bin/componentize-js",
    );
    passes_its_own_test_and_fails_on_other_records(
        dir.path(),
        &project,
        "orders-js",
        "0.2.0",
        &[("COMPONENTIZE_JS", tool.as_path())],
    );
}

#[test]
fn plugin_new_refuses_bad_names_full_folders_and_unknown_languages() {
    let dir = temp_dir();
    let new = |args: &[&str]| {
        run(stagepush(dir.path())
            .current_dir(dir.path())
            .args(["plugin", "new"])
            .args(args))
    };

    let out = new(&["My_Plugin", "--lang", "rust"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("invalid plugin name \"My_Plugin\": it must start with a lower-case letter"),
        "{}",
        out.stderr
    );
    assert!(!dir.path().join("My_Plugin").exists());

    let full = dir.path().join("full");
    std::fs::create_dir_all(&full).unwrap();
    std::fs::write(full.join("keep.txt"), "mine").unwrap();
    let out = new(&[
        "orders",
        "--lang",
        "python",
        "--dir",
        full.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("already exists and is not empty"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_dir(&full).unwrap().count(),
        1,
        "nothing written"
    );

    let out = new(&["orders", "--lang", "cobol"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("invalid value 'cobol'") && out.stderr.contains("rust, python, js"),
        "{}",
        out.stderr
    );
}
