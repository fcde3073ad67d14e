//! The Kafka topics and event types: the one list every producer and
//! consumer names them from (the contract for others is `docs/events.md`).
//!
//! Each `*Event` message is bound to its topic below. From the `.proto`
//! files, `build.rs` generates for every such message:
//!
//! - `<event>::Payload::TOPIC` and `<event>::Payload::event_type()`, so a
//!   producer takes both from the payload it publishes and cannot send it
//!   to another topic or under another name;
//! - `<Event>::EVENT_TYPES`, every event type the message can carry;
//! - `<Variant>::EVENT_TYPE` on each payload message, e.g.
//!   `messages::v1::MessageCreated::EVENT_TYPE`.
//!
//! An event message without a topic here does not compile.

use crate::{groups, media, messages, notifier, presence, users};
use std::fmt;

include!(concat!(env!("OUT_DIR"), "/event_types.rs"));

/// A domain-event topic. Deployments may prefix the names
/// (`KAFKA_TOPIC_PREFIX`); a consumer maps what it receives back by
/// comparing with the prefixed names it subscribed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    Users,
    Groups,
    Messages,
    Media,
    Presence,
    Notifier,
}

impl Topic {
    pub const ALL: [Topic; 6] = [
        Topic::Users,
        Topic::Groups,
        Topic::Messages,
        Topic::Media,
        Topic::Presence,
        Topic::Notifier,
    ];

    /// The topic's name without the deployment prefix.
    pub const fn name(self) -> &'static str {
        match self {
            Topic::Users => "users.events.v1",
            Topic::Groups => "groups.events.v1",
            Topic::Messages => "messages.events.v1",
            Topic::Media => "media.events.v1",
            Topic::Presence => "presence.events.v1",
            Topic::Notifier => "notifier.events.v1",
        }
    }

    /// The topic with this unprefixed name.
    pub fn from_name(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|topic| topic.name() == name)
    }

    /// Every event type published on the topic.
    pub const fn event_types(self) -> &'static [&'static str] {
        match self {
            Topic::Users => users::v1::UserEvent::EVENT_TYPES,
            Topic::Groups => groups::v1::GroupsEvent::EVENT_TYPES,
            Topic::Messages => messages::v1::MessagesEvent::EVENT_TYPES,
            Topic::Media => media::v1::MediaEvent::EVENT_TYPES,
            Topic::Presence => presence::v1::PresenceEvent::EVENT_TYPES,
            Topic::Notifier => notifier::v1::NotifierEvent::EVENT_TYPES,
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl users::v1::UserEvent {
    /// Every record on this topic is one such message.
    pub const TOPIC: Topic = Topic::Users;
}

impl groups::v1::GroupsEvent {
    /// Every record on this topic is one such message.
    pub const TOPIC: Topic = Topic::Groups;
}

impl messages::v1::MessagesEvent {
    /// Every record on this topic is one such message.
    pub const TOPIC: Topic = Topic::Messages;
}

impl media::v1::MediaEvent {
    /// Every record on this topic is one such message.
    pub const TOPIC: Topic = Topic::Media;
}

impl presence::v1::PresenceEvent {
    /// Every record on this topic is one such message.
    pub const TOPIC: Topic = Topic::Presence;
}

impl notifier::v1::NotifierEvent {
    /// Every record on this topic is one such message.
    pub const TOPIC: Topic = Topic::Notifier;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The wire names are a public contract (`docs/events.md`): renaming
    /// one breaks every consumer, so this is the one place they are spelt
    /// out again.
    #[test]
    fn names_are_the_published_contract() {
        let names: Vec<_> = Topic::ALL
            .iter()
            .map(|t| (t.name(), t.event_types()))
            .collect();
        let expected: [(&str, &[&str]); 6] = [
            (
                "users.events.v1",
                &[
                    "messenger.users.v1.UserRegistered",
                    "messenger.users.v1.UserProfileUpdated",
                ],
            ),
            (
                "groups.events.v1",
                &[
                    "messenger.groups.v1.GroupCreated",
                    "messenger.groups.v1.GroupUpdated",
                    "messenger.groups.v1.GroupDeleted",
                    "messenger.groups.v1.MemberJoined",
                    "messenger.groups.v1.MemberLeft",
                    "messenger.groups.v1.MemberKicked",
                    "messenger.groups.v1.MemberBanned",
                    "messenger.groups.v1.MemberUnbanned",
                    "messenger.groups.v1.MemberRoleChanged",
                    "messenger.groups.v1.MemberMuted",
                    "messenger.groups.v1.OwnershipTransferred",
                    "messenger.groups.v1.ChannelCreated",
                    "messenger.groups.v1.ChannelUpdated",
                    "messenger.groups.v1.ChannelDeleted",
                    "messenger.groups.v1.ChannelMemberAdded",
                    "messenger.groups.v1.ChannelMemberRemoved",
                    "messenger.groups.v1.DirectOpened",
                ],
            ),
            (
                "messages.events.v1",
                &[
                    "messenger.messages.v1.MessageCreated",
                    "messenger.messages.v1.MessageEdited",
                    "messenger.messages.v1.MessageDeleted",
                    "messenger.messages.v1.ReactionAdded",
                    "messenger.messages.v1.ReactionRemoved",
                    "messenger.messages.v1.ReadPositionMoved",
                    "messenger.messages.v1.ThreadUpdated",
                    "messenger.messages.v1.NotificationCreated",
                ],
            ),
            (
                "media.events.v1",
                &[
                    "messenger.media.v1.MediaUploaded",
                    "messenger.media.v1.ThumbnailReady",
                    "messenger.media.v1.ThumbnailFailed",
                    "messenger.media.v1.MediaDeleted",
                ],
            ),
            (
                "presence.events.v1",
                &["messenger.presence.v1.PresenceChanged"],
            ),
            (
                "notifier.events.v1",
                &[
                    "messenger.notifier.v1.PushDelivered",
                    "messenger.notifier.v1.PushSkipped",
                    "messenger.notifier.v1.PushFailed",
                    "messenger.notifier.v1.SubscriptionExpired",
                ],
            ),
        ];
        assert_eq!(names, expected);
    }

    #[test]
    fn every_variant_is_named_after_its_message() {
        fn names<P>(variants: Vec<P>, event_type: fn(&P) -> &'static str) -> Vec<&'static str> {
            variants.iter().map(event_type).collect()
        }
        use groups::v1::groups_event::Payload as Groups;
        use media::v1::media_event::Payload as Media;
        use messages::v1::messages_event::Payload as Messages;
        use notifier::v1::notifier_event::Payload as Notifier;
        use presence::v1::presence_event::Payload as Presence;
        use users::v1::user_event::Payload as Users;
        let derived = [
            (
                Users::TOPIC,
                names(Users::every_variant(), Users::event_type),
            ),
            (
                Groups::TOPIC,
                names(Groups::every_variant(), Groups::event_type),
            ),
            (
                Messages::TOPIC,
                names(Messages::every_variant(), Messages::event_type),
            ),
            (
                Media::TOPIC,
                names(Media::every_variant(), Media::event_type),
            ),
            (
                Presence::TOPIC,
                names(Presence::every_variant(), Presence::event_type),
            ),
            (
                Notifier::TOPIC,
                names(Notifier::every_variant(), Notifier::event_type),
            ),
        ];
        for (topic, names) in derived {
            assert_eq!(names, topic.event_types(), "{topic}");
        }
        assert_eq!(
            messages::v1::MessageCreated::EVENT_TYPE,
            Messages::MessageCreated(Default::default()).event_type()
        );
        assert_eq!(
            users::v1::UserRegistered::EVENT_TYPE,
            Users::UserRegistered(Default::default()).event_type()
        );
    }

    #[test]
    fn each_topic_carries_exactly_one_event_message() {
        let topics: Vec<Topic> = EVENT_MESSAGES.iter().map(|(_, topic)| *topic).collect();
        assert_eq!(topics.len(), Topic::ALL.len(), "{EVENT_MESSAGES:?}");
        assert_eq!(
            topics.iter().collect::<HashSet<_>>(),
            Topic::ALL.iter().collect()
        );
    }

    #[test]
    fn names_parse_back() {
        for topic in Topic::ALL {
            assert_eq!(Topic::from_name(topic.name()), Some(topic));
        }
        assert_eq!(Topic::from_name("users.events.v2"), None);
        assert_eq!(Topic::from_name("t1.users.events.v1"), None);
    }

    #[test]
    fn docs_list_every_topic_and_event_type() {
        let docs = include_str!("../../../docs/events.md");
        for (message, topic) in EVENT_MESSAGES {
            let section = docs
                .split("\n### ")
                .find(|section| section.starts_with(&format!("`{topic}`")))
                .unwrap_or_else(|| panic!("docs/events.md has no section for {topic}"));
            assert!(
                section.contains(&format!("Message `{message}`")),
                "{topic}: {message}"
            );
            for event_type in topic.event_types() {
                let variant = event_type.rsplit('.').next().unwrap_or(event_type);
                assert!(
                    section.contains(&format!("`{variant}`")),
                    "{topic}: {variant}"
                );
            }
        }
    }
}
