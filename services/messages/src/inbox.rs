//! A user's notifications and message search: both limited to the
//! conversations the user may read right now, so leaving or being removed
//! from a group hides what came from it.

use crate::domain::{ChannelId, GroupId, NotificationId, SearchQuery, UserId};
use crate::error::{Error, Result};
use crate::messages::Messages;
use crate::repo::{self, MessageRow, NotificationRow};
use uuid::Uuid;

/// Most notifications one mark-read call may name.
pub const MAX_MARK: usize = 500;

pub struct NotificationPage {
    pub notifications: Vec<NotificationRow>,
    pub next: Option<Uuid>,
    pub unread_total: i64,
}

impl Messages {
    pub async fn notifications(
        &self,
        actor: UserId,
        before: Option<NotificationId>,
        unread_only: bool,
        limit: i64,
    ) -> Result<NotificationPage> {
        let channels = self.readable_channels(actor, None, None).await?;
        let mut conn = self.pool.acquire().await?;
        let mut rows = repo::page(
            &mut conn,
            actor.0,
            &channels,
            before.map(|id| id.0),
            unread_only,
            limit + 1,
        )
        .await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        let unread_total = repo::unread_total(&mut conn, actor.0, &channels).await?;
        Ok(NotificationPage {
            next: if more {
                rows.last().map(|row| row.id)
            } else {
                None
            },
            notifications: rows,
            unread_total,
        })
    }

    pub async fn mark_notifications_read(
        &self,
        actor: UserId,
        ids: &[NotificationId],
    ) -> Result<u64> {
        if ids.len() > MAX_MARK {
            return Err(Error::invalid(
                "notification_ids",
                format!("at most {MAX_MARK} per call"),
            ));
        }
        let ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
        let mut conn = self.pool.acquire().await?;
        Ok(repo::mark_read(&mut conn, actor.0, &ids).await?)
    }

    /// Matches newest first, older than `before` when given.
    pub async fn search(
        &self,
        actor: UserId,
        query: SearchQuery,
        channel: Option<ChannelId>,
        group: Option<GroupId>,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<(Vec<MessageRow>, Option<Uuid>)> {
        let channels = self.readable_channels(actor, channel, group).await?;
        if channels.is_empty() {
            if channel.is_some() {
                return Err(Error::NotFound("conversation"));
            }
            return Ok((Vec::new(), None));
        }
        let mut conn = self.pool.acquire().await?;
        let mut rows =
            repo::search(&mut conn, &channels, query.as_str(), before, limit + 1).await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        let next = if more {
            rows.last().map(|row| row.id)
        } else {
            None
        };
        Ok((rows, next))
    }

    async fn readable_channels(
        &self,
        actor: UserId,
        channel: Option<ChannelId>,
        group: Option<GroupId>,
    ) -> Result<Vec<Uuid>> {
        let among: Vec<Uuid> = channel.map(|c| c.0).into_iter().collect();
        Ok(self
            .peers
            .readable(actor, &among)
            .await?
            .into_iter()
            .filter(|readable| group.is_none_or(|group| readable.group_id == group.0))
            .map(|readable| readable.channel_id)
            .collect())
    }
}
