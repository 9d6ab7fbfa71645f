//! The server-rendered pages, driven like a browser without JavaScript: forms with CSRF
//! tokens, redirects to and from the sign-in page, forms shown again with errors.

use crate::db_test;
use crate::helpers::*;
use reqwest::{Response, StatusCode};
use serde_json::json;

/// The value of `<input ... name="{name}" ... value="…">` in a page, HTML entities decoded.
fn input_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\"");
    let at = html.find(&marker)?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let start = tag.find("value=\"")? + "value=\"".len();
    let end = tag[start..].find('"')? + start;
    Some(html_unescape(&tag[start..end]))
}

fn html_unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}

/// The `Set-Cookie` header of the session cookie in a response.
fn session_set_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("latch_session=") || c.starts_with("__Host-latch_session="))
}

/// Registers `username` through the /register form of `client`; returns the response.
async fn register_via_form(
    client: &TestClient,
    username: &str,
    extra: &[(&str, &str)],
) -> Response {
    let token = client.page_csrf("/register").await;
    let email = format!("{username}@example.com");
    let mut fields: Vec<(&str, &str)> = vec![
        ("csrf_token", &token),
        ("username", username),
        ("email", &email),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    fields.extend_from_slice(extra);
    client.post_form("/register", &fields).await
}

/// Signs in through the /login form of `client`.
async fn login_via_form(
    client: &TestClient,
    login: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> Response {
    let token = client.page_csrf("/login").await;
    let mut fields: Vec<(&str, &str)> = vec![
        ("csrf_token", &token),
        ("login", login),
        ("password", password),
    ];
    fields.extend_from_slice(extra);
    client.post_form("/login", &fields).await
}

fn assert_is_html(response: &Response) {
    assert!(
        header(response, "content-type").starts_with("text/html"),
        "content type {:?}",
        header(response, "content-type")
    );
}

db_test! {
    async fn register_page_has_a_form_with_a_csrf_field_and_a_meta_tag(app) {
        let response = app.get("/register").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_is_html(&response);
        let html = response.text().await.unwrap();
        let meta = extract_meta_csrf(&html).expect("a <meta name=\"csrf-token\"> tag");
        assert!(meta.len() >= 16, "csrf token too short: {meta:?}");
        assert!(html.contains("action=\"/register\""), "no form posting to /register");
        assert!(html.contains("method=\"post\""));
        assert_eq!(input_value(&html, "csrf_token").as_deref(), Some(meta.as_str()), "hidden csrf_token field");
        for field in ["username", "email", "password"] {
            assert!(html.contains(&format!("name=\"{field}\"")), "no {field} field");
        }
    }
}

db_test! {
    async fn login_page_has_a_form_with_a_csrf_field_and_a_meta_tag(app) {
        let response = app.get("/login").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_is_html(&response);
        let html = response.text().await.unwrap();
        let meta = extract_meta_csrf(&html).expect("a <meta name=\"csrf-token\"> tag");
        assert!(html.contains("action=\"/login\""));
        assert_eq!(input_value(&html, "csrf_token").as_deref(), Some(meta.as_str()));
        assert!(html.contains("name=\"login\"") && html.contains("name=\"password\""));
    }
}

db_test! {
    async fn registering_through_the_form_signs_in_and_shows_the_dashboard(app) {
        let response = register_via_form(&app, "alice", &[]).await;
        assert_redirect(&response, "/dashboard");
        assert!(session_set_cookie(&response).is_some(), "no session cookie after sign-up");

        let dashboard = app.get("/dashboard").await;
        assert_eq!(dashboard.status(), StatusCode::OK);
        assert_is_html(&dashboard);
        let html = dashboard.text().await.unwrap();
        assert!(html.contains("alice"), "the dashboard does not show the username");
        assert!(html.contains("action=\"/logout\""), "no sign-out form");
        let action_at = html.find("action=\"/logout\"").unwrap();
        let logout_form = &html[html[..action_at].rfind("<form").expect("a <form> tag")..];
        assert!(logout_form.contains("method=\"post\""), "the sign-out form is not a POST form");
        let meta = extract_meta_csrf(&html).unwrap();
        assert_eq!(input_value(logout_form, "csrf_token").as_deref(), Some(meta.as_str()));

        let api = app.get("/api/auth/verify_auth").await;
        assert_eq!(api.status(), StatusCode::OK);
    }
}

db_test! {
    async fn signed_in_home_page_shows_the_username_and_a_sign_out_form(app) {
        assert_redirect(&register_via_form(&app, "alice", &[]).await, "/dashboard");
        let html = app.get("/").await.text().await.unwrap();
        assert!(html.contains("alice"));
        assert!(html.contains("action=\"/logout\""));
    }
}

db_test! {
    async fn signing_out_through_the_form_ends_the_session(app) {
        assert_redirect(&register_via_form(&app, "alice", &[]).await, "/dashboard");
        let old_cookie = app.session_cookie().expect("signed in");
        let token = app.page_csrf("/dashboard").await;

        let response = app.post_form("/logout", &[("csrf_token", &token)]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);

        let dashboard = app.get("/dashboard").await;
        assert_redirect(&dashboard, "/login?next=%2Fdashboard");
        let replayed = app.get_with_cookie("/dashboard", &old_cookie).await;
        assert_redirect(&replayed, "/login?next=%2Fdashboard");
        assert_eq!(app.get("/api/auth/verify_auth").await.status(), StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn signing_in_through_the_login_form_without_remember_me_gives_a_browser_session_cookie(app) {
        app.create_user("alice").await;
        let client = app.new_client();
        let response = login_via_form(&client, "alice", PASSWORD, &[]).await;
        assert_redirect(&response, "/dashboard");
        let cookie = session_set_cookie(&response).expect("a session cookie");
        let lower = cookie.to_ascii_lowercase();
        assert!(!lower.contains("max-age") && !lower.contains("expires"), "persistent cookie without remember me: {cookie}");

        let html = client.get("/dashboard").await.text().await.unwrap();
        assert!(html.contains("alice"));
    }
}

db_test! {
    async fn signing_in_through_the_login_form_with_remember_me_gives_a_persistent_cookie(app) {
        app.create_user("alice").await;
        let client = app.new_client();
        let response = login_via_form(&client, "alice", PASSWORD, &[("remember_me", "on")]).await;
        assert_redirect(&response, "/dashboard");
        let cookie = session_set_cookie(&response).expect("a session cookie");
        let max_age = cookie
            .split(';')
            .find_map(|part| part.trim().strip_prefix("Max-Age="))
            .unwrap_or_else(|| panic!("no Max-Age with remember me: {cookie}"));
        let seconds: i64 = max_age.parse().unwrap();
        assert!(seconds >= 29 * 24 * 3600, "remember-me cookie lives only {seconds} s");

        let dashboard = client.get("/dashboard").await;
        assert_eq!(dashboard.status(), StatusCode::OK);
    }
}

db_test! {
    async fn signing_in_by_email_through_the_login_form_works(app) {
        app.create_user("alice").await;
        let client = app.new_client();
        let response = login_via_form(&client, "alice@example.com", PASSWORD, &[]).await;
        assert_redirect(&response, "/dashboard");
    }
}

db_test! {
    async fn anonymous_dashboard_goes_to_the_login_page_and_back_after_signing_in(app) {
        app.create_user("alice").await;
        let client = app.new_client();
        let response = client.get("/dashboard").await;
        assert_redirect(&response, "/login?next=%2Fdashboard");

        let login_page = client.get("/login?next=%2Fdashboard").await;
        assert_eq!(login_page.status(), StatusCode::OK);
        let html = login_page.text().await.unwrap();
        let next = input_value(&html, "next").expect("the login form carries next");
        assert_eq!(next, "/dashboard");
        let token = extract_meta_csrf(&html).unwrap();
        let response = client
            .post_form("/login", &[("csrf_token", &token), ("login", "alice"), ("password", PASSWORD), ("next", &next)])
            .await;
        assert_redirect(&response, "/dashboard");
    }
}

db_test! {
    async fn anonymous_page_with_a_query_comes_back_to_the_same_query_after_signing_in(app) {
        app.create_user("alice").await;
        let client = app.new_client();
        let response = client.get("/dashboard?tab=1").await;
        assert_redirect(&response, "/login?next=%2Fdashboard%3Ftab%3D1");

        let html = client.get("/login?next=%2Fdashboard%3Ftab%3D1").await.text().await.unwrap();
        let next = input_value(&html, "next").expect("the login form carries next");
        assert_eq!(next, "/dashboard?tab=1");
        let token = extract_meta_csrf(&html).unwrap();
        let response = client
            .post_form("/login", &[("csrf_token", &token), ("login", "alice"), ("password", PASSWORD), ("next", &next)])
            .await;
        assert_redirect(&response, "/dashboard?tab=1");
    }
}

db_test! {
    async fn register_form_with_errors_is_shown_again_with_a_message_at_each_bad_field(app) {
        let token = app.page_csrf("/register").await;
        let response = app
            .post_form(
                "/register",
                &[
                    ("csrf_token", &token),
                    ("username", "ab"),
                    ("email", "not-an-email"),
                    ("first_name", "Ann"),
                    ("password", "qz7Wv"),
                    ("confirm", "qz7Wx-other"),
                ],
            )
            .await;
        assert!(response.status().is_client_error(), "status {}", response.status());
        assert!(response.headers().get("location").is_none(), "a form with errors must not redirect");
        assert_is_html(&response);
        let html = response.text().await.unwrap();
        for field in ["username", "email", "password", "confirm"] {
            assert!(html.contains(&format!("id=\"{field}-error\"")), "no message at {field}");
        }
        assert!(!html.contains("id=\"first_name-error\""), "first_name was valid");
        assert_eq!(input_value(&html, "username").as_deref(), Some("ab"));
        assert_eq!(input_value(&html, "email").as_deref(), Some("not-an-email"));
        assert_eq!(input_value(&html, "first_name").as_deref(), Some("Ann"));
        assert!(!html.contains("qz7Wv"), "the password was echoed");
        assert!(!html.contains("qz7Wx-other"), "the confirmation was echoed");
        assert!(extract_meta_csrf(&html).is_some(), "the form shown again has no CSRF token");
        // Nothing was created.
        assert_eq!(app.get("/api/auth/verify_auth").await.status(), StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn register_form_with_a_common_password_says_so_at_the_password_field(app) {
        let token = app.page_csrf("/register").await;
        let response = app
            .post_form(
                "/register",
                &[("csrf_token", &token), ("username", "alice"), ("email", "alice@example.com"), ("password", "password123")],
            )
            .await;
        assert!(response.status().is_client_error(), "status {}", response.status());
        let html = response.text().await.unwrap();
        assert!(html.contains("id=\"password-error\""));
        assert!(!html.contains("password123"), "the password was echoed");
        assert_eq!(input_value(&html, "username").as_deref(), Some("alice"));
    }
}

db_test! {
    async fn register_form_with_a_taken_username_is_shown_again_with_a_message_at_username(app) {
        app.create_user("alice").await;
        let client = app.new_client();
        let token = client.page_csrf("/register").await;
        let response = client
            .post_form(
                "/register",
                &[("csrf_token", &token), ("username", "Alice"), ("email", "other@example.com"), ("password", "Distinct-Pass-4821")],
            )
            .await;
        assert!(response.status().is_client_error(), "status {}", response.status());
        assert!(response.headers().get("location").is_none());
        let html = response.text().await.unwrap();
        assert!(html.contains("id=\"username-error\""), "no message at username");
        assert_eq!(input_value(&html, "email").as_deref(), Some("other@example.com"));
        assert!(!html.contains("Distinct-Pass-4821"));
    }
}

db_test! {
    async fn login_form_with_empty_fields_is_shown_again_with_a_message_at_each(app) {
        let token = app.page_csrf("/login").await;
        let response = app.post_form("/login", &[("csrf_token", &token), ("login", ""), ("password", "")]).await;
        assert!(response.status().is_client_error(), "status {}", response.status());
        assert!(response.headers().get("location").is_none());
        let html = response.text().await.unwrap();
        assert!(html.contains("id=\"login-error\""));
        assert!(html.contains("id=\"password-error\""));
    }
}

db_test! {
    async fn login_form_with_a_wrong_password_keeps_the_login_but_not_the_password(app) {
        app.create_user("alice").await;
        let client = app.new_client();
        let response = login_via_form(&client, "alice", "Wrong-Pass-99817", &[]).await;
        assert!(response.status().is_client_error(), "status {}", response.status());
        assert!(response.headers().get("location").is_none());
        let html = response.text().await.unwrap();
        assert_eq!(input_value(&html, "login").as_deref(), Some("alice"));
        assert!(!html.contains("Wrong-Pass-99817"), "the password was echoed");
        assert!(!html.contains(PASSWORD));
        assert_eq!(client.get("/dashboard").await.status(), StatusCode::SEE_OTHER);
    }
}

db_test! {
    async fn sec_a1_login_page_shows_one_message_for_wrong_password_and_unknown_user(app) {
        app.create_user("alice").await;

        let first = app.new_client();
        let token_a = first.page_csrf("/login").await;
        let wrong = first
            .post_form("/login", &[("csrf_token", &token_a), ("login", "alice"), ("password", "Wrong-Pass-99817")])
            .await;
        let second = app.new_client();
        let token_b = second.page_csrf("/login").await;
        let unknown = second
            .post_form("/login", &[("csrf_token", &token_b), ("login", "nobody"), ("password", "Wrong-Pass-99817")])
            .await;

        assert_eq!(wrong.status(), unknown.status());
        assert!(wrong.status().is_client_error(), "status {}", wrong.status());
        let wrong_html = wrong.text().await.unwrap().replace(&token_a, "TOKEN").replace("alice", "LOGIN");
        let unknown_html = unknown.text().await.unwrap().replace(&token_b, "TOKEN").replace("nobody", "LOGIN");
        assert_eq!(wrong_html, unknown_html, "the two failures look different");
    }
}

db_test! {
    async fn sec_h3_profile_names_are_escaped_on_the_dashboard(app) {
        let response = app
            .post_json(
                "/api/auth/signup",
                &json!({
                    "username": "alice",
                    "email": "alice@example.com",
                    "password": PASSWORD,
                    "first_name": "<script>alert(1)</script>",
                    "last_name": "<img src=x onerror=alert(2)>",
                }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let html = app.get("/dashboard").await.text().await.unwrap();
        assert!(html.contains("&lt;script&gt;"), "first_name not shown escaped");
        assert!(html.contains("&lt;img"), "last_name not shown escaped");
        assert!(!html.contains("<script"), "a script tag reached the page");
        assert!(!html.contains("<img src=x"), "an img tag reached the page");
    }
}

db_test! {
    async fn sec_h3_typed_values_are_escaped_when_a_form_is_shown_again(app) {
        let token = app.page_csrf("/register").await;
        let response = app
            .post_form(
                "/register",
                &[
                    ("csrf_token", &token),
                    ("username", "\"><script>alert(1)</script>"),
                    ("email", "x@example.com"),
                    ("first_name", "\"><b onmouseover=alert(1)>{{7*7}}"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert!(response.status().is_client_error(), "status {}", response.status());
        let html = response.text().await.unwrap();
        assert!(!html.contains("<script"), "a script tag reached the page");
        assert!(!html.contains("<b onmouseover"), "an attribute injection reached the page");
        assert!(html.contains("{{7*7}}"), "template syntax in input was evaluated or dropped");
        assert_eq!(input_value(&html, "username").as_deref(), Some("\"><script>alert(1)</script>"));
    }
}

db_test! {
    async fn sec_h4_dashboard_and_login_pages_are_not_cached(app) {
        let login = app.get("/login").await;
        assert!(header(&login, "cache-control").contains("no-store"), "/login: {:?}", header(&login, "cache-control"));
        let register = app.get("/register").await;
        assert!(header(&register, "cache-control").contains("no-store"));
        app.create_user("alice").await;
        let client = app.new_client();
        assert_redirect(&login_via_form(&client, "alice", PASSWORD, &[]).await, "/dashboard");
        let dashboard = client.get("/dashboard").await;
        assert_eq!(dashboard.status(), StatusCode::OK);
        assert!(header(&dashboard, "cache-control").contains("no-store"), "/dashboard: {:?}", header(&dashboard, "cache-control"));
    }
}

db_test! {
    async fn stylesheets_are_served_as_css(app) {
        for path in ["/static/pico.min.css", "/static/latch.css"] {
            let response = app.get(path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert!(header(&response, "content-type").starts_with("text/css"), "{path}: {:?}", header(&response, "content-type"));
            let body = response.text().await.unwrap();
            assert!(body.contains('{') && body.len() > 100, "{path} looks empty");
        }
        let missing = app.get("/static/nope.css").await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}

db_test! {
    async fn unknown_page_is_a_404_html_page(app) {
        let response = app.get("/no-such-page").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_is_html(&response);
        let html = response.text().await.unwrap();
        assert!(html.contains("404"));
        assert!(html.to_ascii_lowercase().contains("<html"));
    }
}

db_test! {
    async fn register_page_while_signed_in_goes_to_the_dashboard(app) {
        assert_redirect(&register_via_form(&app, "alice", &[]).await, "/dashboard");
        assert_redirect(&app.get("/register").await, "/dashboard");
        assert_redirect(&app.get("/login").await, "/dashboard");
    }
}

db_test! {
    async fn a_repeated_next_on_a_page_is_shown_as_html_with_the_first_safe_value(app) {
        for path in ["/login?next=%2Fa&next=%2F%2Fevil.example", "/register?next=%2Fa&next=%2Fb"] {
            let response = app.get(path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_is_html(&response);
            let html = response.text().await.unwrap();
            // minijinja escapes `/` as `&#x2f;` in attributes; browsers decode it.
            let kept = html.contains("name=\"next\" value=\"/a\"")
                || html.contains("name=\"next\" value=\"&#x2f;a\"");
            assert!(kept, "{path}: {html}");
        }
        let hostile = app.get("/login?next=%2F%2Fevil.example&next=%2Fa").await.text().await.unwrap();
        assert!(!hostile.contains("evil.example"));
    }
}
