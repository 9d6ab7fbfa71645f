//! Forward-auth behind the real nginx (`auth_request` → `/auth/check`) and Caddy
//! (`forward_auth` → `/auth/forward`), started on free loopback ports with generated
//! configurations, in front of an upstream that echoes the headers it received as JSON.
//! `.ci/run` installs Debian's `nginx-light` and `caddy`; plain `cargo test` skips these.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::http::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

const IDENTITY: [&str; 7] = [
    "remote-user",
    "remote-groups",
    "remote-email",
    "remote-name",
    "x-latch-user",
    "x-latch-user-id",
    "x-latch-roles",
];

/// An upstream application: answers every request with the headers it received.
async fn echo_upstream() -> SocketAddr {
    async fn echo(headers: HeaderMap, uri: axum::http::Uri) -> axum::response::Response {
        let mut map = serde_json::Map::new();
        for (name, value) in &headers {
            map.insert(
                name.as_str().to_owned(),
                json!(value.to_str().unwrap_or("")),
            );
        }
        latch::web::error::axum_json(&json!({ "uri": uri.to_string(), "headers": map }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(echo);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A proxy process, stopped when dropped.
struct Proxy {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_for(port: u16, child: &mut Child, what: &str) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited at start: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not listen on {port}");
}

/// nginx in front of `upstream`, asking latch at `latch` with `auth_request`.
async fn nginx(latch: SocketAddr, upstream: SocketAddr) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = nginx_conf(port, latch, upstream, dir.path());
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let mut child = Command::new("nginx")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx is installed (.ci/run installs nginx-light)");
    wait_for(port, &mut child, "nginx").await;
    Proxy {
        child,
        port,
        _dir: dir,
    }
}

/// The README's nginx configuration, with test ports and paths.
fn nginx_conf(port: u16, latch: SocketAddr, upstream: SocketAddr, dir: &std::path::Path) -> String {
    let dir = dir.display();
    let identity: String = IDENTITY
        .iter()
        .map(|h| {
            let var = h.replace('-', "_");
            format!(
                "            auth_request_set $latch_{var} $upstream_http_{var};\n            proxy_set_header {h} $latch_{var};\n"
            )
        })
        .collect();
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    map $http_x_requested_with $latch_xhr {{ default 0; XMLHttpRequest 1; }}
    server {{
        listen 127.0.0.1:{port};
        server_name _;
        location / {{
            auth_request /_latch;
            auth_request_set $latch_location $upstream_http_location;
{identity}            error_page 401 = @latch_login;
            proxy_pass http://{upstream};
        }}
        location = /_latch {{
            internal;
            proxy_pass http://{latch}/auth/check;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
        location @latch_login {{
            if ($latch_xhr) {{ return 401; }}
            if ($latch_location = "") {{ return 401; }}
            return 302 $latch_location;
        }}
    }}
}}
"#
    )
}

/// Caddy in front of `upstream`, asking latch at `latch` with `forward_auth`.
async fn caddy(latch: SocketAddr, upstream: SocketAddr) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let caddyfile = caddyfile(port, latch, upstream);
    std::fs::write(dir.path().join("Caddyfile"), caddyfile).unwrap();
    let mut child = Command::new("caddy")
        .arg("run")
        .arg("--config")
        .arg(dir.path().join("Caddyfile"))
        .arg("--adapter")
        .arg("caddyfile")
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("caddy is installed (.ci/run installs caddy)");
    wait_for(port, &mut child, "caddy").await;
    Proxy {
        child,
        port,
        _dir: dir,
    }
}

/// The README's Caddyfile, with test ports.
fn caddyfile(port: u16, latch: SocketAddr, upstream: SocketAddr) -> String {
    let strip: String = IDENTITY
        .iter()
        .map(|h| format!("        request_header -{h}\n"))
        .collect();
    format!(
        r#"{{
    admin off
    auto_https off
}}
http://:{port} {{
    bind 127.0.0.1
    # `route` keeps this order: the client's identity headers go before latch's are copied.
    route {{
{strip}        forward_auth {latch} {{
            uri /auth/forward
            copy_headers Remote-User Remote-Groups Remote-Email Remote-Name X-Latch-User X-Latch-User-Id X-Latch-Roles
        }}
        reverse_proxy {upstream}
    }}
}}
"#
    )
}

/// latch for the proxies: `public_url` on `auth.example.test`, the rules of the black-box
/// tests, the cookie shared over `example.test`, and loopback as the trusted proxy.
async fn latch_app(backend: Backend, trust: bool) -> (TestApp, u16) {
    let port = free_port();
    let app = TestApp::spawn_with(backend, |c| {
        c.bind = format!("127.0.0.1:{port}").parse().unwrap();
        c.public_url = Some(format!("http://auth.example.test:{port}"));
        c.cookie_domain = Some("example.test".into());
        c.redirect_domains = vec!["example.test".into()];
        c.access_rules = crate::forward_auth::sample_rules();
        c.default_policy = "deny".into();
        if trust {
            c.trusted_proxies = vec!["127.0.0.1".into()];
        }
    })
    .await;
    (app, port)
}

/// A browser that resolves `*.example.test` to loopback: `auth.` is latch, `app.` and
/// `other.` are the proxy.
fn browser(latch_port: u16, proxy_port: u16) -> reqwest::Client {
    let latch = SocketAddr::from(([127, 0, 0, 1], latch_port));
    let proxy = SocketAddr::from(([127, 0, 0, 1], proxy_port));
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .resolve("auth.example.test", latch)
        .resolve("app.example.test", proxy)
        .resolve("other.example.test", proxy)
        .build()
        .unwrap()
}

/// Signs `username` up through latch's API on its public host (the cookie's domain).
async fn sign_up(latch_port: u16, proxy_port: u16, username: &str) -> Value {
    let client = browser(latch_port, proxy_port);
    let api = |path: &str| format!("http://auth.example.test:{latch_port}{path}");
    let csrf: Value = client
        .get(api("/api/auth/csrf"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = client
        .post(api("/api/auth/signup"))
        .header("X-CSRF-Token", csrf["csrf_token"].as_str().unwrap())
        .json(&json!({ "username": username, "email": format!("{username}@example.com"), "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json::<Value>().await.unwrap()["user"].clone()
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// Signs in through latch's login page at `login_url` (where the proxy sent the browser);
/// returns where latch sends the browser afterwards.
async fn sign_in_at(browser: &reqwest::Client, login_url: &str, username: &str) -> String {
    let page = browser.get(login_url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "{login_url}");
    let html = page.text().await.unwrap();
    let token = extract_meta_csrf(&html).expect("a CSRF token on the login page");
    let response = browser
        .post(login_url)
        .form(&[
            ("csrf_token", token.as_str()),
            ("login", username),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    location(&response)
}

/// The scenario both proxies must pass.
async fn scenario(app: &TestApp, latch_port: u16, proxy_port: u16) {
    let user = sign_up(latch_port, proxy_port, "alice").await;
    let browser = browser(latch_port, proxy_port);
    let app_url = |path: &str| format!("http://app.example.test:{proxy_port}{path}");
    let target = app_url("/page?x=1");

    // Anonymous browser: to the login page with the target in `next`…
    let response = browser
        .get(&target)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let next: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
    let login_url = format!("http://auth.example.test:{latch_port}/login?next={next}");
    assert_eq!(location(&response), login_url);
    // …an XHR gets 401 instead…
    let response = browser
        .get(&target)
        .header("X-Requested-With", "XMLHttpRequest")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // …and after signing in, back at the application.
    assert_eq!(sign_in_at(&browser, &login_url, "alice").await, target);

    // Signed in: the upstream sees latch's identity headers, never the client's own.
    let response = browser
        .get(&target)
        .header("Remote-User", "admin")
        .header("Remote-Groups", "admin")
        .header("X-Latch-User-Id", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echoed: Value = response.json().await.unwrap();
    let h = &echoed["headers"];
    assert_eq!(echoed["uri"], "/page?x=1");
    assert_eq!(h["remote-user"], "alice", "{h}");
    assert_eq!(h["remote-groups"], "user", "{h}");
    assert_eq!(h["remote-email"], "alice@example.com");
    assert_eq!(h["x-latch-user"], "alice");
    assert_eq!(
        h["x-latch-user-id"],
        user["id"].as_i64().unwrap().to_string()
    );

    // bypass lets an anonymous visitor through, with the spoofed identity stripped.
    let anonymous = browser_without_cookies(proxy_port);
    let response = anonymous
        .get(app_url("/public/x"))
        .header("Remote-User", "admin")
        .header("X-Latch-User", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echoed: Value = response.json().await.unwrap();
    for name in IDENTITY {
        // Caddy 2.6's copy_headers passes its unfilled placeholder when latch sent no value
        // (later Caddy versions drop the header): never the client's value.
        let value = echoed["headers"].get(name).and_then(Value::as_str);
        assert!(
            value.is_none_or(|v| v.starts_with("{http.reverse_proxy.header.")),
            "{name} reached the app: {echoed}"
        );
    }
    // deny, the role subject, two_factor with a password-only session.
    let status = |path: &'static str| {
        let browser = browser.clone();
        let url = app_url(path);
        async move { browser.get(url).send().await.unwrap().status() }
    };
    assert_eq!(status("/closed").await, StatusCode::FORBIDDEN);
    assert_eq!(status("/admin").await, StatusCode::FORBIDDEN);
    crate::ops::set_roles(&app.db, user["id"].as_i64().unwrap(), "admin").await;
    assert_eq!(status("/admin").await, StatusCode::OK);
    let response = browser.get(app_url("/secure/x")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        location(&response),
        format!("http://auth.example.test:{latch_port}/account/security")
    );

    // An absolute `next` leads back only under redirect_domains.
    let hostile = "http://example.test.evil.test/";
    let encoded: String = form_urlencoded::byte_serialize(hostile.as_bytes()).collect();
    let fresh = browser_without_cookies(proxy_port);
    let resolved = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .resolve(
            "auth.example.test",
            SocketAddr::from(([127, 0, 0, 1], latch_port)),
        )
        .build()
        .unwrap();
    drop(fresh);
    let login = format!("http://auth.example.test:{latch_port}/login?next={encoded}");
    assert_eq!(sign_in_at(&resolved, &login, "alice").await, "/dashboard");
}

fn browser_without_cookies(proxy_port: u16) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(
            "app.example.test",
            SocketAddr::from(([127, 0, 0, 1], proxy_port)),
        )
        .build()
        .unwrap()
}

/// With latch not trusting the proxy, the target it names is ignored: identity only.
async fn untrusted(app: &TestApp, proxy_port: u16) {
    let anonymous = browser_without_cookies(proxy_port);
    let response = anonymous
        .get(format!("http://app.example.test:{proxy_port}/public/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "a bypass rule was applied"
    );
    assert!(response.headers().get("location").is_none());
    let _ = app;
}

macro_rules! proxy_test {
    ($name:ident, $start:ident) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs nginx and caddy: run by .ci/run"]
            async fn through_the_proxy() {
                let backend = if std::env::var("LATCH_TEST_DATABASE_URL").is_ok() {
                    Backend::Postgres
                } else {
                    Backend::Sqlite
                };
                let upstream = echo_upstream().await;
                let (app, latch_port) = latch_app(backend, true).await;
                let proxy = $start(([127, 0, 0, 1], latch_port).into(), upstream).await;
                scenario(&app, latch_port, proxy.port).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs nginx and caddy: run by .ci/run"]
            async fn an_untrusted_proxy_gets_identity_only() {
                let upstream = echo_upstream().await;
                let (app, latch_port) = latch_app(Backend::Sqlite, false).await;
                let proxy = $start(([127, 0, 0, 1], latch_port).into(), upstream).await;
                untrusted(&app, proxy.port).await;
            }
        }
    };
}

proxy_test!(nginx_auth_request, nginx);
proxy_test!(caddy_forward_auth, caddy);
