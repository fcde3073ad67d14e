//! The notifier's one consumer: notifications and read positions from
//! `messages.events.v1`, presence from `presence.events.v1`, and names from
//! `users.events.v1` and `groups.events.v1`. Each record is applied in its
//! own statement, idempotently, before its offset is stored: a crash
//! repeats records, never skips one, and a repeat changes nothing.

use crate::repo::{known, queue};
use messenger_platform::kafka::{self, Urgency};
use messenger_platform::{CancellationToken, Config};
use messenger_proto::Topic;
use messenger_proto::groups::v1::{GroupsEvent, groups_event::Payload as Groups};
use messenger_proto::messages::v1::{
    MessagesEvent, NotificationKind, messages_event::Payload as Messages,
};
use messenger_proto::presence::v1::{
    PresenceEvent, PresenceStatus, presence_event::Payload as Presence,
};
use messenger_proto::users::v1::{UserEvent, user_event::Payload as Users};
use prost::Message as _;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;

/// The consumer group, which also names its client and metrics.
pub const GROUP: &str = "notifier";

/// The topics it reads: its Kafka user's read rights.
pub const TOPICS: &[Topic] = &[
    MessagesEvent::TOPIC,
    PresenceEvent::TOPIC,
    UserEvent::TOPIC,
    GroupsEvent::TOPIC,
];

pub struct Ingest {
    pub pool: PgPool,
    pub grace: Duration,
    /// Woken when a notification is queued, so the dispatcher need not
    /// poll to learn of it.
    pub queued: Arc<Notify>,
}

pub async fn run(config: Config, ingest: Ingest, shutdown: CancellationToken) {
    let kafka = &config.kafka;
    let topics: Vec<String> = TOPICS.iter().map(|t| kafka.topic(t.name())).collect();
    let group = kafka.topic(GROUP);
    tokio::spawn(kafka::report_lag(
        kafka.clone(),
        group.clone(),
        topics.clone(),
        shutdown.clone(),
    ));
    while let Some(consumer) =
        kafka::subscribed_consumer(kafka, &topics, &group, GROUP, Urgency::Live, &shutdown).await
    {
        let fatal = consume(&consumer, &config, &ingest, &shutdown).await;
        kafka::close_consumer(consumer).await;
        match fatal {
            Some(reason) => kafka::note_rebuild(GROUP, &reason),
            None => break,
        }
    }
}

async fn consume(
    consumer: &StreamConsumer,
    config: &Config,
    ingest: &Ingest,
    shutdown: &CancellationToken,
) -> Option<String> {
    loop {
        let record = tokio::select! {
            _ = shutdown.cancelled() => return None,
            record = consumer.recv() => record,
        };
        let record = match record {
            Ok(record) => record,
            Err(_) => match kafka::fatal_error(consumer.client()) {
                Some(fatal) => return Some(fatal),
                None => continue,
            },
        };
        let topic = config
            .kafka
            .unprefixed(record.topic())
            .and_then(Topic::from_name);
        let fact = match (topic, record.payload()) {
            (Some(topic), Some(payload)) => Fact::decode(topic, payload),
            _ => None,
        };
        if let Some(fact) = fact {
            let mut backoff = Duration::from_millis(100);
            while let Err(err) = apply(ingest, &fact).await {
                tracing::warn!(error = %err, "notifier cannot apply an event; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
        if let Err(err) = consumer.store_offset_from_message(&record) {
            tracing::warn!(error = %err, "cannot store the notifier's offset");
        }
    }
}

/// What one record tells the notifier; records it has no use for (and
/// malformed ones, which no retry would mend) are none.
#[derive(Debug, PartialEq)]
pub enum Fact {
    Notification(queue::PendingRow),
    Read {
        user: Uuid,
        channel: Uuid,
        seq: i64,
    },
    Presence {
        user: Uuid,
        status: &'static str,
        sequence: i64,
    },
    Name {
        id: Uuid,
        name: String,
    },
}

impl Fact {
    pub fn decode(topic: Topic, payload: &[u8]) -> Option<Fact> {
        match topic {
            Topic::Messages => match MessagesEvent::decode(payload).ok()?.payload? {
                Messages::NotificationCreated(created) => notification(created),
                Messages::ReadPositionMoved(moved) => {
                    let position = moved.position?;
                    Some(Fact::Read {
                        user: uuid(&position.user_id)?,
                        channel: uuid(&position.channel_id)?,
                        seq: i64::try_from(position.seq).ok()?,
                    })
                }
                _ => None,
            },
            Topic::Presence => match PresenceEvent::decode(payload).ok()?.payload? {
                Presence::PresenceChanged(changed) => Some(Fact::Presence {
                    user: uuid(&changed.user_id)?,
                    status: match PresenceStatus::try_from(changed.status).ok()? {
                        PresenceStatus::Online => "online",
                        PresenceStatus::Away => "away",
                        PresenceStatus::Offline => "offline",
                        PresenceStatus::Unspecified => return None,
                    },
                    sequence: i64::try_from(changed.sequence).ok()?,
                }),
            },
            Topic::Users => match UserEvent::decode(payload).ok()?.payload? {
                Users::UserRegistered(user) => Some(Fact::Name {
                    id: uuid(&user.user_id)?,
                    name: if user.display_name.trim().is_empty() {
                        user.username
                    } else {
                        user.display_name
                    },
                }),
                Users::UserProfileUpdated(user) if !user.display_name.trim().is_empty() => {
                    Some(Fact::Name {
                        id: uuid(&user.user_id)?,
                        name: user.display_name,
                    })
                }
                Users::UserProfileUpdated(_) => None,
            },
            Topic::Groups => match GroupsEvent::decode(payload).ok()?.payload? {
                Groups::ChannelCreated(created) => channel_name(created.channel?),
                Groups::ChannelUpdated(updated) => channel_name(updated.channel?),
                _ => None,
            },
            Topic::Media | Topic::Notifier => None,
        }
    }
}

fn notification(created: messenger_proto::messages::v1::NotificationCreated) -> Option<Fact> {
    let n = created.notification?;
    let kind = match NotificationKind::try_from(n.kind).ok()? {
        NotificationKind::Mention => "mention",
        NotificationKind::Reply => "reply",
        NotificationKind::DirectMessage => "direct",
        NotificationKind::Unspecified => return None,
    };
    let created_at = n
        .created_at
        .and_then(|at| OffsetDateTime::from_unix_timestamp(at.seconds).ok())
        .unwrap_or_else(OffsetDateTime::now_utc);
    Some(Fact::Notification(queue::PendingRow {
        notification_id: uuid(&n.id)?,
        user_id: uuid(&n.user_id)?,
        channel_id: uuid(&n.channel_id)?,
        message_id: uuid(&n.message_id)?,
        seq: i64::try_from(created.seq).ok()?,
        kind: kind.to_owned(),
        actor_id: uuid(&n.actor_id)?,
        excerpt: n.excerpt,
        created_at,
        // Filled in by `apply`, with the configured grace.
        due_at: created_at,
    }))
}

fn channel_name(channel: messenger_proto::groups::v1::Channel) -> Option<Fact> {
    Some(Fact::Name {
        id: uuid(&channel.id)?,
        name: format!("#{}", channel.name),
    })
}

fn uuid(raw: &str) -> Option<Uuid> {
    Uuid::parse_str(raw).ok()
}

async fn apply(ingest: &Ingest, fact: &Fact) -> sqlx::Result<()> {
    let mut conn = ingest.pool.acquire().await?;
    match fact {
        Fact::Notification(row) => {
            // The grace counts from when the message was sent: a notifier
            // catching up on a backlog does not wait it out again.
            let mut row = row.clone();
            row.due_at += ingest.grace;
            if queue::enqueue(&mut conn, &row).await? {
                metrics::counter!("notifier_notifications_queued_total").increment(1);
                ingest.queued.notify_one();
            }
        }
        Fact::Read { user, channel, seq } => {
            known::record_read(&mut conn, *user, *channel, *seq).await?;
        }
        Fact::Presence {
            user,
            status,
            sequence,
        } => known::record_presence(&mut conn, *user, status, *sequence).await?,
        Fact::Name { id, name } => known::record_name(&mut conn, *id, name).await?,
    }
    Ok(())
}
