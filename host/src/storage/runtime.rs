//! The process-wide I/O runtime object_store futures run on, so that blocking code (the
//! Parquet reader, the delivery state) can use the async clients from any thread.

use std::future::Future;
use std::sync::OnceLock;

use super::StorageError;

/// Worker threads of the I/O runtime.
const IO_THREADS: usize = 2;

/// Runs `future` on the process-wide storage I/O runtime and waits for it. Works from
/// any thread (inside an async task it blocks that task's thread, so prefer a worker
/// thread there).
pub fn block_on<F>(future: F) -> Result<F::Output, StorageError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    static RUNTIME: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    let runtime = RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(IO_THREADS)
                .thread_name("stagepush-io")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|error| StorageError::Runtime {
            reason: error.to_string(),
        })?;
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = sender.send(future.await);
    });
    receiver.recv().map_err(|_| StorageError::Runtime {
        reason: "a storage task stopped before it finished".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_a_future_from_a_plain_thread_and_from_several_at_once() {
        assert_eq!(block_on(async { 40 + 2 }).unwrap(), 42);
        let threads: Vec<_> = (0..4)
            .map(|n| std::thread::spawn(move || block_on(async move { n * 2 }).unwrap()))
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(results, vec![0, 2, 4, 6]);
    }
}
