//! `stagepush serve`: a long-running receiver of object-store push notifications.
//!
//! Routes:
//!
//! - `POST /events` (and `POST /`): an S3 notification (direct, SNS envelope, SQS batch),
//!   EventBridge, Event Grid, CloudEvents or Pub/Sub push payload ([`crate::events::parse`];
//!   a binary-mode CloudEvent, as Eventarc sends, by its `ce-*` headers:
//!   [`crate::events::parse_binary`]); the objects
//!   it names are resolved against the configured stage ([`crate::trigger::resolve`]) and
//!   recorded as **pending** in the delivery state ([`crate::state::pending`]) before the answer, 200 with
//!   `{"accepted": [urls], "new": n, "ignored": [reasons]}`. A payload that cannot be used
//!   is 400 with the one-line error, as is an event for another bucket or container (the
//!   sender should not retry it); a store that cannot be reached is 503 (it should).
//!   Handshakes: header `aeg-event-type: SubscriptionValidation` → 200
//!   `{"validationResponse": "<data.validationCode>"}`; header `x-amz-sns-message-type:
//!   SubscriptionConfirmation` → the SubscribeURL is logged, and fetched only with
//!   `sns_confirm` (and only when it is https on `sns.<region>.amazonaws.com`).
//! - `OPTIONS /events` (and `/`): the CloudEvents webhook abuse-protection handshake
//!   (`WebHook-Allowed-Origin`, `WebHook-Allowed-Rate: *`).
//! - `POST /external-function/{name}` (and `GET` to poll): the relay behind a Snowflake
//!   External Function ([`relay`]): the rows are transformed and delivered at once (the
//!   records of concurrent requests share request bodies), and the answer names each row's
//!   outcome.
//! - `GET /healthz`: `ok`. `GET /metrics`: Prometheus text ([`metrics`]).
//!
//! With a shared secret, `/events` and `/` require it in header `X-Stagepush-Token` or
//! query parameter `token` (else 401); `/healthz` and `/metrics` do not.
//!
//! A [`processor`] thread delivers the pending files, one pipeline run at a time, and
//! removes their entries once the run finished them; entries left by an earlier process
//! are delivered at start. SIGTERM or SIGINT: stop accepting, let requests in progress
//! finish (up to [`DRAIN_TIMEOUT`]), cancel the run in progress (it stops at its next
//! batch; what CluedIn acknowledged is checkpointed), wait for the processor, return `Ok`.

pub mod metrics;
pub mod processor;
pub mod relay;

mod http;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cancel::Cancel;
use crate::job::Job;
use crate::source::select::CompiledSelection;
use crate::source::{Secret, Selection, StoreKind};

pub use http::{MAX_BODY_BYTES, TOKEN_HEADER};
pub use metrics::Metrics;
pub use relay::RelayOptions;

/// Why a run in progress stopped when `serve` shut down (its report's `interrupted`).
pub const SHUTDOWN: &str = "shutdown";
/// How long requests in progress may take to finish after a shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// How `serve` runs (the delivery itself is the [`Job`]'s).
#[derive(Debug)]
pub struct ServeOptions {
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// The shared secret `/events` requires, if any.
    pub auth_token: Option<Secret>,
    /// Confirm SNS subscriptions by fetching their SubscribeURL.
    pub sns_confirm: bool,
    /// Only files this selects are queued (`--include`, `--exclude`, `--modified-since`;
    /// `keys` is not used).
    pub selection: Selection,
    /// The Snowflake External Function relay (`/external-function/{name}`, [`relay`]).
    pub relay: RelayOptions,
    /// `--queue`: a queue of storage notifications consumed alongside (see
    /// [`crate::queue::consumer`]).
    pub queue: Option<crate::queue::QueueOptions>,
}

/// Why `serve` could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the processor thread panicked; pending files stay for the next start")]
    ProcessorPanicked,
}

/// Serves until SIGTERM or SIGINT. `ready` is called with the bound address once the
/// server accepts connections and the signal handlers are installed.
pub fn serve(
    job: Job,
    options: ServeOptions,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("stagepush-serve")
        .enable_all()
        .build()?;
    let (listener, shutdown) = {
        let _guard = runtime.enter();
        let shutdown = termination()?;
        let listener = runtime
            .block_on(TcpListener::bind(options.listen))
            .map_err(|source| ServeError::Bind {
                addr: options.listen,
                source,
            })?;
        (listener, shutdown)
    };
    serve_on(runtime, listener, job, options, shutdown, ready)
}

/// A future that ends at SIGTERM or SIGINT (installed now, inside a runtime).
fn termination() -> Result<impl Future<Output = ()> + Send + 'static, ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!("{name}: shutting down");
    })
}

/// [`serve`] on a bound listener until `shutdown` ends.
fn serve_on(
    runtime: tokio::runtime::Runtime,
    listener: TcpListener,
    job: Job,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: options.listen,
        source,
    })?;
    let relay = &options.relay;
    if relay.max_body_bytes > relay.max_inflight_bytes
        || relay.max_inflight_bytes > u32::MAX as usize
        || relay.max_body_bytes == 0
    {
        return Err(ServeError::Usage(format!(
            "--relay-max-body-bytes ({}) must be 1..=--relay-max-inflight-bytes ({}), which is at most {}: a request larger than the budget could never be admitted",
            relay.max_body_bytes,
            relay.max_inflight_bytes,
            u32::MAX
        )));
    }
    let selection = if options.selection.include.is_empty()
        && options.selection.exclude.is_empty()
        && options.selection.modified_since.is_none()
    {
        None
    } else {
        Some(
            CompiledSelection::new(&options.selection)
                .map_err(|e| ServeError::Usage(e.to_string()))?,
        )
    };
    let job = Arc::new(job);
    let metrics = Arc::new(Metrics::default());
    let signal = Arc::new(processor::Signal::default());
    let cancel = Cancel::new();
    let processor = {
        let (job, metrics, signal, cancel) = (
            Arc::clone(&job),
            Arc::clone(&metrics),
            Arc::clone(&signal),
            cancel.clone(),
        );
        std::thread::Builder::new()
            .name("stagepush-processor".into())
            .spawn(move || processor::run(job, metrics, signal, cancel))?
    };
    let consumer = match &options.queue {
        None => None,
        Some(queue) => Some(spawn_consumer(
            Arc::clone(&job),
            queue.clone(),
            options.selection.clone(),
            Arc::clone(&metrics),
            cancel.clone(),
        )?),
    };
    let app = Arc::new(http::App::new(
        Arc::clone(&job),
        options.auth_token.as_ref(),
        options.sns_confirm,
        selection,
        Arc::clone(&metrics),
        Arc::clone(&signal),
        Arc::new(relay::Relay::new(
            Arc::clone(&job),
            options.relay.clone(),
            options.auth_token.as_ref(),
            metrics,
        )),
    ));
    if !matches!(
        job.stage.kind(),
        StoreKind::S3 | StoreKind::Azure | StoreKind::Gcs
    ) {
        tracing::warn!(
            "the stage {} is not in S3, Azure Blob Storage or GCS: no storage event can name its files",
            job.stage.url()
        );
    }
    tracing::info!(
        "serving {} (state {}): POST http://{addr}/events",
        job.stage.url(),
        job.state.location()
    );
    ready(addr);
    runtime.block_on(accept_loop(listener, app, shutdown));
    // Stop the run in progress at its next batch, then wait for the processor.
    cancel.cancel(SHUTDOWN);
    signal.stop();
    tracing::info!("waiting for the run in progress to stop");
    let joined = processor.join();
    let consumer_joined = consumer.map(|c| c.join());
    runtime.shutdown_timeout(Duration::from_secs(1));
    joined.map_err(|_| ServeError::ProcessorPanicked)?;
    if let Some(Err(_)) = consumer_joined {
        return Err(ServeError::ProcessorPanicked);
    }
    tracing::info!("stopped");
    Ok(())
}

/// The `serve --queue` consumer thread: polls `queue` until `cancel` is set (each run's
/// report goes to `metrics`).
fn spawn_consumer(
    job: Arc<Job>,
    queue: crate::queue::QueueOptions,
    selection: Selection,
    metrics: Arc<Metrics>,
    cancel: Cancel,
) -> Result<std::thread::JoinHandle<()>, ServeError> {
    use crate::queue::consumer::{Consumer, Until};
    let client = crate::queue::connect(&queue.url, &job.config.source)
        .map_err(|e| ServeError::Usage(e.to_string()))?;
    tracing::info!("consuming the queue {}", queue.url);
    let thread = std::thread::Builder::new()
        .name("stagepush-queue".into())
        .spawn(move || {
            let on_run = |report: &crate::pipeline::RunReport| metrics.add_run(report);
            let consumer = Consumer {
                job: &job,
                client: client.as_ref(),
                options: &queue,
                counters: metrics.queue_counters(),
                cancel: &cancel,
                selection: &selection,
                on_run: &on_run,
            };
            // Errors are logged and retried until the shutdown.
            let _ = consumer.run(Until::Cancelled);
            tracing::info!("queue consumer stopped");
        })?;
    Ok(thread)
}

fn is_transient_accept_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    ) || e.raw_os_error() == Some(libc::EMFILE)
        || e.raw_os_error() == Some(libc::ENFILE)
}

async fn accept_loop(
    listener: TcpListener,
    app: Arc<http::App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) if is_transient_accept_error(&e) => {
                        tracing::warn!("accept: {e}");
                        // Out of file descriptors: give connections time to close.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::error!("accept: {e}; shutting down");
                        break;
                    }
                };
                let _ = stream.set_nodelay(true);
                connections.spawn(connection(stream, Arc::clone(&app), stop_rx.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "{} connections still open after {} s: closed",
            connections.len(),
            DRAIN_TIMEOUT.as_secs()
        );
        connections.abort_all();
    }
}

/// One connection; at shutdown, the request in progress finishes and the connection
/// closes.
async fn connection(
    stream: tokio::net::TcpStream,
    app: Arc<http::App>,
    mut stop: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |req| http::handle(Arc::clone(&app), req));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = async {
            let _ = stop.wait_for(|stopped| *stopped).await;
        } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
