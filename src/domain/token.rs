use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A 256-bit secret from the OS CSPRNG, encoded as 43 base64url characters: session ids,
/// and later reset and verification tokens. Only its [`TokenHash`] is ever stored.
#[derive(Clone)]
pub struct SecretToken(String);

impl SecretToken {
    /// A fresh random token.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A token received from a client; `None` unless it has the shape latch issues.
    pub fn from_client(raw: &str) -> Option<Self> {
        let ok = raw.len() == 43
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(raw.to_owned()))
    }

    /// The value to hand to the client (cookie, link).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash stored in the database.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// A value derived from this token for another purpose (`purpose` separates domains), so
    /// that, for example, the CSRF token of a session reveals nothing about its id.
    pub fn derive(&self, purpose: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"latch:");
        hasher.update(purpose.as_bytes());
        hasher.update(b":");
        hasher.update(self.0.as_bytes());
        URL_SAFE_NO_PAD.encode(hasher.finalize())
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken([redacted])")
    }
}

/// SHA-256 of a [`SecretToken`]: what the database keeps. A plain hash suffices because the
/// token has 256 bits of entropy (no dictionary to attack).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The bytes stored in the database.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// Compares two strings in constant time (for equal lengths).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_and_unique() {
        let a = SecretToken::generate().unwrap();
        let b = SecretToken::generate().unwrap();
        assert_eq!(a.expose().len(), 43);
        assert_ne!(a.expose(), b.expose());
        assert!(SecretToken::from_client(a.expose()).is_some());
    }

    #[test]
    fn malformed_client_tokens_are_refused() {
        assert!(SecretToken::from_client("short").is_none());
        assert!(SecretToken::from_client(&"a".repeat(42).replace('a', "/")).is_none());
        assert!(SecretToken::from_client(&format!("{}=", "a".repeat(42))).is_none());
    }

    #[test]
    fn hash_and_derivations_differ() {
        let t = SecretToken::generate().unwrap();
        let csrf = t.derive("csrf");
        assert_ne!(csrf, t.expose());
        assert_ne!(csrf, t.derive("other"));
        assert_eq!(
            t.hash(),
            SecretToken::from_client(t.expose()).unwrap().hash()
        );
        assert!(constant_time_eq(&csrf, &t.derive("csrf")));
        assert!(!constant_time_eq(&csrf, &t.derive("other")));
    }
}
