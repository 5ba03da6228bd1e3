//! SIGINT and SIGTERM during `stagepush run`: the first cancels the run (it stops at its
//! next batch, records what CluedIn acknowledged, releases its leases, writes its report
//! and exits 130/143); a second one ends the process at once.

use stagepush::cancel::Cancel;

use super::exit::{Outcome, Signal};

/// SIGINT and SIGTERM cancel the run (it stops at its next batch, checkpoints what CluedIn
/// acknowledged, releases its leases and writes its report); a second one ends the process
/// at once (its leases then lapse after `lease_secs`). Returns once the handlers are
/// installed.
pub(super) fn cancel_on_signals(cancel: Cancel) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    std::thread::Builder::new()
        .name("stagepush-signals".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                let (mut int, mut term) = match (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) {
                    (Ok(int), Ok(term)) => (int, term),
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                loop {
                    let name = tokio::select! {
                        _ = int.recv() => "SIGINT",
                        _ = term.recv() => "SIGTERM",
                    };
                    if cancel.is_cancelled() {
                        eprintln!("{name} again: exiting now (the leases lapse on their own)");
                        std::process::exit(i32::from(
                            Outcome::Interrupted(Signal::named(name)).code(),
                        ));
                    }
                    cancel.cancel(name);
                    eprintln!(
                        "{name}: stopping at the next batch and recording what CluedIn acknowledged (send it again to exit at once)"
                    );
                }
            });
        })?;
    ready_rx
        .recv()
        .map_err(|_| anyhow::anyhow!("the signal handler thread ended"))?
        .map_err(|e| anyhow::anyhow!("cannot handle SIGINT/SIGTERM: {e}"))
}
