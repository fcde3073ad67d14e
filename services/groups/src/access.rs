//! Authorization of actions in a conversation: the facts about a user in a
//! channel or group, and the one decision function every caller shares.

use crate::permissions::{self, Action, Denied, Role};
use crate::repo::AccessRow;
use time::OffsetDateTime;
use uuid::Uuid;

/// What a user is in one conversation. Small and cheap to cache.
#[derive(Clone, Debug, PartialEq)]
pub struct Facts {
    pub group_id: Uuid,
    /// `None` when the conversation id named a group.
    pub channel_id: Option<Uuid>,
    pub direct: bool,
    pub group_public: bool,
    pub channel_private: bool,
    pub broadcast: bool,
    pub role: Option<Role>,
    pub channel_member: bool,
    pub muted_until: Option<OffsetDateTime>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    NotFound,
    NotMember,
    RoleTooLow,
    TargetRank,
    Muted,
    BroadcastOnly,
    Direct,
}

impl From<Denied> for Denial {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::RoleTooLow | Denied::RoleNotGrantable => Denial::RoleTooLow,
            Denied::TargetRankTooHigh => Denial::TargetRank,
        }
    }
}

impl From<AccessRow> for Facts {
    fn from(row: AccessRow) -> Self {
        Facts {
            group_id: row.group_id,
            channel_id: row.channel_id,
            direct: row.kind == "direct",
            group_public: row.group_visibility == "public",
            channel_private: row.channel_visibility.as_deref() == Some("private"),
            broadcast: row.broadcast.unwrap_or(false),
            role: row.role.as_deref().and_then(Role::parse),
            channel_member: row.channel_member,
            muted_until: row.muted_until,
        }
    }
}

/// Actions on messages, which need read access to the channel itself.
fn is_message_action(action: Action) -> bool {
    matches!(
        action,
        Action::ReadMessages
            | Action::PostMessage
            | Action::React
            | Action::PostInBroadcast
            | Action::DeleteOthersMessage
    )
}

impl Facts {
    /// Whether the user may know this conversation exists.
    pub fn visible(&self) -> bool {
        match self.role {
            None => self.group_public && !self.channel_private,
            Some(_) => !self.channel_private || self.channel_member,
        }
    }

    pub fn muted_at(&self, now: OffsetDateTime) -> bool {
        self.muted_until.is_some_and(|until| until > now)
    }

    /// May this user take `action`? `target` is the role of the member the
    /// action is aimed at (`None` when they are not a member: the lowest rank).
    pub fn decide(
        &self,
        action: Action,
        target: Option<Role>,
        now: OffsetDateTime,
    ) -> Result<Role, Denial> {
        let Some(role) = self.role else {
            return Err(if self.visible() {
                Denial::NotMember
            } else {
                Denial::NotFound
            });
        };
        // Admins manage private channels they are not in, but only the
        // channel's members see its messages.
        if self.channel_private && !self.channel_member && is_message_action(action) {
            return Err(Denial::NotFound);
        }
        if self.direct
            && !matches!(
                action,
                Action::ReadMessages | Action::PostMessage | Action::React
            )
        {
            return Err(Denial::Direct);
        }
        if matches!(action, Action::PostMessage | Action::React) && self.muted_at(now) {
            return Err(Denial::Muted);
        }
        if action == Action::PostMessage && self.broadcast {
            permissions::check(role, Action::PostInBroadcast, None)
                .map_err(|_| Denial::BroadcastOnly)?;
        }
        let target = action
            .has_target()
            .then_some(target.unwrap_or(Role::Member));
        permissions::check(role, action, target)?;
        Ok(role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(role: Option<Role>) -> Facts {
        Facts {
            group_id: Uuid::nil(),
            channel_id: Some(Uuid::nil()),
            direct: false,
            group_public: false,
            channel_private: false,
            broadcast: false,
            role,
            channel_member: false,
            muted_until: None,
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[test]
    fn outsiders_of_private_groups_see_nothing() {
        let private = facts(None);
        for action in Action::ALL {
            assert_eq!(private.decide(action, None, now()), Err(Denial::NotFound));
        }
        let public = Facts {
            group_public: true,
            ..facts(None)
        };
        assert_eq!(
            public.decide(Action::ReadMessages, None, now()),
            Err(Denial::NotMember)
        );
        let public_but_private_channel = Facts {
            channel_private: true,
            ..public
        };
        assert_eq!(
            public_but_private_channel.decide(Action::ReadMessages, None, now()),
            Err(Denial::NotFound)
        );
    }

    #[test]
    fn members_follow_the_matrix() {
        for role in Role::ALL {
            for action in Action::ALL {
                let expected =
                    permissions::check(role, action, action.has_target().then_some(Role::Member));
                let got = facts(Some(role)).decide(action, None, now());
                assert_eq!(got.is_ok(), expected.is_ok(), "{role:?} {action:?}");
            }
        }
    }

    #[test]
    fn private_channels_hide_messages_from_non_members() {
        let admin_outside = Facts {
            channel_private: true,
            ..facts(Some(Role::Admin))
        };
        assert_eq!(
            admin_outside.decide(Action::ReadMessages, None, now()),
            Err(Denial::NotFound)
        );
        assert_eq!(
            admin_outside.decide(Action::ManageChannels, None, now()),
            Ok(Role::Admin)
        );
        let inside = Facts {
            channel_member: true,
            ..admin_outside
        };
        assert_eq!(
            inside.decide(Action::ReadMessages, None, now()),
            Ok(Role::Admin)
        );
    }

    #[test]
    fn muted_members_read_but_do_not_post() {
        let muted = Facts {
            muted_until: Some(now() + time::Duration::minutes(5)),
            ..facts(Some(Role::Member))
        };
        assert_eq!(
            muted.decide(Action::PostMessage, None, now()),
            Err(Denial::Muted)
        );
        assert_eq!(muted.decide(Action::React, None, now()), Err(Denial::Muted));
        assert!(muted.decide(Action::ReadMessages, None, now()).is_ok());
        let expired = Facts {
            muted_until: Some(now() - time::Duration::minutes(5)),
            ..muted
        };
        assert!(expired.decide(Action::PostMessage, None, now()).is_ok());
    }

    #[test]
    fn broadcast_channels_take_posts_from_admins_only() {
        for role in Role::ALL {
            let channel = Facts {
                broadcast: true,
                ..facts(Some(role))
            };
            let got = channel.decide(Action::PostMessage, None, now());
            if role >= Role::Admin {
                assert_eq!(got, Ok(role));
            } else {
                assert_eq!(got, Err(Denial::BroadcastOnly));
                assert!(channel.decide(Action::React, None, now()).is_ok());
            }
        }
    }

    #[test]
    fn direct_conversations_only_talk() {
        let direct = Facts {
            direct: true,
            ..facts(Some(Role::Member))
        };
        for action in Action::ALL {
            let allowed = matches!(
                action,
                Action::ReadMessages | Action::PostMessage | Action::React
            );
            assert_eq!(
                direct.decide(action, None, now()).is_ok(),
                allowed,
                "{action:?}"
            );
        }
    }

    #[test]
    fn targets_of_equal_rank_are_protected() {
        let moderator = facts(Some(Role::Moderator));
        assert_eq!(
            moderator.decide(Action::DeleteOthersMessage, Some(Role::Admin), now()),
            Err(Denial::TargetRank)
        );
        // A former member ranks lowest.
        assert!(
            moderator
                .decide(Action::DeleteOthersMessage, None, now())
                .is_ok()
        );
    }
}
