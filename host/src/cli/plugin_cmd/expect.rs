//! `plugin test --expect`: the produced records compared with a file of expected ones.

use std::io::BufRead;
use std::path::Path;

use anyhow::Context;

/// Differences shown in full by `--expect`; the rest are only counted.
const SHOWN_DIFFERENCES: usize = 5;

/// The non-empty lines of an `--expect` file.
pub(super) fn read_expected(path: &Path) -> anyhow::Result<Vec<String>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read the expected records {}", path.display()))?;
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line =
            line.with_context(|| format!("cannot read the expected records {}", path.display()))?;
        lines.push(line);
    }
    // Trailing blank lines (an editor's final newline) are not records.
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    Ok(lines)
}

/// The outcome of comparing produced records with expected ones.
pub(super) struct Comparison {
    pub(super) matched: bool,
    /// What to print on stderr, ending in a newline.
    pub(super) text: String,
}

/// An expected record: its line (0-based), text and JSON value.
type Expected<'a> = (usize, &'a str, Option<serde_json::Value>);

/// A record's identity: its entity type and external id, else (not a record) its text.
fn identity(line: &str) -> (String, Option<serde_json::Value>) {
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(value) => {
            let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
            match (field("type"), field("externalId")) {
                (Some(kind), Some(id)) => (format!("{kind} {id}"), Some(value)),
                _ => (format!("line `{line}`"), Some(value)),
            }
        }
        Err(_) => (format!("line `{line}`"), None),
    }
}

/// Compares records by identity (entity type and external id; records with the same
/// identity in the order they come), not by position: one missing record is one missing
/// record. Two records match when they are the same text or the same JSON value (so a
/// hand-edited expectation may order keys or space differently).
pub(super) fn compare_records(expected: &[String], produced: &[String], name: &str) -> Comparison {
    use std::collections::{BTreeMap, VecDeque};
    // Expected records by identity, in file order.
    let mut wanted: BTreeMap<String, VecDeque<Expected>> = BTreeMap::new();
    for (line, text) in expected.iter().enumerate() {
        let (id, value) = identity(text);
        wanted.entry(id).or_default().push_back((line, text, value));
    }
    let mut differing = Vec::new();
    let mut unexpected = Vec::new();
    for text in produced {
        let (id, value) = identity(text);
        match wanted.get_mut(&id).and_then(VecDeque::pop_front) {
            Some((_, want, want_value)) => {
                let same = want == text || (value.is_some() && value == want_value);
                if !same {
                    differing.push((id, want, text.as_str()));
                }
            }
            None => unexpected.push((id, text.as_str())),
        }
    }
    let mut missing: Vec<(usize, String, &str)> = wanted
        .into_iter()
        .flat_map(|(id, left)| left.into_iter().map(move |(l, t, _)| (l, id.clone(), t)))
        .collect();
    missing.sort_by_key(|(line, _, _)| *line);
    if differing.is_empty() && unexpected.is_empty() && missing.is_empty() {
        return Comparison {
            matched: true,
            text: format!("expect: ok, all {} records match {name}\n", produced.len()),
        };
    }
    let mut text = format!(
        "expect: MISMATCH with {name}: {} records produced, {} expected; {} missing, {} \
         unexpected, {} differing\n",
        produced.len(),
        expected.len(),
        missing.len(),
        unexpected.len(),
        differing.len()
    );
    let more = |text: &mut String, shown: usize, total: usize, what: &str| {
        if total > shown {
            text.push_str(&format!("  … and {} more {what}\n", total - shown));
        }
    };
    for (id, want, got) in differing.iter().take(SHOWN_DIFFERENCES) {
        text.push_str(&format!(
            "  differing {id}:\n    expected: {want}\n    got:      {got}\n"
        ));
    }
    more(&mut text, SHOWN_DIFFERENCES, differing.len(), "differing");
    for (line, id, want) in missing.iter().take(SHOWN_DIFFERENCES) {
        text.push_str(&format!(
            "  missing {id} (expected line {}):\n    expected: {want}\n",
            line + 1
        ));
    }
    more(&mut text, SHOWN_DIFFERENCES, missing.len(), "missing");
    for (id, got) in unexpected.iter().take(SHOWN_DIFFERENCES) {
        text.push_str(&format!("  unexpected {id}:\n    got:      {got}\n"));
    }
    more(&mut text, SHOWN_DIFFERENCES, unexpected.len(), "unexpected");
    Comparison {
        matched: false,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::compare_records;

    fn record(id: u32, name: &str) -> String {
        format!(r#"{{"externalId":"{id}","type":"Customer","properties":{{"name":"{name}"}}}}"#)
    }

    #[test]
    fn one_missing_record_is_one_missing_record() {
        let expected: Vec<String> = (1..=12).map(|i| record(i, "a")).collect();
        let mut produced = expected.clone();
        produced.remove(0);
        let c = compare_records(&expected, &produced, "e.ndjson");
        assert!(!c.matched);
        assert_eq!(
            c.text,
            format!(
                "expect: MISMATCH with e.ndjson: 11 records produced, 12 expected; 1 missing, 0 \
                 unexpected, 0 differing\n  missing Customer 1 (expected line 1):\n    \
                 expected: {}\n",
                record(1, "a")
            )
        );
    }

    #[test]
    fn differing_and_unexpected_records_are_named_with_bounded_examples() {
        let expected: Vec<String> = (1..=8).map(|i| record(i, "a")).collect();
        let mut produced: Vec<String> = (1..=8).map(|i| record(i, "b")).collect();
        produced.push(record(99, "a"));
        let c = compare_records(&expected, &produced, "e");
        assert!(
            c.text.contains("0 missing, 1 unexpected, 8 differing"),
            "{}",
            c.text
        );
        assert!(c.text.contains("  differing Customer 1:\n"), "{}", c.text);
        assert!(c.text.contains("  … and 3 more differing\n"), "{}", c.text);
        assert!(!c.text.contains("differing Customer 6:"), "{}", c.text);
        assert!(c.text.contains("  unexpected Customer 99:\n"), "{}", c.text);
        // Order within another order: still a match.
        let mut shuffled = expected.clone();
        shuffled.reverse();
        assert!(compare_records(&expected, &shuffled, "e").matched);
    }
}
