//! H4: the security headers on every kind of response, HSTS only behind https, and
//! `Cache-Control: no-store` on user-specific responses.

use crate::helpers::*;
use crate::{backend_test, db_test};
use reqwest::{Response, StatusCode};
use serde_json::json;

/// Every header rule of H4 that holds for any response; returns the problems found.
fn header_problems(name: &str, response: &Response) -> Vec<String> {
    let mut problems = Vec::new();
    let get = |h: &str| {
        response
            .headers()
            .get(h)
            .map(|v| v.to_str().unwrap_or("<binary>").to_owned())
    };
    match get("content-security-policy") {
        None => problems.push(format!("{name}: no Content-Security-Policy")),
        Some(csp) => {
            if !csp.contains("default-src 'self'") {
                problems.push(format!("{name}: CSP without default-src 'self': {csp}"));
            }
            if !csp.contains("frame-ancestors 'none'") {
                problems.push(format!("{name}: CSP without frame-ancestors 'none': {csp}"));
            }
            if csp.contains("unsafe-inline") || csp.contains("unsafe-eval") || csp.contains('*') {
                problems.push(format!("{name}: CSP allows unsafe sources: {csp}"));
            }
        }
    }
    if get("content-security-policy").is_some()
        && response
            .headers()
            .get_all("content-security-policy")
            .iter()
            .count()
            > 1
    {
        problems.push(format!("{name}: several CSP headers"));
    }
    if get("x-content-type-options").as_deref() != Some("nosniff") {
        problems.push(format!(
            "{name}: X-Content-Type-Options {:?}",
            get("x-content-type-options")
        ));
    }
    if get("x-frame-options")
        .map(|v| v.to_ascii_uppercase())
        .as_deref()
        != Some("DENY")
    {
        problems.push(format!(
            "{name}: X-Frame-Options {:?}",
            get("x-frame-options")
        ));
    }
    match get("referrer-policy").as_deref() {
        Some("same-origin") | Some("no-referrer") | Some("strict-origin") => {}
        other => problems.push(format!("{name}: Referrer-Policy {other:?}")),
    }
    match get("x-request-id") {
        Some(id) if !id.is_empty() => {}
        other => problems.push(format!("{name}: X-Request-Id {other:?}")),
    }
    problems
}

/// Anonymous and signed-in requests over every kind of route, with a name for each.
async fn sweep(app: &TestApp) -> Vec<(String, Response)> {
    let mut responses = Vec::new();
    for path in [
        "/",
        "/login",
        "/register",
        "/dashboard",
        "/api/auth/csrf",
        "/api/auth/verify_auth",
        "/auth/check",
        "/healthz",
        "/readyz",
        "/metrics",
        "/static/latch.css",
        "/static/pico.min.css",
        "/static/nope.css",
        "/no-such-page",
        "/api/nope",
        "/api/auth/login",
        "/login?next=//evil.example",
    ] {
        responses.push((format!("anonymous GET {path}"), app.get(path).await));
    }
    responses.push((
        "POST /api/auth/login without CSRF".into(),
        app.post_json_with_token(
            "/api/auth/login",
            &json!({"login": "a", "password": "b"}),
            None,
        )
        .await,
    ));
    responses.push((
        "POST /api/auth/signup text/plain".into(),
        app.post_raw("/api/auth/signup", Some("text/plain"), b"x".to_vec())
            .await,
    ));
    responses.push((
        "POST /api/auth/login wrong password".into(),
        app.login("nobody", "Wrong-Pass-1", false).await,
    ));
    responses.push((
        "POST /login form without CSRF".into(),
        app.post_form("/login", &[("login", "a")]).await,
    ));
    responses.push(("POST /register invalid".into(), {
        let token = app.page_csrf("/register").await;
        app.post_form("/register", &[("csrf_token", &token), ("username", "a")])
            .await
    }));
    responses.push((
        "DELETE /dashboard".into(),
        app.http.delete(app.url("/dashboard")).send().await.unwrap(),
    ));

    let user = app.new_client();
    assert_eq!(
        user.signup("alice", "alice@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
    for path in [
        "/",
        "/dashboard",
        "/api/auth/verify_auth",
        "/auth/check",
        "/login",
        "/api/auth/csrf",
    ] {
        responses.push((format!("signed-in GET {path}"), user.get(path).await));
    }
    responses.push((
        "signed-in POST /api/auth/logout".into(),
        user.logout().await,
    ));
    responses
}

db_test! {
    async fn sec_h4_security_headers_are_on_every_response(app) {
        let mut problems = Vec::new();
        for (name, response) in sweep(&app).await {
            problems.extend(header_problems(&name, &response));
        }
        assert!(problems.is_empty(), "header problems:\n{}", problems.join("\n"));
    }
}

db_test! {
    async fn sec_h4_no_hsts_without_https(app) {
        for (name, response) in sweep(&app).await {
            assert!(response.headers().get("strict-transport-security").is_none(), "{name}: HSTS over plain http");
        }
    }
}

backend_test! {
async fn sec_h4_hsts_is_sent_behind_https(backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.public_url = Some("https://auth.example.com".into())
    })
    .await;
    let mut problems = Vec::new();
    for path in [
        "/",
        "/login",
        "/dashboard",
        "/api/auth/csrf",
        "/api/nope",
        "/healthz",
        "/no-such-page",
        "/static/latch.css",
    ] {
        let response = app.get(path).await;
        problems.extend(header_problems(path, &response));
        match response
            .headers()
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap().to_owned())
        {
            None => problems.push(format!("{path}: no HSTS behind https")),
            Some(hsts) => {
                let max_age: u64 = hsts
                    .split(';')
                    .find_map(|p| p.trim().strip_prefix("max-age="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if max_age < 31_536_000 {
                    problems.push(format!("{path}: HSTS max-age under a year: {hsts}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
}

db_test! {
    async fn sec_h4_user_specific_responses_are_not_cached(app) {
        let user = app.new_client();
        assert_eq!(user.signup("alice", "alice@example.com", PASSWORD).await.status(), StatusCode::CREATED);
        let mut problems = Vec::new();
        for path in ["/dashboard", "/", "/api/auth/verify_auth", "/api/auth/csrf", "/auth/check", "/login", "/register"] {
            let response = user.get(path).await;
            let cache = response.headers().get("cache-control").map(|v| v.to_str().unwrap().to_owned());
            if !cache.as_deref().is_some_and(|c| c.contains("no-store")) {
                problems.push(format!("{path} ({}): Cache-Control {cache:?}", response.status()));
            }
        }
        let login = user.login("alice", PASSWORD, false).await;
        let cache = login.headers().get("cache-control").map(|v| v.to_str().unwrap().to_owned());
        if !cache.as_deref().is_some_and(|c| c.contains("no-store")) {
            problems.push(format!("POST /api/auth/login: Cache-Control {cache:?}"));
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}

db_test! {
    async fn pages_declare_html_with_a_charset(app) {
        for path in ["/", "/login", "/register", "/no-such-page"] {
            let response = app.get(path).await;
            let ct = response.headers()["content-type"].to_str().unwrap().to_ascii_lowercase();
            assert!(ct.starts_with("text/html") && ct.contains("charset=utf-8"), "{path}: {ct}");
        }
        let json = app.get("/api/auth/csrf").await;
        assert!(json.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    }
}

db_test! {
    async fn pages_contain_no_inline_script_or_style(app) {
        assert_eq!(app.signup("alice", "alice@example.com", PASSWORD).await.status(), StatusCode::CREATED);
        for path in ["/", "/dashboard"] {
            let html = app.get(path).await.text().await.unwrap().to_ascii_lowercase();
            assert!(!html.contains("<script>") && !html.contains(" onclick=") && !html.contains(" onload="), "{path}");
            assert!(!html.contains("<style") && !html.contains(" style=\""), "{path}: inline style blocked by the CSP");
        }
        let anonymous = app.new_client();
        for path in ["/login", "/register", "/no-such-page"] {
            let html = anonymous.get(path).await.text().await.unwrap().to_ascii_lowercase();
            assert!(!html.contains("<script>") && !html.contains("<style") && !html.contains(" style=\""), "{path}");
        }
    }
}
