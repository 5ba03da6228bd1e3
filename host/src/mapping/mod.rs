//! Zero-code transforms, run by the host itself: a declarative `[mapping]` from the config
//! file, and the pass-through of SQL-shaped unloads (`EXTERNALID`, `TYPE`, `TIMESTAMP`,
//! `PROPERTIES`, optional `DELETED`). See `docs/mapping.md`.
//!
//! Neither is a WebAssembly guest: there is nothing to sandbox (a mapping cannot do I/O or
//! loop) and nothing to compile, so the host compiles the mapping against the stage's
//! schema into a small [`Program`] and evaluates it natively. Its output is the contract's
//! [`Output`](crate::bindings::types::Output) in a [`BatchResult`], the very value a
//! plugin [`Runner`](crate::plugin::Runner) gives, so the pipeline's `Transformer`,
//! encoder, row accounting, dead letters and state treat it exactly as a plugin's.
//!
//! Parts: `config` (`[mapping]` as written), `expr` (the expression parser), `compile`
//! (checking against the schema), `eval` (running it), `json` (JSON paths over text),
//! `value` (values and text forms), `error` ([`MappingError`]).

pub mod compile;
pub mod config;
mod error;
mod eval;
pub mod expr;
mod json;
mod value;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::Digest as _;

use crate::bindings::types::ColumnSchema;
use crate::plugin::{BatchResult, BatchSource, Failure, Piece, RowFailure};

pub use compile::{FUNCTIONS, Program};
pub use config::{EntityConfig, MappingConfig, Properties};
pub use error::{MappingError, SyntaxError, UnmappableRow};

use compile::{Compiler, EntityProgram, Node, PropProgram, TypeSource, column_list, find_column};
use value::Ty;

/// The name reports and dead letters give a declared mapping.
pub const MAPPING_NAME: &str = "mapping";
/// The name reports and dead letters give the pass-through.
pub const PASS_THROUGH_NAME: &str = "pass-through";

/// The pass-through's columns (matched case-insensitively: `externalId` is `EXTERNALID`).
pub const PASS_THROUGH_COLUMNS: [&str; 4] = ["EXTERNALID", "TYPE", "TIMESTAMP", "PROPERTIES"];
/// The pass-through's optional tombstone column.
pub const PASS_THROUGH_DELETED: &str = "DELETED";

/// Which native transform a run uses.
#[derive(Debug, Clone, PartialEq)]
pub enum MappingSpec {
    /// `[mapping]` from the config file.
    Declared(MappingConfig),
    /// No plugin and no `[mapping]`: the stage's rows are records already.
    PassThrough,
}

impl MappingSpec {
    /// `mapping` or `pass-through`.
    pub fn name(&self) -> &'static str {
        match self {
            MappingSpec::Declared(_) => MAPPING_NAME,
            MappingSpec::PassThrough => PASS_THROUGH_NAME,
        }
    }

    /// A digest of what the mapping says (the report's `sha256`): it changes when the
    /// mapping does.
    pub fn digest(&self) -> String {
        let text = match self {
            MappingSpec::Declared(c) => format!("{c:?}"),
            MappingSpec::PassThrough => PASS_THROUGH_NAME.to_string(),
        };
        hex::encode(sha2::Sha256::digest(text.as_bytes()))
    }

    /// Compiles the mapping for `schema` (see [`validate`] and [`pass_through`]).
    pub fn compile(&self, schema: &[ColumnSchema]) -> Result<Program, MappingError> {
        match self {
            MappingSpec::Declared(c) => validate(c, schema),
            MappingSpec::PassThrough => pass_through(schema),
        }
    }
}

/// Checks `config` against a stage's `schema` and compiles it: every column, function and
/// type is checked here, before any row is read (`stagepush check` calls this too).
pub fn validate(config: &MappingConfig, schema: &[ColumnSchema]) -> Result<Program, MappingError> {
    let entities = config.entities()?;
    let mut c = Compiler::new(schema);
    for (i, e) in entities.iter().enumerate() {
        c.entity(i, e)?;
    }
    Ok(c.program)
}

/// The pass-through program for `schema`, or an error naming the columns it lacks.
pub fn pass_through(schema: &[ColumnSchema]) -> Result<Program, MappingError> {
    let found: Vec<Option<usize>> = PASS_THROUGH_COLUMNS
        .iter()
        .map(|n| find_column(schema, n))
        .collect();
    let missing: Vec<&str> = PASS_THROUGH_COLUMNS
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|(n, _)| *n)
        .collect();
    let [Some(id), Some(ty), Some(ts), Some(props)] = found[..] else {
        return Err(MappingError::NotPassThrough {
            missing: missing.join(", "),
            existing: column_list(schema),
        });
    };
    let mut c = Compiler::new(schema);
    let name = |i: usize| schema[i].name.clone();
    let type_error = |i: usize, what: &str, t: Ty| MappingError::Type {
        field: format!("pass-through column {}", schema[i].name),
        message: format!("it is {}; {what}", t.name()),
    };
    let (id_node, _) = c.read(id);
    let (ty_node, _) = c.read(ty);
    let (ts_node, ts_ty) = c.read(ts);
    let timestamp = match ts_ty {
        Ty::Timestamp | Ty::Date => ts_node,
        Ty::Text | Ty::Json => Node::Timestamp(Box::new(ts_node)),
        t => {
            return Err(type_error(
                ts,
                "it must be a timestamp, a date or RFC 3339 text",
                t,
            ));
        }
    };
    let (props_node, props_ty) = c.read(props);
    if !matches!(props_ty, Ty::Text | Ty::Json) {
        return Err(type_error(
            props,
            "it must be an OBJECT (JSON text)",
            props_ty,
        ));
    }
    let deleted = match find_column(schema, PASS_THROUGH_DELETED) {
        Some(d) => {
            let (n, t) = c.read(d);
            if !matches!(t, Ty::Bool | Ty::Int | Ty::Decimal | Ty::Text | Ty::Json) {
                return Err(type_error(d, "it must be a boolean", t));
            }
            Some(n)
        }
        None => None,
    };
    c.program.entities.push(EntityProgram {
        ty: TypeSource::Column(ty_node, name(ty)),
        id: id_node,
        id_label: name(id),
        timestamp: Some(timestamp),
        deleted,
        props: vec![PropProgram::Object(props_node, name(props))],
    });
    Ok(c.program)
}

/// Counters of one mapping instance (the report's plugin statistics).
#[derive(Debug, Default, Clone, Copy)]
pub struct MappingStats {
    pub calls: u64,
    pub time: Duration,
}

/// A mapping compiled for one schema, run on batches by one worker.
pub struct Mapping {
    spec: Arc<MappingSpec>,
    program: Program,
    /// Per declared property: set on at least one record.
    set: Vec<bool>,
    stats: MappingStats,
}

impl Mapping {
    /// Compiles `spec` for `schema`.
    pub fn start(spec: Arc<MappingSpec>, schema: &[ColumnSchema]) -> Result<Mapping, MappingError> {
        let program = spec.compile(schema)?;
        Ok(Mapping {
            set: vec![false; program.declared.len()],
            spec,
            program,
            stats: MappingStats::default(),
        })
    }

    pub fn spec(&self) -> &Arc<MappingSpec> {
        &self.spec
    }

    /// The schema indices of the columns the mapping reads, in the order it reads them.
    pub fn projection(&self) -> &[u32] {
        &self.program.columns
    }

    pub fn stats(&self) -> MappingStats {
        self.stats
    }

    /// Maps every row of `source`: records, or a row error naming the column at fault.
    pub fn transform(&mut self, source: &dyn BatchSource) -> BatchResult {
        let rows = source.row_count();
        let mut result = BatchResult::default();
        if rows == 0 {
            return result;
        }
        let started = Instant::now();
        let batch = source.slice(0, rows);
        let mut output =
            eval::Evaluator::new(&self.program).run(&batch.columns, rows, &mut self.set);
        self.stats.calls += 1;
        self.stats.time += started.elapsed();
        for error in std::mem::take(&mut output.errors) {
            result.failures.push(RowFailure {
                row: error.row,
                failure: Failure::Rejected(error.message),
            });
        }
        result.pieces.push(Piece { offset: 0, output });
        result
    }

    /// `Type.property` of each declared property no record of this instance had.
    pub fn never_set(&self) -> Vec<String> {
        self.program
            .declared
            .iter()
            .zip(&self.set)
            .filter(|(_, set)| !**set)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// `Type.property` of every declared property.
    pub fn declared(&self) -> &[String] {
        &self.program.declared
    }
}

#[cfg(test)]
mod tests;
