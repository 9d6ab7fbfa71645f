//! Forward-auth without a proxy: the test client plays the proxy, sending the target headers
//! itself from 127.0.0.1 (trusted or not, per test).

use latch::domain::access::RuleSpec;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::backend_test;
use crate::helpers::*;
use crate::passkeys::{add_passkey, send, Device, ORIGIN};

/// The rules most tests share, over `app.example.test`.
pub fn sample_rules() -> Vec<RuleSpec> {
    serde_json::from_value(json!([
        { "domain": "app.example.test", "path": "^/public/", "policy": "bypass" },
        { "domain": "app.example.test", "path": "^/closed", "policy": "deny" },
        { "domain": "app.example.test", "path": "^/admin", "subject": ["role:admin"], "policy": "one_factor" },
        { "domain": "app.example.test", "path": "^/admin", "policy": "deny" },
        { "domain": "app.example.test", "path": "^/secure", "policy": "two_factor" },
        { "domain": "*.example.test", "methods": ["POST"], "path": "^/hook$", "policy": "bypass" },
        { "domain": "*.example.test", "policy": "one_factor" },
    ]))
    .unwrap()
}

async fn spawn(backend: Backend, trusted: bool) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        if trusted {
            c.trusted_proxies = vec!["127.0.0.0/8".into()];
        }
        c.access_rules = sample_rules();
        c.default_policy = "deny".into();
        c.redirect_domains = vec!["example.test".into()];
    })
    .await
}

/// GET `endpoint` as a proxy asking about `target` (an nginx-style `X-Original-URL`).
async fn ask(
    client: &TestClient,
    endpoint: &str,
    target: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = client
        .http
        .get(client.url(endpoint))
        .header("X-Original-URL", target);
    if !extra
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("accept"))
    {
        request = request.header("Accept", "text/html");
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn location(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
}

fn login_location(app: &TestApp, target: &str) -> String {
    let next: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
    format!("{}/login?next={next}", app.addr)
}

backend_test! {
    async fn rules_decide_for_a_trusted_proxy(backend) {
        let app = spawn(backend, true).await;
        let anon = app.new_client();
        // bypass: anonymous 200 without identity.
        let r = ask(&anon, "/auth/check", "http://app.example.test/public/a", &[]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().get("remote-user").is_none());
        // one_factor through the wildcard: 401 with the login Location (check), 302 (forward).
        let target = "http://other.example.test/page?x=1&y=%2F";
        let r = ask(&anon, "/auth/check", target, &[]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(location(&r).unwrap(), login_location(&app, target));
        let r = ask(&anon, "/auth/forward", target, &[]).await;
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(location(&r).unwrap(), login_location(&app, target));
        // A script (XHR or JSON only) or a POST gets 401 from /auth/forward.
        let r = ask(&anon, "/auth/forward", target, &[("X-Requested-With", "XMLHttpRequest")]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = ask(&anon, "/auth/forward", target, &[("Accept", "application/json")]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = ask(&anon, "/auth/forward", target, &[("X-Original-Method", "POST")]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        // The same through the X-Forwarded-* headers of Traefik and Caddy.
        let r = anon.http.get(anon.url("/auth/forward"))
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "app.example.test")
            .header("X-Forwarded-Uri", "/public/x")
            .send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = anon.http.post(anon.url("/auth/check")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        let r = anon.http.get(anon.url("/auth/check"))
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "api.example.test")
            .header("X-Forwarded-Uri", "/hook")
            .header("X-Forwarded-Method", "POST")
            .send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "the POST-only bypass");
        // deny: 403 for anyone; a domain no rule covers: the default (deny here).
        assert_eq!(ask(&anon, "/auth/check", "http://app.example.test/closed", &[]).await.status(), StatusCode::FORBIDDEN);
        assert_eq!(ask(&anon, "/auth/check", "http://elsewhere.test/", &[]).await.status(), StatusCode::FORBIDDEN);
        // Percent-encoding does not slip past a path rule.
        assert_eq!(ask(&anon, "/auth/check", "http://app.example.test/%63losed", &[]).await.status(), StatusCode::FORBIDDEN);
        // A subject rule asks an anonymous visitor to sign in rather than falling through to deny.
        let r = ask(&anon, "/auth/check", "http://app.example.test/admin", &[]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(location(&r).is_some());

        // Signed in: 200 with every identity header.
        let user = app.create_user("alice").await;
        let alice = app.new_client();
        assert_eq!(alice.login("alice", PASSWORD, false).await.status(), StatusCode::OK);
        let r = ask(&alice, "/auth/check", "http://other.example.test/page", &[]).await;
        assert_eq!(r.status(), StatusCode::OK);
        let h = |name: &str| r.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(h("remote-user").as_deref(), Some("alice"));
        assert_eq!(h("remote-email").as_deref(), Some("alice@example.com"));
        assert_eq!(h("remote-name").as_deref(), Some("alice"));
        assert_eq!(h("remote-groups").as_deref(), Some("user"));
        assert_eq!(h("x-latch-user").as_deref(), Some("alice"));
        assert_eq!(h("x-latch-user-id"), Some(user["id"].as_i64().unwrap().to_string()));
        assert_eq!(h("x-latch-roles").as_deref(), Some(""));
        // Not named by the admin rule: on to the next rule (deny), 403.
        assert_eq!(ask(&alice, "/auth/check", "http://app.example.test/admin", &[]).await.status(), StatusCode::FORBIDDEN);
        crate::ops::set_roles(&app.db, user["id"].as_i64().unwrap(), "admin").await;
        let r = ask(&alice, "/auth/check", "http://app.example.test/admin/x", &[]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["remote-groups"], "user,admin");
        // deny stays 403 when signed in.
        assert_eq!(ask(&alice, "/auth/check", "http://app.example.test/closed", &[]).await.status(), StatusCode::FORBIDDEN);
        // A malformed target from a trusted proxy is refused, never a 500.
        for bad in ["not a url", "/relative", "ftp://app.example.test/", "http://u:p@app.example.test/"] {
            assert_eq!(ask(&alice, "/auth/check", bad, &[]).await.status(), StatusCode::FORBIDDEN, "{bad}");
        }
    }
}

backend_test! {
    async fn two_factor_needs_a_session_made_with_one(backend) {
        let app = spawn(backend, true).await;
        app.create_user("tina").await;
        // A session made by password alone, before TOTP is turned on in another browser.
        let old = app.new_client();
        assert_eq!(old.login("tina", PASSWORD, false).await.status(), StatusCode::OK);
        let target = "http://app.example.test/secure/page";
        let r = ask(&old, "/auth/check", target, &[]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(location(&r).unwrap(), format!("{}/account/security", app.addr), "no TOTP: enrol");
        let r = ask(&old, "/auth/forward", target, &[]).await;
        assert_eq!(r.status(), StatusCode::FOUND);
        let password_only = session_factors(&app).await;

        let new = app.new_client();
        assert_eq!(new.login("tina", PASSWORD, false).await.status(), StatusCode::OK);
        let secret = crate::mfa::set_up_on(&new).await;
        let confirm = new
            .post_json("/api/auth/mfa/totp/confirm", &json!({ "code": crate::mfa::code(&app, &secret, 0) }))
            .await;
        assert_eq!(confirm.status(), StatusCode::OK);
        // The session re-issued at confirmation counts as two-factor.
        assert_eq!(ask(&new, "/auth/check", target, &[]).await.status(), StatusCode::OK);
        // Turning TOTP on ended the old session; a password-only session of a user with
        // TOTP (made here by rewriting how the live one was made) goes to the second step.
        let r = ask(&old, "/auth/check", target, &[]).await;
        assert_eq!(location(&r).unwrap(), login_location(&app, target));
        set_session_factors(&app, &password_only).await;
        let r = ask(&new, "/auth/check", target, &[]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let next: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
        assert_eq!(location(&r).unwrap(), format!("{}/login/mfa?next={next}", app.addr));
        // one_factor pages still let it through.
        assert_eq!(ask(&new, "/auth/check", "http://app.example.test/x", &[]).await.status(), StatusCode::OK);
    }
}

/// [`spawn`] (trusted) with passkeys on and the `admin` role requiring a second factor.
async fn spawn_requiring_admins(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.trusted_proxies = vec!["127.0.0.0/8".into()];
        c.access_rules = sample_rules();
        c.default_policy = "deny".into();
        c.redirect_domains = vec!["example.test".into()];
        c.public_url = Some(ORIGIN.into());
        c.require_mfa_roles = vec!["admin".into()];
    })
    .await
}

/// `latch access check <target> --user <login>` on the app's database, with its settings.
async fn access_check(app: &TestApp, target: &str, login: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("latch.toml");
    let toml = format!(
        "public_url = \"{ORIGIN}\"\nrequire_mfa_roles = [\"admin\"]\ndefault_policy = \"deny\"\n\
         [[access_rules]]\ndomain = \"app.example.test\"\npath = \"^/secure\"\npolicy = \"two_factor\"\n\
         [[access_rules]]\ndomain = \"*.example.test\"\npolicy = \"one_factor\"\n"
    );
    std::fs::write(&config, toml).unwrap();
    let config = config.to_str().unwrap();
    let args = [
        "access", "check", target, "--user", login, "--config", config,
    ];
    let out = crate::authz::latch(app, &args, None).await;
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

backend_test! {
    /// A `require_mfa_roles` holder whose second factor is a passkey is, like a TOTP user,
    /// sent to the second step when their session lacks it, not to enrolment; without the
    /// passkey they are held again. `latch access check` says the same.
    async fn a_passkey_holder_lacking_the_second_factor_goes_to_the_second_step(backend) {
        let app = spawn_requiring_admins(backend).await;
        let (pia, _) = crate::authz::admin_client(&app, "pia").await;
        let secure = "http://app.example.test/secure/page";
        let page = "http://app.example.test/page";
        let enrol = Some(format!("{ORIGIN}/account/security"));
        let r = ask(&pia, "/auth/check", page, &[]).await;
        assert_eq!((r.status(), location(&r)), (StatusCode::UNAUTHORIZED, enrol.clone()), "held");
        let passkey = add_passkey(&pia, &mut Device::new(true), "Laptop").await;
        // The session re-issued with the passkey counts as two-factor.
        assert_eq!(ask(&pia, "/auth/check", secure, &[]).await.status(), StatusCode::OK);
        // A session of theirs made by the password alone (rewritten here, as for TOTP above)
        // goes to the second step, which their password sign-in asks for.
        set_session_factors(&app, "password:1700000000").await;
        let next: String = form_urlencoded::byte_serialize(secure.as_bytes()).collect();
        let second_step = Some(format!("{ORIGIN}/login/mfa?next={next}"));
        let r = ask(&pia, "/auth/check", secure, &[]).await;
        assert_eq!((r.status(), location(&r)), (StatusCode::UNAUTHORIZED, second_step.clone()));
        let r = ask(&pia, "/auth/forward", secure, &[]).await;
        assert_eq!((r.status(), location(&r)), (StatusCode::FOUND, second_step));
        assert_eq!(ask(&pia, "/auth/check", page, &[]).await.status(), StatusCode::OK, "not held");
        let text = access_check(&app, secure, "pia").await;
        assert!(
            text.contains("decision (pia, password-only session): second factor needed (sent to /login/mfa)")
                && text.contains("decision (pia, two-factor session): allow"),
            "{text}"
        );

        // Without the passkey, held again: enrolment, whatever the session.
        let path = format!("/api/auth/passkeys/{}", passkey["id"]);
        let removed = send(&pia, reqwest::Method::DELETE, &path, None).await;
        assert_eq!(removed.status(), StatusCode::NO_CONTENT);
        for target in [secure, page] {
            let r = ask(&pia, "/auth/check", target, &[]).await;
            assert_eq!((r.status(), location(&r)), (StatusCode::UNAUTHORIZED, enrol.clone()), "{target}");
        }
        let text = access_check(&app, page, "pia").await;
        assert!(
            text.contains("decision (pia): second factor needed (sent to /account/security to set one up)"),
            "{text}"
        );
    }
}

backend_test! {
    /// A signed-in session made without a second factor, of a user who has one, adds it on
    /// the second step's page (or with `POST /api/auth/mfa`): forward-auth sends it there,
    /// and the page no longer sends a signed-in session on to `/login`, which sent it back to
    /// the protected URL, round and round.
    async fn a_session_lacking_the_second_factor_adds_it_on_the_second_step(backend) {
        let app = spawn(backend, true).await;
        let (tess, secret, recovery) = crate::mfa::enrolled(&app, "tess").await;
        let secure = "http://app.example.test/secure/page";
        let page = "http://app.example.test/page";
        set_session_factors(&app, "password:1700000000").await;
        let next: String = form_urlencoded::byte_serialize(secure.as_bytes()).collect();
        let step = format!("/login/mfa?next={next}");
        let r = ask(&tess, "/auth/forward", secure, &[]).await;
        assert_eq!((r.status(), location(&r)), (StatusCode::FOUND, Some(format!("{}{step}", app.addr))));

        let shown = tess.get(&step).await;
        assert_eq!(shown.status(), StatusCode::OK, "the form, not a redirect");
        let html = shown.text().await.unwrap();
        assert!(html.contains("Confirm your second factor") && html.contains("name=\"code\""), "{html}");
        let csrf = extract_meta_csrf(&html).unwrap();
        // A wrong code is refused at its field, and the session stays as it was.
        let fields = [("csrf_token", csrf.as_str()), ("next", secure), ("code", "999999x")];
        let wrong = tess.post_form("/login/mfa", &fields).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert!(wrong.text().await.unwrap().contains("id=\"code-error\""));
        assert_eq!(ask(&tess, "/auth/check", secure, &[]).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(ask(&tess, "/auth/check", page, &[]).await.status(), StatusCode::OK);

        let old_cookie = tess.session_cookie().unwrap();
        let right = crate::mfa::code(&app, &secret, 1);
        let fields = [("csrf_token", csrf.as_str()), ("next", secure), ("code", right.as_str())];
        let done = tess.post_form("/login/mfa", &fields).await;
        assert_eq!((done.status(), location(&done)), (StatusCode::SEE_OTHER, Some(secure.to_owned())));
        assert_eq!(ask(&tess, "/auth/check", secure, &[]).await.status(), StatusCode::OK);
        let current = current_session(&tess).await;
        assert_eq!(current["two_factor"], true, "{current}");
        // Re-issued under a new id: the one-factor cookie is dead.
        let replayed = tess.get_with_cookie("/api/auth/verify_auth", &old_cookie).await;
        assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);

        // Nothing left to add: the page goes on to `next`, the API says nothing is pending.
        assert_redirect(&tess.get(&step).await, secure);
        let again = tess.post_json("/api/auth/mfa", &json!({ "code": right })).await;
        assert_eq!(error_code(again).await, (StatusCode::UNAUTHORIZED, "mfa_not_pending".into()));

        // The API adds it the same way, here with a recovery code.
        set_session_factors(&app, "password:1700000000").await;
        assert_eq!(ask(&tess, "/auth/check", secure, &[]).await.status(), StatusCode::UNAUTHORIZED);
        let api = tess.post_json("/api/auth/mfa", &json!({ "recovery_code": recovery[0] })).await;
        assert_eq!(api.status(), StatusCode::OK);
        assert_eq!(ask(&tess, "/auth/check", secure, &[]).await.status(), StatusCode::OK);
        let factors = current_session(&tess).await["factors"].clone();
        let names: Vec<&str> = factors.as_array().unwrap().iter().map(|f| f["factor"].as_str().unwrap()).collect();
        assert_eq!(names, ["password", "recovery_code"]);
    }
}

backend_test! {
    /// A user whose second factor is a passkey (no role requires one) and who signed in with
    /// the password is sent to the second step by a `two_factor` rule, not to enrolment, and
    /// their own passkey there adds its factor to the session: a password and a key without
    /// user verification make two.
    async fn a_passkey_adds_the_second_factor_to_a_password_session(backend) {
        let app = spawn_requiring_admins(backend).await;
        let quinn = app.new_client();
        quinn.signup("quinn", "quinn@example.com", PASSWORD).await;
        let mut key = Device::new(false);
        add_passkey(&quinn, &mut key, "Security key").await;
        quinn.logout().await;
        assert_eq!(quinn.login("quinn", PASSWORD, false).await.status(), StatusCode::OK, "no second step asked");
        let secure = "http://app.example.test/secure/page";
        let next: String = form_urlencoded::byte_serialize(secure.as_bytes()).collect();
        let r = ask(&quinn, "/auth/check", secure, &[]).await;
        assert_eq!(location(&r), Some(format!("{ORIGIN}/login/mfa?next={next}")));
        let html = quinn.get(&format!("/login/mfa?next={next}")).await.text().await.unwrap();
        assert!(html.contains("data-passkey-second-step") && !html.contains("name=\"code\""), "{html}");

        assert_eq!(crate::passkeys::passkey_sign_in(&quinn, &mut key).await.status(), StatusCode::OK);
        assert_eq!(
            crate::passkeys::current_factors(&quinn).await,
            (vec!["password".to_owned(), "security_key".to_owned()], true)
        );
        assert_eq!(ask(&quinn, "/auth/check", secure, &[]).await.status(), StatusCode::OK);
        // Signing in anew with the key makes a one-factor session, and the same key once
        // more proves nothing new: still one factor, not two.
        for _ in 0..2 {
            assert_eq!(crate::passkeys::passkey_sign_in(&quinn, &mut key).await.status(), StatusCode::OK);
            assert_eq!(
                crate::passkeys::current_factors(&quinn).await,
                (vec!["security_key".to_owned()], false)
            );
        }
        assert_eq!(ask(&quinn, "/auth/check", secure, &[]).await.status(), StatusCode::UNAUTHORIZED);
    }
}

backend_test! {
    async fn an_untrusted_peer_gets_identity_only(backend) {
        let app = spawn(backend, false).await;
        let anon = app.new_client();
        // Even a bypass or deny target is ignored: no rules, no redirect.
        let r = ask(&anon, "/auth/check", "http://app.example.test/public/a", &[]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(location(&r).is_none());
        let r = ask(&anon, "/auth/forward", "http://app.example.test/x", &[]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(location(&r).is_none());
        app.create_user("alice").await;
        let alice = app.new_client();
        assert_eq!(alice.login("alice", PASSWORD, false).await.status(), StatusCode::OK);
        let r = ask(&alice, "/auth/check", "http://app.example.test/closed", &[]).await;
        assert_eq!(r.status(), StatusCode::OK, "a deny rule applied to an untrusted peer's target");
        assert_eq!(r.headers()["remote-user"], "alice");
    }
}

/// How the (one) signed-in session was made, as stored.
async fn session_factors(app: &TestApp) -> String {
    let sql = "SELECT factors FROM sessions WHERE user_id IS NOT NULL";
    match &app.db {
        latch::store::Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        latch::store::Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

async fn set_session_factors(app: &TestApp, factors: &str) {
    let sql = "UPDATE sessions SET factors = $1 WHERE user_id IS NOT NULL";
    match &app.db {
        latch::store::Db::Sqlite(pool) => {
            sqlx::query(sql).bind(factors).execute(pool).await.unwrap();
        }
        latch::store::Db::Postgres(pool) => {
            sqlx::query(sql).bind(factors).execute(pool).await.unwrap();
        }
    }
}

/// Rows and `last_seen_at` of every session, to see that forward-auth writes nothing.
async fn session_rows(app: &TestApp) -> Vec<(i64, i64)> {
    let sql = "SELECT id, last_seen_at FROM sessions ORDER BY id";
    match &app.db {
        latch::store::Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        latch::store::Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
    }
}

async fn token_uses(app: &TestApp) -> Vec<Option<i64>> {
    let sql = "SELECT last_used_at FROM api_tokens ORDER BY id";
    match &app.db {
        latch::store::Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
        latch::store::Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
    }
}

backend_test! {
    async fn forward_auth_never_writes(backend) {
        let app = spawn(backend, true).await;
        app.create_user("alice").await;
        let alice = app.new_client();
        assert_eq!(alice.login("alice", PASSWORD, false).await.status(), StatusCode::OK);
        let token: Value = alice
            .post_json("/api/auth/tokens", &json!({ "name": "ci" }))
            .await
            .json()
            .await
            .unwrap();
        let secret = token["secret"].as_str().expect("a token secret").to_owned();
        let before = session_rows(&app).await;
        let tokens_before = token_uses(&app).await;
        for round in 0..5 {
            // Past the interval after which a normal request would record activity.
            app.clock.advance(120);
            for _ in 0..10 {
                let r = ask(&alice, "/auth/check", "http://app.example.test/x", &[]).await;
                assert_eq!(r.status(), StatusCode::OK, "round {round}");
                let r = ask(&alice, "/auth/forward", "http://app.example.test/x", &[]).await;
                assert_eq!(r.status(), StatusCode::OK);
                let r = alice.http.get(alice.url("/auth/check"))
                    .bearer_auth(&secret)
                    .header("X-Original-URL", "http://app.example.test/x")
                    .send().await.unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                let r = app.new_client().get("/auth/check").await;
                assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            }
        }
        // Long enough for a write made behind the request (as a normal request's is) to land.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(session_rows(&app).await, before, "forward-auth wrote a session");
        assert_eq!(token_uses(&app).await, tokens_before, "forward-auth recorded a token use");
        // An expired session is only reported absent, not deleted.
        app.clock.advance(24 * 3600);
        assert_eq!(ask(&alice, "/auth/check", "http://app.example.test/x", &[]).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(session_rows(&app).await, before);
    }
}

backend_test! {
    async fn sign_in_returns_to_an_application_only_under_redirect_domains(backend) {
        let app = spawn(backend, true).await;
        app.create_user("alice").await;
        let back = "http://app.example.test/page?x=1";
        for (next, expected) in [
            (back, back.to_owned()),
            ("http://example.test.evil.test/", "/dashboard".to_owned()),
            ("http://evil.test/?example.test", "/dashboard".to_owned()),
            ("http://example.test@evil.test/", "/dashboard".to_owned()),
            ("http://ехample.test/", "/dashboard".to_owned()),
            ("//evil.test/", "/dashboard".to_owned()),
            ("http://app.example.test\\@evil.test/", "/dashboard".to_owned()),
        ] {
            let client = app.new_client();
            let encoded: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
            let path = format!("/login?next={encoded}");
            let token = client.page_csrf(&path).await;
            let response = client
                .post_form(&path, &[("csrf_token", &token), ("login", "alice"), ("password", PASSWORD)])
                .await;
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next}");
            assert_eq!(location(&response).unwrap(), expected, "{next}");
        }
    }
}

backend_test! {
    async fn cookie_domain_shares_the_session_with_subdomains(backend) {
        let app = TestApp::spawn_with(backend, |c| {
            c.cookie_domain = Some("example.test".into());
            c.public_url = Some("https://auth.example.test".into());
        })
        .await;
        let response = app.new_client().get("/api/auth/csrf").await;
        let cookie = set_cookie_headers(&response).into_iter().find(|c| c.contains("latch_session=")).unwrap();
        assert!(cookie.starts_with("__Secure-latch_session="), "{cookie}");
        assert!(cookie.contains("Domain=example.test"), "{cookie}");
        assert!(cookie.contains("Secure") && cookie.contains("HttpOnly"), "{cookie}");
        // A bad cookie_domain is refused.
        let mut config = latch::config::Config {
            cookie_domain: Some("other.test".into()),
            public_url: Some("https://auth.example.test".into()),
            ..latch::config::Config::default()
        };
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("cookie_domain"), "{error}");
        config.cookie_domain = None;
        config.access_rules = serde_json::from_value(json!([{ "domain": "a.test", "path": "(", "policy": "deny" }])).unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("access_rules[0]: path: regex parse error"), "{error}");
    }
}
