//! Mail over SMTP to a real SMTP server process (Python's aiosmtpd), not a mock.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;
use reqwest::StatusCode;

struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("SMTP sink did not start (is aiosmtpd installed?): {line:?}"))
            .parse()
            .unwrap();
        SmtpSink { child, port, dir }
    }

    /// Waits for the `n`-th received message (SMTP delivery runs in the background).
    fn message(&self, n: usize) -> String {
        let path = self.dir.path().join(format!("{n:04}.eml"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(
                Instant::now() < deadline,
                "no message {n} reached the SMTP server"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::fs::read_to_string(path)
            .unwrap()
            .replace("=\r\n", "")
            .replace("=3D", "=")
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Python aiosmtpd (pip install aiosmtpd); .ci/run installs it and runs this"]
async fn sign_up_and_reset_mails_reach_a_real_smtp_server() {
    {
        let sink = SmtpSink::start();
        let port = sink.port;
        let app = TestApp::spawn_with(Backend::Sqlite, move |c| {
            c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
            c.public_url = Some("https://auth.example.com".into());
        })
        .await;
        let response = app.signup("alice", "alice@example.com", PASSWORD).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let verification = sink.message(0);
        assert!(
            verification.contains("X-Envelope-To: alice@example.com"),
            "{verification}"
        );
        assert!(
            verification.contains("multipart/alternative"),
            "{verification}"
        );
        assert!(
            verification.contains("https://auth.example.com/verify-email?token="),
            "{verification}"
        );
        assert!(
            app.outbox_mails().is_empty(),
            "with SMTP set, nothing goes to the outbox"
        );

        let forgot = app
            .new_client()
            .post_json(
                "/api/auth/password/forgot",
                &serde_json::json!({"email": "alice@example.com"}),
            )
            .await;
        assert_eq!(forgot.status(), StatusCode::ACCEPTED);
        let reset = sink.message(1);
        assert!(
            reset.contains("https://auth.example.com/reset-password?token="),
            "{reset}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_smtp_server_loses_no_sign_up() {
    {
        let app = TestApp::spawn_with(Backend::Sqlite, |c| {
            c.smtp_url = Some("smtp://127.0.0.1:1".into())
        })
        .await;
        let response = app.signup("alice", "alice@example.com", PASSWORD).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(
            app.get("/api/auth/verify_auth").await.status(),
            StatusCode::OK
        );
    }
}
