//! Recovery codes: 10 per user, each 80 random bits written as 16 characters of Crockford's
//! base32 in four groups (`7k2m-x9qa-…`), easy to read aloud and to type. Only a SHA-256 of
//! each is stored: a code has 80 bits of entropy, so a fast hash cannot be brute-forced, and a
//! slow one would only make every sign-in with a code slower.

use sha2::{Digest, Sha256};

/// Codes per set.
pub const COUNT: usize = 10;
/// Random bytes per code (80 bits).
const CODE_BYTES: usize = 10;
/// Crockford's base32 alphabet, lowercase (no i, l, o, u).
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A freshly drawn set: the codes to show once, and the hashes to store.
pub struct CodeSet {
    /// Shown to the user this once.
    pub codes: Vec<String>,
    /// Stored.
    pub hashes: Vec<[u8; 32]>,
}

impl std::fmt::Debug for CodeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CodeSet({} codes)", self.codes.len())
    }
}

/// Draws [`COUNT`] new codes for `user_id` from the operating system's CSPRNG.
pub fn generate(user_id: i64) -> Result<CodeSet, getrandom::Error> {
    let mut codes = Vec::with_capacity(COUNT);
    for _ in 0..COUNT {
        let mut bytes = [0u8; CODE_BYTES];
        getrandom::fill(&mut bytes)?;
        codes.push(format_code(&bytes));
    }
    let hashes = codes.iter().map(|c| hash(user_id, &canonical(c))).collect();
    Ok(CodeSet { codes, hashes })
}

fn format_code(bytes: &[u8; CODE_BYTES]) -> String {
    let mut bits: u128 = 0;
    for b in bytes {
        bits = (bits << 8) | u128::from(*b);
    }
    let chars: Vec<char> = (0..16)
        .rev()
        .map(|i| char::from(ALPHABET[((bits >> (5 * i)) & 0x1f) as usize]))
        .collect();
    chars
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// The form codes are hashed in: lowercase without separators, with the letters people
/// confuse with digits read as those digits (Crockford's rule).
pub fn canonical(normalized: &str) -> String {
    normalized
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| match c.to_ascii_lowercase() {
            'i' | 'l' => '1',
            'o' => '0',
            other => other,
        })
        .collect()
}

/// Whether `canonical` can be a recovery code at all (16 characters of the alphabet).
pub fn plausible(canonical: &str) -> bool {
    canonical.len() == 16 && canonical.bytes().all(|b| ALPHABET.contains(&b))
}

/// The stored hash: SHA-256 over a label, the user id and the canonical code, so equal codes
/// of two users never share a hash.
pub fn hash(user_id: i64, canonical: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"latch recovery code\0");
    hasher.update(user_id.to_be_bytes());
    hasher.update(canonical.as_bytes());
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_readable_and_hash_to_the_stored_form() {
        let set = generate(7).unwrap();
        assert_eq!(set.codes.len(), COUNT);
        let mut unique = set.codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), COUNT);
        for (code, stored) in set.codes.iter().zip(&set.hashes) {
            assert_eq!(code.len(), 19, "{code}");
            assert_eq!(code.matches('-').count(), 3);
            let typed = code.to_uppercase().replace('-', " ");
            assert!(plausible(&canonical(&typed)));
            assert_eq!(&hash(7, &canonical(&typed)), stored);
            assert_ne!(&hash(8, &canonical(&typed)), stored);
        }
    }

    #[test]
    fn eighty_bits_fill_sixteen_characters() {
        assert_eq!(format_code(&[0; 10]), "0000-0000-0000-0000");
        assert_eq!(format_code(&[0xff; 10]), "zzzz-zzzz-zzzz-zzzz");
        assert_eq!(canonical("IlO0-abcd"), "1100abcd");
        assert!(!plausible("abc"));
        assert!(!plausible("uuuuuuuuuuuuuuuu"));
    }
}
