//! CSV and JSON stages read in-process (issue 19): the same rows as the Parquet unload of
//! the same table, a mixed-format stage refused, a truncated `.csv.gz` a typed bad-file
//! error naming the file. (The end-to-end deliveries through plugins are the lead's, once
//! the pipeline reads files of unknown row counts.)

use arrow_array::RecordBatch;
use stagepush::sample::{CustomerFileOptions, write_customer_file};
use stagepush::sample_text::{CUSTOMER_CSV_COLUMNS, file_name, write_customer_text_file};
use stagepush::source::format::FileFormat;
use stagepush::source::{ReadOptions, Selection, SourceError, Stage, StageConfig, StageError};

use crate::util::temp_dir;

const ROWS: u64 = 2_500;

fn options() -> CustomerFileOptions {
    CustomerFileOptions {
        null_id_fraction: 0.01,
        ..CustomerFileOptions::default()
    }
}

fn csv_stage(dir: &std::path::Path) -> Stage {
    let mut config = StageConfig::from_url(dir.display().to_string());
    config.csv.columns = CUSTOMER_CSV_COLUMNS.iter().map(|c| c.to_string()).collect();
    Stage::new(&config).unwrap()
}

fn read_all(stage: &Stage) -> Vec<RecordBatch> {
    let files = stage.select(&Selection::default()).unwrap();
    let mut batches = Vec::new();
    for file in &files {
        let source = stage.open(file).unwrap();
        let read = ReadOptions {
            batch_rows: 1_000,
            projection: None,
            start_row: 0,
        };
        for batch in source.batches(&read).unwrap() {
            batches.push(batch.unwrap().batch);
        }
    }
    batches
}

#[test]
fn a_csv_unload_reads_as_the_parquet_unload_of_the_same_rows() {
    let dir = temp_dir();
    let parquet = dir.path().join("parquet");
    let csv = dir.path().join("csv");
    std::fs::create_dir_all(&parquet).unwrap();
    std::fs::create_dir_all(&csv).unwrap();
    write_customer_file(
        parquet.join(file_name(FileFormat::Parquet, 0)),
        1,
        ROWS,
        &options(),
    )
    .unwrap();
    write_customer_text_file(
        csv.join(file_name(FileFormat::Csv, 0)),
        FileFormat::Csv,
        1,
        ROWS,
        &options(),
    )
    .unwrap();
    let from_parquet = read_all(&Stage::from_url(&parquet.display().to_string()).unwrap());
    let from_csv = read_all(&csv_stage(&csv));
    let rows: usize = from_csv.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows as u64, ROWS);
    // Both are cut at 1,000 rows: the same batches, with the same values column by column
    // (the Parquet file's REQUIRED columns are nullable in CSV: compare the data).
    assert_eq!(from_parquet.len(), from_csv.len());
    for (expected, actual) in from_parquet.iter().zip(&from_csv) {
        assert_eq!(expected.num_rows(), actual.num_rows());
        for (index, field) in expected.schema().fields().iter().enumerate() {
            assert_eq!(
                expected.column(index).data_type(),
                actual.column(index).data_type(),
                "{}",
                field.name()
            );
            assert_eq!(
                expected.column(index).to_data(),
                actual.column(index).to_data(),
                "{}",
                field.name()
            );
        }
    }
}

#[test]
fn a_stage_of_two_formats_is_refused_naming_a_file_of_each() {
    let dir = temp_dir();
    write_customer_file(
        dir.path().join(file_name(FileFormat::Parquet, 0)),
        1,
        10,
        &options(),
    )
    .unwrap();
    write_customer_text_file(
        dir.path().join(file_name(FileFormat::Csv, 1)),
        FileFormat::Csv,
        11,
        10,
        &options(),
    )
    .unwrap();
    let stage = Stage::from_url(&dir.path().display().to_string()).unwrap();
    let error = stage.select(&Selection::default()).unwrap_err();
    assert!(matches!(error, StageError::MixedFormats { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("data_0_0_0.snappy.parquet"), "{message}");
    assert!(message.contains("data_0_1_0.csv.gz"), "{message}");
    assert!(message.contains("[source] format = "), "{message}");
    // Naming a format reads that format's files only.
    let mut config = StageConfig::from_url(dir.path().display().to_string());
    config.format = stagepush::source::format::FormatSetting::Csv;
    let files = Stage::new(&config)
        .unwrap()
        .select(&Selection::default())
        .unwrap();
    assert_eq!(files.len(), 1);
    assert!(files[0].key.ends_with("data_0_1_0.csv.gz"));
}

#[test]
fn a_truncated_csv_gz_is_a_bad_file_naming_it() {
    let dir = temp_dir();
    let path = dir.path().join(file_name(FileFormat::Csv, 0));
    write_customer_text_file(&path, FileFormat::Csv, 1, 20_000, &options()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let stage = csv_stage(dir.path());
    let file = stage.select(&Selection::default()).unwrap().remove(0);
    let source = stage.open(&file).unwrap();
    assert_eq!(source.num_rows(), None);
    let read = ReadOptions {
        batch_rows: 1_000,
        projection: None,
        start_row: 0,
    };
    let mut rows = 0;
    let mut failure = None;
    for batch in source.batches(&read).unwrap() {
        match batch {
            Ok(batch) => rows += batch.batch.num_rows(),
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    let error = failure.expect("the truncated file ends in an error");
    assert!(rows < 20_000, "{rows}");
    assert!(error.is_bad_file(), "{error}");
    assert!(
        matches!(error, StageError::Source(SourceError::Decompress { .. })),
        "{error:?}"
    );
    assert!(error.to_string().contains("data_0_0_0.csv.gz"), "{error}");
    assert!(error.to_string().contains("gzip"), "{error}");
}
