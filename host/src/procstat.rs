//! This process's CPU time and peak memory, for run reports (Linux `/proc`; `None`
//! elsewhere).

/// User + system CPU seconds of this process so far (all threads).
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the full line: 11 and 12 after `state`.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks_per_second())
}

/// Peak resident memory of this process, bytes (`VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// USER_HZ is 100 on every Linux architecture stagepush builds for.
fn clock_ticks_per_second() -> f64 {
    100.0
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_process() {
        // Burn CPU (at least a clock tick's worth) until the kernel has counted some.
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while super::cpu_seconds().unwrap() == 0.0 && started.elapsed().as_secs() < 10 {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_add(i * i));
            }
        }
        assert!(super::cpu_seconds().unwrap() > 0.0, "{x}");
        assert!(super::peak_rss_bytes().unwrap() > 1024 * 1024);
    }
}
