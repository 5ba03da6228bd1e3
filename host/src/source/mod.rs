//! Where rows come from: the Parquet files of a Snowflake stage.
//!
//! - [`parquet`] reads one file as Arrow record batches, one row group at a time, and maps
//!   its schema to the plugin contract's column schema;
//! - [`path`] reads what an object key says about a file: its `PARTITION BY` folders and
//!   the parts of a Snowflake unload file name.

pub mod parquet;
pub mod path;

pub use self::parquet::{
    DEFAULT_BATCH_ROWS, ParquetSource, ReadOptions, RowGroupInfo, SourceBatch, SourceBatches,
    SourceError, contract_schema,
};
pub use self::path::{UnloadFileName, parse_file_name, source_file};
