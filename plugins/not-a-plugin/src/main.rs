//! Test fixture: a valid WebAssembly component that is not a stagepush plugin (a WASI
//! command exporting `wasi:cli/run`, nothing of `stagepush:transform`). The host must refuse
//! it with a clear message.

fn main() {
    println!("hello from not-a-plugin: I export wasi:cli/run, not stagepush:transform/plugin");
}
