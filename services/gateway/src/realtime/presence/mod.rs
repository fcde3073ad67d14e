//! Presence: a user is online while any of their connections is alive
//! (each refreshes a TTL in Redis with its heartbeat), away while every
//! live connection said `away`. Online and offline notices go at once to
//! the rooms of the groups the user belongs to; every change that holds
//! for `presence_debounce_ms` goes to Kafka (`presence.events.v1`).

mod publish;
mod state;

pub use publish::Publisher;

use crate::realtime::Realtime;
use crate::realtime::frames;
use crate::realtime::rooms::Room;
use crate::realtime::store::now_ms;
use futures::StreamExt as _;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The groups (and direct conversations) `user` belongs to.
pub async fn audience(realtime: &Realtime, user: Uuid) -> Vec<Uuid> {
    match realtime.access.readable(user).await {
        Ok(readable) => readable
            .iter()
            .map(|conversation| conversation.group)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        Err(status) => {
            tracing::warn!(%status, "cannot list a user's groups for presence");
            Vec::new()
        }
    }
}

pub async fn announce(realtime: &Realtime, groups: &[Uuid], user: Uuid, online: bool) {
    let kind = if online {
        "user_online"
    } else {
        "user_offline"
    };
    for group in groups {
        let frame = frames::ephemeral(kind, &group.to_string(), json!({"user_id": user}));
        if let Err(err) = realtime
            .store
            .publish_ephemeral(Room::Conversation(*group), &frame)
            .await
        {
            tracing::debug!(%err, "cannot publish presence");
            return;
        }
    }
}

/// Something about `user`'s connections changed (opened, closed, away or
/// back): their status is looked at again once the debounce ends, by
/// whichever replica gets there first.
pub async fn changed(realtime: &Realtime, user: Uuid) {
    if realtime.presence.is_none() {
        return;
    }
    let due = now_ms() + realtime.settings.presence_debounce_ms as i64;
    if let Err(err) = realtime.store.presence_pending(user, due).await {
        tracing::debug!(%err, "cannot note a presence change");
    }
}

/// Users settled at once by one replica (each waits for a produce ack).
const SETTLE_CONCURRENCY: usize = 64;

/// Publishes the presence of users whose debounce ended, until shutdown
/// (once the topic exists).
pub async fn publish_settled(
    realtime: Arc<Realtime>,
    kafka: messenger_platform::config::KafkaConfig,
    publisher: Arc<Publisher>,
) {
    let topics = [publisher.topic().to_owned()];
    let mut backoff = Duration::from_millis(200);
    while let Err(err) = messenger_platform::kafka::ensure_topics(&kafka, &topics).await {
        tracing::warn!(%err, "cannot create the presence topic; retrying");
        tokio::select! {
            _ = realtime.shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    let debounce = realtime.settings.presence_debounce_ms;
    let period = Duration::from_millis((debounce / 4).clamp(20, 500));
    loop {
        tokio::select! {
            _ = realtime.shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let due = match realtime.store.presence_due(200).await {
            Ok(due) => due,
            Err(err) => {
                tracing::debug!(%err, "presence settling unavailable");
                continue;
            }
        };
        // Each settle waits for the broker's acknowledgement: many at
        // once, or a reconnect storm would be published one ack at a time.
        futures::stream::iter(due)
            .for_each_concurrent(SETTLE_CONCURRENCY, |user| {
                settle(&realtime, &publisher, user)
            })
            .await;
    }
}

/// Publishes `user`'s status if it differs from the last published one,
/// records it once the broker has it, and ends the lease: if the status
/// moved on meanwhile or the broker refused, the user is due again after
/// another debounce. A replica that dies holding the lease leaves the user
/// to whichever replica takes them when it ends.
async fn settle(realtime: &Realtime, publisher: &Publisher, user: Uuid) {
    let retry_in = Duration::from_millis(realtime.settings.presence_debounce_ms);
    match realtime.store.propose_presence(user).await {
        Ok(Some(settled)) => match publisher.publish(user, &settled).await {
            Ok(()) => {
                metrics::counter!("presence_changes_published_total").increment(1);
                if let Err(err) = realtime.store.record_presence(user, &settled).await {
                    tracing::debug!(%err, "cannot record a published presence");
                }
            }
            Err(err) => tracing::warn!(%err, %user, "presence change not published; retrying"),
        },
        Ok(None) => {}
        Err(err) => tracing::debug!(%err, "cannot settle presence"),
    }
    if let Err(err) = realtime.store.finish_presence(user, retry_in).await {
        tracing::debug!(%err, "cannot end a presence lease; it expires by itself");
    }
}

/// Announces users whose connections all expired without closing (their
/// gateway died). Every replica sweeps; Redis lets one claim each user.
pub async fn sweep(realtime: Arc<Realtime>) {
    let period = Duration::from_millis(realtime.settings.presence_ttl_ms / 3)
        .max(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = realtime.shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        match realtime.store.sweep_expired().await {
            Ok(users) => {
                for user in users {
                    let groups = audience(&realtime, user).await;
                    announce(&realtime, &groups, user, false).await;
                    changed(&realtime, user).await;
                }
            }
            Err(err) => tracing::debug!(%err, "presence sweep failed"),
        }
    }
}
