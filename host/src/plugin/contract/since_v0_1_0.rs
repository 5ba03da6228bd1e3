//! Contract 0.1.0 (`wit/since_v0.1.0/`): entities as lists of records and variants.
//!
//! Its bindings are `crate::bindings::since_v0_1_0`; their `types` are the host's model of
//! a batch and an output (0.2.0 reuses the input types and its packed output is unpacked
//! into 0.1.0's `Output`, see [`super::since_v0_2_0`]). This file owns what the host does
//! for this version alone: its imports (`host.log`, the function-less `types`) and how a
//! component built for it is linked.

use wasmtime::component::{Component, HasSelf, Linker};

use super::LinkError;
use crate::bindings::since_v0_1_0::{Transformer, TransformerPre};
use crate::bindings::{host, types};
use crate::plugin::sandbox::{MAX_LOG_LINE_BYTES, State, truncate};

/// The shared types interface has no functions (0.2.0 reuses 0.1.0's).
impl types::Host for State {}

impl host::Host for State {
    fn log(&mut self, level: host::Level, message: String) {
        let message = truncate(&message, MAX_LOG_LINE_BYTES);
        let plugin = self.plugin_name();
        match level {
            host::Level::Trace => tracing::trace!(plugin, "{message}"),
            host::Level::Debug => tracing::debug!(plugin, "{message}"),
            host::Level::Info => tracing::info!(plugin, "{message}"),
            host::Level::Warn => {
                tracing::warn!(plugin, "{message}");
                self.warned(&message);
            }
            host::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

/// Adds 0.1.0's imports to `linker` and links `component` against them.
pub(super) fn link(
    linker: &mut Linker<State>,
    component: &Component,
) -> Result<TransformerPre<State>, LinkError> {
    Transformer::add_to_linker::<State, HasSelf<State>>(linker, |state| state)
        .map_err(LinkError::Engine)?;
    let instance_pre = linker
        .instantiate_pre(component)
        .map_err(LinkError::Imports)?;
    TransformerPre::new(instance_pre).map_err(LinkError::Imports)
}
