//! What a user types as a second factor: a six-digit TOTP code or a recovery code. People
//! copy codes with spaces and dashes (`123 456`, `abcd-efgh-…`), so both are ignored.

/// The longest input looked at; anything longer is refused as a field error before any work.
pub const MAX_CODE_CHARS: usize = 64;

/// Why a typed code was refused before it was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeShape {
    /// Nothing typed.
    Empty,
    /// Longer than [`MAX_CODE_CHARS`].
    TooLong,
}

impl CodeShape {
    /// The message for the field.
    pub fn message(self) -> String {
        match self {
            CodeShape::Empty => "Enter the code.".into(),
            CodeShape::TooLong => format!("Must be at most {MAX_CODE_CHARS} characters."),
        }
    }
}

/// The code without spaces and dashes, lowercased; `Err` when empty or too long.
pub fn normalize_code(raw: &str) -> Result<String, CodeShape> {
    if raw.len() > 4 * MAX_CODE_CHARS || raw.chars().count() > MAX_CODE_CHARS {
        return Err(CodeShape::TooLong);
    }
    let code: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    if code.is_empty() {
        return Err(CodeShape::Empty);
    }
    Ok(code)
}

/// The six digits of a TOTP code, if the normalised input is exactly that.
pub fn totp_digits(normalized: &str) -> Option<u32> {
    (normalized.len() == 6 && normalized.bytes().all(|b| b.is_ascii_digit()))
        .then(|| normalized.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_normalised() {
        assert_eq!(normalize_code(" 123 456 ").unwrap(), "123456");
        assert_eq!(normalize_code("123-456").unwrap(), "123456");
        assert_eq!(normalize_code("ABCD-efgh").unwrap(), "abcdefgh");
        assert_eq!(normalize_code("  - "), Err(CodeShape::Empty));
        assert_eq!(normalize_code(&"1".repeat(10_000)), Err(CodeShape::TooLong));
        assert_eq!(totp_digits("012345"), Some(12345));
        for bad in ["12345", "1234567", "12a456", "١٢٣٤٥٦"] {
            assert_eq!(totp_digits(bad), None, "{bad}");
        }
    }
}
