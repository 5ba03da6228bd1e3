//! The glue between the contract's exports and a [`Transform`]: used by [`export!`] and by
//! [`testing`](crate::testing). Not part of the public API.

use core::cell::RefCell;

use crate::Transform;
use crate::batch::BatchView;
use crate::bindings::stagepush::transform::output::BatchOutput;
use crate::bindings::stagepush::transform::types::{Batch, ColumnSchema, InitResult, PluginInfo};
use crate::out::Out;
use crate::schema::{Config, Schema};

pub use crate::bindings::export_plugin;
pub use crate::bindings::exports::stagepush::transform::plugin::Guest;

/// An initialised plugin and its per-batch buffers.
pub struct Runner<T> {
    plugin: T,
    schema: Schema,
    /// Schema index of each column the host sends, in order.
    sent: Vec<u32>,
    out: Out,
}

impl<T: Transform> Runner<T> {
    /// Checks the configuration against [`Transform::describe`], calls [`Transform::init`]
    /// and works out which columns to ask for.
    pub fn new(
        schema: Vec<ColumnSchema>,
        config: Vec<(String, String)>,
    ) -> Result<(Runner<T>, InitResult), String> {
        let config = Config::checked(&T::describe(), config)?;
        let schema = Schema::new(schema);
        let plugin = T::init(&schema, &config)?;
        let projection = schema.projection();
        let sent = match &projection {
            Some(p) => p.clone(),
            None => (0..schema.len() as u32).collect(),
        };
        let runner = Runner {
            plugin,
            schema,
            sent,
            out: Out::new(),
        };
        Ok((
            runner,
            InitResult {
                columns: projection,
            },
        ))
    }

    /// Runs every row of `batch` through the plugin.
    pub fn run(&mut self, batch: &Batch) -> BatchOutput {
        let out = &mut self.out;
        match BatchView::new(&self.schema, &self.sent, batch) {
            Ok(view) => {
                for i in 0..view.row_count() {
                    out.begin_row(i);
                    let mark = out.mark();
                    if let Err(msg) = self.plugin.transform(&view.row(i), out) {
                        out.rollback(mark);
                        out.row_error(i, msg);
                    }
                }
            }
            Err(e) => {
                let msg = format!("malformed batch from the host: {e}");
                for i in 0..batch.row_count {
                    out.row_error(i, msg.clone());
                }
            }
        }
        out.take()
    }

    /// The plugin.
    pub fn plugin(&mut self) -> &mut T {
        &mut self.plugin
    }

    /// The columns the host sends, as schema indices.
    pub fn sent(&self) -> &[u32] {
        &self.sent
    }

    /// The schema given to `init`.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }
}

/// The instance's plugin state, kept by [`export!`](crate::export).
pub type Slot<T> = RefCell<Option<Runner<T>>>;

/// `describe` export.
pub fn describe<T: Transform>() -> PluginInfo {
    T::describe().to_wit()
}

/// `init` export: (re)initialises the plugin.
pub fn init<T: Transform>(
    slot: &Slot<T>,
    schema: Vec<ColumnSchema>,
    config: Vec<(String, String)>,
) -> Result<InitResult, String> {
    let mut s = slot.borrow_mut();
    *s = None;
    let (runner, result) = Runner::new(schema, config)?;
    *s = Some(runner);
    Ok(result)
}

/// `transform` export.
pub fn transform<T: Transform>(slot: &Slot<T>, batch: Batch) -> BatchOutput {
    match slot.borrow_mut().as_mut() {
        Some(runner) => runner.run(&batch),
        None => {
            let mut out = Out::new();
            for i in 0..batch.row_count {
                out.row_error(i, "transform called before a successful init".into());
            }
            out.take()
        }
    }
}
