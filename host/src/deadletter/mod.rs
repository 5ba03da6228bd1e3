//! Dead letters: the rows that did not reach CluedIn and were not filtered, and what is
//! done with them afterwards.
//!
//! - `record`: the [`DeadLetter`] record (file, row, stage, cause, the input row);
//! - `writer`: the local `dead-letters.ndjson` ([`DeadLetterWriter`], [`letter_sync`]);
//! - `input_json`: input rows rendered as JSON for the letters;
//! - `reasons`: letters grouped by reason and message (the summary, report and `status`);
//! - `redeliver`: `stagepush retry` (and `run --retry-rejected`), the dead letters kept in
//!   the delivery state read, transformed and sent again. (HTTP retries are `sink::retries`.)

pub mod input_json;
pub mod reasons;
pub mod record;
pub mod redeliver;
pub mod writer;

pub use record::{DeadLetter, RowStage};
pub use writer::{DEAD_LETTER_FILE, DeadLetterWriter, letter_sync};
