//! Sends queued pushes and records how each went. A push is leased while it
//! is sent: a replica that dies mid-batch leaves its pushes to be sent
//! again when the lease runs out, with the same collapse topic, so the
//! device still shows one notification.

use crate::events;
use crate::repo::deliveries::{self, Leased};
use crate::repo::subscriptions;
use crate::webpush::{Outcome, Push, PushError, Subscription, Urgency, WebPush};
use messenger_platform::CancellationToken;
use messenger_platform::egress::EgressError;
use messenger_proto::notifier::v1 as pb;
use pb::notifier_event::Payload;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinSet;

const IDLE: Duration = Duration::from_secs(1);
/// Backoff after the first failed attempt; doubled each time after.
const FIRST_RETRY: Duration = Duration::from_secs(2);
const LONGEST_RETRY: Duration = Duration::from_secs(3600);
/// Pushes refused for good in a row (no delivery between) after which the
/// subscription is deleted: a device that refuses everything (400, 401,
/// 403) will not start accepting.
const FAILURES_TO_EXPIRE: i32 = 5;

pub struct Sender {
    pub pool: PgPool,
    pub web_push: Arc<WebPush>,
    pub ttl: Duration,
    pub max_attempts: u32,
    pub concurrency: usize,
    /// How long a push stays leased to the replica sending it: longer than
    /// one request may take.
    pub lease: Duration,
    pub wake: Arc<Notify>,
}

/// Keeps up to `concurrency` pushes in flight: a push is leased only when
/// a slot is free, and a slow push service holds one slot, not the batch.
pub async fn run(sender: Sender, shutdown: CancellationToken) {
    let sender = Arc::new(sender);
    let mut in_flight = JoinSet::new();
    loop {
        while in_flight.try_join_next().is_some() {}
        let free = sender.concurrency.saturating_sub(in_flight.len());
        let leased = if free == 0 {
            Vec::new()
        } else {
            match lease(&sender, free).await {
                Ok(leased) => leased,
                Err(err) => {
                    tracing::warn!(error = %err, "notifier cannot lease pushes");
                    Vec::new()
                }
            }
        };
        let full = free > 0 && leased.len() == free;
        for push in leased {
            let sender = sender.clone();
            in_flight.spawn(async move {
                if let Err(err) = send_one(&sender, &push).await {
                    // The lease runs out and the push is tried again.
                    tracing::warn!(error = %err, delivery = %push.id, "cannot record a push's outcome");
                }
            });
        }
        if full {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = sender.wake.notified() => {}
            _ = tokio::time::sleep(IDLE) => {}
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
        }
    }
    // Pushes in flight finish (each within the egress timeout) and record
    // their outcome; a push not recorded is sent again after its lease.
    while in_flight.join_next().await.is_some() {}
}

async fn lease(sender: &Sender, limit: usize) -> sqlx::Result<Vec<Leased>> {
    let mut conn = sender.pool.acquire().await?;
    deliveries::lease_due(
        &mut conn,
        i64::try_from(limit).unwrap_or(i64::MAX),
        sender.lease,
    )
    .await
}

/// What becomes of a push after one attempt.
enum Next {
    Delivered,
    /// The subscription is unusable for good: delete it.
    Gone,
    RetryIn(Duration, String),
    Failed(String),
    /// Not sent: the user read the conversation meanwhile.
    Read,
}

async fn send_one(sender: &Sender, push: &Leased) -> sqlx::Result<()> {
    let attempts = u32::try_from(push.attempts).unwrap_or(u32::MAX);
    let next = if push.read_up_to >= push.seq {
        Next::Read
    } else if attempts > sender.max_attempts {
        // Leased again and again without an outcome recorded.
        Next::Failed(format!("no outcome after {} attempts", sender.max_attempts))
    } else {
        match &push.payload {
            Some(payload) => attempt(sender, push, payload).await,
            None => Next::Failed("nothing to send".to_owned()),
        }
    };
    let next = match next {
        Next::RetryIn(_, reason) if attempts >= sender.max_attempts => {
            Next::Failed(format!("{reason} ({attempts} attempts)"))
        }
        next => next,
    };
    let mut tx = sender.pool.begin().await?;
    let label = record(&mut tx, push, attempts, next).await?;
    tx.commit().await?;
    metrics::counter!("notifier_pushes_total", "outcome" => label).increment(1);
    Ok(())
}

/// Writes the outcome and its event; a lease lost meanwhile (another
/// replica sent the push again) writes nothing.
async fn record(
    tx: &mut sqlx::PgConnection,
    push: &Leased,
    attempts: u32,
    next: Next,
) -> sqlx::Result<&'static str> {
    let user = push.user_id;
    let label = match next {
        Next::Delivered => {
            if !deliveries::delivered(tx, push).await? {
                return Ok("lease_lost");
            }
            let delivered = pb::PushDelivered {
                user_id: user.to_string(),
                subscription_id: push.subscription_id.to_string(),
                channel_id: push.channel_id.to_string(),
                message_id: push.message_id.to_string(),
                notification_ids: events::ids(&push.notification_ids),
                attempts,
                delivered_at: Some(messenger_platform::wire::timestamp(
                    time::OffsetDateTime::now_utc(),
                )),
            };
            events::publish(tx, user, Payload::PushDelivered(delivered)).await?;
            "delivered"
        }
        Next::Gone => {
            expire(tx, push).await?;
            "gone"
        }
        Next::RetryIn(wait, reason) => {
            deliveries::retry_later(tx, push, wait, &reason).await?;
            "retry"
        }
        Next::Read => {
            if !deliveries::finish(tx, push, "superseded", "read").await? {
                return Ok("lease_lost");
            }
            let skipped = pb::PushSkipped {
                user_id: user.to_string(),
                channel_id: push.channel_id.to_string(),
                notification_ids: events::ids(&push.notification_ids),
                reason: "read".to_owned(),
            };
            events::publish(tx, user, Payload::PushSkipped(skipped)).await?;
            "read"
        }
        Next::Failed(reason) => {
            if !deliveries::finish(tx, push, "failed", &reason).await? {
                return Ok("lease_lost");
            }
            let failed = pb::PushFailed {
                user_id: user.to_string(),
                subscription_id: push.subscription_id.to_string(),
                channel_id: push.channel_id.to_string(),
                notification_ids: events::ids(&push.notification_ids),
                reason,
                attempts,
            };
            events::publish(tx, user, Payload::PushFailed(failed)).await?;
            if subscriptions::note_failure(tx, push.subscription_id).await? >= FAILURES_TO_EXPIRE {
                expire(tx, push).await?;
            }
            "failed"
        }
    };
    Ok(label)
}

/// Deletes the subscription and says so on `notifier.events.v1`.
async fn expire(tx: &mut sqlx::PgConnection, push: &Leased) -> sqlx::Result<()> {
    if subscriptions::expire(tx, push.subscription_id)
        .await?
        .is_some()
    {
        let expired = pb::SubscriptionExpired {
            user_id: push.user_id.to_string(),
            subscription_id: push.subscription_id.to_string(),
        };
        events::publish(tx, push.user_id, Payload::SubscriptionExpired(expired)).await?;
    }
    Ok(())
}

async fn attempt(sender: &Sender, push: &Leased, payload: &[u8]) -> Next {
    let subscription = Subscription {
        endpoint: push.endpoint.clone(),
        p256dh: push.p256dh.clone(),
        auth: push.auth.clone(),
    };
    let started = Instant::now();
    let sent = sender
        .web_push
        .send(
            &subscription,
            &Push {
                payload,
                ttl: sender.ttl,
                urgency: if push.urgency == "high" {
                    Urgency::High
                } else {
                    Urgency::Normal
                },
                topic: Some(&push.topic),
            },
        )
        .await;
    metrics::histogram!("notifier_push_request_seconds").record(started.elapsed().as_secs_f64());
    let backoff = backoff(push.attempts);
    match sent {
        Ok(Outcome::Accepted) => Next::Delivered,
        Ok(Outcome::Gone) => Next::Gone,
        Ok(Outcome::Retry(after)) => Next::RetryIn(
            after.map_or(backoff, |after| after.max(backoff)),
            "the push service asked to retry".to_owned(),
        ),
        Ok(Outcome::Rejected(status)) => {
            Next::Failed(format!("the push service refused it ({status})"))
        }
        Err(PushError::Egress(err @ (EgressError::Timeout | EgressError::Unreachable(_)))) => {
            Next::RetryIn(backoff, err.to_string())
        }
        // The endpoint is (now) somewhere we never send: its name
        // resolves to a forbidden address, or it is not a usable URL.
        // Every later push would fail the same way.
        Err(PushError::Egress(EgressError::Refused { .. } | EgressError::BadTarget(_)))
        | Err(PushError::Subscription(_)) => Next::Gone,
        Err(err) => Next::Failed(err.to_string()),
    }
}

/// 2 s after the first attempt, doubling, at most an hour.
fn backoff(attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    FIRST_RETRY
        .saturating_mul(1 << doublings)
        .min(LONGEST_RETRY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(5), Duration::from_secs(32));
        assert_eq!(backoff(40), LONGEST_RETRY);
        assert_eq!(backoff(0), Duration::from_secs(2));
    }
}
