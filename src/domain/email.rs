use std::fmt;
use std::str::FromStr;

/// A syntactically valid email address, NFKC-normalised and lower-cased, at most 254
/// characters, with no whitespace or control characters (so it can never inject a mail
/// header).
///
/// ```
/// use latch::domain::EmailAddress;
/// assert_eq!(EmailAddress::parse(" Alice@Example.COM ").unwrap().as_str(), "alice@example.com");
/// assert!(EmailAddress::parse("a@b.c\r\nBcc: x@y.z").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses user input, giving a message for a person when it is not an address.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let value = super::nfkc(raw.trim()).to_lowercase();
        if value.is_empty() {
            return Err("Enter an email address.".into());
        }
        if value.chars().count() > 254 {
            return Err("Must be at most 254 characters.".into());
        }
        if value.chars().any(|c| {
            c.is_control() || c.is_whitespace() || matches!(c, '"' | '<' | '>' | ',' | ';')
        }) {
            return Err("Must not contain spaces, line breaks or quotes.".into());
        }
        let invalid = || "Enter a valid email address, like name@example.com.".to_string();
        let parsed = email_address::EmailAddress::from_str(&value).map_err(|_| invalid())?;
        let domain = parsed.domain();
        if !domain.contains('.') || domain.starts_with('[') {
            return Err(invalid());
        }
        Ok(Self(value))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::EmailAddress;

    #[test]
    fn accepts_ordinary_addresses() {
        for good in [
            "a@example.com",
            "first.last+tag@sub.example.org",
            "ÄLICE@EXAMPLE.COM",
        ] {
            assert!(EmailAddress::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn refuses_injection_and_junk() {
        for bad in [
            "",
            "   ",
            "plain",
            "a@b",
            "a@b.c\r\nBcc: x@y.z",
            "a@b.c\nx",
            "a b@c.d",
            "\"x\"@y.z",
            "a@b.c\0",
            "<script>@x.y",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
        assert!(EmailAddress::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn case_and_width_are_folded() {
        let a = EmailAddress::parse("Bob@Example.com").unwrap();
        let b = EmailAddress::parse("ｂｏｂ@example.com").unwrap();
        assert_eq!(a, b);
    }
}

/// Property tests: no input panics, and an accepted address is stable under re-parsing.
#[cfg(test)]
mod properties {
    use super::EmailAddress;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn parsing_is_total_and_idempotent(
            raw in prop_oneof![
                any::<String>(),
                "[ -~]{0,12}@[a-zA-Z0-9.-]{0,12}",
                "\\PC{1,10}@\\PC{1,10}\\.[a-zA-Zа-я]{2,4}",
            ]
        ) {
            if let Ok(email) = EmailAddress::parse(&raw) {
                let again = EmailAddress::parse(email.as_str());
                prop_assert_eq!(again.as_ref(), Ok(&email));
                prop_assert!(!email.as_str().chars().any(|c| c.is_control() || c.is_whitespace()));
                prop_assert!(email.as_str().chars().count() <= 254);
            }
        }
    }
}
