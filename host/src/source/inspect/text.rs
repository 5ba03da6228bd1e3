//! What `inspect` reports of a CSV or JSON file: its format and compression, its columns
//! and where they come from (declared, the header line, `_COL_n`, inferred); its row count
//! is not known before reading it.

use super::ColumnReport;
use super::footer::Footer;
use crate::source::schema::describe_column;
use crate::source::stage::StageSource;

/// The report of an open text file.
pub(super) fn footer(source: &StageSource) -> Footer {
    let contract = source.contract_schema().unwrap_or_default();
    let columns = source
        .text_schema()
        .map(|schema| {
            schema
                .columns
                .iter()
                .enumerate()
                .map(|(index, column)| ColumnReport {
                    name: column.name.clone(),
                    parquet: format!("({})", source.format()),
                    snowflake: column.ty.to_string(),
                    plugin: contract
                        .get(index)
                        .map(describe_column)
                        .unwrap_or_else(|| "?".into()),
                    note: None,
                })
                .collect()
        })
        .unwrap_or_default();
    Footer {
        rows: None,
        row_groups: None,
        created_by: None,
        codecs: Vec::new(),
        int96_out_of_range: Vec::new(),
        columns,
        format: source.format(),
        compression: Some(source.compression()),
        columns_from: source.columns_from().map(str::to_owned),
    }
}
