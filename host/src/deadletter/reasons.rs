//! Dead letters grouped by message: for each reason (`stage/kind`, e.g. `plugin/rejected`)
//! the most frequent messages, each with its row count and one example row (file, row and
//! the exact message). The run summary, the run report (`rows.deadLetteredByMessage`) and
//! `stagepush status` show the same groups.
//!
//! Messages group by their [`pattern`]: the message with its free-standing numbers
//! replaced by `<n>`, so `value 12 out of range` and `value 7 out of range` are one group,
//! while `Int64` or `UTF-8` stay as they are. A group whose rows all had the same message
//! shows that message; one whose messages differed shows the pattern (and the example's
//! exact message). Memory stays bounded: at most [`MAX_GROUPS_PER_REASON`] groups per
//! reason are tracked (later rows with new messages count as untracked), and messages are
//! cut at [`MAX_MESSAGE_CHARS`].

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// Messages shown per reason.
pub const TOP_MESSAGES: usize = 5;
/// Distinct message groups tracked per reason; rows with further messages are counted,
/// not grouped.
pub const MAX_GROUPS_PER_REASON: usize = 1_000;
/// Characters of a message kept (longer ones end with `…`).
pub const MAX_MESSAGE_CHARS: usize = 300;

/// What a free-standing number becomes in a [`pattern`].
const NUMBER: &str = "<n>";

/// One row a group's message came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Example {
    pub file: String,
    pub row: u64,
    /// The row's exact message (cut at [`MAX_MESSAGE_CHARS`]).
    pub message: String,
}

/// Rows of one reason with one message (or one [`pattern`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageCount {
    /// The message; its pattern when the rows' messages differed in their numbers.
    pub message: String,
    pub rows: u64,
    /// The first row seen with it.
    pub example: Example,
}

/// The most frequent messages of one reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopMessages {
    /// Most rows first (then by message).
    pub messages: Vec<MessageCount>,
    /// Rows whose messages are not shown (further groups, or untracked).
    #[serde(default)]
    pub other_rows: u64,
    /// How many further messages (groups) those rows had, as far as tracked.
    #[serde(default)]
    pub other_messages: u64,
}

/// The groups of one reason while they are counted.
#[derive(Debug, Default, Clone)]
struct ReasonGroups {
    groups: HashMap<String, Group>,
    /// Rows with a message seen after [`MAX_GROUPS_PER_REASON`] groups.
    untracked: u64,
}

#[derive(Debug, Clone)]
struct Group {
    rows: u64,
    example: Example,
    /// Rows had different messages with this pattern.
    varied: bool,
}

/// Counts dead letters by reason and message (see the module docs).
#[derive(Debug, Default, Clone)]
pub struct MessageTally {
    reasons: BTreeMap<String, ReasonGroups>,
}

impl MessageTally {
    /// One dead-lettered row (a group's example is its lowest file and row, so the result
    /// does not depend on the order rows are added in).
    pub fn add(&mut self, reason: &str, message: &str, file: &str, row: u64) {
        let message = cut(message);
        let key = pattern(&message);
        let groups = match self.reasons.get_mut(reason) {
            Some(groups) => groups,
            None => self.reasons.entry(reason.to_string()).or_default(),
        };
        if let Some(group) = groups.groups.get_mut(&key) {
            group.rows += 1;
            group.varied |= group.example.message != message;
            // The example is the lowest file and row, whatever order workers add rows in.
            if (file, row) < (group.example.file.as_str(), group.example.row) {
                group.example = Example {
                    file: file.to_string(),
                    row,
                    message,
                };
            }
        } else if groups.groups.len() < MAX_GROUPS_PER_REASON {
            let example = Example {
                file: file.to_string(),
                row,
                message,
            };
            groups.groups.insert(
                key,
                Group {
                    rows: 1,
                    example,
                    varied: false,
                },
            );
        } else {
            groups.untracked += 1;
        }
    }

    /// Adds another tally's rows (a group's example is the one with the lower file and
    /// row, so the result does not depend on the order of merging).
    pub fn merge(&mut self, other: &MessageTally) {
        for (reason, theirs) in &other.reasons {
            let ours = self.reasons.entry(reason.clone()).or_default();
            ours.untracked += theirs.untracked;
            for (key, group) in &theirs.groups {
                if let Some(mine) = ours.groups.get_mut(key) {
                    mine.rows += group.rows;
                    mine.varied |= group.varied || mine.example.message != group.example.message;
                    if (&group.example.file, group.example.row)
                        < (&mine.example.file, mine.example.row)
                    {
                        mine.example = group.example.clone();
                    }
                } else if ours.groups.len() < MAX_GROUPS_PER_REASON {
                    ours.groups.insert(key.clone(), group.clone());
                } else {
                    ours.untracked += group.rows;
                }
            }
        }
    }

    /// The `n` most frequent messages of each reason.
    pub fn top(&self, n: usize) -> BTreeMap<String, TopMessages> {
        self.reasons
            .iter()
            .map(|(reason, groups)| {
                let mut all: Vec<(&String, &Group)> = groups.groups.iter().collect();
                all.sort_by(|a, b| b.1.rows.cmp(&a.1.rows).then_with(|| a.0.cmp(b.0)));
                let rest = all.split_off(all.len().min(n));
                let messages = all
                    .into_iter()
                    .map(|(key, group)| MessageCount {
                        message: if group.varied {
                            key.clone()
                        } else {
                            group.example.message.clone()
                        },
                        rows: group.rows,
                        example: group.example.clone(),
                    })
                    .collect();
                let top = TopMessages {
                    messages,
                    other_rows: rest.iter().map(|(_, g)| g.rows).sum::<u64>() + groups.untracked,
                    other_messages: rest.len() as u64,
                };
                (reason.clone(), top)
            })
            .collect()
    }
}

/// A message with its free-standing numbers (digit runs not touching a letter or `_`)
/// replaced by `<n>`: `row 12: value -3.5` → `row <n>: value -<n>.<n>`; `Int64`, `x86_64`
/// and `3rd` stay as they are.
pub fn pattern(message: &str) -> String {
    let chars: Vec<char> = message.chars().collect();
    let mut out = String::with_capacity(message.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !c.is_ascii_digit() {
            out.push(c);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        let word = |c: &char| c.is_alphanumeric() || *c == '_';
        let touches_before = start > 0 && word(&chars[start - 1]);
        let touches_after = chars.get(i).is_some_and(|c| c.is_alphabetic() || *c == '_');
        if touches_before || touches_after {
            out.extend(&chars[start..i]);
        } else {
            out.push_str(NUMBER);
        }
    }
    out
}

/// The message cut at [`MAX_MESSAGE_CHARS`] (on a character boundary, ending with `…`).
pub fn cut(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &message[..at]),
        None => message.to_string(),
    }
}

/// One group as people read it: `12 rows: CUSTOMER_ID is null (e.g. a.parquet row 3)`, or
/// with a pattern, `7 rows: value <n> out of range (e.g. a.parquet row 9: value 99 out of
/// range)`.
pub fn describe(m: &MessageCount) -> String {
    let rows = if m.rows == 1 { "row" } else { "rows" };
    let example = if m.example.message == m.message {
        format!("e.g. {} row {}", m.example.file, m.example.row)
    } else {
        format!(
            "e.g. {} row {}: {}",
            m.example.file, m.example.row, m.example.message
        )
    };
    format!("{} {rows}: {} ({example})", m.rows, m.message)
}

/// The rows whose messages are not shown, as people read it, when there are any:
/// `4 more rows with 2 other messages`.
pub fn describe_others(top: &TopMessages) -> Option<String> {
    if top.other_rows == 0 {
        return None;
    }
    let rows = if top.other_rows == 1 { "row" } else { "rows" };
    Some(match top.other_messages {
        0 => format!("{} more {rows} with other messages", top.other_rows),
        1 => format!("{} more {rows} with 1 other message", top.other_rows),
        n => format!("{} more {rows} with {n} other messages", top.other_rows),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_standing_numbers_become_a_placeholder_and_words_stay() {
        assert_eq!(pattern("row 12: value -3.5"), "row <n>: value -<n>.<n>");
        assert_eq!(
            pattern("expected Int64, got x86_64 on the 3rd try"),
            "expected Int64, got x86_64 on the 3rd try"
        );
        assert_eq!(pattern("id CUST-00012 is taken"), "id CUST-<n> is taken");
        assert_eq!(pattern("CUSTOMER_ID is null"), "CUSTOMER_ID is null");
        assert_eq!(pattern("é1 ü 2"), "é1 ü <n>");
    }

    #[test]
    fn rows_group_by_message_with_counts_and_the_first_example() {
        let mut t = MessageTally::default();
        t.add("plugin/rejected", "CUSTOMER_ID is null", "a.parquet", 3);
        t.add("plugin/rejected", "value 12 out of range", "a.parquet", 5);
        t.add("plugin/rejected", "CUSTOMER_ID is null", "a.parquet", 7);
        t.add("plugin/rejected", "value 99 out of range", "b.parquet", 1);
        t.add("plugin/rejected", "CUSTOMER_ID is null", "b.parquet", 2);
        t.add("endpoint/http-400", "bad property", "b.parquet", 4);
        let top = t.top(TOP_MESSAGES);
        let rejected = &top["plugin/rejected"];
        assert_eq!(rejected.messages.len(), 2);
        assert_eq!(rejected.other_rows, 0);
        let first = &rejected.messages[0];
        assert_eq!(
            (first.message.as_str(), first.rows),
            ("CUSTOMER_ID is null", 3)
        );
        assert_eq!(
            (first.example.file.as_str(), first.example.row),
            ("a.parquet", 3)
        );
        assert_eq!(
            describe(first),
            "3 rows: CUSTOMER_ID is null (e.g. a.parquet row 3)"
        );
        let second = &rejected.messages[1];
        assert_eq!(
            (second.message.as_str(), second.rows),
            ("value <n> out of range", 2)
        );
        assert_eq!(
            describe(second),
            "2 rows: value <n> out of range (e.g. a.parquet row 5: value 12 out of range)"
        );
        assert_eq!(top["endpoint/http-400"].messages[0].rows, 1);
    }

    #[test]
    fn only_the_top_messages_are_shown_and_the_rest_are_counted() {
        let mut t = MessageTally::default();
        for (n, message) in ["a", "b", "c", "d", "e", "f", "g"].iter().enumerate() {
            for row in 0..=n as u64 {
                t.add("plugin/rejected", message, "f.parquet", row);
            }
        }
        let top = &t.top(3)["plugin/rejected"];
        let shown: Vec<&str> = top.messages.iter().map(|m| m.message.as_str()).collect();
        assert_eq!(shown, ["g", "f", "e"]);
        assert_eq!((top.other_rows, top.other_messages), (1 + 2 + 3 + 4, 4));
        assert_eq!(
            describe_others(top).as_deref(),
            Some("10 more rows with 4 other messages")
        );
    }

    #[test]
    fn the_groups_tracked_are_bounded_and_long_messages_are_cut() {
        let mut t = MessageTally::default();
        for n in 0..MAX_GROUPS_PER_REASON + 10 {
            t.add(
                "plugin/rejected",
                &format!("bad value x{n}"),
                "f.parquet",
                0,
            );
        }
        let top = &t.top(TOP_MESSAGES)["plugin/rejected"];
        assert_eq!(top.messages.len(), TOP_MESSAGES);
        assert_eq!(
            top.other_rows,
            (MAX_GROUPS_PER_REASON + 10 - TOP_MESSAGES) as u64
        );
        assert_eq!(
            top.other_messages,
            (MAX_GROUPS_PER_REASON - TOP_MESSAGES) as u64
        );

        let mut t = MessageTally::default();
        t.add("read/corrupt-file", &"é".repeat(1000), "f.parquet", 0);
        let shown = &t.top(1)["read/corrupt-file"].messages[0].message;
        assert_eq!(shown.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn merging_adds_rows_and_keeps_the_lowest_example() {
        let mut a = MessageTally::default();
        a.add("plugin/rejected", "value 5 out of range", "b.parquet", 1);
        let mut b = MessageTally::default();
        b.add("plugin/rejected", "value 6 out of range", "a.parquet", 9);
        b.add("plugin/trap", "boom", "a.parquet", 2);
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab.top(5), ba.top(5));
        let m = &ab.top(5)["plugin/rejected"].messages[0];
        assert_eq!((m.rows, m.message.as_str()), (2, "value <n> out of range"));
        assert_eq!((m.example.file.as_str(), m.example.row), ("a.parquet", 9));
    }

    #[test]
    fn the_example_does_not_depend_on_the_order_rows_are_added_in() {
        let rows = [
            ("b.parquet", 3),
            ("a.parquet", 9),
            ("a.parquet", 2),
            ("b.parquet", 0),
        ];
        let mut forward = MessageTally::default();
        let mut backward = MessageTally::default();
        for (file, row) in rows {
            forward.add("plugin/rejected", "CUSTOMER_ID is null", file, row);
        }
        for (file, row) in rows.iter().rev() {
            backward.add("plugin/rejected", "CUSTOMER_ID is null", file, *row);
        }
        let (f, b) = (forward.top(5), backward.top(5));
        assert_eq!(format!("{f:?}"), format!("{b:?}"));
        let example = &f["plugin/rejected"].messages[0].example;
        assert_eq!((example.file.as_str(), example.row), ("a.parquet", 2));
    }
}
