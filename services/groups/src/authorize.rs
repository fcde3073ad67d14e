//! The hot-path check: may user U take action A in conversation C? Facts
//! come from the Redis cache when it has them under the group's current
//! generation, from Postgres otherwise.

use crate::access::{Denial, Facts};
use crate::cache::Lookup;
use crate::domain::UserId;
use crate::error::{Error, Result};
use crate::groups::Groups;
use crate::permissions::{Action, Role};
use crate::repo;
use time::OffsetDateTime;
use uuid::Uuid;

pub struct Decision {
    /// `None` when the conversation does not exist.
    pub facts: Option<Facts>,
    pub outcome: Result<Role, Denial>,
}

/// Most conversations one ListReadableConversations call may filter by.
pub const MAX_FILTER: usize = 1000;

impl Groups {
    pub async fn authorize(
        &self,
        user: UserId,
        conversation: Uuid,
        action: Action,
        target: Option<UserId>,
    ) -> Result<Decision> {
        let mut users = vec![user.0];
        users.extend(target.map(|target| target.0));
        let facts = self.facts(conversation, &users).await?;
        let mut facts = facts.into_iter();
        let Some(Some(mine)) = facts.next() else {
            return Ok(Decision {
                facts: None,
                outcome: Err(Denial::NotFound),
            });
        };
        let target_role = facts.next().flatten().and_then(|facts| facts.role);
        let outcome = mine.decide(action, target_role, OffsetDateTime::now_utc());
        Ok(Decision {
            facts: Some(mine),
            outcome,
        })
    }

    /// The facts of each of `users` in the conversation (`None` when it does
    /// not exist).
    async fn facts(&self, conversation: Uuid, users: &[Uuid]) -> Result<Vec<Option<Facts>>> {
        let lookup = self.cache.lookup(conversation, users).await;
        let (generation, cached) = match lookup {
            Lookup::Known { generation, facts } => (Some(generation), facts),
            Lookup::Unknown => (None, vec![None; users.len()]),
        };
        let mut out = Vec::with_capacity(users.len());
        let mut conn = None;
        for (user, cached) in users.iter().zip(cached) {
            if let Some(facts) = cached {
                metrics::counter!("groups_authz_cache_total", "result" => "hit").increment(1);
                out.push(Some(facts));
                continue;
            }
            metrics::counter!("groups_authz_cache_total", "result" => "miss").increment(1);
            let conn = match &mut conn {
                Some(conn) => conn,
                None => conn.insert(self.pool.acquire().await?),
            };
            let facts = repo::access(conn, conversation, *user)
                .await?
                .map(Facts::from);
            if let Some(facts) = &facts {
                match &generation {
                    Some(generation) => {
                        self.cache
                            .store(conversation, *user, generation, facts)
                            .await
                    }
                    // Without a generation read before Postgres, storing
                    // could race with a change: remember only the group.
                    None => self.cache.store_group(conversation, facts.group_id).await,
                }
            }
            out.push(facts);
        }
        Ok(out)
    }

    /// Channels `user` may read, optionally only among `among`.
    pub async fn readable(&self, user: UserId, among: &[Uuid]) -> Result<Vec<repo::ReadableRow>> {
        if among.len() > MAX_FILTER {
            return Err(Error::invalid(
                "conversation_ids",
                format!("at most {MAX_FILTER} per call"),
            ));
        }
        let mut conn = self.pool.acquire().await?;
        Ok(repo::readable(&mut conn, user.0, among).await?)
    }
}
