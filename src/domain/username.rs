use std::fmt;

/// A username: 3–32 ASCII letters, digits, `_`, `.` or `-` after NFKC normalisation.
///
/// Two usernames that differ only in case (or in NFKC-equivalent forms such as fullwidth
/// letters) are the same account; [`Username::normalized`] is the key the database keeps
/// unique.
///
/// ```
/// use latch::domain::Username;
/// let name = Username::parse("ａｄｍｉｎ").unwrap();
/// assert_eq!(name.as_str(), "admin");
/// assert_eq!(Username::parse("Admin").unwrap().normalized(), "admin");
/// assert!(Username::parse("no spaces").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Parses user input, giving a message for a person when it is not a valid username.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let value = super::nfkc(raw.trim());
        if value.is_empty() {
            return Err("Enter a username.".into());
        }
        let len = value.chars().count();
        if !(3..=32).contains(&len) {
            return Err("Must be 3 to 32 characters long.".into());
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err("Use only letters a–z, digits and _ . - (no spaces).".into());
        }
        Ok(Self(value))
    }

    /// The username as typed (after NFKC), for display.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form the database keeps unique.
    pub fn normalized(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Username;

    #[test]
    fn lengths() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        assert!(Username::parse(&"a".repeat(33)).is_err());
    }

    #[test]
    fn characters() {
        for bad in [
            "a b c",
            "<script>",
            "abc\0",
            "ab\u{202e}c",
            "ab\u{200d}c",
            "émile",
            "a@b",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
        for good in ["alice", "Bob_99", "j.doe-x"] {
            assert!(Username::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn look_alikes_collide() {
        let n = |s| Username::parse(s).unwrap().normalized();
        assert_eq!(n("admin"), n("ADMIN"));
        assert_eq!(n("admin"), n("ａｄｍｉｎ"));
    }
}

/// Property tests: no input panics, and an accepted name is stable under re-parsing.
#[cfg(test)]
mod properties {
    use super::Username;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn parsing_is_total_and_idempotent(raw in prop_oneof![any::<String>(), "[ -~ａ-ｚＡ-Ｚ０-９]{0,40}"]) {
            if let Ok(name) = Username::parse(&raw) {
                let again = Username::parse(name.as_str());
                prop_assert_eq!(again.as_ref(), Ok(&name));
                let key = name.normalized();
                prop_assert_eq!(Username::parse(&key).map(|n| n.normalized()), Ok(key.clone()));
                prop_assert!((3..=32).contains(&key.len()));
            }
        }
    }
}
