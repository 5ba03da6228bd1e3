//! `stagepush serve`: receive object-store push notifications and deliver the files they
//! name (see `stagepush::serve`).

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;
use stagepush::job::Job;
use stagepush::serve::{ServeError, ServeOptions};
use stagepush::source::Secret;

use super::exit::Outcome;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (`0.0.0.0:8080` for every interface; port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Environment variable holding a shared secret that requests to /events must carry in
    /// header X-Stagepush-Token or query parameter `token` (else 401).
    #[arg(long, value_name = "VAR")]
    pub auth_token_env: Option<String>,
    /// Confirm SNS subscriptions by fetching their SubscribeURL (default: log it for a
    /// manual confirmation).
    #[arg(long)]
    pub sns_confirm: bool,
    /// Environment variable holding the secret that Snowflake External Function requests
    /// (`/external-function/{name}`) must carry in header `sf-custom-stagepush-token` (the
    /// API integration's `HEADERS = ('stagepush-token' = '…')`); default: the
    /// --auth-token-env secret, if any.
    #[arg(long, value_name = "VAR")]
    pub relay_secret_env: Option<String>,
    /// How long an External Function request waits for its rows to be delivered before
    /// answering 202 (Snowflake then polls with GET).
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    pub relay_sync_secs: f64,
    /// How long open request bodies wait for the records of other External Function
    /// requests whose plugin is still running (a body leaves at once when no other request is
    /// in progress, or when it is full).
    #[arg(long, value_name = "MS", default_value_t = stagepush::serve::relay::DEFAULT_LINGER.as_millis() as u64)]
    pub relay_linger_ms: u64,
    /// Largest External Function request body, compressed and decompressed (else 413).
    #[arg(long, value_name = "BYTES", default_value_t = stagepush::serve::relay::DEFAULT_MAX_BODY_BYTES)]
    pub relay_max_body_bytes: usize,
    /// Decompressed bytes of External Function requests delivered at once (the relay's
    /// memory bound); more requests wait to be admitted. At least --relay-max-body-bytes.
    #[arg(long, value_name = "BYTES", default_value_t = stagepush::serve::relay::DEFAULT_MAX_INFLIGHT_BYTES)]
    pub relay_max_inflight_bytes: usize,
    /// How long an External Function request waits to be admitted before it is answered
    /// 429 with Retry-After (Snowflake retries it).
    #[arg(long, value_name = "SECS", default_value_t = stagepush::serve::relay::DEFAULT_ADMISSION_WAIT.as_secs_f64())]
    pub relay_admission_wait_secs: f64,
    /// The same settings as `run` (config file, stage, plugin, endpoint, token, state).
    /// `--include`, `--exclude` and `--modified-since` filter the files events name.
    #[command(flatten)]
    pub run: super::run_cmd::RunArgs,
}

/// Exit status: 0 stopped by SIGTERM/SIGINT; 1 failed; 2 usage or configuration error.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let usage = |message: String| {
        eprintln!("error: {message}");
        Ok(ExitCode::from(Outcome::Usage))
    };
    if args.run.select.keys_from.is_some() {
        return usage("serve delivers the files events name: --keys-from cannot be used".into());
    }
    let selection = args.run.select.selection()?;
    let auth_token = match &args.auth_token_env {
        None => None,
        Some(var) => match std::env::var(var) {
            Ok(value) if !value.trim().is_empty() => Some(Secret::new(value.trim())),
            _ => {
                return usage(format!(
                    "--auth-token-env {var}: the environment variable {var} is not set or empty"
                ));
            }
        },
    };
    let relay_secret = match &args.relay_secret_env {
        None => None,
        Some(var) => match std::env::var(var) {
            Ok(value) if !value.trim().is_empty() => Some(Secret::new(value.trim())),
            _ => {
                return usage(format!(
                    "--relay-secret-env {var}: the environment variable {var} is not set or empty"
                ));
            }
        },
    };
    if !args.relay_sync_secs.is_finite() || args.relay_sync_secs < 0.0 {
        return usage("--relay-sync-secs must be 0 or more".into());
    }
    if !args.relay_admission_wait_secs.is_finite() || args.relay_admission_wait_secs < 0.0 {
        return usage("--relay-admission-wait-secs must be 0 or more".into());
    }
    let (config, token) = match super::run_cmd::resolve(&args.run) {
        Ok(resolved) => resolved,
        Err(e) => return usage(e.to_string()),
    };
    let cache_dir = args.run.plugin_flags.cache_dir();
    let job = match Job::prepare(config.clone(), token, cache_dir) {
        Ok(job) => job,
        Err(e) if e.is_usage() => return usage(e.to_string()),
        Err(e) => anyhow::bail!(e.to_string()),
    };
    if config.state.retry_rejected
        && let Some(code) = super::retry_cmd::before_run(&config, &job.options(Vec::new(), None))
    {
        return Ok(code);
    }
    let queue = match config.trigger.queue_options() {
        Ok(queue) => queue,
        Err(e) => return usage(e.to_string()),
    };
    let options = ServeOptions {
        queue,
        listen: args.listen,
        auth_token,
        sns_confirm: args.sns_confirm,
        selection,
        relay: stagepush::serve::RelayOptions {
            sync_wait: std::time::Duration::from_secs_f64(args.relay_sync_secs),
            secret: relay_secret,
            max_body_bytes: args.relay_max_body_bytes,
            linger: std::time::Duration::from_millis(args.relay_linger_ms),
            max_inflight_bytes: args.relay_max_inflight_bytes,
            admission_wait: std::time::Duration::from_secs_f64(args.relay_admission_wait_secs),
        },
    };
    let served = stagepush::serve::serve(job, options, |addr| {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on http://{addr}");
        let _ = stdout.flush();
    });
    match served {
        Ok(()) => Ok(Outcome::Done.into()),
        Err(e @ (ServeError::Bind { .. } | ServeError::Usage(_))) => usage(e.to_string()),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(Outcome::Failed))
        }
    }
}
