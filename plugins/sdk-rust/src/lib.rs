//! # stagepush-plugin: write stagepush transform plugins in Rust
//!
//! A stagepush plugin is a WebAssembly component implementing the contract
//! `stagepush:transform@0.2.0` (`wit/since_v0.2.0/transform.wit`): it receives batches of
//! rows from Snowflake Parquet unloads **in columns** and returns the CluedIn entities they
//! map to, packed into byte columns the host copies in one piece. This crate hides the columns: a plugin implements [`Transform`]
//! over one [`Row`] at a time and writes entities with builders on [`Out`].
//!
//! ```
//! use stagepush_plugin::prelude::*;
//!
//! struct Customer {
//!     id: Col,
//!     name: Option<Col>,
//!     email: Option<Col>,
//!     updated_at: Option<Col>,
//! }
//!
//! impl Transform for Customer {
//!     fn describe() -> Info {
//!         Info::new("customer", env!("CARGO_PKG_VERSION")).description("Customers to CluedIn")
//!     }
//!
//!     fn init(schema: &Schema, _config: &Config) -> Result<Self, String> {
//!         Ok(Customer {
//!             id: schema.require("CUSTOMER_ID")?,
//!             name: schema.column("NAME"),
//!             email: schema.column("EMAIL"),
//!             updated_at: schema.column("UPDATED_AT"),
//!         })
//!     }
//!
//!     fn transform(&mut self, row: &Row<'_>, out: &mut Out) -> Result<(), String> {
//!         out.entity("Customer", row.require(self.id)?)
//!             .timestamp(row.get(self.updated_at))
//!             .prop("name", row.get(self.name))
//!             .prop_lowercase("email", row.get(self.email).trimmed())
//!             .finish()
//!     }
//! }
//!
//! stagepush_plugin::export!(Customer);
//! # fn main() {}
//! ```
//!
//! Build the crate as a `cdylib` for `wasm32-wasip2`; the result is a component.
//!
//! ## What the SDK does for you
//! - **Columns by name**: [`Schema::column`] / [`Schema::require`] (case-insensitive) give
//!   [`Col`] handles; [`Schema::only_used_columns`] makes the host send only those.
//! - **Typed cells without copies**: [`Row::get`] returns a [`Value`] borrowing the batch's
//!   buffers; helpers read a NUMBER(38,0) id as an integer ([`Row::get_i64`]) and format
//!   decimals exactly and timestamps as RFC 3339 ([`Decimal`], [`Timestamp`]).
//! - **Entities without allocations**: [`Out::entity`] returns an [`EntityBuilder`] that
//!   writes into the columnar output (names interned per batch, payloads into one buffer).
//!   [`EntityBuilder::prop`] **omits null values**, as Snowflake's `OBJECT_CONSTRUCT` does;
//!   [`EntityBuilder::prop_or_null`] / [`EntityBuilder::prop_null`] send explicit nulls.
//! - **Row errors**: returning `Err(message)` from [`Transform::transform`] reports that row
//!   (and discards the entities it started); the other rows go on. A panic traps the whole
//!   instance: the host discards it and finds the offending row itself, so prefer `Err`.
//! - **Configuration**: keys declared in [`Info`] are checked before `init` (unknown and
//!   missing required keys are refused) and read through [`Config`].
//! - **Logging**: [`log`] writes to the host's log (plugins have no stdout of their own).
//! - **Native tests**: [`testing::Harness`] runs a `Transform` over rows natively, through
//!   the same code paths as in WebAssembly.

#![warn(missing_docs)]

extern crate self as stagepush_plugin;

/// The bindings generated from the contract (the host-facing types). Plugins rarely need them.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.2.0",
        world: "transformer",
        pub_export_macro: true,
        export_macro_name: "export_plugin",
        default_bindings_module: "stagepush_plugin::bindings",
        runtime_path: "stagepush_plugin::__wit_bindgen::rt",
    });
}

mod batch;
mod intern;
pub mod json;
mod out;
mod packed;
mod schema;
pub mod testing;
mod value;

#[doc(hidden)]
pub mod __rt {
    pub use crate::runtime::*;
}
mod runtime;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

pub use batch::Row;
pub use bindings::stagepush::transform::host::Level;
pub use out::{EntityBuilder, Out};
pub use schema::{
    Col, ColumnDef, ColumnSchema, ColumnType, Config, ConfigKeyInfo, Info, ScalarType, Schema,
    TimestampType,
};
pub use value::{Date, Decimal, IntoValue, List, TimeUnit, Timestamp, Value};

/// Everything a plugin usually needs: `use stagepush_plugin::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Col, Config, Date, Decimal, EntityBuilder, Info, IntoValue, Level, Out, Row, Schema,
        TimeUnit, Timestamp, Transform, Value, log,
    };
}

/// A transform plugin. Implement it for your plugin's state and call [`export!`] once.
///
/// The host calls [`describe`](Transform::describe), then [`init`](Transform::init) once
/// per stage, then [`transform`](Transform::transform) for every row of every batch, in
/// file order, on one instance (single-threaded; an instance is rebuilt, and `init` called
/// again, only after a trap).
pub trait Transform: Sized + 'static {
    /// Name, version, description and accepted configuration keys. Must not fail.
    fn describe() -> Info;

    /// Prepares for a stage: look the columns up (keep their [`Col`] handles) and read the
    /// configuration. Return `Err(message)` to refuse the schema or the configuration: the
    /// run stops before any row is read, with this message.
    fn init(schema: &Schema, config: &Config) -> Result<Self, String>;

    /// Maps one row to zero or more entities written to `out`. Return `Err(message)` to
    /// report the row as a row error (its entities are discarded); the batch goes on.
    fn transform(&mut self, row: &Row<'_>, out: &mut Out) -> Result<(), String>;
}

/// Writes a line to the host's log, attributed to the plugin. Natively (in tests) it goes
/// to stderr.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::stagepush::transform::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[plugin {level:?}] {message}");
}

/// Exports a [`Transform`] as the component's `plugin` interface: `export!(MyPlugin);`,
/// once per plugin crate, at the top level.
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        const _: () = {
            ::std::thread_local! {
                static __STAGEPUSH_STATE: $crate::__rt::Slot<$plugin> =
                    const { ::core::cell::RefCell::new(::core::option::Option::None) };
            }

            struct __StagepushPlugin;

            impl $crate::__rt::Guest for __StagepushPlugin {
                fn describe() -> $crate::bindings::stagepush::transform::types::PluginInfo {
                    $crate::__rt::describe::<$plugin>()
                }

                fn init(
                    schema: ::std::vec::Vec<
                        $crate::bindings::stagepush::transform::types::ColumnSchema,
                    >,
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::core::result::Result<
                    $crate::bindings::stagepush::transform::types::InitResult,
                    ::std::string::String,
                > {
                    __STAGEPUSH_STATE.with(|s| $crate::__rt::init::<$plugin>(s, schema, config))
                }

                fn transform(
                    batch: $crate::bindings::stagepush::transform::types::Batch,
                ) -> $crate::bindings::stagepush::transform::output::BatchOutput {
                    __STAGEPUSH_STATE.with(|s| $crate::__rt::transform::<$plugin>(s, batch))
                }
            }

    $crate::__rt::export_plugin!(__StagepushPlugin with_types_in $crate::bindings);
        };
    };
}
