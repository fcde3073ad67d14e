//! Direct conversations: 2 to 10 people, one channel, no roles beyond
//! membership, found again (not duplicated) when opened twice.

use crate::domain::{GroupId, UserId};
use crate::error::{Error, Result};
use crate::events;
use crate::groups::{Groups, insert_default_channel};
use crate::permissions::Role;
use crate::repo::{self, ChannelRow, GroupRow, NewGroup};
use messenger_proto::groups::v1 as pb;
use pb::groups_event::Payload;
use uuid::Uuid;

/// Most people in one direct conversation, the opener included.
const MAX_PARTICIPANTS: usize = 10;

pub struct Direct {
    pub group: GroupRow,
    pub channel: ChannelRow,
    pub participants: Vec<UserId>,
    pub created: bool,
}

/// Everyone in the conversation, sorted and without repeats.
pub fn participants(actor: UserId, others: &[UserId]) -> Result<Vec<UserId>> {
    let mut all: Vec<UserId> = others.to_vec();
    all.push(actor);
    all.sort();
    all.dedup();
    if all.len() < 2 {
        return Err(Error::invalid("user_ids", "name at least one other user"));
    }
    if all.len() > MAX_PARTICIPANTS {
        return Err(Error::invalid(
            "user_ids",
            format!("a direct conversation has at most {MAX_PARTICIPANTS} people"),
        ));
    }
    Ok(all)
}

impl Groups {
    pub async fn open_direct(&self, actor: UserId, others: &[UserId]) -> Result<Direct> {
        let participants = participants(actor, others)?;
        let key = participants
            .iter()
            .map(UserId::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let id = GroupId(Uuid::now_v7());
        let mut tx = self.pool.begin().await?;
        let created = repo::insert_group(
            &mut tx,
            NewGroup {
                id: id.0,
                kind: "direct",
                name: "direct",
                description: "",
                avatar_media_id: None,
                visibility: "private",
                direct_key: Some(&key),
                created_by: actor.0,
            },
        )
        .await?;
        if !created {
            // Opened before (perhaps concurrently: the insert waited for that
            // transaction and then found its row).
            tx.rollback().await?;
            let mut conn = self.pool.acquire().await?;
            let existing = repo::direct_by_key(&mut conn, &key)
                .await?
                .ok_or(Error::NotFound("direct conversation"))?;
            return self
                .load_direct(&mut conn, actor, existing, participants, false)
                .await;
        }
        for user in &participants {
            repo::insert_member(&mut tx, id.0, user.0, Role::Member.as_str()).await?;
        }
        insert_default_channel(&mut tx, id, actor).await?;
        let direct = self
            .load_direct(&mut tx, actor, id.0, participants, true)
            .await?;
        let payload = Payload::DirectOpened(pb::DirectOpened {
            group: Some(pb::Group {
                my_role: 0,
                ..direct.group.clone().into()
            }),
            channel: Some(direct.channel.clone().into()),
            participant_ids: direct.participants.iter().map(UserId::to_string).collect(),
        });
        events::publish(&mut tx, id, actor, payload).await?;
        self.commit(tx, id).await?;
        Ok(direct)
    }

    async fn load_direct(
        &self,
        conn: &mut sqlx::PgConnection,
        actor: UserId,
        id: Uuid,
        participants: Vec<UserId>,
        created: bool,
    ) -> Result<Direct> {
        let group = repo::group(conn, actor.0, id)
            .await?
            .ok_or(Error::NotFound("direct conversation"))?;
        let channel_id = group
            .default_channel_id
            .ok_or(Error::NotFound("direct conversation"))?;
        let channel = repo::channel(conn, channel_id)
            .await?
            .ok_or(Error::NotFound("direct conversation"))?;
        Ok(Direct {
            group,
            channel,
            participants,
            created,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u128) -> UserId {
        UserId(Uuid::from_u128(n))
    }

    #[test]
    fn the_same_people_make_the_same_conversation() {
        let a = participants(user(1), &[user(3), user(2), user(3)]).unwrap();
        let b = participants(user(2), &[user(1), user(3)]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 3);
    }

    #[test]
    fn size_limits() {
        assert!(participants(user(1), &[]).is_err());
        assert!(participants(user(1), &[user(1)]).is_err());
        let nine: Vec<_> = (2..=10).map(user).collect();
        assert!(participants(user(1), &nine).is_ok());
        let ten: Vec<_> = (2..=11).map(user).collect();
        assert!(participants(user(1), &ten).is_err());
    }
}
