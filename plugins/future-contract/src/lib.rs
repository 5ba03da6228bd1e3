//! Test fixture: a plugin built against a future contract version,
//! `stagepush:transform@9.0.0` (a copy of the WIT in `wit/` with only the version changed).
//! The host must refuse it, naming both its own and the plugin's contract version.
//!
//! It is otherwise a working (trivial) plugin, so a refusal can only come from the version.

mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "transformer" });
}

use bindings::exports::stagepush::transform::plugin::Guest;
use bindings::stagepush::transform::types::{
    Batch, ColumnSchema, Entities, InitResult, Output, PluginInfo,
};

struct Future;

impl Guest for Future {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "future-contract".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "test fixture built for stagepush:transform@9.0.0".into(),
            config: Vec::new(),
        }
    }

    fn init(
        _schema: Vec<ColumnSchema>,
        _config: Vec<(String, String)>,
    ) -> Result<InitResult, String> {
        Ok(InitResult { columns: None })
    }

    fn transform(_batch: Batch) -> Output {
        // Filters every row out.
        Output {
            entities: Entities {
                rows: Vec::new(),
                external_ids: Vec::new(),
                entity_types: Vec::new(),
                timestamps: Vec::new(),
                deleted: Vec::new(),
                prop_offsets: vec![0],
                prop_names: Vec::new(),
                prop_values: Vec::new(),
                names: Vec::new(),
                bytes: Vec::new(),
            },
            errors: Vec::new(),
        }
    }
}

bindings::export!(Future with_types_in bindings);
