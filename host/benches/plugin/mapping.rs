//! The zero-code `[mapping]` equivalent to `plugins/customer-rust` over the same rows,
//! through the same transform step (`Transformer`) and wire encoder: its rows/s beside the
//! Rust plugin's, in the same run (issue 17: ≥ the Rust plugin).

use std::sync::Arc;
use std::time::Duration;

use stagepush::mapping::{MappingConfig, MappingSpec};
use stagepush::pipeline::transformer::{TransformSpec, Transformer};
use stagepush::source::parquet::{ParquetSource, ReadOptions};
use stagepush::source::path::source_file;
use stagepush::transform::ArrowInput;
use stagepush::wire::Shape;

/// `plugins/customer-rust` as a mapping (as in `docs/mapping.md`).
const CUSTOMER_MAPPING: &str = r#"
[mapping]
type = "Customer"
id = "CUSTOMER_ID"
timestamp = "UPDATED_AT"
deleted = "IS_DELETED"
[mapping.properties]
name = "NAME"
country = "COUNTRY"
email = "lower(trim(EMAIL))"
isActive = "IS_ACTIVE"
updatedAt = "UPDATED_AT"
"#;

/// The customer mapping.
pub fn customer_mapping() -> TransformSpec {
    let config: MappingConfig = stagepush::config::RunConfig::parse(CUSTOMER_MAPPING)
        .expect("the customer mapping parses")
        .mapping
        .expect("a [mapping]");
    TransformSpec::Mapping(Arc::new(MappingSpec::Declared(config)))
}

/// Decodes `input` and runs every batch through `spec` and the encoder; (rows, JSON bytes,
/// time inside the transform).
pub fn transform_file(input: &std::path::Path, spec: &TransformSpec) -> (u64, u64, Duration) {
    let source = ParquetSource::open(input).unwrap();
    let schema = source.contract_schema().unwrap();
    let mut t = Transformer::start(spec, schema, Shape::Nested).unwrap();
    let (projection, batch_schema) = t.read_plan();
    let file = source_file("bench/data_0_0_0.snappy.parquet");
    let options = ReadOptions {
        projection,
        ..ReadOptions::default()
    };
    let (mut rows, mut bytes) = (0u64, 0u64);
    for batch in source.batches(&options).unwrap() {
        let batch = batch.unwrap();
        let encoded = t
            .transform(&ArrowInput {
                file: &file,
                first_row: batch.first_row,
                batch: &batch.batch,
                schema: &batch_schema,
                projection: None,
            })
            .unwrap();
        assert!(
            encoded.failures.is_empty(),
            "{:?}",
            encoded.failures.first()
        );
        rows += encoded.rows;
        bytes += encoded.json.len() as u64;
    }
    (rows, bytes, t.stats().time_in_plugin)
}
