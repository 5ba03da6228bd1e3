//! The inputs of `plugin test`: local Parquet files and folders, local CSV and JSON unload
//! files, the files of stage URLs, or a file of JSON rows (typed by the relay's inference,
//! [`stagepush::source::json`]). CSV and JSON files and stage URLs are read with the
//! `[source]` settings of `--config` (the declared columns), as `run` reads them.

use std::path::{Path, PathBuf};

use anyhow::Context;
use arrow_array::RecordBatch;
use stagepush::bindings::types::ColumnSchema;
use stagepush::config::RunConfig;
use stagepush::source::format::{FileFormat, FormatSetting, detect_name};
use stagepush::source::json::JsonRows;
use stagepush::source::parquet::{ParquetSource, ReadOptions, SourceBatch, SourceError};
use stagepush::source::path::source_file;
use stagepush::source::{Selection, Stage, StageConfig, StageFile, StageReader};
use stagepush::storage::walk::DEFAULT_MAX_DEPTH;

use super::TestArgs;
use crate::cli::inspect_cmd::is_stage_url;

/// One input of `plugin test`: a local Parquet file, a local CSV or JSON file (read as a
/// stage of that one file), a file of a stage URL, or JSON rows.
pub(super) enum TestInput {
    Local(PathBuf),
    LocalText(PathBuf, Box<(Stage, StageFile)>),
    Stage(Box<(Stage, StageFile)>),
    Json(PathBuf),
}

impl TestInput {
    pub(super) fn name(&self) -> String {
        match self {
            TestInput::Local(path) | TestInput::LocalText(path, _) | TestInput::Json(path) => {
                path.display().to_string()
            }
            TestInput::Stage(stage) => stage.1.url.clone(),
        }
    }

    /// Its name in messages, the open source, and what the plugin is told about it.
    pub(super) fn open(
        &self,
    ) -> anyhow::Result<(String, TestSource, stagepush::bindings::types::SourceFile)> {
        let name = self.name();
        match self {
            TestInput::Local(path) => {
                let handle = std::fs::File::open(path).map_err(|source| SourceError::Open {
                    file: name.clone(),
                    source,
                })?;
                let source = ParquetSource::new(StageReader::File(handle), name.clone())?;
                let file = source_file(&name);
                Ok((name, TestSource::Parquet(source), file))
            }
            TestInput::Stage(stage) => {
                let (stage, file) = stage.as_ref();
                Ok((name, open_stage_file(stage, file)?, file.source_file()))
            }
            TestInput::LocalText(_, stage) => {
                let (stage, file) = stage.as_ref();
                let source = open_stage_file(stage, file)?;
                Ok((name.clone(), source, source_file(&name)))
            }
            TestInput::Json(path) => {
                let rows = read_json_rows(path)?;
                let file = source_file(&name);
                Ok((name, rows, file))
            }
        }
    }
}

fn open_stage_file(stage: &Stage, file: &StageFile) -> anyhow::Result<TestSource> {
    let source = stage.open(file)?;
    Ok(match source.parquet() {
        Some(parquet) => TestSource::Parquet(parquet.clone()),
        None => TestSource::Stage(Box::new(source)),
    })
}

/// The rows of one input of `plugin test`.
pub(super) enum TestSource {
    Parquet(ParquetSource<StageReader>),
    /// All rows of a `--json-input` file, and their contract schema.
    Json(RecordBatch, Vec<ColumnSchema>),
    /// A CSV or JSON stage file.
    Stage(Box<stagepush::source::StageSource>),
}

/// Rows from `first_row` on (file row numbers, 0-based).
pub(super) struct TestBatch {
    pub(super) first_row: u64,
    pub(super) batch: RecordBatch,
}

impl TestSource {
    pub(super) fn contract_schema(&self) -> anyhow::Result<Vec<ColumnSchema>> {
        match self {
            TestSource::Parquet(source) => Ok(source.contract_schema()?),
            TestSource::Json(_, schema) => Ok(schema.clone()),
            TestSource::Stage(source) => Ok(source.contract_schema()?),
        }
    }

    /// The rows in batches of `batch_rows`, with the columns `projection` asks for.
    pub(super) fn batches(
        &self,
        batch_rows: usize,
        projection: Option<Vec<usize>>,
    ) -> anyhow::Result<Box<dyn Iterator<Item = anyhow::Result<TestBatch>>>> {
        let options = ReadOptions {
            batch_rows,
            projection,
            start_row: 0,
        };
        match self {
            TestSource::Parquet(source) => Ok(test_batches(source.batches(&options)?)),
            TestSource::Stage(source) => Ok(test_batches(source.batches(&options)?)),
            TestSource::Json(batch, _) => {
                let batch = match options.projection {
                    Some(indices) => batch.project(&indices)?,
                    None => batch.clone(),
                };
                let rows = batch.num_rows();
                Ok(Box::new((0..rows).step_by(batch_rows).map(move |start| {
                    Ok(TestBatch {
                        first_row: start as u64,
                        batch: batch.slice(start, batch_rows.min(rows - start)),
                    })
                })))
            }
        }
    }
}

/// A reader's batches as the workbench's (`first_row` and the rows).
fn test_batches<E>(
    batches: impl Iterator<Item = Result<SourceBatch, E>> + 'static,
) -> Box<dyn Iterator<Item = anyhow::Result<TestBatch>>>
where
    E: std::error::Error + Send + Sync + 'static,
{
    Box::new(batches.map(|batch| {
        let batch = batch?;
        Ok(TestBatch {
            first_row: batch.first_row,
            batch: batch.batch,
        })
    }))
}

/// Reads a file of JSON objects, one per line, into one Arrow batch: columns in the order
/// their names first appear in the file, types inferred as the relay infers them
/// ([`stagepush::source::json`]), so the workbench sees what production sees.
fn read_json_rows(path: &Path) -> anyhow::Result<TestSource> {
    let name = path.display();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?;
    let mut rows: Vec<Vec<(String, serde_json::Value)>> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: OrderedObject = serde_json::from_str(line)
            .with_context(|| format!("{name} line {}: not a JSON object", number + 1))?;
        rows.push(row.0);
    }
    let mut builder = JsonRows::with_capacity(rows.len());
    for row in &rows {
        builder.start_row();
        for (key, value) in row {
            builder.cell(key, value);
        }
    }
    let columns = builder
        .finish()
        .with_context(|| format!("cannot read {name}"))?;
    Ok(TestSource::Json(columns.batch, columns.schema))
}

/// A JSON object's members in the order they appear (serde_json's map sorts them).
struct OrderedObject(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for OrderedObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OrderedObject, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(member) = map.next_entry::<String, serde_json::Value>()? {
                    members.push(member);
                }
                Ok(OrderedObject(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// The inputs in order: stage URLs through the stage API (listed and selected), local
/// paths as [`collect_inputs`] finds them.
pub(super) fn collect_test_inputs(args: &TestArgs) -> anyhow::Result<Vec<TestInput>> {
    let is_url = |input: &PathBuf| input.to_str().is_some_and(is_stage_url);
    if !args.select.is_empty() && !args.inputs.iter().any(is_url) {
        anyhow::bail!(
            "--include, --exclude, --modified-since and --keys-from select files of stage \
             URLs; for a local folder use its file:// URL"
        );
    }
    let selection = args.select.selection()?;
    let source = match &args.config {
        Some(path) => RunConfig::load(path)?.source,
        None => StageConfig::default(),
    };
    // The config's `[source]` with the stage flags over it, for `url`.
    let stage = |url: &str| -> anyhow::Result<Stage> {
        let mut config = source.clone();
        config.url = Some(url.to_owned());
        args.stage.merge_into(&mut config);
        Ok(Stage::new(&config)?)
    };
    let mut files = Vec::new();
    for input in &args.inputs {
        match input.to_str().filter(|text| is_stage_url(text)) {
            Some(url) => {
                let stage = stage(url)?;
                let selected = stage.select(&selection)?;
                anyhow::ensure!(!selected.is_empty(), "no data files in {}", stage.url());
                files.extend(
                    selected
                        .into_iter()
                        .map(|file| TestInput::Stage(Box::new((stage.clone(), file)))),
                );
            }
            None if is_text(input, source.format) => {
                let url = input.to_str().with_context(|| {
                    format!("{}: the file's name is not UTF-8", input.display())
                })?;
                // A stage of the one local file: how to read it, not where the stage is.
                let stage = Stage::new(&StageConfig {
                    format: source.format,
                    csv: source.csv.clone(),
                    json: source.json.clone(),
                    ..StageConfig::from_url(url)
                })?;
                let file = stage
                    .select(&Selection::default())?
                    .pop()
                    .with_context(|| {
                        format!(
                            "{}: not a file of the `[source] format = \"{}\"` stage",
                            input.display(),
                            source.format.format().map_or("auto", |f| f.as_str())
                        )
                    })?;
                files.push(TestInput::LocalText(input.clone(), Box::new((stage, file))));
            }
            None => files.extend(
                collect_inputs(std::slice::from_ref(input))?
                    .into_iter()
                    .map(TestInput::Local),
            ),
        }
    }
    Ok(files)
}

/// Whether a local input is a CSV or JSON file: by its name (`.csv.gz`, `.json`, …), or
/// by `[source] format` for a file whose name says nothing (Snowflake's extension-less
/// `SINGLE = TRUE` output). Folders are searched for Parquet files only.
fn is_text(input: &Path, format: FormatSetting) -> bool {
    if input.is_dir() {
        return false;
    }
    let name = input.to_string_lossy();
    match detect_name(&name) {
        Some((found, _)) => found != FileFormat::Parquet,
        None => matches!(format, FormatSetting::Csv | FormatSetting::Json),
    }
}

/// Parquet files named directly, and those found recursively in named folders, sorted
/// per folder. A file counts as Parquet by its `.parquet` extension or, for Snowflake's
/// extension-less `SINGLE=TRUE` output, by its `PAR1` magic.
fn collect_inputs(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        let meta =
            std::fs::metadata(input).with_context(|| format!("cannot read {}", input.display()))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            stagepush::storage::walk::walk_files(input, DEFAULT_MAX_DEPTH, |f| {
                if is_parquet(&f.path) {
                    found.push(f.path)
                }
            })
            .with_context(|| format!("cannot list {}", input.display()))?;
            found.sort();
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

fn is_parquet(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e == "parquet") {
        return true;
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == b"PAR1"
}

#[cfg(test)]
mod tests {
    use stagepush::bindings::types::{ColumnType, ScalarType};

    use super::*;

    #[test]
    fn json_rows_keep_the_file_s_column_order_and_the_relay_s_types() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.ndjson");
        std::fs::write(
            &path,
            "{\"Z\": 1, \"A\": \"2024-05-01\", \"M\": {\"k\": [1]}}\n\n{\"B\": 2.5, \"Z\": null}\n",
        )
        .unwrap();
        let TestSource::Json(batch, schema) = read_json_rows(&path).unwrap() else {
            panic!("not JSON rows");
        };
        let columns: Vec<(&str, ColumnType)> =
            schema.iter().map(|c| (c.name.as_str(), c.type_)).collect();
        assert_eq!(
            columns,
            [
                ("Z", ColumnType::Scalar(ScalarType::Integer)),
                ("A", ColumnType::Scalar(ScalarType::Date)),
                ("M", ColumnType::Scalar(ScalarType::Json)),
                ("B", ColumnType::Scalar(ScalarType::Float)),
            ]
        );
        assert_eq!(batch.num_rows(), 2);
    }

    #[test]
    fn a_line_that_is_not_an_object_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.ndjson");
        std::fs::write(&path, "{\"A\": 1}\n[1, 2]\n").unwrap();
        let Err(error) = read_json_rows(&path) else {
            panic!("read a line that is not an object");
        };
        assert!(
            error.to_string().ends_with("line 2: not a JSON object"),
            "{error}"
        );
    }
}
