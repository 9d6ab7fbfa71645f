//! P7: Argon2 memory stays bounded under a sign-in flood (at most one buffer per hashing
//! slot), measured as the peak resident set of a real `latch serve` process.

use std::process::Command;

use crate::helpers::*;
use crate::nodes::Node;
use reqwest::StatusCode;
use serde_json::json;

/// Peak resident set (VmHWM) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sec_p7_thirty_two_concurrent_sign_ins_stay_under_100_mib() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    // Default Argon2id parameters (m = 19 MiB): the flood is what is measured.
    let mut command = Command::new(env!("CARGO_BIN_EXE_latch"));
    command
        .env("LATCH_LOG", "warn")
        .env("LATCH_HASH_WORKERS", "2");
    let node = Node::spawn(command, &url).unwrap();
    let base = node.base.clone();
    // One account per right-password sign-in: parallel attempts on one account are limited
    // to the throttle's five evaluations at a time.
    for i in 0..16 {
        let client = TestClient::new(&base);
        let name = format!("flood{i}");
        let signup = client
            .signup(&name, &format!("{name}@example.com"), PASSWORD)
            .await;
        assert_eq!(signup.status(), StatusCode::CREATED);
    }

    let mut tasks = Vec::new();
    for i in 0..32 {
        let c = TestClient::new(&base);
        let token = c.csrf().await;
        // Half right, half unknown names (a full dummy hash each, and no account throttle).
        let login = if i % 2 == 0 {
            format!("flood{}", i / 2)
        } else {
            format!("ghost{i}")
        };
        tasks.push(tokio::spawn(async move {
            c.post_json_with_token(
                "/api/auth/login",
                &json!({"login": login, "password": PASSWORD}),
                Some(&token),
            )
            .await
            .status()
        }));
    }
    for task in tasks {
        let status = task.await.unwrap();
        assert!(
            status == StatusCode::OK || status == StatusCode::UNAUTHORIZED,
            "{status}"
        );
    }
    let peak = peak_rss_kib(node.child.id());
    drop(node);
    // Two slots of 19 MiB plus the process itself; 32 buffers at once would be over 600 MiB.
    assert!(peak < 100 * 1024, "peak RSS {} MiB", peak / 1024);
    eprintln!("peak RSS after 32 concurrent sign-ins: {} MiB", peak / 1024);
}
