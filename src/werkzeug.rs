//! Werkzeug password hashes (`pbkdf2:sha256:600000$salt$hex`, `scrypt:32768:8:1$salt$hex`),
//! so users imported from a Flask application sign in with their old passwords; latch then
//! replaces the hash with Argon2id at that first sign-in.
//!
//! Written against Werkzeug's `generate_password_hash` format (the salt is used as its UTF-8
//! text, the hash is hex). Costs are capped, so a hostile row cannot make one sign-in take
//! minutes or gigabytes.

use hmac::Hmac;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Largest PBKDF2 iteration count accepted.
const MAX_ITERATIONS: u32 = 10_000_000;
/// Largest scrypt `log2(N)` accepted (N = 2^17 with r = 8 is 128 MiB).
const MAX_LOG_N: u8 = 17;

/// A parsed Werkzeug hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WerkzeugHash {
    method: Method,
    salt: String,
    hash: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Pbkdf2Sha256(u32),
    Pbkdf2Sha512(u32),
    Scrypt { log_n: u8, r: u32, p: u32 },
}

impl WerkzeugHash {
    /// Parses a stored hash; `None` when it is not a Werkzeug hash latch supports.
    pub fn parse(stored: &str) -> Option<Self> {
        let mut parts = stored.splitn(3, '$');
        let (method, salt, hex) = (parts.next()?, parts.next()?, parts.next()?);
        let fields: Vec<&str> = method.split(':').collect();
        let method = match fields.as_slice() {
            ["pbkdf2", rest @ ..] => {
                let digest = rest.first().copied().unwrap_or("sha256");
                // Werkzeug's default when the count is omitted (2.x and later).
                let iterations = match rest.get(1) {
                    Some(n) => n.parse().ok()?,
                    None => 600_000,
                };
                if iterations == 0 || iterations > MAX_ITERATIONS {
                    return None;
                }
                match digest {
                    "sha256" => Method::Pbkdf2Sha256(iterations),
                    "sha512" => Method::Pbkdf2Sha512(iterations),
                    _ => return None,
                }
            }
            ["scrypt", n, r, p] => {
                let n: u64 = n.parse().ok()?;
                if !n.is_power_of_two() || n < 2 {
                    return None;
                }
                let log_n = u8::try_from(n.trailing_zeros()).ok()?;
                let (r, p) = (r.parse().ok()?, p.parse().ok()?);
                if log_n > MAX_LOG_N || !(1..=32).contains(&r) || !(1..=16).contains(&p) {
                    return None;
                }
                Method::Scrypt { log_n, r, p }
            }
            _ => return None,
        };
        if salt.is_empty() || hex.is_empty() || hex.len() % 2 != 0 || hex.len() > 256 {
            return None;
        }
        let hash = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(Self {
            method,
            salt: salt.to_owned(),
            hash,
        })
    }

    /// Whether `password` matches. CPU- and memory-heavy: run it on the hashing pool.
    pub fn verify(&self, password: &[u8]) -> bool {
        let mut out = vec![0u8; self.hash.len()];
        let salt = self.salt.as_bytes();
        let computed = match self.method {
            Method::Pbkdf2Sha256(n) => {
                pbkdf2::pbkdf2::<Hmac<Sha256>>(password, salt, n, &mut out).is_ok()
            }
            Method::Pbkdf2Sha512(n) => {
                pbkdf2::pbkdf2::<Hmac<Sha512>>(password, salt, n, &mut out).is_ok()
            }
            Method::Scrypt { log_n, r, p } => scrypt::Params::new(log_n, r, p, out.len())
                .ok()
                .and_then(|params| scrypt::scrypt(password, salt, &params, &mut out).ok())
                .is_some(),
        };
        computed && bool::from(out.as_slice().ct_eq(&self.hash))
    }
}

#[cfg(test)]
mod tests {
    use super::WerkzeugHash;

    // Made with Werkzeug 3.1.8's generate_password_hash.
    const PBKDF2_SHA256: &str = "pbkdf2:sha256:1000$Nqq2h5XAggzYy0pK$a7de6a1cc3e32bb94989245612294f76365f7f5faadc19b92bca73c3911f2bed";
    const PBKDF2_SHA512: &str = "pbkdf2:sha512:1000$0lNwoUZT9IIzo1Lw$3a778948330bb731cb2b549b6f3f3481a57ef1a131291403ba7bb0429ef9aeacba52635718f64aef86d7f6b14ac0fa10f4b76503b868c83e92572162ee5b04d1";
    const SCRYPT: &str = "scrypt:32768:8:1$bFyEE8KL61Dr3kpV$6ddfd2d5ca47805857777ee30f5b4b03f877a958f6aaa44cccbe54d87ca4607d03b83bd02607f8ed08ed7cb001932214f61489576d247fd87d1ec783f8dc7c37";

    #[test]
    fn werkzeug_hashes_verify() {
        let check =
            |stored: &str, pw: &str| WerkzeugHash::parse(stored).unwrap().verify(pw.as_bytes());
        assert!(check(PBKDF2_SHA256, "flask password 3"));
        assert!(!check(PBKDF2_SHA256, "flask password 4"));
        assert!(check(PBKDF2_SHA512, "flask password 4"));
        assert!(check(SCRYPT, "flask password 2"));
        assert!(!check(SCRYPT, "flask password 3"));
    }

    #[test]
    fn other_formats_and_hostile_costs_are_refused() {
        for bad in [
            "$argon2id$v=19$m=19456,t=2,p=1$abc$def",
            "md5$salt$abcd",
            "pbkdf2:sha1:1000$salt$abcd",
            "pbkdf2:sha256:99999999999$salt$abcd",
            "scrypt:1048576:8:1$salt$abcd",
            "scrypt:1000:8:1$salt$abcd",
            "pbkdf2:sha256:1000$$abcd",
            "pbkdf2:sha256:1000$salt$xyz",
            "plaintext",
        ] {
            assert!(WerkzeugHash::parse(bad).is_none(), "{bad}");
        }
    }
}

/// Property tests: whatever is in the imported column, parsing never panics.
#[cfg(test)]
mod properties {
    use super::WerkzeugHash;
    use proptest::prelude::*;

    /// Strings shaped like Werkzeug hashes, with hostile numbers and hex.
    fn hash_like() -> impl Strategy<Value = String> {
        let method = prop_oneof![
            "pbkdf2(:sha(256|512|1))?(:[0-9+-]{0,12})?",
            "scrypt:[0-9+-]{0,21}:[0-9+-]{0,11}:[0-9+-]{0,11}",
            "\\PC{0,12}",
        ];
        let hex = prop_oneof!["[0-9a-fA-F+-]{0,300}", "\\PC{0,20}"];
        (method, "\\PC{0,20}", hex).prop_map(|(m, salt, hex)| format!("{m}${salt}${hex}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn parsing_never_panics(raw in prop_oneof![any::<String>(), hash_like()]) {
            let _ = WerkzeugHash::parse(&raw);
        }
    }
}
