//! `stagepush plugin new NAME --lang rust|python|js`: a plugin project that builds and passes
//! its own test without edits.
//!
//! Every project has the same shape, whatever the language:
//!
//! | file | what it is |
//! |---|---|
//! | the mapping (`src/lib.rs`, `src/app.py`, `src/app.js`) | an example transform to edit |
//! | the SDK (`stagepush-plugin/`, `src/stagepush_plugin.py`, `src/stagepush-plugin.js` + `.d.ts`) | a copy of the SDK this stagepush was built with |
//! | `wit/since_vX.Y.Z/transform.wit` | the contract the component implements ([`Language::contract_dir`]) |
//! | `sample.parquet` | five Snowflake-style rows ([`sample`]) |
//! | `expected.ndjson` | the records the example mapping makes of them |
//! | `Makefile` | `make build` → `build/NAME.wasm`; `make test` checks it against `expected.ndjson` |
//! | `README.md`, `.gitignore` (+ `Cargo.toml` / `package.json`) | |
//!
//! The SDKs and the contract are compiled into the binary from `plugins/sdk-*` and `wit/`, so a
//! project made by a `stagepush` binary always matches the contract that binary runs, and
//! needs nothing from this repository.

pub mod sample;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::plugin::ContractVersion;

/// The componentize-py release a Python project pins (the one `cargo xtask plugins` uses).
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The ComponentizeJS release a JS project pins (the one `cargo xtask plugins` uses).
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";

/// Longest plugin name accepted.
pub const MAX_NAME_LEN: usize = 64;

/// The language of a new plugin project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// A Rust crate built for `wasm32-wasip2` with the `stagepush-plugin` SDK.
    Rust,
    /// A Python module built with componentize-py.
    Python,
    /// A JavaScript module built with ComponentizeJS.
    Js,
}

impl Language {
    /// The contract a project in this language implements: the one its SDK builds
    /// for. Every SDK builds for 0.2.0, whose packed output crosses the boundary in one
    /// copy per column (this host still runs plugins built for 0.1.0).
    pub fn contract(self) -> ContractVersion {
        match self {
            Language::Rust | Language::Python | Language::Js => ContractVersion::V0_2_0,
        }
    }

    /// The folder of [`Language::contract`] under `wit/` (`since_vX.Y.Z`).
    pub fn contract_dir(self) -> String {
        self.contract().wit_dir()
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Js => "js",
        })
    }
}

/// Why a project could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot name a crate, a package and a file.
    #[error(
        "invalid plugin name {name:?}: {reason} (use lower-case letters, digits and '-', starting with a letter)"
    )]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The target folder exists and is not empty.
    #[error("{} already exists and is not empty: choose another --dir or remove it", .dir.display())]
    NotEmpty {
        /// The folder.
        dir: PathBuf,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}", .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The sample Parquet file could not be written.
    #[error("cannot write the sample {}: {source}", .path.display())]
    Sample {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: sample::SampleError,
    },
}

/// What [`new_plugin`] made.
#[derive(Debug)]
pub struct Project {
    /// The project folder.
    pub dir: PathBuf,
    /// The files written, relative to `dir`, in writing order.
    pub files: Vec<PathBuf>,
    /// The component `make build` writes, relative to `dir`.
    pub component: PathBuf,
}

/// Checks that `name` can be a crate, npm package, Python project and file name.
pub fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let bad = |reason: &str| {
        Err(ScaffoldError::InvalidName {
            name: name.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad(&format!("it is longer than {MAX_NAME_LEN} characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return bad("it must start with a lower-case letter");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return bad("it may only hold lower-case letters, digits and '-'");
    }
    if name.ends_with('-') || name.contains("--") {
        return bad("'-' must separate words");
    }
    // Names the SDK crate or the SDK module already take.
    if matches!(name, "stagepush-plugin" | "test" | "build") {
        return bad("it is reserved");
    }
    Ok(())
}

/// Writes a new plugin project `name` in `lang` into `dir` (made if missing; must be empty).
pub fn new_plugin(name: &str, lang: Language, dir: &Path) -> Result<Project, ScaffoldError> {
    check_name(name)?;
    if let Ok(mut entries) = std::fs::read_dir(dir)
        && entries.next().is_some()
    {
        return Err(ScaffoldError::NotEmpty {
            dir: dir.to_owned(),
        });
    }
    let contract_dir = lang.contract_dir();
    let vars = Vars {
        name,
        crate_name: &name.replace('-', "_"),
        contract_dir: &contract_dir,
    };
    // (path in the project, contents): templates are rendered, SDK files copied as they are.
    let mut files: Vec<(String, String)> = Vec::new();
    let mut add = |path: &str, contents: String| files.push((path.to_owned(), contents));
    add(
        &format!("wit/{contract_dir}/transform.wit"),
        lang.contract().wit().to_owned(),
    );
    add("expected.ndjson", vars.render(templates::EXPECTED));
    match lang {
        Language::Rust => {
            use templates::rust::*;
            add("Cargo.toml", vars.render(CARGO_TOML));
            add("src/lib.rs", vars.render(LIB_RS));
            add("Makefile", vars.render(MAKEFILE));
            add("README.md", vars.render(README));
            add(".gitignore", GITIGNORE.to_owned());
            add("stagepush-plugin/Cargo.toml", vars.render(SDK_CARGO_TOML));
            for (file, source) in sdk::RUST {
                let source = if *file == "lib.rs" {
                    sdk::rust_lib_with_local_wit(source)
                } else {
                    (*source).to_owned()
                };
                add(&format!("stagepush-plugin/src/{file}"), source);
            }
        }
        Language::Python => {
            use templates::python::*;
            add("src/app.py", vars.render(APP_PY));
            add("src/stagepush_plugin.py", sdk::PYTHON.to_owned());
            add("requirements.txt", vars.render(REQUIREMENTS));
            add("Makefile", vars.render(MAKEFILE));
            add("README.md", vars.render(README));
            add(".gitignore", GITIGNORE.to_owned());
        }
        Language::Js => {
            use templates::js::*;
            add("src/app.js", vars.render(APP_JS));
            add("src/stagepush-plugin.js", sdk::JS.to_owned());
            add("src/stagepush-plugin.d.ts", sdk::JS_TYPES.to_owned());
            add("package.json", vars.render(PACKAGE_JSON));
            add("Makefile", vars.render(MAKEFILE));
            add("README.md", vars.render(README));
            add(".gitignore", GITIGNORE.to_owned());
        }
    }
    let mut written = Vec::new();
    for (rel, contents) in files {
        let rel = PathBuf::from(rel);
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| ScaffoldError::Io {
                path: parent.to_owned(),
                source,
            })?;
        }
        std::fs::write(&path, contents).map_err(|source| ScaffoldError::Io {
            path: path.clone(),
            source,
        })?;
        written.push(rel);
    }
    let sample_path = dir.join("sample.parquet");
    sample::write_sample(&sample_path).map_err(|source| ScaffoldError::Sample {
        path: sample_path.clone(),
        source,
    })?;
    written.push(PathBuf::from("sample.parquet"));
    Ok(Project {
        dir: dir.to_owned(),
        files: written,
        component: PathBuf::from(format!("build/{name}.wasm")),
    })
}

/// The values templates refer to as `{{name}}`, `{{crate_name}}` and `{{contract_dir}}`.
struct Vars<'a> {
    name: &'a str,
    crate_name: &'a str,
    contract_dir: &'a str,
}

impl Vars<'_> {
    fn render(&self, template: &str) -> String {
        template
            .replace("{{name}}", self.name)
            .replace("{{crate_name}}", self.crate_name)
            .replace("{{contract_dir}}", self.contract_dir)
            .replace("{{componentize_py}}", COMPONENTIZE_PY_VERSION)
            .replace("{{componentize_js}}", COMPONENTIZE_JS_VERSION)
            .replace("{{stagepush_version}}", env!("CARGO_PKG_VERSION"))
    }
}

/// The SDKs, as built into this binary.
mod sdk {
    /// The Rust SDK's source files (`plugins/sdk-rust/src/`), by file name.
    pub const RUST: &[(&str, &str)] = &[
        (
            "batch.rs",
            include_str!("../../../plugins/sdk-rust/src/batch.rs"),
        ),
        (
            "intern.rs",
            include_str!("../../../plugins/sdk-rust/src/intern.rs"),
        ),
        (
            "json.rs",
            include_str!("../../../plugins/sdk-rust/src/json.rs"),
        ),
        (
            "lib.rs",
            include_str!("../../../plugins/sdk-rust/src/lib.rs"),
        ),
        (
            "out.rs",
            include_str!("../../../plugins/sdk-rust/src/out.rs"),
        ),
        (
            "packed.rs",
            include_str!("../../../plugins/sdk-rust/src/packed.rs"),
        ),
        (
            "runtime.rs",
            include_str!("../../../plugins/sdk-rust/src/runtime.rs"),
        ),
        (
            "schema.rs",
            include_str!("../../../plugins/sdk-rust/src/schema.rs"),
        ),
        (
            "testing.rs",
            include_str!("../../../plugins/sdk-rust/src/testing.rs"),
        ),
        (
            "value.rs",
            include_str!("../../../plugins/sdk-rust/src/value.rs"),
        ),
    ];

    /// The Python SDK module.
    pub const PYTHON: &str = include_str!("../../../plugins/sdk-python/stagepush_plugin.py");

    /// The JS SDK module and its TypeScript declarations.
    pub const JS: &str = include_str!("../../../plugins/sdk-js/index.js");
    pub const JS_TYPES: &str = include_str!("../../../plugins/sdk-js/index.d.ts");

    /// In the repository the SDK reads the contract from `../../wit/`; in a project, from the
    /// project's `wit/` beside the SDK folder.
    pub const REPO_WIT_PATH: &str = "path: \"../../wit/since_v0.2.0\"";
    pub const PROJECT_WIT_PATH: &str = "path: \"../wit/since_v0.2.0\"";

    pub fn rust_lib_with_local_wit(source: &str) -> String {
        source.replace(REPO_WIT_PATH, PROJECT_WIT_PATH)
    }
}

/// The project templates (`templates/`), rendered by [`Vars::render`].
mod templates {
    /// The records the example mapping makes of `sample.parquet` (same in every language).
    pub const EXPECTED: &str = include_str!("templates/expected.ndjson");

    pub mod rust {
        pub const CARGO_TOML: &str = include_str!("templates/rust/Cargo.toml.in");
        pub const SDK_CARGO_TOML: &str = include_str!("templates/rust/sdk-Cargo.toml.in");
        pub const LIB_RS: &str = include_str!("templates/rust/lib.rs.in");
        pub const MAKEFILE: &str = include_str!("templates/rust/Makefile.in");
        pub const README: &str = include_str!("templates/rust/README.md.in");
        pub const GITIGNORE: &str = "/target\n/build\n";
    }

    pub mod python {
        pub const APP_PY: &str = include_str!("templates/python/app.py.in");
        pub const REQUIREMENTS: &str = include_str!("templates/python/requirements.txt.in");
        pub const MAKEFILE: &str = include_str!("templates/python/Makefile.in");
        pub const README: &str = include_str!("templates/python/README.md.in");
        pub const GITIGNORE: &str = "/build\n__pycache__/\n";
    }

    pub mod js {
        pub const APP_JS: &str = include_str!("templates/js/app.js.in");
        pub const PACKAGE_JSON: &str = include_str!("templates/js/package.json.in");
        pub const MAKEFILE: &str = include_str!("templates/js/Makefile.in");
        pub const README: &str = include_str!("templates/js/README.md.in");
        pub const GITIGNORE: &str = "/build\n/node_modules\n";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_crate_package_and_file_names() {
        for good in ["orders", "customer-v2", "a1"] {
            check_name(good).unwrap();
        }
        for (bad, why) in [
            ("", "empty"),
            ("Orders", "start with a lower-case letter"),
            ("1orders", "start with a lower-case letter"),
            ("my_plugin", "only hold"),
            ("a/b", "only hold"),
            ("../x", "start with"),
            ("orders-", "separate words"),
            ("a--b", "separate words"),
            ("stagepush-plugin", "reserved"),
        ] {
            let message = check_name(bad).unwrap_err().to_string();
            assert!(message.contains(why), "{bad:?}: {message}");
            assert!(message.contains(&format!("{bad:?}")), "{message}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert!(
            check_name(&long)
                .unwrap_err()
                .to_string()
                .contains("longer than 64 characters")
        );
    }

    #[test]
    fn every_rust_sdk_source_file_is_built_in() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk-rust/src");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let built_in: Vec<String> = sdk::RUST.iter().map(|(f, _)| f.to_string()).collect();
        assert_eq!(built_in, on_disk, "update scaffold::sdk::RUST");
    }

    #[test]
    fn the_rust_sdk_reads_the_projects_wit() {
        let (_, lib) = sdk::RUST.iter().find(|(f, _)| *f == "lib.rs").unwrap();
        assert!(
            lib.contains(sdk::REPO_WIT_PATH),
            "the SDK's bindgen path moved"
        );
        let local = sdk::rust_lib_with_local_wit(lib);
        assert!(local.contains(sdk::PROJECT_WIT_PATH));
        assert!(!local.contains(sdk::REPO_WIT_PATH));
    }

    /// A project gets the contract its SDK builds for in this repository.
    #[test]
    fn each_language_gets_the_contract_its_sdk_builds_for() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
        let rust = read("plugins/sdk-rust/src/lib.rs");
        let python = read("xtask/src/plugins_python.rs");
        let js = read("xtask/src/plugins_js.rs");
        for (lang, build, quoted) in [
            (
                Language::Rust,
                &rust,
                format!("wit/{}\"", Language::Rust.contract_dir()),
            ),
            (
                Language::Python,
                &python,
                format!("\"{}\"", Language::Python.contract_dir()),
            ),
            (
                Language::Js,
                &js,
                format!("\"{}\"", Language::Js.contract_dir()),
            ),
        ] {
            assert!(
                build.contains(&quoted),
                "{lang}: its SDK does not build for {}",
                lang.contract_dir()
            );
            let dir = lang.contract_dir();
            let version = dir.trim_start_matches("since_v");
            assert!(
                lang.contract()
                    .wit()
                    .contains(&format!("package stagepush:transform@{version};")),
                "{lang}: the built-in WIT is not {dir}'s"
            );
        }
    }

    #[test]
    fn the_project_pins_the_tools_the_xtask_builds_with() {
        let xtask = Path::new(env!("CARGO_MANIFEST_DIR")).join("../xtask/src");
        let py = std::fs::read_to_string(xtask.join("plugins_python.rs")).unwrap();
        assert!(
            py.contains(&format!(
                "COMPONENTIZE_PY_VERSION: &str = \"{COMPONENTIZE_PY_VERSION}\""
            )),
            "scaffold::COMPONENTIZE_PY_VERSION differs from the xtask's"
        );
        let js = std::fs::read_to_string(xtask.join("plugins_js.rs")).unwrap();
        assert!(
            js.contains(&format!(
                "COMPONENTIZE_JS_VERSION: &str = \"{COMPONENTIZE_JS_VERSION}\""
            )),
            "scaffold::COMPONENTIZE_JS_VERSION differs from the xtask's"
        );
    }

    #[test]
    fn every_template_placeholder_is_filled() {
        let vars = Vars {
            name: "orders-v2",
            crate_name: "orders_v2",
            contract_dir: "since_v0.2.0",
        };
        let all = [
            templates::EXPECTED,
            templates::rust::CARGO_TOML,
            templates::rust::SDK_CARGO_TOML,
            templates::rust::LIB_RS,
            templates::rust::MAKEFILE,
            templates::rust::README,
            templates::python::APP_PY,
            templates::python::REQUIREMENTS,
            templates::python::MAKEFILE,
            templates::python::README,
            templates::js::APP_JS,
            templates::js::PACKAGE_JSON,
            templates::js::MAKEFILE,
            templates::js::README,
        ];
        for template in all {
            let out = vars.render(template);
            assert!(!out.contains("{{"), "unfilled placeholder in:\n{out}");
        }
    }

    #[test]
    fn a_project_goes_only_into_an_empty_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p");
        let project = new_plugin("orders", Language::Python, &dir).unwrap();
        assert!(project.files.iter().any(|f| f == Path::new("src/app.py")));
        assert!(dir.join("sample.parquet").is_file());
        let err = new_plugin("orders", Language::Python, &dir).unwrap_err();
        assert!(matches!(err, ScaffoldError::NotEmpty { .. }), "{err}");
        assert!(err.to_string().contains("not empty"), "{err}");
    }

    #[test]
    fn the_makefile_recipes_start_with_tabs() {
        for makefile in [
            templates::rust::MAKEFILE,
            templates::python::MAKEFILE,
            templates::js::MAKEFILE,
        ] {
            for line in makefile.lines() {
                assert!(
                    !line.starts_with("  ") && !line.starts_with(" \t"),
                    "a recipe line indented with spaces: {line:?}"
                );
            }
        }
    }
}
