//! `plugin cache list|prune`: what the compiled-plugin cache holds, and removing what is no
//! longer used (see `stagepush::plugin::cache_admin`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use stagepush::plugin::cache_admin::{self, CacheEntry, PruneRule};

use crate::cli::exit::Outcome;
use crate::cli::inspect_cmd::human_bytes;

#[derive(Subcommand)]
pub enum CacheCommand {
    /// List the compiled plugins: digest, engine, size and last use, most recent first.
    List(CacheDirArg),
    /// Remove compiled plugins: those unused for --older-than DAYS, all but the --keep N
    /// most recently used, or --all (and always interrupted writes). A removed plugin is
    /// compiled again at its next use.
    Prune(PruneArgs),
}

#[derive(Args)]
pub struct CacheDirArg {
    /// The cache (default: $STAGEPUSH_CACHE_DIR, else ~/.cache/stagepush).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl CacheDirArg {
    fn dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(stagepush::plugin::default_cache_dir)
    }
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("rule").required(true).multiple(false)))]
pub struct PruneArgs {
    #[command(flatten)]
    pub cache: CacheDirArg,
    /// Remove the compiled plugins not used for DAYS days.
    #[arg(long, value_name = "DAYS", group = "rule")]
    pub older_than: Option<u64>,
    /// Keep only the N most recently used compiled plugins.
    #[arg(long, value_name = "N", group = "rule")]
    pub keep: Option<usize>,
    /// Remove every compiled plugin.
    #[arg(long, group = "rule")]
    pub all: bool,
}

const SECS_PER_DAY: u64 = 24 * 3600;

pub fn run(cmd: CacheCommand) -> anyhow::Result<ExitCode> {
    let now = SystemTime::now();
    let mut out = std::io::stdout().lock();
    match cmd {
        CacheCommand::List(args) => {
            let dir = args.dir();
            let entries = cache_admin::list(&dir)?;
            writeln!(
                out,
                "{} compiled plugins in {} ({})",
                entries.len(),
                dir.display(),
                human_bytes(total(&entries))
            )?;
            if !entries.is_empty() {
                writeln!(
                    out,
                    "{:<64}  {:<16}  {:>10}  last used",
                    "sha256", "engine", "size"
                )?;
            }
            for e in &entries {
                writeln!(
                    out,
                    "{:<64}  {:<16}  {:>10}  {}",
                    e.digest,
                    e.engine,
                    human_bytes(e.bytes),
                    age(now, e.last_used)
                )?;
            }
        }
        CacheCommand::Prune(args) => {
            let rule = match (args.older_than, args.keep) {
                (Some(days), _) => {
                    PruneRule::UnusedFor(Duration::from_secs(days.saturating_mul(SECS_PER_DAY)))
                }
                (None, Some(n)) => PruneRule::KeepNewest(n),
                (None, None) => PruneRule::All,
            };
            let dir = args.cache.dir();
            let pruned = cache_admin::prune(&dir, rule, now)?;
            writeln!(
                out,
                "removed {} compiled plugins ({}) from {}; kept {} ({})",
                pruned.removed.len(),
                human_bytes(total(&pruned.removed) + pruned.partial_bytes),
                dir.display(),
                pruned.kept.len(),
                human_bytes(total(&pruned.kept))
            )?;
            if pruned.partial_files > 0 {
                writeln!(out, "removed {} interrupted writes", pruned.partial_files)?;
            }
        }
    }
    Ok(Outcome::Done.into())
}

fn total(entries: &[CacheEntry]) -> u64 {
    entries.iter().map(|e| e.bytes).sum()
}

/// `just now`, `5 min ago`, `3 h ago`, `12 days ago`.
fn age(now: SystemTime, then: SystemTime) -> String {
    let secs = now.duration_since(then).unwrap_or_default().as_secs();
    match secs {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..SECS_PER_DAY => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / SECS_PER_DAY),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_read_as_people_say_them() {
        let now = std::time::SystemTime::now();
        let ago = |secs| super::age(now, now - std::time::Duration::from_secs(secs));
        assert_eq!(ago(5), "just now");
        assert_eq!(ago(300), "5 min ago");
        assert_eq!(ago(3 * 3600 + 5), "3 h ago");
        assert_eq!(ago(12 * 86400 + 7), "12 days ago");
    }
}
