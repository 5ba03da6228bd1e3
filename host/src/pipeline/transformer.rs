//! The transform step every entry point shares (`run`'s workers, `retry`, the relay): a
//! plugin runner started for one input schema, and the encoder of its output into wire
//! records. Row batches in, [`EncodedBatch`]es out (each row: records, filtered, or a row
//! failure); the runner's statistics go to a [`PluginReport`] when it is done.

use std::sync::Arc;

use crate::bindings::types::ColumnSchema;
use crate::plugin::{Plugin, PluginError, Runner, RunnerStats};
use crate::transform::{ArrowInput, EncodedBatch, Encoder};
use crate::wire::Shape;

use super::PluginReport;

/// See the module docs.
pub struct Transformer {
    schema: Vec<ColumnSchema>,
    runner: Runner,
    encoder: Encoder,
}

impl Transformer {
    /// Starts the plugin for `schema` (its `init` may refuse it, or the configuration).
    pub fn start(
        plugin: Arc<Plugin>,
        schema: Vec<ColumnSchema>,
        config: Vec<(String, String)>,
        shape: Shape,
    ) -> Result<Self, PluginError> {
        let runner = Runner::start(plugin, schema.clone(), config)?;
        Ok(Transformer {
            schema,
            runner,
            encoder: Encoder::new(shape),
        })
    }

    /// The input schema the plugin was started for.
    pub fn schema(&self) -> &[ColumnSchema] {
        &self.schema
    }

    /// The columns to read (`None`: all) and the schema of what is read.
    pub fn read_plan(&self) -> (Option<Vec<usize>>, Vec<ColumnSchema>) {
        self.runner.read_plan()
    }

    /// The plugin's column projection, as its `init` asked.
    pub fn projection(&self) -> Option<&[u32]> {
        self.runner.projection()
    }

    pub fn plugin(&self) -> &Arc<Plugin> {
        self.runner.plugin()
    }

    /// Transforms a batch of rows and encodes the records.
    pub fn transform(&mut self, input: &ArrowInput<'_>) -> Result<EncodedBatch, PluginError> {
        self.encoder.transform(&mut self.runner, input)
    }

    /// The plugin calls so far: count, faults, rebuilds, time inside the plugin.
    pub fn stats(&self) -> RunnerStats {
        self.runner.stats()
    }

    /// Adds this runner's statistics to `report`.
    pub fn finish(self, report: &mut PluginReport) {
        report.add(&self.runner);
    }
}

/// A transformer for whichever schema comes next (`retry`: files of one stage share theirs,
/// but a file replaced since may not): the current one is kept while the schema stays, and
/// replaced (its statistics kept) when it changes.
#[derive(Default)]
pub struct TransformerSlot {
    current: Option<Transformer>,
}

impl TransformerSlot {
    /// The transformer for `schema`, started if needed.
    pub fn for_schema(
        &mut self,
        schema: Vec<ColumnSchema>,
        start: impl FnOnce(Vec<ColumnSchema>) -> Result<Transformer, PluginError>,
        report: &mut PluginReport,
    ) -> Result<&mut Transformer, PluginError> {
        if self.current.as_ref().is_some_and(|t| t.schema != schema)
            && let Some(old) = self.current.take()
        {
            old.finish(report);
        }
        let current = match self.current.take() {
            Some(current) => current,
            None => start(schema)?,
        };
        Ok(self.current.insert(current))
    }

    /// Adds the statistics of the current transformer to `report` and drops it.
    pub fn finish(&mut self, report: &mut PluginReport) {
        if let Some(t) = self.current.take() {
            t.finish(report);
        }
    }
}
