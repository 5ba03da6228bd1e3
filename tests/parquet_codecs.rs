//! Parquet files in every codec, LZO refused, INT96 timestamps (issue 19, item 3).
//!
//! Every file here is written by the test itself with the Rust parquet writer. Provenance of
//! the two kinds no writer makes: an **LZO** file (arrow-rs cannot compress LZO) is an
//! UNCOMPRESSED file whose footer is rewritten with the parquet crate's
//! `ParquetMetaDataWriter` so that every column chunk says `LZO` (its pages stay
//! uncompressed: a reader that checks the codec refuses it, one that does not would read
//! garbage or fail part-way); an **LZ4 file with raw-block pages** (how parquet-cpp wrote the
//! LZ4 codec before it adopted the Hadoop framing) is an LZ4_RAW file whose footer is
//! rewritten to say `LZ4` the same way. INT96 columns are written with the low-level INT96
//! column writer, in Impala's layout (nanoseconds of the day, then the julian day).

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::{BrotliLevel, Compression, GzipLevel, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type, Int96, Int96Type};
use parquet::file::metadata::{ParquetMetaDataReader, ParquetMetaDataWriter};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use serde_json::Value;
use stagepush::source::parquet::{ParquetSource, ReadOptions, SourceError};

use crate::util::command::TestCommand;
use crate::util::{MockProcess, Output, read_ndjson, run, stagepush, temp_dir};

const TOKEN: &str = "parquet-codecs-token-5c1d";
/// Rows per test file (two row groups).
const ROWS: i64 = 300;
/// Rows per row group.
const GROUP_ROWS: i64 = 200;
/// The fix an LZO file's refusal names.
const LZO_FIX: &str = "unload with COMPRESSION = SNAPPY (or AUTO)";

/// A `[mapping]` sending `ID` as the id and `NAME` as a property.
const NAME_MAPPING: &str =
    "[mapping]\ntype = \"Thing\"\nid = \"ID\"\n[mapping.properties]\nname = \"NAME\"\n";

/// Writes `ids` as `ID` (INT64) and `NAME` (`name-<id>`, UTF8) with `codec`, in row groups
/// of [`GROUP_ROWS`].
fn write_file(path: &Path, codec: Compression, ids: std::ops::Range<i64>) {
    let schema = "message schema { required int64 ID; optional binary NAME (UTF8); }";
    let properties = WriterProperties::builder().set_compression(codec).build();
    let mut writer = SerializedFileWriter::new(
        File::create(path).unwrap(),
        Arc::new(parse_message_type(schema).unwrap()),
        Arc::new(properties),
    )
    .unwrap();
    let ids: Vec<i64> = ids.collect();
    for group_ids in ids.chunks(GROUP_ROWS as usize) {
        let mut group = writer.next_row_group().unwrap();
        let mut column = group.next_column().unwrap().unwrap();
        column
            .typed::<Int64Type>()
            .write_batch(group_ids, None, None)
            .unwrap();
        column.close().unwrap();
        let names: Vec<ByteArray> = group_ids
            .iter()
            .map(|id| ByteArray::from(format!("name-{id}").as_str()))
            .collect();
        let defs = vec![1i16; names.len()];
        let mut column = group.next_column().unwrap().unwrap();
        column
            .typed::<ByteArrayType>()
            .write_batch(&names, Some(&defs), None)
            .unwrap();
        column.close().unwrap();
        group.close().unwrap();
    }
    writer.close().unwrap();
}

/// Rewrites the footer of the Parquet file at `path` so that every column chunk says
/// `codec` (the pages are left as they are), with the parquet crate's metadata writer.
fn rewrite_codec(path: &Path, codec: Compression) {
    let bytes = std::fs::read(path).unwrap();
    let len = bytes.len();
    let footer_len = u32::from_le_bytes(bytes[len - 8..len - 4].try_into().unwrap()) as usize;
    let footer_start = len - 8 - footer_len;
    let metadata = ParquetMetaDataReader::new()
        .parse_and_finish(&Bytes::from(bytes.clone()))
        .unwrap();
    let mut builder = metadata.into_builder();
    let groups = builder
        .take_row_groups()
        .into_iter()
        .map(|group| {
            let columns = group
                .columns()
                .iter()
                .map(|column| {
                    column
                        .clone()
                        .into_builder()
                        .set_compression(codec)
                        .build()
                        .unwrap()
                })
                .collect();
            group
                .into_builder()
                .set_column_metadata(columns)
                .build()
                .unwrap()
        })
        .collect();
    let metadata = builder.set_row_groups(groups).build();
    let mut out = bytes[..footer_start].to_vec();
    ParquetMetaDataWriter::new(&mut out, &metadata)
        .finish()
        .unwrap();
    std::fs::write(path, out).unwrap();
}

/// The codecs of the test stage: (file name, how it is written).
fn codec_files() -> Vec<(&'static str, Compression, Option<Compression>)> {
    vec![
        ("data_0_0_0.parquet", Compression::UNCOMPRESSED, None),
        ("data_0_1_0.snappy.parquet", Compression::SNAPPY, None),
        (
            "data_0_2_0.gz.parquet",
            Compression::GZIP(GzipLevel::default()),
            None,
        ),
        (
            "data_0_3_0.brotli.parquet",
            Compression::BROTLI(BrotliLevel::default()),
            None,
        ),
        (
            "data_0_4_0.zstd.parquet",
            Compression::ZSTD(ZstdLevel::default()),
            None,
        ),
        ("data_0_5_0.lz4.parquet", Compression::LZ4, None),
        ("data_0_6_0.lz4raw.parquet", Compression::LZ4_RAW, None),
        // LZ4 pages without the Hadoop framing (older parquet-cpp): see the module doc.
        (
            "data_0_7_0.lz4block.parquet",
            Compression::LZ4_RAW,
            Some(Compression::LZ4),
        ),
    ]
}

/// `stagepush run` of `stage` with `config_extra` into endpoint `endpoint_id` of `mock`;
/// dead letters and the report under `dir`.
fn run_cmd(
    dir: &Path,
    stage: &Path,
    mock: &MockProcess,
    endpoint_id: &str,
    config_extra: &str,
) -> TestCommand {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("stagepush.toml");
    std::fs::write(
        &config,
        format!(
            "[sink]\nendpoint = \"{}\"\n[auth]\ntoken_env = \"PARQUET_CODECS_TOKEN\"\n{config_extra}",
            mock.endpoint(endpoint_id)
        ),
    )
    .unwrap();
    let mut cmd = TestCommand::new(dir);
    cmd.arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--source")
        .arg(stage)
        .env("PARQUET_CODECS_TOKEN", TOKEN)
        .arg("--dead-letter")
        .arg(dir.join("dead"))
        .arg("--report")
        .arg(dir.join("report.json"))
        .arg("--no-progress");
    cmd
}

/// The records the mock stored for `endpoint_id`.
fn records(mock: &MockProcess, endpoint_id: &str) -> Vec<Value> {
    mock.records()
        .into_iter()
        .filter(|r| r["endpointId"] == endpoint_id)
        .map(|r| r["record"].clone())
        .collect()
}

fn dead_letters(dir: &Path) -> Vec<Value> {
    read_ndjson(
        &dir.join("dead")
            .join(stagepush::deadletter::DEAD_LETTER_FILE),
    )
}

fn inspect_json(dir: &Path, stage: &Path) -> Value {
    let out = run(stagepush(dir).arg("inspect").arg(stage).arg("--json"));
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

#[test]
fn every_parquet_codec_delivers_every_row() {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    let mut expected = BTreeSet::new();
    for (n, (name, codec, footer_says)) in codec_files().into_iter().enumerate() {
        let first = n as i64 * ROWS + 1;
        let path = stage.join(name);
        write_file(&path, codec, first..first + ROWS);
        if let Some(footer_says) = footer_says {
            rewrite_codec(&path, footer_says);
        }
        expected.extend((first..first + ROWS).map(|id| id.to_string()));
    }
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let out = run_cmd(dir.path(), &stage, &mock, "codecs", NAME_MAPPING).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let got = records(&mock, "codecs");
    let ids: BTreeSet<String> = got
        .iter()
        .map(|r| r["externalId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), got.len(), "each row once");
    assert_eq!(ids, expected);
    for record in &got {
        let id = record["externalId"].as_str().unwrap();
        assert_eq!(record["properties"]["name"], format!("name-{id}"));
    }
    assert!(dead_letters(dir.path()).is_empty());

    // `inspect` names each file's codec (the footer's: the raw-block LZ4 file says LZ4).
    let report = inspect_json(dir.path(), &stage);
    let codecs: Vec<String> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["codecs"].to_string())
        .collect();
    assert_eq!(
        codecs,
        [
            r#"["UNCOMPRESSED"]"#,
            r#"["SNAPPY"]"#,
            r#"["GZIP"]"#,
            r#"["BROTLI"]"#,
            r#"["ZSTD"]"#,
            r#"["LZ4"]"#,
            r#"["LZ4_RAW"]"#,
            r#"["LZ4"]"#,
        ]
    );
    assert_eq!(report["totals"]["unreadable"], 0);
    let out = run(stagepush(dir.path()).arg("inspect").arg(&stage));
    let zstd_line = out
        .stdout
        .lines()
        .find(|l| l.contains("data_0_4_0.zstd.parquet"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(zstd_line.contains("ZSTD"), "{zstd_line}");
    assert!(out.stdout.contains("CODEC"), "{}", out.stdout);
}

/// A stage of an LZO file (first) and a SNAPPY file.
fn lzo_stage(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    let lzo = stage.join("data_0_0_0.parquet");
    write_file(&lzo, Compression::UNCOMPRESSED, 1..ROWS + 1);
    rewrite_codec(&lzo, Compression::LZO);
    let good = stage.join("data_0_1_0.snappy.parquet");
    write_file(&good, Compression::SNAPPY, ROWS + 1..2 * ROWS + 1);
    (stage, lzo, good)
}

fn error_lines(out: &Output) -> Vec<&str> {
    out.stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect()
}

#[test]
fn an_lzo_file_is_refused_naming_the_codec_and_the_fix() {
    let dir = temp_dir();
    let (stage, lzo, _) = lzo_stage(dir.path());
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);

    // --on-bad-file skip (the default): the LZO file is dead-lettered as unread, the other
    // delivered; exit 3.
    let skip = dir.path().join("skip");
    let out = run_cmd(&skip, &stage, &mock, "skip", NAME_MAPPING).run();
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    let ids: BTreeSet<i64> = records(&mock, "skip")
        .iter()
        .map(|r| r["externalId"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, (ROWS + 1..2 * ROWS + 1).collect());
    let letters = dead_letters(&skip);
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["file"], lzo.to_str().unwrap());
    assert_eq!(letter["stage"], "read");
    assert_eq!(letter["kind"], "unsupported-file");
    let message = letter["message"].as_str().unwrap();
    let refusal = format!(
        "{}: compressed with LZO (column `ID`), which stagepush cannot read: {LZO_FIX}",
        lzo.display()
    );
    assert_eq!(message, refusal);
    let report = crate::util::read_report(&skip);
    let outcome = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == lzo.to_str().unwrap())
        .map(|f| f["outcome"].clone());
    assert_eq!(outcome, Some(Value::from("bad-file")), "{report}");

    // --on-bad-file fail: the run stops at it with the message, nothing sent.
    let fail = dir.path().join("fail");
    let out = run_cmd(&fail, &stage, &mock, "fail", NAME_MAPPING)
        .args(["--on-bad-file", "fail"])
        .run();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let errors = error_lines(&out);
    assert!(
        errors.iter().any(|l| l.contains(&refusal)),
        "{errors:?}\n{}",
        out.stderr
    );
    assert!(records(&mock, "fail").is_empty());

    // `inspect` flags it before any run: the file's codec, its error and a warning.
    let report = inspect_json(dir.path(), &stage);
    let file = &report["files"][0];
    assert_eq!(file["codecs"], serde_json::json!(["LZO"]));
    assert_eq!(file["error"], refusal.as_str());
    assert_eq!(report["files"][1]["codecs"], serde_json::json!(["SNAPPY"]));
    assert_eq!(report["totals"]["unreadable"], 1);
    let warnings = report["warnings"].as_array().unwrap();
    let warning = warnings
        .iter()
        .filter_map(Value::as_str)
        .find(|w| w.contains("LZO"))
        .unwrap_or_else(|| panic!("no LZO warning: {warnings:?}"));
    assert!(warning.contains("data_0_0_0.parquet"), "{warning}");
    assert!(warning.contains(LZO_FIX), "{warning}");
    assert!(
        !warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("cannot be read as Parquet")),
        "the LZO file is said once: {warnings:?}"
    );
    let text = run(stagepush(dir.path()).arg("inspect").arg(&stage)).stdout;
    assert!(text.contains(LZO_FIX), "{text}");
}

/// The INT96 of a wall-clock time `text` (`%Y-%m-%dT%H:%M:%S%.f`), in Impala's layout.
fn int96(text: &str) -> Int96 {
    let at = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").unwrap();
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let julian = at.date().signed_duration_since(epoch).num_days() + 2_440_588;
    let nanos = at
        .time()
        .signed_duration_since(chrono::NaiveTime::MIN)
        .num_nanoseconds()
        .unwrap() as u64;
    Int96::from(vec![nanos as u32, (nanos >> 32) as u32, julian as u32])
}

/// Writes `ID` (INT64) and `VALID_UNTIL` (an OPTIONAL INT96, `None` = null) in one row group.
fn write_int96_file(path: &Path, rows: &[(i64, Option<Int96>)]) {
    let schema = "message schema { required int64 ID; optional int96 VALID_UNTIL; }";
    let mut writer = SerializedFileWriter::new(
        File::create(path).unwrap(),
        Arc::new(parse_message_type(schema).unwrap()),
        Arc::new(WriterProperties::builder().build()),
    )
    .unwrap();
    let mut group = writer.next_row_group().unwrap();
    let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    let mut column = group.next_column().unwrap().unwrap();
    column
        .typed::<Int64Type>()
        .write_batch(&ids, None, None)
        .unwrap();
    column.close().unwrap();
    let values: Vec<Int96> = rows.iter().filter_map(|(_, value)| *value).collect();
    let defs: Vec<i16> = rows.iter().map(|(_, v)| i16::from(v.is_some())).collect();
    let mut column = group.next_column().unwrap().unwrap();
    column
        .typed::<Int96Type>()
        .write_batch(&values, Some(&defs), None)
        .unwrap();
    column.close().unwrap();
    group.close().unwrap();
    writer.close().unwrap();
}

#[test]
fn int96_timestamps_of_years_1_to_9999_arrive_exactly() {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    write_int96_file(
        &stage.join("part-00000.parquet"),
        &[
            (1, Some(int96("9999-12-31T03:00:00"))),
            (2, Some(int96("0001-01-01T00:00:00"))),
            (3, Some(int96("2024-05-01T12:34:56.789012"))),
            (4, None),
        ],
    );
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let mapping = "[mapping]\ntype = \"Thing\"\nid = \"ID\"\n[mapping.properties]\nvalidUntil = \"VALID_UNTIL\"\n";
    let out = run_cmd(dir.path(), &stage, &mock, "int96", mapping).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let mut got: Vec<(String, Value)> = records(&mock, "int96")
        .iter()
        .map(|r| {
            (
                r["externalId"].as_str().unwrap().to_owned(),
                r["properties"]["validUntil"].clone(),
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    // Wall-clock timestamps arrive as they are, at the column's precision (µs), with `Z`.
    assert_eq!(
        got,
        [
            ("1".to_owned(), Value::from("9999-12-31T03:00:00.000000Z")),
            ("2".to_owned(), Value::from("0001-01-01T00:00:00.000000Z")),
            ("3".to_owned(), Value::from("2024-05-01T12:34:56.789012Z")),
            ("4".to_owned(), Value::Null),
        ],
        "{}",
        out.stderr
    );

    // The plugin contract type: microseconds, wall-clock (INT96 has no zone).
    let report = inspect_json(dir.path(), &stage);
    assert_eq!(report["schema"][1]["name"], "VALID_UNTIL");
    let plugin = report["schema"][1]["plugin"].as_str().unwrap();
    assert!(
        plugin.contains("µs") || plugin.contains("micros"),
        "{plugin}"
    );
    assert!(
        report["warnings"].as_array().unwrap().is_empty(),
        "{report}"
    );
}

/// What a read yields: a batch `(first row, rows)` or a row error `(row, column, reason)`.
type Read = Result<(u64, usize), (u64, Option<String>, String)>;

/// The INT96 value of midnight at the start of julian day `day`.
fn julian_day(day: u32) -> Int96 {
    Int96::from(vec![0, 0, day])
}

#[test]
fn an_int96_value_outside_years_1_to_9999_is_a_row_error_and_the_rows_around_it_read() {
    let dir = temp_dir();
    let path = dir.path().join("part-00000.parquet");
    // Rows 1 and 4 cannot be read: a day after 9999-12-31, and a julian day whose
    // microseconds wrap (arrow-rs would make it some date).
    write_int96_file(
        &path,
        &[
            (10, Some(int96("2024-05-01T00:00:00"))),
            (11, Some(julian_day(5_373_485))),
            (12, None),
            (13, Some(int96("9999-12-31T23:59:59.999999"))),
            (14, Some(julian_day(0x7fff_0000))),
            (15, Some(int96("1970-01-01T00:00:00"))),
        ],
    );
    let source = ParquetSource::open(&path).unwrap();
    let read = |start_row: u64| -> Vec<Read> {
        let options = ReadOptions {
            batch_rows: 4,
            start_row,
            ..ReadOptions::default()
        };
        source
            .batches(&options)
            .unwrap()
            .map(|item| match item {
                Ok(batch) => Ok((batch.first_row, batch.batch.num_rows())),
                Err(SourceError::Row {
                    row,
                    column,
                    reason,
                    ..
                }) => Err((row, column, reason)),
                Err(other) => panic!("not a row error: {other}"),
            })
            .collect()
    };
    let items = read(0);
    let shape: Vec<Result<(u64, usize), u64>> = items
        .iter()
        .map(|item| item.as_ref().map(|ok| *ok).map_err(|(row, ..)| *row))
        .collect();
    // Batches of 4 rows (0–3, 4–5), cut around rows 1 and 4.
    assert_eq!(shape, [Ok((0, 1)), Err(1), Ok((2, 2)), Err(4), Ok((5, 1))]);
    let Err((_, column, reason)) = &items[1] else {
        unreachable!()
    };
    assert_eq!(column.as_deref(), Some("VALID_UNTIL"));
    assert!(reason.contains("column `VALID_UNTIL`"), "{reason}");
    assert!(reason.contains("outside years 0001–9999"), "{reason}");
    // Resuming after the first bad row finds only the second.
    let shape: Vec<Result<(u64, usize), u64>> = read(2)
        .iter()
        .map(|item| item.as_ref().map(|ok| *ok).map_err(|(row, ..)| *row))
        .collect();
    assert_eq!(shape, [Ok((2, 2)), Err(4), Ok((5, 1))]);
    // The good values read exactly.
    let batch = source
        .batches(&ReadOptions {
            start_row: 3,
            batch_rows: 1,
            ..ReadOptions::default()
        })
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let column = batch
        .batch
        .column(1)
        .as_any()
        .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
        .unwrap();
    let want =
        chrono::NaiveDateTime::parse_from_str("9999-12-31T23:59:59.999999", "%Y-%m-%dT%H:%M:%S%.f")
            .unwrap()
            .and_utc()
            .timestamp_micros();
    assert_eq!(column.value(0), want);

    // `inspect` flags the column from the footer's statistics.
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::rename(&path, stage.join("part-00000.parquet")).unwrap();
    let report = inspect_json(dir.path(), &stage);
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("INT96 timestamp column(s) VALID_UNTIL"),
        "{warnings}"
    );
    assert!(warnings.contains("part-00000.parquet"), "{warnings}");
}

#[test]
fn a_list_of_int96_reads_as_microseconds_and_its_unreadable_values_are_row_errors() {
    let dir = temp_dir();
    let path = dir.path().join("part-00000.parquet");
    let schema = "message schema {
      optional group DAYS (LIST) { repeated group list { optional int96 element; } }
    }";
    let mut writer = SerializedFileWriter::new(
        File::create(&path).unwrap(),
        Arc::new(parse_message_type(schema).unwrap()),
        Arc::new(WriterProperties::builder().build()),
    )
    .unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut column = group.next_column().unwrap().unwrap();
    // Rows: [a, b], [bad], null, [], [c, null, bad].
    let (a, b, c) = (
        int96("2024-05-01T00:00:00"),
        int96("9999-12-31T03:00:00"),
        int96("0001-01-01T00:00:00"),
    );
    let bad = julian_day(0x7fff_0000);
    column
        .typed::<Int96Type>()
        .write_batch(
            &[a, b, bad, c, bad],
            Some(&[3, 3, 3, 0, 1, 3, 2, 3]),
            Some(&[0, 1, 0, 0, 0, 0, 1, 1]),
        )
        .unwrap();
    column.close().unwrap();
    group.close().unwrap();
    writer.close().unwrap();

    let source = ParquetSource::open(&path).unwrap();
    let schema = stagepush::source::describe_column(&source.contract_schema().unwrap()[0]);
    assert!(schema.contains("list"), "{schema}");
    let mut items = Vec::new();
    let mut first = None;
    for item in source.batches(&ReadOptions::default()).unwrap() {
        match item {
            Ok(batch) => {
                if first.is_none() {
                    first = Some(batch.batch.clone());
                }
                items.push(Ok((batch.first_row, batch.batch.num_rows())));
            }
            Err(SourceError::Row { row, .. }) => items.push(Err(row)),
            Err(other) => panic!("not a row error: {other}"),
        }
    }
    assert_eq!(items, [Ok((0, 1)), Err(1), Ok((2, 2)), Err(4)]);
    // Row 0's list holds the two timestamps, exactly, in microseconds.
    let first = first.unwrap();
    let list = first
        .column(0)
        .as_any()
        .downcast_ref::<arrow_array::ListArray>()
        .unwrap();
    let values = list.value(0);
    let values = values
        .as_any()
        .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
        .unwrap();
    assert_eq!(values.values().to_vec(), [a.to_micros(), b.to_micros()]);
    assert_eq!(
        b.to_micros(),
        chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
            .unwrap()
            .and_hms_opt(3, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_micros()
    );
}
