//! The dead-letter record: one row that did not reach CluedIn and was not filtered, with
//! its file, row, stage, cause and the input row as JSON (the line format of
//! `dead-letters.ndjson` and of the state's dead-letter chunks).

use serde::Serialize;

use crate::bad_file::BadFile;
use crate::sink::RejectedRecord;
use crate::transform::RowFailure;
pub use crate::transform::RowStage;

/// One dead-lettered row.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub file: String,
    /// The object key (the state's dead letters; for redelivery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The file version the row belongs to (see `state::files::identity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    pub row: u64,
    pub stage: RowStage,
    pub kind: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    /// The record as it was sent (endpoint rejections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<serde_json::Value>,
    /// The input row (the columns that were read), as JSON.
    #[serde(default)]
    pub input: serde_json::Value,
}

impl DeadLetter {
    /// A letter of `row` of `file` with nothing but its cause (the optional fields unset).
    pub fn new(file: &str, row: u64, stage: RowStage, kind: &str, message: &str) -> Self {
        DeadLetter {
            file: file.to_string(),
            key: None,
            identity: None,
            row,
            stage,
            kind: kind.to_string(),
            message: message.to_string(),
            plugin: None,
            status: None,
            receipt_id: None,
            entity_type: None,
            record: None,
            input: serde_json::Value::Null,
        }
    }

    /// A row the plugin rejected or faulted on, or whose record could not be encoded.
    pub fn failed_row(
        file: &str,
        failure: &RowFailure,
        plugin: &str,
        input: serde_json::Value,
    ) -> Self {
        DeadLetter {
            plugin: Some(plugin.to_string()),
            input,
            ..DeadLetter::new(
                file,
                failure.row,
                failure.stage,
                failure.kind,
                &failure.message,
            )
        }
    }

    /// A row of a file that cannot be read.
    pub fn unread(file: &str, row: u64, bad: &BadFile) -> Self {
        DeadLetter::new(file, row, RowStage::Read, bad.kind, &bad.reason)
    }

    /// Marks the letter as the endpoint's refusal of `record` (status, receipt, entity
    /// type and the record as sent).
    pub fn refused(self, record: &RejectedRecord) -> Self {
        DeadLetter {
            status: Some(record.status),
            receipt_id: record.receipt_id.clone(),
            entity_type: Some(record.entity_type.to_string()),
            record: serde_json::from_slice(&record.json).ok(),
            ..self
        }
    }

    /// The endpoint's refusal of `record` (`endpoint/http-<status>`).
    pub fn endpoint_rejection(record: &RejectedRecord, input: serde_json::Value) -> Self {
        DeadLetter {
            input,
            ..DeadLetter::new(
                &record.origin.file,
                record.origin.row,
                RowStage::Endpoint,
                &format!("http-{}", record.status),
                &record.message,
            )
        }
        .refused(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_letter_reads_back_and_leaves_out_what_it_lacks() {
        let line = r#"{"file":"f.parquet","row":3,"stage":"plugin","kind":"rejected","message":"m","plugin":"p"}"#;
        let letter: DeadLetter = serde_json::from_str(line).unwrap();
        assert_eq!(letter.row, 3);
        assert_eq!(letter.stage, RowStage::Plugin);
        assert_eq!(letter.plugin.as_deref(), Some("p"));
        assert!(letter.key.is_none() && letter.status.is_none());
        assert!(letter.input.is_null());

        let json = serde_json::to_value(&letter).unwrap();
        let object = json.as_object().unwrap();
        for absent in [
            "key",
            "identity",
            "status",
            "receiptId",
            "entityType",
            "record",
        ] {
            assert!(!object.contains_key(absent), "{absent} in {json}");
        }
        assert_eq!(object["stage"], "plugin");
        assert_eq!(object["input"], serde_json::Value::Null);
    }
}
