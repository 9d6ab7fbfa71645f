use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

/// The shipped list of common passwords (30,000 entries; see `data/README.md`).
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
});

/// Shortest and longest password, in characters after NFKC.
pub const MIN_LEN: usize = 8;
/// See [`MIN_LEN`].
pub const MAX_LEN: usize = 1024;
/// The most bytes a password field may carry: [`MAX_LEN`] characters of four bytes each.
/// Longer input is refused before it is counted or normalised, so the work a request can
/// cause on the async runtime stays bounded (a 1 MiB "password" costs nothing).
pub const MAX_INPUT_BYTES: usize = 4 * MAX_LEN;

/// A password in NFKC form. It never prints itself: `Debug` and `Display` show `[redacted]`.
///
/// ```
/// use latch::domain::Password;
/// let pw = Password::new_for_account("correct horse battery staple").unwrap();
/// assert_eq!(format!("{pw:?}"), "Password([redacted])");
/// assert!(Password::new_for_account("password123").is_err());
/// assert!(Password::new_for_account("short").is_err());
/// ```
#[derive(Clone)]
pub struct Password {
    normalized: String,
    /// The text as typed, when NFKC changed it: hashes made elsewhere (an imported Flask
    /// user's) were computed on what the user typed.
    typed: Option<String>,
}

impl Password {
    /// A password a user chose for an account: 8–1024 characters after NFKC, any Unicode,
    /// not on the list of common passwords.
    pub fn new_for_account(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("Enter a password.".into());
        }
        // Refuse absurd input before normalising it (NFKC can expand text).
        if raw.len() > MAX_INPUT_BYTES || raw.chars().count() > MAX_LEN {
            return Err(format!("Must be at most {MAX_LEN} characters."));
        }
        let value = super::nfkc(raw);
        let len = value.chars().count();
        if len < MIN_LEN {
            return Err(format!("Must be at least {MIN_LEN} characters."));
        }
        if len > MAX_LEN {
            return Err(format!("Must be at most {MAX_LEN} characters."));
        }
        if value.contains('\0') {
            return Err("Must not contain NUL characters.".into());
        }
        if is_common(&value) {
            return Err(
                "This password is too common and easy to guess; choose a less common one.".into(),
            );
        }
        Ok(Self {
            normalized: value,
            typed: None,
        })
    }

    /// A password typed at sign-in (or to confirm a change): only normalised, since the
    /// policy may have changed since the account chose it; refused only when longer than any
    /// password can be ([`MAX_INPUT_BYTES`]), before any work.
    pub fn typed(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("Enter your password.".into());
        }
        if raw.len() > MAX_INPUT_BYTES {
            return Err(format!("Must be at most {MAX_LEN} characters."));
        }
        Ok(Self::for_sign_in(raw))
    }

    /// [`Password::typed`] without the length bound, for text latch made itself.
    pub fn for_sign_in(raw: &str) -> Self {
        let normalized = super::nfkc(raw);
        let typed = (normalized != raw).then(|| raw.to_owned());
        Self { normalized, typed }
    }

    /// The bytes to hash.
    pub fn expose(&self) -> &[u8] {
        self.normalized.as_bytes()
    }

    /// The bytes as typed, when they differ from [`Password::expose`].
    pub fn expose_typed(&self) -> Option<&[u8]> {
        self.typed.as_deref().map(str::as_bytes)
    }

    /// Whether the password equals (ignoring case) one of `context` (username, email…).
    pub fn matches_any(&self, context: &[&str]) -> bool {
        let lower = self.normalized.to_lowercase();
        context.iter().any(|c| lower == c.to_lowercase())
    }
}

/// Whether `value` (or its lower-case form) is on the common-password list.
pub fn is_common(value: &str) -> bool {
    COMMON.contains(value) || COMMON.contains(value.to_lowercase().as_str())
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_large_enough() {
        assert!(COMMON.len() >= 10_000);
    }

    #[test]
    fn length_rules() {
        assert!(Password::new_for_account("abcdefg").is_err());
        assert!(Password::new_for_account("zq8-Lm4!").is_ok());
        let long: String = "ab9x".repeat(256);
        assert!(Password::new_for_account(&long).is_ok());
        assert!(Password::new_for_account(&format!("{long}x")).is_err());
    }

    #[test]
    fn any_unicode_is_allowed() {
        assert!(Password::new_for_account("correct horse 🐴 battery").is_ok());
        assert!(Password::new_for_account("        ").is_ok());
    }

    #[test]
    fn common_passwords_are_refused() {
        for pw in ["password123", "qwertyuiop", "PASSWORD123", "iloveyou"] {
            assert!(Password::new_for_account(pw).is_err(), "{pw}");
        }
    }

    #[test]
    fn composed_and_decomposed_forms_match() {
        let composed = Password::new_for_account("caf\u{e9} au lait").unwrap();
        let decomposed = Password::for_sign_in("cafe\u{301} au lait");
        assert_eq!(composed.expose(), decomposed.expose());
    }
}
