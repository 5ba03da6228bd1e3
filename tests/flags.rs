//! One vocabulary of flags: every command that loads a plugin (`run`, `retry`, `serve`,
//! `plugin test`, `plugin info`) takes the same plugin flags with the same meaning, and the
//! old spellings of renamed flags fail naming the new one.

use std::path::Path;

use crate::util::command::TestCommand;
use crate::util::{customer_file, plugin, temp_dir};

const TOKEN_ENV: &str = "STAGEPUSH_FLAGS_TEST_TOKEN";
/// A CluedIn endpoint nothing listens on (these commands stop before sending).
const ENDPOINT: &str = "http://127.0.0.1:9/upload/api/endpoint/flags";

/// The plugin limit flags and the `[plugin]` key each sets.
const LIMITS: [(&str, &str); 4] = [
    ("--plugin-memory-mib", "memory_mib"),
    ("--plugin-timeout-ms", "timeout_ms"),
    ("--plugin-batch-rows", "batch_rows"),
    ("--plugin-batch-bytes", "batch_bytes"),
];

/// The commands that load a plugin, each as a `stagepush` command in `dir` that would load
/// the customer plugin over a one-file stage, before any flag under test.
fn plugin_commands(dir: &Path) -> Vec<(&'static str, TestCommand)> {
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).expect("create the stage folder");
    let input = customer_file(&stage, "data_0_0_0.snappy.parquet", 10);
    let component = plugin("customer-rust");
    let mut commands = Vec::new();
    for name in ["run", "retry", "serve"] {
        let mut cmd = TestCommand::new(dir);
        cmd.arg(name)
            .arg("--source")
            .arg(&stage)
            .arg("--plugin")
            .arg(&component)
            .args(["--endpoint", ENDPOINT, "--token-env", TOKEN_ENV])
            .env(TOKEN_ENV, "secret-token");
        if name == "serve" {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        commands.push((name, cmd));
    }
    let mut test = TestCommand::new(dir);
    test.args(["plugin", "test"]).arg(&component).arg(&input);
    commands.push(("plugin test", test));
    let mut info = TestCommand::new(dir);
    info.args(["plugin", "info"]).arg(&component);
    commands.push(("plugin info", info));
    commands
}

/// Each plugin limit reaches the plugin settings of each command: 0 is refused as a
/// configuration error naming the key and the flag.
#[test]
fn each_plugin_limit_is_a_setting_of_each_command_that_loads_a_plugin() {
    for (flag, key) in LIMITS {
        let dir = temp_dir();
        for (name, mut cmd) in plugin_commands(dir.path()) {
            cmd.args([flag, "0"]);
            let out = cmd.assert_exit(2);
            let expected = format!("[plugin] {key} ({flag}) must be at least 1");
            assert!(
                out.stderr.contains(&expected),
                "{name} {flag} 0: expected `{expected}`\n{}",
                cmd.dump(&out)
            );
        }
    }
}

/// With usable values every plugin flag is accepted by every command that loads a plugin,
/// and the settings reach the loader (a wrong `--plugin-sha256` refuses the plugin).
#[test]
fn every_plugin_flag_is_accepted_wherever_a_plugin_is_loaded() {
    let wrong = "0".repeat(64);
    let dir = temp_dir();
    for (name, mut cmd) in plugin_commands(dir.path()) {
        cmd.args([
            "--plugin-memory-mib",
            "300",
            "--plugin-timeout-ms",
            "5000",
            "--plugin-batch-rows",
            "10",
            "--plugin-batch-bytes",
            "100000",
            "--plugin-config",
            "region=EU",
            "--plugin-sha256",
            &wrong,
        ])
        .arg("--cache-dir")
        .arg(dir.path().join("cache"));
        let out = cmd.run();
        assert!(
            out.stderr.contains("plugin digest mismatch") && out.stderr.contains(&wrong),
            "{name}: expected the plugin refused for its digest\n{}",
            cmd.dump(&out)
        );
    }
}

/// The plugin flags change what `plugin test` does: `--plugin-config` reaches the plugin
/// and the records are the same whatever the plugin batch is.
#[test]
fn plugin_test_applies_the_plugin_flags() {
    let dir = temp_dir();
    let input = customer_file(dir.path(), "data_0_0_0.snappy.parquet", 50);
    let test = |extra: &[&str]| {
        let mut cmd = TestCommand::new(dir.path());
        cmd.args(["plugin", "test"])
            .arg(plugin("customer-rust"))
            .arg(&input)
            .args(extra);
        cmd.assert_exit(0)
    };
    let plain = test(&[]);
    assert_eq!(plain.stdout_lines().len(), 50);
    // One row per call, and calls cut by bytes: the same records.
    let small = test(&["--plugin-batch-rows", "1"]);
    assert_eq!(small.stdout, plain.stdout);
    let by_bytes = test(&["--plugin-batch-bytes", "1"]);
    assert_eq!(by_bytes.stdout, plain.stdout);
}

/// The old spellings of renamed flags fail (usage error) naming the new flag.
#[test]
fn renamed_flags_name_their_new_spelling() {
    let dir = temp_dir();
    let input = customer_file(dir.path(), "data_0_0_0.snappy.parquet", 3);
    let component = plugin("customer-rust");
    let cases: [(&[&str], &[&str], &str); 5] = [
        (
            &["plugin", "test"],
            &["--config", "region=EU"],
            "--plugin-config",
        ),
        (
            &["plugin", "test"],
            &["--batch-rows", "8"],
            "--plugin-batch-rows",
        ),
        (
            &["plugin", "test"],
            &["--endpoint", "http://127.0.0.1:9"],
            "--stage-endpoint",
        ),
        (
            &["plugin", "info"],
            &["--config", "region=EU"],
            "--plugin-config",
        ),
        (
            &["inspect"],
            &["--endpoint", "http://127.0.0.1:9"],
            "--stage-endpoint",
        ),
    ];
    for (command, old, new) in cases {
        let mut cmd = TestCommand::new(dir.path());
        cmd.args(command);
        if command[0] == "plugin" {
            cmd.arg(&component);
        }
        if command != ["plugin", "info"] {
            cmd.arg(&input);
        }
        cmd.args(old);
        let out = cmd.assert_exit(2);
        assert!(
            out.stderr.contains("renamed: ") && out.stderr.contains(new),
            "{command:?} {old:?}: expected a hint naming {new}\n{}",
            cmd.dump(&out)
        );
        assert_eq!(out.stdout, "", "{}", cmd.dump(&out));
    }
}

/// A plugin batch above the segment is capped by it, and `run` says so naming both keys
/// and the rows a plugin call takes (from the config file or the flags).
#[test]
fn a_plugin_batch_above_the_segment_size_is_a_warning_naming_both() {
    let dir = temp_dir();
    let config = dir.path().join("stagepush.toml");
    std::fs::write(&config, "[plugin]\nbatch_rows = 200000\n").expect("write the config");
    let from_file: &[&str] = &["--config", config.to_str().expect("a UTF-8 path")];
    for extra in [from_file, &["--plugin-batch-rows", "200000"]] {
        let (_, mut cmd) = plugin_commands(dir.path()).remove(0);
        // The plugin refused for its digest: the run stops after the configuration.
        cmd.args(extra)
            .args(["--segment-rows", "10000", "--plugin-sha256"])
            .arg("0".repeat(64));
        let out = cmd.run();
        assert!(
            out.stderr.contains(
                "[plugin] batch_rows = 200000 (--plugin-batch-rows) is more than [state] \
                 segment_rows = 10000 (--segment-rows): a plugin call never spans two \
                 segments, so plugin calls take at most 10000 rows"
            ),
            "{}",
            cmd.dump(&out)
        );
    }
}

/// Log lines written to a file or pipe carry no ANSI colour codes.
#[test]
fn redirected_logs_have_no_colour_codes() {
    let dir = temp_dir();
    let (_, mut cmd) = plugin_commands(dir.path()).remove(0);
    cmd.env_remove("NO_COLOR")
        .args(["--plugin-batch-rows", "200000", "--segment-rows", "10"])
        .args(["--plugin-sha256", &"0".repeat(64)]);
    let out = cmd.run();
    assert!(out.stderr.contains("WARN"), "{}", cmd.dump(&out));
    assert!(!out.stderr.contains('\u{1b}'), "{}", cmd.dump(&out));
}

/// `-q` leaves only errors: a run that delivers everything prints nothing, where it would
/// print its summary.
#[test]
fn quiet_runs_print_only_errors() {
    let dir = temp_dir();
    let mock = crate::util::MockProcess::start(dir.path(), "quiet-token", &[]);
    let stage = dir.path().join("stage");
    std::fs::create_dir_all(&stage).expect("create the stage folder");
    customer_file(&stage, "data_0_0_0.snappy.parquet", 20);
    let deliver = |state: &str, quiet: bool| {
        let mut cmd = TestCommand::new(dir.path());
        if quiet {
            cmd.arg("-q");
        }
        cmd.arg("run")
            .arg("--source")
            .arg(&stage)
            .arg("--plugin")
            .arg(plugin("customer-rust"))
            .args(["--endpoint", &mock.endpoint("quiet")])
            .args(["--token-env", TOKEN_ENV])
            .env(TOKEN_ENV, "quiet-token")
            .arg("--state")
            .arg(dir.path().join(state))
            .arg("--dead-letter")
            .arg(dir.path().join("dead"));
        cmd.assert_exit(0)
    };
    let loud = deliver("state-loud", false);
    assert!(loud.stderr.contains("summary:"), "{}", loud.stderr);
    let quiet = deliver("state-quiet", true);
    assert_eq!(quiet.stderr, "", "with -q");
}
