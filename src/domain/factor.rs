//! How a session was made: the factors its sign-in proved, each with the time it was proven.
//!
//! Stored in one text column as `factor:unix_time` words (`password:1733000000
//! totp:1733000020`), so a later factor (a passkey) is one more word, not a migration.

use crate::clock::Timestamp;

/// One proven factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    /// The account's password.
    Password,
    /// A TOTP code, or confirming a new TOTP secret with one.
    Totp,
    /// A single-use recovery code.
    RecoveryCode,
    /// A passkey with user verification (WebAuthn).
    Passkey,
}

impl Factor {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Factor::Password => "password",
            Factor::Totp => "totp",
            Factor::RecoveryCode => "recovery_code",
            Factor::Passkey => "passkey",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Factor::Password,
            Factor::Totp,
            Factor::RecoveryCode,
            Factor::Passkey,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }

    /// Whether this factor is a second factor (forward-auth's `two_factor` policy).
    pub fn is_second(self) -> bool {
        !matches!(self, Factor::Password)
    }
}

/// The factors of one session, in the order they were proven.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Factors(Vec<(Factor, Timestamp)>);

impl Factors {
    /// No factor (an anonymous or pending session).
    pub fn none() -> Self {
        Self::default()
    }

    /// One factor proven at `at`.
    pub fn one(factor: Factor, at: Timestamp) -> Self {
        Self(vec![(factor, at)])
    }

    /// These factors and `factor`, proven at `at`.
    pub fn and(mut self, factor: Factor, at: Timestamp) -> Self {
        self.0.push((factor, at));
        self
    }

    /// Parses the stored column; unknown or malformed words are skipped (they prove nothing).
    pub fn parse(stored: &str) -> Self {
        Self(
            stored
                .split_whitespace()
                .filter_map(|word| {
                    let (name, at) = word.split_once(':')?;
                    Some((Factor::parse(name)?, at.parse().ok()?))
                })
                .collect(),
        )
    }

    /// The stored form.
    pub fn to_stored(&self) -> String {
        self.0
            .iter()
            .map(|(f, at)| format!("{}:{at}", f.as_str()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Each factor with its time.
    pub fn iter(&self) -> impl Iterator<Item = (Factor, Timestamp)> + '_ {
        self.0.iter().copied()
    }

    /// Whether the sign-in proved a second factor.
    pub fn two_factor(&self) -> bool {
        self.0.iter().any(|(f, _)| f.is_second())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_round_trip_and_skip_junk() {
        let f = Factors::one(Factor::Password, 10).and(Factor::Totp, 12);
        assert_eq!(f.to_stored(), "password:10 totp:12");
        assert_eq!(Factors::parse(&f.to_stored()), f);
        assert!(f.two_factor());
        let junk = Factors::parse("password:x bogus:1 totp recovery_code:5");
        assert_eq!(junk, Factors::one(Factor::RecoveryCode, 5));
        assert!(!Factors::one(Factor::Password, 1).two_factor());
        assert_eq!(Factors::parse(""), Factors::none());
    }
}
