use std::fmt;

use serde::Serialize;

use super::{Id, Timestamp};

/// A syntactically valid email address, as given (trimmed). Compared ignoring case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailError {
    #[error("is required")]
    Missing,
    #[error("must be at most 254 characters")]
    TooLong,
    #[error("is not a valid email address")]
    Invalid,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(EmailError::Missing);
        }
        if s.len() > 254 {
            return Err(EmailError::TooLong);
        }
        // Addresses a mail system delivers to: no display names, quoted
        // locals or IP literals, and a dotted domain.
        let valid = email_address::EmailAddress::parse_with_options(
            s,
            email_address::Options::default().without_display_text().without_domain_literal(),
        )
        .is_ok()
            && !s.starts_with('"')
            && s.rsplit_once('@').is_some_and(|(_, domain)| domain.contains('.') && !domain.ends_with('.'));
        if valid { Ok(Self(s.to_owned())) } else { Err(EmailError::Invalid) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used for uniqueness and look-ups.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 3–30 characters of `[A-Za-z0-9_]`; unique ignoring case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UsernameError {
    #[error("is required")]
    Missing,
    #[error("must be 3 to 30 characters")]
    Length,
    #[error("may contain only letters A-Z, digits and underscores")]
    Charset,
}

impl Username {
    pub const MIN: usize = 3;
    pub const MAX: usize = 30;

    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        if raw.is_empty() {
            return Err(UsernameError::Missing);
        }
        if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(UsernameError::Charset);
        }
        if !(Self::MIN..=Self::MAX).contains(&raw.len()) {
            return Err(UsernameError::Length);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name shown for a user: 1–50 characters after trimming.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DisplayNameError {
    #[error("must not be blank")]
    Blank,
    #[error("must be at most 50 characters")]
    TooLong,
    #[error("must not contain control characters")]
    Control,
}

impl DisplayName {
    pub const MAX: usize = 50;

    pub fn parse(raw: &str) -> Result<Self, DisplayNameError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(DisplayNameError::Blank);
        }
        if s.chars().count() > Self::MAX {
            return Err(DisplayNameError::TooLong);
        }
        if s.chars().any(char::is_control) {
            return Err(DisplayNameError::Control);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a user says about themselves: up to 160 characters after trimming,
/// possibly empty. Line breaks are kept (as `\n`); other control characters
/// are refused, since they only serve to garble how the text is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bio(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BioError {
    #[error("must be at most 160 characters")]
    TooLong,
    #[error("must not contain control characters other than line breaks")]
    Control,
}

impl Bio {
    pub const MAX: usize = 160;

    pub fn parse(raw: &str) -> Result<Self, BioError> {
        let s = raw.trim().replace("\r\n", "\n");
        if s.chars().count() > Self::MAX {
            return Err(BioError::TooLong);
        }
        if s.chars().any(|c| c.is_control() && c != '\n') {
            return Err(BioError::Control);
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as typed: 8–128 characters. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("is required")]
    Missing,
    #[error("must be at least 8 characters")]
    TooShort,
    #[error("must be at most 128 characters")]
    TooLong,
}

impl Password {
    pub const MIN: usize = 8;
    pub const MAX: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, PasswordError> {
        let n = raw.chars().count();
        if n == 0 {
            return Err(PasswordError::Missing);
        }
        if n < Self::MIN {
            return Err(PasswordError::TooShort);
        }
        if n > Self::MAX {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// A user account as the rest of the service sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: Id,
    pub username: String,
    pub name: String,
    pub email: String,
    pub created_at: Timestamp,
    pub followers_count: i64,
    pub followings_count: i64,
    pub tweets_count: i64,
    /// Possibly empty.
    pub bio: String,
    /// The MediaStore key of the avatar, if the user has one.
    pub avatar_key: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(Email::parse(" alice@example.com ").is_ok());
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@localhost",
            "a b@example.com",
            "Alice <a@example.com>",
            "alice@example.com.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Email::parse("Alice@Example.COM").unwrap().normalized(), "alice@example.com");
    }

    #[test]
    fn usernames_are_3_to_30_word_characters() {
        assert!(Username::parse("al_1").is_ok());
        assert_eq!(Username::parse("al"), Err(UsernameError::Length));
        assert_eq!(Username::parse("has space"), Err(UsernameError::Charset));
        assert_eq!(Username::parse("ålice"), Err(UsernameError::Charset));
        assert_eq!(Username::parse(&"a".repeat(31)), Err(UsernameError::Length));
    }

    #[test]
    fn names_are_trimmed_and_counted_in_characters() {
        assert_eq!(DisplayName::parse("  Alice  ").unwrap().as_str(), "Alice");
        assert_eq!(DisplayName::parse("   "), Err(DisplayNameError::Blank));
        assert!(DisplayName::parse(&"é".repeat(50)).is_ok());
        assert_eq!(DisplayName::parse(&"é".repeat(51)), Err(DisplayNameError::TooLong));
    }

    #[test]
    fn bios_are_trimmed_may_be_empty_and_keep_line_breaks() {
        assert_eq!(Bio::parse("  ").unwrap().as_str(), "");
        assert_eq!(Bio::parse(" two\r\nlines ").unwrap().as_str(), "two\nlines");
        assert!(Bio::parse(&"é".repeat(160)).is_ok());
        assert_eq!(Bio::parse(&"é".repeat(161)), Err(BioError::TooLong));
        assert_eq!(Bio::parse("bell\u{7}"), Err(BioError::Control));
        assert_eq!(Bio::parse("tab\there"), Err(BioError::Control));
    }

    #[test]
    fn passwords_are_8_to_128_characters() {
        assert_eq!(Password::parse("short"), Err(PasswordError::TooShort));
        assert!(Password::parse("long enough").is_ok());
        assert_eq!(Password::parse(&"x".repeat(129)), Err(PasswordError::TooLong));
        assert!(!format!("{:?}", Password::parse("long enough").unwrap()).contains("long"));
    }
}
