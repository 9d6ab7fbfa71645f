//! Operations endpoints: liveness, readiness, Prometheus metrics and forward-auth.

use crate::db_test;
use crate::helpers::*;
use latch::store::Db;
use reqwest::StatusCode;
use serde_json::Value;

/// Gives `user_id` the space-separated `roles` directly in the database.
pub async fn set_roles(db: &Db, user_id: i64, roles: &str) {
    let sql = "UPDATE users SET roles = $1 WHERE id = $2";
    match db {
        Db::Sqlite(pool) => {
            sqlx::query(sql)
                .bind(roles)
                .bind(user_id)
                .execute(pool)
                .await
                .unwrap();
        }
        Db::Postgres(pool) => {
            sqlx::query(sql)
                .bind(roles)
                .bind(user_id)
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

/// The sample lines of a metric family (`name{...} value` or `name value`).
fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .collect()
}

fn value_of(line: &str) -> f64 {
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

db_test! {
    async fn healthz_says_the_process_is_up(app) {
        let response = app.get("/healthz").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(!response.text().await.unwrap().is_empty());
    }
}

db_test! {
    async fn readyz_says_the_database_answers(app) {
        let response = app.get("/readyz").await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}

db_test! {
    async fn readyz_is_503_json_when_the_database_is_gone(app) {
        app.db.close().await;
        let response = app.get("/readyz").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "service_unavailable");
        assert_eq!(app.get("/healthz").await.status(), StatusCode::OK, "liveness must not depend on the database");
    }
}

db_test! {
    async fn metrics_are_prometheus_text_with_request_counts(app) {
        assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
        let response = app.get("/metrics").await;
        assert_eq!(response.status(), StatusCode::OK);
        let ct = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/plain"), "content type {ct}");
        let text = response.text().await.unwrap();
        let requests = samples(&text, "latch_http_requests_total");
        assert!(!requests.is_empty(), "no latch_http_requests_total in:\n{text}");
        assert!(requests.iter().any(|l| l.contains("status=\"200\"")), "no status label: {requests:?}");
        assert!(text.contains("# TYPE latch_http_requests_total counter"), "no TYPE line");
    }
}

db_test! {
    async fn metrics_count_sign_ins_by_outcome_and_show_the_hash_queue(app) {
        app.create_user("alice").await;
        let client = app.new_client();
        assert_eq!(client.login("alice", "Wrong-Pass-99817", false).await.status(), StatusCode::UNAUTHORIZED);
        let before = app.get("/metrics").await.text().await.unwrap();
        let failed_before = samples(&before, "latch_sign_ins_total")
            .into_iter()
            .find(|l| l.contains("outcome=\"invalid_credentials\""))
            .map(value_of)
            .expect("a failed sign-in is counted");
        let success_before = samples(&before, "latch_sign_ins_total")
            .into_iter()
            .find(|l| l.contains("outcome=\"success\""))
            .map(value_of)
            .unwrap_or(0.0);

        assert_eq!(client.login("alice", "Wrong-Pass-99817", false).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(client.login("alice", PASSWORD, false).await.status(), StatusCode::OK);

        let text = app.get("/metrics").await.text().await.unwrap();
        let sign_ins = samples(&text, "latch_sign_ins_total");
        let failed = sign_ins.iter().find(|l| l.contains("outcome=\"invalid_credentials\"")).map(|l| value_of(l));
        let success = sign_ins.iter().find(|l| l.contains("outcome=\"success\"")).map(|l| value_of(l));
        // Other tests in this process count too, so only a lower bound holds.
        assert!(failed.is_some_and(|v| v >= failed_before + 1.0), "failures not counted: {sign_ins:?}");
        assert!(success.is_some_and(|v| v >= success_before + 1.0), "successes not counted: {sign_ins:?}");
        assert!(!samples(&text, "latch_password_hash_queue_depth").is_empty(), "no latch_password_hash_queue_depth in:\n{text}");
        assert!(!text.contains("alice"), "metrics must not name users");
    }
}

db_test! {
    async fn metrics_do_not_grow_a_label_per_unknown_path(app) {
        let path = "/no-such-page-7f3a9c1e";
        assert_eq!(app.get(path).await.status(), StatusCode::NOT_FOUND);
        let text = app.get("/metrics").await.text().await.unwrap();
        assert!(!text.contains("7f3a9c1e"), "an unknown path became a metric label");
    }
}

db_test! {
    async fn forward_auth_is_401_for_anonymous_requests(app) {
        let response = app.get("/auth/check").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().get("x-latch-user").is_none());
        let (_, code) = error_code(response).await;
        assert_eq!(code, "unauthenticated");
    }
}

db_test! {
    async fn forward_auth_names_the_signed_in_user(app) {
        let user = app.create_user("alice").await;
        let client = app.new_client();
        assert_eq!(client.login("alice", PASSWORD, false).await.status(), StatusCode::OK);
        let response = client.get("/auth/check").await;
        assert_eq!(response.status(), StatusCode::OK);
        let h = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(h("x-latch-user").as_deref(), Some("alice"));
        assert_eq!(h("x-latch-user-id"), Some(user["id"].as_i64().unwrap().to_string()));
        let roles = h("x-latch-roles").expect("an X-Latch-Roles header, even when empty");
        assert!(!roles.contains("admin"), "roles {roles:?}");
        assert!(response.headers()["cache-control"].to_str().unwrap().contains("no-store"));

        assert_eq!(client.logout().await.status(), StatusCode::NO_CONTENT);
        assert_eq!(client.get("/auth/check").await.status(), StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn forward_auth_lists_the_roles(app) {
        let user = app.create_user("alice").await;
        set_roles(&app.db, user["id"].as_i64().unwrap(), "admin").await;
        let client = app.new_client();
        assert_eq!(client.login("alice", PASSWORD, false).await.status(), StatusCode::OK);
        let response = client.get("/auth/check").await;
        assert_eq!(response.status(), StatusCode::OK);
        let roles = response.headers()["x-latch-roles"].to_str().unwrap().to_owned();
        assert!(roles.split(',').any(|r| r.trim() == "admin"), "roles {roles:?}");
    }
}
