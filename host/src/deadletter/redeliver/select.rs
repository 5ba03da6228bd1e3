//! Which dead letters a redelivery works on: the chunks of the state read and their
//! duplicates collapsed (the newest chunk wins), and each file as the stage has it now.

use std::collections::BTreeMap;

use crate::deadletter::DeadLetter;
use crate::source::{Stage, StageError, StageFile, StoreKind};
use crate::state::StateStore;

use super::RedeliverError;

/// The dead letters of one `dead-letters/<stage-id>/<file-id>/` folder.
#[derive(Default)]
pub(super) struct Folder {
    /// Its chunks, oldest first.
    pub(super) chunks: Vec<String>,
    /// The newest letter of every (key, identity, row).
    pub(super) letters: BTreeMap<(String, String, u64), DeadLetter>,
    /// Lines that repeated a row.
    pub(super) duplicates: u64,
}

/// Reads every dead-letter chunk under `prefix`, by folder.
pub(super) fn load(
    state: &StateStore,
    prefix: &str,
) -> Result<BTreeMap<String, Folder>, RedeliverError> {
    let mut folders: BTreeMap<String, Folder> = BTreeMap::new();
    for path in state.list(prefix)? {
        let rest = &path[prefix.len()..];
        match rest.split_once('/') {
            Some((folder, name))
                if !folder.is_empty() && !name.contains('/') && name.ends_with(".ndjson") =>
            {
                folders
                    .entry(folder.to_string())
                    .or_default()
                    .chunks
                    .push(path.clone());
            }
            _ => tracing::warn!(path = %path, "not a dead-letter chunk: ignored"),
        }
    }
    for folder in folders.values_mut() {
        // Oldest first, so that a newer line of the same row replaces an older one.
        folder
            .chunks
            .sort_by(|a, b| chunk_name(a).cmp(chunk_name(b)));
        let mut kept = Vec::with_capacity(folder.chunks.len());
        for chunk in &folder.chunks {
            let Some(stored) = state.get(chunk)? else {
                // Deleted since the listing (another redelivery): its letters went with it.
                continue;
            };
            for letter in parse_chunk(chunk, &stored.bytes)? {
                // parse_chunk checked that both are there.
                let key = letter.key.clone().unwrap_or_default();
                let identity = letter.identity.clone().unwrap_or_default();
                if folder
                    .letters
                    .insert((key, identity, letter.row), letter)
                    .is_some()
                {
                    folder.duplicates += 1;
                }
            }
            kept.push(chunk.clone());
        }
        folder.chunks = kept;
    }
    folders.retain(|_, f| !f.chunks.is_empty());
    Ok(folders)
}

/// The file name of a chunk path.
fn chunk_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The time (ms since 1970) a chunk's name starts with, if it does.
pub(super) fn chunk_time(path: &str) -> Option<u64> {
    let name = chunk_name(path);
    let digits = name.split('-').next()?;
    (digits.len() == 13 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The dead letters of a chunk; anything else is [`RedeliverError::Damaged`] naming it.
fn parse_chunk(chunk: &str, bytes: &[u8]) -> Result<Vec<DeadLetter>, RedeliverError> {
    let damaged = |reason: String| RedeliverError::Damaged {
        chunk: chunk.to_string(),
        reason,
    };
    if bytes.is_empty() {
        return Err(damaged("it is empty".into()));
    }
    if !bytes.ends_with(b"\n") {
        return Err(damaged("its last line is cut short".into()));
    }
    let mut letters = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let number = index + 1;
        let letter: DeadLetter = serde_json::from_slice(line)
            .map_err(|e| damaged(format!("line {number} is not a dead letter: {e}")))?;
        if letter.key.is_none() || letter.identity.is_none() {
            return Err(damaged(format!(
                "line {number} names no object key or file version"
            )));
        }
        letters.push(letter);
    }
    Ok(letters)
}

/// The file at object key `key` as the stage has it now; `None` when it is gone.
pub(super) fn current_file(stage: &Stage, key: &str) -> Result<Option<StageFile>, StageError> {
    let name = match stage.kind() {
        StoreKind::Local => key.to_string(),
        _ => stage.stage_url().object_url(key),
    };
    match stage.file(&name) {
        Ok(file) => Ok(Some(file)),
        Err(StageError::NotFound { .. } | StageError::Vanished { .. }) => Ok(None),
        // A stage URL naming one object: look at the listing instead.
        Err(StageError::Selection { .. }) => match stage.list() {
            Ok(files) => Ok(files.into_iter().find(|f| f.key == key)),
            Err(StageError::NotFound { .. } | StageError::Vanished { .. }) => Ok(None),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::RowStage;

    fn letter(row: u64) -> String {
        format!(
            r#"{{"file":"/s/a.parquet","key":"/s/a.parquet","identity":"size:1:mtime:2","row":{row},"stage":"endpoint","kind":"http-400","message":"m","input":null}}"#
        )
    }

    #[test]
    fn chunks_parse_and_damage_is_named() {
        let good = format!("{}\n\n{}\n", letter(1), letter(2));
        let letters = parse_chunk("dead-letters/s/f/c.ndjson", good.as_bytes()).unwrap();
        assert_eq!(letters.iter().map(|l| l.row).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(letters[0].stage, RowStage::Endpoint);

        let cases = [
            (String::new(), "empty"),
            (letter(1), "cut short"),
            (format!("{}\n{{\"file\":\n", letter(1)), "line 2"),
            (
                "{\"file\":\"f\",\"row\":1,\"stage\":\"plugin\",\"kind\":\"k\",\"message\":\"m\"}\n"
                    .to_string(),
                "names no object key",
            ),
        ];
        for (text, expected) in cases {
            let err = parse_chunk("dead-letters/s/f/c.ndjson", text.as_bytes()).unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, RedeliverError::Damaged { .. }), "{message}");
            assert!(message.contains("dead-letters/s/f/c.ndjson"), "{message}");
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn chunk_times_come_from_their_names() {
        assert_eq!(
            chunk_time("dead-letters/a/b/1714566896789-run-000001.ndjson"),
            Some(1_714_566_896_789)
        );
        assert_eq!(chunk_time("dead-letters/a/b/x-run.ndjson"), None);
    }
}
