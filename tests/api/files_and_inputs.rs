//! Findings of a security probe, each shown from outside: file permissions of the data at
//! rest, secrets in `config check`, one account per IDN mailbox, the CSRF token on the reset
//! form, readable type errors, the flash cookie behind https and duplicate JSON keys.

use std::process::{Command, Stdio};

use crate::helpers::*;
use crate::{backend_test, db_test};
use reqwest::header::{CONTENT_TYPE, COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// O4: files readable by their owner only

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
fn sqlite_file(app: &TestApp) -> std::path::PathBuf {
    std::path::PathBuf::from(app.database_url.strip_prefix("sqlite://").unwrap())
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sec_o4_the_database_and_the_outbox_are_readable_by_their_owner_only() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.create_user("alice").await; // writes rows (WAL) and mails a verification link
    assert!(app.last_mail_to("alice@example.com").is_some(), "no mail");

    let db = sqlite_file(&app);
    let mut files = vec![db.clone()];
    for suffix in ["-wal", "-shm"] {
        let companion = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        assert!(
            companion.exists(),
            "{} missing (WAL mode)",
            companion.display()
        );
        files.push(companion);
    }
    let mut mails = 0;
    for entry in std::fs::read_dir(&app.outbox).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(
            path.extension().and_then(|e| e.to_str()),
            Some("eml"),
            "a temporary file was left: {}",
            path.display()
        );
        files.push(path);
        mails += 1;
    }
    assert!(mails > 0);
    for file in &files {
        assert_eq!(
            mode(file),
            0o600,
            "{} is readable by others",
            file.display()
        );
    }
    assert_eq!(
        mode(&app.outbox),
        0o700,
        "the outbox directory is open to others"
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sec_o4_files_left_open_by_an_older_version_are_closed_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let old = tempfile::tempdir().unwrap();
    let db = old.path().join("old.db");
    let outbox = old.path().join("outbox");
    std::fs::write(&db, b"").unwrap();
    std::fs::create_dir(&outbox).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&outbox, std::fs::Permissions::from_mode(0o755)).unwrap();
    let url = format!("sqlite://{}", db.display());
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.database_url = url;
        c.mail_outbox = outbox.clone();
    })
    .await;
    assert_eq!(mode(&db), 0o600, "the database file kept its old mode");
    app.create_user("alice").await;
    assert_eq!(mode(&outbox), 0o700, "the outbox kept its old mode");
}

// ---------------------------------------------------------------------------------------------
// O4: secrets masked in `config check`

#[test]
fn sec_o4_config_check_masks_a_password_in_the_query_string() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_latch"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LATCH_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    let url = "postgres://app:userinfo-pw@db.internal/latch?sslmode=require&password=query-pw&sslpassword=key-pw";
    let output = command
        .args(["config", "check", "--database", url])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{out}");
    for secret in ["userinfo-pw", "query-pw", "key-pw"] {
        assert!(!out.contains(secret), "{secret} is shown: {out}");
    }
    assert!(
        out.contains("sslmode=require"),
        "the harmless parameters are lost: {out}"
    );
    assert!(out.contains("password=****"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// H9: one mailbox, one account

db_test! {
    async fn sec_h9_an_idn_domain_and_its_punycode_are_one_account(app) {
        let first = app.new_client().signup("boris", "b@пример.рф", PASSWORD).await;
        assert_eq!(first.status(), StatusCode::CREATED);
        let user: Value = first.json().await.unwrap();
        assert_eq!(user["user"]["email"], "b@xn--e1afmkfd.xn--p1ai");

        let second = app.new_client().signup("boris2", "b@xn--e1afmkfd.xn--p1ai", PASSWORD).await;
        assert_eq!(error_code(second).await, (StatusCode::CONFLICT, "email_taken".into()));
        let third = app.new_client().signup("boris3", "B@ПРИМЕР.РФ", PASSWORD).await;
        assert_eq!(error_code(third).await, (StatusCode::CONFLICT, "email_taken".into()));

        // Either spelling signs in.
        for login in ["b@пример.рф", "b@xn--e1afmkfd.xn--p1ai"] {
            let response = app.new_client().login(login, PASSWORD, false).await;
            assert_eq!(response.status(), StatusCode::OK, "sign-in as {login}");
        }
    }
}

db_test! {
    async fn sec_h9_punycode_first_then_unicode_is_taken_too(app) {
        let first = app.new_client().signup("boris", "b@xn--e1afmkfd.xn--p1ai", PASSWORD).await;
        assert_eq!(first.status(), StatusCode::CREATED);
        let second = app.new_client().signup("boris2", "b@пример.рф", PASSWORD).await;
        assert_eq!(error_code(second).await, (StatusCode::CONFLICT, "email_taken".into()));
    }
}

// ---------------------------------------------------------------------------------------------
// C1: the reset form needs the CSRF token

db_test! {
    async fn sec_c1_a_cross_site_reset_form_post_is_refused_and_the_victim_stays_signed_in(app) {
        // The attacker asks for a reset link of their own account.
        app.create_user("mallory").await;
        let forgot = app
            .new_client()
            .post_json("/api/auth/password/forgot", &json!({ "email": "mallory@example.com" }))
            .await;
        assert_eq!(forgot.status(), StatusCode::ACCEPTED);
        let token = app
            .last_mail_to("mallory@example.com")
            .and_then(|m| m.token_for("/reset-password"))
            .expect("a reset link");

        // The victim is signed in; a page on another site posts the attacker's link.
        let victim = app.new_client();
        assert_eq!(victim.signup("alice", "alice@example.com", PASSWORD).await.status(), StatusCode::CREATED);
        let cookie = victim.session_cookie().unwrap();
        let new_password = "the attacker's new passphrase";
        for csrf in [None, Some("forged-token"), Some("")] {
            let mut fields = vec![("token", token.as_str()), ("password", new_password)];
            if let Some(csrf) = csrf {
                fields.push(("csrf_token", csrf));
            }
            let response = victim.post_form("/reset-password", &fields).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "csrf {csrf:?}");
            assert!(set_cookie_headers(&response).is_empty(), "csrf {csrf:?}: cookies were changed");
            let html = response.text().await.unwrap();
            assert!(html.contains("CSRF"), "{html}");
        }
        assert_eq!(victim.session_cookie(), Some(cookie));
        assert_eq!(victim.get("/api/auth/verify_auth").await.status(), StatusCode::OK, "the victim was signed out");

        // The link is still unused: with the page's own token the form works.
        let browser = app.new_client();
        let csrf = browser.page_csrf(&format!("/reset-password?token={token}")).await;
        let done = browser
            .post_form("/reset-password", &[("csrf_token", csrf.as_str()), ("token", token.as_str()), ("password", new_password)])
            .await;
        assert_redirect(&done, "/login");
        assert_eq!(app.new_client().login("mallory", new_password, false).await.status(), StatusCode::OK);
    }
}

// ---------------------------------------------------------------------------------------------
// Type errors in words, not Rust type names

fn assert_no_rust_names(message: &str, what: &str) {
    for word in [
        "enum",
        "struct",
        "::",
        "RolesField",
        "Flex",
        "Option",
        "Vec<",
        "String",
        "u32",
        "i64",
        "usize",
    ] {
        assert!(
            !message.contains(word),
            "{what}: the message names a Rust type ({word}): {message}"
        );
    }
}

/// Every message of an error body (the top one and the field ones).
fn messages(body: &Value) -> Vec<String> {
    let mut all = vec![body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()];
    if let Some(fields) = body["error"]["fields"].as_object() {
        for list in fields.values() {
            all.extend(
                list.as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m.as_str().unwrap().to_owned()),
            );
        }
    }
    all
}

db_test! {
    async fn sec_h2_wrong_json_types_get_messages_for_people(app) {
        let admin = app.new_client();
        assert_eq!(admin.signup("root", "root@example.com", PASSWORD).await.status(), StatusCode::CREATED);
        let me: Value = admin.get("/api/auth/verify_auth").await.json().await.unwrap();
        let id = me["user"]["id"].as_i64().unwrap();
        latch::store::admin::change(
            &app.db,
            id,
            &latch::store::admin::UserChange {
                roles: Some(latch::store::admin::RoleEdit::Grant(latch::domain::RoleName::admin())),
                ..Default::default()
            },
            latch::store::admin::LiveSince { idle: 0, absolute: 0, remember: 0 },
        )
        .await
        .unwrap();
        assert_eq!(admin.login("root", PASSWORD, false).await.status(), StatusCode::OK);
        let target = app.create_user("bob").await["id"].as_i64().unwrap();

        let patch = |body: Value| {
            let admin = &admin;
            async move {
                let token = admin.csrf().await;
                admin
                    .http
                    .patch(admin.url(&format!("/api/admin/users/{target}")))
                    .header("X-CSRF-Token", token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
            }
        };
        for (body, field) in [
            (json!({ "roles": 5 }), "roles"),
            (json!({ "roles": { "a": 1 } }), "roles"),
            (json!({ "roles": [1, 2] }), "roles"),
            (json!({ "locked": 5 }), "locked"),
            (json!({ "locked": [true] }), "locked"),
            (json!({ "role": ["admin"] }), "role"),
        ] {
            let response = patch(body.clone()).await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["error"]["code"], "validation_failed", "{body}");
            assert!(error["error"]["fields"][field].is_array(), "{body}: {error}");
            for message in messages(&error) {
                assert_no_rust_names(&message, &body.to_string());
            }
        }

        for (path, body) in [
            ("/api/auth/signup", json!({ "username": 5, "email": ["a@b.c"], "password": { "x": 1 } })),
            ("/api/auth/login", json!({ "login": ["alice"], "password": 12, "remember_me": "sometimes" })),
            ("/api/auth/tokens", json!({ "name": "t", "expires_in_days": "soon" })),
            ("/api/posts", json!({ "title": 1, "body": [] })),
        ] {
            let response = admin.post_json(path, &body).await;
            let status = response.status();
            assert!(status.is_client_error(), "{path} {body}: {status}");
            let error: Value = response.json().await.unwrap();
            for message in messages(&error) {
                assert_no_rust_names(&message, &format!("{path} {body}"));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// S5: the flash cookie is Secure behind https

backend_test! {
    async fn sec_s5_behind_https_the_flash_cookie_is_secure(backend) {
        let app = TestApp::spawn_with(backend, |c| c.public_url = Some("https://auth.example.com".into())).await;
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let login = http.get(app.url("/login")).send().await.unwrap();
        let session = set_cookie_named(&login, "__Host-latch_session").expect("a session cookie");
        let session = session.split(';').next().unwrap().to_owned();
        let csrf = extract_meta_csrf(&login.text().await.unwrap()).unwrap();

        let logout = http
            .post(app.url("/logout"))
            .header(COOKIE, &session)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("csrf_token={csrf}"))
            .send()
            .await
            .unwrap();
        assert_eq!(logout.status(), StatusCode::SEE_OTHER);
        let flash = set_cookie_named(&logout, "latch_flash").expect("a flash cookie");
        assert!(flash.split(';').any(|a| a.trim().eq_ignore_ascii_case("secure")), "{flash}");

        // Shown once, then cleared by a cookie that is Secure too.
        let page = http.get(app.url("/")).header(COOKIE, "latch_flash=signed_out").send().await.unwrap();
        let clear = set_cookie_named(&page, "latch_flash").expect("the flash is cleared");
        assert!(clear.split(';').any(|a| a.trim().eq_ignore_ascii_case("secure")), "{clear}");
    }
}

db_test! {
    async fn over_plain_http_the_flash_cookie_is_not_secure(app) {
        let csrf = app.page_csrf("/login").await;
        let logout = app.post_form("/logout", &[("csrf_token", csrf.as_str())]).await;
        let flash = set_cookie_named(&logout, "latch_flash").expect("a flash cookie");
        assert!(!flash.to_ascii_lowercase().contains("secure"), "{flash}");
    }
}

// ---------------------------------------------------------------------------------------------
// H1: a JSON object with a repeated key is refused, like a repeated form field

db_test! {
    async fn sec_h1_duplicate_json_keys_are_refused_like_repeated_form_fields(app) {
        let bodies = [
            r#"{"username":"alice","username":"admin","email":"a@example.com","password":"correct horse battery staple"}"#,
            r#"{"username":"alice","email":"a@example.com","password":"x","password":"correct horse battery staple"}"#,
        ];
        for body in bodies {
            let response = app.post_raw("/api/auth/signup", Some("application/json"), body.as_bytes().to_vec()).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["error"]["code"], "bad_request", "{error}");
            let message = error["error"]["message"].as_str().unwrap();
            assert!(message.contains("more than once"), "{message}");
        }
        // The same as a repeated form field.
        let form = app
            .post_raw(
                "/api/auth/signup",
                Some("application/x-www-form-urlencoded"),
                b"username=alice&username=admin&email=a%40example.com&password=correct+horse+battery+staple".to_vec(),
            )
            .await;
        assert_eq!(form.status(), StatusCode::BAD_REQUEST);
        let error: Value = form.json().await.unwrap();
        assert_eq!(error["error"]["code"], "bad_request");
        // Nothing was created; the same body without the repeat works.
        let ok = app
            .post_raw(
                "/api/auth/signup",
                Some("application/json"),
                br#"{"username":"alice","email":"a@example.com","password":"correct horse battery staple"}"#.to_vec(),
            )
            .await;
        assert_eq!(ok.status(), StatusCode::CREATED);
    }
}
