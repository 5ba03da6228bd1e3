//! Claiming a file: a compare-and-swap of its document that takes a free, lapsed or
//! orphaned lease, starts a replaced file (or one of an earlier full-refresh generation)
//! over, and leaves a done or held file alone.

use std::collections::HashMap;
use std::time::Instant;

use super::lease::{holds_against, new_lease, takeover_reason};
use super::{Checkpointer, Claim, FileRef, ResumePlan, Tracked};
use crate::source::StageFile;
use crate::state::files::{self, FileState, FileStatus};
use crate::state::refresh;
use crate::state::{PutMode, StateError};
use crate::wire::time::now_ms;

impl Checkpointer {
    /// Claims `file` for this run (compare-and-swap on its document).
    pub fn claim(&self, file: &StageFile) -> Result<Claim, StateError> {
        let config = &self.inner.config;
        let path = files::file_path(&config.stage_url, &file.key);
        let identity = files::identity(file);
        loop {
            let stored = self.inner.store.get(&path)?;
            let (mut doc, mode, resumed) = match &stored {
                None => (
                    FileState::new(&config.stage_url, file, config.segment_rows, &config.run_id),
                    PutMode::Create,
                    false,
                ),
                Some(stored) => {
                    let old = FileState::parse(&path, stored)?;
                    let mode = PutMode::Update(stored.version.clone());
                    let held = old
                        .lease
                        .as_ref()
                        .filter(|l| holds_against(l, &config.owner, now_ms()));
                    let outdated =
                        refresh::outdated(old.generation.as_deref(), config.generation.as_deref());
                    if old.identity != identity || (outdated && held.is_none()) {
                        if old.identity != identity {
                            tracing::info!(file = %file.key, "the file was replaced since it was delivered: sending it again");
                        } else {
                            tracing::info!(file = %file.key, "full refresh: sending the file again");
                        }
                        let doc = FileState::new(
                            &config.stage_url,
                            file,
                            config.segment_rows,
                            &config.run_id,
                        );
                        (doc, mode, false)
                    } else if old.status == FileStatus::Done {
                        return Ok(Claim::Done(Box::new(old)));
                    } else if let Some(lease) = old
                        .lease
                        .as_ref()
                        .filter(|l| holds_against(l, &config.owner, now_ms()))
                    {
                        return Ok(Claim::Held {
                            owner: lease.owner.clone(),
                            expires_at_ms: lease.expires_at_ms,
                        });
                    } else {
                        if let Some(lease) = old.lease.as_ref().filter(|l| l.owner != config.owner)
                        {
                            tracing::warn!(file = %file.key, owner = %lease.owner, "taking over the file from a worker {}", takeover_reason(lease, now_ms()));
                        }
                        let resumed = !old.acked.is_empty() || old.dispatch_limit > 0;
                        (old, mode, resumed)
                    }
                }
            };
            let earlier_dispatch_limit = doc.dispatch_limit;
            if config.generation.is_some() {
                doc.generation = config.generation.clone();
            }
            if config.plugin_sha256.is_some() {
                doc.plugin_sha256 = config.plugin_sha256.clone();
            }
            doc.lease = Some(new_lease(config));
            doc.run_id = config.run_id.clone();
            doc.updated_at = crate::wire::time::now_rfc3339();
            match self.inner.store.put(&path, &doc.to_json(), mode) {
                Ok(version) => {
                    let plan = ResumePlan {
                        file: FileRef(0),
                        segment_rows: doc.segment_rows,
                        acked: doc.acked.clone(),
                        earlier_dispatch_limit,
                        resumed,
                    };
                    let mut state = self.inner.lock();
                    let index = state.files.len();
                    state.files.push(Tracked {
                        path,
                        durable_limit: doc.dispatch_limit,
                        wanted_limit: doc.dispatch_limit,
                        doc,
                        version,
                        letters: Vec::new(),
                        letter_chunks: 0,
                        open: HashMap::new(),
                        dispatch_finished: false,
                        dirty: false,
                        pending: Default::default(),
                        waiters: 0,
                        lost: false,
                        released: false,
                        last_write: Instant::now(),
                    });
                    return Ok(Claim::Mine(ResumePlan {
                        file: FileRef(index),
                        ..plan
                    }));
                }
                Err(StateError::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}
