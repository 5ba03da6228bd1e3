//! How the process uses the C allocator (glibc's malloc): fewer arenas, and freed memory
//! given back after a burst.
//!
//! glibc keeps one arena per thread that allocated, up to 8 per core, and keeps freed
//! memory in them for reuse: a process that peaked during a burst stays at that resident
//! size. Measured with `cargo xtask bench memory` (16 concurrent relay requests of 4 MiB,
//! 2 cores): peak 583 MiB / 570 MiB after the burst with glibc's defaults; 492 / 148 with
//! [`release_free_memory`] when the relay goes idle; 311 / 123 with that and
//! [`limit_arenas`] (2 per core), at the same burst time; mimalloc (its defaults) kept
//! 462-503 MiB after the burst, so the C allocator stays glibc's.

/// Arenas per core (glibc's default is 8 on 64-bit).
pub const ARENAS_PER_CORE: usize = 2;

/// Caps glibc's arenas at [`ARENAS_PER_CORE`] per core, unless `MALLOC_ARENA_MAX` is set
/// (glibc reads it itself). Call before starting threads.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let arenas = i32::try_from(cores * ARENAS_PER_CORE).unwrap_or(i32::MAX);
        // SAFETY: mallopt only sets an allocator parameter.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// Returns free heap pages to the operating system (`malloc_trim(0)`; a no-op without
/// glibc). `serve`'s relay calls it when its last request in flight is done.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists, under its locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
