//! Builds the python plugins of plugins/ (issue 7). Not yet: no python plugin is built.

use std::path::{Path, PathBuf};

use crate::Result;

/// Builds every python plugin into `out_dir`; returns the components written.
pub(crate) fn build(out_dir: &Path) -> Result<Vec<PathBuf>> {
    let _ = out_dir;
    Ok(Vec::new())
}
