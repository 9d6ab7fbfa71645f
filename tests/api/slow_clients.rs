//! Slow and idle connections: header timeout, keep-alive timeout, request timeout and the
//! connection limit (README, "Slow clients"). Real time, short timeouts.

use std::time::{Duration, Instant};

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn spawn(adjust: impl FnOnce(&mut latch::config::Config)) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, adjust).await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Whether the server has closed `stream`: a read sees end of file or an error within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(wait, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(n)) => panic!(
            "unexpected bytes from the server: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(_) => false,
    }
}

/// Sends one request and reads its whole response (the server answers `Content-Length`).
async fn round_trip(stream: &mut TcpStream, path: &str) -> String {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: latch\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "connection closed before the response was complete");
        response.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&response).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .expect("a Content-Length");
            if response.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_header_lines_is_cut_off_while_others_are_served() {
    let app = spawn(|c| c.header_timeout_secs = 1).await;
    let mut slow = connect(&app).await;
    let started = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let mut closed = false;
    for i in 0..20 {
        if i == 1 {
            let response = app.get("/healthz").await;
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "a normal client must be served meanwhile"
            );
        }
        // One header line every 250 ms: always sending, never finishing.
        if slow
            .write_all(format!("X-Slow-{i}: a\r\n").as_bytes())
            .await
            .is_err()
            || closed_within(&mut slow, Duration::from_millis(250)).await
        {
            closed = true;
            break;
        }
    }
    let elapsed = started.elapsed();
    assert!(
        closed,
        "a client trickling header lines kept its connection for {elapsed:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "closed too late: {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_timeout() {
    let app = spawn(|c| c.header_timeout_secs = 1).await;
    let mut silent = connect(&app).await;
    let started = Instant::now();
    assert!(
        closed_within(&mut silent, Duration::from_secs(3)).await,
        "a silent connection stayed open"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed too early: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_close_after_the_keepalive_timeout() {
    let app = spawn(|c| {
        c.header_timeout_secs = 1;
        c.keepalive_timeout_secs = 2;
    })
    .await;
    let mut conn = connect(&app).await;
    assert!(round_trip(&mut conn, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));

    // Idle for longer than the header timeout but within the keep-alive timeout: still open,
    // and a second request on it is served.
    assert!(
        !closed_within(&mut conn, Duration::from_millis(1500)).await,
        "an idle connection was closed by the header timeout instead of the keep-alive timeout"
    );
    assert!(round_trip(&mut conn, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));

    // Then, idle past the keep-alive timeout, it is closed.
    let idle_since = Instant::now();
    assert!(
        closed_within(&mut conn, Duration::from_secs(4)).await,
        "an idle keep-alive connection stayed open"
    );
    let idle = idle_since.elapsed();
    assert!(
        idle >= Duration::from_millis(1800),
        "closed after {idle:?}, before the keep-alive timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_body_gets_503_in_the_error_envelope() {
    let app = spawn(|c| c.request_timeout_secs = 1).await;
    let mut conn = connect(&app).await;
    let started = Instant::now();
    conn.write_all(
        b"POST /api/auth/login HTTP/1.1\r\nHost: latch\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{\"login\": \"",
    )
    .await
    .unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&response).contains("}}") {
        let n = tokio::time::timeout(Duration::from_secs(4), conn.read(&mut buf))
            .await
            .expect("an answer within the request timeout")
            .unwrap();
        assert!(n > 0, "closed without an answer");
        response.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "answered too early: {text}"
    );
    let body: Value = serde_json::from_str(&text[text.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    assert_eq!(body["error"]["code"], "service_unavailable", "{text}");
    assert!(body["error"]["message"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_wait_until_one_closes() {
    let app = spawn(|c| {
        c.max_connections = 2;
        c.header_timeout_secs = 10;
    })
    .await;
    let first = connect(&app).await;
    let second = connect(&app).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let refused = quick.get(app.client.url("/healthz")).send().await;
    assert!(
        refused.is_err(),
        "a third connection was served past max_connections = 2"
    );

    drop(first);
    let response = tokio::time::timeout(Duration::from_secs(5), app.get("/healthz"))
        .await
        .expect("served once a connection closed");
    assert_eq!(response.status(), StatusCode::OK);
    drop(second);
}
