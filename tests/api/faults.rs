//! O3: the database goes away while latch serves, then comes back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::*;
use reqwest::StatusCode;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy to PostgreSQL that the test can cut and restore.
struct Proxy {
    port: u16,
    open: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (open2, links2) = (open.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !open2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                links2.lock().unwrap().push(link);
            }
        });
        Proxy { port, open, links }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set LATCH_TEST_DATABASE_URL and run with --ignored"]
async fn sec_o3_database_loss_answers_503_and_service_returns_without_restart() {
    let real = fresh_postgres_database();
    let mut via_proxy = url::Url::parse(&real).unwrap();
    let upstream = format!(
        "{}:{}",
        via_proxy.host_str().unwrap(),
        via_proxy.port().unwrap_or(5432)
    );
    let proxy = Proxy::start(upstream).await;
    via_proxy.set_port(Some(proxy.port)).unwrap();
    let proxied = via_proxy.to_string();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.database_url = proxied.clone();
        c.db_acquire_timeout_secs = 1;
    })
    .await;
    let signup = app.signup("alice", "alice@example.com", PASSWORD).await;
    assert_eq!(signup.status(), StatusCode::CREATED);

    proxy.cut();
    assert_eq!(
        app.get("/readyz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let api = app.get("/api/auth/verify_auth").await;
    assert_eq!(api.status(), StatusCode::SERVICE_UNAVAILABLE);
    let (_, code) = error_code(api).await;
    assert_eq!(code, "service_unavailable");
    let page = app.get("/dashboard").await;
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(
        app.get("/healthz").await.status(),
        StatusCode::OK,
        "the process stays up"
    );

    proxy.restore();
    // Both pools come back (on PostgreSQL the session lookups have connections of their own,
    // and each pool replaces a connection the cut broke when it is next used).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = app.get("/api/auth/verify_auth").await.status();
        let ready = app.get("/readyz").await.status();
        if status == StatusCode::OK && ready == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "service did not come back (last statuses {status}, {ready})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(app);
    drop_postgres_database(&real);
}
