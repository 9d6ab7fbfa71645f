//! The second factor, black-box: enrolment, the two-step sign-in, replay, recovery codes,
//! throttling, expiry, turning it off, the mandatory-role gate, the reset, and what the
//! audit log and the server's log lines never contain.

use latch::clock::Clock;
use latch::mfa::totp;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::db_test;
use crate::helpers::*;

/// The code an authenticator app shows for `secret` (base32) at the app's clock, `offset`
/// steps away.
pub fn code(app: &TestApp, secret: &str, offset: i64) -> String {
    code_at(secret, app.clock.now(), offset)
}

pub fn code_at(secret: &str, now: i64, offset: i64) -> String {
    let secret = totp::base32_decode(secret).unwrap();
    format!("{:06}", totp::code_at(&secret, totp::step_at(now) + offset))
}

/// Starts a TOTP setup for the signed-in `client`; returns the secret.
pub async fn set_up_on(client: &TestClient) -> String {
    let setup: Value = client
        .post_json(
            "/api/auth/mfa/totp/setup",
            &json!({ "current_password": PASSWORD }),
        )
        .await
        .json()
        .await
        .unwrap();
    setup["secret"].as_str().unwrap().to_owned()
}

/// The time of a `latch serve` child process (which runs on the system clock).
fn wall_clock() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.unwrap().as_secs() as i64
}

/// A signed-up user `name` with TOTP on; returns (their client, secret, recovery codes).
pub async fn enrolled(app: &TestApp, name: &str) -> (TestClient, String, Vec<String>) {
    let client = app.new_client();
    let response = client
        .signup(name, &format!("{name}@example.com"), PASSWORD)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let setup = client
        .post_json(
            "/api/auth/mfa/totp/setup",
            &json!({ "current_password": PASSWORD }),
        )
        .await;
    assert_eq!(setup.status(), StatusCode::OK);
    let setup: Value = setup.json().await.unwrap();
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let confirm = client
        .post_json(
            "/api/auth/mfa/totp/confirm",
            &json!({ "code": code(app, &secret, 0) }),
        )
        .await;
    assert_eq!(confirm.status(), StatusCode::OK);
    let body: Value = confirm.json().await.unwrap();
    let codes = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (client, secret, codes)
}

/// Signs in with the password on a new client; asserts the 202 of a pending second step.
async fn pending_sign_in(app: &TestApp, name: &str) -> TestClient {
    let client = app.new_client();
    let response = client.login(name, PASSWORD, false).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "mfa_required": true, "methods": ["totp", "recovery_code"] })
    );
    client
}

async fn second_step(client: &TestClient, body: Value) -> reqwest::Response {
    client.post_json("/api/auth/mfa", &body).await
}

db_test!(
    async fn enrolment_then_sign_in_needs_the_code(app) {
        let client = app.new_client();
        client
            .signup("ann", "ann@example.com", PASSWORD)
            .await;
        let status: Value = client.get("/api/auth/mfa").await.json().await.unwrap();
        assert_eq!(
            status,
            json!({ "totp": false, "recovery_codes_left": 0, "passkeys": 0 })
        );
        let wrong_password = client
            .post_json(
                "/api/auth/mfa/totp/setup",
                &json!({ "current_password": "not the password" }),
            )
            .await;
        assert_eq!(
            error_code(wrong_password).await,
            (StatusCode::UNAUTHORIZED, "invalid_credentials".into())
        );
        let setup: Value = client
            .post_json(
                "/api/auth/mfa/totp/setup",
                &json!({ "current_password": PASSWORD }),
            )
            .await
            .json()
            .await
            .unwrap();
        let secret = setup["secret"].as_str().unwrap();
        assert_eq!(totp::base32_decode(secret).unwrap().len(), 20);
        assert_eq!(
            setup["otpauth_url"],
            format!("otpauth://totp/latch:ann?secret={secret}&issuer=latch&algorithm=SHA1&digits=6&period=30")
        );
        // Not on before confirmation: sign-in still needs only the password.
        assert_eq!(
            app.new_client().login("ann", PASSWORD, false).await.status(),
            StatusCode::OK
        );
        let wrong = client
            .post_json("/api/auth/mfa/totp/confirm", &json!({ "code": "000000" }))
            .await;
        let wrong_is_wrong = code(&app, secret, 0) != "000000";
        if wrong_is_wrong {
            assert_eq!(
                error_code(wrong).await,
                (StatusCode::UNAUTHORIZED, "invalid_code".into())
            );
        }
        let other = app.new_client();
        other.login("ann", PASSWORD, false).await;
        let before = client.session_cookie().unwrap();
        // Spaces and dashes are accepted when the digits are right.
        let typed = code(&app, secret, 0);
        let typed = format!("{} {}", &typed[..3], &typed[3..]);
        let confirm = client
            .post_json("/api/auth/mfa/totp/confirm", &json!({ "code": typed }))
            .await;
        assert_eq!(confirm.status(), StatusCode::OK);
        let body: Value = confirm.json().await.unwrap();
        let codes = body["recovery_codes"].as_array().unwrap();
        assert_eq!(codes.len(), 10);
        // Re-issued under a new id; every other session ended.
        let after = client.session_cookie().unwrap();
        assert_ne!(before, after);
        assert_eq!(
            client.get_with_cookie("/api/auth/verify_auth", &before).await.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            other.get("/api/auth/verify_auth").await.status(),
            StatusCode::UNAUTHORIZED
        );
        let me: Value = client.get("/api/auth/verify_auth").await.json().await.unwrap();
        assert_eq!(me["user"]["mfa_enabled"], true);
        let status: Value = client.get("/api/auth/mfa").await.json().await.unwrap();
        assert_eq!(
            status,
            json!({ "totp": true, "recovery_codes_left": 10, "passkeys": 0 })
        );
        // Enrolment while on: 409; the secret is never shown again.
        let again = client
            .post_json(
                "/api/auth/mfa/totp/setup",
                &json!({ "current_password": PASSWORD }),
            )
            .await;
        assert_eq!(again.status(), StatusCode::CONFLICT);
        assert!(!again.text().await.unwrap().contains(secret));

        // Sign-in: the password alone is a pending step, then the code (of the next step:
        // the current one was used by the confirmation).
        let pending = pending_sign_in(&app, "ann").await;
        assert_eq!(
            pending.get("/api/auth/verify_auth").await.status(),
            StatusCode::UNAUTHORIZED
        );
        let cookie = pending.session_cookie().unwrap();
        app.clock.advance(30);
        let done = second_step(&pending, json!({ "code": code(&app, secret, 0) })).await;
        assert_eq!(done.status(), StatusCode::OK);
        let body: Value = done.json().await.unwrap();
        assert_eq!(body["user"]["username"], "ann");
        assert_eq!(body["user"]["mfa_enabled"], true);
        assert_ne!(pending.session_cookie().unwrap(), cookie, "rotated again");
        assert_eq!(
            pending.get("/api/auth/verify_auth").await.status(),
            StatusCode::OK
        );
        assert_eq!(
            pending.get_with_cookie("/api/auth/verify_auth", &cookie).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
);

db_test!(
    async fn a_pending_sign_in_is_not_signed_in_and_expires_after_five_minutes(app) {
        let (_, secret, _) = enrolled(&app, "bob").await;
        let pending = pending_sign_in(&app, "bob").await;
        assert_eq!(
            pending.get("/api/auth/sessions").await.status(),
            StatusCode::UNAUTHORIZED
        );
        let page = pending.get("/dashboard").await;
        assert_redirect(&page, "/login?next=%2Fdashboard");
        app.clock.advance(5 * 60 + 1);
        let late = second_step(&pending, json!({ "code": code(&app, &secret, 0) })).await;
        assert_eq!(
            error_code(late).await,
            (StatusCode::UNAUTHORIZED, "mfa_not_pending".into())
        );
        // Without any pending sign-in at all.
        let stranger = app.new_client();
        let none = second_step(&stranger, json!({ "code": "123456" })).await;
        assert_eq!(
            error_code(none).await,
            (StatusCode::UNAUTHORIZED, "mfa_not_pending".into())
        );
        // Within the five minutes it works.
        let pending = pending_sign_in(&app, "bob").await;
        app.clock.advance(5 * 60 - 1);
        let ok = second_step(&pending, json!({ "code": code(&app, &secret, 0) })).await;
        assert_eq!(ok.status(), StatusCode::OK);
    }
);

db_test!(
    async fn a_code_is_accepted_once(app) {
        let (_, secret, _) = enrolled(&app, "cat").await;
        app.clock.advance(30);
        let code_now = code(&app, &secret, 0);
        let first = pending_sign_in(&app, "cat").await;
        assert_eq!(
            second_step(&first, json!({ "code": code_now })).await.status(),
            StatusCode::OK
        );
        let replay = pending_sign_in(&app, "cat").await;
        let again = second_step(&replay, json!({ "code": code_now })).await;
        assert_eq!(
            error_code(again).await,
            (StatusCode::UNAUTHORIZED, "invalid_code".into())
        );
        // A code of the next step moves the mark forward: the previous step's code is dead too.
        let ahead = code(&app, &secret, 1);
        assert_eq!(
            second_step(&replay, json!({ "code": ahead })).await.status(),
            StatusCode::OK
        );
        app.clock.advance(30);
        let behind = pending_sign_in(&app, "cat").await;
        let old = code(&app, &secret, -1);
        if old != ahead {
            let refused = second_step(&behind, json!({ "code": old })).await;
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        }
    }
);

db_test!(
    async fn a_recovery_code_works_once(app) {
        let (client, _, codes) = enrolled(&app, "dan").await;
        for c in &codes {
            assert_eq!(c.len(), 19, "{c}");
        }
        let pending = pending_sign_in(&app, "dan").await;
        // Typed in capitals with spaces instead of dashes.
        let typed = codes[3].to_uppercase().replace('-', " ");
        let ok = second_step(&pending, json!({ "recovery_code": typed })).await;
        assert_eq!(ok.status(), StatusCode::OK);
        let status: Value = pending.get("/api/auth/mfa").await.json().await.unwrap();
        assert_eq!(status["recovery_codes_left"], 9);
        let again = pending_sign_in(&app, "dan").await;
        let reused = second_step(&again, json!({ "recovery_code": codes[3] })).await;
        assert_eq!(
            error_code(reused).await,
            (StatusCode::UNAUTHORIZED, "invalid_code".into())
        );
        // Regenerating kills the old set.
        let client = {
            drop(client);
            again
        };
        assert_eq!(
            second_step(&client, json!({ "recovery_code": codes[4] })).await.status(),
            StatusCode::OK
        );
        let fresh: Value = client
            .post_json(
                "/api/auth/mfa/recovery-codes",
                &json!({ "current_password": PASSWORD }),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(fresh["recovery_codes"].as_array().unwrap().len(), 10);
        let later = pending_sign_in(&app, "dan").await;
        let old = second_step(&later, json!({ "recovery_code": codes[5] })).await;
        assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
        let new = fresh["recovery_codes"][0].as_str().unwrap();
        assert_eq!(
            second_step(&later, json!({ "recovery_code": new })).await.status(),
            StatusCode::OK
        );
    }
);

db_test!(
    async fn wrong_codes_are_throttled_with_the_account(app) {
        let (_, secret, _) = enrolled(&app, "eve").await;
        app.clock.advance(30);
        let right = code(&app, &secret, 0);
        let wrong = if right == "111111" { "222222" } else { "111111" };
        let pending = pending_sign_in(&app, "eve").await;
        for _ in 0..4 {
            let r = second_step(&pending, json!({ "code": wrong })).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
        // A right password in between must not wipe the count of wrong codes.
        let pending = pending_sign_in(&app, "eve").await;
        let r = second_step(&pending, json!({ "code": wrong })).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let refused = second_step(&pending, json!({ "code": right })).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.headers().contains_key("retry-after"));
        assert_eq!(
            error_code(refused).await.1,
            "too_many_attempts"
        );
        // After the window the right code works.
        app.clock.advance(15 * 60 + 1);
        let pending = pending_sign_in(&app, "eve").await;
        let ok = second_step(&pending, json!({ "code": code(&app, &secret, 0) })).await;
        assert_eq!(ok.status(), StatusCode::OK);
    }
);

db_test!(
    async fn bad_codes_get_clear_errors_and_never_a_500(app) {
        let (_, _, _) = enrolled(&app, "fay").await;
        let pending = pending_sign_in(&app, "fay").await;
        for body in [
            json!({ "code": "" }),
            json!({}),
            json!({ "code": "1".repeat(10_000) }),
            json!({ "recovery_code": "x".repeat(10_000) }),
            json!({ "code": 123456 }),
            json!({ "code": ["123456"] }),
        ] {
            let r = second_step(&pending, body.clone()).await;
            let status = r.status();
            assert!(status.is_client_error(), "{body}: {status}");
            let text = r.text().await.unwrap();
            assert!(text.contains("\"code\""), "{body}: {text}");
        }
        let r = second_step(&pending, json!({ "code": "" })).await;
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "validation_failed");
        assert!(body["error"]["fields"]["code"].is_array());
    }
);

db_test!(
    async fn malformed_codes_each_answer_invalid_code(app) {
        let (_, _, _) = enrolled(&app, "gus").await;
        for bad in ["abcdef", "1234567", "12a456", "<script>"] {
            let pending = pending_sign_in(&app, "gus").await;
            let r = second_step(&pending, json!({ "code": bad })).await;
            assert_eq!(
                error_code(r).await,
                (StatusCode::UNAUTHORIZED, "invalid_code".into()),
                "{bad}"
            );
        }
    }
);

db_test!(
    async fn turning_it_off_needs_the_password_and_a_code(app) {
        let (client, secret, codes) = enrolled(&app, "hal").await;
        let missing = client
            .post_json("/api/auth/mfa/totp/disable", &json!({}))
            .await;
        let body: Value = missing.json().await.unwrap();
        assert_eq!(body["error"]["code"], "validation_failed");
        assert!(body["error"]["fields"]["current_password"].is_array());
        assert!(body["error"]["fields"]["code"].is_array());
        app.clock.advance(30);
        let wrong_password = client
            .post_json(
                "/api/auth/mfa/totp/disable",
                &json!({ "current_password": "not it at all", "code": code(&app, &secret, 0) }),
            )
            .await;
        assert_eq!(
            error_code(wrong_password).await,
            (StatusCode::UNAUTHORIZED, "invalid_credentials".into())
        );
        let right = code(&app, &secret, 0);
        let wrong_code = if right == "111111" { "222222" } else { "111111" };
        let wrong = client
            .post_json(
                "/api/auth/mfa/totp/disable",
                &json!({ "current_password": PASSWORD, "code": wrong_code }),
            )
            .await;
        assert_eq!(
            error_code(wrong).await,
            (StatusCode::UNAUTHORIZED, "invalid_code".into())
        );
        // A recovery code is a code too.
        let off = client
            .post_json(
                "/api/auth/mfa/totp/disable",
                &json!({ "current_password": PASSWORD, "code": codes[0] }),
            )
            .await;
        assert_eq!(off.status(), StatusCode::NO_CONTENT);
        let status: Value = client.get("/api/auth/mfa").await.json().await.unwrap();
        assert_eq!(
            status,
            json!({ "totp": false, "recovery_codes_left": 0, "passkeys": 0 })
        );
        assert_eq!(
            app.new_client().login("hal", PASSWORD, false).await.status(),
            StatusCode::OK
        );
        let again = client
            .post_json(
                "/api/auth/mfa/totp/disable",
                &json!({ "current_password": PASSWORD, "code": codes[1] }),
            )
            .await;
        assert_eq!(again.status(), StatusCode::CONFLICT);
        let mails = app.outbox_mails();
        assert!(mails.iter().any(|m| m.to.contains("hal@") && m.subject.contains("is on")));
        assert!(mails.iter().any(|m| m.to.contains("hal@") && m.subject.contains("is off")));
    }
);

db_test!(
    async fn sessions_record_how_they_were_made(app) {
        let (_, secret, _) = enrolled(&app, "ivy").await;
        // The session re-issued at confirmation counts as two-factor.
        app.clock.advance(30);
        let pending = pending_sign_in(&app, "ivy").await;
        second_step(&pending, json!({ "code": code(&app, &secret, 0) })).await;
        let current = current_session(&pending).await;
        let names: Vec<&str> = current["factors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["factor"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["password", "totp"]);
        assert_eq!(current["two_factor"], true);
        // A password-only session of another user says so.
        let plain = app.new_client();
        plain.signup("jon", "jon@example.com", PASSWORD).await;
        let list: Value = plain.get("/api/auth/sessions").await.json().await.unwrap();
        assert_eq!(list["sessions"][0]["factors"][0]["factor"], "password");
        assert_eq!(list["sessions"][0]["two_factor"], false);
        let page = pending.get("/account/sessions").await.text().await.unwrap();
        assert!(page.contains("password + TOTP code"), "{page}");
    }
);

db_test!(
    async fn a_password_change_keeps_the_sessions_second_factor(app) {
        // Without this, a user who changes their password is asked for a second factor again
        // by every `two_factor` forward-auth rule, and sent in a loop (`/login/mfa` serves
        // only pending sign-ins).
        let (client, _, _) = enrolled(&app, "lea").await;
        let changed = client
            .post_json(
                "/api/auth/password/change",
                &json!({"current_password": PASSWORD, "new_password": "another long passphrase"}),
            )
            .await;
        assert_eq!(changed.status(), StatusCode::NO_CONTENT);
        let current = current_session(&client).await;
        assert_eq!(current["two_factor"], true, "{current}");
        let names: Vec<&str> = current["factors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["factor"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["password", "totp"]);
    }
);

db_test!(
    async fn pages_sign_in_in_two_steps_keeping_next(app) {
        let (_, secret, _) = enrolled(&app, "kim").await;
        let browser = app.new_client();
        let csrf = browser.page_csrf("/login").await;
        let r = browser
            .post_form(
                "/login",
                &[("csrf_token", &csrf), ("login", "kim"), ("password", PASSWORD), ("next", "/posts")],
            )
            .await;
        assert_redirect(&r, "/login/mfa?next=%2Fposts");
        let page = browser.get("/login/mfa?next=%2Fposts").await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains("name=\"code\""));
        let csrf = extract_meta_csrf(&html).unwrap();
        assert_eq!(
            browser.get("/dashboard").await.status(),
            StatusCode::SEE_OTHER,
            "pending is not signed in"
        );
        app.clock.advance(30);
        let right = code(&app, &secret, 0);
        let wrong_code = if right == "111111" { "222222" } else { "111111" };
        let wrong = browser
            .post_form("/login/mfa", &[("csrf_token", &csrf), ("code", wrong_code), ("next", "/posts")])
            .await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert!(wrong.text().await.unwrap().contains("not valid"));
        let no_csrf = browser
            .post_form("/login/mfa", &[("code", &right), ("next", "/posts")])
            .await;
        assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);
        let ok = browser
            .post_form("/login/mfa", &[("csrf_token", &csrf), ("code", &right), ("next", "/posts")])
            .await;
        assert_redirect(&ok, "/posts");
        assert_eq!(browser.get("/dashboard").await.status(), StatusCode::OK);
        // Without a pending step the page sends you to sign in.
        let stranger = app.new_client();
        assert_redirect(&stranger.get("/login/mfa?next=%2Fposts").await, "/login?next=%2Fposts");
    }
);

db_test!(
    async fn the_security_page_enrols_with_forms_only(app) {
        let browser = app.new_client();
        browser.signup("lea", "lea@example.com", PASSWORD).await;
        let page = browser.get("/account/security").await;
        assert_eq!(page.status(), StatusCode::OK);
        let csrf = extract_meta_csrf(&page.text().await.unwrap()).unwrap();
        let wrong = browser
            .post_form("/account/security/totp/setup", &[("csrf_token", &csrf), ("current_password", "nope nope nope")])
            .await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let setup = browser
            .post_form("/account/security/totp/setup", &[("csrf_token", &csrf), ("current_password", PASSWORD)])
            .await;
        assert_eq!(setup.status(), StatusCode::OK);
        let html = setup.text().await.unwrap();
        assert!(html.contains("<svg"), "an inline QR code");
        assert!(!html.contains("<script"));
        let start = html.find("class=\"secret\">").unwrap() + "class=\"secret\">".len();
        let secret = html[start..start + 32].to_owned();
        // A mistyped code shows the same secret again.
        let right = code(&app, &secret, 0);
        let wrong_code = if right == "111111" { "222222" } else { "111111" };
        let mistyped = browser
            .post_form("/account/security/totp/confirm", &[("csrf_token", &csrf), ("secret", &secret), ("code", wrong_code)])
            .await;
        assert_eq!(mistyped.status(), StatusCode::UNAUTHORIZED);
        assert!(mistyped.text().await.unwrap().contains(&secret));
        // A guessed secret shows nothing.
        let guessed = browser
            .post_form("/account/security/totp/confirm", &[("csrf_token", &csrf), ("secret", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), ("code", wrong_code)])
            .await;
        assert!(!guessed.text().await.unwrap().contains(&secret));
        let done = browser
            .post_form("/account/security/totp/confirm", &[("csrf_token", &csrf), ("secret", &secret), ("code", &right)])
            .await;
        assert_eq!(done.status(), StatusCode::OK);
        let html = done.text().await.unwrap();
        assert_eq!(html.matches("<li><code>").count(), 10);
        assert!(!html.contains(&secret));
        let later = browser.get("/account/security").await.text().await.unwrap();
        assert!(later.contains("Recovery codes left: <strong>10</strong>"));
        assert!(!later.contains(&secret));
        assert!(!later.contains("<li><code>"));
    }
);

crate::backend_test!(
    async fn a_role_that_requires_it_holds_the_user_on_the_security_page(backend) {
        let app = TestApp::spawn_with(backend, |c| c.require_mfa_roles = vec!["admin".into()]).await;
        let (boss, _) = crate::authz::admin_client(&app, "boss").await;
        // API: 403 mfa_enrollment_required, except what enrolment needs.
        let refused = boss.get("/api/auth/sessions").await;
        assert_eq!(
            error_code(refused).await,
            (StatusCode::FORBIDDEN, "mfa_enrollment_required".into())
        );
        let admin_api = boss.get("/api/admin/users").await;
        assert_eq!(admin_api.status(), StatusCode::FORBIDDEN);
        assert_eq!(boss.get("/api/auth/verify_auth").await.status(), StatusCode::OK);
        assert_eq!(boss.get("/api/auth/csrf").await.status(), StatusCode::OK);
        assert_eq!(boss.get("/api/auth/mfa").await.status(), StatusCode::OK);
        // Pages: 303 to the security page, which itself works; static files too.
        for path in ["/dashboard", "/account", "/admin/users", "/posts", "/"] {
            assert_redirect(&boss.get(path).await, "/account/security");
        }
        assert_eq!(boss.get("/account/security").await.status(), StatusCode::OK);
        assert_eq!(boss.get("/static/latch.css").await.status(), StatusCode::OK);
        // Users without the role are not held.
        let (plain, _) = crate::authz::user_client(&app, "plain").await;
        assert_eq!(plain.get("/dashboard").await.status(), StatusCode::OK);
        assert_eq!(plain.get("/api/auth/sessions").await.status(), StatusCode::OK);
        // Enrolling releases the admin.
        let setup: Value = boss
            .post_json("/api/auth/mfa/totp/setup", &json!({ "current_password": PASSWORD }))
            .await
            .json()
            .await
            .unwrap();
        let secret = setup["secret"].as_str().unwrap();
        let confirm = boss
            .post_json("/api/auth/mfa/totp/confirm", &json!({ "code": code(&app, secret, 0) }))
            .await;
        assert_eq!(confirm.status(), StatusCode::OK);
        assert_eq!(boss.get("/dashboard").await.status(), StatusCode::OK);
        assert_eq!(boss.get("/api/admin/users").await.status(), StatusCode::OK);
        // Sign-out stays possible while held.
        let (held, _) = crate::authz::admin_client(&app, "held").await;
        assert_eq!(held.logout().await.status(), StatusCode::NO_CONTENT);
    }
);

db_test!(
    async fn the_admin_page_shows_and_resets_the_second_factor(app) {
        let (victim, _, _) = enrolled(&app, "mia").await;
        let (admin, _) = crate::authz::admin_client(&app, "root").await;
        let me: Value = victim.get("/api/auth/verify_auth").await.json().await.unwrap();
        let id = me["user"]["id"].as_i64().unwrap();
        let page = admin.get(&format!("/admin/users/{id}")).await.text().await.unwrap();
        assert!(page.contains("<mark>on</mark>"), "{page}");
        let csrf = extract_meta_csrf(&page).unwrap();
        let r = admin
            .post_form(&format!("/admin/users/{id}/mfa-reset"), &[("csrf_token", &csrf)])
            .await;
        assert_redirect(&r, &format!("/admin/users/{id}?done=mfa_reset"));
        assert_eq!(
            victim.get("/api/auth/verify_auth").await.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.new_client().login("mia", PASSWORD, false).await.status(),
            StatusCode::OK
        );
        let rows = latch::store::audit::recent(&app.db, Some(id), 50).await.unwrap();
        let reset = rows.iter().find(|r| r.event == "mfa_reset").unwrap();
        assert!(reset.detail.as_deref().unwrap().contains("by=root"));
    }
);

/// The built binary, for the CLI and for log capture.
fn latch_bin() -> std::process::Command {
    crate::nodes::latch_command()
}

db_test!(
    async fn the_cli_reset_removes_the_factor_and_ends_sessions(app) {
        let (victim, _, _) = enrolled(&app, "ned").await;
        // The notice goes to the app's outbox, not to ./outbox in the checkout.
        let output = latch_bin()
            .args(["user", "mfa-reset", "ned@example.com", "--database", &app.database_url])
            .env("LATCH_MAIL_OUTBOX", &app.outbox)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let said = String::from_utf8_lossy(&output.stdout);
        assert!(said.contains("second factor removed for ned"), "{said}");
        assert_eq!(
            victim.get("/api/auth/verify_auth").await.status(),
            StatusCode::UNAUTHORIZED
        );
        let fresh = app.new_client();
        assert_eq!(fresh.login("ned", PASSWORD, false).await.status(), StatusCode::OK);
        let status: Value = fresh.get("/api/auth/mfa").await.json().await.unwrap();
        assert_eq!(status["totp"], false);
        assert_eq!(status["recovery_codes_left"], 0);
        let unknown = latch_bin()
            .args(["user", "mfa-reset", "nobody", "--database", &app.database_url])
            .output()
            .unwrap();
        assert!(!unknown.status.success());
        assert_eq!(String::from_utf8_lossy(&unknown.stderr).trim().lines().count(), 1);
    }
);

/// One full cycle against a real `latch serve` with debug logging: enrol, sign in with a
/// code and with a recovery code, a wrong code, turn it off. Neither the secret nor any code
/// appears in a log line or in an audit row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_code_reaches_the_log_or_the_audit_table() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/latch.db", dir.path().display());
    let mut command = latch_bin();
    command
        .env("LATCH_LOG", "debug")
        .env("LATCH_MAIL_OUTBOX", dir.path().join("outbox"));
    let mut node = crate::nodes::Node::spawn(command, &url).unwrap();
    let mut stderr = node.child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all);
        all
    });
    let client = node.client();
    client.signup("ola", "ola@example.com", PASSWORD).await;
    let secret = set_up_on(&client).await;
    let first = code_at(&secret, wall_clock(), 0);
    let confirm: Value = client
        .post_json("/api/auth/mfa/totp/confirm", &json!({ "code": first }))
        .await
        .json()
        .await
        .unwrap();
    let codes: Vec<String> = confirm["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    let other = node.client();
    assert_eq!(
        other.login("ola", PASSWORD, false).await.status(),
        StatusCode::ACCEPTED
    );
    let wrong = if first == "111111" {
        "222222"
    } else {
        "111111"
    };
    assert_eq!(
        second_step(&other, json!({ "code": wrong })).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let next = code_at(&secret, wall_clock(), 1);
    assert_eq!(
        second_step(&other, json!({ "code": next })).await.status(),
        StatusCode::OK
    );
    let third = node.client();
    third.login("ola", PASSWORD, false).await;
    assert_eq!(
        second_step(&third, json!({ "recovery_code": codes[0] }))
            .await
            .status(),
        StatusCode::OK
    );
    let off = third
        .post_json(
            "/api/auth/mfa/totp/disable",
            &json!({ "current_password": PASSWORD, "code": codes[1] }),
        )
        .await;
    assert_eq!(off.status(), StatusCode::NO_CONTENT);
    // The audit rows of the cycle.
    let config = latch::config::Config {
        database_url: url.clone(),
        ..Default::default()
    };
    let db = latch::store::Db::connect(&config).await.unwrap();
    let rows = latch::store::audit::recent(&db, None, 200).await.unwrap();
    let events: Vec<String> = rows
        .iter()
        .rev()
        .map(|r| format!("{} {}", r.event, r.outcome))
        .collect();
    for expected in [
        "mfa_setup success",
        "mfa_enable success",
        "sign_in mfa_required",
        "mfa_verify invalid_code",
        "mfa_disable success",
    ] {
        assert!(
            events.iter().any(|e| e == expected),
            "{expected} in {events:?}"
        );
    }
    node.terminate_in_place();
    let log = reader.join().unwrap();
    assert!(
        log.contains("DEBUG") || log.contains("debug"),
        "debug logging was on"
    );
    let audit_text: String = rows.iter().map(|r| format!("{:?}", r)).collect();
    let lower_secret = secret.to_lowercase();
    for haystack in [&log, &audit_text] {
        assert!(
            !haystack.contains(&secret) && !haystack.contains(&lower_secret),
            "secret leaked"
        );
        assert!(
            !haystack.contains(&first) && !haystack.contains(&next),
            "a TOTP code leaked"
        );
        for c in &codes {
            assert!(!haystack.contains(c.as_str()), "a recovery code leaked");
            assert!(
                !haystack.contains(&c.replace('-', "")),
                "a recovery code leaked"
            );
        }
    }
}

/// Two processes on one PostgreSQL database get the same code at the same moment: exactly
/// one of them accepts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: set LATCH_TEST_DATABASE_URL and run with --ignored"]
async fn a_code_is_accepted_once_across_nodes() {
    let url = fresh_postgres_database();
    let guard = PgGuard(url.clone());
    let (a, b) = (
        crate::nodes::Node::start(&url),
        crate::nodes::Node::start(&url),
    );
    let client = a.client();
    client.signup("pia", "pia@example.com", PASSWORD).await;
    let secret = set_up_on(&client).await;
    let confirm = client
        .post_json(
            "/api/auth/mfa/totp/confirm",
            &json!({ "code": code_at(&secret, wall_clock(), 0) }),
        )
        .await;
    assert_eq!(confirm.status(), StatusCode::OK);
    let code = code_at(&secret, wall_clock(), 1);
    for round in 0..3 {
        let (on_a, on_b) = (a.client(), b.client());
        assert_eq!(
            on_a.login("pia", PASSWORD, false).await.status(),
            StatusCode::ACCEPTED
        );
        assert_eq!(
            on_b.login("pia", PASSWORD, false).await.status(),
            StatusCode::ACCEPTED
        );
        let (ta, tb) = (on_a.csrf().await, on_b.csrf().await);
        let body = json!({ "code": code });
        let (ra, rb) = tokio::join!(
            on_a.post_json_with_token("/api/auth/mfa", &body, Some(&ta)),
            on_b.post_json_with_token("/api/auth/mfa", &body, Some(&tb)),
        );
        let ok = [ra.status(), rb.status()]
            .iter()
            .filter(|s| **s == StatusCode::OK)
            .count();
        let expected = usize::from(round == 0);
        assert_eq!(
            ok,
            expected,
            "round {round}: {} {}",
            ra.status(),
            rb.status()
        );
    }
    drop((a, b));
    drop(guard);
}

struct PgGuard(String);

impl Drop for PgGuard {
    fn drop(&mut self) {
        drop_postgres_database(&self.0);
    }
}

db_test! {
    /// An administrator with TOTP who changes their own roles gets a new session id (S2)
    /// made by the same two factors, not a password-only one that a `two_factor` rule would
    /// turn away.
    async fn an_admin_changing_their_own_roles_keeps_the_sessions_second_factor(app) {
        let (boss, secret, _) = enrolled(&app, "boss").await;
        let me: Value = boss.get("/api/auth/verify_auth").await.json().await.unwrap();
        let id = me["user"]["id"].as_i64().unwrap();
        crate::authz::grant(&app.db, id, "admin").await;
        crate::authz::admin_role_add(&app, "editor").await;
        // The grant ended the session: sign in again, with both factors.
        assert_eq!(boss.login("boss", PASSWORD, false).await.status(), StatusCode::ACCEPTED);
        let second = boss.post_json("/api/auth/mfa", &json!({ "code": code(&app, &secret, 1) })).await;
        assert_eq!(second.status(), StatusCode::OK);
        let old = boss.session_cookie().unwrap();
        let path = format!("/api/admin/users/{id}");
        let body = json!({ "role": "editor" });
        let changed = crate::authz::call(&boss, reqwest::Method::PATCH, &path, Some(&body)).await;
        assert_eq!(changed.status(), StatusCode::OK);
        assert_ne!(boss.session_cookie().unwrap(), old, "a new session id");
        let current = current_session(&boss).await;
        assert_eq!(current["two_factor"], true, "{current}");
    }
}
