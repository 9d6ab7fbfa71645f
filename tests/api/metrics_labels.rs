//! `/metrics`: label values from fixed sets only, and `metrics_bind` (main listener, off, or
//! an address of its own).

use std::sync::Arc;

use crate::helpers::*;
use latch::app::App;
use latch::clock::ManualClock;
use reqwest::{Method, StatusCode};

/// A valid HTTP method token of about 4 KB that appears nowhere else.
fn odd_method() -> String {
    let random = latch::domain::SecretToken::generate()
        .unwrap()
        .expose()
        .to_owned();
    let marker: String = random
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_uppercase();
    format!("ODD{marker}").repeat(4096 / (marker.len() + 3) + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_methods_do_not_become_metric_labels() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut markers = Vec::new();
    for (i, path) in ["/healthz", "/no-such-page", "/api/auth/login"]
        .iter()
        .cycle()
        .take(30)
        .enumerate()
    {
        let method = odd_method();
        markers.push(method[..40].to_owned());
        let response = app
            .http
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                app.client.url(path),
            )
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_client_error(),
            "request {i} to {path} with an odd method: {}",
            response.status()
        );
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    for marker in &markers {
        assert!(
            !text.contains(marker.as_str()),
            "an odd method became a metric label"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("latch_http_requests_total") && l.contains("method=\"other\"")),
        "odd methods are not counted as method=\"other\""
    );
    assert!(text.len() < 1024 * 1024, "/metrics is {} bytes", text.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_bind_off_serves_no_metrics() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.metrics_bind = Some("off".into())).await;
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_bind_address_serves_metrics_there_and_not_on_the_main_listener() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(Backend::Sqlite, dir.path());
    config.metrics_bind = Some("127.0.0.1:0".into());
    let app = App::build_with_clock(config, Arc::new(ManualClock::new()))
        .await
        .unwrap();
    let main = TestClient::new(&format!("http://{}", app.local_addr()));
    let metrics = TestClient::new(&format!(
        "http://{}",
        app.metrics_addr().expect("a metrics listener")
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));

    assert_eq!(main.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(main.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    let response = metrics.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(text.contains("latch_http_requests_total"), "{text}");
    assert_eq!(
        metrics.get("/healthz").await.status(),
        StatusCode::NOT_FOUND,
        "only /metrics on the metrics listener"
    );

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
