//! Which file a worker takes next: the listed files in order, each claimed in the delivery
//! state (a lease); a file done by an earlier run is skipped, a file another worker holds
//! is set aside and taken once its lease lapses (or seen done). No file is left before
//! every file set aside has been looked at again.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::source::StageFile;
use crate::state::checkpoint::{Claim, ResumePlan};
use crate::sync::lock;
use crate::wire::time::now_ms;

use super::state::RunState;
use super::{FileOutcome, FileReport, PipelineError, display_name};

/// How often a worker looks again at a file another worker holds (to see it done, or its
/// lease lapse): one read of its state document.
const WAIT_POLL: Duration = Duration::from_secs(1);

/// What the log says of a file done by an earlier run.
pub const SKIPPED_HINT: &str = "already delivered: skipped (`run --full-refresh` sends it again)";

/// The files of a run and the workers' shared place in them.
pub(super) struct FileQueue<'a> {
    files: &'a [StageFile],
    order: Order,
}

/// The order files are tried in, by index.
struct Order {
    len: usize,
    lease: Duration,
    next: AtomicUsize,
    /// Files another worker held when this run reached them: (index, lease expiry ms).
    waiting: Mutex<Vec<(usize, u64)>>,
}

impl<'a> FileQueue<'a> {
    pub(super) fn new(files: &'a [StageFile], lease: Duration) -> Self {
        FileQueue {
            files,
            order: Order::new(files.len(), lease),
        }
    }

    /// The next file this worker may process: the next listed file it can claim, else a
    /// file another worker held once its lease lapses (or it is done). `None` when no file
    /// is left or the run is stopping.
    pub(super) fn next(
        &self,
        run: &RunState,
    ) -> Result<Option<(&'a StageFile, ResumePlan)>, PipelineError> {
        loop {
            if run.stopped() {
                return Ok(None);
            }
            if let Some(e) = run.checkpointer.error() {
                return Err(PipelineError::StateWrite(e));
            }
            let Some((index, waited)) = self.order.pick() else {
                return Ok(None);
            };
            let stage_file = &self.files[index];
            match run.checkpointer.claim(stage_file)? {
                Claim::Mine(plan) => return Ok(Some((stage_file, plan))),
                Claim::Done(doc) => {
                    let outcome = if waited {
                        FileOutcome::DoneElsewhere
                    } else {
                        let mut files = lock(&run.files);
                        files.skipped += 1;
                        if let Some(other) = doc
                            .plugin_sha256
                            .as_ref()
                            .filter(|d| **d != *run.plugin_digest)
                        {
                            *files.skipped_other_plugin.entry(other.clone()).or_default() += 1;
                        }
                        drop(files);
                        tracing::info!(file = %display_name(stage_file), "{SKIPPED_HINT}");
                        FileOutcome::Skipped
                    };
                    run.report_file(FileReport {
                        file: display_name(stage_file),
                        rows: doc.counts.rows,
                        outcome,
                        resumed_at_segment: None,
                        error: doc.error.clone(),
                    });
                }
                Claim::Held {
                    owner,
                    expires_at_ms,
                } => {
                    if !waited {
                        tracing::info!(file = %display_name(stage_file), %owner, "another worker is on this file: waiting for it to finish or its lease to lapse");
                    }
                    lock(&self.order.waiting).push((index, expires_at_ms));
                }
            }
        }
    }
}

impl Order {
    fn new(len: usize, lease: Duration) -> Self {
        Order {
            len,
            lease,
            next: AtomicUsize::new(0),
            waiting: Mutex::new(Vec::new()),
        }
    }

    /// The next file to try: the next listed one, else (after a wait) the set-aside file
    /// whose lease lapses first; whether it was set aside.
    fn pick(&self) -> Option<(usize, bool)> {
        let index = self.next.fetch_add(1, Ordering::SeqCst);
        if index < self.len {
            return Some((index, false));
        }
        let (index, expires_at_ms) = {
            let mut waiting = lock(&self.waiting);
            waiting.sort_by_key(|(_, expires)| std::cmp::Reverse(*expires));
            waiting.pop()?
        };
        // Look again when the lease lapses, or sooner: the holder may finish first.
        std::thread::sleep(self.wait_before_retry(expires_at_ms, now_ms()));
        Some((index, true))
    }

    /// How long to wait before looking again at a file whose lease lapses at
    /// `expires_at_ms`: until just after it lapses, but at most a poll interval.
    fn wait_before_retry(&self, expires_at_ms: u64, now_ms: u64) -> Duration {
        let poll = (self.lease / 4).clamp(Duration::from_millis(100), WAIT_POLL);
        Duration::from_millis(expires_at_ms.saturating_sub(now_ms) + 50).min(poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_files_come_in_order_then_the_set_aside_one_lapsing_first() {
        let queue = Order::new(3, Duration::from_millis(400));
        assert_eq!(queue.pick(), Some((0, false)));
        assert_eq!(queue.pick(), Some((1, false)));
        assert_eq!(queue.pick(), Some((2, false)));
        // Nothing set aside: no file is left.
        assert_eq!(queue.pick(), None);
        let now = now_ms();
        lock(&queue.waiting).extend([(2, now + 60), (0, now)]);
        assert_eq!(queue.pick(), Some((0, true)));
        assert_eq!(queue.pick(), Some((2, true)));
        assert_eq!(queue.pick(), None);
    }

    #[test]
    fn a_held_file_is_looked_at_again_when_its_lease_lapses_or_at_the_poll() {
        let queue = Order::new(1, Duration::from_secs(60));
        // Lapses in 200 ms: look just after.
        assert_eq!(
            queue.wait_before_retry(10_200, 10_000),
            Duration::from_millis(250)
        );
        // Lapses in an hour: look again at the poll (the holder may finish first).
        assert_eq!(queue.wait_before_retry(3_600_000, 0), WAIT_POLL);
        // A short lease polls at a quarter of it, never below 100 ms.
        let short = Order::new(1, Duration::from_millis(200));
        assert_eq!(
            short.wait_before_retry(3_600_000, 0),
            Duration::from_millis(100)
        );
    }
}
