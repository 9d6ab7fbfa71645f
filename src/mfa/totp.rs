//! RFC 6238 TOTP (HMAC-SHA-1, 6 digits, 30-second steps) on the `hmac` and `sha1` crates,
//! checked against the RFC's test vectors, and the RFC 4648 base32 that authenticator apps
//! read secrets in.

use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::clock::Timestamp;

/// Seconds per step.
pub const PERIOD: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Bytes of a new secret: 160 bits, the HMAC-SHA-1 block output RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;

/// The step a Unix time falls in.
pub fn step_at(now: Timestamp) -> i64 {
    now.div_euclid(PERIOD)
}

/// The HOTP value (RFC 4226) of `secret` at counter `step`, truncated to `digits` digits.
pub fn hotp(secret: &[u8], step: i64, digits: u32) -> u32 {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return u32::MAX;
    };
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    binary % 10u32.pow(digits)
}

/// The six-digit code of `secret` for `step`.
pub fn code_at(secret: &[u8], step: i64) -> u32 {
    hotp(secret, step, DIGITS)
}

/// The step among the previous, current and next one whose code is `code`, if any (checked
/// in constant time per step, all three always computed).
pub fn matching_step(secret: &[u8], code: u32, now: Timestamp) -> Option<i64> {
    let current = step_at(now);
    let mut found = None;
    for step in [current - 1, current, current + 1] {
        let expected = code_at(secret, step).to_be_bytes();
        let equal = bool::from(subtle::ConstantTimeEq::ct_eq(
            &expected[..],
            &code.to_be_bytes()[..],
        ));
        if equal && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// RFC 4648 base32 without padding (what `otpauth://` URLs carry).
pub fn base32_encode(bytes: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(bytes)
}

/// Decodes base32 as people copy it (any case, spaces and padding ignored); `None` on any
/// other character.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let clean: String = text
        .chars()
        .filter(|c| *c != '=' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    data_encoding::BASE32_NOPAD.decode(clean.as_bytes()).ok()
}

/// The `otpauth://` URL an authenticator app scans: issuer `latch`, the username as the
/// account name, SHA-1, 6 digits, 30 s.
pub fn otpauth_url(username: &str, secret: &[u8]) -> String {
    let label: String =
        percent_encoding::utf8_percent_encode(username, percent_encoding::NON_ALPHANUMERIC)
            .collect();
    format!(
        "otpauth://totp/latch:{label}?secret={}&issuer=latch&algorithm=SHA1&digits={DIGITS}&period={PERIOD}",
        base32_encode(secret)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows: the 20-byte ASCII secret "12345678901234567890" and
    /// 8-digit codes.
    #[test]
    fn rfc6238_test_vectors() {
        let secret = b"12345678901234567890";
        let vectors = [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ];
        for (time, expected) in vectors {
            assert_eq!(hotp(secret, step_at(time), 8), expected, "T={time}");
            assert_eq!(code_at(secret, step_at(time)), expected % 1_000_000);
        }
    }

    /// RFC 4226 appendix D: HOTP values for counters 0 to 9.
    #[test]
    fn rfc4226_test_vectors() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, value) in expected.into_iter().enumerate() {
            assert_eq!(hotp(b"12345678901234567890", counter as i64, 6), value);
        }
    }

    #[test]
    fn previous_current_and_next_steps_match_and_no_other() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111;
        let step = step_at(now);
        for s in [step - 1, step, step + 1] {
            assert_eq!(matching_step(secret, code_at(secret, s), now), Some(s));
        }
        for s in [step - 2, step + 2] {
            let code = code_at(secret, s);
            let near = [step - 1, step, step + 1].map(|n| code_at(secret, n));
            if !near.contains(&code) {
                assert_eq!(matching_step(secret, code, now), None);
            }
        }
    }

    #[test]
    fn base32_round_trips_with_rfc4648_vectors() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_encode(b"f"), "MY");
        assert_eq!(base32_encode(b""), "");
        assert_eq!(base32_decode("MZXW6YTBOI======").unwrap(), b"foobar");
        assert_eq!(base32_decode("mzxw 6ytb oi").unwrap(), b"foobar");
        assert!(base32_decode("MZ1").is_none());
        let secret: Vec<u8> = (0u8..20).collect();
        assert_eq!(base32_decode(&base32_encode(&secret)).unwrap(), secret);
        assert_eq!(base32_encode(&secret).len(), 32);
    }

    #[test]
    fn otpauth_url_has_the_documented_shape() {
        let url = otpauth_url("ann bee", b"12345678901234567890");
        assert_eq!(
            url,
            "otpauth://totp/latch:ann%20bee?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=latch&algorithm=SHA1&digits=6&period=30"
        );
    }
}
