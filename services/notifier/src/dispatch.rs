//! Decides, when a notification's grace delay has passed, whether it
//! becomes a push, and queues one push per device. The notifications of one
//! conversation that come due together become one push; a conversation's
//! pushes share one collapse topic, so a device shows one notification for
//! it, counting what is unread.

use crate::events;
use crate::payload::{self, Facts, Privacy};
use crate::repo::deliveries::{self, NewDelivery};
use crate::repo::preferences::{ChannelRow, GlobalRow};
use crate::repo::queue::PendingRow;
use crate::repo::{known, preferences, queue, subscriptions};
use crate::rules::{self, Due, Effective, Kind, Level, Presence, QuietHours};
use messenger_platform::CancellationToken;
use messenger_proto::notifier::v1 as pb;
use ring::hmac;
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// Notifications decided per transaction.
const BATCH: i64 = 256;
/// The longest the dispatcher sleeps without looking.
const IDLE: Duration = Duration::from_secs(1);
/// How long a conversation whose decision failed waits for another try.
const RETRY_DECISION: Duration = Duration::from_secs(30);

pub struct Dispatcher {
    pub pool: PgPool,
    /// Keys the collapse topics (derived from the VAPID key).
    pub topic_key: hmac::Key,
    /// Notifications older than this are not pushed (`push_ttl_seconds`).
    pub push_ttl: Duration,
    pub queued: Arc<Notify>,
    /// Woken when pushes are queued.
    pub sending: Arc<Notify>,
}

pub async fn run(dispatcher: Dispatcher, shutdown: CancellationToken) {
    loop {
        let taken = match dispatch_due(&dispatcher).await {
            Ok(taken) => taken,
            Err(err) => {
                tracing::warn!(error = %err, "notifier cannot decide due notifications");
                0
            }
        };
        if taken >= BATCH as usize {
            continue;
        }
        let wait = until_next_due(&dispatcher.pool).await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = dispatcher.queued.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn until_next_due(pool: &PgPool) -> Duration {
    let next = match pool.acquire().await {
        Ok(mut conn) => queue::next_due(&mut conn).await.ok().flatten(),
        Err(_) => None,
    };
    next.map_or(IDLE, |at| {
        let wait = at - time::OffsetDateTime::now_utc();
        Duration::try_from(wait).unwrap_or_default().min(IDLE)
    })
}

/// Decides every due notification (up to a batch); returns how many.
async fn dispatch_due(dispatcher: &Dispatcher) -> sqlx::Result<usize> {
    let mut tx = dispatcher.pool.begin().await?;
    let due = queue::take_due(&mut tx, BATCH).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut conversations: BTreeMap<(Uuid, Uuid), Vec<PendingRow>> = BTreeMap::new();
    for row in &due {
        conversations
            .entry((row.user_id, row.channel_id))
            .or_default()
            .push(row.clone());
    }
    let mut queued = 0;
    let mut decided = Vec::with_capacity(due.len());
    for ((user, channel), rows) in conversations {
        let ids: Vec<Uuid> = rows.iter().map(|row| row.notification_id).collect();
        // Each conversation in a savepoint: one that fails is put off and
        // tried again later, and never holds up the others.
        let mut savepoint = sqlx::Acquire::begin(&mut *tx).await?;
        match decide(&mut savepoint, dispatcher, user, channel, &rows).await {
            Ok(pushes) => {
                savepoint.commit().await?;
                queued += pushes;
                decided.extend(ids);
            }
            Err(err) => {
                savepoint.rollback().await?;
                tracing::error!(error = %err, %user, %channel, "cannot decide notifications; retrying later");
                metrics::counter!("notifier_decisions_total", "outcome" => "error").increment(1);
                queue::postpone(&mut tx, &ids, RETRY_DECISION).await?;
            }
        }
    }
    queue::settle(&mut tx, &decided).await?;
    tx.commit().await?;
    if queued > 0 {
        dispatcher.sending.notify_one();
    }
    Ok(due.len())
}

/// One user's due notifications of one conversation: skipped (with the
/// reason published), or one push per device queued about the newest
/// unread one its level admits. Returns the pushes.
async fn decide(
    conn: &mut PgConnection,
    dispatcher: &Dispatcher,
    user: Uuid,
    channel: Uuid,
    rows: &[PendingRow],
) -> sqlx::Result<usize> {
    let ids: Vec<Uuid> = rows.iter().map(|row| row.notification_id).collect();
    let now = time::OffsetDateTime::now_utc();
    // Older than a push service would keep it (a consumer catching up on
    // a long backlog): nobody wants last week's notification now.
    if rows
        .iter()
        .all(|row| row.created_at + dispatcher.push_ttl < now)
    {
        return skipped(conn, user, channel, &ids, "stale").await;
    }
    let context = known::context(conn, user, channel).await?;
    let global = preferences::global(conn, user).await?;
    let own = preferences::channel(conn, user, channel).await?;
    let settings = effective(&global, &own);
    let unread: Vec<&PendingRow> = rows
        .iter()
        .filter(|row| row.seq > context.read_up_to)
        .collect();
    // The newest unread notification the level admits is the one shown; a
    // reply must not reach the screen because a mention came with it.
    let shown = unread
        .iter()
        .copied()
        .filter(|row| settings.level.admits(kind(&row.kind)))
        .max_by_key(|row| row.seq)
        .or_else(|| unread.iter().copied().max_by_key(|row| row.seq))
        .or_else(|| rows.iter().max_by_key(|row| row.seq));
    let Some(shown) = shown else {
        return Ok(0);
    };
    let due = Due {
        kind: kind(&shown.kind),
        seq: u64::try_from(shown.seq).unwrap_or(0),
        read_up_to: u64::try_from(context.read_up_to).unwrap_or(0),
        presence: presence(context.presence.as_deref()),
        now: jiff::Timestamp::now(),
    };
    if let Err(skip) = rules::decide(&due, &settings) {
        return skipped(conn, user, channel, &ids, skip.label()).await;
    }
    let devices = subscriptions::devices(conn, user).await?;
    if devices.is_empty() {
        return skipped(conn, user, channel, &ids, "no_device").await;
    }
    let unread_count = queue::unread(conn, user, channel, context.read_up_to).await?;
    let sender = known::name(conn, shown.actor_id)
        .await?
        .unwrap_or_else(|| "Someone".to_owned());
    let conversation = if due.kind == Kind::Direct {
        sender.clone()
    } else {
        context
            .channel_name
            .unwrap_or_else(|| "a conversation".to_owned())
    };
    let composed = payload::compose(
        &Facts {
            conversation: channel,
            conversation_name: &conversation,
            sender_name: &sender,
            excerpt: &shown.excerpt,
            unread: u32::try_from(unread_count).unwrap_or(u32::MAX).max(1),
            message: shown.message_id,
        },
        privacy(&global.privacy),
        &dispatcher.topic_key,
    );
    let body = serde_json::to_vec(&composed).unwrap_or_default();
    let urgency = if due.kind == Kind::Reply {
        "normal"
    } else {
        "high"
    };
    for device in &devices {
        deliveries::insert(
            conn,
            &NewDelivery {
                subscription_id: *device,
                user_id: user,
                channel_id: channel,
                message_id: shown.message_id,
                seq: shown.seq,
                notification_ids: &ids,
                topic: &composed.tag,
                urgency,
                payload: &body,
            },
        )
        .await?;
    }
    metrics::counter!("notifier_decisions_total", "outcome" => "push").increment(1);
    Ok(devices.len())
}

async fn skipped(
    conn: &mut PgConnection,
    user: Uuid,
    channel: Uuid,
    ids: &[Uuid],
    reason: &'static str,
) -> sqlx::Result<usize> {
    metrics::counter!("notifier_decisions_total", "outcome" => reason).increment(1);
    events::publish(
        conn,
        user,
        pb::notifier_event::Payload::PushSkipped(pb::PushSkipped {
            user_id: user.to_string(),
            channel_id: channel.to_string(),
            notification_ids: events::ids(ids),
            reason: reason.to_owned(),
        }),
    )
    .await?;
    Ok(0)
}

fn kind(stored: &str) -> Kind {
    match stored {
        "direct" => Kind::Direct,
        "mention" => Kind::Mention,
        _ => Kind::Reply,
    }
}

fn presence(stored: Option<&str>) -> Presence {
    match stored {
        Some("online") => Presence::Online,
        Some("away") => Presence::Away,
        _ => Presence::Offline,
    }
}

pub fn level(stored: &str) -> Level {
    match stored {
        "mentions" => Level::Mentions,
        "nothing" => Level::Nothing,
        _ => Level::All,
    }
}

pub fn privacy(stored: &str) -> Privacy {
    match stored {
        "sender_only" => Privacy::SenderOnly,
        "hidden" => Privacy::Hidden,
        _ => Privacy::Full,
    }
}

/// The settings that apply to one conversation: its own level where set;
/// muted while either it or the user is.
pub fn effective(global: &GlobalRow, own: &ChannelRow) -> Effective {
    let timestamp =
        |at: time::OffsetDateTime| jiff::Timestamp::from_second(at.unix_timestamp()).ok();
    let muted_until = [global.muted_until, own.muted_until]
        .into_iter()
        .flatten()
        .max()
        .and_then(timestamp);
    let quiet_hours = match (&global.quiet_start, &global.quiet_end, &global.time_zone) {
        (Some(start), Some(end), Some(zone)) => {
            jiff::tz::TimeZone::get(zone).ok().map(|zone| QuietHours {
                start: civil(*start),
                end: civil(*end),
                zone,
            })
        }
        _ => None,
    };
    Effective {
        level: level(own.level.as_deref().unwrap_or(&global.level)),
        muted_until,
        quiet_hours,
    }
}

fn civil(at: time::Time) -> jiff::civil::Time {
    jiff::civil::Time::new(
        i8::try_from(at.hour()).unwrap_or(0),
        i8::try_from(at.minute()).unwrap_or(0),
        0,
        0,
    )
    .unwrap_or(jiff::civil::Time::midnight())
}
