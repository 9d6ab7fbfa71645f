//! latch in a real browser: `tests/browser/browser_test.py` drives headless Chromium (Debian's
//! `chromium`, through PyPI `playwright`, never a downloaded browser) against a fresh latch:
//! the pages with JavaScript off, `/app` with `latch.js` end to end, and passkeys with
//! Chromium's virtual authenticator, failing on any console error or CSP violation. Needs both installed, so plain `cargo test` skips it; `.ci/run`
//! installs them and runs it.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and Playwright: run by .ci/run"]
async fn pages_and_the_app_client_work_in_chromium() {
    // Passkeys need a domain name: the app is reached as http://localhost:<port>, so the
    // port is chosen before it starts.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.bind = ([127, 0, 0, 1], port).into();
        c.public_url = Some(format!("http://localhost:{port}"));
    })
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/browser_test.py");
    let addr = format!("http://localhost:{port}");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .arg(addr)
            .output()
    })
    .await
    .unwrap()
    .expect("python3 runs");
    assert!(
        output.status.success(),
        "the browser checks failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
