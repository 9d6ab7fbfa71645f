//! The pure parts of a ceremony: finding the challenge a response answers, and reading the
//! name a user gives a passkey.

use base64::Engine;

use crate::domain::FieldErrors;

/// The longest passkey name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// The name a passkey gets when its owner gives none.
pub const DEFAULT_NAME: &str = "Passkey";

/// The challenge a response answers: the `challenge` member of its `clientDataJSON`
/// (base64url), which the authenticator's signature covers. The stored ceremony is found by
/// it, so a response can only ever finish the ceremony it was made for.
pub fn challenge_of(client_data_json: &[u8]) -> Option<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct ClientData<'a> {
        #[serde(borrow)]
        challenge: std::borrow::Cow<'a, str>,
    }
    let data: ClientData<'_> = serde_json::from_slice(client_data_json).ok()?;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(data.challenge.trim_end_matches('='))
        .ok()?;
    (!challenge.is_empty() && challenge.len() <= 64).then_some(challenge)
}

/// A passkey's name as typed: trimmed, [`DEFAULT_NAME`] when blank, at most
/// [`MAX_NAME_CHARS`] characters and no control characters.
pub fn name(raw: Option<&str>) -> Result<String, FieldErrors> {
    let trimmed = raw.unwrap_or_default().trim();
    if trimmed.is_empty() {
        return Ok(DEFAULT_NAME.to_owned());
    }
    if trimmed.len() > 4 * MAX_NAME_CHARS || trimmed.chars().count() > MAX_NAME_CHARS {
        return Err(FieldErrors::single(
            "name",
            format!("Must be at most {MAX_NAME_CHARS} characters."),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldErrors::single(
            "name",
            "Must not contain control characters.",
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_comes_from_the_client_data() {
        let json = br#"{"type":"webauthn.get","challenge":"AAECAw","origin":"https://a.example"}"#;
        assert_eq!(challenge_of(json), Some(vec![0, 1, 2, 3]));
        assert_eq!(challenge_of(br#"{"challenge":""}"#), None);
        assert_eq!(challenge_of(br#"{"challenge":"!!"}"#), None);
        assert_eq!(challenge_of(b"not json"), None);
        assert_eq!(challenge_of(br#"{"type":"webauthn.get"}"#), None);
        let long = format!(r#"{{"challenge":"{}"}}"#, "A".repeat(200));
        assert_eq!(challenge_of(long.as_bytes()), None);
    }

    #[test]
    fn names_are_trimmed_defaulted_and_bounded() {
        assert_eq!(name(Some("  Laptop ")).unwrap(), "Laptop");
        assert_eq!(name(None).unwrap(), DEFAULT_NAME);
        assert_eq!(name(Some("   ")).unwrap(), DEFAULT_NAME);
        assert!(name(Some(&"x".repeat(65))).is_err());
        assert_eq!(name(Some(&"é".repeat(64))).unwrap().chars().count(), 64);
        assert!(name(Some("a\u{0}b")).is_err());
    }
}
