//! H1/H2: hostile and broken request bodies get a 4xx with the error envelope, never a 5xx,
//! and nothing in any answer betrays the internals.

use crate::helpers::*;
use crate::{backend_test, db_test};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";
const ENDPOINTS: [&str; 2] = ["/api/auth/signup", "/api/auth/login"];

/// Text that must never appear in a response body.
const LEAKS: &[&str] = &[
    "panicked",
    "sql",
    "sqlx",
    "syntax error",
    "stack",
    "backtrace",
    "src/",
    ".rs:",
];

/// An error response, checked against the contract: status, envelope, request id.
struct ErrorResponse {
    status: StatusCode,
    body: Value,
}

impl ErrorResponse {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
    fn has_field(&self, field: &str) -> bool {
        self.body["error"]["fields"][field]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    }
}

/// Reads an error response and checks the envelope and the request id.
async fn envelope(response: Response, context: &str) -> ErrorResponse {
    let status = response.status();
    let request_id = response
        .headers()
        .get("x-request-id")
        .unwrap_or_else(|| panic!("{context}: no X-Request-Id header"))
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!request_id.is_empty(), "{context}: empty X-Request-Id");
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{context}: {status} content type {content_type:?}: {text}"
    );
    assert!(
        !text.contains(&request_id),
        "{context}: the request id is in the body"
    );
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{context}: not JSON ({e}): {text}"));
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{context}: no error.code: {text}"));
    assert!(
        !code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "{context}: code {code:?}"
    );
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{context}: no error.message: {text}"));
    assert!(!message.is_empty(), "{context}: empty message");
    assert_no_leak(&text, context);
    ErrorResponse { status, body }
}

/// `text` without the random tokens a page carries (CSRF tokens are 43 base64url
/// characters, which can spell "sql" or "stack" by chance).
fn without_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            run.push(c);
            continue;
        }
        if run.len() < 40 {
            out.push_str(&run);
        }
        run.clear();
        out.push(c);
    }
    out
}

fn assert_no_leak(text: &str, context: &str) {
    let lower = without_tokens(text).to_lowercase();
    for leak in LEAKS {
        assert!(
            !lower.contains(leak),
            "{context}: the body contains {leak:?}: {text}"
        );
    }
}

db_test! {
    async fn sec_h1_body_over_one_mib_is_413(app) {
        for path in ENDPOINTS {
            let big = format!("{{\"username\":\"{}\"}}", "a".repeat(1024 * 1024 + 10));
            // A fresh client each time: the server may close the connection without reading
            // the rest of an oversized body.
            let response = app.new_client().post_raw(path, Some(JSON), big.into_bytes()).await;
            let error = envelope(response, path).await;
            assert_eq!(error.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
            assert_eq!(error.code(), "payload_too_large", "{path}");

            let big_form = format!("username={}", "a".repeat(1024 * 1024 + 10));
            let response = app.new_client().post_raw(path, Some(FORM), big_form.into_bytes()).await;
            let error = envelope(response, path).await;
            assert_eq!(error.status, StatusCode::PAYLOAD_TOO_LARGE, "{path} (form)");
            assert_eq!(error.code(), "payload_too_large");
        }
    }
}

db_test! {
    /// Oversized uploads whose clients keep sending the body after the 413 is ready: each must
    /// be able to send it and then read the 413 and its envelope. A server that closes the
    /// socket while body bytes keep arriving makes its kernel answer them with RST, which fails
    /// the client's next write (reqwest then reports a send error instead of the 413).
    async fn sec_h1_oversized_uploads_still_read_their_413(app) {
        const CLIENTS: usize = 8;
        let client = app.new_client();
        let token = client.csrf().await;
        let url = reqwest::Url::parse(&app.addr).unwrap();
        let cookies = reqwest::cookie::CookieStore::cookies(client.jar.as_ref(), &url).unwrap().to_str().unwrap().to_owned();
        let addr = app.addr.trim_start_matches("http://").to_owned();
        let mut uploads = tokio::task::JoinSet::new();
        for i in 0..CLIENTS {
            let (addr, token, cookies) = (addr.clone(), token.clone(), cookies.clone());
            uploads.spawn(async move { (i, oversized_upload(&addr, &token, &cookies).await) });
        }
        let mut failures = Vec::new();
        while let Some(joined) = uploads.join_next().await {
            let (i, response) = joined.unwrap();
            match response {
                Ok(text) if text.starts_with("HTTP/1.1 413") && text.contains("payload_too_large") => {}
                other => failures.push(format!("upload {i}: {other:?}")),
            }
        }
        assert!(failures.is_empty(), "{} of {CLIENTS} uploads: {failures:#?}", failures.len());
    }
}

/// Sends headers announcing 2 MiB, gives the server time to answer 413, then sends the whole
/// body in 64 KiB pieces (as a client on a slow link does, not reading until it has sent
/// everything), then reads the response until the server closes the connection.
async fn oversized_upload(addr: &str, token: &str, cookies: &str) -> std::io::Result<String> {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let head = format!(
        "POST /api/auth/signup HTTP/1.1\r\nHost: latch\r\nContent-Type: {JSON}\r\n\
         Content-Length: {}\r\nX-CSRF-Token: {token}\r\nCookie: {cookies}\r\n\r\n",
        2 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let piece = vec![b'a'; 64 * 1024];
    for _ in 0..32 {
        stream.write_all(&piece).await?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .map_err(|_| std::io::Error::other("no end of the response in 5 s"))??;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

db_test! {
    async fn sec_h1_body_of_exactly_one_mib_is_not_413(app) {
        let prefix = "{\"username\":\"";
        let suffix = "\"}";
        let filler = "a".repeat(1024 * 1024 - prefix.len() - suffix.len());
        let body = format!("{prefix}{filler}{suffix}");
        assert_eq!(body.len(), 1024 * 1024);
        let response = app.post_raw("/api/auth/signup", Some(JSON), body.into_bytes()).await;
        let error = envelope(response, "1 MiB").await;
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

db_test! {
    async fn sec_h1_text_plain_is_415(app) {
        for path in ENDPOINTS {
            let response = app
                .post_raw(path, Some("text/plain"), br#"{"login":"a","password":"b"}"#.to_vec())
                .await;
            let error = envelope(response, path).await;
            assert_eq!(error.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path}");
            assert_eq!(error.code(), "unsupported_media_type");
        }
    }
}

db_test! {
    async fn sec_h1_missing_or_odd_content_type_is_415(app) {
        for (content_type, body) in [
            (None, &b"login=a&password=b"[..]),
            (Some("multipart/form-data; boundary=x"), &b"--x--"[..]),
            (Some("application/xml"), &b"<a/>"[..]),
            (Some("text/html"), &b"<p>"[..]),
        ] {
            let response = app.post_raw("/api/auth/login", content_type, body.to_vec()).await;
            let error = envelope(response, &format!("{content_type:?}")).await;
            assert_eq!(error.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type:?}");
            assert_eq!(error.code(), "unsupported_media_type");
        }
    }
}

db_test! {
    async fn sec_h1_json_content_type_with_a_form_body_is_400(app) {
        let response = app.post_raw("/api/auth/login", Some(JSON), b"login=a&password=b".to_vec()).await;
        let error = envelope(response, "lying content type").await;
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
    }
}

db_test! {
    async fn sec_h1_malformed_json_array_surrogate_and_deep_nesting_are_400(app) {
        let deep_arrays = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let deep_objects = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
        let deep_in_field = format!("{{\"username\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("truncated", br#"{"username":"#.to_vec()),
            ("garbage", b"not json at all".to_vec()),
            ("trailing comma", br#"{"username":"a",}"#.to_vec()),
            ("array", br#"["alice","alice@example.com"]"#.to_vec()),
            ("number", b"42".to_vec()),
            ("string", br#""alice""#.to_vec()),
            ("null", b"null".to_vec()),
            ("lone surrogate", br#"{"username":"\ud800"}"#.to_vec()),
            ("lone low surrogate", br#"{"username":"\udc00x"}"#.to_vec()),
            ("invalid utf-8", b"{\"username\":\"\xff\xfe\"}".to_vec()),
            ("deep arrays", deep_arrays.into_bytes()),
            ("deep objects", deep_objects.into_bytes()),
            ("deep in a field", deep_in_field.into_bytes()),
        ];
        for path in ENDPOINTS {
            for (name, body) in &cases {
                let response = app.post_raw(path, Some(JSON), body.clone()).await;
                let error = envelope(response, &format!("{path} {name}")).await;
                assert_eq!(error.status, StatusCode::BAD_REQUEST, "{path} {name}");
                assert_eq!(error.code(), "bad_request", "{path} {name}");
            }
        }
    }
}

db_test! {
    async fn sec_h1_wrong_types_are_422_naming_the_field(app) {
        let cases = [
            ("/api/auth/signup", json!({"username": 5, "email": "a@example.com", "password": PASSWORD}), "username"),
            ("/api/auth/signup", json!({"username": "alice", "email": ["a@example.com"], "password": PASSWORD}), "email"),
            ("/api/auth/signup", json!({"username": "alice", "email": "a@example.com", "password": {"p": 1}}), "password"),
            ("/api/auth/signup", json!({"username": "alice", "email": "a@example.com", "password": PASSWORD, "first_name": true}), "first_name"),
            ("/api/auth/login", json!({"login": 5, "password": PASSWORD}), "login"),
            ("/api/auth/login", json!({"login": "alice", "password": 12345678}), "password"),
            ("/api/auth/login", json!({"login": "alice", "password": PASSWORD, "remember_me": "maybe"}), "remember_me"),
        ];
        for (path, body, field) in cases {
            let response = app.post_json(path, &body).await;
            let error = envelope(response, &format!("{path} {body}")).await;
            assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY, "{path} {body}");
            assert_eq!(error.code(), "validation_failed");
            assert!(error.has_field(field), "{path} {body}: no fields.{field} in {}", error.body);
        }
        // Nothing was created by any of them.
        assert_eq!(app.get("/api/auth/verify_auth").await.status(), StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn sec_h2_nul_byte_in_a_field_is_refused(app) {
        let json_cases = [
            ("/api/auth/signup", json!({"username": "al\u{0}ice", "email": "a@example.com", "password": PASSWORD})),
            ("/api/auth/signup", json!({"username": "alice", "email": "a@example.com\u{0}", "password": PASSWORD})),
            ("/api/auth/signup", json!({"username": "alice", "email": "a@example.com", "password": "correct horse\u{0}battery"})),
            ("/api/auth/signup", json!({"username": "alice", "email": "a@example.com", "password": PASSWORD, "first_name": "A\u{0}n"})),
            ("/api/auth/login", json!({"login": "alice\u{0}", "password": PASSWORD})),
        ];
        for (path, body) in json_cases {
            let response = app.post_json(path, &body).await;
            let error = envelope(response, &format!("{path} {body}")).await;
            assert!(error.status.is_client_error(), "{path} {body}: {}", error.status);
        }
        let response = app
            .post_raw("/api/auth/signup", Some(FORM), b"username=al%00ice&email=a%40example.com&password=correct+horse+battery+staple".to_vec())
            .await;
        let error = envelope(response, "form NUL").await;
        assert!(error.status.is_client_error());
        assert_eq!(app.get("/api/auth/verify_auth").await.status(), StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn sec_h2_invalid_utf8_form_body_is_400(app) {
        for path in ENDPOINTS {
            for body in [&b"login=%ff&password=x"[..], &b"login=\xff\xfe&password=x"[..], &b"lo%c3gin=a&password=x"[..]] {
                let response = app.post_raw(path, Some(FORM), body.to_vec()).await;
                let error = envelope(response, &format!("{path} {body:?}")).await;
                assert_eq!(error.status, StatusCode::BAD_REQUEST, "{path} {body:?}");
            }
        }
    }
}

db_test! {
    async fn sec_h2_repeated_form_fields_are_refused(app) {
        let response = app
            .post_raw(
                "/api/auth/signup",
                Some(FORM),
                b"username=alice&username=bob&email=a%40example.com&password=correct+horse+battery+staple".to_vec(),
            )
            .await;
        let error = envelope(response, "repeated username").await;
        assert!(error.status.is_client_error(), "{}", error.status);
        let response = app
            .post_raw("/api/auth/login", Some(FORM), b"login=alice&password=a&password=b".to_vec())
            .await;
        let error = envelope(response, "repeated password").await;
        assert!(error.status.is_client_error());
        assert_eq!(app.get("/api/auth/verify_auth").await.status(), StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn repeated_csrf_field_in_a_form_is_refused(app) {
        let token = app.page_csrf("/login").await;
        app.create_user("alice").await;
        let body = format!("csrf_token={token}&csrf_token=wrong&login=alice&password=correct+horse+battery+staple");
        let response = app
            .http
            .post(app.url("/api/auth/login"))
            .header("content-type", FORM)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
        assert_eq!(app.get("/api/auth/verify_auth").await.status(), StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn missing_fields_are_422_listing_each(app) {
        let response = app.post_json("/api/auth/signup", &json!({})).await;
        let error = envelope(response, "empty signup").await;
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error.code(), "validation_failed");
        for field in ["username", "email", "password"] {
            assert!(error.has_field(field), "fields.{field} missing: {}", error.body);
        }

        let response = app.post_json("/api/auth/login", &json!({})).await;
        let error = envelope(response, "empty login").await;
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
        for field in ["login", "password"] {
            assert!(error.has_field(field), "fields.{field} missing: {}", error.body);
        }

        let response = app.post_raw("/api/auth/signup", Some(FORM), b"email=a%40example.com".to_vec()).await;
        let error = envelope(response, "form signup").await;
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(error.has_field("username") && error.has_field("password") && !error.has_field("email"), "{}", error.body);
    }
}

db_test! {
    async fn several_invalid_fields_are_all_listed_at_once(app) {
        let response = app
            .post_json(
                "/api/auth/signup",
                &json!({"username": "a b", "email": "nope", "password": "short", "confirm": "other", "first_name": "x".repeat(101)}),
            )
            .await;
        let error = envelope(response, "all bad").await;
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
        for field in ["username", "email", "password", "confirm", "first_name"] {
            assert!(error.has_field(field), "fields.{field} missing: {}", error.body);
        }
    }
}

/// docs/security.md's bad-input corpus, as strings.
fn corpus() -> Vec<String> {
    vec![
        String::new(),
        "   ".into(),
        "\t\n".into(),
        "x".repeat(10_000),
        "é".repeat(10_000),
        "a\u{0}b".into(),
        "\u{ff41}\u{ff44}\u{ff4d}\u{ff49}\u{ff4e}".into(),
        "e\u{301}\u{301}\u{301}\u{301}".into(),
        "\u{fdfa}\u{fdfa}\u{fdfa}".into(),
        "ab\u{202e}cd".into(),
        "a\u{200d}b\u{200b}c".into(),
        "' OR 1=1 --".into(),
        "\"; DROP TABLE users; --".into(),
        "alice'--".into(),
        "<script>alert(1)</script>".into(),
        "{{7*7}}".into(),
        "${7*7}".into(),
        "%s%n%x".into(),
        "a\r\nBcc: x@y.z".into(),
        "a@b.c\r\nBcc: x@y.z".into(),
        "\u{1F600}\u{1F600} emoji pass".into(),
        "../../etc/passwd".into(),
        "\u{feff}alice".into(),
    ]
}

/// A valid sign-up for the `i`-th request, with `field` replaced by `value`.
fn signup_fields(i: usize, field: &str, value: &str) -> Vec<(String, String)> {
    let mut fields = vec![
        ("username".to_owned(), format!("sweep{i}")),
        ("email".to_owned(), format!("sweep{i}@example.com")),
        ("password".to_owned(), PASSWORD.to_owned()),
        ("first_name".to_owned(), "Ann".to_owned()),
    ];
    for (k, v) in &mut fields {
        if k == field {
            *v = value.to_owned();
        }
    }
    fields
}

fn form_body(fields: &[(String, String)]) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish()
        .into_bytes()
}

async fn assert_no_5xx(response: Response, context: &str) {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(!status.is_server_error(), "{context}: {status}: {text}");
    assert_no_leak(&text, context);
}

backend_test! {
    async fn sec_h2_bad_input_corpus_never_gives_a_5xx_or_leaks_internals(backend) {
        // Throttling would answer 429 before the input is even looked at: lift it.
        let app = TestApp::spawn_with(backend, |c| {
            c.throttle_account_failures = 1_000_000;
            c.throttle_ip_failures = 1_000_000;
        })
        .await;
        let mut i = 0;
        for value in corpus() {
            for field in ["username", "email", "password", "first_name"] {
                i += 1;
                let fields = signup_fields(i, field, &value);
                let object: serde_json::Map<String, Value> =
                    fields.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
                let context = format!("{field}={value:.40?}");

                let client = app.new_client();
                let response = client.post_json("/api/auth/signup", &Value::Object(object)).await;
                assert_no_5xx(response, &format!("JSON signup {context}")).await;

                i += 1;
                let fields = signup_fields(i, field, &value);
                let response = client.post_raw("/api/auth/signup", Some(FORM), form_body(&fields)).await;
                assert_no_5xx(response, &format!("form signup {context}")).await;

                i += 1;
                let client = app.new_client();
                let fields = signup_fields(i, field, &value);
                let response = client.post_raw("/register", Some(FORM), form_body(&fields)).await;
                assert_no_5xx(response, &format!("/register {context}")).await;
            }
            for field in ["login", "password"] {
                let mut fields = vec![("login".to_owned(), "sweep1".to_owned()), ("password".to_owned(), "Wrong-Pass-1".to_owned())];
                for (k, v) in &mut fields {
                    if k == field {
                        *v = value.clone();
                    }
                }
                let context = format!("{field}={value:.40?}");
                let client = app.new_client();
                let object: serde_json::Map<String, Value> =
                    fields.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
                let response = client.post_json("/api/auth/login", &Value::Object(object)).await;
                assert_no_5xx(response, &format!("JSON login {context}")).await;
                let response = client.post_raw("/api/auth/login", Some(FORM), form_body(&fields)).await;
                assert_no_5xx(response, &format!("form login {context}")).await;
                let response = client.post_raw("/login", Some(FORM), form_body(&fields)).await;
                assert_no_5xx(response, &format!("/login {context}")).await;
            }
        }
    }
}

db_test! {
    async fn sec_h2_raw_json_oddities_in_each_field_never_give_a_5xx(app) {
        let literals = [
            r#""\ud800""#,
            r#""\udfff\ud800""#,
            "123",
            "-1e400",
            "1e400",
            "[\"a\"]",
            "{\"a\":1}",
            "null",
            "true",
            r#""\u0000""#,
            r#""a\u2028b""#,
        ];
        for path in ENDPOINTS {
            for field in ["username", "login", "email", "password", "first_name", "remember_me", "confirm"] {
                for literal in literals {
                    let body = format!(
                        r#"{{"username":"alice","login":"alice","email":"a@example.com","password":"correct horse battery staple","{field}":{literal}}}"#
                    );
                    let client = app.new_client();
                    let response = client.post_raw(path, Some(JSON), body.clone().into_bytes()).await;
                    assert_no_5xx(response, &format!("{path} {body}")).await;
                }
            }
            // Duplicate keys.
            let body = r#"{"username":"alice","username":"bob","login":"x","login":"y","email":"a@example.com","password":"correct horse battery staple"}"#;
            let response = app.new_client().post_raw(path, Some(JSON), body.as_bytes().to_vec()).await;
            assert_no_5xx(response, &format!("{path} duplicate keys")).await;
        }
    }
}

db_test! {
    async fn sec_h5_email_with_a_header_injection_is_422_at_email(app) {
        let response = app
            .post_json(
                "/api/auth/signup",
                &json!({"username": "alice", "email": "a@b.example\r\nBcc: x@y.example", "password": PASSWORD}),
            )
            .await;
        let error = envelope(response, "CRLF email").await;
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(error.has_field("email"), "{}", error.body);
    }
}

db_test! {
    async fn unknown_api_path_is_a_404_json_envelope(app) {
        for path in ["/api/nope", "/api/auth/nope", "/api/"] {
            let response = app.get(path).await;
            let error = envelope(response, path).await;
            assert_eq!(error.status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(error.code(), "not_found", "{path}");
        }
        let response = app.post_json("/api/nope", &json!({})).await;
        let error = envelope(response, "POST /api/nope").await;
        assert_eq!(error.status, StatusCode::NOT_FOUND);
    }
}

db_test! {
    async fn wrong_method_on_an_api_route_is_a_json_envelope(app) {
        let response = app.get("/api/auth/login").await;
        let error = envelope(response, "GET /api/auth/login").await;
        assert_eq!(error.status, StatusCode::METHOD_NOT_ALLOWED);
    }
}

db_test! {
    async fn every_error_has_the_envelope_and_a_request_id_header_not_in_the_body(app) {
        let mut responses: Vec<(String, Response)> = Vec::new();
        responses.push(("401 verify_auth".into(), app.get("/api/auth/verify_auth").await));
        responses.push(("401 auth/check".into(), app.get("/auth/check").await));
        responses.push((
            "403 csrf".into(),
            app.post_json_with_token("/api/auth/login", &json!({"login": "a", "password": "b"}), None).await,
        ));
        responses.push(("401 login".into(), app.login("nobody", "Wrong-Pass-1", false).await));
        responses.push(("422".into(), app.post_json("/api/auth/signup", &json!({})).await));
        responses.push(("400".into(), app.post_raw("/api/auth/login", Some(JSON), b"{".to_vec()).await));
        responses.push(("415".into(), app.post_raw("/api/auth/login", Some("text/plain"), b"x".to_vec()).await));
        responses.push(("404".into(), app.get("/api/nope").await));
        app.create_user("alice").await;
        responses.push(("409".into(), app.signup("alice", "other@example.com", PASSWORD).await));
        for (name, response) in responses {
            let status = response.status();
            let error = envelope(response, &name).await;
            assert!(error.status.is_client_error(), "{name}: {status}");
        }
    }
}

db_test! {
    async fn request_ids_differ_between_requests_and_never_appear_in_pages(app) {
        let first = app.get("/no-such-page").await;
        let second = app.get("/no-such-page").await;
        let id1 = first.headers()["x-request-id"].to_str().unwrap().to_owned();
        let id2 = second.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_ne!(id1, id2);
        assert!(!first.text().await.unwrap().contains(&id1));
        let page = app.get("/login").await;
        let id = page.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(!page.text().await.unwrap().contains(&id));
    }
}

db_test! {
    async fn a_client_supplied_request_id_is_not_echoed(app) {
        let response = app
            .http
            .get(app.url("/api/nope"))
            .header("X-Request-Id", "forged-id-1234")
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_ne!(id, "forged-id-1234");
        assert!(!response.text().await.unwrap().contains("forged"));
    }
}
