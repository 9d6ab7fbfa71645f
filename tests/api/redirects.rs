//! C4: the `next` parameter of the sign-in and register forms only ever leads to a safe path
//! on this site; anything else lands on `/dashboard`.

use crate::db_test;
use crate::helpers::*;
use reqwest::{Response, StatusCode};

/// docs/security.md's corpus, verbatim.
const CORPUS: &[&str] = &[
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/%5Cevil.example",
    "/%2F%2Fevil.example",
    "%2F%2Fevil.example",
    "https://evil.example",
    "https:evil.example",
    "javascript:alert(1)",
    "data:text/html,x",
    "/%09/evil.example",
    "/%0d%0aLocation:%20http://evil.example",
    " //evil.example",
    "//evil.example/%2F..",
];

/// Raw control characters and further encodings of the same tricks.
const RAW_VARIANTS: &[&str] = &[
    "/\t/evil.example",
    "/\r/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    "\n//evil.example",
    "/\r\nLocation: http://evil.example",
    "//evil.example\t",
    "/%252F%252Fevil.example",
    "/%25252F%25252Fevil.example",
    "/%5C%5Cevil.example",
    "%5C%5Cevil.example",
    "/./evil",
    "/a/../../evil",
    "/%2e%2e/evil",
    "/javascript:alert(1)",
    "HTTPS://evil.example",
    "evil.example",
    "/\u{3000}/evil.example",
    "/\u{ff0f}evil.example",
    "/%ff",
    "",
];

fn all_hostile() -> impl Iterator<Item = &'static str> {
    CORPUS.iter().chain(RAW_VARIANTS.iter()).copied()
}

fn location(response: &Response) -> String {
    response
        .headers()
        .get("location")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

async fn login_with_next(client: &TestClient, login: &str, next: &str) -> Response {
    let token = client.page_csrf("/login").await;
    client
        .post_form(
            "/login",
            &[
                ("csrf_token", &token),
                ("login", login),
                ("password", PASSWORD),
                ("next", next),
            ],
        )
        .await
}

async fn register_with_next(client: &TestClient, username: &str, next: &str) -> Response {
    let token = client.page_csrf("/register").await;
    let email = format!("{username}@example.com");
    client
        .post_form(
            "/register",
            &[
                ("csrf_token", &token),
                ("username", username),
                ("email", &email),
                ("password", PASSWORD),
                ("next", next),
            ],
        )
        .await
}

/// Runs `check` for each value and reports every value that failed at once.
fn report(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "unsafe next values not neutralised:\n{}",
        failures.join("\n")
    );
}

db_test! {
    async fn sec_c4_login_form_ignores_each_hostile_next_of_the_corpus(app) {
        app.create_user("alice").await;
        let mut failures = Vec::new();
        for value in CORPUS {
            let client = app.new_client();
            let response = login_with_next(&client, "alice", value).await;
            if response.status() != StatusCode::SEE_OTHER || location(&response) != "/dashboard" {
                failures.push(format!("{value:?} -> {} {:?}", response.status(), location(&response)));
            }
        }
        report(failures);
    }
}

db_test! {
    async fn sec_c4_login_form_ignores_raw_control_characters_and_deeper_encodings_in_next(app) {
        app.create_user("alice").await;
        let mut failures = Vec::new();
        for value in RAW_VARIANTS {
            let client = app.new_client();
            let response = login_with_next(&client, "alice", value).await;
            if response.status() != StatusCode::SEE_OTHER || location(&response) != "/dashboard" {
                failures.push(format!("{value:?} -> {} {:?}", response.status(), location(&response)));
            }
        }
        report(failures);
    }
}

db_test! {
    async fn sec_c4_register_form_ignores_each_hostile_next(app) {
        let mut failures = Vec::new();
        for (i, value) in all_hostile().enumerate() {
            let client = app.new_client();
            let response = register_with_next(&client, &format!("user{i}"), value).await;
            if response.status() != StatusCode::SEE_OTHER || location(&response) != "/dashboard" {
                failures.push(format!("{value:?} -> {} {:?}", response.status(), location(&response)));
            }
        }
        report(failures);
    }
}

db_test! {
    async fn sec_c4_login_page_does_not_carry_a_hostile_next_into_its_form(app) {
        let mut failures = Vec::new();
        for value in all_hostile() {
            let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
            let response = app.get(&format!("/login?next={encoded}")).await;
            if response.status() != StatusCode::OK {
                failures.push(format!("{value:?}: GET /login -> {}", response.status()));
                continue;
            }
            let html = response.text().await.unwrap();
            if html.contains("name=\"next\"") || html.contains("evil") {
                failures.push(format!("{value:?}: carried into the page"));
            }
        }
        report(failures);
    }
}

db_test! {
    async fn sec_c4_signed_in_login_page_ignores_a_hostile_next(app) {
        app.create_user("alice").await;
        let client = app.new_client();
        assert_eq!(client.login("alice", PASSWORD, false).await.status(), StatusCode::OK);
        let mut failures = Vec::new();
        for value in all_hostile() {
            let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
            let response = client.get(&format!("/login?next={encoded}")).await;
            if response.status() != StatusCode::SEE_OTHER || location(&response) != "/dashboard" {
                failures.push(format!("{value:?} -> {} {:?}", response.status(), location(&response)));
            }
        }
        report(failures);
        // The literal example of the brief, unencoded in the query.
        let response = client.get("/login?next=//evil.example").await;
        assert_redirect(&response, "/dashboard");
    }
}

db_test! {
    async fn safe_next_is_honoured_by_the_login_form(app) {
        app.create_user("alice").await;
        for value in ["/dashboard?tab=1", "/posts/12/edit", "/account?tab=sessions"] {
            let client = app.new_client();
            let response = login_with_next(&client, "alice", value).await;
            assert_redirect(&response, value);
        }
    }
}

db_test! {
    async fn safe_next_is_honoured_by_the_register_form(app) {
        let response = register_with_next(&app, "alice", "/dashboard?tab=1").await;
        assert_redirect(&response, "/dashboard?tab=1");
    }
}

db_test! {
    async fn safe_next_is_honoured_by_the_signed_in_login_page(app) {
        app.create_user("alice").await;
        let client = app.new_client();
        assert_eq!(client.login("alice", PASSWORD, false).await.status(), StatusCode::OK);
        let response = client.get("/login?next=%2Fdashboard%3Ftab%3D1").await;
        assert_redirect(&response, "/dashboard?tab=1");
    }
}
