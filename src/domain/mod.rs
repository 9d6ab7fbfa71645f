//! Domain types: each one can only hold a valid value, so code that receives one need not
//! check it again ("parse, don't validate").

pub mod access;
pub mod client_ip;
mod email;
mod factor;
mod field_errors;
mod flex;
pub mod local_limit;
mod next_path;
mod otp_code;
mod password;
mod role;
mod token;
mod username;

pub use email::EmailAddress;
pub use factor::{Factor, Factors};
pub use field_errors::FieldErrors;
pub use flex::{flex_bool, flex_i64};
pub use next_path::{NextPath, ReturnDomains};
pub use otp_code::{normalize_code, totp_digits, CodeShape, MAX_CODE_CHARS};
pub use password::Password;
pub use role::{RoleName, ADMIN_ROLE, IMPLICIT_ROLE};
pub use token::{constant_time_eq, SecretToken, TokenHash};
pub use username::Username;

use unicode_normalization::UnicodeNormalization;

/// NFKC-normalises `s`, the form every identifier and password is compared in.
pub(crate) fn nfkc(s: &str) -> String {
    s.nfkc().collect()
}

/// NFKC then lower case, and for an email address its domain in ASCII (punycode) form, as
/// [`EmailAddress`] stores it: the form identifiers are looked up in, so a sign-in with
/// `b@пример.рф` finds the account of `b@xn--e1afmkfd.xn--p1ai`. Text that is not an address
/// (a username, a search prefix) is only NFKC-normalised and lower-cased.
pub fn nfkc_lower(s: &str) -> String {
    let lower = nfkc(s).to_lowercase();
    if lower.contains('@') {
        if let Some(canonical) = email::canonical_email(&lower) {
            return canonical;
        }
    }
    lower
}

/// Parses an optional profile field (first or last name): trimmed, at most 100 characters,
/// no control characters; empty means absent.
pub fn parse_profile_name(raw: Option<&str>) -> Result<Option<String>, String> {
    let Some(raw) = raw else { return Ok(None) };
    let value = nfkc(raw.trim());
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > 100 {
        return Err("Must be at most 100 characters.".into());
    }
    if value.chars().any(|c| c.is_control()) {
        return Err("Must not contain control characters.".into());
    }
    Ok(Some(value))
}
