//! Request bodies: JSON or URL-encoded forms, decoded strictly into one shape, with the CSRF
//! check done before any field is looked at.
//!
//! Decoding goes through a JSON object for both encodings, so one path checks the CSRF field,
//! refuses NUL bytes and reports wrong types per field. Form decoding is written here rather
//! than using `serde_urlencoded` because that crate replaces invalid UTF-8 silently and lets
//! a repeated field through; latch refuses both.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use percent_encoding::percent_decode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{ApiError, Rejection};
use super::extract::{wants_json, MaybeSession};
use crate::csrf;
use crate::domain::FieldErrors;
use crate::sessions::ActiveSession;
use crate::state::AppState;
use axum::extract::FromRef;

/// Largest accepted body.
pub const MAX_BODY: usize = 1024 * 1024;

/// A decoded body of shape `T` whose CSRF token matched the request's session.
#[derive(Debug)]
pub struct Input<T> {
    /// The fields.
    pub data: T,
    /// The session the token was checked against.
    pub session: Option<ActiveSession>,
}

/// A body with no fields of interest (sign-out, resend…): only the CSRF token is checked.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct NoFields {}

/// A decoded body for an endpoint authorised by a secret it carries (a mailed reset or
/// verification token): no CSRF token is needed, because a forged request cannot know the
/// secret, and a cross-site request with the user's cookie gains nothing from it.
#[derive(Debug)]
pub struct TokenInput<T>(pub T);

/// The decoded fields of a request, and what the CSRF check needs.
struct RawBody {
    fields: Map<String, Value>,
    session: Option<ActiveSession>,
    header_token: Option<String>,
    /// Authenticated by `Authorization: Bearer`: no CSRF token needed (see
    /// [`crate::tokens`]).
    bearer: bool,
    html: bool,
}

async fn read_body(req: Request, state: &AppState) -> Result<RawBody, Rejection> {
    let html = !wants_json(req.uri(), req.headers());
    let reject = |error| Rejection { error, html };
    let (mut parts, body) = req.into_parts();
    let MaybeSession(session) = MaybeSession::from_request_parts(&mut parts, state).await?;
    // Only a bearer token that authenticates exempts the request from CSRF (a made-up
    // `Authorization` header must not open sign-in or sign-up to it).
    let bearer = super::extract::bearer(&parts.headers).is_some()
        && super::extract::CurrentUser::from_request_parts(&mut parts, state)
            .await?
            .0
            .is_some();
    let header_token = csrf::HEADERS
        .iter()
        .find_map(|h| parts.headers.get(*h))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_type = parts.headers.get(header::CONTENT_TYPE).map(|v| {
        v.to_str()
            .map(str::to_owned)
            .unwrap_or_else(|_| "invalid".into())
    });
    let too_long = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > MAX_BODY as u64);
    if too_long {
        return Err(reject(ApiError::PayloadTooLarge));
    }
    drop(parts);
    // The limit is applied here rather than by axum's `DefaultBodyLimit` layer, which costs
    // every request (a body or not) an extension; this is the one place latch reads a body.
    let bytes: Bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(reject(ApiError::PayloadTooLarge))
        }
        Err(_) => {
            return Err(reject(ApiError::BadRequest(
                "the body could not be received".into(),
            )))
        }
    };
    let fields = decode(content_type.as_deref(), &bytes).map_err(reject)?;
    Ok(RawBody {
        fields,
        session,
        header_token,
        bearer,
        html,
    })
}

impl<T: DeserializeOwned + Send, S> FromRequest<S> for Input<T>
where
    crate::handle::Latch: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Rejection> {
        let latch = crate::handle::Latch::from_ref(state);
        let state = latch.state();
        let RawBody {
            fields,
            session,
            header_token,
            bearer,
            html,
        } = read_body(req, state).await?;
        let reject = |error| Rejection { error, html };
        let body_token = fields.get(csrf::FIELD).and_then(Value::as_str);
        if !bearer && !csrf::is_valid(session.as_ref(), header_token.as_deref().or(body_token)) {
            return Err(reject(ApiError::CsrfFailed));
        }
        let data = to_struct(fields).map_err(reject)?;
        Ok(Input { data, session })
    }
}

impl<T: DeserializeOwned + Send, S> FromRequest<S> for TokenInput<T>
where
    crate::handle::Latch: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Rejection> {
        let latch = crate::handle::Latch::from_ref(state);
        let state = latch.state();
        let RawBody { fields, html, .. } = read_body(req, state).await?;
        to_struct(fields)
            .map(TokenInput)
            .map_err(|error| Rejection { error, html })
    }
}

/// Decodes a body into a JSON object according to its content type.
pub fn decode(content_type: Option<&str>, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let essence = content_type.map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    match essence.as_deref() {
        _ if body.iter().all(u8::is_ascii_whitespace) && !is_json(essence.as_deref()) => {
            Ok(Map::new())
        }
        Some("application/x-www-form-urlencoded") => decode_form(body),
        ct if is_json(ct) => {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Map::new());
            }
            match serde_json::from_slice::<UniqueKeys>(body) {
                Ok(UniqueKeys(Value::Object(map))) => Ok(map),
                Ok(_) => Err(ApiError::BadRequest(
                    "the JSON body must be an object".into(),
                )),
                // Data errors come only from `UniqueKeys` (a repeated key): said like the
                // repeated form field, without the position serde_json appends.
                Err(e) if e.is_data() => {
                    let text = e.to_string();
                    let position = format!(" at line {} column {}", e.line(), e.column());
                    let message = text.strip_suffix(&position).unwrap_or(&text).to_owned();
                    Err(ApiError::BadRequest(message))
                }
                Err(e) => Err(ApiError::BadRequest(format!("malformed JSON ({e})"))),
            }
        }
        _ => Err(ApiError::UnsupportedMediaType),
    }
}

/// A JSON value in which no object repeats a key. serde_json keeps the last of repeated keys;
/// latch refuses them, as it refuses a repeated form field, so a body means one thing to every
/// reader (a proxy or WAF that keeps the first one sees another request than latch would).
struct UniqueKeys(Value);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(UniqueKeysVisitor)
            .map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        UniqueKeys::deserialize(d).map(|v| v.0)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueKeys(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "the field {key:?} is given more than once"
                )));
            }
            let UniqueKeys(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

fn is_json(essence: Option<&str>) -> bool {
    essence.is_some_and(|e| {
        e == "application/json" || (e.starts_with("application/") && e.ends_with("+json"))
    })
}

fn decode_form(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::BadRequest("the form body is not valid UTF-8".into()))?;
    let mut map = Map::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = form_component(key)?;
        let value = form_component(value)?;
        if map.insert(key.clone(), Value::String(value)).is_some() {
            return Err(ApiError::BadRequest(format!(
                "the field {key:?} is given more than once"
            )));
        }
    }
    Ok(map)
}

fn form_component(raw: &str) -> Result<String, ApiError> {
    let plus_decoded = raw.replace('+', " ");
    percent_decode(plus_decoded.as_bytes())
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::BadRequest("a form field is not valid UTF-8".into()))
}

/// Turns the decoded object into `T`, reporting NUL bytes and wrong types per field.
fn to_struct<T: DeserializeOwned>(mut fields: Map<String, Value>) -> Result<T, ApiError> {
    fields.remove(csrf::FIELD);
    let mut errors = FieldErrors::new();
    for (key, value) in &fields {
        if value.as_str().is_some_and(|s| s.contains('\0')) {
            errors.add(key, "Must not contain NUL characters.");
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let body = Value::Object(fields);
    serde_path_to_error::deserialize(&body).map_err(|e| {
        let (field, message) = describe_type_error(&body, e.path(), &e.inner().to_string());
        ApiError::Validation(FieldErrors::single(&field, message))
    })
}

/// The field and a message for a person when the body has the right syntax but a field has
/// the wrong type. serde's own wording names Rust types ("untagged enum RolesField", "u32",
/// "struct X"), so it is never shown: the message says what was sent and, when serde's
/// expectation is one of a few known kinds, what is wanted instead.
fn describe_type_error(
    body: &Value,
    path: &serde_path_to_error::Path,
    detail: &str,
) -> (String, String) {
    use serde_path_to_error::Segment;
    // The top-level field is the name the form or JSON used; deeper positions are described
    // in the message.
    let mut field = None;
    let mut value = Some(body);
    let mut item = None;
    for segment in path.iter() {
        match segment {
            Segment::Map { key } => {
                field.get_or_insert_with(|| key.clone());
                value = value.and_then(|v| v.get(key));
            }
            Segment::Seq { index } => {
                item.get_or_insert(*index);
                value = value.and_then(|v| v.get(*index));
            }
            Segment::Enum { .. } | Segment::Unknown => value = None,
        }
    }
    if let Some(missing) = detail
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        return (missing.to_owned(), "Is required.".to_owned());
    }
    let field = field.unwrap_or_else(|| "body".to_owned());
    let given = value.map(json_kind);
    let wanted = detail
        .rsplit_once("expected ")
        .and_then(|(_, expected)| human_expectation(expected));
    let message = match (wanted, given) {
        // The right kind, but not a value the field takes (a negative count, say).
        _ if detail.starts_with("invalid value") => "Is not an accepted value.".to_owned(),
        (Some(wanted), Some(given)) => format!("Must be {wanted}, not {given}."),
        (Some(wanted), None) => format!("Must be {wanted}."),
        (None, Some(given)) => format!("Has the wrong type: {given} is not accepted here."),
        (None, None) => "Has the wrong type.".to_owned(),
    };
    let message = match item {
        Some(index) => format!("Item {}: {message}", index + 1),
        None => message,
    };
    (field, message)
}

/// What a JSON value is, in words.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// serde's "expected …" in words, for the kinds latch's bodies use; `None` for anything else
/// (a type name, say), which is then left out.
fn human_expectation(expected: &str) -> Option<String> {
    let expected = expected.trim().trim_end_matches('.');
    if let Some(variants) = expected.strip_prefix("one of ") {
        return Some(format!("one of {}", variants.replace('`', "")));
    }
    if expected.starts_with("struct ") {
        return Some("an object".to_owned());
    }
    let words = match expected {
        "a string" | "a borrowed string" | "a character" | "char" => "text",
        "a boolean" | "bool" => "true or false",
        "a whole number" | "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64"
        | "isize" | "usize" => "a whole number",
        "f32" | "f64" | "a number" => "a number",
        "a sequence" | "a list" => "a list",
        "a map" => "an object",
        _ => return None,
    };
    Some(words.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_strict() {
        assert_eq!(decode_form(b"a=1&b=x+y%21").unwrap()["b"], "x y!");
        assert!(decode_form(b"a=1&a=2").is_err());
        assert!(decode_form(b"a=%ff").is_err());
        assert!(decode_form(&[b'a', b'=', 0xff]).is_err());
    }

    #[test]
    fn content_types() {
        assert!(decode(Some("application/json; charset=utf-8"), b"{\"a\":1}").is_ok());
        assert!(matches!(
            decode(Some("text/plain"), b"a"),
            Err(ApiError::UnsupportedMediaType)
        ));
        assert!(matches!(
            decode(None, b"a=1"),
            Err(ApiError::UnsupportedMediaType)
        ));
        assert!(decode(None, b"").unwrap().is_empty());
        assert!(matches!(
            decode(Some("application/json"), b"a=1"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            decode(Some("application/json"), b"[1]"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            decode(Some("application/json"), b"{\"a\":\"\\ud800\"}"),
            Err(ApiError::BadRequest(_))
        ));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            decode(Some("application/json"), deep.as_bytes()),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn wrong_types_name_the_field() {
        #[derive(Debug, Deserialize)]
        struct S {
            #[allow(dead_code)]
            name: Option<String>,
        }
        let map = decode(Some("application/json"), b"{\"name\": 5}").unwrap();
        match to_struct::<S>(map) {
            Err(ApiError::Validation(f)) => assert!(f.first("name").is_some()),
            other => panic!("{other:?}"),
        }
        let map = decode(Some("application/json"), b"{\"name\": \"a\\u0000b\"}").unwrap();
        assert!(matches!(to_struct::<S>(map), Err(ApiError::Validation(_))));
    }

    /// The message of the one field error `body` gives when decoded into `T`.
    fn type_error<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> (String, String) {
        let map = decode(Some("application/json"), body.as_bytes()).unwrap();
        match to_struct::<T>(map) {
            Err(ApiError::Validation(fields)) => {
                let json = serde_json::to_value(&fields).unwrap();
                let (field, messages) = json.as_object().unwrap().iter().next().unwrap();
                (field.clone(), messages[0].as_str().unwrap().to_owned())
            }
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn type_errors_never_name_rust_types() {
        #[derive(Debug, Deserialize)]
        #[serde(untagged)]
        #[allow(dead_code)]
        enum TextOrList {
            List(Vec<String>),
            Text(String),
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Inner {
            a: Option<String>,
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct S {
            name: Option<String>,
            roles: Option<TextOrList>,
            tags: Option<Vec<String>>,
            count: Option<u32>,
            inner: Option<Inner>,
            #[serde(default, deserialize_with = "crate::domain::flex_bool")]
            flag: Option<bool>,
        }
        let cases = [
            (r#"{"name": 5}"#, "name", "Must be text, not a number."),
            (r#"{"name": ["a"]}"#, "name", "Must be text, not a list."),
            (
                r#"{"name": {"a": 1}}"#,
                "name",
                "Must be text, not an object.",
            ),
            (
                r#"{"roles": 5}"#,
                "roles",
                "Has the wrong type: a number is not accepted here.",
            ),
            (r#"{"tags": "a"}"#, "tags", "Must be a list, not text."),
            (
                r#"{"tags": ["a", 7]}"#,
                "tags",
                "Item 2: Must be text, not a number.",
            ),
            (
                r#"{"count": "x"}"#,
                "count",
                "Must be a whole number, not text.",
            ),
            (r#"{"count": -1}"#, "count", "Is not an accepted value."),
            (r#"{"inner": "x"}"#, "inner", "Must be an object, not text."),
            (
                r#"{"flag": 5}"#,
                "flag",
                "Has the wrong type: a number is not accepted here.",
            ),
            (
                r#"{"flag": "maybe"}"#,
                "flag",
                "Must be true or false, not text.",
            ),
        ];
        for (body, field, message) in cases {
            let (got_field, got) = type_error::<S>(body);
            assert_eq!(
                (got_field.as_str(), got.as_str()),
                (field, message),
                "{body}"
            );
            for rust in [
                "enum",
                "struct",
                "::",
                "TextOrList",
                "Inner",
                "u32",
                "Vec",
                "Option",
            ] {
                assert!(!got.contains(rust), "{body}: {got}");
            }
        }
    }

    #[test]
    fn json_objects_must_not_repeat_a_key() {
        for body in [
            r#"{"a": 1, "a": 2}"#,
            r#"{"a": "x", "b": {"c": 1, "c": 1}}"#,
            r#"{"a": [{"k": 1, "k": 2}]}"#,
        ] {
            match decode(Some("application/json"), body.as_bytes()) {
                Err(ApiError::BadRequest(message)) => {
                    assert!(message.contains("more than once"), "{body}: {message}");
                    assert!(!message.contains("line"), "{body}: {message}");
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        let ok = decode(
            Some("application/json"),
            br#"{"a": {"a": [1, 2.5, null, true, "s"]}, "b": -3}"#,
        )
        .unwrap();
        assert_eq!(ok["a"]["a"][1], 2.5);
        assert_eq!(ok["b"], -3);
    }
}

/// Property tests: arbitrary bytes under any content type never panic, and every refusal is
/// a client error with a message.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn content_type() -> impl Strategy<Value = Option<String>> {
        prop::option::of(prop_oneof![
            Just("application/json".to_owned()),
            Just("application/json; charset=utf-8".to_owned()),
            Just("application/problem+json".to_owned()),
            Just("application/x-www-form-urlencoded".to_owned()),
            Just("APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8".to_owned()),
            Just("text/plain".to_owned()),
            Just("multipart/form-data; boundary=x".to_owned()),
            "\\PC{0,30}",
        ])
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            "[a-z%=&+0-9]{0,60}".prop_map(String::into_bytes),
            "\\{\"[a-z_]{1,8}\": ?(\"\\PC{0,10}\"|[0-9]{1,4}|true|null|\\[\\]|\\{\\})\\}"
                .prop_map(String::into_bytes),
        ]
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Shape {
        login: Option<String>,
        #[serde(default, deserialize_with = "crate::domain::flex_bool")]
        remember_me: Option<bool>,
        #[serde(default, deserialize_with = "crate::domain::flex_i64")]
        expires_in_days: Option<i64>,
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn decoding_never_panics(ct in content_type(), bytes in body()) {
            match decode(ct.as_deref(), &bytes) {
                Ok(fields) => match to_struct::<Shape>(fields) {
                    Ok(_) => {}
                    Err(e) => {
                        prop_assert_eq!(e.status().as_u16(), 422);
                        prop_assert!(e.fields().is_some_and(|f| !f.is_empty()));
                    }
                },
                Err(e) => {
                    prop_assert!(matches!(e.status().as_u16(), 400 | 415), "{e:?}");
                    prop_assert!(!e.message().is_empty());
                }
            }
        }
    }
}
