//! Where rows come from: the Parquet, CSV and JSON files of a Snowflake stage. Stage URLs, store
//! settings and clients are [`crate::storage`]'s.
//!
//! - [`parquet`] reads one file as Arrow record batches, one row group at a time, and maps
//!   its schema to the plugin contract's column schema;
//! - [`format`] says what a file is (Parquet, CSV, JSON; its compression); [`text`] reads
//!   CSV and JSON files as the same batches;
//! - [`path`] reads what an object key says about a file: its `PARTITION BY` folders and
//!   the parts of a Snowflake unload file name;
//! - [`stage`] lists, selects ([`select`]) and opens a stage's files in object storage or
//!   a local folder; [`object_reader`] reads an object with bounded ranged reads;
//! - [`schema`] says how two files' columns differ (the one schema diff);
//! - [`identity`] gives a stage's canonical identity (the delivery state's key for it);
//! - [`json`] infers the columns of JSON rows (the relay's and `plugin test --json-input`'s);
//! - [`inspect`] reports what a stage holds (`stagepush inspect`).

pub mod format;
pub mod identity;
pub mod inspect;
pub mod json;
pub mod object_reader;
pub mod parquet;
pub mod path;
pub mod schema;
pub mod select;
pub mod stage;
pub mod text;

pub use self::object_reader::{ReadStats, ReadTuning, StageReader};
pub use self::parquet::{
    DEFAULT_BATCH_ROWS, ParquetSource, ReadOptions, RowGroupInfo, SourceBatch, SourceBatches,
    SourceError, contract_schema,
};
pub use self::path::{UnloadFileName, parse_file_name, source_file};
pub use self::schema::{SchemaColumn, describe_column, describe_difference};
pub use self::select::Selection;
pub use self::stage::{Stage, StageBatches, StageError, StageFile, StageSource, check_schema};
pub use crate::storage::{Secret, StageConfig, StageUrl, StoreKind};
