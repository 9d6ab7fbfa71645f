//! The `latch` binary: migrations, user administration, configuration and `serve` with a
//! graceful stop on SIGTERM. Each test gets its own directory and SQLite file.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;
use reqwest::StatusCode;

const BIN: &str = env!("CARGO_BIN_EXE_latch");
const NEW_PASSWORD: &str = "a brand new passphrase 42";

struct Cli {
    dir: tempfile::TempDir,
    database: String,
}

impl Cli {
    fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let database = format!("sqlite://{}", dir.path().join("x.db").display());
        Cli { dir, database }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A `latch` command in the test's directory, with no inherited `LATCH_*` variables and a
    /// fast Argon2 setting.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        for (key, _) in std::env::vars() {
            if key.starts_with("LATCH_") || key == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        command
            .args(args)
            .current_dir(self.path())
            .env("LATCH_ARGON2_MEMORY_KIB", "256")
            .env("LATCH_ARGON2_ITERATIONS", "1")
            .env("LATCH_MAIL_OUTBOX", self.path().join("outbox"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs `latch <args> --database <this test's db>` with `stdin` as standard input.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--database", &self.database]);
        self.run_raw(self.command(&all), stdin)
    }

    fn run_raw(&self, mut command: Command, stdin: Option<&str>) -> Output {
        if stdin.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command.spawn().expect("the latch binary starts");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input.as_bytes()).unwrap();
        }
        wait_output(child, Duration::from_secs(60))
    }

    fn add_user(&self, username: &str, extra: &[&str]) -> Output {
        let email = format!("{username}@example.com");
        let mut args = vec!["user", "add", username, email.as_str(), "--password-stdin"];
        args.extend_from_slice(extra);
        self.run(&args, Some(&format!("{PASSWORD}\n")))
    }
}

/// Waits for `child` (killing it after `limit`) and collects its output.
fn wait_output(mut child: Child, limit: Duration) -> Output {
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "latch did not exit within {limit:?}; stderr: {}",
                text(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn stdout(output: &Output) -> String {
    text(&output.stdout)
}

fn stderr(output: &Output) -> String {
    text(&output.stderr)
}

#[track_caller]
fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        stdout(output),
        stderr(output)
    );
}

/// A failure: non-zero exit and exactly one non-empty line on stderr, which is returned.
#[track_caller]
fn assert_one_line_failure(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "expected a failure; stdout: {}",
        stdout(output)
    );
    let err = stderr(output);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got:\n{err}");
    lines[0].to_owned()
}

#[test]
fn migrate_twice_succeeds_both_times() {
    let cli = Cli::new();
    let first = cli.run(&["migrate"], None);
    assert_success(&first);
    assert!(
        cli.path().join("x.db").exists(),
        "migrate did not create the SQLite file"
    );
    let second = cli.run(&["migrate"], None);
    assert_success(&second);
}

#[test]
fn user_add_reads_the_password_from_stdin() {
    let cli = Cli::new();
    let output = cli.add_user("alice", &[]);
    assert_success(&output);
    assert!(
        !stdout(&output).contains(PASSWORD) && !stderr(&output).contains(PASSWORD),
        "the password was echoed"
    );
    let list = cli.run(&["user", "list"], None);
    assert_success(&list);
    let listing = stdout(&list);
    assert!(
        listing.contains("alice") && listing.contains("alice@example.com"),
        "{listing}"
    );
    assert!(!listing.contains("$argon2"), "user list shows hashes");
}

#[test]
fn user_add_twice_fails_with_one_line_saying_taken() {
    let cli = Cli::new();
    assert_success(&cli.add_user("alice", &[]));
    let again = cli.add_user("alice", &[]);
    let line = assert_one_line_failure(&again);
    assert!(line.to_lowercase().contains("taken"), "{line}");

    let other_name_same_email = cli.run(
        &[
            "user",
            "add",
            "alice2",
            "alice@example.com",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    let line = assert_one_line_failure(&other_name_same_email);
    assert!(
        line.contains("email") || line.contains("registered") || line.contains("taken"),
        "{line}"
    );
}

#[test]
fn user_add_with_role_admin_is_listed_as_admin() {
    let cli = Cli::new();
    let output = cli.add_user("root", &["--role", "admin"]);
    assert_success(&output);
    assert_success(&cli.add_user("plain", &[]));
    let listing = stdout(&cli.run(&["user", "list"], None));
    let root_line = listing
        .lines()
        .find(|l| l.contains("root"))
        .expect("root listed");
    assert!(root_line.contains("admin"), "{root_line}");
    let plain_line = listing
        .lines()
        .find(|l| l.contains("plain"))
        .expect("plain listed");
    assert!(!plain_line.contains("admin"), "{plain_line}");
}

#[test]
fn user_add_with_an_unknown_role_fails() {
    let cli = Cli::new();
    let output = cli.add_user("alice", &["--role", "wizard"]);
    let line = assert_one_line_failure(&output);
    assert!(line.contains("wizard") || line.contains("role"), "{line}");
    let listing = stdout(&cli.run(&["user", "list"], None));
    assert!(
        !listing.contains("alice"),
        "the user was created anyway: {listing}"
    );
}

#[test]
fn user_add_with_a_common_password_fails() {
    let cli = Cli::new();
    let output = cli.run(
        &[
            "user",
            "add",
            "alice",
            "alice@example.com",
            "--password-stdin",
        ],
        Some("password123\n"),
    );
    let line = assert_one_line_failure(&output);
    assert!(line.to_lowercase().contains("password"), "{line}");
    assert!(
        !line.contains("password123"),
        "the password was echoed: {line}"
    );
    let listing = stdout(&cli.run(&["user", "list"], None));
    assert!(!listing.contains("alice"));
}

#[test]
fn user_add_with_an_invalid_username_or_email_fails() {
    let cli = Cli::new();
    for (username, email) in [
        ("a", "a@example.com"),
        ("alice", "not-an-email"),
        ("<script>", "s@example.com"),
    ] {
        let output = cli.run(
            &["user", "add", username, email, "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        );
        assert_one_line_failure(&output);
    }
}

#[test]
fn user_add_without_password_stdin_and_no_terminal_fails_clearly() {
    let cli = Cli::new();
    // stdin is /dev/null: not a terminal, so there is nobody to prompt.
    let output = cli.run(&["user", "add", "alice", "alice@example.com"], None);
    let line = assert_one_line_failure(&output);
    assert!(
        line.contains("--password-stdin") || line.to_lowercase().contains("terminal"),
        "{line}"
    );
    // Piped input without the flag is not taken as the password either.
    let output = cli.run(
        &["user", "add", "alice", "alice@example.com"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_one_line_failure(&output);
    let listing = stdout(&cli.run(&["user", "list"], None));
    assert!(!listing.contains("alice"));
}

#[test]
fn a_password_on_the_command_line_is_refused() {
    let cli = Cli::new();
    for args in [
        &[
            "user",
            "add",
            "alice",
            "alice@example.com",
            "--password",
            PASSWORD,
        ][..],
        &[
            "user",
            "add",
            "alice",
            "alice@example.com",
            "--password=correct horse battery staple",
        ][..],
        &["user", "add", "alice", "alice@example.com", PASSWORD][..],
        &["user", "add", "alice", "alice@example.com", "-p", PASSWORD][..],
        &["user", "passwd", "alice", "--password", PASSWORD][..],
    ] {
        let output = cli.run(args, None);
        assert!(!output.status.success(), "{args:?} was accepted");
    }
    let listing = stdout(&cli.run(&["user", "list"], None));
    assert!(
        !listing.contains("alice"),
        "a user was created from argv: {listing}"
    );
}

#[test]
fn user_passwd_for_an_unknown_user_fails() {
    let cli = Cli::new();
    assert_success(&cli.run(&["migrate"], None));
    let output = cli.run(
        &["user", "passwd", "nobody", "--password-stdin"],
        Some(&format!("{NEW_PASSWORD}\n")),
    );
    let line = assert_one_line_failure(&output);
    assert!(line.contains("nobody"), "{line}");
}

#[test]
fn user_passwd_with_a_common_password_fails() {
    let cli = Cli::new();
    assert_success(&cli.add_user("alice", &[]));
    let output = cli.run(
        &["user", "passwd", "alice", "--password-stdin"],
        Some("password123\n"),
    );
    assert_one_line_failure(&output);
}

/// A running `latch serve` child process and its base URL.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(cli: &Cli) -> Server {
        Self::start_with(
            cli,
            &[
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--database",
                &cli.database,
            ],
        )
    }

    fn start_with(cli: &Cli, args: &[&str]) -> Server {
        let mut command = cli.command(args);
        command.stderr(Stdio::null());
        let mut child = command.spawn().expect("latch serve starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let _ = tx.send(line.trim_end().to_owned());
                    }
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(remaining) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("latch serve printed no 'latch listening on' line");
                }
            };
            if let Some(rest) = line.strip_prefix("latch listening on ") {
                let url = rest.split_whitespace().next().unwrap().to_owned();
                assert!(
                    url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
                    "printed {url}"
                );
                return Server { child, url };
            }
        }
    }

    /// Sends SIGTERM and waits up to 10 s; returns the exit code.
    fn terminate(self) -> Option<i32> {
        self.stop_with("-TERM")
    }

    /// Sends `signal` (a `kill` option such as `-INT`) and waits up to 10 s for the exit code.
    fn stop_with(mut self, signal: &str) -> Option<i32> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success(), "kill {signal} failed");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("latch serve did not exit within 10 s of {signal}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_passwd_changes_the_password_used_by_serve_and_serve_stops_on_sigterm() {
    let cli = Cli::new();
    assert_success(&cli.add_user("alice", &[]));
    let output = cli.run(
        &["user", "passwd", "alice", "--password-stdin"],
        Some(&format!("{NEW_PASSWORD}\n")),
    );
    assert_success(&output);

    let server = tokio::task::block_in_place(|| Server::start(&cli));
    let client = TestClient::new(&server.url);
    assert_eq!(client.get("/healthz").await.status(), StatusCode::OK);
    let old = client.login("alice", PASSWORD, false).await;
    assert_eq!(
        old.status(),
        StatusCode::UNAUTHORIZED,
        "the old password still works"
    );
    let new = client.login("alice", NEW_PASSWORD, false).await;
    assert_eq!(
        new.status(),
        StatusCode::OK,
        "the new password does not work"
    );
    assert_eq!(
        client.get("/api/auth/verify_auth").await.status(),
        StatusCode::OK
    );

    let code = tokio::task::block_in_place(|| server.terminate());
    assert_eq!(code, Some(0), "latch serve did not exit 0 on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_passwd_ends_the_sessions_of_the_user() {
    let cli = Cli::new();
    assert_success(&cli.add_user("alice", &[]));
    let server = tokio::task::block_in_place(|| Server::start(&cli));
    let client = TestClient::new(&server.url);
    assert_eq!(
        client.login("alice", PASSWORD, false).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        client.get("/api/auth/verify_auth").await.status(),
        StatusCode::OK
    );

    let output = cli.run(
        &["user", "passwd", "alice", "--password-stdin"],
        Some(&format!("{NEW_PASSWORD}\n")),
    );
    assert_success(&output);
    assert_eq!(
        client.get("/api/auth/verify_auth").await.status(),
        StatusCode::UNAUTHORIZED,
        "old session survived passwd"
    );
    let code = tokio::task::block_in_place(|| server.terminate());
    assert_eq!(code, Some(0));
}

#[test]
fn serve_prints_the_chosen_address_and_how_to_create_an_admin() {
    let cli = Cli::new();
    let mut command = cli.command(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--database",
        &cli.database,
    ]);
    command.stderr(Stdio::null());
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    let mut second = String::new();
    reader.read_line(&mut first).unwrap();
    reader.read_line(&mut second).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first.starts_with("latch listening on http://127.0.0.1:"),
        "{first}"
    );
    assert!(
        !first.contains("127.0.0.1:0 "),
        "port 0 printed instead of the chosen port: {first}"
    );
    assert!(
        second.contains("user add") && second.contains("--role admin"),
        "{second}"
    );
}

#[test]
fn config_check_prints_the_configuration_and_masks_the_database_password() {
    let cli = Cli::new();
    let output = cli.run_raw(
        cli.command(&["config", "check", "--database", "postgres://u:secret@h/db"]),
        None,
    );
    assert_success(&output);
    let out = format!("{}{}", stdout(&output), stderr(&output));
    assert!(!out.contains("secret"), "the password is shown: {out}");
    assert!(out.contains("database_url"), "{out}");
    assert!(
        out.contains("u:****@h") || out.contains("****"),
        "no masked URL: {out}"
    );
    assert!(out.contains("bind"), "{out}");
}

#[test]
fn config_check_says_whether_passkeys_are_on() {
    let cli = Cli::new();
    let output = cli.run_raw(cli.command(&["config", "check"]), None);
    assert_success(&output);
    let out = stdout(&output);
    assert!(
        out.contains("passkeys are off") && out.contains("IP address"),
        "{out}"
    );
    let mut command = cli.command(&["config", "check"]);
    command.env("LATCH_PUBLIC_URL", "http://localhost:8080");
    let output = cli.run_raw(command, None);
    assert_success(&output);
    let out = stdout(&output);
    assert!(
        out.contains("# passkeys: relying party localhost, origin http://localhost:8080"),
        "{out}"
    );
}

#[test]
fn config_check_masks_the_smtp_password_too() {
    let cli = Cli::new();
    let mut command = cli.command(&["config", "check"]);
    command.env(
        "LATCH_SMTP_URL",
        "smtp://mailer:hunter2pw@mail.example.com:587",
    );
    let output = cli.run_raw(command, None);
    assert_success(&output);
    let out = format!("{}{}", stdout(&output), stderr(&output));
    assert!(!out.contains("hunter2pw"), "{out}");
}

#[test]
fn config_check_refuses_an_invalid_bind_naming_the_setting() {
    let cli = Cli::new();
    let mut command = cli.command(&["config", "check"]);
    command.env("LATCH_BIND", "notanaddress");
    let output = cli.run_raw(command, None);
    let line = assert_one_line_failure(&output);
    assert!(line.to_lowercase().contains("bind"), "{line}");
}

#[test]
fn config_check_shows_and_checks_the_connection_settings() {
    let cli = Cli::new();
    let output = cli.run_raw(cli.command(&["config", "check"]), None);
    assert!(output.status.success());
    let out = String::from_utf8_lossy(&output.stdout);
    for line in [
        "header_timeout_secs = 30",
        "keepalive_timeout_secs = 60",
        "request_timeout_secs = 30",
        "max_connections = 1024",
    ] {
        assert!(out.contains(line), "no {line:?} in {out}");
    }
    for (variable, value, setting) in [
        ("LATCH_METRICS_BIND", "somewhere", "metrics_bind"),
        ("LATCH_HEADER_TIMEOUT_SECS", "0", "header_timeout_secs"),
        (
            "LATCH_KEEPALIVE_TIMEOUT_SECS",
            "-5",
            "keepalive_timeout_secs",
        ),
        (
            "LATCH_REQUEST_TIMEOUT_SECS",
            "99999999999",
            "request_timeout_secs",
        ),
        ("LATCH_MAX_CONNECTIONS", "many", "max_connections"),
    ] {
        let mut command = cli.command(&["config", "check"]);
        command.env(variable, value);
        let output = cli.run_raw(command, None);
        let line = assert_one_line_failure(&output);
        assert!(line.contains(setting), "{variable}={value}: {line}");
    }
}

#[test]
fn config_check_refuses_zero_argon2_iterations_naming_the_setting() {
    let cli = Cli::new();
    let mut command = cli.command(&["config", "check"]);
    command.env("LATCH_ARGON2_ITERATIONS", "0");
    let output = cli.run_raw(command, None);
    let line = assert_one_line_failure(&output);
    assert!(
        line.to_lowercase().contains("argon2_iterations"),
        "the message does not name argon2_iterations: {line}"
    );
}

#[test]
fn config_check_refuses_a_bad_flag_value_naming_the_setting() {
    let cli = Cli::new();
    for (flag, value, name) in [
        ("--bind", "nope", "bind"),
        ("--database", "mysql://x/y", "database"),
        ("--public-url", "ftp://x", "public_url"),
    ] {
        let output = cli.run_raw(cli.command(&["config", "check", flag, value]), None);
        let line = assert_one_line_failure(&output);
        assert!(line.to_lowercase().contains(name), "{flag} {value}: {line}");
    }
}

/// `config check`'s `key = value` for `key`.
fn setting(output: &Output, key: &str) -> String {
    let out = stdout(output);
    out.lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{key} = "))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| panic!("no {key} in:\n{out}"))
}

#[test]
fn configuration_precedence_is_flag_then_env_then_file() {
    let cli = Cli::new();
    let toml = "bind = \"127.0.0.1:1111\"\ndatabase_url = \"sqlite://from-file.db\"\npublic_url = \"https://file.example.com\"\n";
    std::fs::write(cli.path().join("latch.toml"), toml).unwrap();

    let file_only = cli.run_raw(cli.command(&["config", "check"]), None);
    assert_success(&file_only);
    assert_eq!(setting(&file_only, "bind"), "127.0.0.1:1111");
    assert_eq!(setting(&file_only, "database_url"), "sqlite://from-file.db");
    assert_eq!(
        setting(&file_only, "public_url"),
        "https://file.example.com"
    );

    let mut command = cli.command(&["config", "check"]);
    command
        .env("LATCH_BIND", "127.0.0.1:2222")
        .env("LATCH_DATABASE_URL", "sqlite://from-env.db");
    let env = cli.run_raw(command, None);
    assert_success(&env);
    assert_eq!(setting(&env, "bind"), "127.0.0.1:2222");
    assert_eq!(setting(&env, "database_url"), "sqlite://from-env.db");
    assert_eq!(
        setting(&env, "public_url"),
        "https://file.example.com",
        "the file's other values still apply"
    );

    let mut command = cli.command(&[
        "config",
        "check",
        "--bind",
        "127.0.0.1:3333",
        "--database",
        "sqlite://from-flag.db",
    ]);
    command
        .env("LATCH_BIND", "127.0.0.1:2222")
        .env("LATCH_DATABASE_URL", "sqlite://from-env.db");
    let flag = cli.run_raw(command, None);
    assert_success(&flag);
    assert_eq!(setting(&flag, "bind"), "127.0.0.1:3333");
    assert_eq!(setting(&flag, "database_url"), "sqlite://from-flag.db");
}

#[test]
fn an_explicit_config_file_that_does_not_exist_is_an_error() {
    let cli = Cli::new();
    let missing: PathBuf = cli.path().join("nope.toml");
    let output = cli.run_raw(
        cli.command(&["config", "check", "--config", missing.to_str().unwrap()]),
        None,
    );
    let line = assert_one_line_failure(&output);
    assert!(line.contains("nope.toml"), "{line}");
}

#[test]
fn an_invalid_value_in_latch_toml_is_refused() {
    let cli = Cli::new();
    std::fs::write(
        cli.path().join("latch.toml"),
        "argon2_parallelism = \"lots\"\n",
    )
    .unwrap();
    let output = cli.run_raw(cli.command(&["config", "check"]), None);
    let line = assert_one_line_failure(&output);
    assert!(line.contains("argon2_parallelism"), "{line}");
}

#[test]
fn config_check_prints_every_number_it_uses() {
    let cli = Cli::new();
    let output = cli.run_raw(cli.command(&["config", "check"]), None);
    assert_success(&output);
    // The test environment sets these two; the others are defaults.
    assert_eq!(setting(&output, "argon2_iterations"), "1");
    assert_eq!(setting(&output, "argon2_memory_kib"), "256");
    assert_eq!(setting(&output, "session_idle_timeout_secs"), "1800");
    let out = stdout(&output);
    let empty: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with('#') && l.trim_end().ends_with('='))
        .collect();
    assert!(
        empty.is_empty(),
        "settings printed without a value: {empty:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_a_database_setting_creates_latch_db_in_the_working_directory() {
    let cli = Cli::new();
    let server = tokio::task::block_in_place(|| {
        Server::start_with(&cli, &["serve", "--bind", "127.0.0.1:0"])
    });
    assert!(
        cli.path().join("latch.db").exists(),
        "no latch.db in the working directory"
    );
    let client = TestClient::new(&server.url);
    assert_eq!(client.get("/readyz").await.status(), StatusCode::OK);
    let signup = client.signup("alice", "alice@example.com", PASSWORD).await;
    assert_eq!(
        signup.status(),
        StatusCode::CREATED,
        "the database was not migrated"
    );
    let code = tokio::task::block_in_place(|| server.terminate());
    assert_eq!(code, Some(0));
}

#[test]
fn serve_on_a_port_in_use_fails_with_one_line() {
    let cli = Cli::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let command = cli.command(&["serve", "--bind", &addr, "--database", &cli.database]);
    let output = cli.run_raw(command, None);
    let line = assert_one_line_failure(&output);
    assert!(line.contains(&addr), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stops_on_sigint_with_exit_code_zero() {
    let cli = Cli::new();
    let server = tokio::task::block_in_place(|| Server::start(&cli));
    let client = TestClient::new(&server.url);
    assert_eq!(client.get("/healthz").await.status(), StatusCode::OK);
    let code = tokio::task::block_in_place(|| server.stop_with("-INT"));
    assert_eq!(code, Some(0), "latch serve did not exit 0 on SIGINT");
}

#[test]
fn access_check_explains_the_rule_and_config_check_names_a_bad_one() {
    let cli = Cli::new();
    let rules = r#"default_policy = "deny"
[[access_rules]]
domain = "*.example.com"
path = "^/admin"
subject = ["role:admin"]
policy = "two_factor"
[[access_rules]]
domain = "app.example.com"
policy = "one_factor"
"#;
    std::fs::write(cli.path().join("latch.toml"), rules).unwrap();
    let out = cli.run(
        &["access", "check", "https://app.example.com/admin/x"],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("access_rules[0]") && text.contains("decision (anonymous): sign in"),
        "{text}"
    );
    let out = cli.run(
        &["access", "check", "https://other.test/", "--method", "POST"],
        None,
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("default_policy = deny") && text.contains("forbidden"),
        "{text}"
    );
    assert!(cli
        .run(
            &["user", "add", "ann", "ann@example.com", "--password-stdin"],
            Some(PASSWORD)
        )
        .status
        .success());
    let out = cli.run(
        &[
            "access",
            "check",
            "https://app.example.com/",
            "--user",
            "ann",
        ],
        None,
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("access_rules[1]") && text.contains("decision (ann): allow"),
        "{text}"
    );

    let bad = "[[access_rules]]\ndomain = \"a.test\"\npolicy = \"bypass\"\n[[access_rules]]\ndomain = \"a.test\"\npath = \"([\"\npolicy = \"deny\"\n";
    std::fs::write(cli.path().join("latch.toml"), bad).unwrap();
    for args in [&["config", "check"][..], &["serve"][..]] {
        let out = cli.run(args, None);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains("access_rules[1]: path: regex parse error"),
            "{err}"
        );
    }
}
