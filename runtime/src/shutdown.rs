//! Graceful shutdown: one root `CancellationToken`. SIGINT or SIGTERM cancels it:
//! stages stop taking work, drain what is in flight, commit, and return. A second
//! signal exits at once (nothing is lost: uncommitted work is redone on restart).

use tokio_util::sync::CancellationToken;

/// A token cancelled on the first SIGINT/SIGTERM; the process exits on the second.
pub fn on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let child = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing work in flight (signal again to stop at once)");
        child.cancel();
        wait_for_signal().await;
        tracing::warn!("second signal: exiting now; unfinished work is redone on restart");
        std::process::exit(130);
    });
    token
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
