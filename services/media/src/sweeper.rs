//! The sweeper of unattached uploads: deletes uploads that nobody attached
//! to a message or used as an avatar within
//! `media.unattached_upload_ttl_seconds`, which frees their bytes of the
//! owner's quota, and removes their stored content (blob, cleaned image,
//! thumbnails) when no other upload has the same bytes.
//!
//! An upload is claimed, and then never swept, when CheckAttachable lets
//! its owner attach it (the messages service asks right before it stores
//! the message) or ClaimMedia marks it as an avatar. Before deleting, the
//! sweeper still asks the messages service which of its candidates a stored
//! message carries, and claims those instead: an attachment made through a
//! replica of a release that did not claim is never lost. When the messages
//! service cannot answer, nothing is deleted until it can.
//!
//! Every media replica runs a sweeper. They share the work through row
//! locks taken with `SKIP LOCKED` and a content lock they only try, so no
//! sweeper ever waits on another, on an upload or on a delete, and each
//! upload is deleted, with its event, exactly once.

use crate::events;
use crate::media::Media;
use crate::repo;
use crate::storage;
use messenger_platform::CancellationToken;
use messenger_proto::media::v1::{self as pb, media_event::Payload};
use messenger_proto::messages::v1 as messages_pb;
use std::time::Duration;
use uuid::Uuid;

/// Uploads looked at per pass (and asked about in one call to messages).
const BATCH: i64 = 100;
/// Passes per tick at most, while a backlog keeps the batches full.
const MAX_PASSES: usize = 10;

/// Sweeps every [`crate::settings::MediaSettings::sweep_interval`] until
/// `shutdown`; returns at once when the TTL is 0 (sweeping is off).
pub async fn run(media: Media, shutdown: CancellationToken) {
    let Some(ttl) = media.limits.unattached_ttl() else {
        tracing::info!("unattached uploads are kept: media.unattached_upload_ttl_seconds is 0");
        return;
    };
    let interval = media.limits.sweep_interval();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        for _ in 0..MAX_PASSES {
            if shutdown.is_cancelled() {
                return;
            }
            match sweep(&media, ttl).await {
                Ok(pass) if pass.more => {}
                Ok(_) => break,
                Err(err) => {
                    metrics::counter!("media_unattached_sweep_failures_total").increment(1);
                    tracing::warn!(
                        error = %err,
                        retry_in = ?interval,
                        "unattached upload sweep stopped"
                    );
                    break;
                }
            }
        }
    }
}

/// What one pass did.
#[derive(Debug, Default)]
struct Pass {
    deleted: u64,
    claimed: u64,
    /// The batch was full and the pass changed something: look again now.
    more: bool,
}

/// One pass: up to [`BATCH`] of the oldest expired uploads.
async fn sweep(media: &Media, ttl: Duration) -> anyhow::Result<Pass> {
    let ttl_seconds = ttl.as_secs_f64();
    let mut conn = media.pool.acquire().await?;
    let candidates = repo::unattached_before(&mut conn, ttl_seconds, BATCH).await?;
    drop(conn);
    let mut pass = Pass::default();
    if candidates.is_empty() {
        return Ok(pass);
    }
    let attached = attached_to_messages(media, &candidates).await?;
    if !attached.is_empty() {
        let mut conn = media.pool.acquire().await?;
        pass.claimed = repo::claim(&mut conn, &attached).await?;
        drop(conn);
        metrics::counter!("media_unattached_uploads_reclaimed_total").increment(pass.claimed);
        tracing::warn!(
            count = pass.claimed,
            "uploads a message carries were not claimed as attached; claimed them now"
        );
    }
    let mut freed = 0;
    for id in candidates.iter().filter(|id| !attached.contains(id)) {
        if let Some(size) = delete_expired(media, *id, ttl_seconds).await? {
            pass.deleted += 1;
            freed += size;
        }
    }
    if pass.deleted > 0 {
        tracing::info!(
            deleted = pass.deleted,
            freed_bytes = freed,
            "unattached uploads swept"
        );
    }
    pass.more = i64::try_from(candidates.len()).is_ok_and(|n| n == BATCH)
        && pass.deleted + pass.claimed > 0;
    Ok(pass)
}

/// Those of `ids` that a message stored by the messages service carries.
async fn attached_to_messages(media: &Media, ids: &[Uuid]) -> anyhow::Result<Vec<Uuid>> {
    let answer = media
        .messages
        .clone()
        .list_attached_media(messages_pb::ListAttachedMediaRequest {
            media_ids: ids.iter().map(Uuid::to_string).collect(),
        })
        .await
        .map_err(|status| {
            anyhow::anyhow!(
                "the messages service cannot tell which uploads are attached, so none is deleted: {status}"
            )
        })?;
    answer
        .into_inner()
        .media_ids
        .iter()
        .map(|id| {
            Uuid::parse_str(id)
                .map_err(|_| anyhow::anyhow!("the messages service returned a bad id {id:?}"))
        })
        .collect()
}

/// Deletes `id` if it is still unattached past the TTL and neither another
/// sweeper nor an upload or delete of the same bytes holds it; its size
/// when it did. A storage failure leaves the row (the next pass retries).
async fn delete_expired(media: &Media, id: Uuid, ttl_seconds: f64) -> anyhow::Result<Option<u64>> {
    let mut tx = media.pool.begin().await?;
    let Some(expired) = repo::lock_expired(&mut tx, id, ttl_seconds).await? else {
        return Ok(None);
    };
    if !repo::try_lock_content(&mut tx, &expired.sha256).await? {
        return Ok(None);
    }
    repo::delete(&mut tx, id).await?;
    let shared = repo::blob_users(&mut tx, &expired.sha256).await? > 0;
    events::publish(
        &mut tx,
        id,
        expired.owner_id,
        Payload::MediaDeleted(pb::MediaDeleted {
            media_id: id.to_string(),
            owner_id: expired.owner_id.to_string(),
            reason: pb::MediaDeletedReason::Unattached as i32,
        }),
    )
    .await?;
    if !shared {
        // Under the content lock, like a delete by the owner: an upload of
        // the same bytes waits for the commit, then stores them again.
        for path in storage::content_paths(&expired.sha256) {
            media.storage.delete(&path).await?;
        }
    }
    tx.commit().await?;
    let size = u64::try_from(expired.size).unwrap_or(0);
    metrics::counter!("media_unattached_uploads_deleted_total").increment(1);
    metrics::counter!("media_unattached_bytes_freed_total").increment(size);
    tracing::debug!(
        media_id = %id,
        owner_id = %expired.owner_id,
        size,
        content_removed = !shared,
        "unattached upload swept"
    );
    Ok(Some(size))
}
