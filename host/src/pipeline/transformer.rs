//! The transform step every entry point shares (`run`'s workers, `retry`, the relay): a
//! plugin runner, or the host's native mapping (`[mapping]` or the pass-through, see
//! [`crate::mapping`]), started for one input schema, and the encoder of its output into
//! wire records. Row batches in, [`EncodedBatch`]es out (each row: records, filtered, or a
//! row failure); the statistics go to a [`PluginReport`] when it is done. Both kinds give
//! the same contract output, so everything after this step treats them alike.

use std::sync::Arc;

use crate::bindings::types::ColumnSchema;
use crate::mapping::{Mapping, MappingError, MappingSpec};
use crate::plugin::{Plugin, PluginError, Runner, RunnerStats};
use crate::transform::{ArrowInput, EncodedBatch, Encoder};
use crate::wire::Shape;

use super::PluginReport;

/// What turns rows into entities.
#[derive(Clone)]
pub enum TransformSpec {
    /// A WebAssembly plugin and its `key = value` configuration.
    Plugin {
        plugin: Arc<Plugin>,
        config: Vec<(String, String)>,
    },
    /// The host's native mapping: `[mapping]`, or the pass-through.
    Mapping(Arc<MappingSpec>),
}

impl TransformSpec {
    /// The plugin's name, `mapping` or `pass-through` (dead letters, reports).
    pub fn name(&self) -> &str {
        match self {
            TransformSpec::Plugin { plugin, .. } => plugin.name(),
            TransformSpec::Mapping(spec) => spec.name(),
        }
    }

    /// The plugin's SHA-256, or the digest of what the mapping says: the state records it
    /// with each delivered file, so a rerun with another transform can say so.
    pub fn digest(&self) -> String {
        match self {
            TransformSpec::Plugin { plugin, .. } => plugin.digest().to_string(),
            TransformSpec::Mapping(spec) => spec.digest(),
        }
    }

    /// A report of no calls yet.
    pub fn report(&self) -> PluginReport {
        match self {
            TransformSpec::Plugin { plugin, .. } => PluginReport::new(plugin),
            TransformSpec::Mapping(spec) => PluginReport::for_mapping(spec),
        }
    }
}

/// Why a transform cannot start for a schema.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Mapping(#[from] MappingError),
}

enum Kind {
    Plugin(Runner),
    Mapping(Mapping),
}

/// See the module docs.
pub struct Transformer {
    schema: Vec<ColumnSchema>,
    kind: Kind,
    encoder: Encoder,
}

impl Transformer {
    /// Starts the transform for `schema`: a plugin's `init` may refuse it (or the
    /// configuration); a mapping is compiled against it.
    pub fn start(
        spec: &TransformSpec,
        schema: Vec<ColumnSchema>,
        shape: Shape,
    ) -> Result<Self, StartError> {
        let kind = match spec {
            TransformSpec::Plugin { plugin, config } => Kind::Plugin(Runner::start(
                plugin.clone(),
                schema.clone(),
                config.clone(),
            )?),
            TransformSpec::Mapping(m) => Kind::Mapping(Mapping::start(m.clone(), &schema)?),
        };
        Ok(Transformer {
            schema,
            kind,
            encoder: Encoder::new(shape),
        })
    }

    /// The input schema the transform was started for.
    pub fn schema(&self) -> &[ColumnSchema] {
        &self.schema
    }

    /// The columns to read (`None`: all) and the schema of what is read.
    pub fn read_plan(&self) -> (Option<Vec<usize>>, Vec<ColumnSchema>) {
        match &self.kind {
            Kind::Plugin(runner) => runner.read_plan(),
            Kind::Mapping(m) => {
                let indices: Vec<usize> = m.projection().iter().map(|&i| i as usize).collect();
                let schema = indices.iter().map(|&i| self.schema[i].clone()).collect();
                (Some(indices), schema)
            }
        }
    }

    /// The column projection: the plugin's, as its `init` asked, or the mapping's.
    pub fn projection(&self) -> Option<&[u32]> {
        match &self.kind {
            Kind::Plugin(runner) => runner.projection(),
            Kind::Mapping(m) => Some(m.projection()),
        }
    }

    /// The plugin's name, `mapping` or `pass-through`.
    pub fn name(&self) -> &str {
        match &self.kind {
            Kind::Plugin(runner) => runner.plugin().name(),
            Kind::Mapping(m) => m.spec().name(),
        }
    }

    /// Transforms a batch of rows and encodes the records.
    pub fn transform(&mut self, input: &ArrowInput<'_>) -> Result<EncodedBatch, PluginError> {
        match &mut self.kind {
            Kind::Plugin(runner) => self.encoder.transform(runner, input),
            Kind::Mapping(m) => {
                let result = m.transform(input);
                Ok(self
                    .encoder
                    .encode(input.first_row, input.batch.num_rows(), &result))
            }
        }
    }

    /// The calls so far: count, faults, rebuilds, time inside the plugin or mapping.
    pub fn stats(&self) -> RunnerStats {
        match &self.kind {
            Kind::Plugin(runner) => runner.stats(),
            Kind::Mapping(m) => {
                let s = m.stats();
                RunnerStats {
                    calls: s.calls,
                    time_in_plugin: s.time,
                    ..RunnerStats::default()
                }
            }
        }
    }

    /// Adds this transform's statistics to `report` (and, for a mapping, which declared
    /// properties it never set).
    pub fn finish(self, report: &mut PluginReport) {
        let stats = self.stats();
        // Only an instance that saw rows can say a property was never set (a rerun that
        // reads nothing warns about nothing).
        let saw_rows = stats.calls > 0;
        report.add_stats(stats);
        if let Kind::Mapping(m) = &self.kind
            && saw_rows
        {
            report.merge_never_set(m.never_set());
        }
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
        start: impl FnOnce(Vec<ColumnSchema>) -> Result<Transformer, StartError>,
        report: &mut PluginReport,
    ) -> Result<&mut Transformer, StartError> {
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
