//! Dead letters as `status` counts them: the chunks of one file, each row (key, file
//! version, row) once with the reason of its newest letter, and why a chunk is damaged
//! (the rules of `retry`; the readable lines of a damaged chunk still count), and their
//! messages (`crate::deadletter::reasons`).

use std::collections::HashMap;

use serde::Deserialize;

use super::{Damaged, ReasonCounts};
use crate::deadletter::reasons::MessageTally;
use crate::state::{StateError, StateStore};

/// The parts of a dead letter that `status` needs (the rest is skipped, not kept).
#[derive(Deserialize)]
struct Letter {
    file: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    identity: Option<String>,
    row: u64,
    stage: String,
    kind: String,
    #[serde(default)]
    message: String,
}

/// Why a dead-letter chunk is damaged (the first problem found is its [`Damaged`] reason).
#[derive(Debug, thiserror::Error)]
enum ChunkProblem {
    /// A letter `retry` cannot use: it names no object key or file version.
    #[error("line {line} names no object key or file version")]
    NoKeyOrVersion { line: usize },
    /// A line that is not a dead letter.
    #[error("line {line} is not a dead letter: {error}")]
    NotALetter {
        line: usize,
        error: serde_json::Error,
    },
    #[error("it is empty (a torn write?)")]
    Empty,
    #[error("its last line is cut short")]
    CutShort,
}

/// Counts the dead letters of one file (its chunks, oldest first): each (key, file
/// version, row) once, with the reason of its newest letter.
pub(super) fn count_letters(
    store: &StateStore,
    chunks: &[String],
    counts: &mut ReasonCounts,
    messages: &mut MessageTally,
    damaged: &mut Vec<Damaged>,
) -> Result<(), StateError> {
    // (key, version, row) → (reason, message, file).
    type Newest = (String, String, String);
    let mut rows: HashMap<(String, Option<String>, u64), Newest> = HashMap::new();
    for path in chunks {
        let Some(stored) = store.get(path)? else {
            continue; // removed by `retry` since the listing
        };
        let mut problem = None;
        let mut lines = 0u64;
        for (n, line) in stored.bytes.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            lines += 1;
            match serde_json::from_slice::<Letter>(line) {
                Ok(letter) => {
                    if letter.key.is_none() || letter.identity.is_none() {
                        // `retry` cannot use it; counted still, by its file name.
                        problem.get_or_insert(ChunkProblem::NoKeyOrVersion { line: n + 1 });
                    }
                    let reason = format!("{}/{}", letter.stage, letter.kind);
                    let key = letter.key.unwrap_or_else(|| letter.file.clone());
                    rows.insert(
                        (key, letter.identity, letter.row),
                        (reason, letter.message, letter.file),
                    );
                }
                Err(error) => {
                    problem.get_or_insert(ChunkProblem::NotALetter { line: n + 1, error });
                }
            }
        }
        if lines == 0 {
            problem.get_or_insert(ChunkProblem::Empty);
        } else if !stored.bytes.ends_with(b"\n") {
            problem.get_or_insert(ChunkProblem::CutShort);
        }
        if let Some(problem) = problem {
            damaged.push(Damaged {
                path: path.clone(),
                reason: problem.to_string(),
            });
        }
    }
    let mut rows: Vec<_> = rows.into_iter().collect();
    // Row order, so that each message's example is its first row.
    rows.sort_by(|a, b| (&a.1.2, a.0.2).cmp(&(&b.1.2, b.0.2)));
    for ((_, _, row), (reason, message, file)) in rows {
        counts.add(&reason, 1);
        messages.add(&reason, &message, &file, row);
    }
    Ok(())
}
