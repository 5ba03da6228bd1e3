//! What `inspect` warns about: what trips users up (integers unloaded as decimals,
//! `HEADER=FALSE`'s `_COL_n` names, columns a plugin cannot receive, schemas that differ
//! across files, unreadable or empty files, files in a codec a run refuses, INT96 values
//! outside years 0001–9999, files of several unload queries).

use std::collections::BTreeSet;

use super::ColumnReport;
use crate::source::stage::StageFile;

/// Files named in one warning before "and N more".
const MAX_NAMED_FILES: usize = 5;

/// What reading the footers found, file by file (relative keys).
#[derive(Debug, Default)]
pub(super) struct Findings {
    /// Files whose schema differs from the stage's, with how.
    pub(super) differing: Vec<(String, String)>,
    /// Files that cannot be read as Parquet (other than for their codec).
    pub(super) unreadable: Vec<String>,
    /// Files refused for their codec: (file, codec, the fix).
    pub(super) codecs: Vec<(String, String, String)>,
    /// INT96 columns whose footer statistics show values a run cannot read:
    /// (file, column, why).
    pub(super) int96: Vec<(String, String, String)>,
    /// Files without rows.
    pub(super) empty: Vec<String>,
}

/// The warnings, in the order `inspect` gives them.
pub(super) fn warnings(
    files: &[StageFile],
    columns: &[ColumnReport],
    schema_from: Option<&str>,
    found: &Findings,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if files.is_empty() {
        warnings.push(
            "no data files found (Snowflake writes no file for an empty result; check the URL \
             and the selection)"
                .into(),
        );
    }
    warnings.extend(schema_warnings(columns));
    let differing = &found.differing;
    if !differing.is_empty() {
        let first = schema_from.unwrap_or("the first file");
        let named: Vec<String> = differing
            .iter()
            .take(MAX_NAMED_FILES)
            .map(|(file, difference)| format!("{file} ({difference})"))
            .collect();
        let more = differing.len().saturating_sub(MAX_NAMED_FILES);
        warnings.push(format!(
            "{} file(s) have a schema different from {first}'s: {}{}; a run reads one \
             schema: such files are dead-lettered or stop the run (--on-bad-file)",
            differing.len(),
            named.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        ));
    }
    if !found.unreadable.is_empty() {
        warnings.push(format!(
            "{} file(s) cannot be read as Parquet: {}",
            found.unreadable.len(),
            name_list(&found.unreadable)
        ));
    }
    warnings.extend(codec_warnings(&found.codecs));
    if let Some((_, _, problem)) = found.int96.first() {
        let columns: BTreeSet<&str> = found
            .int96
            .iter()
            .map(|(_, column, _)| column.as_str())
            .collect();
        let files: Vec<String> = found.int96.iter().map(|(file, ..)| file.clone()).collect();
        let mut unique = files.clone();
        unique.dedup();
        warnings.push(format!(
            "INT96 timestamp column(s) {} hold values a run cannot read (footer statistics \
             of {}: {problem}): such rows are dead-lettered as row errors, never read as \
             another date",
            columns.into_iter().collect::<Vec<_>>().join(", "),
            name_list(&unique)
        ));
    }
    if !found.empty.is_empty() {
        warnings.push(format!(
            "{} file(s) have no rows: {}",
            found.empty.len(),
            name_list(&found.empty)
        ));
    }
    let query_ids: BTreeSet<&str> = files
        .iter()
        .filter_map(|file| file.name.query_id.as_deref())
        .collect();
    if query_ids.len() > 1 {
        warnings.push(format!(
            "the files come from {} different unload queries (query ids in their names): a \
             retried or repeated COPY INTO can leave older files behind; select one with \
             --include '*<query id>*'",
            query_ids.len()
        ));
    }
    warnings
}

/// One warning per codec a run refuses, naming its files and the fix.
fn codec_warnings(refused: &[(String, String, String)]) -> Vec<String> {
    let codecs: BTreeSet<(&str, &str)> = refused
        .iter()
        .map(|(_, codec, fix)| (codec.as_str(), fix.as_str()))
        .collect();
    codecs
        .into_iter()
        .map(|(codec, fix)| {
            let files: Vec<String> = refused
                .iter()
                .filter(|(_, c, _)| c == codec)
                .map(|(file, ..)| file.clone())
                .collect();
            format!(
                "{} file(s) are compressed with {codec}, which stagepush cannot read: {}; a \
                 run refuses them (dead-lettered, or the run stops with --on-bad-file fail): \
                 {fix}",
                files.len(),
                name_list(&files)
            )
        })
        .collect()
}

fn name_list(names: &[String]) -> String {
    let mut text = names
        .iter()
        .take(MAX_NAMED_FILES)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > MAX_NAMED_FILES {
        text.push_str(&format!(" and {} more", names.len() - MAX_NAMED_FILES));
    }
    text
}

/// Warnings about the stage's schema.
fn schema_warnings(columns: &[ColumnReport]) -> Vec<String> {
    let mut warnings = Vec::new();
    let decimal_integers: Vec<&str> = columns
        .iter()
        .filter(|column| {
            column.snowflake.starts_with("NUMBER(") && column.snowflake.ends_with(",0)")
        })
        .filter(|column| column.parquet.contains("DECIMAL("))
        .map(|column| column.name.as_str())
        .collect();
    if !decimal_integers.is_empty() {
        warnings.push(format!(
            "integer column(s) {} were unloaded as DECIMAL (Snowflake writes NUMBER as a \
             decimal unless the query casts it): the plugin gets decimals; to get integers \
             cast them in the unload query, e.g. CAST({} AS BIGINT), if the values fit in \
             64 bits",
            decimal_integers.join(", "),
            decimal_integers[0]
        ));
    }
    let header_false: Vec<&str> = columns
        .iter()
        .map(|column| column.name.as_str())
        .filter(|name| is_positional_name(name))
        .collect();
    if !header_false.is_empty() {
        warnings.push(format!(
            "column(s) named {}: the unload ran with HEADER=FALSE (the default), which drops \
             the column names; add HEADER=TRUE to the COPY INTO to keep them, or map the \
             columns by position",
            if header_false.len() > 3 {
                format!(
                    "{} … {}",
                    header_false[0],
                    header_false[header_false.len() - 1]
                )
            } else {
                header_false.join(", ")
            }
        ));
    }
    let unsupported: Vec<&str> = columns
        .iter()
        .filter(|column| column.plugin.starts_with("not supported"))
        .map(|column| column.name.as_str())
        .collect();
    if !unsupported.is_empty() {
        warnings.push(format!(
            "column(s) {} have a type a plugin cannot receive: a run refuses this stage",
            unsupported.join(", ")
        ));
    }
    warnings
}

/// `_COL_0`, `_COL_1`, …: Snowflake's names under HEADER=FALSE.
fn is_positional_name(name: &str) -> bool {
    name.strip_prefix("_COL_")
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positional_names() {
        assert!(is_positional_name("_COL_0"));
        assert!(is_positional_name("_COL_12"));
        assert!(!is_positional_name("_COL_"));
        assert!(!is_positional_name("_COL_X"));
        assert!(!is_positional_name("COL_1"));
    }

    fn column(name: &str, parquet: &str, snowflake: &str, plugin: &str) -> ColumnReport {
        ColumnReport {
            name: name.into(),
            parquet: parquet.into(),
            snowflake: snowflake.into(),
            plugin: plugin.into(),
            note: None,
        }
    }

    #[test]
    fn schema_warnings_name_decimal_integers_positional_names_and_unsupported_columns() {
        let columns = [
            column(
                "_COL_0",
                "REQUIRED FIXED_LEN_BYTE_ARRAY(16) DECIMAL(38,0)",
                "NUMBER(38,0)",
                "non-null decimal(38,0)",
            ),
            column(
                "_COL_1",
                "OPTIONAL group",
                "OBJECT",
                "not supported: structs",
            ),
            column(
                "NAME",
                "OPTIONAL BYTE_ARRAY UTF8",
                "VARCHAR",
                "nullable text",
            ),
        ];
        let warnings = schema_warnings(&columns);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].starts_with("integer column(s) _COL_0 were unloaded as DECIMAL"));
        assert!(warnings[0].contains("CAST(_COL_0 AS BIGINT)"));
        assert!(warnings[1].starts_with("column(s) named _COL_0, _COL_1: the unload ran with"));
        assert_eq!(
            warnings[2],
            "column(s) _COL_1 have a type a plugin cannot receive: a run refuses this stage"
        );
        assert!(schema_warnings(&columns[2..]).is_empty());
    }

    #[test]
    fn refused_codecs_and_unreadable_int96_values_are_warned_about_with_the_fix() {
        let found = Findings {
            codecs: vec![
                (
                    "a.parquet".into(),
                    "LZO".into(),
                    "unload with SNAPPY".into(),
                ),
                (
                    "b.parquet".into(),
                    "LZO".into(),
                    "unload with SNAPPY".into(),
                ),
            ],
            int96: vec![
                ("c.parquet".into(), "AT".into(), "julian day 9".into()),
                ("c.parquet".into(), "UNTIL".into(), "julian day 8".into()),
            ],
            ..Findings::default()
        };
        let warnings = warnings(&[], &[], None, &found);
        assert_eq!(
            &warnings[1..],
            [
                "2 file(s) are compressed with LZO, which stagepush cannot read: a.parquet, \
                 b.parquet; a run refuses them (dead-lettered, or the run stops with \
                 --on-bad-file fail): unload with SNAPPY",
                "INT96 timestamp column(s) AT, UNTIL hold values a run cannot read (footer \
                 statistics of c.parquet: julian day 9): such rows are dead-lettered as row \
                 errors, never read as another date",
            ]
        );
    }

    #[test]
    fn stage_warnings_name_at_most_five_files() {
        let found = Findings {
            differing: vec![("b.parquet".into(), "2 columns instead of 3".into())],
            unreadable: (0..7).map(|n| format!("bad{n}")).collect(),
            empty: vec!["e.parquet".into()],
            ..Findings::default()
        };
        let warnings = warnings(&[], &[], Some("s3://b/a.parquet"), &found);
        assert_eq!(
            warnings,
            [
                "no data files found (Snowflake writes no file for an empty result; check the \
                 URL and the selection)",
                "1 file(s) have a schema different from s3://b/a.parquet's: b.parquet (2 \
                 columns instead of 3); a run reads one schema: such files are dead-lettered \
                 or stop the run (--on-bad-file)",
                "7 file(s) cannot be read as Parquet: bad0, bad1, bad2, bad3, bad4 and 2 more",
                "1 file(s) have no rows: e.parquet",
            ]
        );
    }
}
