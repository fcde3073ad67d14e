//! The facts an authorization decision needs, in one round trip.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq)]
pub struct AccessRow {
    pub group_id: Uuid,
    pub channel_id: Option<Uuid>,
    pub kind: String,
    pub group_visibility: String,
    pub channel_visibility: Option<String>,
    pub broadcast: Option<bool>,
    pub role: Option<String>,
    pub muted_until: Option<OffsetDateTime>,
    pub channel_member: bool,
}

/// What `user` is in `conversation` (a channel id or a group id); `None`
/// when neither exists.
pub async fn access(
    conn: &mut PgConnection,
    conversation: Uuid,
    user: Uuid,
) -> sqlx::Result<Option<AccessRow>> {
    sqlx::query_as!(
        AccessRow,
        r#"SELECT g.id AS group_id, c.id AS "channel_id?", g.kind, g.visibility AS group_visibility,
                  c.visibility AS "channel_visibility?", c.broadcast AS "broadcast?",
                  m.role AS "role?", m.muted_until AS "muted_until?",
                  EXISTS (SELECT 1 FROM channel_members cm
                          WHERE cm.channel_id = c.id AND cm.user_id = $2) AS "channel_member!"
           FROM (SELECT $1::uuid AS id) wanted
           LEFT JOIN channels c ON c.id = wanted.id
           JOIN groups g ON g.id = COALESCE(c.group_id, wanted.id)
           LEFT JOIN group_members m ON m.group_id = g.id AND m.user_id = $2"#,
        conversation,
        user,
    )
    .fetch_optional(conn)
    .await
}

pub struct ReadableRow {
    pub group_id: Uuid,
    pub channel_id: Uuid,
    pub kind: String,
}

/// Every channel `user` may read; only those in `among` when it is not empty.
pub async fn readable(
    conn: &mut PgConnection,
    user: Uuid,
    among: &[Uuid],
) -> sqlx::Result<Vec<ReadableRow>> {
    sqlx::query_as!(
        ReadableRow,
        "SELECT c.group_id, c.id AS channel_id, g.kind \
         FROM group_members m \
         JOIN groups g ON g.id = m.group_id \
         JOIN channels c ON c.group_id = m.group_id \
         WHERE m.user_id = $1 \
           AND (cardinality($2::uuid[]) = 0 OR c.id = ANY($2)) \
           AND (c.visibility = 'public' OR EXISTS \
                (SELECT 1 FROM channel_members cm WHERE cm.channel_id = c.id AND cm.user_id = $1)) \
         ORDER BY c.group_id, c.id",
        user,
        among,
    )
    .fetch_all(conn)
    .await
}
