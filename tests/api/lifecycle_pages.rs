//! The account lifecycle through the HTML pages: `/verify-email`, `/forgot-password`,
//! `/reset-password`, `/account` (password and email forms, recent events) and
//! `/account/sessions` (docs/security.md rows T2, S6, S7).

use crate::helpers::*;
use crate::lifecycle::*;
use crate::{backend_test, db_test};
use reqwest::{Response, StatusCode};

fn assert_html(response: &Response) {
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "{content_type}");
}

/// The session ids of the revoke forms on `/account/sessions`.
fn revoke_form_ids(html: &str) -> Vec<i64> {
    let marker = "action=\"/account/sessions/";
    html.match_indices(marker)
        .filter_map(|(at, _)| {
            let rest = &html[at + marker.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            rest[digits.len()..]
                .starts_with("/revoke\"")
                .then(|| digits.parse().ok())
                .flatten()
        })
        .collect()
}

fn hidden_token_field(html: &str) -> Option<String> {
    let marker = "name=\"token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

// ---------------------------------------------------------------------------------------------
// /verify-email

db_test! {
    async fn the_verify_email_page_verifies_once(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let token = last_token(&app, "alice@example.com", "/verify-email");
        let visitor = app.new_client();
        let response = visitor.get(&format!("/verify-email?token={token}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_html(&response);
        let html = response.text().await.unwrap();
        assert!(html.contains("alice@example.com") && html.contains("verified"), "{html}");
        assert_eq!(me(&client).await.1["email_verified"], true);
        let again = visitor.get(&format!("/verify-email?token={token}")).await;
        assert_eq!(again.status(), StatusCode::BAD_REQUEST);
        assert_html(&again);
        let html = again.text().await.unwrap();
        assert!(html.contains("invalid, already used or expired"), "{html}");
    }
}

db_test! {
    async fn an_expired_link_on_the_verify_email_page_is_refused(app) {
        let (_client, _) = signed_up(&app, "alice").await;
        let token = last_token(&app, "alice@example.com", "/verify-email");
        app.clock.advance(DAY + 1);
        let response = app.new_client().get(&format!("/verify-email?token={token}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let client = signed_in_as(&app, "alice", PASSWORD, false).await;
        assert_eq!(me(&client).await.1["email_verified"], false);
    }
}

db_test! {
    async fn garbage_on_the_verify_email_page_is_an_error_page_never_a_5xx(app) {
        signed_up(&app, "alice").await;
        let long = format!("/verify-email?token={}", "x".repeat(10_000));
        let right_shape = format!("/verify-email?token={}", "A".repeat(43));
        let paths = [
            "/verify-email",
            "/verify-email?token=",
            "/verify-email?token=garbage",
            "/verify-email?token=%00",
            "/verify-email?token=%ff%fe",
            "/verify-email?token=%3Cscript%3Ealert(1)%3C/script%3E",
            "/verify-email?token=a&token=b",
            "/verify-email?token=%E2%80%AEabc",
            "/verify-email?token=' OR 1=1 --",
            right_shape.as_str(),
            long.as_str(),
        ];
        for path in paths {
            let response = app.new_client().get(path).await;
            let status = response.status();
            assert!(status.is_client_error(), "{path}: {status}");
            let html = response.text().await.unwrap();
            assert!(!html.contains("<script>alert(1)"), "{path}: unescaped input");
            assert!(!html.to_lowercase().contains("panick"), "{path}");
        }
        assert_eq!(
            app.new_client().get("/verify-email?token=garbage").await.status(),
            StatusCode::BAD_REQUEST
        );
    }
}

// ---------------------------------------------------------------------------------------------
// /forgot-password and /reset-password

db_test! {
    async fn sec_t2_the_forgot_and_reset_forms_set_a_new_password(app) {
        let (old_session, _) = signed_up(&app, "alice").await;
        let browser = app.new_client();
        let page = browser.get("/forgot-password").await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        let csrf = extract_meta_csrf(&html).unwrap();
        assert!(html.contains("action=\"/forgot-password\""));
        let sent = browser
            .post_form("/forgot-password", &[("csrf_token", csrf.as_str()), ("email", "alice@example.com")])
            .await;
        assert_eq!(sent.status(), StatusCode::OK);
        let sent_html = sent.text().await.unwrap();
        assert!(sent_html.contains("If an account uses that address"), "{sent_html}");
        let token = last_token(&app, "alice@example.com", "/reset-password");

        let page = browser.get(&format!("/reset-password?token={token}")).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert_eq!(hidden_token_field(&html).as_deref(), Some(token.as_str()));
        let csrf = extract_meta_csrf(&html).unwrap();
        let done = browser
            .post_form(
                "/reset-password",
                &[("csrf_token", csrf.as_str()), ("token", token.as_str()), ("password", NEW_PASSWORD)],
            )
            .await;
        assert_redirect(&done, "/login");
        assert_eq!(auth_status(&old_session).await, StatusCode::UNAUTHORIZED, "a session survived the reset");
        assert_eq!(login_status(&app, "alice", PASSWORD).await, StatusCode::UNAUTHORIZED);
        assert_eq!(login_status(&app, "alice", NEW_PASSWORD).await, StatusCode::OK);
        // The same form again (from a fresh page: the reset ended this browser's session, and
        // its CSRF token with it): the link is used up.
        let csrf = browser.page_csrf(&format!("/reset-password?token={token}")).await;
        let again = browser
            .post_form(
                "/reset-password",
                &[("csrf_token", csrf.as_str()), ("token", token.as_str()), ("password", "yet another passphrase 7")],
            )
            .await;
        assert_eq!(again.status(), StatusCode::BAD_REQUEST);
        assert_html(&again);
        let html = again.text().await.unwrap();
        assert!(html.contains("invalid, already used or expired"), "{html}");
        assert_eq!(login_status(&app, "alice", NEW_PASSWORD).await, StatusCode::OK);
    }
}

db_test! {
    async fn sec_a2_the_forgot_form_answers_the_same_for_known_and_unknown_addresses(app) {
        app.create_user("alice").await;
        let browser = app.new_client();
        let csrf = browser.page_csrf("/forgot-password").await;
        let known = browser
            .post_form("/forgot-password", &[("csrf_token", csrf.as_str()), ("email", "alice@example.com")])
            .await;
        let unknown = browser
            .post_form("/forgot-password", &[("csrf_token", csrf.as_str()), ("email", "nobody@example.com")])
            .await;
        assert_eq!(known.status(), unknown.status());
        assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
        assert_eq!(tokens_mailed(&app, "alice@example.com", "/reset-password").len(), 1);
        assert!(mails_to(&app, "nobody@example.com").is_empty());
    }
}

db_test! {
    async fn the_forgot_form_needs_its_csrf_token(app) {
        app.create_user("alice").await;
        let browser = app.new_client();
        browser.page_csrf("/forgot-password").await;
        let response = browser.post_form("/forgot-password", &[("email", "alice@example.com")]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(mails_to(&app, "alice@example.com").iter().all(|m| m.token_for("/reset-password").is_none()));
    }
}

db_test! {
    async fn a_weak_password_on_the_reset_form_is_shown_again_and_the_link_still_works(app) {
        app.create_user("alice").await;
        let token = reset_token(&app, "alice@example.com").await;
        let browser = app.new_client();
        let csrf = browser.page_csrf(&format!("/reset-password?token={token}")).await;
        let weak = browser
            .post_form(
                "/reset-password",
                &[("csrf_token", csrf.as_str()), ("token", token.as_str()), ("password", "password123")],
            )
            .await;
        assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = weak.text().await.unwrap();
        assert!(html.contains("password-error"), "no message at the password field: {html}");
        assert_eq!(hidden_token_field(&html).as_deref(), Some(token.as_str()), "the form lost its token");
        assert!(!html.contains("value=\"password123\""), "the typed password is echoed");
        let done = browser
            .post_form(
                "/reset-password",
                &[("csrf_token", csrf.as_str()), ("token", token.as_str()), ("password", NEW_PASSWORD)],
            )
            .await;
        assert_redirect(&done, "/login");
        assert_eq!(login_status(&app, "alice", NEW_PASSWORD).await, StatusCode::OK);
    }
}

db_test! {
    async fn an_expired_or_garbage_link_on_the_reset_form_is_refused(app) {
        app.create_user("alice").await;
        let token = reset_token(&app, "alice@example.com").await;
        app.clock.advance(HOUR + 1);
        let browser = app.new_client();
        let csrf = browser.page_csrf(&format!("/reset-password?token={token}")).await;
        for bad in [token.as_str(), "garbage", ""] {
            let response = browser
                .post_form(
                    "/reset-password",
                    &[("csrf_token", csrf.as_str()), ("token", bad), ("password", NEW_PASSWORD)],
                )
                .await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "token {bad:?}");
        }
        let no_token = browser.get("/reset-password").await;
        assert!(!no_token.status().is_server_error());
        assert_eq!(login_status(&app, "alice", PASSWORD).await, StatusCode::OK);
    }
}

// ---------------------------------------------------------------------------------------------
// /account: password and email forms

db_test! {
    async fn account_pages_need_a_signed_in_user(app) {
        for (path, encoded) in [("/account", "%2Faccount"), ("/account/sessions", "%2Faccount%2Fsessions")] {
            let response = app.new_client().get(path).await;
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
            let location = response.headers()["location"].to_str().unwrap();
            assert!(
                location == format!("/login?next={path}") || location == format!("/login?next={encoded}"),
                "{path} -> {location}"
            );
        }
    }
}

db_test! {
    async fn the_password_form_shows_a_wrong_current_password_at_its_field(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let csrf = client.page_csrf("/account").await;
        let response = client
            .post_form(
                "/account/password",
                &[("csrf_token", csrf.as_str()), ("current_password", "not my password"), ("new_password", NEW_PASSWORD)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_html(&response);
        let html = response.text().await.unwrap();
        assert!(html.contains("current_password-error") && html.contains("This is not your current password."), "{html}");
        assert!(!html.contains("not my password") && !html.contains(NEW_PASSWORD), "a typed password is echoed");
        assert_eq!(auth_status(&client).await, StatusCode::OK);
        let weak = client
            .post_form(
                "/account/password",
                &[("csrf_token", csrf.as_str()), ("current_password", PASSWORD), ("new_password", "short")],
            )
            .await;
        assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(weak.text().await.unwrap().contains("new_password-error"));
        let no_csrf = client
            .post_form("/account/password", &[("current_password", PASSWORD), ("new_password", NEW_PASSWORD)])
            .await;
        assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);
        assert_eq!(login_status(&app, "alice", PASSWORD).await, StatusCode::OK);
    }
}

db_test! {
    async fn sec_s6_the_password_form_reissues_this_session_and_ends_the_others(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let other = signed_in_as(&app, "alice", PASSWORD, false).await;
        let old_cookie = client.session_cookie().unwrap();
        let csrf = client.page_csrf("/account").await;
        let response = client
            .post_form(
                "/account/password",
                &[("csrf_token", csrf.as_str()), ("current_password", PASSWORD), ("new_password", NEW_PASSWORD)],
            )
            .await;
        assert_redirect(&response, "/account?done=password_changed");
        let new_cookie = client.session_cookie().unwrap();
        assert_ne!(new_cookie, old_cookie);
        let page = client.get("/account?done=password_changed").await;
        assert_eq!(page.status(), StatusCode::OK);
        let new_csrf = extract_meta_csrf(&page.text().await.unwrap()).unwrap();
        assert_ne!(new_csrf, csrf, "the CSRF token did not change");
        assert_eq!(client.get_with_cookie("/api/auth/verify_auth", &old_cookie).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(auth_status(&other).await, StatusCode::UNAUTHORIZED);
        assert_eq!(login_status(&app, "alice", NEW_PASSWORD).await, StatusCode::OK);
    }
}

db_test! {
    async fn the_email_form_sends_a_link_to_the_new_address(app) {
        let (client, _) = signed_up(&app, "alice").await;
        signed_up(&app, "bob").await;
        let csrf = client.page_csrf("/account").await;
        let taken = client
            .post_form("/account/email", &[("csrf_token", csrf.as_str()), ("email", "bob@example.com"), ("password", PASSWORD)])
            .await;
        // A taken address answers like a free one (no address oracle); its owner is told.
        assert_redirect(&taken, "/account?done=email_change_sent");
        assert!(mails_to(&app, "bob@example.com").iter().any(|m| m.subject.contains("tried")));
        let wrong = client
            .post_form("/account/email", &[("csrf_token", csrf.as_str()), ("email", "alice.new@example.org"), ("password", "not my password")])
            .await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let html = wrong.text().await.unwrap();
        assert!(html.contains("value=\"alice.new@example.org\"") && !html.contains("not my password"));
        assert!(mails_to(&app, "alice.new@example.org").is_empty());
        let done = client
            .post_form("/account/email", &[("csrf_token", csrf.as_str()), ("email", "alice.new@example.org"), ("password", PASSWORD)])
            .await;
        assert_redirect(&done, "/account?done=email_change_sent");
        let token = last_token(&app, "alice.new@example.org", "/verify-email");
        assert_eq!(me(&client).await.1["email"], "alice@example.com");
        let page = client.get(&format!("/verify-email?token={token}")).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(me(&client).await.1["email"], "alice.new@example.org");
        let html = client.get("/account").await.text().await.unwrap();
        assert!(html.contains("alice.new@example.org"));
    }
}

db_test! {
    async fn the_resend_form_mails_a_new_verification_link(app) {
        let (client, _) = signed_up(&app, "alice").await;
        let html = client.get("/account").await.text().await.unwrap();
        assert!(html.contains("action=\"/account/verify/resend\""));
        let csrf = extract_meta_csrf(&html).unwrap();
        let response = client.post_form("/account/verify/resend", &[("csrf_token", csrf.as_str())]).await;
        assert_redirect(&response, "/account?done=verification_sent");
        assert_eq!(tokens_mailed(&app, "alice@example.com", "/verify-email").len(), 2);
    }
}

// ---------------------------------------------------------------------------------------------
// /account/sessions (S7)

db_test! {
    async fn sec_s7_the_sessions_page_lists_sessions_and_its_forms_revoke_them(app) {
        let first = client_with_agent(&app, FIREFOX);
        assert_eq!(first.signup("alice", "alice@example.com", PASSWORD).await.status(), StatusCode::CREATED);
        let second = client_with_agent(&app, CHROME);
        assert_eq!(second.login("alice", PASSWORD, true).await.status(), StatusCode::OK);
        let third = signed_in_as(&app, "alice", PASSWORD, false).await;
        let (bob, _) = signed_up(&app, "bob").await;
        let first_id = current_session_id(&first).await;
        let second_id = current_session_id(&second).await;
        let third_id = current_session_id(&third).await;
        let bob_id = current_session_id(&bob).await;

        let page = first.get("/account/sessions").await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        for text in ["Firefox on Linux", "Chrome on Windows", "this session", "127.0.0.1"] {
            assert!(html.contains(text), "the sessions page lacks {text:?}");
        }
        for client in [&first, &second, &third] {
            assert!(!html.contains(&client.session_cookie().unwrap()), "a cookie value on the page");
        }
        let mut ids = revoke_form_ids(&html);
        ids.sort();
        let mut expected = vec![second_id, third_id];
        expected.sort();
        assert_eq!(ids, expected, "revoke forms for every other session and not this one ({first_id})");
        let csrf = extract_meta_csrf(&html).unwrap();

        // Without the CSRF token, and for bob's session: refused.
        let no_csrf = first.post_form(&format!("/account/sessions/{second_id}/revoke"), &[]).await;
        assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);
        let bobs = first
            .post_form(&format!("/account/sessions/{bob_id}/revoke"), &[("csrf_token", csrf.as_str())])
            .await;
        assert_eq!(bobs.status(), StatusCode::NOT_FOUND);
        assert_eq!(auth_status(&bob).await, StatusCode::OK);
        assert_eq!(auth_status(&second).await, StatusCode::OK);

        let revoked = first
            .post_form(&format!("/account/sessions/{second_id}/revoke"), &[("csrf_token", csrf.as_str())])
            .await;
        assert_redirect(&revoked, "/account/sessions?done=session_revoked");
        assert_eq!(auth_status(&second).await, StatusCode::UNAUTHORIZED);
        assert_eq!(auth_status(&third).await, StatusCode::OK);

        let others = first.post_form("/account/sessions/revoke-others", &[("csrf_token", csrf.as_str())]).await;
        assert_redirect(&others, "/account/sessions?done=others_revoked");
        assert_eq!(auth_status(&third).await, StatusCode::UNAUTHORIZED);
        assert_eq!(auth_status(&first).await, StatusCode::OK);
        assert_eq!(auth_status(&bob).await, StatusCode::OK);
        let html = first.get("/account/sessions").await.text().await.unwrap();
        assert!(revoke_form_ids(&html).is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// require_verified_email on the login form

backend_test! {
    async fn the_login_form_refuses_an_unverified_account_when_verification_is_required(backend) {
        let app = TestApp::spawn_with(backend, |c| c.require_verified_email = true).await;
        signed_up(&app, "alice").await;
        let browser = app.new_client();
        let csrf = browser.page_csrf("/login").await;
        let response = browser
            .post_form("/login", &[("csrf_token", csrf.as_str()), ("login", "alice"), ("password", PASSWORD)])
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let html = response.text().await.unwrap();
        assert!(html.to_lowercase().contains("verify"), "{html}");
        assert_eq!(auth_status(&browser).await, StatusCode::UNAUTHORIZED);
    }
}
