//! Who may call what inside the fleet: one table for every gRPC method the
//! services serve, enforced by each server on the identity in the caller's
//! client certificate (see [`crate::mtls`]). A method missing from the table
//! is refused, so a new method is closed until someone decides who needs it.
//!
//! The table follows the calls the code makes: the gateway is the only
//! service facing users, so it alone signs people up and in; the messages
//! service asks groups whether a user may act and asks media whether a file
//! may be attached; the media service asks messages whether a reader may see
//! an attachment, and which uploads a message carries before its sweeper
//! deletes unattached ones. Nothing calls the users service but the gateway and the
//! messages service (to resolve @mentions), nothing calls the notifier but
//! the gateway (for the user's own devices and settings: the notifier learns
//! everything else from events), and nothing calls the gateway.

use std::fmt;

/// An identity the fleet's certificate authority issues: the services, and
/// `operator` for people running `grpcurl` (reflection and `Info` only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Caller {
    Users,
    Groups,
    Messages,
    Media,
    Notifier,
    Gateway,
    Operator,
}

impl Caller {
    pub const ALL: [Caller; 7] = [
        Caller::Users,
        Caller::Groups,
        Caller::Messages,
        Caller::Media,
        Caller::Notifier,
        Caller::Gateway,
        Caller::Operator,
    ];

    /// The name in its certificate (`<name>.<domain>`) and its Vault PKI role.
    pub fn name(self) -> &'static str {
        match self {
            Caller::Users => "users",
            Caller::Groups => "groups",
            Caller::Messages => "messages",
            Caller::Media => "media",
            Caller::Notifier => "notifier",
            Caller::Gateway => "gateway",
            Caller::Operator => "operator",
        }
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whom a method admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admits {
    /// Any caller, with or without a certificate: the health service, which
    /// Kubernetes' gRPC probes and container health checks call bare. It
    /// tells whether the service serves, nothing else.
    Anyone,
    /// Any holder of a certificate from the fleet's CA (reflection: it
    /// describes the contracts, which are public in `proto/`).
    AnyIdentity,
    /// Only these callers.
    Only(&'static [Caller]),
}

/// Whether a method acts for a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The caller forwards the user's access token, the server verifies it
    /// (see [`crate::identity`]) and takes the acting user from it.
    User,
    /// No user: signing in (the credential is in the request), health,
    /// reflection, the public signing keys, version info.
    NoUser,
    /// As `User`, but these callers may also call it without a user token
    /// for work of their own: the gateway's presence sweeper lists the
    /// groups of a user whose gateway died (the gateway receives every
    /// group's events anyway, as the fleet's fan-out).
    UserOrOwnWork(&'static [Caller]),
}

use Caller::{Gateway, Media, Messages, Operator};
const USER: Scope = Scope::User;
const NO_USER: Scope = Scope::NoUser;

const GATEWAY: Admits = Admits::Only(&[Gateway]);
const INFO: Admits = Admits::Only(&[Gateway, Operator]);

/// Every method served in the fleet, by full gRPC path.
pub const RULES: &[(&str, Admits, Scope)] = &[
    ("/grpc.health.v1.Health/Check", Admits::Anyone, NO_USER),
    ("/grpc.health.v1.Health/Watch", Admits::Anyone, NO_USER),
    (
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        Admits::AnyIdentity,
        NO_USER,
    ),
    (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        Admits::AnyIdentity,
        NO_USER,
    ),
    // users
    (
        "/messenger.users.v1.UsersService/Register",
        GATEWAY,
        NO_USER,
    ),
    ("/messenger.users.v1.UsersService/GetUser", GATEWAY, USER),
    ("/messenger.users.v1.UsersService/GetUsers", GATEWAY, USER),
    (
        "/messenger.users.v1.UsersService/ResolveUsernames",
        Admits::Only(&[Gateway, Messages]),
        USER,
    ),
    (
        "/messenger.users.v1.UsersService/SearchUsers",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.users.v1.UsersService/UpdateProfile",
        GATEWAY,
        USER,
    ),
    ("/messenger.users.v1.UsersService/SignUp", GATEWAY, NO_USER),
    ("/messenger.users.v1.UsersService/SignIn", GATEWAY, NO_USER),
    (
        "/messenger.users.v1.UsersService/RefreshSession",
        GATEWAY,
        NO_USER,
    ),
    (
        "/messenger.users.v1.UsersService/RevokeSession",
        GATEWAY,
        NO_USER,
    ),
    (
        "/messenger.users.v1.UsersService/GetSigningKeys",
        Admits::AnyIdentity,
        NO_USER,
    ),
    // groups
    ("/messenger.groups.v1.GroupsService/Info", INFO, NO_USER),
    (
        "/messenger.groups.v1.GroupsService/CreateGroup",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/GetGroup",
        Admits::Only(&[Gateway, Messages]),
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/UpdateGroup",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/DeleteGroup",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/ListMyGroups",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/SearchPublicGroups",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/JoinGroup",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/InviteMember",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/LeaveGroup",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/KickMember",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/BanMember",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/UnbanMember",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/MuteMember",
        GATEWAY,
        USER,
    ),
    ("/messenger.groups.v1.GroupsService/SetRole", GATEWAY, USER),
    (
        "/messenger.groups.v1.GroupsService/TransferOwnership",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/ListMembers",
        Admits::Only(&[Gateway, Messages]),
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/CreateChannel",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/GetChannel",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/UpdateChannel",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/DeleteChannel",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/ListChannels",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/JoinChannel",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/LeaveChannel",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/AddChannelMember",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/RemoveChannelMember",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/ListChannelMembers",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/OpenDirect",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/Authorize",
        Admits::Only(&[Gateway, Messages]),
        USER,
    ),
    (
        "/messenger.groups.v1.GroupsService/ListReadableConversations",
        Admits::Only(&[Gateway, Messages]),
        Scope::UserOrOwnWork(&[Gateway]),
    ),
    // messages
    ("/messenger.messages.v1.MessagesService/Info", INFO, NO_USER),
    (
        "/messenger.messages.v1.MessagesService/SendMessage",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.messages.v1.MessagesService/GetMessage",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.messages.v1.MessagesService/EditMessage",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.messages.v1.MessagesService/DeleteMessage",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.messages.v1.MessagesService/ListEditHistory",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.messages.v1.MessagesService/ListMessages",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.messages.v1.MessagesService/ListGroupMessages",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.messages.v1.MessagesService/ListThread",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.messages.v1.MessagesService/AddReaction",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.messages.v1.MessagesService/RemoveReaction",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.messages.v1.MessagesService/MarkRead",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.messages.v1.MessagesService/ListUnread",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.messages.v1.MessagesService/ListReaders",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.messages.v1.MessagesService/ListNotifications",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.messages.v1.MessagesService/MarkNotificationsRead",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.messages.v1.MessagesService/SearchMessages",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.messages.v1.MessagesService/MediaAccess",
        Admits::Only(&[Media]),
        USER,
    ),
    (
        "/messenger.messages.v1.MessagesService/ListAttachedMedia",
        Admits::Only(&[Media]),
        NO_USER,
    ),
    // media
    ("/messenger.media.v1.MediaService/Info", INFO, NO_USER),
    ("/messenger.media.v1.MediaService/Upload", GATEWAY, USER),
    ("/messenger.media.v1.MediaService/GetMedia", GATEWAY, USER),
    ("/messenger.media.v1.MediaService/Download", GATEWAY, USER),
    (
        "/messenger.media.v1.MediaService/DeleteMedia",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.media.v1.MediaService/CheckAttachable",
        Admits::Only(&[Messages]),
        USER,
    ),
    ("/messenger.media.v1.MediaService/ClaimMedia", GATEWAY, USER),
    // notifier: only the gateway calls it, for the user in the token.
    ("/messenger.notifier.v1.NotifierService/Info", INFO, NO_USER),
    (
        "/messenger.notifier.v1.NotifierService/GetVapidKey",
        GATEWAY,
        NO_USER,
    ),
    (
        "/messenger.notifier.v1.NotifierService/RegisterSubscription",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.notifier.v1.NotifierService/ListSubscriptions",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.notifier.v1.NotifierService/DeleteSubscription",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.notifier.v1.NotifierService/GetSettings",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.notifier.v1.NotifierService/UpdateSettings",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.notifier.v1.NotifierService/GetChannelSettings",
        GATEWAY,
        USER,
    ),
    (
        "/messenger.notifier.v1.NotifierService/UpdateChannelSettings",
        GATEWAY,
        USER,
    ),
];

/// Why a call was refused at the door.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{method} needs a client certificate from the fleet's CA")]
    NoCertificate { method: String },
    #[error("{caller} may not call {method}")]
    NotAllowed { caller: Caller, method: String },
    #[error("{method} is not a method of this fleet")]
    UnknownMethod { method: String },
}

impl Refusal {
    pub fn status(&self) -> tonic::Status {
        match self {
            Refusal::NoCertificate { .. } => tonic::Status::unauthenticated(self.to_string()),
            Refusal::NotAllowed { .. } => tonic::Status::permission_denied(self.to_string()),
            // Every method of the contracts is in the table (a unit test
            // checks), so a path missing from it names no method at all.
            Refusal::UnknownMethod { .. } => tonic::Status::unimplemented(self.to_string()),
        }
    }
}

/// Whom `method` admits; `None` for a method not in the table.
pub fn admits(method: &str) -> Option<Admits> {
    rule(method).map(|(admits, _)| admits)
}

/// Whether `method` acts for a user (unknown methods are refused before
/// this is asked).
pub fn scope(method: &str) -> Option<Scope> {
    rule(method).map(|(_, scope)| scope)
}

fn rule(method: &str) -> Option<(Admits, Scope)> {
    RULES
        .iter()
        .find(|(path, _, _)| *path == method)
        .map(|(_, admits, scope)| (*admits, *scope))
}

/// Decides whether `caller` (the identity in its certificate, `None`
/// without one) may call `method`.
pub fn check(method: &str, caller: Option<Caller>) -> Result<(), Refusal> {
    let refuse_unknown = || Refusal::UnknownMethod {
        method: method.to_owned(),
    };
    match (admits(method).ok_or_else(refuse_unknown)?, caller) {
        (Admits::Anyone, _) => Ok(()),
        (_, None) => Err(Refusal::NoCertificate {
            method: method.to_owned(),
        }),
        (Admits::AnyIdentity, Some(_)) => Ok(()),
        (Admits::Only(allowed), Some(caller)) if allowed.contains(&caller) => Ok(()),
        (Admits::Only(_), Some(caller)) => Err(Refusal::NotAllowed {
            caller,
            method: method.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_each_method_once() {
        let mut seen = std::collections::HashSet::new();
        for (method, _, _) in RULES {
            assert!(seen.insert(*method), "{method} is listed twice");
        }
    }

    #[test]
    fn every_method_of_the_contracts_is_in_the_table() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(messenger_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                    assert!(admits(&path).is_some(), "{path} is missing from RULES");
                }
            }
        }
    }

    /// A method whose request names an acting user must verify that user's
    /// token, or a caller could name anyone.
    #[test]
    fn methods_that_name_a_user_are_user_scoped() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(messenger_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let naming_a_user = ["actor_id", "user_id", "owner_id", "uploader_id"];
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    let input = method.input_type().rsplit('.').next().unwrap_or_default();
                    let Some(message) = file.message_type.iter().find(|m| m.name() == input) else {
                        continue;
                    };
                    if message
                        .field
                        .iter()
                        .any(|f| naming_a_user.contains(&f.name()))
                    {
                        let path =
                            format!("/{}.{}/{}", file.package(), service.name(), method.name());
                        assert!(
                            matches!(scope(&path), Some(Scope::User | Scope::UserOrOwnWork(_))),
                            "{path} names a user"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn decisions() {
        let authorize = "/messenger.groups.v1.GroupsService/Authorize";
        assert_eq!(check(authorize, Some(Caller::Messages)), Ok(()));
        assert!(matches!(
            check(authorize, Some(Caller::Media)),
            Err(Refusal::NotAllowed { .. })
        ));
        assert!(matches!(
            check(authorize, None),
            Err(Refusal::NoCertificate { .. })
        ));
        assert_eq!(check("/grpc.health.v1.Health/Check", None), Ok(()));
        assert!(matches!(
            check("/nope.Service/Method", Some(Caller::Gateway)),
            Err(Refusal::UnknownMethod { .. })
        ));
        assert_eq!(
            check(
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                Some(Caller::Operator)
            ),
            Ok(())
        );
    }
}
