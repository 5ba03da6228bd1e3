//! Listing and pruning the compiled-plugin cache (`stagepush plugin cache list|prune`).
//!
//! Each entry is one compiled component, `components/{digest}-{engine}.cwasm` (see
//! [`super::cache`]); its modification time is its last use, since a load from the cache
//! touches it. Files `.tmp-*` are writes that were interrupted: prune always removes them.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::PluginError;

/// One compiled plugin in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// SHA-256 of the plugin component (as `plugin info` prints it).
    pub digest: String,
    /// The engine it was compiled for (a hash of the wasmtime version and settings).
    pub engine: String,
    pub path: PathBuf,
    pub bytes: u64,
    /// When it was compiled or last loaded.
    pub last_used: SystemTime,
}

/// What `prune` removes besides interrupted writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneRule {
    /// Every entry.
    All,
    /// Entries not used for this long.
    UnusedFor(Duration),
    /// All but the N most recently used entries.
    KeepNewest(usize),
}

/// What `prune` did.
#[derive(Debug, Default)]
pub struct Pruned {
    pub removed: Vec<CacheEntry>,
    pub kept: Vec<CacheEntry>,
    /// Interrupted writes removed.
    pub partial_files: usize,
    pub partial_bytes: u64,
}

fn components(dir: &Path) -> PathBuf {
    dir.join("components")
}

fn cache_error(path: &Path) -> impl FnOnce(std::io::Error) -> PluginError + '_ {
    move |source| PluginError::Cache {
        path: path.to_path_buf(),
        source,
    }
}

/// Interrupted writes: path and size.
type Partial = Vec<(PathBuf, u64)>;

/// The entries of the cache at `dir`, most recently used first (none when it does not
/// exist), and the interrupted writes.
fn scan(dir: &Path) -> Result<(Vec<CacheEntry>, Partial), PluginError> {
    let folder = components(dir);
    let mut entries = Vec::new();
    let mut partial = Vec::new();
    let read = match std::fs::read_dir(&folder) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((entries, partial)),
        Err(e) => return Err(cache_error(&folder)(e)),
    };
    for item in read {
        let item = item.map_err(cache_error(&folder))?;
        let path = item.path();
        let meta = item.metadata().map_err(cache_error(&path))?;
        if !meta.is_file() {
            continue;
        }
        let name = item.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tmp-") {
            partial.push((path, meta.len()));
            continue;
        }
        let Some((digest, engine)) = name
            .strip_suffix(".cwasm")
            .and_then(|stem| stem.rsplit_once('-'))
        else {
            continue;
        };
        entries.push(CacheEntry {
            digest: digest.to_string(),
            engine: engine.to_string(),
            bytes: meta.len(),
            last_used: meta.modified().map_err(cache_error(&path))?,
            path,
        });
    }
    entries.sort_by(|a, b| b.last_used.cmp(&a.last_used).then(a.path.cmp(&b.path)));
    Ok((entries, partial))
}

/// The compiled plugins cached at `dir`, most recently used first.
pub fn list(dir: &Path) -> Result<Vec<CacheEntry>, PluginError> {
    Ok(scan(dir)?.0)
}

/// Removes what `rule` selects (ages measured from `now`) and every interrupted write.
pub fn prune(dir: &Path, rule: PruneRule, now: SystemTime) -> Result<Pruned, PluginError> {
    let (entries, partial) = scan(dir)?;
    let mut pruned = Pruned::default();
    for (path, bytes) in partial {
        remove(&path)?;
        pruned.partial_files += 1;
        pruned.partial_bytes += bytes;
    }
    for (index, entry) in entries.into_iter().enumerate() {
        let remove_it = match rule {
            PruneRule::All => true,
            PruneRule::UnusedFor(age) => now
                .duration_since(entry.last_used)
                .is_ok_and(|unused| unused >= age),
            PruneRule::KeepNewest(n) => index >= n,
        };
        if remove_it {
            remove(&entry.path)?;
            pruned.removed.push(entry);
        } else {
            pruned.kept.push(entry);
        }
    }
    Ok(pruned)
}

/// Removes a file; one already gone (another prune) is fine.
fn remove(path: &Path) -> Result<(), PluginError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(cache_error(path)(e)),
        _ => Ok(()),
    }
}

/// Marks a cached entry used now (its modification time), so that prune keeps what is in
/// use. A cache that cannot be written keeps its old time: only pruning is affected.
pub(super) fn touch(path: &Path) {
    let touched = std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(SystemTime::now()));
    if let Err(e) = touched {
        tracing::debug!(path = %path.display(), error = %e, "cannot mark the compiled plugin used");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    /// A cache with entries used 0, 10 and 40 days before `now`, and an interrupted write.
    fn cache(dir: &Path, now: SystemTime) -> Vec<PathBuf> {
        let folder = components(dir);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(".tmp-1-ThreadId2"), b"half").unwrap();
        std::fs::write(folder.join("README"), b"not an entry").unwrap();
        [(0u32, "aa"), (10, "bb"), (40, "cc")]
            .iter()
            .map(|(days, digest)| {
                let path = folder.join(format!("{digest}-00000000000000ff.cwasm"));
                std::fs::write(&path, vec![0u8; 10 + *days as usize]).unwrap();
                let file = std::fs::File::options().write(true).open(&path).unwrap();
                file.set_modified(now - DAY * *days).unwrap();
                path
            })
            .collect()
    }

    #[test]
    fn entries_are_listed_most_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        cache(dir.path(), now);
        let entries = list(dir.path()).unwrap();
        let digests: Vec<_> = entries.iter().map(|e| e.digest.as_str()).collect();
        assert_eq!(digests, ["aa", "bb", "cc"]);
        assert_eq!(entries[2].bytes, 50);
        assert_eq!(entries[0].engine, "00000000000000ff");
        assert!(list(&dir.path().join("none")).unwrap().is_empty());
    }

    #[test]
    fn prune_removes_what_its_rule_selects_and_interrupted_writes() {
        let now = SystemTime::now();
        let digests =
            |entries: &[CacheEntry]| entries.iter().map(|e| e.digest.clone()).collect::<Vec<_>>();
        for (rule, removed, kept) in [
            (PruneRule::UnusedFor(DAY * 30), vec!["cc"], vec!["aa", "bb"]),
            (PruneRule::KeepNewest(1), vec!["bb", "cc"], vec!["aa"]),
            (PruneRule::All, vec!["aa", "bb", "cc"], vec![]),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let paths = cache(dir.path(), now);
            let pruned = prune(dir.path(), rule, now).unwrap();
            assert_eq!(digests(&pruned.removed), removed, "{rule:?}");
            assert_eq!(digests(&pruned.kept), kept, "{rule:?}");
            assert_eq!((pruned.partial_files, pruned.partial_bytes), (1, 4));
            assert_eq!(digests(&list(dir.path()).unwrap()), kept);
            let left = paths.iter().filter(|p| p.exists()).count();
            assert_eq!(left, kept.len());
            assert!(components(dir.path()).join("README").exists());
        }
    }
}
