//! Who may do what in a group: the one place the permission matrix lives.
//!
//! Ranks: owner > admin > moderator > member. Actions on another member
//! (kick, mute, ban, deleting their messages, changing their role) also need
//! a target of strictly lower rank; the owner outranks everyone.

/// A member's role in a group. Ordered by rank.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Member,
    Moderator,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Moderator, Role::Member];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Moderator => "moderator",
            Role::Member => "member",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == raw)
    }
}

/// Something a member may try to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    ReadMessages,
    PostMessage,
    React,
    /// Posting in an announcement (broadcast) channel.
    PostInBroadcast,
    UpdateGroup,
    DeleteGroup,
    TransferOwnership,
    ManageChannels,
    Invite,
    /// Actions on another member: their rank must be below the actor's.
    DeleteOthersMessage,
    Mute,
    Kick,
    Ban,
    Unban,
    SetRole,
}

impl Action {
    pub const ALL: [Action; 15] = [
        Action::ReadMessages,
        Action::PostMessage,
        Action::React,
        Action::PostInBroadcast,
        Action::UpdateGroup,
        Action::DeleteGroup,
        Action::TransferOwnership,
        Action::ManageChannels,
        Action::Invite,
        Action::DeleteOthersMessage,
        Action::Mute,
        Action::Kick,
        Action::Ban,
        Action::Unban,
        Action::SetRole,
    ];

    /// Whether the action is aimed at another member.
    pub fn has_target(self) -> bool {
        matches!(
            self,
            Action::DeleteOthersMessage
                | Action::Mute
                | Action::Kick
                | Action::Ban
                | Action::Unban
                | Action::SetRole
        )
    }

    /// The lowest role allowed to take the action at all.
    fn minimum_role(self) -> Role {
        match self {
            Action::ReadMessages | Action::PostMessage | Action::React => Role::Member,
            Action::DeleteOthersMessage | Action::Mute | Action::Kick => Role::Moderator,
            Action::PostInBroadcast
            | Action::UpdateGroup
            | Action::ManageChannels
            | Action::Invite
            | Action::Ban
            | Action::Unban
            | Action::SetRole => Role::Admin,
            Action::DeleteGroup | Action::TransferOwnership => Role::Owner,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("your role does not allow this")]
    RoleTooLow,
    #[error("you cannot act on a member of equal or higher rank")]
    TargetRankTooHigh,
    #[error("this role cannot be granted this way")]
    RoleNotGrantable,
}

/// May `actor` take `action` (on a member whose role is `target`, for the
/// actions that have one)?
pub fn check(actor: Role, action: Action, target: Option<Role>) -> Result<(), Denied> {
    if actor < action.minimum_role() {
        return Err(Denied::RoleTooLow);
    }
    match target {
        Some(target) if action.has_target() && target >= actor => Err(Denied::TargetRankTooHigh),
        _ => Ok(()),
    }
}

/// May `actor` change a member's role from `current` to `new`? Ownership
/// moves only through TransferOwnership; admins grant roles below admin.
pub fn check_set_role(actor: Role, current: Role, new: Role) -> Result<(), Denied> {
    check(actor, Action::SetRole, Some(current))?;
    if new == Role::Owner || new >= actor {
        return Err(Denied::RoleNotGrantable);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Action::*;
    use super::Role::*;
    use super::*;

    /// The matrix, spelled out: actor role → actions it may take at all.
    fn allowed_actions(role: Role) -> &'static [Action] {
        match role {
            Owner => &Action::ALL,
            Admin => &[
                ReadMessages,
                PostMessage,
                React,
                PostInBroadcast,
                UpdateGroup,
                ManageChannels,
                Invite,
                DeleteOthersMessage,
                Mute,
                Kick,
                Ban,
                Unban,
                SetRole,
            ],
            Moderator => &[
                ReadMessages,
                PostMessage,
                React,
                DeleteOthersMessage,
                Mute,
                Kick,
            ],
            Member => &[ReadMessages, PostMessage, React],
        }
    }

    #[test]
    fn every_role_and_action() {
        for role in Role::ALL {
            for action in Action::ALL {
                let expected = allowed_actions(role).contains(&action);
                // Against the lowest-ranked target, only the role matters.
                let target = action.has_target().then_some(Member);
                let got = check(role, action, target);
                assert_eq!(got.is_ok(), expected, "{role:?} {action:?}: {got:?}");
            }
        }
    }

    #[test]
    fn targeted_actions_need_a_lower_ranked_target() {
        for actor in Role::ALL {
            for action in Action::ALL.into_iter().filter(|a| a.has_target()) {
                for target in Role::ALL {
                    let got = check(actor, action, Some(target));
                    let expected = allowed_actions(actor).contains(&action) && target < actor;
                    assert_eq!(
                        got.is_ok(),
                        expected,
                        "{actor:?} {action:?} on {target:?}: {got:?}"
                    );
                }
            }
        }
        // The owner acts on admins; moderators never act on admins.
        assert_eq!(check(Owner, Kick, Some(Admin)), Ok(()));
        assert_eq!(
            check(Moderator, Kick, Some(Admin)),
            Err(Denied::TargetRankTooHigh)
        );
        assert_eq!(
            check(Admin, Ban, Some(Admin)),
            Err(Denied::TargetRankTooHigh)
        );
    }

    #[test]
    fn role_changes() {
        assert_eq!(check_set_role(Owner, Member, Admin), Ok(()));
        assert_eq!(check_set_role(Owner, Admin, Member), Ok(()));
        assert_eq!(
            check_set_role(Owner, Member, Owner),
            Err(Denied::RoleNotGrantable)
        );
        assert_eq!(check_set_role(Admin, Member, Moderator), Ok(()));
        assert_eq!(check_set_role(Admin, Moderator, Member), Ok(()));
        assert_eq!(
            check_set_role(Admin, Member, Admin),
            Err(Denied::RoleNotGrantable)
        );
        assert_eq!(
            check_set_role(Admin, Admin, Member),
            Err(Denied::TargetRankTooHigh)
        );
        assert_eq!(
            check_set_role(Moderator, Member, Moderator),
            Err(Denied::RoleTooLow)
        );
        assert_eq!(
            check_set_role(Member, Member, Member),
            Err(Denied::RoleTooLow)
        );
    }

    #[test]
    fn roles_parse_and_print() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("superuser"), None);
    }
}
