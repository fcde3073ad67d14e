//! Validated input. Raw strings from the wire are parsed here once; the rest
//! of the service only sees these types.

use crate::error::{Error, Result};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserId(pub Uuid);

impl UserId {
    pub fn parse(raw: &str, field: &'static str) -> Result<Self> {
        Uuid::parse_str(raw.trim())
            .map(UserId)
            .map_err(|_| Error::invalid(field, "must be a UUID"))
    }
}

/// 3-32 characters of `[a-z0-9_]`, compared case-insensitively (stored
/// lower-case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self> {
        let lower = raw.trim().to_ascii_lowercase();
        let len = lower.chars().count();
        if !(3..=32).contains(&len) {
            return Err(Error::invalid(
                "username",
                "must be 3 to 32 characters long",
            ));
        }
        if !lower
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(Error::invalid(
                "username",
                "may contain only letters a-z, digits and underscores",
            ));
        }
        Ok(Username(lower))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A syntactically plausible address (RFC 5321 lengths, one `@`, a dotted
/// domain, no whitespace). Deliverability is a verification flow's job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self> {
        let email = raw.trim();
        let invalid = || Error::invalid("email", "must be a valid email address");
        if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.len() >= 3
            && domain.contains('.')
            && !domain.contains('@')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .split('.')
                .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(invalid());
        }
        Ok(Email(email.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 1-64 characters after trimming, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self> {
        let name = raw.trim();
        let len = name.chars().count();
        if !(1..=64).contains(&len) {
            return Err(Error::invalid(
                "display_name",
                "must be 1 to 64 characters long",
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "display_name",
                "must not contain control characters",
            ));
        }
        Ok(DisplayName(name.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// At most 500 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bio(String);

impl Bio {
    pub fn parse(raw: &str) -> Result<Self> {
        let bio = raw.trim();
        if bio.chars().count() > 500 {
            return Err(Error::invalid("bio", "must be at most 500 characters long"));
        }
        if bio.chars().any(|c| c.is_control() && c != '\n') {
            return Err(Error::invalid("bio", "must not contain control characters"));
        }
        Ok(Bio(bio.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 8-256 characters. The upper bound keeps hashing cost bounded.
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self> {
        let len = raw.chars().count();
        if len < 8 {
            return Err(Error::invalid(
                "password",
                "must be at least 8 characters long",
            ));
        }
        if len > 256 {
            return Err(Error::invalid(
                "password",
                "must be at most 256 characters long",
            ));
        }
        Ok(Password(raw.to_owned()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A validated search: lower-cased, at most 100 characters.
#[derive(Clone, Debug)]
pub struct SearchQuery(String);

impl SearchQuery {
    pub fn parse(raw: &str) -> Result<Self> {
        let query = raw.trim().to_lowercase();
        if query.chars().count() > 100 {
            return Err(Error::invalid(
                "query",
                "must be at most 100 characters long",
            ));
        }
        if query.chars().any(char::is_control) {
            return Err(Error::invalid(
                "query",
                "must not contain control characters",
            ));
        }
        Ok(SearchQuery(query))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The query as a LIKE prefix pattern with wildcards escaped.
    pub fn like_prefix(&self) -> String {
        let mut pattern = String::with_capacity(self.0.len() + 1);
        for c in self.0.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    }
}

/// 1..=100, default 20.
#[derive(Clone, Copy, Debug)]
pub struct PageSize(pub i64);

impl PageSize {
    pub fn parse(raw: u32) -> Result<Self> {
        match raw {
            0 => Ok(PageSize(20)),
            1..=100 => Ok(PageSize(i64::from(raw))),
            _ => Err(Error::invalid("limit", "must be between 1 and 100")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(
            Username::parse("John_Doe").expect("valid").as_str(),
            "john_doe"
        );
        for bad in [
            "ab",
            "a".repeat(33).as_str(),
            "john doe",
            "jöhn",
            "john-doe",
            "",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Username::parse(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn emails() {
        for good in ["john@example.com", "a.b+c@sub.example.org"] {
            assert!(Email::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "john",
            "john@",
            "@example.com",
            "john@example",
            "jo hn@example.com",
            "john@@example.com",
            "john@.example.com",
            "john@example..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn display_names_and_passwords() {
        assert!(DisplayName::parse("  ").is_err());
        assert!(DisplayName::parse(&"x".repeat(65)).is_err());
        assert_eq!(
            DisplayName::parse(" Jöhn ").expect("valid").as_str(),
            "Jöhn"
        );
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("long enough").is_ok());
        assert!(Password::parse(&"p".repeat(257)).is_err());
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        let query = SearchQuery::parse("a_b%").expect("valid");
        assert_eq!(query.like_prefix(), "a\\_b\\%%");
    }

    #[test]
    fn page_sizes() {
        assert_eq!(PageSize::parse(0).expect("default").0, 20);
        assert!(PageSize::parse(101).is_err());
    }
}
