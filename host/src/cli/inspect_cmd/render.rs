//! The terminal rendering of `stagepush inspect`'s report: a summary, a table of the files,
//! the schema's columns and the warnings. The core ([`stagepush::source::inspect`]) returns
//! the typed [`StageReport`]; `--json` prints that as it is.

use stagepush::source::inspect::{NameReport, PartitionReport, StageReport};

/// The report as text for a terminal.
pub fn render_text(report: &StageReport) -> String {
    let mut out = String::new();
    let line = |out: &mut String, text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(
        &mut out,
        format!("stage:   {} ({})", report.stage, report.store),
    );
    let totals = &report.totals;
    line(
        &mut out,
        format!(
            "files:   {} ({}), {} rows in {} row groups{}",
            totals.files,
            human_bytes(totals.bytes),
            totals.rows,
            totals.row_groups,
            if totals.unreadable > 0 {
                format!(", {} unreadable", totals.unreadable)
            } else {
                String::new()
            }
        ),
    );
    // CSV and JSON files: their format, compression and where their columns come from;
    // their rows are known only once read.
    if let Some(text) = report
        .files
        .iter()
        .find(|file| file.format != "parquet" && file.columns_from.is_some())
    {
        line(
            &mut out,
            format!(
                "format:  {}, {} compression; rows not known before reading; columns: {}",
                text.format,
                text.compression.as_deref().unwrap_or("no"),
                text.columns_from.as_deref().unwrap_or("-")
            ),
        );
    }
    if !report.files.is_empty() {
        line(&mut out, String::new());
        let rows: Vec<[String; 8]> = report
            .files
            .iter()
            .map(|file| {
                [
                    file.relative.clone(),
                    human_bytes(file.size),
                    file.rows.map_or("-".into(), |rows| rows.to_string()),
                    file.row_groups
                        .map_or("-".into(), |groups| groups.to_string()),
                    if file.codecs.is_empty() {
                        "-".into()
                    } else {
                        file.codecs.join(",")
                    },
                    file.modified.clone(),
                    describe_name(&file.name),
                    describe_partitions(&file.partitions),
                ]
            })
            .collect();
        let header = [
            "FILE",
            "SIZE",
            "ROWS",
            "GROUPS",
            "CODEC",
            "MODIFIED",
            "SNOWFLAKE NAME",
            "PARTITIONS",
        ]
        .map(str::to_owned);
        render_table(&mut out, &header, &rows);
        for file in report.files.iter().filter(|file| file.error.is_some()) {
            line(
                &mut out,
                format!(
                    "  ! {}: {}",
                    file.relative,
                    file.error.as_deref().unwrap_or_default()
                ),
            );
        }
    }
    if !report.schema.is_empty() {
        line(&mut out, String::new());
        line(
            &mut out,
            format!(
                "schema ({} columns, from {}):",
                report.schema.len(),
                report.schema_from.as_deref().unwrap_or("?")
            ),
        );
        let rows: Vec<[String; 5]> = report
            .schema
            .iter()
            .map(|column| {
                [
                    column.name.clone(),
                    column.parquet.clone(),
                    column.snowflake.clone(),
                    column.plugin.clone(),
                    column.note.clone().unwrap_or_default(),
                ]
            })
            .collect();
        let header = [
            "COLUMN",
            "PARQUET",
            "SNOWFLAKE (LIKELY)",
            "PLUGIN GETS",
            "NOTE",
        ]
        .map(str::to_owned);
        render_table(&mut out, &header, &rows);
    }
    if !report.warnings.is_empty() {
        line(&mut out, String::new());
        line(&mut out, "warnings:".into());
        for warning in &report.warnings {
            line(&mut out, format!("  - {warning}"));
        }
    }
    out
}

fn render_table<const N: usize>(out: &mut String, header: &[String; N], rows: &[[String; N]]) {
    let mut widths = header.each_ref().map(|cell| cell.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(header).chain(rows) {
        let mut text = String::from("  ");
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            text.push_str(cell);
            if index + 1 < N {
                text.push_str(&" ".repeat(width - cell.chars().count() + 2));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
}

fn describe_name(name: &NameReport) -> String {
    let mut text = name.prefix.clone();
    if let Some(query_id) = &name.query_id {
        text.push_str(&format!(" query {query_id}"));
    }
    match &name.numbers {
        Some([a, b, c]) => text.push_str(&format!(" {a}_{b}_{c}")),
        None => text.push_str(" (single file)"),
    }
    text
}

fn describe_partitions(partitions: &[PartitionReport]) -> String {
    if partitions.is_empty() {
        return "-".into();
    }
    partitions
        .iter()
        .map(
            |partition| match (&partition.value, partition.name.is_empty()) {
                (Some(value), _) => format!("{}={value}", partition.name),
                (None, false) => format!("{}=NULL", partition.name),
                (None, true) => "NULL".into(),
            },
        )
        .collect::<Vec<_>>()
        .join(" ")
}

/// `512 B`, `16.0 MiB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_trim_trailing_space() {
        let mut out = String::new();
        let header = ["A".to_owned(), "LONGER".to_owned(), "C".to_owned()];
        let rows = [["wide cell".to_owned(), "x".to_owned(), String::new()]];
        render_table(&mut out, &header, &rows);
        assert_eq!(out, "  A          LONGER  C\n  wide cell  x\n");
    }

    #[test]
    fn names_and_partitions_in_words() {
        let name = NameReport {
            prefix: "data".into(),
            query_id: Some("01b2".into()),
            numbers: Some(["0".into(), "1".into(), "2".into()]),
            extension: "snappy.parquet".into(),
            compression: Some("snappy".into()),
            single: false,
        };
        assert_eq!(describe_name(&name), "data query 01b2 0_1_2");
        let single = NameReport {
            query_id: None,
            numbers: None,
            single: true,
            ..name
        };
        assert_eq!(describe_name(&single), "data (single file)");
        let partition = |name: &str, value: Option<&str>| PartitionReport {
            name: name.into(),
            value: value.map(str::to_owned),
        };
        assert_eq!(describe_partitions(&[]), "-");
        assert_eq!(
            describe_partitions(&[
                partition("day", Some("2024-05-01")),
                partition("region", None),
                partition("", None),
            ]),
            "day=2024-05-01 region=NULL NULL"
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(16 * 1024 * 1024), "16.0 MiB");
    }
}
