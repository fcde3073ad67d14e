//! Graceful shutdown: one cancellation token per process, cancelled by
//! SIGINT/SIGTERM; every server and background loop selects on it.

pub use tokio_util::sync::CancellationToken;

/// Resolves on Ctrl-C or SIGTERM (what Kubernetes and Docker send).
pub async fn signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received, draining");
}

/// A token cancelled when the process receives a shutdown signal.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        signal().await;
        trigger.cancel();
    });
    token
}

/// How long in-flight work may take to finish after the shutdown signal.
pub const GRACE_PERIOD: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `work` to completion, but gives up `GRACE_PERIOD` after `token` is
/// cancelled, so a stuck connection cannot keep a terminating pod alive.
pub async fn with_grace_period<T>(
    token: &CancellationToken,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::select! {
        result = work => result,
        () = async {
            token.cancelled().await;
            tokio::time::sleep(GRACE_PERIOD).await;
        } => anyhow::bail!("in-flight work did not finish within {GRACE_PERIOD:?} of shutdown"),
    }
}
