//! A stage's identity: the one spelling under which the delivery state keeps what was
//! delivered from it (`files/<stage-id>/…`, `pending/<stage-id>/…`, where the stage id is
//! a hash of this text). Every spelling of the same stage must give the same identity, or a
//! rerun with `--source DIR/` instead of `--source DIR` would send every record again.
//!
//! - **Local stages**: the absolute path with symlinks, `.`, `..`, repeated and trailing
//!   `/` resolved (`std::fs::canonicalize`), so `DIR`, `DIR/`, `./DIR`, `x/../DIR`,
//!   `/abs/DIR`, `file:///abs/DIR/` and a symlink to `DIR` are one stage. Symlinks are
//!   resolved because the files' own state keys are already their canonical paths (the
//!   listing canonicalizes the stage folder): two spellings that reach the same files must
//!   share their state, and a link that is later pointed elsewhere names other files,
//!   which are new to the state either way. A path that does not exist (yet) is resolved
//!   as far as it exists and the rest is normalised as text.
//! - **Object stores**: the store's canonical URL of the key prefix with exactly one
//!   trailing `/`: `s3://BUCKET/prefix/` (also for `s3a://`, `S3://`, and virtual-hosted
//!   or path-style `https://…amazonaws.com/`), `gs://BUCKET/prefix/` (also
//!   `https://storage.googleapis.com/`), `az://CONTAINER/prefix/` when the URL names no
//!   account (`az://`, `azure://`, `abfs[s]://CONTAINER/`), and
//!   `azure://ACCOUNT.blob.SUFFIX/CONTAINER/prefix/` when it does (`azure://`, `https://`
//!   blob or dfs hosts, `abfs[s]://CONTAINER@ACCOUNT.dfs.SUFFIX/`). `https://` paths are
//!   percent-decoded first (so `%7E` and `~` agree) and host names are lower-cased; a
//!   default port (`:443`) is dropped when the URL is parsed. A key with `//` or a `.`/`..`
//!   segment is refused when the URL is parsed (in S3 `a//b` is another key than `a/b`),
//!   so it never names a stage. A URL naming a single object gets the same trailing `/`:
//!   the identity names a stage, not a URL to fetch.
//!
//! Older versions hashed the spelling as given (local paths made absolute but not
//! normalised). [`legacy`] lists the spellings such a version may have used for the same
//! stage, so that its state is still found (see [`crate::state::stage_key`]).

use std::path::{Component, Path, PathBuf};

use crate::storage::url::{StageUrl, StoreKind};

/// The canonical identity of a local stage at `path` (relative to the working directory).
pub fn local(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    resolve_existing(&absolute).display().to_string()
}

/// `path` (absolute) with its longest existing leading part canonicalized and the rest
/// normalised as text (`.` dropped, `..` removes the previous component).
fn resolve_existing(path: &Path) -> PathBuf {
    if let Ok(canonical) = std::fs::canonicalize(path) {
        return canonical;
    }
    let components: Vec<Component<'_>> = path.components().collect();
    for split in (1..components.len()).rev() {
        let head: PathBuf = components[..split].iter().collect();
        if let Ok(canonical) = std::fs::canonicalize(&head) {
            return push_lexically(canonical, &components[split..]);
        }
    }
    push_lexically(PathBuf::new(), &components)
}

fn push_lexically(mut out: PathBuf, rest: &[Component<'_>]) -> PathBuf {
    for component in rest {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `path` (absolute) normalised as text only: what it names without looking at the disk.
fn lexical(path: &Path) -> PathBuf {
    push_lexically(PathBuf::new(), &path.components().collect::<Vec<_>>())
}

/// The canonical identity of an object-store stage (see the module docs).
pub fn remote(url: &StageUrl) -> String {
    let prefix = url.key().trim_end_matches('/');
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    match url.kind() {
        StoreKind::S3 => format!("s3://{}/{prefix}", url.bucket()),
        StoreKind::Gcs => format!("gs://{}/{prefix}", url.bucket()),
        StoreKind::Azure => match url.account() {
            Some(account) => {
                let suffix = url
                    .endpoint()
                    .and_then(|e| e.split_once(".blob."))
                    .map_or("core.windows.net", |(_, suffix)| suffix);
                format!("azure://{account}.blob.{suffix}/{}/{prefix}", url.bucket())
            }
            None => format!("az://{}/{prefix}", url.bucket()),
        },
        StoreKind::Local => local(Path::new(url.key())),
    }
}

/// The canonical identity of the stage `url` names.
pub fn canonical(url: &StageUrl) -> String {
    match url.kind() {
        StoreKind::Local => local(Path::new(url.key())),
        _ => remote(url),
    }
}

/// The identities older versions may have written this stage's state under, most likely
/// first, without `canonical`: the spelling as given (what they hashed), and the common
/// other spellings (with and without the trailing `/`; for a local stage also the path
/// normalised as text, which differs from the canonical one when it goes through a
/// symlink; for an account-less Azure URL each of its schemes).
pub fn legacy(url: &StageUrl, canonical: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |text: String| {
        if text != canonical && !text.is_empty() && !out.contains(&text) {
            out.push(text);
        }
    };
    let both = |text: &str| {
        let bare = text.trim_end_matches('/').to_owned();
        let slash = format!("{bare}/");
        [bare, slash]
    };
    match url.kind() {
        StoreKind::Local => {
            let given = Path::new(url.key());
            let absolute = std::path::absolute(given).unwrap_or_else(|_| given.to_path_buf());
            add(absolute.display().to_string());
            for text in both(canonical) {
                add(text);
            }
            for text in both(&lexical(&absolute).display().to_string()) {
                add(text);
            }
        }
        _ => {
            add(url.to_string());
            for text in both(canonical) {
                add(text);
            }
            if url.kind() == StoreKind::Azure && url.account().is_none() {
                let rest = canonical.strip_prefix("az://").unwrap_or(canonical);
                for scheme in ["azure", "abfs", "abfss"] {
                    for text in both(&format!("{scheme}://{rest}")) {
                        add(text);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> String {
        canonical(&StageUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}")))
    }

    #[test]
    fn s3_spellings_have_one_identity() {
        for text in [
            "s3://stage/unload/",
            "s3://stage/unload",
            "s3a://stage/unload/",
            "S3://stage/unload",
            "https://stage.s3.amazonaws.com/unload/",
            "https://STAGE.S3.eu-west-1.AmazonAWS.com/unload",
            "https://stage.s3.eu-west-1.amazonaws.com:443/unload/",
            "https://s3.us-east-2.amazonaws.com/stage/unload/",
            "https://s3.amazonaws.com/stage/%75nload/",
        ] {
            assert_eq!(id(text), "s3://stage/unload/", "{text}");
        }
        assert_eq!(id("s3://stage"), "s3://stage/");
        assert_eq!(id("s3://stage/"), "s3://stage/");
        // Keys are case-sensitive; raw `s3://` keys are not percent-decoded.
        assert_ne!(id("s3://stage/Unload/"), id("s3://stage/unload/"));
        assert_eq!(id("s3://stage/a%20b/"), "s3://stage/a%20b/");
        assert_eq!(
            id("https://stage.s3.amazonaws.com/a%20b/"),
            id("s3://stage/a b/")
        );
        assert_eq!(
            id("https://stage.s3.amazonaws.com/%7Ex/"),
            id("https://stage.s3.amazonaws.com/~x/")
        );
    }

    #[test]
    fn azure_and_gcs_spellings_have_one_identity() {
        for text in [
            "az://stage/unload/",
            "azure://stage/unload",
            "abfs://stage/unload/",
            "ABFSS://stage/unload",
        ] {
            assert_eq!(id(text), "az://stage/unload/", "{text}");
        }
        for text in [
            "azure://acct1.blob.core.windows.net/stage/unload/",
            "azure://ACCT1.blob.core.windows.net/stage/unload",
            "https://acct1.blob.core.windows.net/stage/unload/",
            "https://acct1.blob.core.windows.net:443/stage/unload/",
            "https://acct1.dfs.core.windows.net/stage/unload/",
            "https://acct1.blob.core.windows.net/stage/unload/?sv=1&sig=x",
            "abfss://stage@acct1.dfs.core.windows.net/unload/",
        ] {
            assert_eq!(
                id(text),
                "azure://acct1.blob.core.windows.net/stage/unload/",
                "{text}"
            );
        }
        assert_eq!(
            id("abfss://stage@acct1.dfs.core.chinacloudapi.cn/unload"),
            "azure://acct1.blob.core.chinacloudapi.cn/stage/unload/"
        );
        for text in [
            "gs://bkt/unload/",
            "gs://bkt/unload",
            "https://storage.googleapis.com/bkt/unload/",
        ] {
            assert_eq!(id(text), "gs://bkt/unload/", "{text}");
        }
    }

    #[test]
    fn local_spellings_have_one_identity() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let stage = root.join("stage");
        std::fs::create_dir_all(stage.join("sub")).unwrap();
        std::fs::create_dir(root.join("other")).unwrap();
        std::os::unix::fs::symlink(&stage, root.join("link")).unwrap();
        let expected = stage.display().to_string();
        let r = root.display();
        for text in [
            format!("{r}/stage"),
            format!("{r}/stage/"),
            format!("{r}/stage//"),
            format!("{r}//stage"),
            format!("{r}/./stage/."),
            format!("{r}/other/../stage"),
            format!("{r}/stage/sub/.."),
            format!("{r}/link"),
            format!("{r}/link/"),
            format!("file://{r}/stage/"),
            format!("file://localhost{r}/stage"),
            format!("file://{r}/st%61ge"),
        ] {
            assert_eq!(id(&text), expected, "{text}");
        }
        // Relative to the working directory.
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            id("."),
            std::fs::canonicalize(&cwd).unwrap().display().to_string()
        );
    }

    #[test]
    fn a_local_path_that_does_not_exist_is_normalised_as_far_as_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(root.join("real")).unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("link")).unwrap();
        let r = root.display();
        let expected = format!("{r}/real/new/stage");
        for text in [
            format!("{r}/link/new/stage/"),
            format!("{r}/real/new/./x/../stage"),
            format!("{r}/real//new/stage"),
        ] {
            assert_eq!(id(&text), expected, "{text}");
        }
        // Once created it keeps that identity.
        std::fs::create_dir_all(root.join("real/new/stage")).unwrap();
        assert_eq!(id(&format!("{r}/link/new/stage/")), expected);
    }

    #[test]
    fn legacy_spellings_are_what_older_versions_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("real/x")).unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("link")).unwrap();
        let r = root.display();
        let url = StageUrl::parse(&format!("{r}/link/./x/../")).unwrap();
        let canonical = canonical_of(&url);
        assert_eq!(canonical, format!("{r}/real"));
        let legacy = super::legacy(&url, &canonical);
        // The spelling as older versions made it absolute (`std::path::absolute`: `.`
        // dropped, `..` and the trailing `/` kept) comes first.
        assert_eq!(legacy[0], format!("{r}/link/x/../"));
        for expected in [
            format!("{r}/real/"),
            format!("{r}/link"),
            format!("{r}/link/"),
        ] {
            assert!(legacy.contains(&expected), "{expected} in {legacy:?}");
        }
        assert!(!legacy.contains(&canonical));

        let url = StageUrl::parse("s3a://stage/unload").unwrap();
        let legacy = super::legacy(&url, &canonical_of(&url));
        assert_eq!(legacy, vec!["s3://stage/unload".to_owned()]);
        let url = StageUrl::parse("azure://stage/unload/").unwrap();
        let legacy = super::legacy(&url, &canonical_of(&url));
        assert_eq!(legacy[0], "azure://stage/unload/");
        for expected in [
            "az://stage/unload",
            "abfss://stage/unload/",
            "azure://stage/unload",
        ] {
            assert!(
                legacy.iter().any(|l| l == expected),
                "{expected} in {legacy:?}"
            );
        }
    }

    fn canonical_of(url: &StageUrl) -> String {
        canonical(url)
    }
}
