//! `stagepush check --config F [run's flags]`: what can be verified before a run without
//! sending a record, one line per check on stdout (`ok` or `FAIL`, and what was found):
//!
//! | check | verifies | failure exit |
//! |---|---|---|
//! | `config` | the file parses, the flags apply, the run configuration is complete | 2 |
//! | `token` | the token's variable or file is set (the value is never shown) | 2 |
//! | `endpoint` | each endpoint URL is well formed, and its host answers (TLS for https://, a TCP connection for http://) to one `HEAD` without the token, within a bounded time | 2 (malformed), 1 (no answer) |
//! | `stage` | the stage lists, has data files, and the first readable file's schema reads | 1 |
//! | `plugin` | the plugin loads and its `init` accepts that schema and the plugin config | 1 |
//! | `state` | the delivery state can be opened, and a probe document written and deleted | 1 |
//!
//! The checks run in this order and stop at the first failure (the later ones need the
//! earlier: the plugin needs the stage's schema). Exit status: 0 every check passed, 2 the
//! configuration is wrong, 1 something it points at is not usable ([`Outcome`]).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use stagepush::config::RunConfig;
use stagepush::pipeline::transformer::{TransformSpec, Transformer};
use stagepush::sink::{Endpoint, SinkConfig};

use super::exit::Outcome;
use super::run_cmd::RunArgs;

/// Longest wait for an endpoint's host to answer.
pub const CHECK_ENDPOINT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Args)]
pub struct CheckArgs {
    /// The run's configuration and flags, as `stagepush run` takes them.
    #[command(flatten)]
    pub run: RunArgs,
}

/// A failed check: its exit class and what it found.
struct Fail {
    outcome: Outcome,
    detail: String,
}

fn usage(detail: impl std::fmt::Display) -> Fail {
    Fail {
        outcome: Outcome::Usage,
        detail: detail.to_string(),
    }
}

fn failed(detail: impl std::fmt::Display) -> Fail {
    Fail {
        outcome: Outcome::Failed,
        detail: detail.to_string(),
    }
}

/// Prints one check's line; the failure's exit status, if it failed.
fn report(name: &str, result: Result<String, Fail>) -> Option<Outcome> {
    match result {
        Ok(detail) => {
            println!("ok   {name}: {detail}");
            None
        }
        Err(fail) => {
            println!("FAIL {name}: {}", fail.detail);
            Some(fail.outcome)
        }
    }
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let outcome = checks(&args.run);
    if outcome == Outcome::Done {
        eprintln!("check: every check passed (nothing was sent)");
    } else {
        eprintln!("check: stopped at the first failure (nothing was sent)");
    }
    Ok(outcome.into())
}

fn checks(args: &RunArgs) -> Outcome {
    macro_rules! step {
        ($name:expr, $result:expr) => {
            match $result {
                Ok((detail, value)) => {
                    report($name, Ok(detail));
                    value
                }
                Err(fail) => return report($name, Err(fail)).unwrap_or(Outcome::Failed),
            }
        };
    }
    let config = step!("config", check_config(args));
    step!("token", check_token(&config));
    step!("endpoint", check_endpoint(&config));
    let schema = step!("stage", check_stage(args, &config));
    step!("plugin", check_plugin(args, &config, schema));
    step!("state", check_state(&config));
    Outcome::Done
}

type Step<T> = Result<(String, T), Fail>;

fn check_config(args: &RunArgs) -> Step<RunConfig> {
    // The sink is the `endpoint` check's.
    let config = super::run_cmd::apply_flags(args).map_err(usage)?;
    config.validate_except_sink().map_err(usage)?;
    // `[source.csv]` and `[source.json]` are configuration too: refused here, before the
    // token and the endpoint are looked at.
    stagepush::source::Stage::check_format_settings(&config.source).map_err(usage)?;
    let from = match &args.config {
        Some(path) => format!("{} and the flags", path.display()),
        None => "the flags".to_string(),
    };
    Ok((format!("{from}: a complete run configuration"), config))
}

fn check_token(config: &RunConfig) -> Step<()> {
    config.auth.token().map_err(usage)?;
    let source = match (&config.auth.token_file, &config.auth.token_env) {
        (Some(file), _) => format!("the token file {} is set", file.display()),
        (None, var) => format!(
            "${} is set",
            var.as_deref()
                .unwrap_or(stagepush::config::DEFAULT_TOKEN_ENV)
        ),
    };
    Ok((format!("{source} (not shown)"), ()))
}

/// Every endpoint URL of the sink (the default and the routes), distinct, in order.
fn endpoint_urls(sink: &SinkConfig) -> Vec<String> {
    let mut urls: Vec<String> = sink.endpoint.iter().cloned().collect();
    for url in sink.routes.values() {
        if !urls.contains(url) {
            urls.push(url.clone());
        }
    }
    urls
}

fn check_endpoint(config: &RunConfig) -> Step<()> {
    let Some(sink) = &config.sink else {
        return Err(usage("no endpoint: set --endpoint or [sink] endpoint"));
    };
    sink.validate().map_err(|e| {
        usage(
            e.to_string()
                .trim_start_matches("invalid sink configuration: ")
                .to_string(),
        )
    })?;
    let mut endpoints = Vec::new();
    for url in endpoint_urls(sink) {
        let endpoint = Endpoint::parse(&url).map_err(usage)?;
        if !matches!(endpoint.url.scheme(), "https" | "http") || endpoint.url.host().is_none() {
            return Err(usage(format!(
                "{url}: not an http(s) URL with a host ({{base}}/upload/api/endpoint/{{id}})"
            )));
        }
        endpoints.push(endpoint);
    }
    let timeout = CHECK_ENDPOINT_TIMEOUT.min(Duration::from_secs(sink.connect_timeout_secs.max(1)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(failed)?;
    let client = stagepush::sink::service::http_client(&SinkConfig {
        timeout_secs: timeout.as_secs(),
        connect_timeout_secs: timeout.as_secs(),
        ..sink.clone()
    })
    .map_err(failed)?;
    let mut answers = Vec::new();
    for endpoint in &endpoints {
        let started = Instant::now();
        // A HEAD without the token: any answer means the host is there (and for https://
        // that the TLS handshake succeeded). Nothing is posted.
        let url = endpoint.url.clone();
        let answer = runtime.block_on(async { client.head(url).send().await });
        let host = format!(
            "{}:{}",
            endpoint.url.host_str().unwrap_or_default(),
            endpoint.url.port_or_known_default().unwrap_or_default()
        );
        match answer {
            Ok(response) => answers.push(format!(
                "{} answers{} (HTTP {} to HEAD, {} ms)",
                host,
                if endpoint.url.scheme() == "https" {
                    " TLS"
                } else {
                    ""
                },
                response.status().as_u16(),
                started.elapsed().as_millis()
            )),
            Err(e) => {
                return Err(failed(format!(
                    "{}: {host} does not answer: {}",
                    endpoint.url,
                    stagepush::errors::one_line(&e)
                )));
            }
        }
    }
    Ok((
        format!(
            "{} well formed; {}",
            endpoints
                .iter()
                .map(|e| e.url.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            answers.join("; ")
        ),
        (),
    ))
}

fn check_stage(
    args: &RunArgs,
    config: &RunConfig,
) -> Step<Vec<stagepush::bindings::types::ColumnSchema>> {
    let stage = stagepush::source::Stage::new(&config.source).map_err(usage)?;
    let selection = args.select.selection().map_err(usage)?;
    let files = stage
        .select(&selection)
        .map_err(|e| if e.is_usage() { usage(e) } else { failed(e) })?;
    let Some(first) = files.first() else {
        return Err(failed(format!("no data files in {}", stage.url())));
    };
    let schema = stagepush::bad_file::stage_schema(&stage, &files, config.run.on_bad_file)
        .map_err(failed)?;
    Ok((
        format!(
            "{} lists {} data files; the schema ({} columns) read from {}",
            stage.url(),
            files.len(),
            schema.len(),
            stagepush::pipeline::display_name(first)
        ),
        schema,
    ))
}

fn check_plugin(
    args: &RunArgs,
    config: &RunConfig,
    schema: Vec<stagepush::bindings::types::ColumnSchema>,
) -> Step<()> {
    // A plugin is loaded and its `init` given the schema; a `[mapping]` (or the
    // pass-through) is compiled against it: the same start a run makes.
    let transform = stagepush::job::transform_spec(config, args.plugin_flags.cache_dir())
        .map_err(|e| if e.is_usage() { usage(e) } else { failed(e) })?;
    let name = match &transform {
        TransformSpec::Plugin { plugin, .. } => format!(
            "{} {} (sha256 {})",
            plugin.name(),
            plugin.info().version,
            plugin.digest().get(..12).unwrap_or_default()
        ),
        TransformSpec::Mapping(spec) => format!(
            "{} (sha256 {})",
            spec.name(),
            spec.digest().get(..12).unwrap_or_default()
        ),
    };
    let transformer = Transformer::start(&transform, schema, config.records.shape)
        .map_err(|e| failed(format!("{name}: {e}")))?;
    drop(transformer);
    Ok((format!("{name} loads and accepts the stage's schema"), ()))
}

fn check_state(config: &RunConfig) -> Step<()> {
    let location = config.state.location();
    let local = stagepush::storage::StageUrl::parse(&location)
        .ok()
        .filter(|url| url.kind() == stagepush::storage::StoreKind::Local)
        .map(|url| std::path::PathBuf::from(url.key()));
    let existed = local.as_ref().is_none_or(|path| path.exists());
    let state =
        stagepush::state::StateStore::open(&location, &config.state.store_config(&config.source))
            .map_err(failed)?;
    let probe = format!("check-probe-{}.json", uuid::Uuid::new_v4());
    let written = state
        .put(&probe, b"{}\n", stagepush::state::PutMode::Overwrite)
        .and_then(|_| state.delete(&probe));
    // A local folder this check created is removed again (it is empty).
    if !existed && let Some(path) = &local {
        let _ = std::fs::remove_dir(path);
    }
    written.map_err(|e| failed(format!("{location} is not writable: {e}")))?;
    Ok((
        format!(
            "{} is writable (a probe document written and deleted)",
            state.location()
        ),
        (),
    ))
}
