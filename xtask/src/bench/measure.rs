//! A child process measured as a whole: wall time from spawn to exit, CPU seconds (user +
//! system) of the process and every child it waited for, and its peak RSS, from the
//! `rusage` that `wait4` returns for exactly that child (so other processes on the
//! machine do not count); optionally its RSS sampled over time from `/proc` (Linux), to
//! show whether memory stays flat through a long run.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::Result;

/// What a finished child cost.
#[derive(Debug, Clone)]
pub struct Measured {
    pub stdout: Vec<u8>,
    pub wall_secs: f64,
    pub cpu_secs: f64,
    pub peak_rss_bytes: f64,
    /// The child's resident memory over time, `(seconds since spawn, bytes)`: empty unless
    /// asked for ([`measure_sampled`]) and on Linux.
    pub rss_samples: Vec<(f64, f64)>,
}

/// Runs `cmd` to the end (stdin closed, stdout captured, stderr captured and returned in
/// the error when the command fails).
pub fn measure(cmd: &mut Command) -> Result<Measured> {
    measure_with(cmd, None)
}

/// [`measure`], also sampling the child's RSS every `every` (into `rss_samples`).
pub fn measure_sampled(cmd: &mut Command, every: Duration) -> Result<Measured> {
    measure_with(cmd, Some(every))
}

fn measure_with(cmd: &mut Command, sample_every: Option<Duration>) -> Result<Measured> {
    let what = format!("{:?}", cmd.get_program());
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = sample_every.map(|every| {
        let (pid, sampling) = (child.id(), Arc::clone(&sampling));
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while sampling.load(Ordering::Relaxed) {
                if let Some(rss) = current_rss_bytes(pid) {
                    samples.push((started.elapsed().as_secs_f64(), rss));
                }
                // A sampling interval, not a synchronisation: the child is reaped below.
                std::thread::sleep(every);
            }
            samples
        })
    });
    let mut stderr = child.stderr.take().ok_or("no stderr pipe")?;
    // Drained on its own thread so neither pipe can fill up and stall the child.
    let stderr_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let mut stdout = Vec::new();
    let read = child
        .stdout
        .take()
        .ok_or_else(|| "no stdout pipe".to_string())
        .and_then(|mut out| {
            out.read_to_end(&mut stdout)
                .map_err(|e| format!("reading {what}'s output: {e}"))
        });
    if let Err(e) = read {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    let (status, usage) = wait4(child.id())?;
    let wall_secs = started.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    let rss_samples = sampler
        .and_then(|sampler| sampler.join().ok())
        .unwrap_or_default();
    let stderr = stderr_reader.join().unwrap_or_default();
    let exited_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if !exited_ok {
        return Err(format!(
            "{what} failed (wait status {status}):\n{}",
            String::from_utf8_lossy(&stderr)
        ));
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Measured {
        stdout,
        wall_secs,
        cpu_secs: secs(usage.ru_utime) + secs(usage.ru_stime),
        peak_rss_bytes: maxrss_bytes(usage.ru_maxrss),
        rss_samples,
    })
}

/// `VmRSS` of process `pid` now (Linux `/proc`), or `None` (gone, or not Linux).
fn current_rss_bytes(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024.0)
}

/// Reaps `pid` and returns its wait status and resource usage (its own and that of the
/// children it waited for).
fn wait4(pid: u32) -> Result<(libc::c_int, libc::rusage)> {
    let pid = libc::pid_t::try_from(pid).map_err(|e| format!("pid {pid}: {e}"))?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data; all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live locals of the right types; `pid` is our own
        // child, not yet reaped (std's `Child` was never waited for).
        let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if got == pid {
            return Ok((status, usage));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("waiting for process {pid}: {e}"));
        }
    }
}

/// `ru_maxrss` is in KiB on Linux and in bytes on macOS.
fn maxrss_bytes(maxrss: libc::c_long) -> f64 {
    if cfg!(target_os = "macos") {
        maxrss as f64
    } else {
        maxrss as f64 * 1024.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_measured_and_its_output_kept() {
        // A shell that burns a little CPU, then prints.
        let m = measure(Command::new("sh").args([
            "-c",
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done",
        ]))
        .unwrap();
        assert_eq!(m.stdout, b"done\n");
        assert!(m.cpu_secs > 0.0, "cpu {}", m.cpu_secs);
        assert!(m.wall_secs > 0.0);
        assert!(m.peak_rss_bytes > 100_000.0, "rss {}", m.peak_rss_bytes);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_sampled_child_has_rss_samples_within_its_peak() {
        let m = measure_sampled(
            Command::new("sh").args([
                "-c",
                "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo done",
            ]),
            Duration::from_millis(5),
        )
        .unwrap();
        assert!(!m.rss_samples.is_empty());
        for &(secs, rss) in &m.rss_samples {
            assert!(
                secs >= 0.0 && secs <= m.wall_secs,
                "{secs} of {}",
                m.wall_secs
            );
            assert!(
                rss > 0.0 && rss <= m.peak_rss_bytes,
                "{rss} > {}",
                m.peak_rss_bytes
            );
        }
    }

    #[test]
    fn a_failing_child_is_an_error_with_its_stderr() {
        let e = measure(Command::new("sh").args(["-c", "echo broken >&2; exit 3"])).unwrap_err();
        assert!(e.contains("broken"), "{e}");
    }
}
