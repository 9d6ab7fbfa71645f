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
    /// A passkey with user verification (WebAuthn): something held and the device's PIN or
    /// biometrics, so two factors on its own.
    Passkey,
    /// A passkey used without user verification: something held, one factor.
    SecurityKey,
}

impl Factor {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Factor::Password => "password",
            Factor::Totp => "totp",
            Factor::RecoveryCode => "recovery_code",
            Factor::Passkey => "passkey",
            Factor::SecurityKey => "security_key",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Factor::Password,
            Factor::Totp,
            Factor::RecoveryCode,
            Factor::Passkey,
            Factor::SecurityKey,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }

    /// How many factors it proves: a verified passkey is two (held, and unlocked by PIN or
    /// biometrics), every other one is one.
    fn weight(self) -> u8 {
        match self {
            Factor::Passkey => 2,
            _ => 1,
        }
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

    /// Whether the sign-in proved two factors (forward-auth's `two_factor` policy): a
    /// password and a code or key, or a verified passkey alone.
    pub fn two_factor(&self) -> bool {
        self.0.iter().map(|(f, _)| f.weight()).sum::<u8>() >= 2
    }

    /// When `factor` was proven in this sign-in, if it was.
    pub fn proven_at(&self, factor: Factor) -> Option<Timestamp> {
        self.0.iter().find(|(f, _)| *f == factor).map(|(_, at)| *at)
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

    #[test]
    fn a_verified_passkey_is_two_factors_a_bare_key_is_one() {
        assert!(Factors::one(Factor::Passkey, 1).two_factor());
        assert!(!Factors::one(Factor::SecurityKey, 1).two_factor());
        assert!(Factors::one(Factor::Password, 1)
            .and(Factor::SecurityKey, 2)
            .two_factor());
        let f = Factors::parse("security_key:7");
        assert_eq!(f.proven_at(Factor::SecurityKey), Some(7));
        assert_eq!(f.proven_at(Factor::Passkey), None);
    }
}
