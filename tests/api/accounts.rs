//! Sign-up, sign-in and password storage through the JSON API (docs/http-api.md "JSON API",
//! docs/security.md rows P, A1, H5, H6, Z3).

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::helpers::*;
use crate::{backend_test, db_test};
use latch::store::Db;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

/// The keys of docs/http-api.md's `User` object.
const USER_FIELDS: [&str; 9] = [
    "mfa_enabled",
    "id",
    "username",
    "email",
    "email_verified",
    "roles",
    "created_at",
    "first_name",
    "last_name",
];

/// Asserts that `user` is a `User` object with exactly docs/http-api.md's fields.
fn assert_user_object(user: &Value) {
    let keys: BTreeSet<&str> = user
        .as_object()
        .unwrap_or_else(|| panic!("User is not an object: {user}"))
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = USER_FIELDS.into_iter().collect();
    assert_eq!(keys, expected, "User object has the wrong fields: {user}");
}

/// Asserts a 422 `validation_failed` and returns its `fields`.
async fn validation_fields(response: Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "expected 422, got {status}: {body}"
    );
    assert_eq!(body["error"]["code"], "validation_failed", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body["error"]["fields"].clone()
}

/// Asserts that `fields[name]` holds at least one non-empty message.
fn assert_field_message(fields: &Value, name: &str) {
    let messages = fields[name]
        .as_array()
        .unwrap_or_else(|| panic!("no message for field {name:?} in {fields}"));
    assert!(
        !messages.is_empty(),
        "no message for field {name:?} in {fields}"
    );
    assert!(
        messages
            .iter()
            .all(|m| m.as_str().is_some_and(|s| !s.trim().is_empty())),
        "empty message for field {name:?} in {fields}"
    );
}

async fn signup_body(client: &TestClient, body: Value) -> Response {
    client.post_json("/api/auth/signup", &body).await
}

/// The stored password hash of the user whose normalised username is `username_norm`.
async fn stored_hash(db: &Db, username_norm: &str) -> String {
    let sql = "SELECT password_hash FROM users WHERE username_norm = $1";
    match db {
        Db::Sqlite(pool) => sqlx::query_scalar::<_, String>(sql)
            .bind(username_norm)
            .fetch_one(pool)
            .await
            .unwrap(),
        Db::Postgres(pool) => sqlx::query_scalar::<_, String>(sql)
            .bind(username_norm)
            .fetch_one(pool)
            .await
            .unwrap(),
    }
}

async fn set_stored_hash(db: &Db, username_norm: &str, hash: &str) {
    let sql = "UPDATE users SET password_hash = $1 WHERE username_norm = $2";
    let affected = match db {
        Db::Sqlite(pool) => sqlx::query(sql)
            .bind(hash)
            .bind(username_norm)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected(),
        Db::Postgres(pool) => sqlx::query(sql)
            .bind(hash)
            .bind(username_norm)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected(),
    };
    assert_eq!(affected, 1);
}

async fn count_users(db: &Db, username_norm: &str) -> i64 {
    let sql = "SELECT COUNT(*) FROM users WHERE username_norm = $1";
    match db {
        Db::Sqlite(pool) => sqlx::query_scalar::<_, i64>(sql)
            .bind(username_norm)
            .fetch_one(pool)
            .await
            .unwrap(),
        Db::Postgres(pool) => sqlx::query_scalar::<_, i64>(sql)
            .bind(username_norm)
            .fetch_one(pool)
            .await
            .unwrap(),
    }
}

async fn stored_roles(db: &Db, username_norm: &str) -> String {
    let sql = "SELECT roles FROM users WHERE username_norm = $1";
    match db {
        Db::Sqlite(pool) => sqlx::query_scalar::<_, String>(sql)
            .bind(username_norm)
            .fetch_one(pool)
            .await
            .unwrap(),
        Db::Postgres(pool) => sqlx::query_scalar::<_, String>(sql)
            .bind(username_norm)
            .fetch_one(pool)
            .await
            .unwrap(),
    }
}

// ---------------------------------------------------------------------------------------------
// Sign-up: success

db_test! {
    async fn sign_up_returns_201_with_exactly_the_user_fields(app) {
        let response = app.signup("alice", "Alice@Example.com", PASSWORD).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["user"], "body must be exactly {{\"user\": User}}: {body}");
        let user = &body["user"];
        assert_user_object(user);
        assert!(user["id"].is_i64(), "{user}");
        assert_eq!(user["username"], "alice");
        assert_eq!(user["email"], "alice@example.com");
        assert_eq!(user["email_verified"], false);
        assert_eq!(user["roles"], json!([]));
        assert!(user["created_at"].as_str().is_some_and(|t| t.len() >= 20 && t.contains('T')), "{user}");
        assert_eq!(user["first_name"], Value::Null);
        assert_eq!(user["last_name"], Value::Null);
        let text = body.to_string();
        assert!(!text.contains(PASSWORD) && !text.contains("$argon2") && !text.contains("hash"), "{text}");
    }
}

db_test! {
    async fn sign_up_signs_the_new_user_in(app) {
        let created: Value = app.signup("alice", "alice@example.com", PASSWORD).await.json().await.unwrap();
        let me = app.get("/api/auth/verify_auth").await;
        assert_eq!(me.status(), StatusCode::OK);
        let me: Value = me.json().await.unwrap();
        assert_user_object(&me["user"]);
        assert_eq!(me["user"], created["user"]);
    }
}

db_test! {
    async fn sign_up_accepts_the_user_name_alias(app) {
        let response = signup_body(
            &app,
            json!({ "user_name": "bob_99", "email": "bob@example.com", "password": PASSWORD }),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["user"]["username"], "bob_99");
    }
}

db_test! {
    async fn sign_up_accepts_a_form_encoded_body(app) {
        let token = app.csrf().await;
        let response = app
            .post_form(
                "/api/auth/signup",
                &[
                    ("csrf_token", token.as_str()),
                    ("username", "carol"),
                    ("email", "carol@example.com"),
                    ("password", PASSWORD),
                    ("confirm", PASSWORD),
                    ("first_name", "Carol"),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        assert_user_object(&body["user"]);
        assert_eq!(body["user"]["username"], "carol");
        assert_eq!(body["user"]["first_name"], "Carol");
        assert_eq!(app.get("/api/auth/verify_auth").await.status(), StatusCode::OK);
    }
}

db_test! {
    async fn first_and_last_name_round_trip(app) {
        let response = signup_body(
            &app,
            json!({
                "username": "dora",
                "email": "dora@example.com",
                "password": PASSWORD,
                "first_name": "Dóra",
                "last_name": "O'Neil-Smith",
            }),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["user"]["first_name"], "Dóra");
        assert_eq!(body["user"]["last_name"], "O'Neil-Smith");
        let me: Value = app.get("/api/auth/verify_auth").await.json().await.unwrap();
        assert_eq!(me["user"]["first_name"], "Dóra");
        assert_eq!(me["user"]["last_name"], "O'Neil-Smith");
        // And after a fresh sign-in.
        let other = app.new_client();
        let login: Value = other.login("dora", PASSWORD, false).await.json().await.unwrap();
        assert_eq!(login["user"]["first_name"], "Dóra");
        assert_eq!(login["user"]["last_name"], "O'Neil-Smith");
    }
}

db_test! {
    async fn a_matching_confirm_is_accepted(app) {
        let response = signup_body(
            &app,
            json!({ "username": "erin", "email": "erin@example.com", "password": PASSWORD, "confirm": PASSWORD }),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}

db_test! {
    async fn a_mismatched_confirm_is_422_with_a_confirm_field_error(app) {
        let response = signup_body(
            &app,
            json!({
                "username": "erin",
                "email": "erin@example.com",
                "password": PASSWORD,
                "confirm": "correct horse battery stapler",
            }),
        )
        .await;
        let fields = validation_fields(response).await;
        assert_field_message(&fields, "confirm");
        assert!(fields.get("password").is_none(), "only confirm is wrong: {fields}");
        // Nothing was created and nobody is signed in.
        assert_eq!(app.get("/api/auth/verify_auth").await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(count_users(&app.db, "erin").await, 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Sign-up: validation

db_test! {
    async fn usernames_too_short_too_long_or_with_bad_characters_are_refused(app) {
        let long = "a".repeat(33);
        for bad in ["", "ab", long.as_str(), "bad name", "a<b>c", "émile", "a@b", "ab\u{202e}c", "tab\tname"] {
            let response = signup_body(
                &app,
                json!({ "username": bad, "email": "someone@example.com", "password": PASSWORD }),
            )
            .await;
            let fields = validation_fields(response).await;
            assert_field_message(&fields, "username");
        }
    }
}

db_test! {
    async fn usernames_of_3_and_32_characters_are_accepted(app) {
        for (i, good) in ["abc".to_owned(), "b".repeat(32), "J.Doe-x_9".to_owned()].iter().enumerate() {
            let client = app.new_client();
            let response = client.signup(good, &format!("user{i}@example.com"), PASSWORD).await;
            assert_eq!(response.status(), StatusCode::CREATED, "username {good:?}");
        }
    }
}

db_test! {
    async fn invalid_email_addresses_are_refused(app) {
        for bad in ["", "plain", "a@b", "a b@example.com", "@example.com", "a@", "a@@example.com"] {
            let response = signup_body(
                &app,
                json!({ "username": "frank", "email": bad, "password": PASSWORD }),
            )
            .await;
            let fields = validation_fields(response).await;
            assert_field_message(&fields, "email");
        }
    }
}

db_test! {
    async fn sec_h5_an_email_with_cr_lf_cannot_inject_a_mail_header(app) {
        for bad in ["a@b.c\r\nBcc: x@y.z", "a@b.c\nBcc: x@y.z", "a@b.c\rBcc: x@y.z"] {
            let response = signup_body(
                &app,
                json!({ "username": "mallory", "email": bad, "password": PASSWORD }),
            )
            .await;
            let fields = validation_fields(response).await;
            assert_field_message(&fields, "email");
        }
        assert_eq!(count_users(&app.db, "mallory").await, 0);
    }
}

db_test! {
    async fn sec_p3_a_7_character_password_is_refused(app) {
        let response = signup_body(
            &app,
            json!({ "username": "grace", "email": "grace@example.com", "password": "zq8-Lm4" }),
        )
        .await;
        let fields = validation_fields(response).await;
        assert_field_message(&fields, "password");
        // 8 characters are enough.
        let response = signup_body(
            &app,
            json!({ "username": "grace", "email": "grace@example.com", "password": "zq8-Lm4!" }),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}

db_test! {
    async fn sec_p3_a_1024_character_password_is_accepted_and_1025_refused(app) {
        let long: String = "ab9x".repeat(256);
        assert_eq!(long.chars().count(), 1024);
        let too_long = format!("{long}y");
        let started = std::time::Instant::now();
        let response = signup_body(
            &app,
            json!({ "username": "heidi", "email": "heidi@example.com", "password": too_long }),
        )
        .await;
        let fields = validation_fields(response).await;
        assert_field_message(&fields, "password");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "refusing took {:?}", started.elapsed());

        let response = signup_body(
            &app,
            json!({ "username": "heidi", "email": "heidi@example.com", "password": long }),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let other = app.new_client();
        assert_eq!(other.login("heidi", &long, false).await.status(), StatusCode::OK);
    }
}

db_test! {
    async fn sec_p3_passwords_with_emoji_and_spaces_are_accepted(app) {
        let passwords = ["correct horse 🐴 battery", "🔒🔑🗝️🚪🏠🌍🌙⭐", "          ", "  leading and trailing  "];
        for (i, password) in passwords.iter().enumerate() {
            let client = app.new_client();
            let username = format!("ivan{i}");
            let response = client.signup(&username, &format!("{username}@example.com"), password).await;
            assert_eq!(response.status(), StatusCode::CREATED, "password {password:?}");
            let again = app.new_client();
            assert_eq!(again.login(&username, password, false).await.status(), StatusCode::OK, "password {password:?}");
        }
    }
}

db_test! {
    async fn sec_p5_common_passwords_are_refused_with_a_field_message(app) {
        for common in ["password123", "qwertyuiop", "PASSWORD123"] {
            let response = signup_body(
                &app,
                json!({ "username": "judy", "email": "judy@example.com", "password": common }),
            )
            .await;
            let fields = validation_fields(response).await;
            assert_field_message(&fields, "password");
            assert!(fields.get("username").is_none() && fields.get("email").is_none(), "{fields}");
        }
        assert_eq!(count_users(&app.db, "judy").await, 0);
    }
}

db_test! {
    async fn every_bad_field_is_reported_at_once(app) {
        let response = signup_body(
            &app,
            json!({
                "username": "a",
                "email": "nope",
                "password": "short",
                "confirm": "different",
                "first_name": "x".repeat(101),
            }),
        )
        .await;
        let fields = validation_fields(response).await;
        for field in ["username", "email", "password", "confirm", "first_name"] {
            assert_field_message(&fields, field);
        }
    }
}

db_test! {
    async fn missing_fields_are_reported_as_validation_errors(app) {
        let response = signup_body(&app, json!({})).await;
        let fields = validation_fields(response).await;
        for field in ["username", "email", "password"] {
            assert_field_message(&fields, field);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sign-up: duplicates, mass assignment, races

db_test! {
    async fn sec_h6_a_taken_username_collides_whatever_its_case_or_width(app) {
        app.create_user("admin").await;
        for (i, look_alike) in ["admin", "Admin", "ADMIN", "ａｄｍｉｎ", "ＡＤＭＩＮ"].iter().enumerate() {
            let client = app.new_client();
            let response = client.signup(look_alike, &format!("other{i}@example.com"), PASSWORD).await;
            let (status, code) = error_code(response).await;
            assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "username_taken"), "username {look_alike:?}");
        }
    }
}

db_test! {
    async fn sec_h6_a_taken_email_collides_whatever_its_case_or_width(app) {
        app.create_user("admin").await;
        for (i, look_alike) in ["admin@example.com", "Admin@Example.COM", "ADMIN@EXAMPLE.COM", "ａｄｍｉｎ@example.com"]
            .iter()
            .enumerate()
        {
            let client = app.new_client();
            let response = client.signup(&format!("someone{i}"), look_alike, PASSWORD).await;
            let (status, code) = error_code(response).await;
            assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "email_taken"), "email {look_alike:?}");
        }
    }
}

db_test! {
    async fn sec_h6_a_confusable_look_alike_of_a_taken_username_is_refused(app) {
        app.create_user("admin").await;
        // Cyrillic а (U+0430), Greek Α (U+0391), and a zero-width joiner.
        for (i, look_alike) in ["\u{430}dmin", "\u{391}dmin", "ad\u{200d}min"].iter().enumerate() {
            let client = app.new_client();
            let response = client.signup(look_alike, &format!("other{i}@example.com"), PASSWORD).await;
            let status = response.status();
            assert!(
                status == StatusCode::CONFLICT || status == StatusCode::UNPROCESSABLE_ENTITY,
                "look-alike {look_alike:?} of admin was accepted with {status}"
            );
        }
    }
}

db_test! {
    async fn a_409_does_not_sign_the_client_in(app) {
        app.create_user("admin").await;
        let response = app.signup("Admin", "other@example.com", PASSWORD).await;
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(app.get("/api/auth/verify_auth").await.status(), StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn sec_z3_sign_up_ignores_roles_id_email_verified_and_locked_in_the_body(app) {
        let response = signup_body(
            &app,
            json!({
                "username": "sneaky",
                "email": "sneaky@example.com",
                "password": PASSWORD,
                "roles": ["admin"],
                "role": "admin",
                "id": 999,
                "email_verified": true,
                "locked": true,
            }),
        )
        .await;
        assert!(
            response.status() == StatusCode::CREATED || response.status() == StatusCode::UNPROCESSABLE_ENTITY,
            "mass-assigned fields must be ignored or refused, got {}",
            response.status()
        );
        if response.status() == StatusCode::CREATED {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["user"]["roles"], json!([]));
            assert_eq!(body["user"]["email_verified"], false);
            assert_ne!(body["user"]["id"], 999);
            let me: Value = app.get("/api/auth/verify_auth").await.json().await.unwrap();
            assert_eq!(me["user"]["roles"], json!([]));
            assert_eq!(me["user"]["email_verified"], false);
        }
        if count_users(&app.db, "sneaky").await == 1 {
            assert!(!stored_roles(&app.db, "sneaky").await.contains("admin"));
            // `locked: true` was not applied either.
            let login = app.new_client().login("sneaky", PASSWORD, false).await;
            assert_eq!(login.status(), StatusCode::OK);
        }
    }
}

db_test! {
    async fn fifty_racing_sign_ups_of_one_name_create_exactly_one_account(app) {
        const RACERS: usize = 50;
        let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
        let mut tasks = Vec::new();
        for i in 0..RACERS {
            let addr = app.addr.clone();
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                let client = TestClient::new(&addr);
                let token = client.csrf().await;
                barrier.wait().await;
                let response = client
                    .post_json_with_token(
                        "/api/auth/signup",
                        &json!({ "username": "racer", "email": format!("racer{i}@example.com"), "password": PASSWORD }),
                        Some(&token),
                    )
                    .await;
                let status = response.status();
                let body = response.text().await.unwrap();
                (status, body)
            }));
        }
        let mut created = 0;
        let mut conflicts = 0;
        for task in tasks {
            let (status, body) = task.await.unwrap();
            assert!(!status.is_server_error(), "a racing sign-up got {status}: {body}");
            match status {
                StatusCode::CREATED => created += 1,
                StatusCode::CONFLICT => {
                    let body: Value = serde_json::from_str(&body).unwrap();
                    assert_eq!(body["error"]["code"], "username_taken", "{body}");
                    conflicts += 1;
                }
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert_eq!((created, conflicts), (1, RACERS - 1));
        assert_eq!(count_users(&app.db, "racer").await, 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Sign-in

db_test! {
    async fn sign_in_works_by_username_or_email_in_any_case(app) {
        app.create_user("kate").await;
        for login in ["kate", "KATE", "Kate", "ｋａｔｅ", "kate@example.com", "Kate@Example.COM"] {
            let client = app.new_client();
            let response = client.login(login, PASSWORD, false).await;
            assert_eq!(response.status(), StatusCode::OK, "login {login:?}");
            let body: Value = response.json().await.unwrap();
            assert_user_object(&body["user"]);
            assert_eq!(body["user"]["username"], "kate");
            let me = client.get("/api/auth/verify_auth").await;
            assert_eq!(me.status(), StatusCode::OK, "login {login:?}");
        }
    }
}

db_test! {
    async fn sign_in_accepts_a_form_encoded_body(app) {
        app.create_user("kate").await;
        let token = app.csrf().await;
        let response = app
            .post_form(
                "/api/auth/login",
                &[("csrf_token", token.as_str()), ("login", "kate"), ("password", PASSWORD), ("remember_me", "on")],
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(app.get("/api/auth/verify_auth").await.status(), StatusCode::OK);
    }
}

db_test! {
    async fn sec_a1_wrong_password_and_unknown_user_get_byte_identical_answers(app) {
        app.create_user("liam").await;
        let wrong_password = app.login("liam", "not the right password", false).await;
        let unknown_user = app.login("nobody-here", "not the right password", false).await;
        let unknown_email = app.login("nobody@example.com", "not the right password", false).await;
        let mut bodies = Vec::new();
        for response in [wrong_password, unknown_user, unknown_email] {
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
            let body = response.bytes().await.unwrap();
            let json: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["error"]["code"], "invalid_credentials", "{json}");
            bodies.push((content_type, body));
        }
        assert_eq!(bodies[0], bodies[1], "wrong password and unknown user differ");
        assert_eq!(bodies[0], bodies[2], "wrong password and unknown email differ");
        // A failed sign-in signs nobody in.
        assert_eq!(app.get("/api/auth/verify_auth").await.status(), StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn sign_in_with_missing_fields_is_422(app) {
        let response = app.post_json("/api/auth/login", &json!({})).await;
        let fields = validation_fields(response).await;
        assert_field_message(&fields, "login");
        assert_field_message(&fields, "password");
    }
}

db_test! {
    async fn verify_auth_without_a_session_is_a_401_json_error(app) {
        let no_cookie = app.new_client();
        let anonymous = app.new_client();
        anonymous.csrf().await;
        assert!(anonymous.session_cookie().is_some());
        for client in [&no_cookie, &anonymous] {
            let response = client.get("/api/auth/verify_auth").await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
            let body: Value = response.json().await.unwrap();
            let error = body["error"].as_object().unwrap_or_else(|| panic!("no error envelope: {body}"));
            let code = error["code"].as_str().unwrap_or_default();
            assert!(!code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{body}");
            assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
            assert!(error.get("fields").is_none(), "fields only for validation errors: {body}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Password storage

backend_test! {
    async fn sec_p1_hashes_are_argon2id_with_the_default_parameters_and_a_random_salt(backend) {
        let app = TestApp::spawn_with(backend, |c| {
            c.argon2_memory_kib = 19456;
            c.argon2_iterations = 2;
            c.argon2_parallelism = 1;
        })
        .await;
        app.create_user("mia").await;
        app.create_user("noah").await;
        let mia = stored_hash(&app.db, "mia").await;
        let noah = stored_hash(&app.db, "noah").await;
        for hash in [&mia, &noah] {
            assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
            assert!(!hash.contains(PASSWORD));
        }
        assert_ne!(mia, noah, "one password must give two different hashes (random salt)");
        let salt = |h: &str| h.split('$').nth(4).unwrap().to_owned();
        assert_ne!(salt(&mia), salt(&noah));
        // And the password still works.
        assert_eq!(app.new_client().login("mia", PASSWORD, false).await.status(), StatusCode::OK);
    }
}

db_test! {
    async fn sec_p2_a_hash_with_old_parameters_is_rehashed_at_sign_in(app) {
        app.create_user("olga").await;
        let current = stored_hash(&app.db, "olga").await;
        assert!(latch::passwords::uses_params(&current, 256, 1, 1), "{current}");

        let old_hasher = latch::passwords::PasswordHasher::new(128, 1, 1, 1).unwrap();
        let old = old_hasher.hash(&latch::domain::Password::for_sign_in(PASSWORD)).await.unwrap();
        assert!(latch::passwords::uses_params(&old, 128, 1, 1), "{old}");
        set_stored_hash(&app.db, "olga", &old).await;

        // A failed sign-in does not touch the hash.
        let wrong = app.new_client().login("olga", "not the right password", false).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(stored_hash(&app.db, "olga").await, old);

        let response = app.new_client().login("olga", PASSWORD, false).await;
        assert_eq!(response.status(), StatusCode::OK);
        let rehashed = stored_hash(&app.db, "olga").await;
        assert_ne!(rehashed, old, "the old-parameter hash was kept");
        assert!(latch::passwords::uses_params(&rehashed, 256, 1, 1), "{rehashed}");
        // The new hash works.
        assert_eq!(
            app.new_client().login("olga", PASSWORD, false).await.status(),
            StatusCode::OK
        );
    }
}

db_test! {
    async fn sec_p2_a_hash_with_the_current_parameters_is_not_rehashed_at_sign_in(app) {
        app.create_user("olga").await;
        let original = stored_hash(&app.db, "olga").await;
        assert!(latch::passwords::uses_params(&original, 256, 1, 1), "{original}");
        for _ in 0..2 {
            let response = app.new_client().login("olga", PASSWORD, false).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(
                stored_hash(&app.db, "olga").await,
                original,
                "a hash with the current parameters was replaced at sign-in"
            );
        }
    }
}

db_test! {
    async fn sec_p4_composed_and_decomposed_passwords_are_the_same(app) {
        let decomposed = "cafe\u{301} au lait every morning";
        let composed = "caf\u{e9} au lait every morning";
        assert_ne!(decomposed, composed);

        let response = app.new_client().signup("paula", "paula@example.com", decomposed).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(app.new_client().login("paula", composed, false).await.status(), StatusCode::OK);
        assert_eq!(app.new_client().login("paula", decomposed, false).await.status(), StatusCode::OK);

        let response = app.new_client().signup("quinn", "quinn@example.com", composed).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(app.new_client().login("quinn", decomposed, false).await.status(), StatusCode::OK);

        // Normalisation does not make different passwords equal.
        let wrong = app.new_client().login("paula", "cafe au lait every morning", false).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn sec_p6_responses_never_contain_the_password_or_its_hash(app) {
        let password = "a very distinctive passphrase 7731";
        let response = app
            .post_json(
                "/api/auth/signup",
                &json!({ "username": "rosa", "email": "rosa@example.com", "password": password, "confirm": password }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let headers = format!("{:?}", response.headers());
        let signup_body = response.text().await.unwrap();
        let hash = stored_hash(&app.db, "rosa").await;
        let me = app.get("/api/auth/verify_auth").await;
        assert_eq!(me.status(), StatusCode::OK);
        let me_body = me.text().await.unwrap();
        let login = app.new_client().login("rosa", password, false).await;
        assert_eq!(login.status(), StatusCode::OK);
        let login_headers = format!("{:?}", login.headers());
        let login_body = login.text().await.unwrap();
        for text in [&signup_body, &me_body, &login_body, &headers, &login_headers] {
            assert!(!text.contains(password), "password echoed: {text}");
            assert!(!text.contains("$argon2"), "hash returned: {text}");
            assert!(!text.contains(&hash), "hash returned: {text}");
            assert!(!text.contains("password_hash"), "hash field returned: {text}");
        }
    }
}
