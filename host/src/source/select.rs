//! Which files of a stage to read: `--include`/`--exclude` globs, `--modified-since`, and
//! `--keys-from` (an explicit list).
//!
//! Globs match a file's key relative to the stage URL ([`StageFile::relative`]); a
//! pattern without `/` matches the file name alone, in any folder. `*` and `?` do not
//! cross `/`, `**` (a whole path segment) does, `[abc]`/`[!abc]` are character classes:
//! `--include 'date=2024-05-*/**'`, `--exclude '*_1_0.snappy.parquet'`. A file is
//! selected when it matches any include (or there is none), no exclude, and was modified
//! at or after `modified_since`.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::stage::{StageError, StageFile};

/// A selection of a stage's files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// Globs a file must match one of (none: every file).
    pub include: Vec<String>,
    /// Globs a file must match none of.
    pub exclude: Vec<String>,
    /// Only files modified at or after this time.
    pub modified_since: Option<DateTime<Utc>>,
    /// Only these keys (relative to the stage URL, or URLs into it), instead of listing
    /// the stage; each must exist.
    pub keys: Option<Vec<String>>,
}

impl Selection {
    /// Checks the globs (a syntax error names the glob).
    pub fn check(&self) -> Result<(), StageError> {
        CompiledSelection::new(self).map(|_| ())
    }

    /// The files of `files` the globs and `modified_since` select (`keys` is not used: for
    /// the files events and queue messages name), and a line for each other one saying why
    /// it is not selected.
    pub fn filter(
        &self,
        files: Vec<StageFile>,
    ) -> Result<(Vec<StageFile>, Vec<String>), StageError> {
        let compiled = CompiledSelection::new(self)?;
        let mut kept = Vec::with_capacity(files.len());
        let mut not_selected = Vec::new();
        for file in files {
            match compiled.rejects(&file) {
                None => kept.push(file),
                Some(reason) => {
                    not_selected.push(format!("{} is not selected: {reason}", file.url))
                }
            }
        }
        Ok((kept, not_selected))
    }

    /// Parses an RFC 3339 time (`2024-05-01T00:00:00Z`, `2024-05-01T02:00:00+02:00`) or a
    /// date (`2024-05-01`, midnight UTC).
    pub fn parse_time(text: &str) -> Result<DateTime<Utc>, StageError> {
        if let Ok(time) = DateTime::parse_from_rfc3339(text.trim()) {
            return Ok(time.with_timezone(&Utc));
        }
        if let Ok(date) = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            && let Some(midnight) = date.and_hms_opt(0, 0, 0)
        {
            return Ok(midnight.and_utc());
        }
        Err(StageError::Selection {
            reason: format!(
                "`{text}` is not an RFC 3339 time (2024-05-01T00:00:00Z) or a date (2024-05-01)"
            ),
        })
    }

    /// Reads a key list: one key per line (relative to the stage URL, or a URL into the
    /// stage); blank lines and lines starting with `#` are ignored.
    pub fn read_keys_file(path: &Path) -> Result<Vec<String>, StageError> {
        let text = std::fs::read_to_string(path).map_err(|error| StageError::Selection {
            reason: format!("cannot read the key list {}: {error}", path.display()),
        })?;
        Ok(Self::parse_keys(&text))
    }

    /// The keys of a key list's text (see [`Selection::read_keys_file`]).
    pub fn parse_keys(text: &str) -> Vec<String> {
        text.lines()
            .map(|line| line.trim_end_matches('\r'))
            .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
            .map(str::to_owned)
            .collect()
    }
}

/// A [`Selection`] with its globs compiled.
pub(crate) struct CompiledSelection {
    include: Vec<Glob>,
    exclude: Vec<Glob>,
    modified_since: Option<DateTime<Utc>>,
}

struct Glob {
    text: String,
    pattern: glob::Pattern,
    /// No `/` in the pattern: match the file name only.
    name_only: bool,
}

impl Glob {
    fn new(text: &str) -> Result<Self, StageError> {
        let pattern = glob::Pattern::new(text).map_err(|error| StageError::Selection {
            reason: format!("invalid glob `{text}`: {error}"),
        })?;
        Ok(Self {
            text: text.to_owned(),
            pattern,
            name_only: !text.contains('/'),
        })
    }

    fn matches(&self, file: &StageFile) -> bool {
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        let subject = if self.name_only {
            file.relative.rsplit('/').next().unwrap_or(&file.relative)
        } else {
            &file.relative
        };
        self.pattern.matches_with(subject, options)
    }
}

impl CompiledSelection {
    pub(crate) fn new(selection: &Selection) -> Result<Self, StageError> {
        let compile = |globs: &[String]| {
            globs
                .iter()
                .map(|text| Glob::new(text))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            include: compile(&selection.include)?,
            exclude: compile(&selection.exclude)?,
            modified_since: selection.modified_since,
        })
    }

    /// Why `file` is not selected, or `None` when it is.
    pub(crate) fn rejects(&self, file: &StageFile) -> Option<String> {
        if !self.include.is_empty() && !self.include.iter().any(|glob| glob.matches(file)) {
            return Some("matches no --include glob".into());
        }
        if let Some(glob) = self.exclude.iter().find(|glob| glob.matches(file)) {
            return Some(format!("matches --exclude `{}`", glob.text));
        }
        if let Some(since) = self.modified_since
            && file.last_modified < since
        {
            return Some(format!(
                "modified {} (before {})",
                file.last_modified.to_rfc3339(),
                since.to_rfc3339()
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::path::parse_file_name;

    fn file(relative: &str, modified: &str) -> StageFile {
        StageFile {
            key: format!("unload/{relative}"),
            relative: relative.into(),
            url: format!("s3://b/unload/{relative}"),
            size: 1,
            e_tag: None,
            version: None,
            last_modified: Selection::parse_time(modified).unwrap(),
            name: parse_file_name(relative),
            partitions: Vec::new(),
            format: None,
        }
    }

    fn selected(selection: &Selection, files: &[StageFile]) -> Vec<String> {
        let compiled = CompiledSelection::new(selection).unwrap();
        files
            .iter()
            .filter(|f| compiled.rejects(f).is_none())
            .map(|f| f.relative.clone())
            .collect()
    }

    #[test]
    fn filter_keeps_the_selected_files_and_says_why_the_others_are_not() {
        let selection = Selection {
            exclude: vec!["*_1_0.snappy.parquet".into()],
            modified_since: Some(Selection::parse_time("2024-05-01").unwrap()),
            ..Selection::default()
        };
        let files = vec![
            file("data_0_0_0.snappy.parquet", "2024-05-02T00:00:00Z"),
            file("data_0_1_0.snappy.parquet", "2024-05-02T00:00:00Z"),
            file("data_0_2_0.snappy.parquet", "2024-04-30T00:00:00Z"),
        ];
        let (kept, not_selected) = selection.filter(files).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].relative, "data_0_0_0.snappy.parquet");
        assert_eq!(not_selected.len(), 2, "{not_selected:?}");
        assert!(
            not_selected[0].contains("matches --exclude"),
            "{not_selected:?}"
        );
        assert!(not_selected[1].contains("before"), "{not_selected:?}");
        let bad = Selection {
            include: vec!["[".into()],
            ..Selection::default()
        };
        assert!(bad.check().is_err());
        assert!(Selection::default().check().is_ok());
    }

    #[test]
    fn globs_match_relative_keys_or_file_names() {
        let files = [
            file("date=2024-05-01/data_0_0_0.snappy.parquet", "2024-05-01"),
            file("date=2024-05-02/data_0_0_0.snappy.parquet", "2024-05-02"),
            file(
                "date=2024-05-02/sub/data_0_1_0.snappy.parquet",
                "2024-05-03",
            ),
            file("data", "2024-05-04"),
        ];
        let select = |include: &[&str], exclude: &[&str]| {
            selected(
                &Selection {
                    include: include.iter().map(|s| s.to_string()).collect(),
                    exclude: exclude.iter().map(|s| s.to_string()).collect(),
                    ..Selection::default()
                },
                &files,
            )
        };
        assert_eq!(select(&[], &[]).len(), 4);
        assert_eq!(
            select(&["date=2024-05-02/*"], &[]),
            vec!["date=2024-05-02/data_0_0_0.snappy.parquet"]
        );
        assert_eq!(select(&["date=2024-05-02/**"], &[]).len(), 2);
        assert_eq!(select(&["*.parquet"], &[]).len(), 3);
        assert_eq!(select(&["*_1_0.snappy.parquet"], &[]).len(), 1);
        assert_eq!(select(&[], &["*.parquet"]), vec!["data"]);
        assert_eq!(select(&["**"], &["date=2024-05-0[12]/*"]).len(), 2);
    }

    #[test]
    fn modified_since_is_inclusive() {
        let files = [
            file("a.parquet", "2024-05-01T00:00:00Z"),
            file("b.parquet", "2024-05-02T00:00:00Z"),
        ];
        let selection = Selection {
            modified_since: Some(Selection::parse_time("2024-05-02T02:00:00+02:00").unwrap()),
            ..Selection::default()
        };
        assert_eq!(selected(&selection, &files), vec!["b.parquet"]);
    }

    #[test]
    fn bad_globs_and_times_are_errors() {
        let error = CompiledSelection::new(&Selection {
            include: vec!["[a".into()],
            ..Selection::default()
        })
        .err()
        .unwrap();
        assert!(error.to_string().contains("invalid glob `[a`"));
        assert!(Selection::parse_time("yesterday").is_err());
        assert!(Selection::parse_time("2024-13-01").is_err());
    }

    #[test]
    fn key_lists_skip_blanks_and_comments() {
        assert_eq!(
            Selection::parse_keys("# keys\na/b.parquet\n\n  \ns3://b/c d.parquet\r\n"),
            vec!["a/b.parquet", "s3://b/c d.parquet"]
        );
    }
}
