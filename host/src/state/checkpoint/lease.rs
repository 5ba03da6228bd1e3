//! Leases: the lease this run writes on the files it holds, this machine's name in lease
//! owners (`host:pid:run-id`), and whether another worker's lease still holds (a live
//! lease of a running process) or may be taken over (expired, or its process is gone).

use crate::state::files::Lease;
use crate::wire::time::{now_ms, rfc3339_ms};

use super::CheckpointConfig;

/// A lease of `config.owner` running `config.lease` from now.
pub(super) fn new_lease(config: &CheckpointConfig) -> Lease {
    let expires = now_ms() + config.lease.as_millis() as u64;
    Lease {
        owner: config.owner.clone(),
        expires_at_ms: expires,
        expires_at: rfc3339_ms(expires),
    }
}

/// Whether `lease` keeps `owner` from the file at `now_ms`: it has not expired, it is
/// someone else's, and its process is not known to be gone.
pub(super) fn holds_against(lease: &Lease, owner: &str, now_ms: u64) -> bool {
    lease.expires_at_ms > now_ms && lease.owner != owner && !owner_is_dead(lease)
}

/// Whether the lease's owner is a process of this machine that no longer runs (a crashed
/// earlier run: its files need not wait for the lease to lapse).
fn owner_is_dead(lease: &Lease) -> bool {
    dead_owner_pid(lease).is_some()
}

/// The pid of the lease's owner when it is a process of this machine that no longer runs.
fn dead_owner_pid(lease: &Lease) -> Option<i32> {
    let mut parts = lease.owner.splitn(3, ':');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
        return None;
    };
    if host != hostname() {
        return None;
    }
    let pid = pid.parse::<i32>().ok()?;
    if pid <= 0 || pid as u32 == std::process::id() {
        return None;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    (!alive).then_some(pid)
}

/// Why another worker's lease no longer holds, for the takeover's log line: its process is
/// gone (same machine, pid not running; the lease may still have had time to run), or its
/// lease expired.
pub(super) fn takeover_reason(lease: &Lease, now_ms: u64) -> String {
    match dead_owner_pid(lease) {
        Some(pid) => format!(
            "whose process is gone (pid {pid} no longer runs on this machine, {}); its lease \
             {} {}",
            hostname(),
            if lease.expires_at_ms <= now_ms {
                "expired at"
            } else {
                "would have run until"
            },
            lease.expires_at
        ),
        None => format!("whose lease expired at {}", lease.expires_at),
    }
}

/// This machine's name, for lease owners (`HOSTNAME`, else `/etc/hostname`).
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
