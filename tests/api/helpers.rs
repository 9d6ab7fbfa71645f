//! `TestApp`: the real application on a random port with a fresh database, and clients that
//! speak HTTP to it like a browser (cookies kept, redirects not followed) or an API client.

use std::sync::Arc;

use latch::app::App;
use latch::clock::ManualClock;
use latch::config::Config;
use latch::store::Db;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Defines a test that runs once on SQLite and once on PostgreSQL; the PostgreSQL run is
/// `#[ignore]`d (visibly skipped) unless asked for, and needs `LATCH_TEST_DATABASE_URL`.
#[macro_export]
macro_rules! db_test {
    ($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: $crate::helpers::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn sqlite() {
                run($crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs PostgreSQL: set LATCH_TEST_DATABASE_URL and run with --ignored"]
            $(#[$meta])*
            async fn postgres() {
                run($crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await).await;
            }
        }
    };
}

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub addr: String,
    pub clock: ManualClock,
    pub db: Db,
    /// The running application's state (to observe work such as hashes computed).
    pub state: latch::state::AppState,
    pub client: TestClient,
    pub outbox: std::path::PathBuf,
    pub database_url: String,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl std::ops::Deref for TestApp {
    type Target = TestClient;
    fn deref(&self) -> &TestClient {
        &self.client
    }
}

/// A fast Argon2 setting for tests; `spawn_with` can restore the defaults.
pub fn test_config(backend: Backend, dir: &std::path::Path) -> Config {
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("test.db").display()),
        Backend::Postgres => fresh_postgres_database(),
    };
    Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url,
        mail_outbox: dir.join("outbox"),
        argon2_memory_kib: 256,
        argon2_iterations: 1,
        argon2_parallelism: 1,
        ..Config::default()
    }
}

/// Creates a uniquely named database on the server named by `LATCH_TEST_DATABASE_URL`.
pub fn fresh_postgres_database() -> String {
    let admin = std::env::var("LATCH_TEST_DATABASE_URL")
        .expect("LATCH_TEST_DATABASE_URL must name a PostgreSQL server for the postgres tests");
    let name = format!(
        "latch_test_{}",
        latch::domain::SecretToken::generate().unwrap().expose()[..16]
            .to_ascii_lowercase()
            .replace(['-', '_'], "x")
    );
    let admin_for_thread = admin.clone();
    let name_for_thread = name.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin_for_thread)
                .await
                .unwrap();
            sqlx::query(&format!("CREATE DATABASE {name_for_thread}"))
                .execute(&mut conn)
                .await
                .unwrap();
        });
    })
    .join()
    .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(backend, dir.path());
        adjust(&mut config);
        let database_url = config.database_url.clone();
        let outbox = config.mail_outbox.clone();
        let clock = ManualClock::new();
        let app = App::build_with_clock(config, Arc::new(clock.clone()))
            .await
            .unwrap();
        let addr = format!("http://{}", app.local_addr());
        let db = app.state().db.clone();
        let state = app.state().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        let client = TestClient::new(&addr);
        TestApp {
            addr,
            clock,
            db,
            state,
            client,
            outbox,
            database_url,
            _dir: dir,
            _stop: stop,
        }
    }

    /// Another browser: its own cookie jar.
    pub fn new_client(&self) -> TestClient {
        TestClient::new(&self.addr)
    }

    /// Signs up `username` through the API with the default password; returns the user JSON.
    pub async fn create_user(&self, username: &str) -> Value {
        let other = self.new_client();
        let response = other
            .signup(username, &format!("{username}@example.com"), PASSWORD)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "sign-up of {username} failed"
        );
        response.json::<Value>().await.unwrap()["user"].clone()
    }
}

impl Drop for TestApp {
    /// Drops a PostgreSQL test database (SQLite files go with the temp dir).
    fn drop(&mut self) {
        drop_postgres_database(&self.database_url);
    }
}

/// Drops the database a `fresh_postgres_database` URL names (no-op for other URLs).
pub fn drop_postgres_database(database_url: &str) {
    if !database_url.starts_with("postgres") {
        return;
    }
    let Ok(admin) = std::env::var("LATCH_TEST_DATABASE_URL") else {
        return;
    };
    let name = database_url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::Connection;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
        });
    })
    .join();
}

pub struct TestClient {
    pub base: String,
    pub http: reqwest::Client,
    pub jar: Arc<Jar>,
}

impl TestClient {
    pub fn new(base: &str) -> TestClient {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        TestClient {
            base: base.to_owned(),
            http,
            jar,
        }
    }

    /// A client for the paths under `prefix`, sharing this one's cookies (for latch nested in
    /// another application).
    pub fn under(&self, prefix: &str) -> TestClient {
        TestClient {
            base: format!("{}{prefix}", self.base),
            http: self.http.clone(),
            jar: self.jar.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The session cookie's value, if the jar holds one.
    pub fn session_cookie(&self) -> Option<String> {
        let url = reqwest::Url::parse(&self.base).unwrap();
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .unwrap()
            .split("; ")
            .find_map(|c| c.strip_prefix("latch_session=").map(str::to_owned))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    pub async fn csrf(&self) -> String {
        let body: Value = self.get("/api/auth/csrf").await.json().await.unwrap();
        body["csrf_token"].as_str().unwrap().to_owned()
    }

    /// POSTs JSON with a fresh CSRF token of this client's session.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        let token = self.csrf().await;
        self.post_json_with_token(path, body, Some(&token)).await
    }

    /// POSTs JSON with a fresh CSRF token, as a proxy forwarding it for `forwarded_for`
    /// would (the app must trust the test client's address as a proxy).
    pub async fn post_json_forwarded(
        &self,
        path: &str,
        forwarded_for: &str,
        body: &Value,
    ) -> Response {
        let token = self.csrf().await;
        self.http
            .post(self.url(path))
            .header("X-CSRF-Token", token)
            .header("X-Forwarded-For", forwarded_for)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_json_with_token(
        &self,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> Response {
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.header("X-CSRF-Token", token);
        }
        request.send().await.unwrap()
    }

    /// POSTs a raw body with a content type (and the CSRF header).
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Response {
        let token = self.csrf().await;
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        }
        headers.insert("X-CSRF-Token", HeaderValue::from_str(&token).unwrap());
        self.http
            .post(self.url(path))
            .headers(headers)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Submits a form the way a browser does (fields URL-encoded).
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.http
            .post(self.url(path))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// The CSRF token in a page's `<meta name="csrf-token">`.
    pub async fn page_csrf(&self, path: &str) -> String {
        let html = self.get(path).await.text().await.unwrap();
        extract_meta_csrf(&html).expect("page has a csrf meta tag")
    }

    pub async fn signup(&self, username: &str, email: &str, password: &str) -> Response {
        self.post_json(
            "/api/auth/signup",
            &json!({ "username": username, "email": email, "password": password }),
        )
        .await
    }

    pub async fn login(&self, login: &str, password: &str, remember: bool) -> Response {
        self.post_json(
            "/api/auth/login",
            &json!({ "login": login, "password": password, "remember_me": remember }),
        )
        .await
    }

    pub async fn logout(&self) -> Response {
        self.post_json("/api/auth/logout", &json!({})).await
    }

    /// GET with an explicit Cookie header and no jar (to replay an old cookie).
    pub async fn get_with_cookie(&self, path: &str, cookie: &str) -> Response {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(self.url(path))
            .header("Cookie", format!("latch_session={cookie}"))
            .send()
            .await
            .unwrap()
    }
}

/// The client's current session, as `GET /api/auth/sessions` lists it.
pub async fn current_session(client: &TestClient) -> Value {
    let list: Value = client.get("/api/auth/sessions").await.json().await.unwrap();
    list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()
        .clone()
}

pub fn extract_meta_csrf(html: &str) -> Option<String> {
    let start =
        html.find("name=\"csrf-token\" content=\"")? + "name=\"csrf-token\" content=\"".len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// Asserts a 303 to `location`.
pub fn assert_redirect(response: &Response, location: &str) {
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "expected a redirect to {location}"
    );
    assert_eq!(response.headers()["location"], location);
}

/// The error code of an API error body.
pub async fn error_code(response: Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Like [`db_test!`], for tests that start their own app (with `TestApp::spawn_with`): the body
/// receives the `Backend` instead of a running app.
#[macro_export]
macro_rules! backend_test {
    ($(#[$meta:meta])* async fn $name:ident($backend:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($backend: $crate::helpers::Backend) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn sqlite() {
                run($crate::helpers::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs PostgreSQL: set LATCH_TEST_DATABASE_URL and run with --ignored"]
            $(#[$meta])*
            async fn postgres() {
                run($crate::helpers::Backend::Postgres).await;
            }
        }
    };
}

/// The raw `Set-Cookie` header values of a response (read before the body is consumed).
pub fn set_cookie_headers(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The `Set-Cookie` value for the cookie called `name`, if the response sets it.
pub fn set_cookie_named(response: &Response, name: &str) -> Option<String> {
    set_cookie_headers(response)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// One message from the outbox: its recipient and its decoded text.
#[derive(Debug, Clone)]
pub struct OutboxMail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl OutboxMail {
    /// The token of the first link to `path` (`/verify-email`, `/reset-password`).
    pub fn token_for(&self, path: &str) -> Option<String> {
        let start = self.body.find(&format!("{path}?token="))? + path.len() + "?token=".len();
        Some(
            self.body[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect(),
        )
    }
}

/// Every `.eml` file in an outbox directory, oldest first.
pub fn outbox_mails_in(outbox: &std::path::Path) -> Vec<OutboxMail> {
    let Ok(entries) = std::fs::read_dir(outbox) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let raw = std::fs::read_to_string(path).unwrap();
            let body = raw.replace("=\r\n", "").replace("=3D", "=");
            let header = |name: &str| {
                raw.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            };
            OutboxMail {
                to: header("To:"),
                subject: header("Subject:"),
                body,
            }
        })
        .collect()
}

impl TestApp {
    /// Every `.eml` file in the outbox, oldest first.
    pub fn outbox_mails(&self) -> Vec<OutboxMail> {
        outbox_mails_in(&self.outbox)
    }

    /// The newest mail to `address`.
    pub fn last_mail_to(&self, address: &str) -> Option<OutboxMail> {
        self.outbox_mails()
            .into_iter()
            .rev()
            .find(|m| m.to.contains(address))
    }
}
