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

/// Compares records line by line. Two lines match when they are the same text, or the
/// same JSON value (so a hand-edited expectation may order keys or space differently).
pub(super) fn compare_records(expected: &[String], produced: &[String], name: &str) -> Comparison {
    let same = |e: &str, g: &str| {
        e == g
            || matches!(
                (
                    serde_json::from_str::<serde_json::Value>(e),
                    serde_json::from_str::<serde_json::Value>(g),
                ),
                (Ok(a), Ok(b)) if a == b
            )
    };
    let lines = expected.len().max(produced.len());
    let differing: Vec<usize> = (0..lines)
        .filter(|&i| match (expected.get(i), produced.get(i)) {
            (Some(e), Some(g)) => !same(e, g),
            _ => true,
        })
        .collect();
    if differing.is_empty() {
        return Comparison {
            matched: true,
            text: format!("expect: ok, all {} records match {name}\n", produced.len()),
        };
    }
    let mut text = format!(
        "expect: MISMATCH with {name}: {} records produced, {} expected, {} differing lines\n",
        produced.len(),
        expected.len(),
        differing.len()
    );
    let missing = "(no record)";
    for &i in differing.iter().take(SHOWN_DIFFERENCES) {
        text.push_str(&format!(
            "  line {}:\n    expected: {}\n    got:      {}\n",
            i + 1,
            expected.get(i).map_or(missing, String::as_str),
            produced.get(i).map_or(missing, String::as_str),
        ));
    }
    if differing.len() > SHOWN_DIFFERENCES {
        text.push_str(&format!(
            "  … and {} more differing lines\n",
            differing.len() - SHOWN_DIFFERENCES
        ));
    }
    Comparison {
        matched: false,
        text,
    }
}
