//! Several `latch serve` processes on one database, and what happens when things fail.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const PG: &str = "needs PostgreSQL: set LATCH_TEST_DATABASE_URL and run with --ignored";

/// A `latch serve` child process, killed when dropped.
pub struct Node {
    pub child: Child,
    pub base: String,
    /// The node's own mail directory when the test named none (removed with the node).
    _outbox: Option<tempfile::TempDir>,
}

impl Node {
    pub fn start(database_url: &str) -> Node {
        Self::try_start(database_url).unwrap_or_else(|e| panic!("node did not start: {e}"))
    }

    pub fn try_start(database_url: &str) -> Result<Node, String> {
        Self::spawn(latch_command(), database_url)
    }

    /// `latch serve` on a free port through `command` (its environment chosen by the test);
    /// returns once it prints the address, or its stderr if it fails to start. Mail goes to a
    /// temporary directory unless the test names one: the default, `./outbox`, would be the
    /// checkout (the tests' working directory).
    pub fn spawn(mut command: Command, database_url: &str) -> Result<Node, String> {
        let named = command
            .get_envs()
            .any(|(key, value)| key == "LATCH_MAIL_OUTBOX" && value.is_some());
        let outbox = (!named).then(|| tempfile::tempdir().unwrap());
        if let Some(dir) = &outbox {
            command.env("LATCH_MAIL_OUTBOX", dir.path());
        }
        let mut child = command
            .args(["serve", "--bind", "127.0.0.1:0", "--database", database_url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        match line.strip_prefix("latch listening on ") {
            Some(rest) => {
                let base = rest.split_whitespace().next().unwrap().to_owned();
                Ok(Node {
                    child,
                    base,
                    _outbox: outbox,
                })
            }
            None => {
                let output = child.wait_with_output().unwrap();
                Err(String::from_utf8_lossy(&output.stderr).into_owned())
            }
        }
    }

    pub fn client(&self) -> TestClient {
        TestClient::new(&self.base)
    }

    /// SIGTERM, then the exit status (within 10 s).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "node did not stop within 10 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Node {
    /// SIGTERM and wait, keeping the value (its stderr may still be read elsewhere).
    pub fn terminate_in_place(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `latch user passwd USER --password-stdin` against `database_url`; asserts success. The
/// notice it mails goes to a temporary directory.
pub fn cli_passwd(database_url: &str, user: &str, password: &str) {
    use std::io::Write;
    let outbox = tempfile::tempdir().unwrap();
    let mut passwd = latch_command()
        .env("LATCH_MAIL_OUTBOX", outbox.path())
        .args([
            "user",
            "passwd",
            user,
            "--password-stdin",
            "--database",
            database_url,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = passwd.stdin.take().unwrap();
    stdin.write_all(format!("{password}\n").as_bytes()).unwrap();
    drop(stdin);
    assert!(passwd.wait().unwrap().success());
}

/// The built binary with fast Argon2 settings and quiet logs. Its mail goes to `./outbox`,
/// the checkout, unless `LATCH_MAIL_OUTBOX` is set: [`Node::spawn`] gives each node a
/// temporary one, and a command that mails must name one.
pub fn latch_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latch"));
    command
        .env("LATCH_ARGON2_MEMORY_KIB", "256")
        .env("LATCH_ARGON2_ITERATIONS", "1")
        .env("LATCH_DB_ACQUIRE_TIMEOUT_SECS", "2")
        .env("LATCH_LOG", "warn");
    command
}

/// A fresh PostgreSQL database, dropped at the end of the test.
struct PgDb(String);

impl PgDb {
    fn new() -> PgDb {
        PgDb(fresh_postgres_database())
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        drop_postgres_database(&self.0);
    }
}

async fn status_of(client: &TestClient, path: &str, cookie: &str) -> StatusCode {
    client.get_with_cookie(path, cookie).await.status()
}

/// Signs the session of `cookie` out through `node` (the CSRF token is the same everywhere).
async fn sign_out_through(node: &Node, cookie: &str) {
    let client = node.client();
    let token: Value = client
        .http
        .get(client.url("/api/auth/csrf"))
        .header("Cookie", format!("latch_session={cookie}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let logout = client
        .http
        .post(client.url("/api/auth/logout"))
        .header("Cookie", format!("latch_session={cookie}"))
        .header("X-CSRF-Token", token["csrf_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
}

/// `session_cache_ms` (docs/configuration.md): a node may keep accepting a cookie signed out
/// on another node for up to that long after it last read the session, never longer, and the
/// node the sign-out went through refuses it at once.
async fn the_session_cache_bound_holds_across_nodes(url: &str) {
    const BOUND: Duration = Duration::from_millis(1500);
    let cached = || {
        let mut command = latch_command();
        command.env("LATCH_SESSION_CACHE_MS", BOUND.as_millis().to_string());
        Node::spawn(command, url).unwrap()
    };
    let (a, b) = (cached(), cached());
    let on_a = a.client();
    let signup = on_a.signup("alice", "alice@example.com", PASSWORD).await;
    assert_eq!(signup.status(), StatusCode::CREATED);
    let cookie = on_a.session_cookie().unwrap();
    let verify = "/api/auth/verify_auth";
    assert_eq!(status_of(&on_a, verify, &cookie).await, StatusCode::OK);
    assert_eq!(
        status_of(&b.client(), verify, &cookie).await,
        StatusCode::OK
    );
    let b_read = Instant::now();

    sign_out_through(&a, &cookie).await;
    assert_eq!(
        status_of(&on_a, verify, &cookie).await,
        StatusCode::UNAUTHORIZED,
        "the node the sign-out went through still accepts the cookie"
    );
    let b_status = status_of(&b.client(), verify, &cookie).await;
    // B answers from memory while its entry is young (what the cache is for); checked only
    // when the machine was quick enough that the entry is surely still young.
    if b_read.elapsed() < BOUND / 2 {
        assert_eq!(
            b_status,
            StatusCode::OK,
            "node B did not answer from its cache"
        );
    }
    loop {
        let status = status_of(&b.client(), verify, &cookie).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            b_read.elapsed() < BOUND + Duration::from_millis(250),
            "node B accepted a signed-out cookie {:?} after reading it (bound {BOUND:?})",
            b_read.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn the_session_cache_bound_holds_across_sqlite_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    the_session_cache_bound_holds_across_nodes(&url).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set LATCH_TEST_DATABASE_URL and run with --ignored"]
async fn the_session_cache_bound_holds_across_postgres_nodes() {
    let db = PgDb::new();
    the_session_cache_bound_holds_across_nodes(&db.0).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set LATCH_TEST_DATABASE_URL and run with --ignored"]
async fn a_session_works_on_every_node_and_sign_out_on_one_holds_on_all() {
    let db = PgDb::new();
    let (a, b, c) = (Node::start(&db.0), Node::start(&db.0), Node::start(&db.0));
    let on_a = a.client();
    assert_eq!(
        on_a.signup("alice", "alice@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
    let cookie = on_a.session_cookie().unwrap();
    for node in [&b, &c] {
        assert_eq!(
            status_of(&node.client(), "/api/auth/verify_auth", &cookie).await,
            StatusCode::OK
        );
    }
    sign_out_through(&b, &cookie).await;
    for node in [&a, &b, &c] {
        assert_eq!(
            status_of(&node.client(), "/api/auth/verify_auth", &cookie).await,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set LATCH_TEST_DATABASE_URL and run with --ignored"]
async fn a_password_change_ends_sessions_on_every_node() {
    let db = PgDb::new();
    let (a, b) = (Node::start(&db.0), Node::start(&db.0));
    let on_a = a.client();
    assert_eq!(
        on_a.signup("alice", "alice@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
    let cookie = on_a.session_cookie().unwrap();
    assert_eq!(
        status_of(&b.client(), "/api/auth/verify_auth", &cookie).await,
        StatusCode::OK
    );
    cli_passwd(&db.0, "alice", "a brand new passphrase");
    for node in [&a, &b] {
        assert_eq!(
            status_of(&node.client(), "/api/auth/verify_auth", &cookie).await,
            StatusCode::UNAUTHORIZED
        );
    }
    let fresh = b.client();
    assert_eq!(
        fresh
            .login("alice", "a brand new passphrase", false)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set LATCH_TEST_DATABASE_URL and run with --ignored"]
async fn failed_sign_ins_are_counted_across_nodes() {
    let db = PgDb::new();
    let (a, b, c) = (Node::start(&db.0), Node::start(&db.0), Node::start(&db.0));
    assert_eq!(
        a.client()
            .signup("alice", "alice@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
    for (node, times) in [(&a, 3), (&b, 2)] {
        let client = node.client();
        for _ in 0..times {
            assert_eq!(
                client
                    .login("alice", "not the password", false)
                    .await
                    .status(),
                StatusCode::UNAUTHORIZED
            );
        }
    }
    let response = c.client().login("alice", PASSWORD, false).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set LATCH_TEST_DATABASE_URL and run with --ignored"]
async fn nodes_started_at_once_on_an_empty_database_all_come_up() {
    let db = PgDb::new();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let url = db.0.clone();
            std::thread::spawn(move || Node::try_start(&url))
        })
        .collect();
    let nodes: Vec<Node> = handles
        .into_iter()
        .map(|h| {
            h.join()
                .unwrap()
                .unwrap_or_else(|e| panic!("a node failed to start: {e}"))
        })
        .collect();
    for node in &nodes {
        assert_eq!(node.client().get("/readyz").await.status(), StatusCode::OK);
    }
    assert_eq!(
        nodes[0]
            .client()
            .signup("alice", "alice@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[test]
fn an_unreachable_database_at_start_is_one_clear_line_and_a_failure_exit() {
    let output = latch_command()
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--database",
            "postgres://latch@127.0.0.1:1/latch",
        ])
        .env("LATCH_DB_ACQUIRE_TIMEOUT_SECS", "1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: database"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    // Real Argon2 cost, so requests are still running when the signal arrives.
    let mut command = latch_command();
    command
        .env("LATCH_ARGON2_MEMORY_KIB", "19456")
        .env("LATCH_ARGON2_ITERATIONS", "3");
    let node = Node::spawn(command, &url).unwrap();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let client = node.client();
        let token = client.csrf().await;
        tasks.push(tokio::spawn(async move {
            client
                .post_json_with_token(
                    "/api/auth/signup",
                    &json!({"username": format!("user{i}"), "email": format!("u{i}@example.com"), "password": PASSWORD}),
                    Some(&token),
                )
                .await
                .status()
        }));
    }
    tokio::time::sleep(Duration::from_millis(40)).await;
    let status = tokio::task::spawn_blocking(move || node.terminate())
        .await
        .unwrap();
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::CREATED);
    }
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn sqlite_killed_mid_burst_keeps_every_answered_sign_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let url = format!("sqlite://{}", path.display());
    let node = Node::start(&url);
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let client = node.client();
        tasks.push(tokio::spawn(async move {
            let mut created = Vec::new();
            for i in 0..1000 {
                let name = format!("w{worker}n{i}");
                let token = match client.http.get(client.url("/api/auth/csrf")).send().await {
                    Ok(r) => r.json::<Value>().await.ok().and_then(|v| v["csrf_token"].as_str().map(str::to_owned)),
                    Err(_) => None,
                };
                let Some(token) = token else { break };
                let response = client
                    .http
                    .post(client.url("/api/auth/signup"))
                    .header("X-CSRF-Token", token)
                    .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD}))
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == StatusCode::CREATED => created.push(name),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            created
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut node = node;
    node.child.kill().unwrap(); // SIGKILL
    node.child.wait().unwrap();
    let mut answered = Vec::new();
    for task in tasks {
        answered.extend(task.await.unwrap());
    }
    assert!(
        !answered.is_empty(),
        "no sign-up was answered before the kill"
    );

    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let names: Vec<(String,)> = sqlx::query_as("SELECT username FROM users")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let stored: std::collections::HashSet<String> = names.into_iter().map(|(n,)| n).collect();
    for name in &answered {
        assert!(
            stored.contains(name),
            "{name} was answered 201 but is missing after the crash"
        );
    }
    drop(conn);
    // And it starts again on the same file.
    let again = Node::start(&url);
    assert_eq!(again.client().get("/readyz").await.status(), StatusCode::OK);
    let _ = PG;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set LATCH_TEST_DATABASE_URL and run with --ignored"]
async fn sslmode_require_talks_tls_to_postgres() {
    let db = PgDb::new();
    let url = format!("{}?sslmode=require", db.0);
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.database_url = url.clone()).await;
    assert_eq!(
        app.signup("alice", "alice@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
    let latch::store::Db::Postgres(pool) = &app.db else {
        panic!("expected PostgreSQL")
    };
    let (ssl,): (bool,) =
        sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(ssl, "the connection is not encrypted");
}

#[tokio::test]
async fn a_cli_password_change_ends_sessions_of_a_running_sqlite_server_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let node = Node::start(&url);
    let client = node.client();
    assert_eq!(
        client
            .signup("alice", "alice@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
    let cookie = client.session_cookie().unwrap();
    assert_eq!(
        status_of(&client, "/api/auth/verify_auth", &cookie).await,
        StatusCode::OK
    );
    cli_passwd(&url, "alice", "a brand new passphrase");
    // The very next request sees it: nothing about sessions is cached in the server.
    assert_eq!(
        status_of(&client, "/api/auth/verify_auth", &cookie).await,
        StatusCode::UNAUTHORIZED
    );
}
