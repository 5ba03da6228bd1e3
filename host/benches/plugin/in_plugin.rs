//! The thread CPU time spent inside the plugin, the Arrow -> contract conversion excluded.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use stagepush::plugin::{BatchSource, Plugin, Runner};
use stagepush::source::parquet::{ParquetSource, ReadOptions};
use stagepush::source::path::source_file;
use stagepush::transform::ArrowInput;

use super::Clock;

/// Thread CPU time inside `Runner::transform` over `input` (lowering the
/// batch, the guest, lifting or unpacking and checking its output), less the time its
/// `BatchSource::slice` (Arrow -> contract columns, host work before the boundary) takes
/// alone on the same batch.
pub fn plugin_cpu(input: &Path, plugin: &Arc<Plugin>) -> Duration {
    let source = ParquetSource::open(input).unwrap();
    let schema = source.contract_schema().unwrap();
    let mut runner = Runner::start(plugin.clone(), schema, Vec::new()).unwrap();
    let (projection, batch_schema) = runner.read_plan();
    let file = source_file("bench/data_0_0_0.snappy.parquet");
    let options = ReadOptions {
        projection,
        ..ReadOptions::default()
    };
    let (mut convert, mut call) = (Duration::ZERO, Duration::ZERO);
    for batch in source.batches(&options).unwrap() {
        let batch = batch.unwrap();
        let input = ArrowInput {
            file: &file,
            first_row: batch.first_row,
            batch: &batch.batch,
            schema: &batch_schema,
            projection: None,
        };
        let clock = Clock::start();
        let columns = std::hint::black_box(input.slice(0, input.row_count()));
        convert += clock.stop().0;
        drop(columns);
        let clock = Clock::start();
        let result = runner.transform(&input).unwrap();
        call += clock.stop().0;
        assert!(result.failures.is_empty(), "{:?}", result.failures.first());
    }
    call.saturating_sub(convert)
}
