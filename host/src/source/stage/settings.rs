//! A stage's format settings: `[source] format`, `[source.csv]` and `[source.json]`
//! ([`FormatSettings`]), checked when the stage is built (each message names its key);
//! which files of a listing the stage reads ([`Stage::keep_readable`], the mixed-format
//! refusal); the format of an extension-less file from its first bytes; and the one JSON
//! schema a stage without declared JSON columns infers from its first file.

use std::sync::{Arc, OnceLock};

use super::{Stage, StageError, StageFile};
use crate::source::format::{Compression, FileFormat, FormatSetting, sniff};
use crate::source::text::{CsvOptions, DeclaredColumn, JsonOptions, TextSchema};
use crate::storage::{StageConfig, StageUrl};

/// How a stage's files are read (shared by the stage's clones).
#[derive(Debug)]
pub(crate) struct FormatSettings {
    /// `[source] format`.
    pub format: FormatSetting,
    /// `[source.csv]`.
    pub csv: Arc<CsvOptions>,
    /// `[source.json]`.
    pub json: Arc<JsonOptions>,
    /// JSON files without declared columns: the columns inferred from the first JSON file
    /// opened (the pipeline opens the stage's first file, by key, first), reused for every
    /// other file so that each is read with the same columns.
    pub json_schema: OnceLock<Arc<TextSchema>>,
}

impl FormatSettings {
    /// The settings of `config`, checked: a message names the key at fault.
    pub fn new(config: &StageConfig, stage: &str) -> Result<FormatSettings, StageError> {
        let invalid = |reason: String| StageError::Config {
            stage: stage.to_owned(),
            reason,
        };
        config
            .csv
            .check()
            .map_err(|error| invalid(error.to_string()))?;
        for declaration in &config.json.columns {
            DeclaredColumn::parse(declaration)
                .map_err(|error| invalid(format!("[source.json] columns: {error}")))?;
        }
        if config.json.infer_rows == 0 {
            return Err(invalid(
                "[source.json] infer_rows must be at least 1".to_owned(),
            ));
        }
        Ok(FormatSettings {
            format: config.format,
            csv: Arc::new(config.csv.clone()),
            json: Arc::new(config.json.clone()),
            json_schema: OnceLock::new(),
        })
    }

    /// The format of a file whose name does not say it, from its first bytes: Parquet,
    /// compressed text, or plain text when `[source] format` names a text format (an
    /// extension-less plain-text file is not taken for data otherwise). With `format =
    /// "csv"` or `"json"`, text is read as that format whatever its first character.
    pub fn content_format(&self, head: &[u8]) -> Option<(FileFormat, Compression)> {
        let (format, compression) = sniff(head)?;
        match (format, self.format.format()) {
            (FileFormat::Parquet, _) => Some((format, compression)),
            (_, Some(named @ (FileFormat::Csv | FileFormat::Json))) => Some((named, compression)),
            (_, _) if compression != Compression::None => Some((format, compression)),
            _ => None,
        }
    }

    /// Where the columns of a `format` file come from, in words (`inspect`).
    pub fn columns_from(&self, format: FileFormat) -> String {
        match format {
            FileFormat::Csv if !self.csv.columns.is_empty() => {
                "declared ([source.csv] columns)".into()
            }
            FileFormat::Csv if self.csv.header => "the header line ([source.csv] header)".into(),
            FileFormat::Csv => {
                "_COL_0, _COL_1, … (no header line; name and type them with [source.csv] \
                 columns)"
                    .into()
            }
            FileFormat::Json if !self.json.columns.is_empty() => {
                "declared ([source.json] columns)".into()
            }
            FileFormat::Json => format!(
                "inferred from the first {} rows of the stage's first JSON file",
                self.json.infer_rows
            ),
            FileFormat::Parquet => "the Parquet footer".into(),
        }
    }

    /// Why a file of `format` is not read with these settings (`None`: it is read).
    pub fn skips(&self, format: FileFormat) -> Option<String> {
        let named = self.format.format()?;
        (named != format).then(|| {
            format!("a {format} file; `[source] format = \"{named}\"` reads only {named} files")
        })
    }
}

impl Stage {
    /// Checks `[source] format`, `[source.csv]` and `[source.json]` of `config` as
    /// [`Stage::new`] does, without building a client (`check`'s `config` step, before
    /// the token and the endpoint): the message names the key at fault.
    pub fn check_format_settings(config: &StageConfig) -> Result<(), StageError> {
        // Named as `Stage::new` names it (credentials and query strings replaced).
        let stage = match config.url.as_deref().map(StageUrl::parse) {
            Some(Ok(url)) => url.to_string(),
            _ => "[source]".to_owned(),
        };
        FormatSettings::new(config, &stage).map(drop)
    }

    /// `[source] format`.
    pub fn format_setting(&self) -> FormatSetting {
        self.formats.format
    }

    /// The files of `files` this stage reads. With `[source] format = auto`, all of them
    /// unless they are of more than one format: then [`StageError::MixedFormats`], naming
    /// a file of each. With a named format, the files of that format (the others are
    /// skipped with a debug line). Files whose format is known only from their content
    /// and not yet read count as what they will be read as when opened.
    pub fn keep_readable(&self, files: Vec<StageFile>) -> Result<Vec<StageFile>, StageError> {
        if self.formats.format == FormatSetting::Auto {
            let mut first: Option<&StageFile> = None;
            for file in &files {
                let Some((format, _)) = file.format else {
                    continue;
                };
                match first {
                    None => first = Some(file),
                    Some(seen) if seen.format.map(|(f, _)| f) != Some(format) => {
                        return Err(StageError::MixedFormats {
                            stage: self.url(),
                            first: seen.url.clone(),
                            first_format: seen.format.map_or(FileFormat::Parquet, |(f, _)| f),
                            other: file.url.clone(),
                            other_format: format,
                        });
                    }
                    Some(_) => {}
                }
            }
            return Ok(files);
        }
        Ok(files
            .into_iter()
            .filter(
                |file| match file.format.and_then(|(f, _)| self.formats.skips(f)) {
                    Some(reason) => {
                        tracing::debug!(object = %file.url, "not read: {reason}");
                        false
                    }
                    None => true,
                },
            )
            .collect())
    }

    /// Why the stage does not read `file` (a file an event names), if it does not.
    pub fn skips(&self, file: &StageFile) -> Option<String> {
        file.format
            .and_then(|(format, _)| self.formats.skips(format))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings of `toml_text`, or the error refusing it (when parsed or checked).
    fn settings(toml_text: &str) -> Result<FormatSettings, Box<dyn std::error::Error>> {
        let config: StageConfig = toml::from_str(&format!("url = \"/tmp/x\"\n{toml_text}"))?;
        Ok(FormatSettings::new(&config, "/tmp/x")?)
    }

    #[test]
    fn a_bad_format_name_is_refused_naming_the_key() {
        let error = settings("format = \"xml\"").unwrap_err().to_string();
        assert!(error.contains("format"), "{error}");
        assert!(error.contains("xml"), "{error}");
        assert!(error.contains("csv"), "{error}");
    }

    #[test]
    fn an_unknown_csv_key_is_refused_naming_it() {
        let error = settings("[csv]\nfield_delimeter = \";\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("field_delimeter"), "{error}");
        let error = settings("[json]\ncolums = []").unwrap_err().to_string();
        assert!(error.contains("colums"), "{error}");
    }

    #[test]
    fn a_two_character_delimiter_is_refused_naming_the_key() {
        let error = settings("[csv]\nfield_delimiter = \";;\"")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("/tmp/x: [source.csv] field_delimiter = \";;\": "),
            "{error}"
        );
        let error = settings("[csv]\nescape = \"ab\"").unwrap_err().to_string();
        assert!(error.contains("[source.csv] escape = \"ab\""), "{error}");
        let error = settings("[csv]\nfield_optionally_enclosed_by = \"|\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("field_optionally_enclosed_by"), "{error}");
        assert!(settings("[csv]\nfield_delimiter = \"|\"\nescape = \"none\"").is_ok());
        assert!(settings("[csv]\nfield_delimiter = \"\\t\"").is_ok());
    }

    #[test]
    fn a_bad_column_declaration_is_refused_naming_the_key() {
        let error = settings("[csv]\ncolumns = [\"ID NUMBER(38,0)\", \"NAME BLOB\"]")
            .unwrap_err()
            .to_string();
        assert!(error.contains("[source.csv] columns"), "{error}");
        assert!(error.contains("NAME BLOB"), "{error}");
        let error = settings("[json]\ncolumns = [\"ID\"]")
            .unwrap_err()
            .to_string();
        assert!(error.contains("[source.json] columns"), "{error}");
    }

    #[test]
    fn extension_less_files_by_content() {
        let auto = settings("").unwrap();
        assert_eq!(
            auto.content_format(b"PAR1...."),
            Some((FileFormat::Parquet, Compression::None))
        );
        // Plain text without an extension is data only when the config names a format.
        assert_eq!(auto.content_format(b"1,Ada\n"), None);
        let csv = settings("format = \"csv\"").unwrap();
        assert_eq!(
            csv.content_format(b"{\"looks\":\"like json\"}\n"),
            Some((FileFormat::Csv, Compression::None))
        );
        let json = settings("format = \"json\"").unwrap();
        assert_eq!(
            json.content_format(b"  {\"A\":1}\n"),
            Some((FileFormat::Json, Compression::None))
        );
    }

    #[test]
    fn a_named_format_skips_the_others() {
        let parquet = settings("format = \"parquet\"").unwrap();
        assert_eq!(parquet.skips(FileFormat::Parquet), None);
        let reason = parquet.skips(FileFormat::Csv).unwrap();
        assert!(reason.contains("format = \"parquet\""), "{reason}");
        assert_eq!(settings("").unwrap().skips(FileFormat::Json), None);
    }
}
