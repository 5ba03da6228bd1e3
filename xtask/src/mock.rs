//! The local CluedIn stand-in (`stagepush mock-cluedin`) as a child process.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::Result;

/// A running `stagepush mock-cluedin`, killed on drop.
pub struct Mock {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
}

impl Mock {
    pub fn start(bin: &Path, token: &str, store: Option<&Path>, flags: &[&str]) -> Result<Mock> {
        let mut cmd = Command::new(bin);
        cmd.args(["mock-cluedin", "--listen", "127.0.0.1:0"])
            .env("STAGEPUSH_MOCK_TOKEN", token)
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(store) = store {
            cmd.arg("--store").arg(store);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start the mock: {e}"))?;
        let stdout = child.stdout.take().ok_or("no mock stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("reading the mock's address: {e}"))?;
        let base_url = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line from the mock: {line:?}"))?
            .to_string();
        Ok(Mock { child, base_url })
    }

    pub fn endpoint(&self, id: &str) -> String {
        format!("{}/upload/api/endpoint/{id}", self.base_url)
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
