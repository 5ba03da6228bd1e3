mod columns;
mod customer_plugin;
mod mock_cluedin;
mod plugin_runtime;
mod sink;
mod util;
