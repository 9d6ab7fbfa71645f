use std::fmt;

/// A role name: 1–32 characters, a lower-case ASCII letter then letters, digits, `_` or `-`,
/// after NFKC and lower-casing. `user` is not a role name here: every account holds it
/// implicitly, so it is never stored, granted or revoked.
///
/// ```
/// use latch::domain::RoleName;
/// assert_eq!(RoleName::parse(" Editor ").unwrap().as_str(), "editor");
/// assert!(RoleName::parse("user").is_err());
/// assert!(RoleName::parse("two words").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleName(String);

/// The built-in administrator role.
pub const ADMIN_ROLE: &str = "admin";

/// The role every signed-in account holds without it being stored.
pub const IMPLICIT_ROLE: &str = "user";

impl RoleName {
    /// Parses user input, giving a message for a person when it is not a role name.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let value = super::nfkc_lower(raw.trim());
        if value.is_empty() {
            return Err("Enter a role name.".into());
        }
        if value == IMPLICIT_ROLE {
            return Err("The role \"user\" is implicit: every account has it.".into());
        }
        if value.chars().count() > 32 {
            return Err("Must be at most 32 characters.".into());
        }
        let mut chars = value.chars();
        let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        if !starts_with_letter
            || !chars
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
        {
            return Err("Use a letter a–z, then letters, digits, _ or - (no spaces).".into());
        }
        Ok(Self(value))
    }

    /// The built-in `admin` role.
    pub fn admin() -> Self {
        Self(ADMIN_ROLE.to_owned())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoleName({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::RoleName;

    #[test]
    fn names() {
        assert_eq!(RoleName::parse("ADMIN").unwrap().as_str(), "admin");
        assert_eq!(RoleName::parse("ｅｄｉｔｏｒ").unwrap().as_str(), "editor");
        assert!(RoleName::parse("content_editor-2").is_ok());
        for bad in [
            "",
            "  ",
            "user",
            "User",
            "1abc",
            "-x",
            "a b",
            "a%b",
            "a\nb",
            &"a".repeat(33),
        ] {
            assert!(RoleName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
