//! Memory bounds of `run` (issue 14, item 10): what is read and handed to the plugin at
//! once is bounded by bytes as well as rows (`[plugin] batch_bytes`); a row larger than the
//! bound goes alone and is delivered.

use std::path::Path;

use parquet::file::properties::WriterProperties;
use serde_json::Value;

use crate::util::command::TestCommand;
use crate::util::{Chunk, MockProcess, Values, mock_records, plugin, temp_dir, write_parquet};

const TOKEN: &str = "memory-token-3c51";
const BUDGET: u64 = 4 * 1024 * 1024;
const MB: usize = 1_000_000;

/// A file of rows `ID` (int64) and `TEXT` (a string of `sizes[i]` bytes), one row group.
fn text_file(path: &Path, first_id: i64, sizes: &[usize]) {
    let ids: Vec<i64> = (0..sizes.len() as i64).map(|i| first_id + i).collect();
    let texts: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| vec![b'a' + (i % 26) as u8; n])
        .collect();
    write_parquet(
        path,
        "message schema { required int64 ID; required binary TEXT (STRING); }",
        WriterProperties::builder()
            .set_dictionary_enabled(false)
            .build(),
        vec![vec![
            Chunk::required(Values::Int64(ids)),
            Chunk::required(Values::Bytes(texts)),
        ]],
    );
}

/// The `fields` of the JSON log lines whose message is `message`.
fn logged(stderr: &str, message: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["message"] == message)
        .map(|l| l["fields"].clone())
        .collect()
}

#[test]
fn run_cuts_batches_by_bytes_and_sends_a_huge_row_alone() {
    let dir = temp_dir();
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    // File 0: small rows around large ones, and one row larger than the budget.
    let skewed = [100, 100, 100, 3 * MB, 100, 100, 3 * MB, 3 * MB, 100, 5 * MB];
    text_file(&stage.join("data_0_0_0.snappy.parquet"), 0, &skewed);
    // File 1: ten rows of 3 MB: read one at a time.
    let uniform = [3 * MB; 10];
    text_file(&stage.join("data_0_0_1.snappy.parquet"), 100, &uniform);
    let mock = MockProcess::start(dir.path(), TOKEN, &[]);
    let config = dir.path().join("run.toml");
    std::fs::write(&config, format!("[plugin]\nbatch_bytes = {BUDGET}\n")).unwrap();
    let report_path = dir.path().join("report.json");
    let out = TestCommand::new(dir.path())
        .env("STAGEPUSH_LOG", "warn,stagepush::pipeline=debug")
        .env("MEMORY_TEST_TOKEN", TOKEN)
        .args(["--log-format", "json", "run", "--config"])
        .arg(&config)
        .arg("--source")
        .arg(&stage)
        .arg("--plugin")
        .arg(plugin("echo-rust"))
        .args(["--endpoint", &mock.endpoint("memory")])
        .args(["--token-env", "MEMORY_TEST_TOKEN", "--no-progress"])
        .args(["--workers", "1"])
        .arg("--dead-letter")
        .arg(dir.path().join("dead"))
        .arg("--report")
        .arg(&report_path)
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["rows"]["delivered"], 20, "{report}");
    assert_eq!(report["rows"]["deadLettered"], 0, "{report}");

    // Every plugin call holds at most the budget, or one row larger than it.
    let calls = logged(&out.stderr, "plugin batch");
    assert!(!calls.is_empty(), "no plugin batch logged:\n{}", out.stderr);
    let rows_bytes: Vec<(u64, u64)> = calls
        .iter()
        .map(|c| (c["rows"].as_u64().unwrap(), c["bytes"].as_u64().unwrap()))
        .collect();
    for &(rows, bytes) in &rows_bytes {
        assert!(
            bytes <= BUDGET || rows == 1,
            "a plugin call of {rows} rows and {bytes} bytes: {rows_bytes:?}"
        );
    }
    assert_eq!(rows_bytes.iter().map(|c| c.0).sum::<u64>(), 20);
    assert!(
        rows_bytes
            .iter()
            .any(|&(rows, bytes)| rows == 1 && bytes > BUDGET),
        "the 5 MB row did not go alone: {rows_bytes:?}"
    );
    // Small rows still share calls.
    assert!(
        rows_bytes.iter().any(|&(rows, _)| rows > 1),
        "every call held one row: {rows_bytes:?}"
    );
    assert_eq!(
        report["plugin"]["calls"].as_u64(),
        Some(rows_bytes.len() as u64),
        "{report}"
    );
    assert_eq!(report["plugin"]["faults"], 0, "{report}");

    // A read batch over the budget (two 3 MB rows of file 0, read by the file's average
    // row size) went to the plugin in pieces.
    let file0_reads: Vec<u64> = logged(&out.stderr, "read batch")
        .iter()
        .filter(|r| {
            r["file"]
                .as_str()
                .is_some_and(|f| f.ends_with("data_0_0_0.snappy.parquet"))
        })
        .map(|r| r["bytes"].as_u64().unwrap())
        .collect();
    assert!(file0_reads.iter().any(|&b| b > BUDGET), "{file0_reads:?}");

    // Reading is bounded too: file 1 (3 MB rows) is read one row at a time.
    let reads: Vec<(u64, u64)> = logged(&out.stderr, "read batch")
        .iter()
        .filter(|r| {
            r["file"]
                .as_str()
                .is_some_and(|f| f.ends_with("data_0_0_1.snappy.parquet"))
        })
        .map(|r| (r["rows"].as_u64().unwrap(), r["bytes"].as_u64().unwrap()))
        .collect();
    assert_eq!(reads.len(), 10, "{reads:?}");
    assert!(
        reads
            .iter()
            .all(|&(rows, bytes)| rows == 1 && bytes <= BUDGET),
        "{reads:?}"
    );

    // Every value arrived whole.
    let records = mock_records(&mock.store);
    assert_eq!(records.len(), 20);
    for r in &records {
        let id = r["record"]["properties"]["ID"].as_u64().unwrap() as usize;
        let expected = if id < 100 {
            skewed[id]
        } else {
            uniform[id - 100]
        };
        let text = r["record"]["properties"]["TEXT"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(text.len(), expected, "row {id}");
    }
}
