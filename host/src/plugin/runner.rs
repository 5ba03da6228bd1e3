//! Runs batches through a plugin instance, replacing the instance after a fault and
//! bisecting the batch (or, after a time-out, replaying it row by row) so that only the
//! rows that cause faults are rejected.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::instance::{Instance, Plugin};
use super::output::validate;
use super::{Fault, PluginError};
use crate::bindings::types;

/// Produces the contract batch for a range of the current input's rows; bisection asks
/// for sub-ranges.
pub trait BatchSource {
    fn row_count(&self) -> usize;
    fn slice(&self, offset: usize, len: usize) -> types::Batch;
}

/// The output of a contiguous range of the batch.
#[derive(Debug)]
pub struct Piece {
    /// Batch row of the piece's row 0.
    pub offset: u32,
    /// Validated plugin output; its row indices are relative to `offset`.
    pub output: types::Output,
}

/// Why a row produced nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The plugin returned a row error.
    Rejected(String),
    /// The plugin faulted on this row alone (trap, time or memory limit, bad output).
    Fault(Fault),
}

impl Failure {
    /// A short stable name for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Rejected(_) => "rejected",
            Failure::Fault(fault) => fault.kind(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Rejected(message) => f.write_str(message),
            Failure::Fault(fault) => fault.fmt(f),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RowFailure {
    /// Batch row.
    pub row: u32,
    pub failure: Failure,
}

/// Everything a batch produced: output pieces and failed rows, both in row order.
#[derive(Debug, Default)]
pub struct BatchResult {
    pub pieces: Vec<Piece>,
    pub failures: Vec<RowFailure>,
}

/// Counters of one runner.
#[derive(Debug, Default, Clone)]
pub struct RunnerStats {
    pub calls: u64,
    pub faults: u64,
    /// The faults by kind ([`Fault::kind`]), each with the first one's message.
    pub faults_by_kind: BTreeMap<&'static str, FaultsOfKind>,
    pub rebuilds: u64,
    pub time_in_plugin: Duration,
    /// The warnings the plugin logged during `init` (a missing optional column, …).
    pub init_warnings: BTreeSet<String>,
}

/// The faults of one kind a runner saw.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultsOfKind {
    pub count: u64,
    /// The first one's message, with the file and the rows of the call.
    pub example: String,
}

/// A plugin instance bound to a schema and configuration: one per worker thread.
pub struct Runner {
    plugin: Arc<Plugin>,
    instance: Option<Instance>,
    schema: Vec<types::ColumnSchema>,
    config: Vec<(String, String)>,
    init: types::InitResult,
    stats: RunnerStats,
}

impl Runner {
    /// Instantiates the plugin and calls `init`. A refusal is
    /// [`PluginError::InitRefused`] with the plugin's message.
    pub fn start(
        plugin: Arc<Plugin>,
        schema: Vec<types::ColumnSchema>,
        config: Vec<(String, String)>,
    ) -> Result<Runner, PluginError> {
        let (mut instance, init) = init_instance(&plugin, &schema, &config)?;
        let init_warnings = instance.take_init_warnings().into_iter().collect();
        if let Some(columns) = &init.columns
            && let Some(bad) = columns.iter().find(|&&c| c as usize >= schema.len())
        {
            return Err(PluginError::InitRefused {
                plugin: plugin.name().to_string(),
                message: format!(
                    "the plugin asked for column {bad}, but the schema has {} columns",
                    schema.len()
                ),
            });
        }
        Ok(Runner {
            plugin,
            instance: Some(instance),
            schema,
            config,
            init,
            stats: RunnerStats {
                init_warnings,
                ..RunnerStats::default()
            },
        })
    }

    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// Column indices the plugin reads, in the order batches must carry them; `None`
    /// means every column in schema order.
    pub fn projection(&self) -> Option<&[u32]> {
        self.init.columns.as_deref()
    }

    pub fn schema(&self) -> &[types::ColumnSchema] {
        &self.schema
    }

    /// How to read files for this plugin: the column indices to decode (`None`: all), and
    /// the schema of the batches that reading produces, in the order the plugin asked for.
    pub fn read_plan(&self) -> (Option<Vec<usize>>, Vec<types::ColumnSchema>) {
        match self.projection() {
            Some(columns) => {
                let indices: Vec<usize> = columns.iter().map(|&i| i as usize).collect();
                let schema = indices.iter().map(|&i| self.schema[i].clone()).collect();
                (Some(indices), schema)
            }
            None => (None, self.schema.clone()),
        }
    }

    pub fn stats(&self) -> RunnerStats {
        self.stats.clone()
    }

    /// Transforms every row of `source`. Faults are contained: the instance is
    /// replaced and the batch bisected, so the result names each failing row. Only a
    /// failure to rebuild the instance is an error.
    pub fn transform(&mut self, source: &dyn BatchSource) -> Result<BatchResult, PluginError> {
        let mut result = BatchResult::default();
        let rows = source.row_count();
        if rows > 0 {
            self.run_range(source, 0, rows, &mut result)?;
        }
        Ok(result)
    }

    fn run_range(
        &mut self,
        source: &dyn BatchSource,
        offset: usize,
        len: usize,
        result: &mut BatchResult,
    ) -> Result<(), PluginError> {
        let batch = source.slice(offset, len);
        let instance = match self.instance.as_mut() {
            Some(instance) => instance,
            None => {
                let (instance, _) = init_instance(&self.plugin, &self.schema, &self.config)?;
                self.stats.rebuilds += 1;
                self.instance.insert(instance)
            }
        };
        let started = Instant::now();
        let outcome = instance.transform(&batch).and_then(|output| {
            validate(&output, len)
                .map(|()| output)
                .map_err(Fault::InvalidOutput)
        });
        self.stats.calls += 1;
        self.stats.time_in_plugin += started.elapsed();
        let offset32 = offset as u32;
        match outcome {
            Ok(mut output) => {
                for error in std::mem::take(&mut output.errors) {
                    result.failures.push(RowFailure {
                        row: offset32 + error.row,
                        failure: Failure::Rejected(error.message),
                    });
                }
                result.pieces.push(Piece {
                    offset: offset32,
                    output,
                });
            }
            Err(fault) => {
                self.stats.faults += 1;
                self.stats
                    .faults_by_kind
                    .entry(fault.kind())
                    .or_insert_with(|| FaultsOfKind {
                        count: 0,
                        example: match len {
                            1 => format!("{} row {}: {fault}", batch.file.key, batch.first_row),
                            _ => format!(
                                "{} rows {} to {}: {fault}",
                                batch.file.key,
                                batch.first_row,
                                batch.first_row + len as u64 - 1
                            ),
                        },
                    })
                    .count += 1;
                if !matches!(fault, Fault::InvalidOutput { .. }) {
                    // A trapped component instance cannot be entered again.
                    self.instance = None;
                }
                if len == 1 {
                    // The batch of one row starts at the file row the failure is about.
                    tracing::warn!(plugin = %self.plugin.name(), file = %batch.file.key, row = batch.first_row, %fault, "plugin fault isolated to one row");
                    result.failures.push(RowFailure {
                        row: offset32,
                        failure: Failure::Fault(fault),
                    });
                } else if matches!(fault, Fault::Timeout { .. }) {
                    // Bisecting a time-out would wait out the limit once per level; rows
                    // one at a time cost one limit per looping row and microseconds for
                    // the rest.
                    tracing::debug!(plugin = %self.plugin.name(), offset, len, %fault, "plugin time-out; replaying the rows one at a time");
                    for row in offset..offset + len {
                        self.run_range(source, row, 1, result)?;
                    }
                } else {
                    tracing::debug!(plugin = %self.plugin.name(), offset, len, %fault, "plugin fault; bisecting the batch");
                    let half = len / 2;
                    self.run_range(source, offset, half, result)?;
                    self.run_range(source, offset + half, len - half, result)?;
                }
            }
        }
        Ok(())
    }
}

fn init_instance(
    plugin: &Plugin,
    schema: &[types::ColumnSchema],
    config: &[(String, String)],
) -> Result<(Instance, types::InitResult), PluginError> {
    let mut instance = plugin.instantiate()?;
    match instance.init(schema, config) {
        Ok(Ok(init)) => Ok((instance, init)),
        Ok(Err(refusal)) => Err(PluginError::InitRefused {
            plugin: plugin.name().to_string(),
            message: refusal.0,
        }),
        Err(fault) => Err(plugin.fault("init", fault)),
    }
}
