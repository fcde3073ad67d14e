//! Keeps the notifier's records bounded: finished deliveries and the
//! memory of decided notifications go after the retention period.

use crate::repo::{deliveries, queue};
use messenger_platform::CancellationToken;
use sqlx::PgPool;
use std::time::Duration;

const EVERY: Duration = Duration::from_secs(600);

pub async fn run(pool: PgPool, retention: Option<Duration>, shutdown: CancellationToken) {
    let Some(retention) = retention else {
        return;
    };
    loop {
        if let Err(err) = sweep(&pool, retention).await {
            tracing::warn!(error = %err, "notifier cannot purge old deliveries");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

async fn sweep(pool: &PgPool, retention: Duration) -> sqlx::Result<()> {
    let cutoff = time::OffsetDateTime::now_utc() - retention;
    let mut conn = pool.acquire().await?;
    let purged = deliveries::purge_finished(&mut conn, cutoff).await?;
    let forgotten = queue::forget_decided(&mut conn, cutoff).await?;
    if purged + forgotten > 0 {
        tracing::info!(purged, forgotten, "notifier purged old records");
    }
    Ok(())
}
