//! The sandboxed plugin runtime through `stagepush plugin test`: misbehaving plugins are
//! stopped or denied, the error names plugin, file, row and cause, and every other row
//! still comes out.

use crate::util::{Output, customer_file, plugin, run, shared_plugin_cache, stagepush, temp_dir};

const ROWS: u64 = 30;

/// The misbehave plugins of the interpreted languages (`plugins/misbehave-python`,
/// `plugins/misbehave-js`), built on their SDKs.
const INTERPRETED: [&str; 2] = ["misbehave-python", "misbehave-js"];
/// Their memory cap in the tests: an interpreter's heap starts at tens of MiB.
const INTERPRETED_MEMORY_MIB: &str = "128";

/// Runs the misbehave plugin in `mode` against row `row` of a 30-row file, in batches
/// of 8 rows, with a short time limit and a small memory cap.
fn misbehave(mode: &str, row: u64, envs: &[(&str, &str)]) -> (Output, String) {
    misbehave_in("misbehave-rust", "64", mode, row, envs)
}

/// As [`misbehave`], with the misbehave plugin `name` and a memory cap of `memory_mib`.
fn misbehave_in(
    name: &str,
    memory_mib: &str,
    mode: &str,
    row: u64,
    envs: &[(&str, &str)],
) -> (Output, String) {
    misbehave_timed(name, memory_mib, TIME_LIMIT_MS, mode, row, envs)
}

/// The time limit of a call in these tests (the `loop` rows hit it).
const TIME_LIMIT_MS: &str = "300";

/// A time limit that a memory-hungry row never reaches before the memory cap, however
/// loaded the machine: the memory cap is what stops it.
const NO_TIME_LIMIT_MS: &str = "60000";

fn misbehave_timed(
    name: &str,
    memory_mib: &str,
    timeout_ms: &str,
    mode: &str,
    row: u64,
    envs: &[(&str, &str)],
) -> (Output, String) {
    let dir = temp_dir();
    let input = customer_file(dir.path(), "data_0_0_0.snappy.parquet", ROWS);
    let mut cmd = stagepush(dir.path());
    cmd.args(["plugin", "test"])
        .arg(plugin(name))
        .arg(&input)
        .args([
            "--plugin-config",
            &format!("mode={mode}"),
            "--plugin-config",
            &format!("row={row}"),
        ])
        .args([
            "--plugin-batch-rows",
            "8",
            "--plugin-timeout-ms",
            timeout_ms,
            "--plugin-memory-mib",
            memory_mib,
        ]);
    if INTERPRETED.contains(&name) {
        cmd.env("STAGEPUSH_CACHE_DIR", shared_plugin_cache());
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    (run(&mut cmd), input.display().to_string())
}

/// Every row but `bad` came out as its own record, in order.
fn assert_other_rows_delivered(out: &Output, bad: u64) {
    let ids: Vec<String> = out
        .stdout_lines()
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("record is JSON");
            v["externalId"].as_str().expect("externalId").to_string()
        })
        .collect();
    let expected: Vec<String> = (0..ROWS)
        .filter(|&r| r != bad)
        .map(|r| r.to_string())
        .collect();
    assert_eq!(ids, expected, "stderr:\n{}", out.stderr);
}

/// The one error line for `row`, which names the plugin and the file.
fn error_line<'a>(out: &'a Output, file: &str, row: u64) -> &'a str {
    let errors = out.stderr_lines("error:");
    assert_eq!(
        errors.len(),
        1,
        "exactly one row error expected; stderr:\n{}",
        out.stderr
    );
    let line = errors[0];
    assert!(
        line.starts_with(&format!("error: {file} row {row}: plugin `misbehave`")),
        "error line must name file, row and plugin: {line}"
    );
    line
}

#[test]
fn a_trap_rejects_only_its_row_with_the_panic_message() {
    let (out, file) = misbehave("trap", 11, &[]);
    assert!(out.status.success(), "{}", out.stderr);
    let line = error_line(&out, &file, 11);
    assert!(
        line.contains("(trap)") && line.contains("boom on row 11"),
        "{line}"
    );
    assert_other_rows_delivered(&out, 11);
    assert!(
        out.stderr.contains("29 records, 0 filtered, 1 errors"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_endless_loop_is_stopped_by_the_time_limit() {
    let (out, file) = misbehave("loop", 3, &[]);
    assert!(out.status.success(), "{}", out.stderr);
    let line = error_line(&out, &file, 3);
    assert!(
        line.contains("(timeout)") && line.contains("300 ms"),
        "{line}"
    );
    assert_other_rows_delivered(&out, 3);
}

#[test]
fn unbounded_allocation_is_stopped_by_the_memory_cap() {
    let (out, file) = misbehave("alloc", 29, &[]);
    assert!(out.status.success(), "{}", out.stderr);
    let line = error_line(&out, &file, 29);
    assert!(
        line.contains("(memory-limit)") && line.contains("64 MiB"),
        "{line}"
    );
    assert_other_rows_delivered(&out, 29);
}

#[test]
fn interpreted_plugins_are_stopped_by_the_time_limit_and_the_memory_cap() {
    for name in INTERPRETED {
        let (out, file) = misbehave_in(name, INTERPRETED_MEMORY_MIB, "loop", 3, &[]);
        assert!(out.status.success(), "{name}: {}", out.stderr);
        let line = error_line(&out, &file, 3);
        assert!(
            line.contains("(timeout)") && line.contains("300 ms"),
            "{name}: {line}"
        );
        assert_other_rows_delivered(&out, 3);

        let (out, file) = misbehave_timed(
            name,
            INTERPRETED_MEMORY_MIB,
            NO_TIME_LIMIT_MS,
            "alloc",
            29,
            &[],
        );
        assert!(out.status.success(), "{name}: {}", out.stderr);
        let line = error_line(&out, &file, 29);
        assert!(
            line.contains("(memory-limit)") && line.contains("128 MiB"),
            "{name}: {line}"
        );
        assert_other_rows_delivered(&out, 29);
    }
}

/// An exception is the row's error; the engine running out of memory is not: the SDKs let
/// it trap the instance, so the row is never rejected for it.
#[test]
fn interpreted_plugins_reject_a_row_for_an_exception_but_not_for_an_engine_out_of_memory() {
    for name in INTERPRETED {
        let (out, file) = misbehave_in(name, INTERPRETED_MEMORY_MIB, "raise", 11, &[]);
        assert!(out.status.success(), "{name}: {}", out.stderr);
        let line = error_line(&out, &file, 11);
        assert!(
            line.contains("(rejected)") && line.contains("bad value on row 11"),
            "{name}: {line}"
        );
        assert_other_rows_delivered(&out, 11);

        // Every time: the rebuilt instances fail on the row too, which ends as a fault.
        let (out, file) = misbehave_in(name, INTERPRETED_MEMORY_MIB, "engine-oom", 11, &[]);
        assert!(out.status.success(), "{name}: {}", out.stderr);
        let line = error_line(&out, &file, 11);
        assert!(
            line.contains("(trap)")
                && (line.contains("MemoryError") || line.contains("out of memory")),
            "{name}: {line}"
        );
        assert_other_rows_delivered(&out, 11);
    }
}

/// The case the rethrow is for: an instance whose heap earlier batches filled runs out of
/// memory on a good row. The host rebuilds the instance and reruns the rows, and the row
/// goes through: every record comes out and nothing is rejected.
#[test]
fn an_engine_out_of_memory_reruns_the_rows_on_a_fresh_instance() {
    for name in INTERPRETED {
        let (out, _) = misbehave_in(name, INTERPRETED_MEMORY_MIB, "heap-full", 11, &[]);
        assert!(out.status.success(), "{name}: {}", out.stderr);
        // It did run out: its message reached the log.
        assert!(
            out.stderr.contains("MemoryError") || out.stderr.contains("out of memory"),
            "{name}: {}",
            out.stderr
        );
        assert_other_rows_delivered(&out, ROWS);
        assert!(
            out.stderr.contains("30 records, 0 filtered, 0 errors"),
            "{name}: {}",
            out.stderr
        );
    }
}

#[test]
fn reading_a_file_is_denied() {
    let (out, file) = misbehave("read-file", 0, &[]);
    assert!(out.status.success(), "{}", out.stderr);
    let line = error_line(&out, &file, 0);
    assert!(
        line.contains("(rejected)") && line.contains("denied:"),
        "{line}"
    );
    assert!(
        !out.stdout.contains("leaked") && !out.stdout.contains("root:"),
        "{}",
        out.stdout
    );
    assert_other_rows_delivered(&out, 0);
}

#[test]
fn the_host_environment_is_invisible() {
    let (out, file) = misbehave("env", 5, &[("STAGEPUSH_SECRET", "hunter2")]);
    assert!(out.status.success(), "{}", out.stderr);
    let line = error_line(&out, &file, 5);
    assert!(line.contains("denied:"), "{line}");
    assert!(!out.stdout.contains("hunter2") && !out.stderr.contains("hunter2"));
    assert_other_rows_delivered(&out, 5);
}

#[test]
fn opening_a_socket_is_denied() {
    // Something listens, so only the sandbox can make the connection fail.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let dir = temp_dir();
    let input = customer_file(dir.path(), "data_0_0_0.snappy.parquet", ROWS);
    let out = run(stagepush(dir.path())
        .args(["plugin", "test"])
        .arg(plugin("misbehave-rust"))
        .arg(&input)
        .args(["--plugin-config", "mode=socket", "--plugin-config", "row=7"])
        .args(["--plugin-config", &format!("target=127.0.0.1:{port}")]));
    assert!(out.status.success(), "{}", out.stderr);
    let line = error_line(&out, &input.display().to_string(), 7);
    assert!(line.contains("denied:"), "{line}");
    assert!(!out.stdout.contains("leaked"));
    assert_other_rows_delivered(&out, 7);
}

#[test]
fn guest_stdout_goes_to_the_log_not_to_the_records() {
    let (out, _) = misbehave("print", 2, &[]);
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout_lines().len() as u64, ROWS, "{}", out.stderr);
    assert!(
        out.stderr.contains("stdout") && out.stderr.contains("misbehave"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.lines().all(|l| l.starts_with('{')));
}

#[test]
fn a_refused_schema_stops_before_any_row() {
    let (out, _) = misbehave("refuse", 0, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr
            .contains("plugin `misbehave` refused to start: refusing schema"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_component_that_is_not_a_plugin_is_refused_clearly() {
    let dir = temp_dir();
    let input = customer_file(dir.path(), "in.parquet", 3);
    let out = run(stagepush(dir.path())
        .args(["plugin", "test"])
        .arg(plugin("not-a-plugin"))
        .arg(&input));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("is not a stagepush plugin"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("stagepush:transform/plugin@0.2.0"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"));
}

#[test]
fn a_plugin_for_an_unknown_contract_version_is_refused_with_both_versions() {
    let dir = temp_dir();
    let input = customer_file(dir.path(), "in.parquet", 3);
    let out = run(stagepush(dir.path())
        .args(["plugin", "test"])
        .arg(plugin("future-contract"))
        .arg(&input));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("built for contract stagepush:transform@9.0.0")
            && out.stderr.contains(
                "this stagepush runs stagepush:transform@0.1.0 and stagepush:transform@0.2.0"
            ),
        "{}",
        out.stderr
    );
}

#[test]
fn files_that_are_not_components_are_refused_clearly() {
    let dir = temp_dir();
    let input = customer_file(dir.path(), "in.parquet", 3);
    let text = dir.path().join("plugin.wasm");
    std::fs::write(&text, "not wasm at all").unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    for (path, expected) in [(&text, "magic number"), (&core, "core WebAssembly module")] {
        let out = run(stagepush(dir.path())
            .args(["plugin", "test"])
            .arg(path)
            .arg(&input));
        assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
        assert!(
            out.stderr.contains("is not a WebAssembly component") && out.stderr.contains(expected),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn a_pinned_digest_refuses_another_plugin() {
    let dir = temp_dir();
    let input = customer_file(dir.path(), "in.parquet", 3);
    let out = run(stagepush(dir.path())
        .args(["plugin", "test"])
        .arg(plugin("customer-rust"))
        .arg(&input)
        .args(["--plugin-sha256", &"0".repeat(64)]));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("digest mismatch"), "{}", out.stderr);
}

#[test]
fn compiled_plugins_are_cached_by_digest() {
    let dir = temp_dir();
    let info = |dir: &std::path::Path| {
        run(stagepush(dir)
            .args(["plugin", "info"])
            .arg(plugin("customer-rust")))
    };
    let first = info(dir.path());
    assert!(first.status.success(), "{}", first.stderr);
    assert!(first.stdout.contains("cached:      no"), "{}", first.stdout);
    let cached: Vec<_> = std::fs::read_dir(dir.path().join("cache/components"))
        .expect("cache folder")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let digest = stagepush::plugin::digest(&std::fs::read(plugin("customer-rust")).unwrap());
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(
        cached[0].starts_with(&digest) && cached[0].ends_with(".cwasm"),
        "{cached:?}"
    );
    // A damaged cache entry is discarded and rebuilt, not trusted.
    let entry = dir.path().join("cache/components").join(&cached[0]);
    let second = info(dir.path());
    assert!(
        second.stdout.contains("cached:      yes"),
        "{}",
        second.stdout
    );
    std::fs::write(&entry, b"garbage").unwrap();
    let again = info(dir.path());
    assert!(again.status.success(), "{}", again.stderr);
    assert!(std::fs::read(&entry).unwrap().len() > 1000);
    assert!(
        first.stdout.contains("name:        customer"),
        "{}",
        first.stdout
    );
}

/// A Python exception's row error says where it was raised: the plugin's file, line and
/// function (the innermost frame of its own code).
#[test]
fn a_python_exception_names_the_file_and_line_it_was_raised_at() {
    let (out, file) = misbehave_in("misbehave-python", INTERPRETED_MEMORY_MIB, "raise", 11, &[]);
    assert!(out.status.success(), "{}", out.stderr);
    let line = error_line(&out, &file, 11);
    assert!(
        line.ends_with("ValueError: bad value on row 11 (at app.py:57 in transform)"),
        "{line}"
    );
}

/// A JS exception's row error says where it was thrown: the innermost frame of its stack.
#[test]
fn a_js_exception_names_the_file_and_line_it_was_thrown_at() {
    let (out, file) = misbehave_in("misbehave-js", INTERPRETED_MEMORY_MIB, "raise", 11, &[]);
    assert!(out.status.success(), "{}", out.stderr);
    let line = error_line(&out, &file, 11);
    assert!(line.contains("bad value on row 11 (at "), "{line}");
    assert!(line.contains("app.js:48"), "{line}");
}
