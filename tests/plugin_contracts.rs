//! Plugins built for older contracts keep running: `plugins/customer-v0-1-0` is the customer
//! plugin written directly against `stagepush:transform@0.1.0` (lists of records and
//! variants), `plugins/customer-rust` the same mapping on the SDK, which builds for 0.2.0
//! (packed output). Through the real binary, both must load, say which contract they were
//! built for, and give byte-identical records and the same row errors.

use std::path::{Path, PathBuf};

use crate::util::{Output, fixture, plugin, run, stagepush, temp_dir};

/// The contract line of `stagepush plugin info`.
fn contract(dir: &Path, name: &str) -> String {
    let out = run(stagepush(dir).args(["plugin", "info"]).arg(plugin(name)));
    assert!(out.status.success(), "{name}: {}", out.stderr);
    out.stdout
        .lines()
        .find(|l| l.starts_with("contract:"))
        .unwrap_or_default()
        .to_string()
}

fn plugin_test(dir: &Path, name: &str, inputs: &[PathBuf], args: &[&str]) -> Output {
    run(stagepush(dir)
        .args(["plugin", "test"])
        .arg(plugin(name))
        .args(inputs)
        .args(args))
}

/// Runs the 0.1.0 and the 0.2.0 plugin over `inputs`; requires a successful run of each with
/// the same records, error lines and summary counts; returns the 0.1.0 plugin's output.
fn same(dir: &Path, inputs: &[PathBuf], args: &[&str]) -> Output {
    let old = plugin_test(dir, "customer-v0-1-0", inputs, args);
    let new = plugin_test(dir, "customer-rust", inputs, args);
    assert!(old.status.success(), "0.1.0: {}", old.stderr);
    assert!(new.status.success(), "0.2.0: {}", new.stderr);
    assert_eq!(old.stdout, new.stdout, "records differ");
    assert_eq!(old.stderr_lines("error:"), new.stderr_lines("error:"));
    let counts = |out: &Output| {
        out.stderr_lines("summary:")
            .first()
            .map(|l| l.split(';').next().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    assert_eq!(counts(&old), counts(&new));
    old
}

#[test]
fn a_plugin_built_for_contract_0_1_0_loads_and_gives_the_sdk_plugins_records() {
    let dir = temp_dir();
    assert_eq!(
        contract(dir.path(), "customer-v0-1-0"),
        "contract:    stagepush:transform@0.1.0"
    );
    assert_eq!(
        contract(dir.path(), "customer-rust"),
        "contract:    stagepush:transform@0.2.0"
    );
    let input = dir.path().join("data_0_0_0.snappy.parquet");
    crate::customer_plugin::write_customer_input(&input);
    let out = same(dir.path(), std::slice::from_ref(&input), &[]);
    let expected = std::fs::read_to_string(fixture("customer-rust/expected.ndjson")).unwrap();
    assert_eq!(out.stdout, expected);
    assert_eq!(
        out.stderr_lines("error:"),
        [format!(
            "error: {} row 2: plugin `customer` rejected the row (rejected): CUSTOMER_ID is null",
            input.display()
        )]
    );
    same(dir.path(), &[input], &["--shape", "flat"]);
}

#[test]
fn contracts_0_1_0_and_0_2_0_agree_over_many_batches() {
    let dir = temp_dir();
    let input = dir.path().join("data_0_0_0.snappy.parquet");
    let options = stagepush::sample::CustomerFileOptions {
        tombstone_fraction: 0.05,
        null_id_fraction: 0.01,
        ..Default::default()
    };
    stagepush::sample::write_customer_file(&input, 7, 5_000, &options).unwrap();
    let out = same(dir.path(), &[input], &["--plugin-batch-rows", "777"]);
    let errors = out.stderr_lines("error:").len();
    assert!(errors > 0, "the sample has null ids: {}", out.stderr);
    assert_eq!(out.stdout_lines().len() + errors, 5_000);
    assert!(out.stdout.contains("\"deleted\":true"), "no tombstones");
}
