//! Validated input. Raw strings from the wire are parsed here once; the rest
//! of the service only sees these types.

use crate::error::{Error, Result};
use messenger_proto::messages::v1 as pb;
use uuid::Uuid;

macro_rules! id_type {
    ($name:ident) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn parse(raw: &str, field: &'static str) -> Result<Self> {
                Uuid::parse_str(raw.trim())
                    .map($name)
                    .map_err(|_| Error::invalid(field, "must be a UUID"))
            }

            /// An empty string means "none".
            pub fn parse_optional(raw: &str, field: &'static str) -> Result<Option<Self>> {
                if raw.trim().is_empty() {
                    Ok(None)
                } else {
                    Self::parse(raw, field).map(Some)
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(UserId);
id_type!(GroupId);
id_type!(ChannelId);
id_type!(MessageId);
id_type!(NotificationId);

pub const MAX_CONTENT_CHARS: usize = 4000;
pub const MAX_ATTACHMENTS: usize = 10;

/// Message text: at most 4000 characters, no control characters other than
/// newlines and tabs. Surrounding whitespace is kept inside but trimmed at
/// the ends (a message of only spaces is empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content(String);

impl Content {
    pub fn parse(raw: &str) -> Result<Self> {
        let value = raw.trim();
        if value.chars().count() > MAX_CONTENT_CHARS {
            return Err(Error::invalid(
                "content",
                format!("must be at most {MAX_CONTENT_CHARS} characters long"),
            ));
        }
        if value
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
        {
            return Err(Error::invalid(
                "content",
                "must not contain control characters",
            ));
        }
        Ok(Content(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first `chars` characters, for notification previews.
    pub fn excerpt(&self, chars: usize) -> String {
        match self.0.char_indices().nth(chars) {
            Some((cut, _)) => format!("{}…", &self.0[..cut]),
            None => self.0.clone(),
        }
    }

    /// `@username` mentions, lower-cased and deduplicated, in order of
    /// appearance. A mention starts at the beginning or after a character
    /// that cannot be part of a username or an email address.
    pub fn mentioned_usernames(&self) -> Vec<String> {
        let mut found: Vec<String> = Vec::new();
        let mut previous: Option<char> = None;
        for (at, c) in self.0.char_indices() {
            let boundary = previous.is_none_or(|p| !(p.is_alphanumeric() || p == '_' || p == '.'));
            previous = Some(c);
            if c != '@' || !boundary {
                continue;
            }
            let rest = &self.0[at + 1..];
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if (3..=32).contains(&len) {
                let name = rest[..len].to_ascii_lowercase();
                if !found.contains(&name) {
                    found.push(name);
                }
            }
        }
        found
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    Text,
    Image,
    File,
}

impl MessageKind {
    /// Clients may send text, image and file messages; system messages are
    /// written by the service itself.
    pub fn from_client(raw: i32) -> Result<Self> {
        match pb::MessageType::try_from(raw) {
            Ok(pb::MessageType::Unspecified | pb::MessageType::Text) => Ok(MessageKind::Text),
            Ok(pb::MessageType::Image) => Ok(MessageKind::Image),
            Ok(pb::MessageType::File) => Ok(MessageKind::File),
            Ok(pb::MessageType::System) => Err(Error::invalid(
                "message_type",
                "system messages cannot be sent by clients",
            )),
            Err(_) => Err(Error::invalid(
                "message_type",
                "must be text, image or file",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Image => "image",
            MessageKind::File => "file",
        }
    }

    pub fn to_pb(raw: &str) -> pb::MessageType {
        match raw {
            "image" => pb::MessageType::Image,
            "file" => pb::MessageType::File,
            "system" => pb::MessageType::System,
            _ => pb::MessageType::Text,
        }
    }
}

/// A client's idempotency key: 1-128 printable ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse_optional(raw: &str) -> Result<Option<Self>> {
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.len() > 128 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "idempotency_key",
                "must be 1 to 128 printable ASCII characters",
            ));
        }
        Ok(Some(IdempotencyKey(raw.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A reaction: one Unicode emoji (a sequence such as 👍🏽 or 👨‍👩‍👧 counts as
/// one), or a custom code such as `:party_parrot:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emoji(String);

impl Emoji {
    pub fn parse(raw: &str) -> Result<Self> {
        let value = raw.trim();
        if let Some(code) = value.strip_prefix(':').and_then(|v| v.strip_suffix(':')) {
            let valid = (1..=32).contains(&code.len())
                && code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_+-".contains(&b));
            if valid {
                return Ok(Emoji(value.to_owned()));
            }
        } else if let Some(emoji) = emojis::get(value) {
            // The canonical form, so 👍 with and without VS16 count together.
            return Ok(Emoji(emoji.as_str().to_owned()));
        }
        Err(Error::invalid(
            "emoji",
            "must be one emoji or a :custom_code: (a-z, 0-9, _ + -, up to 32)",
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A page size: 1-100, default 50.
pub fn limit(raw: u32) -> Result<i64> {
    match raw {
        0 => Ok(50),
        1..=100 => Ok(i64::from(raw)),
        _ => Err(Error::invalid("limit", "must be between 1 and 100")),
    }
}

/// Full-text search input: 1-200 characters.
#[derive(Clone, Debug)]
pub struct SearchQuery(String);

impl SearchQuery {
    pub fn parse(raw: &str) -> Result<Self> {
        let value = raw.trim();
        let len = value.chars().count();
        if !(1..=200).contains(&len) {
            return Err(Error::invalid("q", "must be 1 to 200 characters long"));
        }
        if value.chars().any(char::is_control) {
            return Err(Error::invalid("q", "must not contain control characters"));
        }
        Ok(SearchQuery(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_limits() {
        assert!(Content::parse(&"я".repeat(4000)).is_ok());
        assert!(Content::parse(&"я".repeat(4001)).is_err());
        assert!(Content::parse("bell \u{7}").is_err());
        assert_eq!(
            Content::parse("  hi\nthere  ").expect("valid").as_str(),
            "hi\nthere"
        );
        assert!(Content::parse("   ").expect("valid").is_empty());
    }

    #[test]
    fn mentions() {
        let content = Content::parse("@Anna and @bob_1, mail me@example.com, @anna again, @ab")
            .expect("valid");
        assert_eq!(content.mentioned_usernames(), vec!["anna", "bob_1"]);
        let content = Content::parse("(@carl) ping").expect("valid");
        assert_eq!(content.mentioned_usernames(), vec!["carl"]);
    }

    #[test]
    fn excerpt_cuts_on_characters() {
        let content = Content::parse("привет мир").expect("valid");
        assert_eq!(content.excerpt(6), "привет…");
        assert_eq!(content.excerpt(100), "привет мир");
    }

    #[test]
    fn emoji() {
        assert_eq!(Emoji::parse("👍").expect("valid").as_str(), "👍");
        assert!(Emoji::parse("👍🏽").is_ok());
        assert!(Emoji::parse("👨‍👩‍👧").is_ok());
        assert!(Emoji::parse(":party_parrot:").is_ok());
        for bad in ["", "a", "👍👍", ":Bad:", "::", "<script>", ":a b:"] {
            assert!(Emoji::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn idempotency_keys() {
        assert!(IdempotencyKey::parse_optional("").expect("valid").is_none());
        assert!(
            IdempotencyKey::parse_optional("abc-123")
                .expect("valid")
                .is_some()
        );
        assert!(IdempotencyKey::parse_optional("with space").is_err());
        assert!(IdempotencyKey::parse_optional(&"x".repeat(129)).is_err());
    }
}

#[cfg(test)]
mod proptests;
