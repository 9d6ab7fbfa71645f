use serde::{Deserialize, Deserializer};

/// Deserialises a boolean sent as JSON `true`/`false` or as a form value (`on`, `true`,
/// `1`, `yes`; `off`, `false`, `0`, `no` or empty).
pub fn flex_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flex {
        Bool(bool),
        Text(String),
    }
    match Option::<Flex>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Flex::Bool(b)) => Ok(Some(b)),
        Some(Flex::Text(t)) => match t.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "1" | "yes" => Ok(Some(true)),
            "off" | "false" | "0" | "no" | "" => Ok(Some(false)),
            _ => Err(serde::de::Error::custom("expected a boolean")),
        },
    }
}

/// Deserialises a whole number sent as JSON number or as form text.
pub fn flex_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flex {
        Number(i64),
        Text(String),
    }
    match Option::<Flex>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Flex::Number(n)) => Ok(Some(n)),
        Some(Flex::Text(t)) if t.trim().is_empty() => Ok(None),
        Some(Flex::Text(t)) => t
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom("expected a whole number")),
    }
}
