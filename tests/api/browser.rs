//! latch in a real browser: `tests/browser/browser_test.py` drives headless Chromium (Debian's
//! `chromium`, through PyPI `playwright`, never a downloaded browser) against a fresh latch:
//! the pages with JavaScript off, and `/app` with `latch.js` end to end, failing on any console
//! error or CSP violation. Needs both installed, so plain `cargo test` skips it; `.ci/run`
//! installs them and runs it.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and Playwright: run by .ci/run"]
async fn pages_and_the_app_client_work_in_chromium() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/browser_test.py");
    let addr = app.addr.clone();
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
