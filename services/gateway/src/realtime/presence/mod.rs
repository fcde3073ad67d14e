//! Presence: a user is online while any of their connections is alive
//! (each refreshes a TTL in Redis with its heartbeat). Online and offline
//! notices go to the rooms of the groups the user belongs to.

use crate::realtime::Realtime;
use crate::realtime::frames;
use crate::realtime::rooms::Room;
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
                }
            }
            Err(err) => tracing::debug!(%err, "presence sweep failed"),
        }
    }
}
