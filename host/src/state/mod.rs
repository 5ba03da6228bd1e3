//! Delivery state: what was delivered, from which file, with which receipts; leases that
//! keep workers from doing each other's work; dead letters kept for `retry`; fingerprints
//! for `--only-changed`; run reports.
//!
//! ## Where
//!
//! `--state DIR_OR_URL` (config `[state] location`): a local folder (default
//! [`DEFAULT_STATE_DIR`], relative to the working directory) or an object-store URL
//! (`s3://bucket/prefix`, `az://container/prefix`, `gs://bucket/prefix`, …) for runs on
//! machines with no lasting disk and for many workers sharing one stage.
//!
//! ## Layout (every document is JSON with `"format": "stagepush-state/1"`)
//!
//! ```text
//! files/<stage-id>/<file-id>.json            FileState: one per stage file (key), CAS-updated
//! dead-letters/<stage-id>/<file-id>/<chunk>.ndjson   rows to retry, written before the
//!                                            checkpoint that counts them (immutable chunks)
//! runs/<started>-<run-id>.json               the run report of each run
//! refresh/<stage-id>.json                    the stage's full-refresh generation (`refresh`)
//! fingerprints.redb                          --only-changed (local state only)
//! ```
//!
//! `<stage-id>` is the first 16 hex digits of SHA-256 of the stage's canonical identity
//! ([`crate::source::identity`]; a state written by an older version under another
//! spelling of the stage is found through [`stage_key`]), `<file-id>` the
//! first 32 of SHA-256 of the object key: names stay short and safe on every store.
//!
//! ## Atomicity
//!
//! Local: write a temporary file, `fsync`, rename over the target, `fsync` the folder;
//! compare-and-swap under an exclusive lock of `<root>/.lock`. Object stores: conditional
//! puts (`If-None-Match: *` to create, `If-Match: <etag>` to update). A crash at any instant
//! leaves either the old or the new document; a document that does not parse (a torn
//! write, a truncated file) is reported as damaged, never read as empty.

pub mod checkpoint;
pub mod files;
pub mod fingerprints;
pub mod pending;
pub mod refresh;
pub mod stage_key;
pub mod status;
pub mod store;

pub use store::{PutMode, StateError, StateStore, Stored, Version};

/// Default local state folder (relative to the working directory).
pub const DEFAULT_STATE_DIR: &str = "stagepush-state";

/// The fingerprint database of `--only-changed`, in a local state folder.
pub const FINGERPRINTS_FILE: &str = "fingerprints.redb";

/// The `format` of every state document.
pub const STATE_FORMAT: &str = "stagepush-state/1";
