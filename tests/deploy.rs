//! `deploy/`: the Kubernetes manifests validate against the Kubernetes and KEDA schemas
//! (offline, strict: an unknown field is an error), every stagepush command line in them and
//! in deploy/README.md uses only flags `stagepush <command> --help` lists, their
//! configuration parses and validates, they have the shape deploy/README.md promises, and the
//! Dockerfile pins its base images, runs as a non-root user and passes hadolint. The KEDA
//! ScaledJobs (SQS, Azure Storage Queue) run `stagepush run --queue` in the stock image, on
//! the queue their trigger watches.
//!
//! Nothing here runs the manifests or builds the image (no cluster, no Docker daemon).
//!
//! The tools come from PyPI: `cargo xtask test` installs them into
//! `<target>/test-tools/deploy/` and passes `STAGEPUSH_TEST_KUBE_VALIDATE` (the
//! `kubernetes-validate` script; `deploy/validate.py` runs with the Python beside it). Without
//! them the tests fail, saying to run `cargo xtask test`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{files_under, target_dir, temp_dir};

fn deploy_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    dir.canonicalize().unwrap_or(dir)
}

/// The validators' `bin/` folder; fails the test (never skips it) when they are missing.
fn tools_bin() -> PathBuf {
    let variable = "STAGEPUSH_TEST_KUBE_VALIDATE";
    let tool = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("test-tools/deploy/bin/kubernetes-validate"));
    assert!(
        tool.is_file(),
        "the deploy/ validators are not installed ({} does not exist): run `cargo xtask test`, \
         which installs them and sets {variable}",
        tool.display()
    );
    tool.parent()
        .expect("the tool is in a bin/ folder")
        .to_path_buf()
}

/// Every manifest under deploy/k8s/.
fn manifests() -> Vec<PathBuf> {
    let dir = deploy_dir().join("k8s");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifest in {}", dir.display());
    files
}

/// Runs `deploy/validate.py ARGS`: (exit code, stdout, stderr).
fn validate_py(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let python = tools_bin().join("python");
    let out = Command::new(&python)
        .arg(deploy_dir().join("validate.py"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One validated document of a manifest.
struct Doc {
    file: String,
    kind: String,
    name: String,
    checks: Vec<String>,
    errors: Vec<String>,
    doc: Value,
}

/// Validates `files` (JSON mode): the exit code and every document.
fn validate(files: &[PathBuf]) -> (i32, Vec<Doc>) {
    let mut args: Vec<&std::ffi::OsStr> = vec!["--json".as_ref()];
    args.extend(files.iter().map(|f| f.as_os_str()));
    let (code, stdout, stderr) = validate_py(&args);
    let parsed: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("validate.py printed no JSON ({e}):\n{stdout}\n{stderr}"));
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let docs = parsed
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|d| Doc {
            file: d["file"].as_str().unwrap_or("?").to_string(),
            kind: d["kind"].as_str().unwrap_or("?").to_string(),
            name: d["name"].as_str().unwrap_or("?").to_string(),
            checks: strings(&d["checks"]),
            errors: strings(&d["errors"]),
            doc: d["doc"].clone(),
        })
        .collect();
    (code, docs)
}

/// The documents of deploy/k8s/, asserting they all validate (validated once per test run).
fn valid_docs() -> &'static [Doc] {
    static DOCS: std::sync::OnceLock<Vec<Doc>> = std::sync::OnceLock::new();
    DOCS.get_or_init(validate_manifests)
}

fn validate_manifests() -> Vec<Doc> {
    let (code, docs) = validate(&manifests());
    let errors: Vec<String> = docs
        .iter()
        .flat_map(|d| {
            d.errors
                .iter()
                .map(move |e| format!("{} {}/{}: {e}", d.file, d.kind, d.name))
        })
        .collect();
    assert!(
        errors.is_empty() && code == 0,
        "manifests do not validate (exit {code}):\n{}",
        errors.join("\n")
    );
    docs
}

fn doc_of<'a>(docs: &'a [Doc], file: &str, kind: &str) -> &'a Value {
    &docs
        .iter()
        .find(|d| d.file.ends_with(file) && d.kind == kind)
        .unwrap_or_else(|| panic!("{file} has no {kind}"))
        .doc
}

#[test]
fn deploy_manifests_validate_against_the_kubernetes_and_keda_schemas() {
    let docs = valid_docs();
    for d in docs {
        assert!(
            !d.checks.is_empty(),
            "{} {}/{} was checked against nothing",
            d.file,
            d.kind,
            d.name
        );
        if d.kind == "ScaledJob" || d.kind == "TriggerAuthentication" {
            assert!(
                d.checks.iter().any(|c| c.contains("KEDA")),
                "{}/{} not checked against KEDA's schema: {:?}",
                d.kind,
                d.name,
                d.checks
            );
        } else {
            for version in ["1.30", "1.37"] {
                assert!(
                    d.checks
                        .iter()
                        .any(|c| c.contains(&format!("kubernetes {version}"))),
                    "{}/{} not checked against Kubernetes {version}: {:?}",
                    d.kind,
                    d.name,
                    d.checks
                );
            }
        }
    }
    // The examples README promises are all there.
    let have: BTreeSet<(String, String)> = docs
        .iter()
        .map(|d| {
            let file = Path::new(&d.file).file_name().unwrap().to_string_lossy();
            (file.into_owned(), d.kind.clone())
        })
        .collect();
    for (file, kind) in [
        ("indexed-job.yaml", "Job"),
        ("indexed-job.yaml", "ConfigMap"),
        ("serve-deployment.yaml", "Deployment"),
        ("serve-deployment.yaml", "Service"),
        ("keda-scaledjob-sqs.yaml", "ScaledJob"),
        ("keda-scaledjob-sqs.yaml", "TriggerAuthentication"),
        ("keda-scaledjob-azure-queue.yaml", "ScaledJob"),
        ("keda-scaledjob-azure-queue.yaml", "TriggerAuthentication"),
    ] {
        assert!(
            have.contains(&(file.to_string(), kind.to_string())),
            "deploy/k8s/{file} has no {kind}"
        );
    }
}

/// The validator is not vacuous: each of these breakages is reported as an error.
#[test]
fn deploy_validator_rejects_broken_manifests() {
    let dir = temp_dir();
    let read = |name: &str| std::fs::read_to_string(deploy_dir().join("k8s").join(name)).unwrap();
    let job = read("indexed-job.yaml");
    let keda = read("keda-scaledjob-sqs.yaml");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown field in a pod spec",
            job.replacen(
                "restartPolicy: Never",
                "restartPolicy: Never\n      restartPolicyy: Never",
                1,
            ),
            "'restartPolicyy' was unexpected",
        ),
        (
            "wrong type",
            job.replacen("completions: 8", "completions: eight", 1),
            "spec.completions",
        ),
        (
            "KEDA trigger metadata must be strings",
            keda.replacen("queueLength: \"10\"", "queueLength: 10", 1),
            "queueLength: 10 is not of type 'string'",
        ),
        (
            "KEDA enum",
            keda.replacen("provider: aws", "provider: aws-irsa", 1),
            "'aws-irsa' is not one of",
        ),
        (
            "unknown field in a ScaledJob",
            keda.replacen("pollingInterval: 15", "pollingIntervall: 15", 1),
            "'pollingIntervall' was unexpected",
        ),
        (
            "unknown field in a ScaledJob's pod template",
            keda.replacen(
                "restartPolicy: Never",
                "restartPolicy: Never\n        hostNetwork: yes please",
                1,
            ),
            "hostNetwork",
        ),
        (
            "a kind without a schema is an error, not a warning",
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n".to_string(),
            "Widget",
        ),
    ];
    for (what, text, expected) in cases {
        let path = dir.path().join("broken.yaml");
        std::fs::write(&path, &text).unwrap();
        let (code, docs) = validate(std::slice::from_ref(&path));
        let errors: Vec<&String> = docs.iter().flat_map(|d| &d.errors).collect();
        assert_eq!(code, 1, "{what}: validate.py accepted it ({errors:?})");
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{what}: no error mentions `{expected}`: {errors:?}"
        );
    }
}

/// Splits a shell command line into words (quotes removed, no expansions), enough for the
/// command lines in deploy/.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The `stagepush …` command lines in a shell script (continuation lines joined; a command
/// ends at a newline, `|`, `;`, `&&` or `||`).
fn stagepush_commands_in_script(script: &str) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    let mut commands = Vec::new();
    for line in joined.lines() {
        // Comments (whole lines, and ` # …` after a command).
        let line = line.split(" #").next().unwrap().trim();
        if line.starts_with('#') {
            continue;
        }
        for part in line.split(['|', ';', '&']) {
            let words = shell_words(part);
            let mut words = words.as_slice();
            // Leading VAR=value assignments.
            while let Some(first) = words.first() {
                if first.contains('=') && !first.starts_with('-') {
                    words = &words[1..];
                } else {
                    break;
                }
            }
            if words.first().map(String::as_str) == Some("stagepush") {
                commands.push(words.to_vec());
            }
        }
    }
    commands
}

/// The stagepush command lines a container runs: its image's entrypoint is `stagepush`
/// unless `command` says otherwise; `sh -c SCRIPT` is searched for them.
fn container_commands(container: &Value) -> Vec<Vec<String>> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|s| s.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let command = strings(&container["command"]);
    let args = strings(&container["args"]);
    let image = container["image"].as_str().unwrap_or("");
    let argv: Vec<String> = command.iter().chain(args.iter()).cloned().collect();
    match command.first().map(String::as_str) {
        None if image.contains("stagepush") => {
            vec![
                std::iter::once("stagepush".to_string())
                    .chain(args)
                    .collect(),
            ]
        }
        None => Vec::new(),
        Some(program) if program.ends_with("stagepush") => vec![argv],
        Some(program)
            if matches!(program, "sh" | "/bin/sh" | "bash" | "/bin/bash")
                && argv
                    .get(1)
                    .is_some_and(|a| a.starts_with('-') && a.contains('c')) =>
        {
            argv.get(2)
                .map(|script| stagepush_commands_in_script(script))
                .unwrap_or_default()
        }
        Some(_) => Vec::new(),
    }
}

/// Every container of every pod template in `doc` (Deployment, Job, ScaledJob).
fn containers(doc: &Value) -> Vec<&Value> {
    let spec = match doc["kind"].as_str() {
        Some("ScaledJob") => &doc["spec"]["jobTargetRef"]["template"]["spec"],
        _ => &doc["spec"]["template"]["spec"],
    };
    ["initContainers", "containers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten())
        .collect()
}

/// The pod template spec of a workload.
fn pod_spec(doc: &Value) -> &Value {
    match doc["kind"].as_str() {
        Some("ScaledJob") => &doc["spec"]["jobTargetRef"]["template"]["spec"],
        _ => &doc["spec"]["template"]["spec"],
    }
}

/// The `stagepush …` command lines in deploy/README.md's code blocks.
fn readme_commands() -> Vec<Vec<String>> {
    let path = deploy_dir().join("README.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut in_code = false;
    let mut script = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            script.push('\n');
            continue;
        }
        if in_code {
            script.push_str(line.trim_start().trim_start_matches("$ "));
            script.push('\n');
        }
    }
    stagepush_commands_in_script(&script)
}

/// The subcommand and the flags of a stagepush command line (global flags may come first).
fn subcommand_and_flags(argv: &[String]) -> (Option<String>, Vec<String>) {
    let mut subcommand = None;
    let mut flags = Vec::new();
    for word in &argv[1..] {
        if word.starts_with('-') && word != "-" {
            flags.push(word.split('=').next().unwrap().to_string());
        } else if subcommand.is_none() {
            subcommand = Some(word.clone());
        }
    }
    (subcommand, flags)
}

/// Whether `help` lists `flag` (as a whole word: `--shard` is not `--shard-count`).
fn help_lists(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(at, _)| {
        let before = help[..at].chars().next_back();
        let after = help[at + flag.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '-')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_')
    })
}

#[test]
fn deploy_command_lines_use_only_flags_stagepush_has() {
    let docs = valid_docs();
    let mut lines: Vec<(String, Vec<String>)> = Vec::new();
    for d in docs {
        for container in containers(&d.doc) {
            for argv in container_commands(container) {
                lines.push((format!("{} {}/{}", d.file, d.kind, d.name), argv));
            }
        }
    }
    let in_manifests = lines.len();
    let readme = readme_commands();
    assert!(
        readme.len() >= 3,
        "found only {readme:?} in deploy/README.md"
    );
    for argv in readme {
        lines.push(("deploy/README.md".to_string(), argv));
    }
    let subcommands: BTreeSet<String> = lines
        .iter()
        .filter_map(|(_, argv)| subcommand_and_flags(argv).0)
        .collect();
    for expected in ["run", "serve"] {
        assert!(
            subcommands.contains(expected),
            "no `stagepush {expected}` found in the manifests (parsed: {lines:?})"
        );
    }
    assert!(
        in_manifests >= 3,
        "found only {in_manifests} command lines in the manifests"
    );

    let mut helps: BTreeMap<String, Result<String, String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (place, argv) in &lines {
        let (Some(subcommand), flags) = subcommand_and_flags(argv) else {
            problems.push(format!("{place}: no subcommand in `{}`", argv.join(" ")));
            continue;
        };
        let help = helps.entry(subcommand.clone()).or_insert_with(|| {
            let out = Command::new(env!("CARGO_BIN_EXE_stagepush"))
                .args([subcommand.as_str(), "--help"])
                .output()
                .expect("run stagepush --help");
            if out.status.success() {
                Ok(String::from_utf8_lossy(&out.stdout).into_owned())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
            }
        });
        match help {
            Err(e) => problems.push(format!(
                "{place}: `stagepush {subcommand}` does not exist ({e})"
            )),
            Ok(help) => {
                for flag in flags {
                    if !help_lists(help, &flag) {
                        problems.push(format!(
                            "{place}: `stagepush {subcommand}` has no flag {flag}"
                        ));
                    }
                }
            }
        }
    }
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn deploy_configurations_parse_and_validate() {
    let docs = valid_docs();
    let mut seen = 0;
    for d in docs.iter().filter(|d| d.kind == "ConfigMap") {
        let data = d.doc["data"].as_object().expect("ConfigMap data");
        for (key, text) in data.iter().filter(|(k, _)| k.ends_with(".toml")) {
            let text = text.as_str().expect("a string");
            let config = stagepush::config::RunConfig::parse(text)
                .unwrap_or_else(|e| panic!("{} {}/{key}: {e}", d.file, d.name));
            config
                .validate()
                .unwrap_or_else(|e| panic!("{} {}/{key}: {e}", d.file, d.name));
            // The token never is in the file: it comes from CLUEDIN_TOKEN (a Secret).
            assert_eq!(
                config.auth.token_env.as_deref(),
                Some("CLUEDIN_TOKEN"),
                "{}: [auth] token_env",
                d.name
            );
            assert!(config.auth.token_file.is_none());
            seen += 1;
        }
    }
    assert_eq!(seen, 4, "expected one stagepush.toml per example");
}

/// A workload pod: non-root, resource requests and limits, the CluedIn token from a Secret,
/// the configuration from a ConfigMap.
fn assert_hardened_stagepush_pod(what: &str, doc: &Value) {
    let pod = pod_spec(doc);
    assert_eq!(
        pod["securityContext"]["runAsNonRoot"], true,
        "{what}: runAsNonRoot"
    );
    assert_ne!(pod["securityContext"]["runAsUser"], 0, "{what}: runAsUser");
    for container in pod["containers"].as_array().expect("containers") {
        let name = container["name"].as_str().unwrap_or("?");
        for kind in ["requests", "limits"] {
            for resource in ["cpu", "memory"] {
                assert!(
                    container["resources"][kind][resource].is_string(),
                    "{what} {name}: resources.{kind}.{resource}"
                );
            }
        }
        let sc = &container["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{what} {name}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{what} {name}");
        assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{what} {name}");
        let env = container["env"].as_array().expect("env");
        let token = env
            .iter()
            .find(|e| e["name"] == "CLUEDIN_TOKEN")
            .unwrap_or_else(|| panic!("{what} {name}: no CLUEDIN_TOKEN"));
        assert!(
            token["valueFrom"]["secretKeyRef"]["name"].is_string() && token["value"].is_null(),
            "{what} {name}: CLUEDIN_TOKEN must come from a Secret"
        );
        // A read-only root: the plugin cache goes to a volume.
        assert!(
            env.iter().any(|e| e["name"] == "STAGEPUSH_CACHE_DIR"),
            "{what} {name}: STAGEPUSH_CACHE_DIR"
        );
    }
    let volumes = pod["volumes"].as_array().expect("volumes");
    assert!(
        volumes.iter().any(|v| v["configMap"]["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("-config"))),
        "{what}: the configuration comes from a ConfigMap"
    );
}

/// The value after `flag` in a command line.
fn flag_value<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    argv.iter()
        .position(|w| w == flag)
        .and_then(|i| argv.get(i + 1))
        .map(String::as_str)
}

#[test]
fn deploy_indexed_job_shards_the_stage_with_object_store_state() {
    let docs = valid_docs();
    let job = doc_of(docs, "indexed-job.yaml", "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let completions = spec["completions"].as_u64().expect("completions");
    assert_eq!(spec["parallelism"].as_u64(), Some(completions));
    assert!(spec["backoffLimitPerIndex"].as_u64().is_some());
    assert_eq!(pod_spec(job)["restartPolicy"], "Never");
    assert_hardened_stagepush_pod("Indexed Job", job);
    let commands = container_commands(containers(job)[0]);
    let argv = &commands[0];
    assert_eq!(argv[1], "run");
    assert_eq!(
        flag_value(argv, "--shard-count"),
        Some(completions.to_string().as_str()),
        "--shard-count must equal completions: {argv:?}"
    );
    assert_eq!(
        flag_value(argv, "--config"),
        Some("/etc/stagepush/stagepush.toml")
    );
    assert!(
        flag_value(argv, "--state").is_some_and(|s| s.starts_with("s3://")),
        "the state is in object storage: {argv:?}"
    );
    // The index comes from Kubernetes, not from the manifest.
    assert!(!argv.iter().any(|w| w == "--shard"));
}

#[test]
fn deploy_serve_has_probes_metrics_and_a_grace_period() {
    let docs = valid_docs();
    let deployment = doc_of(docs, "serve-deployment.yaml", "Deployment");
    assert_hardened_stagepush_pod("serve Deployment", deployment);
    let pod = pod_spec(deployment);
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(0) >= 30);
    let container = containers(deployment)[0];
    let argv = &container_commands(container)[0];
    assert_eq!(argv[1], "serve");
    assert_eq!(flag_value(argv, "--listen"), Some("0.0.0.0:8080"));
    assert!(flag_value(argv, "--config").is_some());
    let port = &container["ports"][0];
    assert_eq!(port["containerPort"], 8080);
    for probe in ["readinessProbe", "livenessProbe"] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"], "/healthz", "{probe}");
        assert!(
            get["port"] == port["name"] || get["port"] == port["containerPort"],
            "{probe}"
        );
    }
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    assert_eq!(annotations["prometheus.io/port"], "8080");
    let service = doc_of(docs, "serve-deployment.yaml", "Service");
    assert!(
        service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["targetPort"] == port["name"] || p["targetPort"] == 8080),
        "the Service reaches the container port"
    );
    for (key, value) in pod_spec(deployment)["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e))
    {
        if key.contains("TOKEN") {
            assert!(value["valueFrom"]["secretKeyRef"].is_object(), "{key}");
        }
    }
    // The documented Event Grid subscription.
    let text = std::fs::read_to_string(deploy_dir().join("k8s/serve-deployment.yaml")).unwrap();
    assert!(text.contains("az eventgrid event-subscription create"));
    assert!(text.contains("/events?token="));
}

/// The `aws-sqs-queue` trigger's metadata keys (KEDA's documentation of the scaler).
const SQS_TRIGGER_KEYS: &[&str] = &[
    "queueURL",
    "queueURLFromEnv",
    "queueLength",
    "activationQueueLength",
    "awsRegion",
    "awsEndpoint",
    "identityOwner",
    "scaleOnInFlight",
    "scaleOnDelayed",
];

/// The `azure-queue` trigger's metadata keys (KEDA's documentation of the scaler).
const AZURE_QUEUE_TRIGGER_KEYS: &[&str] = &[
    "queueName",
    "queueLength",
    "activationQueueLength",
    "connectionFromEnv",
    "accountName",
    "cloud",
    "endpointSuffix",
];

/// A number after `flag` in a command line.
fn flag_number(argv: &[String], flag: &str) -> u64 {
    flag_value(argv, flag)
        .unwrap_or_else(|| panic!("no {flag} in {argv:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("{flag}: {e}"))
}

/// What both queue ScaledJobs share: the stock image (its entrypoint, no shell, no
/// `command`) running `stagepush run --queue URL` with the state in object storage and
/// settings that fit the queue's limits and the Job's deadline; returns the command line.
fn assert_queue_worker(what: &str, scaled: &Value, max_messages: u64, state: &str) -> Vec<String> {
    assert_hardened_stagepush_pod(what, scaled);
    let job = &scaled["spec"]["jobTargetRef"];
    assert_eq!(
        job["backoffLimit"], 0,
        "{what}: a failed Job is not retried"
    );
    assert_eq!(pod_spec(scaled)["restartPolicy"], "Never", "{what}");
    let container = containers(scaled)[0];
    assert!(
        container["command"].is_null(),
        "{what}: the image's entrypoint runs stagepush (no shell): {}",
        container["command"]
    );
    let image = container["image"].as_str().unwrap();
    assert!(
        image.contains("/stagepush:"),
        "{what}: the stock image from deploy/Dockerfile, not {image}"
    );
    let commands = container_commands(container);
    assert_eq!(commands.len(), 1, "{what}: {commands:?}");
    let argv = commands[0].clone();
    assert_eq!(argv[1], "run", "{what}: {argv:?}");
    assert!(flag_value(&argv, "--queue").is_some(), "{what}: {argv:?}");
    assert!(
        !argv.iter().any(|w| w == "--event"),
        "{what}: the messages are not piped in any more: {argv:?}"
    );
    assert_eq!(
        flag_value(&argv, "--config"),
        Some("/etc/stagepush/stagepush.toml")
    );
    assert!(
        flag_value(&argv, "--state").is_some_and(|s| s.starts_with(state)),
        "{what}: the state is shared, in object storage: {argv:?}"
    );
    // Settings within the service's limits, and a Job deadline that leaves the heartbeat
    // time to matter: a Job stopped by it leaves its messages to come back after the
    // visibility timeout, so the timeout is much shorter than the deadline.
    let messages = flag_number(&argv, "--max-messages");
    assert!((1..=max_messages).contains(&messages), "{what}: {messages}");
    let visibility = flag_number(&argv, "--visibility-secs");
    let wait = flag_number(&argv, "--wait-secs");
    assert!(
        wait <= 20,
        "{what}: a receive waits at most 20 s (SQS): {wait}"
    );
    let deadline = job["activeDeadlineSeconds"]
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: activeDeadlineSeconds"));
    assert!(
        visibility >= 30 && visibility * 10 <= deadline,
        "{what}: --visibility-secs {visibility} vs activeDeadlineSeconds {deadline}"
    );
    let grace = pod_spec(scaled)["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap_or(30);
    assert!(
        grace < visibility,
        "{what}: a stopped Job is gone before its messages come back"
    );
    // KEDA starts one Job per receive's worth of messages.
    let trigger = &scaled["spec"]["triggers"][0];
    assert_eq!(
        trigger["metadata"]["queueLength"],
        messages.to_string(),
        "{what}: queueLength = --max-messages"
    );
    let polling = scaled["spec"]["pollingInterval"].as_u64().unwrap_or(30);
    assert!(polling <= visibility, "{what}: pollingInterval {polling}");
    argv
}

#[test]
fn deploy_keda_scaledjob_sqs_runs_stagepush_run_queue() {
    let docs = valid_docs();
    let scaled = doc_of(docs, "keda-scaledjob-sqs.yaml", "ScaledJob");
    let auth = doc_of(docs, "keda-scaledjob-sqs.yaml", "TriggerAuthentication");
    let argv = assert_queue_worker("SQS ScaledJob", scaled, 10, "s3://");
    let trigger = &scaled["spec"]["triggers"][0];
    assert_eq!(trigger["type"], "aws-sqs-queue");
    assert_eq!(
        trigger["authenticationRef"]["name"],
        auth["metadata"]["name"]
    );
    assert_eq!(auth["spec"]["podIdentity"]["provider"], "aws");
    let metadata = trigger["metadata"].as_object().unwrap();
    for key in metadata.keys() {
        assert!(
            SQS_TRIGGER_KEYS.contains(&key.as_str()),
            "aws-sqs-queue has no metadata `{key}`"
        );
    }
    // Messages a running Job holds are not counted again.
    assert_eq!(metadata["scaleOnInFlight"], "false");
    // stagepush and KEDA read the same queue: `--queue $(VAR)`, VAR = queueURLFromEnv.
    let env = containers(scaled)[0]["env"].as_array().unwrap();
    let queue = flag_value(&argv, "--queue").unwrap();
    let var = queue
        .strip_prefix("$(")
        .and_then(|q| q.strip_suffix(')'))
        .unwrap_or_else(|| panic!("--queue {queue}: expected $(VAR)"));
    assert_eq!(metadata["queueURLFromEnv"], var);
    let url = env
        .iter()
        .find(|e| e["name"] == var)
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("the container does not set {var}"));
    match stagepush::queue::QueueUrl::parse(url, None) {
        Ok(stagepush::queue::QueueUrl::Sqs { region, .. }) => {
            assert_eq!(region.as_deref(), metadata["awsRegion"].as_str(), "{url}");
        }
        other => panic!("{url} is not an SQS queue URL: {other:?}"),
    }
}

#[test]
fn deploy_keda_scaledjob_azure_queue_runs_stagepush_run_queue() {
    let docs = valid_docs();
    let scaled = doc_of(docs, "keda-scaledjob-azure-queue.yaml", "ScaledJob");
    let auth = doc_of(
        docs,
        "keda-scaledjob-azure-queue.yaml",
        "TriggerAuthentication",
    );
    let argv = assert_queue_worker("Azure queue ScaledJob", scaled, 32, "az://");
    let trigger = &scaled["spec"]["triggers"][0];
    assert_eq!(trigger["type"], "azure-queue");
    assert_eq!(
        trigger["authenticationRef"]["name"],
        auth["metadata"]["name"]
    );
    assert_eq!(auth["spec"]["podIdentity"]["provider"], "azure-workload");
    let metadata = trigger["metadata"].as_object().unwrap();
    for key in metadata.keys() {
        assert!(
            AZURE_QUEUE_TRIGGER_KEYS.contains(&key.as_str()),
            "azure-queue has no metadata `{key}`"
        );
    }
    // The scaler counts held (invisible) messages too: only the default strategy subtracts
    // every running Job from them.
    assert_eq!(scaled["spec"]["scalingStrategy"]["strategy"], "default");
    // stagepush and KEDA read the same queue.
    let queue = flag_value(&argv, "--queue").unwrap();
    match stagepush::queue::QueueUrl::parse(queue, None) {
        Ok(stagepush::queue::QueueUrl::Azure { account, name, .. }) => {
            assert_eq!(metadata["accountName"], account.as_str(), "{queue}");
            assert_eq!(metadata["queueName"], name.as_str(), "{queue}");
        }
        other => panic!("{queue} is not an Azure queue URL: {other:?}"),
    }
    // Workload identity: the pod is labelled for the webhook and uses the annotated account.
    let template = &scaled["spec"]["jobTargetRef"]["template"];
    assert_eq!(
        template["metadata"]["labels"]["azure.workload.identity/use"],
        "true"
    );
    let account = pod_spec(scaled)["serviceAccountName"].as_str().unwrap();
    let service_account = docs
        .iter()
        .find(|d| d.kind == "ServiceAccount" && d.name == account)
        .unwrap_or_else(|| panic!("no ServiceAccount {account}"));
    assert!(
        service_account.doc["metadata"]["annotations"]["azure.workload.identity/client-id"]
            .is_string()
    );
}

/// The Dockerfile's instructions, parsed by BuildKit's parser.
fn dockerfile() -> Vec<Value> {
    let path = deploy_dir().join("Dockerfile");
    let (code, stdout, stderr) = validate_py(&["--dockerfile".as_ref(), path.as_os_str()]);
    assert_eq!(code, 0, "cannot parse {}: {stderr}", path.display());
    serde_json::from_str::<Value>(&stdout)
        .expect("JSON")
        .as_array()
        .expect("an array")
        .clone()
}

#[test]
fn deploy_dockerfile_is_pinned_non_root_and_lint_clean() {
    let instructions = dockerfile();
    let words = |i: &Value| -> Vec<String> {
        i["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    // Stages: (image, alias, instructions).
    let mut stages: Vec<(String, Option<String>, Vec<&Value>)> = Vec::new();
    for i in &instructions {
        if i["cmd"] == "FROM" {
            let w = words(i);
            let alias = (w.len() == 3 && w[1].eq_ignore_ascii_case("AS")).then(|| w[2].clone());
            stages.push((w[0].clone(), alias, Vec::new()));
        } else if let Some(stage) = stages.last_mut() {
            stage.2.push(i);
        }
    }
    assert!(stages.len() >= 2, "a multi-stage build");
    let aliases: BTreeSet<String> = stages.iter().filter_map(|s| s.1.clone()).collect();
    for (image, _, _) in &stages {
        if aliases.contains(image) {
            continue;
        }
        let tag = image
            .rsplit_once(':')
            .filter(|(_, tag)| !tag.contains('/'))
            .map(|(_, tag)| tag);
        assert!(
            tag.is_some_and(|t| t != "latest") || image.contains("@sha256:"),
            "base image {image} is not pinned by tag"
        );
    }
    assert!(
        stages[0].0.starts_with("rust:1.95"),
        "builder: {}",
        stages[0].0
    );
    let build = stages[0]
        .2
        .iter()
        .filter(|i| i["cmd"] == "RUN")
        .map(|i| words(i).join(" "))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        build.contains("cargo build --release --locked -p stagepush"),
        "{build}"
    );
    // Every image stage (the default, last one included) runs stagepush as a non-root user.
    let images: Vec<_> = stages
        .iter()
        .filter(|s| s.2.iter().any(|i| i["cmd"] == "ENTRYPOINT"))
        .collect();
    assert!(
        images
            .iter()
            .any(|s| std::ptr::eq(*s, stages.last().unwrap()))
    );
    for (image, alias, body) in images {
        let what = alias.clone().unwrap_or_else(|| image.clone());
        let user = body
            .iter()
            .rev()
            .find(|i| i["cmd"] == "USER")
            .map(|i| words(i).join(" "))
            .unwrap_or_else(|| panic!("stage {what} has no USER"));
        let name = user.split(':').next().unwrap();
        assert!(
            !name.is_empty() && name != "root" && name != "0",
            "stage {what} runs as {user}"
        );
        let entrypoint = body
            .iter()
            .rev()
            .find(|i| i["cmd"] == "ENTRYPOINT")
            .unwrap();
        assert_eq!(entrypoint["json"], true, "{what}: exec-form ENTRYPOINT");
        assert_eq!(words(entrypoint), ["stagepush"], "{what}");
        let copies = body
            .iter()
            .filter(|i| i["cmd"] == "COPY")
            .map(|i| words(i).join(" "))
            .collect::<Vec<_>>();
        assert_eq!(
            copies,
            ["/usr/local/bin/stagepush /usr/local/bin/stagepush"],
            "{what}: only the binary is copied in"
        );
    }

    // hadolint: no finding at any level (inline `# hadolint ignore=` comments say why).
    let hadolint = tools_bin().join("hadolint");
    let out = Command::new(&hadolint)
        .args(["--no-color"])
        .arg(deploy_dir().join("Dockerfile"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", hadolint.display()));
    assert!(
        out.status.success(),
        "hadolint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The build context leaves target/ out.
    let ignore = std::fs::read_to_string(deploy_dir().join("Dockerfile.dockerignore"))
        .expect("deploy/Dockerfile.dockerignore");
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(patterns.first(), Some(&"*"), "everything is excluded first");
    assert!(
        !patterns
            .iter()
            .any(|p| p.starts_with('!') && (p.contains("target") || p.contains(".git"))),
        "target/ and .git stay out: {patterns:?}"
    );
}

/// Every file the host reads with `include_str!`/`include_bytes!` is in the Docker build
/// context (the SDKs that `plugin new` copies live outside host/).
#[test]
fn deploy_docker_context_has_every_file_the_build_includes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap();
    let ignore = std::fs::read_to_string(deploy_dir().join("Dockerfile.dockerignore")).unwrap();
    let kept: Vec<&str> = ignore
        .lines()
        .filter_map(|l| l.trim().strip_prefix('!'))
        .collect();
    let sources = files_under(&root.join("host/src"), Some("rs"));
    let mut included = BTreeSet::new();
    for source in &sources {
        let text = std::fs::read_to_string(source).unwrap();
        for macro_name in ["include_str!(\"", "include_bytes!(\""] {
            for (at, _) in text.match_indices(macro_name) {
                let rest = &text[at + macro_name.len()..];
                let literal = &rest[..rest.find('"').unwrap()];
                let file = source.parent().unwrap().join(literal).canonicalize();
                let file = file.unwrap_or_else(|e| panic!("{}: {literal}: {e}", source.display()));
                let rel = file
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                included.insert(rel);
            }
        }
    }
    assert!(
        included.iter().any(|f| f.starts_with("plugins/sdk-rust/")),
        "the scan finds the SDK includes: {included:?}"
    );
    for file in &included {
        let in_context = kept
            .iter()
            .any(|k| file == k.trim_end_matches('/') || (k.ends_with('/') && file.starts_with(k)));
        assert!(
            in_context,
            "{file} is compiled into the binary but left out of the Docker context by \
             deploy/Dockerfile.dockerignore"
        );
    }
}
