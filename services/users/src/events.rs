//! Domain events of the users service, written to the outbox.

use crate::repo::UserRow;
use messenger_platform::outbox::{self, DomainEvent};
use messenger_proto::users::v1::{UserEvent, UserProfileUpdated, UserRegistered, user_event};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

pub async fn user_registered(conn: &mut PgConnection, user: &UserRow) -> sqlx::Result<()> {
    let payload = user_event::Payload::UserRegistered(UserRegistered {
        user_id: user.id.to_string(),
        username: user.username.clone(),
        display_name: user.display_name.clone(),
    });
    publish(conn, user.id, user.created_at, payload).await
}

pub async fn profile_updated(conn: &mut PgConnection, user: &UserRow) -> sqlx::Result<()> {
    let payload = user_event::Payload::UserProfileUpdated(UserProfileUpdated {
        user_id: user.id.to_string(),
        display_name: user.display_name.clone(),
        bio: user.bio.clone(),
        avatar_media_id: user
            .avatar_media_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
    });
    publish(conn, user.id, user.updated_at, payload).await
}

async fn publish(
    conn: &mut PgConnection,
    user_id: Uuid,
    occurred_at: OffsetDateTime,
    payload: user_event::Payload,
) -> sqlx::Result<()> {
    let envelope = DomainEvent {
        topic: user_event::Payload::TOPIC.name(),
        aggregate_id: user_id.to_string(),
        event_type: payload.event_type(),
        occurred_at,
    };
    outbox::enqueue_domain_event(conn, envelope, |meta| UserEvent {
        meta: Some(meta),
        payload: Some(payload),
    })
    .await
}
