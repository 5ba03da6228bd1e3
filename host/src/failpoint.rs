//! Crash points for the crash-resume tests: with `STAGEPUSH_FAILPOINT=NAME[:N]` set, the
//! process kills itself with SIGKILL the N-th time (default the first) it reaches the
//! point `NAME` — no cleanup, no flush, exactly like `kill -9` at that instant. Unset (as
//! always outside tests) a point costs one relaxed atomic load.
//!
//! Points: `listing` (files listed, nothing claimed), `after-post` (a request body was
//! acknowledged by the endpoint, the state does not know yet), `after-checkpoint` (a state
//! document was written).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming the crash point.
pub const FAILPOINT_ENV: &str = "STAGEPUSH_FAILPOINT";

static CONFIG: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

fn config() -> &'static Option<(String, u64)> {
    CONFIG.get_or_init(|| {
        let value = std::env::var(FAILPOINT_ENV).ok()?;
        let (name, nth) = match value.split_once(':') {
            Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1)),
            None => (value, 1),
        };
        Some((name, nth.max(1)))
    })
}

/// Reaching point `name`.
pub fn hit(name: &str) {
    if let Some((point, nth)) = config()
        && point == name
        && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *nth
    {
        eprintln!("stagepush: failpoint {name}:{nth} reached: killing the process (SIGKILL)");
        // SAFETY: getpid and kill have no preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
