//! What a push says: the JSON a service worker (or a UnifiedPush app)
//! receives, as much of the message as the user's privacy setting allows,
//! and the collapse topic that keeps one conversation to one notification.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::Serialize;
use uuid::Uuid;

/// How much of a message a notification shows (on a locked screen, to
/// anyone holding the phone, and to the push service's operator, who sees
/// the payload's size and timing but not its text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Privacy {
    /// Sender, conversation and the start of the message.
    #[default]
    Full,
    /// Sender and conversation, not the text.
    SenderOnly,
    /// "New message", nothing else.
    Hidden,
}

/// The facts a notification is made from.
pub struct Facts<'a> {
    pub conversation: Uuid,
    /// `#general`, or the other person's name in a direct conversation.
    pub conversation_name: &'a str,
    pub sender_name: &'a str,
    pub excerpt: &'a str,
    /// Unread notifications of this conversation, this one included.
    pub unread: u32,
    pub message: Uuid,
}

/// The push payload (docs: service workers read these fields).
#[derive(Debug, Serialize, PartialEq)]
pub struct Payload {
    pub title: String,
    pub body: String,
    /// Where a tap goes; the client resolves it against its own origin.
    pub url: String,
    /// The same as the push's `Topic`: a service worker passes it as the
    /// notification's `tag`, so a newer one replaces the older on screen.
    pub tag: String,
    pub count: u32,
    /// Absent when the privacy setting hides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// The longest excerpt sent: the whole payload must stay far below a push
/// record's 3,993 bytes, whatever the names.
const EXCERPT_CHARS: usize = 140;
const NAME_CHARS: usize = 64;

/// The collapse topic of a conversation: `c` and 16 bytes of an HMAC of
/// its id under the notifier's own key, in base64url: 23 characters (RFC
/// 8030 allows 32). Every push about one conversation replaces the one
/// before it that the device has not fetched yet, and a retried or
/// replayed push replaces itself. Keyed, so the push service's operator
/// cannot tell which conversation it is, nor link it to our ids.
pub fn topic(key: &hmac::Key, conversation: Uuid) -> String {
    let tag = hmac::sign(key, conversation.as_bytes());
    format!("c{}", URL_SAFE_NO_PAD.encode(&tag.as_ref()[..16]))
}

pub fn compose(facts: &Facts<'_>, privacy: Privacy, topic_key: &hmac::Key) -> Payload {
    let sender = shorten(facts.sender_name, NAME_CHARS);
    let conversation = shorten(facts.conversation_name, NAME_CHARS);
    let more = |one: String| match facts.unread {
        0 | 1 => one,
        n => format!("{one} (+{} more)", n - 1),
    };
    // A direct conversation is named after the other person: the sender.
    let heading = if conversation == sender {
        sender.clone()
    } else {
        format!("{sender} in {conversation}")
    };
    let (title, body) = match privacy {
        Privacy::Full => (heading.clone(), more(shorten(facts.excerpt, EXCERPT_CHARS))),
        Privacy::SenderOnly => (heading, more("New message".to_owned())),
        Privacy::Hidden => (
            "New message".to_owned(),
            more(String::new()).trim().to_owned(),
        ),
    };
    let hidden = privacy == Privacy::Hidden;
    Payload {
        title,
        body,
        url: if hidden {
            "/".to_owned()
        } else {
            format!("/channels/{}", facts.conversation)
        },
        tag: topic(topic_key, facts.conversation),
        count: facts.unread.max(1),
        message_id: (!hidden).then(|| facts.message.to_string()),
    }
}

/// At most `limit` characters, cut at a character boundary, with an
/// ellipsis when cut; control characters, line and paragraph separators
/// become spaces, and invisible formatting (bidirectional overrides and
/// isolates, zero-width characters) goes, so a name cannot pose as
/// another one.
fn shorten(text: &str, limit: usize) -> String {
    let clean: String = text
        .chars()
        .filter(|c| !invisible(*c))
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let clean = clean.trim();
    if clean.chars().count() <= limit {
        return clean.to_owned();
    }
    let cut: String = clean.chars().take(limit - 1).collect();
    format!("{}…", cut.trim_end())
}

/// Format characters that change how text around them is shown.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, b"notifier topic key for tests")
    }

    fn facts<'a>(excerpt: &'a str, unread: u32) -> Facts<'a> {
        Facts {
            conversation: Uuid::from_u128(0x0191_a2b3_0000_7000_8000_0000_0000_0001),
            conversation_name: "#general",
            sender_name: "Ann",
            excerpt,
            unread,
            message: Uuid::from_u128(7),
        }
    }

    #[test]
    fn privacy_decides_what_the_notification_shows() {
        let full = compose(&facts("lunch at noon?", 1), Privacy::Full, &key());
        assert_eq!(full.title, "Ann in #general");
        assert_eq!(full.body, "lunch at noon?");
        assert_eq!(full.url, "/channels/0191a2b3-0000-7000-8000-000000000001");
        assert!(full.message_id.is_some());

        let sender = compose(&facts("lunch at noon?", 1), Privacy::SenderOnly, &key());
        assert_eq!(sender.title, "Ann in #general");
        assert_eq!(sender.body, "New message");

        let direct = Facts {
            conversation_name: "Ann",
            ..facts("lunch?", 1)
        };
        assert_eq!(compose(&direct, Privacy::Full, &key()).title, "Ann");

        let hidden = compose(&facts("lunch at noon?", 3), Privacy::Hidden, &key());
        let json = serde_json::to_string(&hidden).expect("json");
        for secret in ["Ann", "general", "lunch", "0191a2b3", "AZGiswAA"] {
            assert!(!json.contains(secret), "{json} shows {secret}");
        }
        assert_eq!(hidden.title, "New message");
        assert_eq!(hidden.body, "(+2 more)");
    }

    #[test]
    fn one_conversation_collapses_into_one_notification() {
        let first = compose(&facts("one", 1), Privacy::Full, &key());
        let third = compose(&facts("three", 3), Privacy::Full, &key());
        assert_eq!(first.tag, third.tag);
        assert_eq!(third.body, "three (+2 more)");
        assert_eq!(third.count, 3);
        let topic = topic(&key(), Uuid::max());
        assert_eq!(topic.len(), 23);
        assert!(!topic.contains("_____"), "the id is not readable in it");
        let other_key = hmac::Key::new(hmac::HMAC_SHA256, b"another deployment");
        assert_ne!(super::topic(&other_key, Uuid::max()), topic);
        assert!(
            topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn long_or_hostile_text_is_cut_and_cleaned() {
        let long = "é".repeat(500);
        let payload = compose(&facts(&long, 1), Privacy::Full, &key());
        assert_eq!(payload.body.chars().count(), EXCERPT_CHARS);
        assert!(payload.body.ends_with('…'));
        let payload = compose(&facts("line\nbreak\u{7}bell", 1), Privacy::Full, &key());
        assert_eq!(payload.body, "line break bell");
        let spoof = compose(
            &facts("\u{202E}gnp.exe\u{200B}\u{2028}x", 1),
            Privacy::Full,
            &key(),
        );
        assert_eq!(spoof.body, "gnp.exe x");
        let names = Facts {
            sender_name: &"N".repeat(1000),
            conversation_name: &"C".repeat(1000),
            ..facts(&long, 99)
        };
        let json = serde_json::to_vec(&compose(&names, Privacy::Full, &key())).expect("json");
        assert!(
            json.len() < crate::webpush::MAX_PLAINTEXT / 4,
            "{} bytes",
            json.len()
        );
    }
}
