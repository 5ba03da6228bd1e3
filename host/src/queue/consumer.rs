//! The queue consumer shared by `run --queue` ([`Until::Empty`]: drain the queue, then
//! stop) and `serve --queue` ([`Until::Cancelled`]: keep polling until shutdown).
//!
//! A round receives up to `max_messages` messages, hidden for `visibility`. Each body is
//! parsed ([`crate::events::parse`]) and resolved to stage files
//! ([`crate::trigger::resolve`]); the files of all the messages, deduplicated by key, go to
//! one [`Job::run`]. While it runs, a [heartbeat](super::heartbeat) extends every in-flight
//! message's visibility. Then a message is **deleted** only when every object it names is
//! done in the delivery state (delivered, filtered or dead-lettered row by row, or the file
//! dead-lettered as bad: the state document decides, not the report); otherwise it is
//! **left**: made visible again at once (visibility 0) for a later receive.
//!
//! - A run that stopped on a fatal error (the endpoint refused the token, is down…) leaves
//!   every message whose objects are not done and ends the loop with the error (`serve`
//!   backs off and polls again). A SIGTERM/SIGINT stops the run at its next batch; messages
//!   not done are left.
//! - Nothing to deliver: `s3:TestEvent`, a delete or another ignored event, a folder
//!   marker, an object deleted since, an object outside the stage's prefix or not selected
//!   by `--include`/`--exclude`/`--modified-since` → deleted.
//! - An object whose key cannot be read ([`crate::trigger::UnusableKey`]) is recorded as a
//!   pending error (as `run --event` does; `stagepush status` shows it) and its message
//!   deleted.
//! - **The rule** for a message that can never be delivered, whatever the number of its
//!   receives (a body that is not JSON or has an unknown shape, an event naming another
//!   bucket or container): it is deleted, with an ERROR log line and a
//!   [queue dead letter](super::dead_letter) (queue, message id, receive count, reason, the
//!   first 64 KiB of the body) that `stagepush status` shows. It is not left for the queue's
//!   own dead-letter queue, since a rerun could never deliver it either.
//! - A stage that cannot be read now (a transient storage error) leaves the message; the
//!   round then fails ([`ConsumerError::Unresolved`]: `run` stops, `serve` backs off).
//! - A message left while the run went on (an object another consumer is delivering, its
//!   lease held) is received again after a back-off (1 s doubling to 60 s), not at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cancel::Cancel;
use crate::job::Job;
use crate::pipeline::{PipelineError, Progress, RunReport};
use crate::run_report::QueueCounts;
use crate::source::StageFile;
use crate::state::StateError;
use crate::trigger::TriggerError;

use super::dead_letter::{self, QueueDeadLetter};
use super::merge::merge;
use super::{Message, QueueClient, QueueError, QueueOptions, heartbeat};

/// When the loop ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// A receive returned no message (`run --queue`), or the cancel was set.
    Empty,
    /// The cancel was set (`serve --queue`); errors are logged and the loop backs off.
    Cancelled,
}

/// First back-off of `serve --queue` after a failed round.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest back-off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// `serve --queue` with `wait_secs = 0`: the pause after an empty receive.
pub const EMPTY_PAUSE: Duration = Duration::from_secs(1);

/// Why the consumer stopped before the queue was drained.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("the delivery state: {0}")]
    State(#[from] StateError),
    /// Messages whose objects cannot be resolved now (the stage cannot be read).
    #[error("queue message {message}: {reason}; it stays in the queue")]
    Unresolved { message: String, reason: String },
}

/// The message counts, shared with `serve`'s metrics.
#[derive(Debug, Default)]
pub struct Counters {
    pub received: AtomicU64,
    pub deleted: AtomicU64,
    pub extended: AtomicU64,
    pub left: AtomicU64,
    pub dead_lettered: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> QueueCounts {
        QueueCounts {
            received: self.received.load(Ordering::Relaxed),
            deleted: self.deleted.load(Ordering::Relaxed),
            extended: self.extended.load(Ordering::Relaxed),
            left: self.left.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
        }
    }
}

/// What the loop did: the runs' reports merged (none when no message named a file), and
/// the error that stopped it (a run's fatal error, or a queue error).
#[derive(Debug, Default)]
pub struct Consumed {
    pub report: Option<RunReport>,
    /// Objects named by messages whose key cannot be read (recorded as pending errors).
    pub unusable_keys: u64,
}

/// A queue consumer for one job.
pub struct Consumer<'a> {
    pub job: &'a Job,
    pub client: &'a dyn QueueClient,
    pub options: &'a QueueOptions,
    pub counters: &'a Counters,
    pub cancel: &'a Cancel,
    /// `--include`, `--exclude`, `--modified-since`: a file a message names that they do
    /// not select is not delivered (nothing to deliver, as for `serve`'s events).
    pub selection: &'a crate::source::Selection,
    /// Called with each run's report (`serve`'s metrics).
    pub on_run: &'a (dyn Fn(&RunReport) + Sync),
}

/// What to do with one received message before the run.
enum Verdict {
    /// Deliver these files (keys).
    Deliver(Vec<StageFile>),
    /// Nothing to deliver: delete.
    Nothing,
    /// Can never be delivered: dead letter, delete.
    Never(String),
    /// Cannot be resolved now: leave.
    Later(String),
}

impl Consumer<'_> {
    /// Rounds until [`Until`] says stop: what was done, and (drain only) the error that
    /// stopped it early, a queue that cannot be used or a run that could not start (a run
    /// that stopped on a fatal error is in the report's `fatal_error` instead).
    pub fn run(&self, until: Until) -> (Consumed, Option<ConsumerError>) {
        let mut consumed = Consumed::default();
        let mut backoff: Option<Duration> = None;
        while !self.cancel.is_cancelled() {
            let round = self.round(&mut consumed);
            let failed = match round {
                Ok(Round::Empty) if until == Until::Empty => break,
                Ok(Round::Empty) => {
                    backoff = None;
                    // Without long polling, an empty queue is not asked again at once.
                    if self.options.wait.is_zero() {
                        self.pause(EMPTY_PAUSE);
                    }
                    continue;
                }
                Ok(Round::Done) => {
                    backoff = None;
                    continue;
                }
                // Not done and not stopped (another consumer holds a file's lease): the
                // messages were left; ask again after a back-off, not at once.
                Ok(Round::Partial) => "messages were left".to_owned(),
                Ok(Round::Stopped) => {
                    if until == Until::Empty {
                        break;
                    }
                    "a run stopped".to_owned()
                }
                Err(e) => {
                    if until == Until::Empty {
                        return (consumed, Some(e));
                    }
                    tracing::error!("{e}");
                    e.to_string()
                }
            };
            let delay = backoff.map_or(FIRST_BACKOFF, |d| (d * 2).min(MAX_BACKOFF));
            backoff = Some(delay);
            tracing::warn!(
                "queue {}: {failed}; next receive in {} s",
                self.options.url,
                delay.as_secs_f64()
            );
            self.pause(delay);
        }
        (consumed, None)
    }

    /// Waits `delay`, or until the cancel is set.
    fn pause(&self, delay: Duration) {
        let cancel = self.cancel.clone();
        let _ = crate::storage::block_on(async move {
            let _ = tokio::time::timeout(delay, cancel.cancelled()).await;
        });
    }

    fn round(&self, consumed: &mut Consumed) -> Result<Round, ConsumerError> {
        let o = self.options;
        let messages = self.client.receive(o.max_messages, o.visibility, o.wait)?;
        if messages.is_empty() {
            return Ok(Round::Empty);
        }
        self.counters
            .received
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
        if self.cancel.is_cancelled() {
            for message in messages {
                self.leave(message);
            }
            return Ok(Round::Stopped);
        }
        // The messages whose files go to the run, with the keys each names.
        let mut in_flight: Vec<(Message, Vec<String>)> = Vec::new();
        let mut unresolved: Option<ConsumerError> = None;
        let mut files: Vec<StageFile> = Vec::new();
        let mut by_key: BTreeMap<String, StageFile> = BTreeMap::new();
        for message in messages {
            match self.verdict(&message, consumed) {
                Verdict::Deliver(named) => {
                    let names = named.iter().map(|f| f.key.clone()).collect();
                    for file in named {
                        if !by_key.contains_key(&file.key) {
                            by_key.insert(file.key.clone(), file.clone());
                            files.push(file);
                        }
                    }
                    in_flight.push((message, names));
                }
                Verdict::Nothing => self.delete(&message),
                Verdict::Never(reason) => self.dead_letter(&message, &reason),
                Verdict::Later(reason) => {
                    tracing::error!("queue message {}: {reason}; it is left", message.id);
                    unresolved.get_or_insert(ConsumerError::Unresolved {
                        message: message.id.clone(),
                        reason,
                    });
                    self.leave(message);
                }
            }
        }
        if files.is_empty() {
            return unresolved.map_or(Ok(Round::Done), Err);
        }
        tracing::info!(
            "queue {}: delivering {} files named by {} messages",
            o.url,
            files.len(),
            in_flight.len()
        );
        let (messages, names): (Vec<Message>, Vec<Vec<String>>) = in_flight.into_iter().unzip();
        let held = Mutex::new(messages);
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let outcome = std::thread::scope(|scope| {
            let (client, held, extended) = (self.client, &held, &self.counters.extended);
            scope.spawn(move || heartbeat::run(client, held, o.visibility, extended, &stop_rx));
            let outcome = self.job.run(
                files,
                Arc::new(Progress::default()),
                Some(self.cancel.clone()),
            );
            let _ = stop_tx.send(());
            outcome
        });
        let messages = held.into_inner().unwrap_or_else(|p| p.into_inner());
        let report = match outcome {
            Ok(report) => report,
            Err(e) => {
                for message in messages {
                    self.leave(message);
                }
                return Err(e.into());
            }
        };
        (self.on_run)(&report);
        let stopped = report.fatal_error.is_some() || report.interrupted.is_some();
        if let Some(error) = &report.fatal_error {
            tracing::error!("queue {}: the run stopped: {error}", o.url);
        }
        let stage_url = self.job.stage.state_key().to_owned();
        let mut left = false;
        let mut done_keys: BTreeSet<String> = BTreeSet::new();
        for (message, keys) in messages.into_iter().zip(names) {
            let mut done = true;
            for key in &keys {
                if done_keys.contains(key) {
                    continue;
                }
                // The state document of the version resolved before the run decides.
                let finished = match by_key.get(key) {
                    Some(file) => crate::serve::processor::file_done(self.job, &stage_url, file)
                        .unwrap_or_else(|e| {
                            tracing::error!("{key}: cannot read its delivery state: {e}");
                            false
                        }),
                    None => false,
                };
                if finished {
                    done_keys.insert(key.clone());
                } else {
                    done = false;
                }
            }
            if done {
                self.delete(&message);
            } else {
                left = true;
                if !stopped {
                    tracing::warn!(
                        "queue message {}: not every object it names is done; it is left",
                        message.id
                    );
                }
                self.leave(message);
            }
        }
        merge(&mut consumed.report, report);
        if stopped {
            return Ok(Round::Stopped);
        }
        if let Some(error) = unresolved {
            return Err(error);
        }
        Ok(if left { Round::Partial } else { Round::Done })
    }

    fn verdict(&self, message: &Message, consumed: &mut Consumed) -> Verdict {
        let notifications = match crate::events::parse(&message.body) {
            Ok(notifications) => notifications,
            Err(e) => return Verdict::Never(e.to_string()),
        };
        let resolved = match crate::trigger::resolve(&self.job.stage, &notifications) {
            Ok(resolved) => resolved,
            Err(e @ TriggerError::UnknownBucket { .. }) => return Verdict::Never(e.to_string()),
            Err(e) => return Verdict::Later(e.to_string()),
        };
        for reason in &resolved.ignored {
            tracing::info!("queue message {}: ignored: {reason}", message.id);
        }
        for unusable in &resolved.unusable {
            if let Err(e) = crate::state::pending::record_error(
                &self.job.state,
                self.job.stage.state_key(),
                unusable,
            ) {
                return Verdict::Later(format!("cannot record a pending error: {e}"));
            }
            consumed.unusable_keys += 1;
            tracing::error!(
                "queue message {}: refused {}: {}; recorded as a pending error (see `stagepush \
                 status`)",
                message.id,
                crate::events::show_key(&unusable.key),
                unusable.reason
            );
        }
        let files = match self.selection.filter(resolved.files) {
            Ok((files, not_selected)) => {
                for reason in &not_selected {
                    tracing::info!("queue message {}: ignored: {reason}", message.id);
                }
                files
            }
            Err(e) => return Verdict::Later(e.to_string()),
        };
        if files.is_empty() {
            Verdict::Nothing
        } else {
            Verdict::Deliver(files)
        }
    }

    fn delete(&self, message: &Message) {
        match self.client.delete(message) {
            Ok(()) => {
                self.counters.deleted.fetch_add(1, Ordering::Relaxed);
            }
            // It comes back after its visibility timeout; the state skips what is done.
            Err(e) => tracing::error!("queue message {}: cannot delete it: {e}", message.id),
        }
    }

    /// Makes `message` visible again at once (it is not done).
    fn leave(&self, mut message: Message) {
        self.counters.left.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.client.set_visibility(&mut message, Duration::ZERO) {
            tracing::warn!(
                "queue message {}: cannot make it visible again ({e}); it is after its \
                 visibility timeout",
                message.id
            );
        }
    }

    /// The rule: deleted, with an ERROR line and a dead letter in the state. A dead letter
    /// that cannot be written leaves the message.
    fn dead_letter(&self, message: &Message, reason: &str) {
        let letter = QueueDeadLetter::new(&self.options.url.to_string(), message, reason);
        if let Err(e) = dead_letter::record(&self.job.state, self.job.stage.state_key(), &letter) {
            tracing::error!(
                "queue message {}: {reason}; cannot keep its dead letter ({e}): it is left",
                message.id
            );
            self.leave(message.clone());
            return;
        }
        tracing::error!(
            "queue message {} can never be delivered: {reason}; deleted, kept as a queue dead \
             letter (see `stagepush status`)",
            message.id
        );
        self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
        self.delete(message);
    }
}

/// How a round went.
enum Round {
    /// No message.
    Empty,
    /// Messages handled.
    Done,
    /// The run stopped (fatal error or cancel): its messages not done were left.
    Stopped,
    /// The run ended, but some messages were left (an object not done).
    Partial,
}
