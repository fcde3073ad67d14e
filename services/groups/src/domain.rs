//! Validated input. Raw strings from the wire are parsed here once; the rest
//! of the service only sees these types.

use crate::error::{Error, Result};
use messenger_proto::groups::v1 as pb;
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

/// Trimmed text of a bounded length, without control characters other than
/// newlines (where the field allows them).
fn text(raw: &str, field: &'static str, min: usize, max: usize, multiline: bool) -> Result<String> {
    let value = raw.trim();
    let len = value.chars().count();
    if len < min || len > max {
        let reason = if min > 0 {
            format!("must be {min} to {max} characters long")
        } else {
            format!("must be at most {max} characters long")
        };
        return Err(Error::invalid(field, reason));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t')))
    {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

macro_rules! text_type {
    ($name:ident, $field:literal, $min:literal, $max:literal, $multiline:literal) => {
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self> {
                text(raw, $field, $min, $max, $multiline).map($name)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

text_type!(GroupName, "name", 1, 100, false);
text_type!(Description, "description", 0, 1000, true);
text_type!(ChannelName, "name", 1, 80, false);
text_type!(Topic, "topic", 0, 500, true);
text_type!(BanReason, "reason", 0, 500, true);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }

    pub fn from_db(raw: &str) -> Self {
        if raw == "public" {
            Visibility::Public
        } else {
            Visibility::Private
        }
    }

    /// From the wire, with the default for "unspecified".
    pub fn parse(raw: i32, default: Visibility) -> Result<Self> {
        match pb::Visibility::try_from(raw) {
            Ok(pb::Visibility::Unspecified) => Ok(default),
            Ok(pb::Visibility::Public) => Ok(Visibility::Public),
            Ok(pb::Visibility::Private) => Ok(Visibility::Private),
            Err(_) => Err(Error::invalid("visibility", "must be public or private")),
        }
    }

    pub fn to_pb(self) -> pb::Visibility {
        match self {
            Visibility::Public => pb::Visibility::Public,
            Visibility::Private => pb::Visibility::Private,
        }
    }
}

/// Page size of list calls: 1-100, 0 meaning the default of 50.
#[derive(Clone, Copy, Debug)]
pub struct PageSize(pub i64);

impl PageSize {
    pub fn parse(raw: u32) -> Result<Self> {
        match raw {
            0 => Ok(PageSize(50)),
            1..=100 => Ok(PageSize(i64::from(raw))),
            _ => Err(Error::invalid("limit", "must be between 1 and 100")),
        }
    }
}

/// An id cursor: lists ordered by id continue after it.
pub fn id_cursor(raw: &str) -> Result<Option<Uuid>> {
    if raw.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(raw)
        .map(Some)
        .map_err(|_| Error::invalid("cursor", "is not a cursor this API returned"))
}

/// An optional media id: empty means none.
pub fn media_id(raw: &str, field: &'static str) -> Result<Option<Uuid>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(raw)
        .map(Some)
        .map_err(|_| Error::invalid(field, "must be a UUID"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(GroupName::parse("  Rust  ").unwrap().as_str(), "Rust");
        assert!(GroupName::parse("   ").is_err());
        assert!(GroupName::parse(&"x".repeat(100)).is_ok());
        assert!(GroupName::parse(&"x".repeat(101)).is_err());
        // Characters, not bytes.
        assert!(GroupName::parse(&"я".repeat(100)).is_ok());
        assert!(GroupName::parse("bad\u{0}name").is_err());
        assert!(Description::parse("two\nlines").is_ok());
        assert!(GroupName::parse("two\nlines").is_err());
        assert!(Description::parse("").is_ok());
        assert!(ChannelName::parse(&"c".repeat(81)).is_err());
    }

    #[test]
    fn page_sizes_and_cursors() {
        assert_eq!(PageSize::parse(0).unwrap().0, 50);
        assert_eq!(PageSize::parse(100).unwrap().0, 100);
        assert!(PageSize::parse(101).is_err());
        assert_eq!(id_cursor("").unwrap(), None);
        assert!(id_cursor("nope").is_err());
    }

    #[test]
    fn visibility_from_the_wire() {
        assert_eq!(
            Visibility::parse(0, Visibility::Private).unwrap(),
            Visibility::Private
        );
        assert_eq!(
            Visibility::parse(1, Visibility::Private).unwrap(),
            Visibility::Public
        );
        assert!(Visibility::parse(9, Visibility::Public).is_err());
    }
}
