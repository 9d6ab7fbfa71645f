use std::fmt;
use std::str::FromStr;

/// A syntactically valid email address, NFKC-normalised and lower-cased, at most 254
/// characters, with no whitespace or control characters (so it can never inject a mail
/// header).
///
/// The domain is kept in its ASCII form (IDNA / punycode, SECURITY H9): `b@пример.рф` and
/// `b@xn--e1afmkfd.xn--p1ai` are one mailbox, so they must be one account. The local part is
/// left as typed (after NFKC and lower case): only the receiving server knows what it means.
///
/// Rows written before this rule keep their domain as it was stored: ASCII ones are already in
/// this form, but one stored with a Unicode domain is no longer found by address (sign-in by
/// username still works) and does not block a sign-up with the same mailbox. SQL cannot compute
/// punycode, so no migration rewrites them; find them with
/// `SELECT id, email FROM users WHERE email_norm GLOB '*[^ -~]*'` (SQLite) or
/// `WHERE email_norm ~ '[^ -~]'` (PostgreSQL) and set both columns to [`canonical_email`].
///
/// ```
/// use latch::domain::EmailAddress;
/// assert_eq!(EmailAddress::parse(" Alice@Example.COM ").unwrap().as_str(), "alice@example.com");
/// assert_eq!(EmailAddress::parse("b@Пример.рф").unwrap().as_str(), "b@xn--e1afmkfd.xn--p1ai");
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
        let value = canonical_email(&value).ok_or_else(invalid)?;
        if value.len() > 254 {
            return Err("Must be at most 254 characters.".into());
        }
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

/// `local@domain` with the domain in its ASCII (punycode) form, the one addresses are stored
/// and compared in; `None` when there is no `@` or the domain is not a valid IDNA name. The
/// input should already be NFKC-normalised and lower-cased (as [`EmailAddress::parse`] and
/// [`super::nfkc_lower`] do). Text longer than any address (254 characters, so 1,016 bytes)
/// is `None` without any IDNA work, which bounds the cost of an attacker's input.
pub fn canonical_email(value: &str) -> Option<String> {
    if value.len() > 254 * 4 {
        return None;
    }
    let (local, domain) = value.rsplit_once('@')?;
    if domain.is_empty() {
        return None;
    }
    let ascii = idna::domain_to_ascii_cow(domain.as_bytes(), idna::AsciiDenyList::URL).ok()?;
    Some(format!("{local}@{ascii}"))
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
    use super::{canonical_email, EmailAddress};

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
    fn idn_domains_have_one_form() {
        let unicode = EmailAddress::parse("b@пример.рф").unwrap();
        let punycode = EmailAddress::parse("b@xn--e1afmkfd.xn--p1ai").unwrap();
        let upper = EmailAddress::parse("B@XN--E1AFMKFD.XN--P1AI").unwrap();
        let ideographic_dot = EmailAddress::parse("b@пример\u{3002}рф").unwrap();
        assert_eq!(unicode.as_str(), "b@xn--e1afmkfd.xn--p1ai");
        assert_eq!(unicode, punycode);
        assert_eq!(unicode, upper);
        assert_eq!(unicode, ideographic_dot);
        // The local part is kept as typed (NFKC, lower case), not converted.
        assert_eq!(
            EmailAddress::parse("Ärger@münchen.de").unwrap().as_str(),
            "ärger@xn--mnchen-3ya.de"
        );
        // Invalid punycode or a forbidden code point is not an address.
        for bad in ["b@xn--zz.com", "b@exa%mple.com", "b@", "b@exa_mple..com"] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            canonical_email("b@пример.рф").as_deref(),
            Some("b@xn--e1afmkfd.xn--p1ai")
        );
        assert_eq!(canonical_email("no-at-sign"), None);
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
