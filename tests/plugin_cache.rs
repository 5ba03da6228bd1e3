//! `stagepush plugin cache list|prune` over a private cache (`STAGEPUSH_CACHE_DIR`).

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::util::command::TestCommand;
use crate::util::{files_under, plugin, temp_dir};

/// `stagepush` with `args` and the cache at `cache`.
fn cached(dir: &Path, cache: &Path, args: &[&str]) -> crate::util::Output {
    let mut cmd = TestCommand::new(dir);
    cmd.env("STAGEPUSH_CACHE_DIR", cache).args(args);
    cmd.assert_exit(0)
}

/// The sha256 line of `plugin info`.
fn sha256(dir: &Path, cache: &Path, component: &Path) -> String {
    let mut cmd = TestCommand::new(dir);
    cmd.env("STAGEPUSH_CACHE_DIR", cache)
        .args(["plugin", "info"])
        .arg(component);
    let out = cmd.assert_exit(0);
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("sha256:"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no sha256 line\n{}", cmd.dump(&out)))
}

#[test]
fn list_shows_each_compiled_plugin_and_prune_removes_by_age_count_or_all() {
    let dir = temp_dir();
    let cache = dir.path().join("my-cache");
    let empty = cached(dir.path(), &cache, &["plugin", "cache", "list"]);
    assert!(
        empty.stdout.starts_with("0 compiled plugins in "),
        "{}",
        empty.stdout
    );

    // Loading two plugins compiles and caches them.
    let rust = sha256(dir.path(), &cache, &plugin("customer-rust"));
    let other = sha256(dir.path(), &cache, &plugin("echo-rust"));
    let listed = cached(dir.path(), &cache, &["plugin", "cache", "list"]);
    let lines = listed.stdout_lines();
    assert!(
        lines[0].starts_with("2 compiled plugins in "),
        "{}",
        listed.stdout
    );
    assert!(lines[1].starts_with("sha256"), "{}", listed.stdout);
    for digest in [&rust, &other] {
        let line = lines.iter().find(|l| l.starts_with(digest.as_str()));
        assert!(
            line.is_some_and(|l| l.ends_with("just now")),
            "{digest}\n{}",
            listed.stdout
        );
    }

    // Made unused for 40 days: pruned by --older-than 30, until a load marks it used again.
    let entries = files_under(&cache, Some("cwasm"));
    assert_eq!(entries.len(), 2, "{entries:?}");
    let age = |days: u64| {
        for entry in &entries {
            let file = std::fs::File::options().write(true).open(entry).unwrap();
            file.set_modified(SystemTime::now() - Duration::from_secs(days * 86400))
                .unwrap();
        }
    };
    age(40);
    sha256(dir.path(), &cache, &plugin("customer-rust"));
    let listed = cached(dir.path(), &cache, &["plugin", "cache", "list"]);
    assert!(listed.stdout.contains("40 days ago"), "{}", listed.stdout);
    let pruned = cached(
        dir.path(),
        &cache,
        &["plugin", "cache", "prune", "--older-than", "30"],
    );
    assert!(
        pruned.stdout.starts_with("removed 1 compiled plugins"),
        "{}",
        pruned.stdout
    );
    let listed = cached(dir.path(), &cache, &["plugin", "cache", "list"]);
    assert!(
        listed.stdout.starts_with("1 compiled plugins"),
        "{}",
        listed.stdout
    );
    assert!(listed.stdout.contains(&rust), "{}", listed.stdout);
    assert!(!listed.stdout.contains(&other), "{}", listed.stdout);

    // --keep 1 keeps the one; --all removes it; --cache-dir names the cache too.
    let kept = cached(
        dir.path(),
        &cache,
        &["plugin", "cache", "prune", "--keep", "1"],
    );
    assert!(
        kept.stdout.starts_with("removed 0 compiled plugins"),
        "{}",
        kept.stdout
    );
    let mut all = TestCommand::new(dir.path());
    all.args(["plugin", "cache", "prune", "--all", "--cache-dir"])
        .arg(&cache);
    let out = all.assert_exit(0);
    assert!(
        out.stdout.starts_with("removed 1 compiled plugins"),
        "{}",
        out.stdout
    );
    assert!(files_under(&cache, Some("cwasm")).is_empty());
}

#[test]
fn prune_needs_exactly_one_rule() {
    let dir = temp_dir();
    let mut none = TestCommand::new(dir.path());
    none.args(["plugin", "cache", "prune"]);
    let out = none.assert_exit(2);
    assert!(out.stderr.contains("--older-than"), "{}", none.dump(&out));
    let mut two = TestCommand::new(dir.path());
    two.args(["plugin", "cache", "prune", "--all", "--keep", "3"]);
    let out = two.assert_exit(2);
    assert!(
        out.stderr.contains("cannot be used with"),
        "{}",
        two.dump(&out)
    );
}
