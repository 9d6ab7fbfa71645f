//! Authorization: roles, the admin area and post ownership (docs/security.md Z1–Z4, S2, H3, O1).
//! Every admin and posts route is tried by an anonymous visitor, a user, a post's author and
//! an admin; then IDOR and escalation attempts, the last-admin rule, session revocation on
//! privilege change, paging over a large user set, and the CLI.

use std::process::{Command, Output, Stdio};

use latch::domain::RoleName;
use latch::store::admin::{self, LiveSince, RoleEdit, UserChange};
use latch::store::Db;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::db_test;
use crate::helpers::*;

// ---- helpers ----

const ANY_TIME: LiveSince = LiveSince {
    idle: 0,
    absolute: 0,
    remember: 0,
};

/// A request with this client's CSRF token (and a JSON body when given).
pub async fn call(c: &TestClient, method: Method, path: &str, body: Option<&Value>) -> Response {
    let token = c.csrf().await;
    let mut request = c
        .http
        .request(method, c.url(path))
        .header("X-CSRF-Token", token);
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

/// A form POST with this client's CSRF token.
async fn form(c: &TestClient, path: &str, fields: &[(&str, &str)]) -> Response {
    let token = c.csrf().await;
    let mut all = vec![("csrf_token", token.as_str())];
    all.extend_from_slice(fields);
    c.post_form(path, &all).await
}

/// A new client signed up (and so signed in) as `name`; returns it and the user's id.
pub async fn user_client(app: &TestApp, name: &str) -> (TestClient, i64) {
    let c = app.new_client();
    let response = c
        .signup(name, &format!("{name}@example.com"), PASSWORD)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED, "sign-up of {name}");
    let body: Value = response.json().await.unwrap();
    (c, body["user"]["id"].as_i64().unwrap())
}

/// Grants `role` straight in the store (as `latch user set-role` would).
pub async fn grant(db: &Db, id: i64, role: &str) {
    let change = UserChange {
        roles: Some(RoleEdit::Grant(RoleName::parse(role).unwrap())),
        ..UserChange::default()
    };
    admin::change(db, id, &change, ANY_TIME).await.unwrap();
}

/// A signed-in administrator.
pub async fn admin_client(app: &TestApp, name: &str) -> (TestClient, i64) {
    let (c, id) = user_client(app, name).await;
    grant(&app.db, id, "admin").await;
    // The grant ended the session it was signed up with: sign in again.
    assert_eq!(
        c.login(name, PASSWORD, false).await.status(),
        StatusCode::OK
    );
    (c, id)
}

/// A user inserted straight into the store (no HTTP, no sign-up throttle).
async fn seed_user(db: &Db, name: &str) -> i64 {
    let email = format!("{name}@example.com");
    let user = latch::store::users::insert(
        db,
        &latch::store::users::NewUser {
            username: name,
            username_norm: &name.to_lowercase(),
            email: &email,
            password_hash: "not-a-hash",
            first_name: None,
            last_name: None,
            roles: "",
            created_at: 1_700_000_000,
        },
    )
    .await
    .unwrap();
    user.id
}

async fn create_post(c: &TestClient, title: &str) -> i64 {
    let response = call(
        c,
        Method::POST,
        "/api/posts",
        Some(&json!({ "title": title, "body": "Some words." })),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["post"]["id"].as_i64().unwrap()
}

async fn verify_auth(c: &TestClient) -> (StatusCode, Value) {
    let response = c.get("/api/auth/verify_auth").await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn roles_of(db: &Db, id: i64) -> Vec<String> {
    admin::find(db, id, ANY_TIME)
        .await
        .unwrap()
        .map(|u| u.role_list())
        .unwrap_or_default()
}

async fn audit_events(db: &Db, id: i64) -> Vec<String> {
    latch::store::audit::recent(db, Some(id), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect()
}

fn location(response: &Response) -> String {
    response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

// ---- Z1: the route table ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    User,
    Author,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// 303 to `/login?next=<the path>`.
    Login,
    /// That status (an API error also carries the matching code).
    Status(u16),
}

#[derive(Debug, Clone, Copy)]
enum Body {
    None,
    Form(&'static [(&'static str, &'static str)]),
    Json(&'static str),
}

struct Route {
    method: &'static str,
    /// `{user}` is a fresh target user, `{post}` a fresh post by the author.
    path: &'static str,
    body: Body,
    /// Anonymous, user, author, admin.
    expect: [Expect; 4],
}

const fn s(code: u16) -> Expect {
    Expect::Status(code)
}
use Expect::Login;

#[rustfmt::skip]
const ROUTES: &[Route] = &[
    // Admin pages.
    Route {
        method: "GET",
        path: "/admin/users",
        body: Body::None,
        expect: [Login, s(403), s(403), s(200)],
    },
    Route {
        method: "GET",
        path: "/admin/users?q=tar&page=1",
        body: Body::None,
        expect: [Login, s(403), s(403), s(200)],
    },
    Route {
        method: "GET",
        path: "/admin/users/{user}",
        body: Body::None,
        expect: [Login, s(403), s(403), s(200)],
    },
    Route {
        method: "GET",
        path: "/admin/users/{user}/delete",
        body: Body::None,
        expect: [Login, s(403), s(403), s(200)],
    },
    Route {
        method: "POST",
        path: "/admin/users/{user}/lock",
        body: Body::Form(&[("locked", "true")]),
        expect: [Login, s(403), s(403), s(303)],
    },
    Route {
        method: "POST",
        path: "/admin/users/{user}/roles",
        body: Body::Form(&[("role", "admin"), ("action", "grant")]),
        expect: [Login, s(403), s(403), s(303)],
    },
    Route {
        method: "POST",
        path: "/admin/users/{user}/sessions",
        body: Body::Form(&[]),
        expect: [Login, s(403), s(403), s(303)],
    },
    Route {
        method: "POST",
        path: "/admin/users/{user}/delete",
        body: Body::Form(&[("confirm_username", "{username}")]),
        expect: [Login, s(403), s(403), s(303)],
    },
    // Admin API.
    Route {
        method: "GET",
        path: "/api/admin/users",
        body: Body::None,
        expect: [s(401), s(403), s(403), s(200)],
    },
    Route {
        method: "GET",
        path: "/api/admin/users?q=tar&page=2",
        body: Body::None,
        expect: [s(401), s(403), s(403), s(200)],
    },
    Route {
        method: "GET",
        path: "/api/admin/users/{user}",
        body: Body::None,
        expect: [s(401), s(403), s(403), s(200)],
    },
    Route {
        method: "PATCH",
        path: "/api/admin/users/{user}",
        body: Body::Json(r#"{"locked": true}"#),
        expect: [s(401), s(403), s(403), s(200)],
    },
    Route {
        method: "PATCH",
        path: "/api/admin/users/{user}",
        body: Body::Json(r#"{"roles": ["admin"]}"#),
        expect: [s(401), s(403), s(403), s(200)],
    },
    Route {
        method: "DELETE",
        path: "/api/admin/users/{user}",
        body: Body::None,
        expect: [s(401), s(403), s(403), s(204)],
    },
    Route {
        method: "DELETE",
        path: "/api/admin/users/{user}/sessions",
        body: Body::None,
        expect: [s(401), s(403), s(403), s(200)],
    },
    // Posts pages.
    Route {
        method: "GET",
        path: "/posts",
        body: Body::None,
        expect: [Login, s(200), s(200), s(200)],
    },
    Route {
        method: "GET",
        path: "/posts/new",
        body: Body::None,
        expect: [Login, s(200), s(200), s(200)],
    },
    Route {
        method: "POST",
        path: "/posts/new",
        body: Body::Form(&[("title", "Hello"), ("body", "World")]),
        expect: [Login, s(303), s(303), s(303)],
    },
    Route {
        method: "GET",
        path: "/posts/{post}",
        body: Body::None,
        expect: [Login, s(404), s(200), s(200)],
    },
    Route {
        method: "GET",
        path: "/posts/{post}/edit",
        body: Body::None,
        expect: [Login, s(404), s(200), s(403)],
    },
    Route {
        method: "POST",
        path: "/posts/{post}/edit",
        body: Body::Form(&[("title", "Changed"), ("body", "Changed")]),
        expect: [Login, s(404), s(303), s(403)],
    },
    Route {
        method: "POST",
        path: "/posts/{post}/delete",
        body: Body::Form(&[]),
        expect: [Login, s(404), s(303), s(303)],
    },
    // Posts API.
    Route {
        method: "POST",
        path: "/api/posts",
        body: Body::Json(r#"{"title": "Hello", "body": "World"}"#),
        expect: [s(401), s(201), s(201), s(201)],
    },
    Route {
        method: "GET",
        path: "/api/posts",
        body: Body::None,
        expect: [s(401), s(200), s(200), s(200)],
    },
    Route {
        method: "GET",
        path: "/api/posts/{post}",
        body: Body::None,
        expect: [s(401), s(404), s(200), s(200)],
    },
    Route {
        method: "PATCH",
        path: "/api/posts/{post}",
        body: Body::Json(r#"{"title": "Changed"}"#),
        expect: [s(401), s(404), s(200), s(403)],
    },
    Route {
        method: "DELETE",
        path: "/api/posts/{post}",
        body: Body::None,
        expect: [s(401), s(404), s(204), s(204)],
    },
];

fn api_code(status: u16) -> &'static str {
    match status {
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not_found",
        _ => "",
    }
}

db_test! {
    async fn sec_z1_every_admin_and_posts_route_checks_the_callers_role(app) {
        let anonymous = app.new_client();
        let (user, _) = user_client(&app, "plainuser").await;
        let (author, author_id) = user_client(&app, "author").await;
        let (admin, _) = admin_client(&app, "boss").await;
        let mut failures = Vec::new();
        let mut n = 0;
        for route in ROUTES {
            for (who, client) in [
                (Who::Anonymous, &anonymous),
                (Who::User, &user),
                (Who::Author, &author),
                (Who::Admin, &admin),
            ] {
                n += 1;
                // Fresh targets for every case, so one case's change cannot mask another's.
                let target_name = format!("target{n}");
                let target = seed_user(&app.db, &target_name).await;
                let post = create_post(&author, "Original").await;
                let path = route
                    .path
                    .replace("{user}", &target.to_string())
                    .replace("{post}", &post.to_string());
                let method = Method::from_bytes(route.method.as_bytes()).unwrap();
                let response = match route.body {
                    Body::None if method == Method::GET => client.get(&path).await,
                    Body::None => call(client, method, &path, None).await,
                    Body::Json(text) => {
                        let body: Value = serde_json::from_str(text).unwrap();
                        call(client, method, &path, Some(&body)).await
                    }
                    Body::Form(fields) => {
                        let fields: Vec<(&str, String)> = fields
                            .iter()
                            .map(|(k, v)| (*k, v.replace("{username}", &target_name)))
                            .collect();
                        let fields: Vec<(&str, &str)> =
                            fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                        form(client, &path, &fields).await
                    }
                };
                let expected = route.expect[who as usize];
                let status = response.status();
                let is_api = path.starts_with("/api/");
                let ok = match expected {
                    Login => {
                        let encoded: String =
                            form_urlencoded::byte_serialize(path.as_bytes()).collect();
                        status == StatusCode::SEE_OTHER
                            && location(&response) == format!("/login?next={encoded}")
                    }
                    Expect::Status(code) if status.as_u16() != code => false,
                    Expect::Status(code) if code >= 400 && is_api => {
                        let body: Value = response.json().await.unwrap_or(Value::Null);
                        body["error"]["code"] == api_code(code)
                    }
                    Expect::Status(code) if code >= 400 => response
                        .headers()
                        .get("content-type")
                        .is_some_and(|v| v.to_str().unwrap().starts_with("text/html")),
                    Expect::Status(_) => true,
                };
                if !ok {
                    failures.push(format!(
                        "{} {} as {who:?}: expected {expected:?}, got {status}",
                        route.method, route.path
                    ));
                }
                // A refusal changes nothing.
                if !matches!(expected, Expect::Status(200..=399)) {
                    let still = admin::find(&app.db, target, ANY_TIME).await.unwrap();
                    let still = still.expect("a refused request deleted the target user");
                    assert!(!still.locked && still.roles.is_empty(), "{} {} as {who:?} changed the user", route.method, route.path);
                    let stored = latch::store::posts::find(&app.db, post).await.unwrap();
                    let stored = stored.expect("a refused request deleted the post");
                    assert_eq!(stored.title, "Original", "{} {} as {who:?}", route.method, route.path);
                    assert_eq!(stored.author_id, author_id);
                }
            }
        }
        assert!(failures.is_empty(), "{} of {n} cases failed:\n{}", failures.len(), failures.join("\n"));
    }
}

db_test! {
    async fn admin_pages_are_forbidden_pages_for_users_not_redirects(app) {
        let (user, _) = user_client(&app, "curious").await;
        let response = user.get("/admin/users").await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let html = response.text().await.unwrap();
        assert!(html.contains("403"), "{html}");
        // Admins see the link in the navigation; users do not.
        let dashboard = user.get("/dashboard").await.text().await.unwrap();
        assert!(!dashboard.contains("href=\"/admin/users\""));
        let (admin, _) = admin_client(&app, "boss").await;
        let dashboard = admin.get("/dashboard").await.text().await.unwrap();
        assert!(dashboard.contains("href=\"/admin/users\""));
    }
}

// ---- Z2: IDOR on posts ----

db_test! {
    async fn sec_z2_another_users_post_is_indistinguishable_from_a_missing_one(app) {
        let (alice, _) = user_client(&app, "alice").await;
        let (mallory, mallory_id) = user_client(&app, "mallory").await;
        let post = create_post(&alice, "Alice's secret").await;
        let missing = post + 1000;

        for method in [Method::GET, Method::PATCH, Method::DELETE] {
            let body = json!({ "title": "pwned", "body": "pwned" });
            let theirs = call(&mallory, method.clone(), &format!("/api/posts/{post}"), Some(&body)).await;
            let nothing = call(&mallory, method.clone(), &format!("/api/posts/{missing}"), Some(&body)).await;
            assert_eq!(theirs.status(), StatusCode::NOT_FOUND, "{method}");
            assert_eq!(nothing.status(), StatusCode::NOT_FOUND, "{method}");
            assert_eq!(theirs.text().await.unwrap(), nothing.text().await.unwrap(), "{method}");
        }
        for path in [format!("/posts/{post}"), format!("/posts/{post}/edit")] {
            let theirs = mallory.get(&path).await;
            assert_eq!(theirs.status(), StatusCode::NOT_FOUND, "{path}");
            let html = theirs.text().await.unwrap();
            assert!(!html.contains("Alice's secret") && !html.contains("Alice&#x27;s secret"));
        }
        let edit = form(&mallory, &format!("/posts/{post}/edit"), &[("title", "pwned"), ("body", "pwned")]).await;
        assert_eq!(edit.status(), StatusCode::NOT_FOUND);
        let delete = form(&mallory, &format!("/posts/{post}/delete"), &[]).await;
        assert_eq!(delete.status(), StatusCode::NOT_FOUND);

        // Walking the ids finds only Mallory's own posts.
        let own = create_post(&mallory, "Mine").await;
        for id in 1..=own + 5 {
            let status = mallory.get(&format!("/api/posts/{id}")).await.status();
            if id == own {
                assert_eq!(status, StatusCode::OK);
            } else {
                assert_eq!(status, StatusCode::NOT_FOUND, "post {id}");
            }
        }
        // Ids that are not numbers are just as missing.
        for path in ["/api/posts/abc", "/api/posts/-1", "/api/posts/0", "/posts/abc"] {
            assert_eq!(mallory.get(path).await.status(), StatusCode::NOT_FOUND, "{path}");
        }
        // The list is the caller's only.
        let list: Value = mallory.get("/api/posts").await.json().await.unwrap();
        let ids: Vec<i64> = list["posts"].as_array().unwrap().iter().map(|p| p["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, vec![own]);
        assert!(list["posts"].as_array().unwrap().iter().all(|p| p["author_id"] == mallory_id));

        let stored = latch::store::posts::find(&app.db, post).await.unwrap().unwrap();
        assert_eq!(stored.title, "Alice's secret");
    }
}

db_test! {
    async fn admins_may_read_and_delete_any_post_but_edit_only_their_own(app) {
        let (alice, _) = user_client(&app, "alice").await;
        let (boss, _) = admin_client(&app, "boss").await;
        let post = create_post(&alice, "By Alice").await;
        let page = boss.get(&format!("/posts/{post}")).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains("By alice") || html.contains("By Alice"), "the author is named");
        assert!(!html.contains(&format!("/posts/{post}/edit")), "no edit link for an admin");
        assert!(html.contains(&format!("/posts/{post}/delete")), "a delete form for an admin");

        let patch = call(&boss, Method::PATCH, &format!("/api/posts/{post}"), Some(&json!({ "title": "Admin words" }))).await;
        assert_eq!(error_code(patch).await, (StatusCode::FORBIDDEN, "forbidden".into()));
        let delete = call(&boss, Method::DELETE, &format!("/api/posts/{post}"), None).await;
        assert_eq!(delete.status(), StatusCode::NO_CONTENT);
        assert_eq!(alice.get(&format!("/api/posts/{post}")).await.status(), StatusCode::NOT_FOUND);
    }
}

// ---- Z3: mass assignment ----

db_test! {
    async fn sec_z3_role_and_id_fields_in_bodies_are_ignored(app) {
        let (other, other_id) = user_client(&app, "other").await;
        let sneaky = app.new_client();
        let response = sneaky
            .post_json(
                "/api/auth/signup",
                &json!({
                    "username": "sneaky", "email": "sneaky@example.com", "password": PASSWORD,
                    "roles": ["admin"], "role": "admin", "id": 1, "email_verified": true,
                    "locked": false, "is_admin": true
                }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let user: Value = response.json().await.unwrap();
        assert_eq!(user["user"]["roles"], json!([]));
        assert_eq!(user["user"]["email_verified"], false);
        assert_ne!(user["user"]["id"], 1);
        let sneaky_id = user["user"]["id"].as_i64().unwrap();
        assert!(roles_of(&app.db, sneaky_id).await.is_empty());
        assert_eq!(sneaky.get("/api/admin/users").await.status(), StatusCode::FORBIDDEN);

        // Posts: the author is the caller, the id is the database's.
        let response = call(
            &sneaky,
            Method::POST,
            "/api/posts",
            Some(&json!({ "title": "t", "body": "b", "author_id": other_id, "id": 424242,
                          "created_at": "1999-01-01T00:00:00Z" })),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let post: Value = response.json().await.unwrap();
        assert_eq!(post["post"]["author_id"], sneaky_id);
        assert_ne!(post["post"]["id"], 424242);
        assert!(!post["post"]["created_at"].as_str().unwrap().starts_with("1999"));
        let id = post["post"]["id"].as_i64().unwrap();
        let response = call(&sneaky, Method::PATCH, &format!("/api/posts/{id}"),
            Some(&json!({ "title": "t2", "author_id": other_id, "id": 1 }))).await;
        assert_eq!(response.status(), StatusCode::OK);
        let post: Value = response.json().await.unwrap();
        assert_eq!(post["post"]["author_id"], sneaky_id);
        assert_eq!(post["post"]["id"], id);
        assert_eq!(post["post"]["title"], "t2");
        // The same through the form.
        let response = form(&sneaky, "/posts/new", &[("title", "f"), ("body", "b"), ("author_id", &other_id.to_string())]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let list: Value = other.get("/api/posts").await.json().await.unwrap();
        assert_eq!(list["posts"], json!([]), "nothing was written under another name");
    }
}

db_test! {
    async fn vertical_escalation_through_the_admin_api_is_forbidden(app) {
        let (eve, eve_id) = user_client(&app, "eve").await;
        let path = format!("/api/admin/users/{eve_id}");
        for body in [json!({ "roles": ["admin"] }), json!({ "role": "admin" }), json!({ "locked": false })] {
            let response = call(&eve, Method::PATCH, &path, Some(&body)).await;
            assert_eq!(error_code(response).await, (StatusCode::FORBIDDEN, "forbidden".into()), "{body}");
        }
        let response = form(&eve, &format!("/admin/users/{eve_id}/roles"), &[("role", "admin"), ("action", "grant")]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(roles_of(&app.db, eve_id).await.is_empty());
        let (status, body) = verify_auth(&eve).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["user"]["roles"], json!([]));
    }
}

// ---- Z4: the last admin ----

db_test! {
    async fn sec_z4_the_last_admin_cannot_be_removed_locked_or_deleted(app) {
        let (root, root_id) = admin_client(&app, "root").await;
        let path = format!("/api/admin/users/{root_id}");
        for body in [json!({ "roles": [] }), json!({ "roles": ["user"] })] {
            let response = call(&root, Method::PATCH, &path, Some(&body)).await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            let error: Value = response.json().await.unwrap();
            assert!(error["error"]["fields"]["roles"][0].as_str().unwrap().contains("administrator"));
        }
        let response = call(&root, Method::PATCH, &path, Some(&json!({ "locked": true }))).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let response = call(&root, Method::DELETE, &path, None).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let response = form(&root, &format!("/admin/users/{root_id}/roles"), &[("role", "admin"), ("action", "revoke")]).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(response.text().await.unwrap().contains("administrator must remain"));
        assert_eq!(roles_of(&app.db, root_id).await, vec!["admin"]);
        assert_eq!(verify_auth(&root).await.0, StatusCode::OK, "a refused change ends no session");

        // With a second admin, root may step down; then the other one is the last.
        let (second, second_id) = admin_client(&app, "second").await;
        let response = call(&root, Method::PATCH, &path, Some(&json!({ "roles": [] }))).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["user"]["roles"], json!([]));
        let response = call(&second, Method::PATCH, &format!("/api/admin/users/{second_id}"), Some(&json!({ "roles": [] }))).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

        // A locked admin does not count.
        let (third, third_id) = admin_client(&app, "third").await;
        let response = call(&second, Method::PATCH, &format!("/api/admin/users/{third_id}"), Some(&json!({ "locked": true }))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(verify_auth(&third).await.0, StatusCode::UNAUTHORIZED);
        let response = call(&second, Method::PATCH, &format!("/api/admin/users/{second_id}"), Some(&json!({ "role": "admin", "roles": null }))).await;
        assert_eq!(response.status(), StatusCode::OK, "granting a held role is fine");
        let response = call(&second, Method::PATCH, &format!("/api/admin/users/{second_id}"), Some(&json!({ "roles": [] }))).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}

db_test! {
    async fn simultaneous_demotions_leave_one_admin(app) {
        let (a, a_id) = admin_client(&app, "adminone").await;
        let (b, b_id) = admin_client(&app, "admintwo").await;
        let body = json!({ "roles": [] });
        let (path_a, path_b) = (format!("/api/admin/users/{b_id}"), format!("/api/admin/users/{a_id}"));
        let (ra, rb) = tokio::join!(
            call(&a, Method::PATCH, &path_a, Some(&body)),
            call(&b, Method::PATCH, &path_b, Some(&body)),
        );
        let statuses = [ra.status(), rb.status()];
        let remaining = [roles_of(&app.db, a_id).await, roles_of(&app.db, b_id).await]
            .iter()
            .filter(|r| r.contains(&"admin".to_string()))
            .count();
        assert!(remaining >= 1, "no admin left ({statuses:?})");
    }
}

// ---- S2: privilege changes end sessions ----

db_test! {
    async fn sec_s2_role_changes_and_locks_end_the_users_sessions(app) {
        let (boss, _) = admin_client(&app, "boss").await;
        let (bob, bob_id) = user_client(&app, "bob").await;
        let second = app.new_client();
        assert_eq!(second.login("bob", PASSWORD, true).await.status(), StatusCode::OK);
        let user: Value = boss.get(&format!("/api/admin/users/{bob_id}")).await.json().await.unwrap();
        assert_eq!(user["user"]["active_sessions"], 2);
        assert_eq!(user["user"]["locked"], false);
        assert!(user["user"].get("password_hash").is_none());

        let path = format!("/api/admin/users/{bob_id}");
        let response = call(&boss, Method::PATCH, &path, Some(&json!({ "role": "admin" }))).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["user"]["roles"], json!(["admin"]));
        assert_eq!(body["user"]["active_sessions"], 0);
        assert_eq!(verify_auth(&bob).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(verify_auth(&second).await.0, StatusCode::UNAUTHORIZED);
        // Signing in again brings the new role.
        assert_eq!(bob.login("bob", PASSWORD, false).await.status(), StatusCode::OK);
        assert_eq!(verify_auth(&bob).await.1["user"]["roles"], json!(["admin"]));
        assert_eq!(bob.get("/admin/users").await.status(), StatusCode::OK);

        let response = call(&boss, Method::PATCH, &path, Some(&json!({ "roles": [] }))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(verify_auth(&bob).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(bob.login("bob", PASSWORD, false).await.status(), StatusCode::OK);
        assert_eq!(bob.get("/admin/users").await.status(), StatusCode::FORBIDDEN);

        // A change that changes nothing ends nothing.
        let response = call(&boss, Method::PATCH, &path, Some(&json!({ "roles": [] }))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(verify_auth(&bob).await.0, StatusCode::OK);

        // Lock: sessions end and sign-in is refused; unlock lets the user in again.
        let response = call(&boss, Method::PATCH, &path, Some(&json!({ "locked": true }))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.json::<Value>().await.unwrap()["user"]["locked"], true);
        assert_eq!(verify_auth(&bob).await.0, StatusCode::UNAUTHORIZED);
        let login = bob.login("bob", PASSWORD, false).await;
        assert_eq!(error_code(login).await, (StatusCode::FORBIDDEN, "account_locked".into()));
        let response = call(&boss, Method::PATCH, &path, Some(&json!({ "locked": false }))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(bob.login("bob", PASSWORD, false).await.status(), StatusCode::OK);

        // Revoking all sessions.
        let response = call(&boss, Method::DELETE, &format!("/api/admin/users/{bob_id}/sessions"), None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.json::<Value>().await.unwrap()["revoked"], 1);
        assert_eq!(verify_auth(&bob).await.0, StatusCode::UNAUTHORIZED);

        // O1: each change is in the audit log.
        let events = audit_events(&app.db, bob_id).await;
        for wanted in ["role_grant", "role_revoke", "lock", "unlock", "session_revoke"] {
            assert!(events.iter().any(|e| e == wanted), "{wanted} missing from {events:?}");
        }
        let response = call(&boss, Method::DELETE, &format!("/api/admin/users/{bob_id}"), None).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(audit_events(&app.db, bob_id).await.iter().any(|e| e == "user_delete"));
        assert_eq!(boss.get(&format!("/api/admin/users/{bob_id}")).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(error_code(bob.login("bob", PASSWORD, false).await).await.1, "invalid_credentials");
    }
}

db_test! {
    async fn sec_s2_an_admin_changing_their_own_roles_gets_a_new_session_id(app) {
        let (root, root_id) = admin_client(&app, "root").await;
        let (_other, _) = admin_client(&app, "other").await;
        admin_role_add(&app, "editor").await;
        let old_cookie = root.session_cookie().unwrap();
        let response = call(&root, Method::PATCH, &format!("/api/admin/users/{root_id}"), Some(&json!({ "role": "editor" }))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get("x-csrf-token").is_some());
        let new_cookie = root.session_cookie().unwrap();
        assert_ne!(old_cookie, new_cookie, "the session id did not change");
        assert_eq!(root.get_with_cookie("/api/auth/verify_auth", &old_cookie).await.status(), StatusCode::UNAUTHORIZED);
        let (status, me) = verify_auth(&root).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(me["user"]["roles"], json!(["admin", "editor"]));

        // Stepping down through the page goes to the dashboard, signed in, not an admin.
        let response = form(&root, &format!("/admin/users/{root_id}/roles"), &[("role", "admin"), ("action", "revoke")]).await;
        assert_redirect(&response, "/dashboard");
        let (status, me) = verify_auth(&root).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(me["user"]["roles"], json!(["editor"]));
        assert_eq!(root.get("/admin/users").await.status(), StatusCode::FORBIDDEN);
    }
}

/// Creates a role straight in the store.
pub async fn admin_role_add(app: &TestApp, name: &str) {
    admin::add_role(&app.db, &RoleName::parse(name).unwrap(), 0)
        .await
        .unwrap();
}

// ---- validation ----

db_test! {
    async fn admin_patch_refuses_bad_values_with_field_errors(app) {
        let (boss, _) = admin_client(&app, "boss").await;
        let target = seed_user(&app.db, "target").await;
        let path = format!("/api/admin/users/{target}");
        let cases = [
            (json!({ "role": "wizard" }), "role"),
            (json!({ "roles": ["admin", "wizard"] }), "roles"),
            (json!({ "roles": ["not a role"] }), "roles"),
            (json!({ "roles": ["admin"], "role": "admin" }), "role"),
            (json!({ "locked": "perhaps" }), "locked"),
            (json!({ "roles": "admin" }), ""),
            (json!({}), "roles"),
            (json!({ "email": "x@example.com" }), "roles"),
        ];
        for (body, field) in cases {
            let response = call(&boss, Method::PATCH, &path, Some(&body)).await;
            if field.is_empty() {
                // A form-style string of names is accepted.
                assert_eq!(response.status(), StatusCode::OK, "{body}");
                continue;
            }
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["error"]["code"], "validation_failed");
            assert!(error["error"]["fields"][field].is_array(), "{body}: {error}");
        }
        assert_eq!(roles_of(&app.db, target).await, vec!["admin"]);
        for bad in ["/api/admin/users/999999", "/api/admin/users/abc"] {
            let response = call(&boss, Method::PATCH, bad, Some(&json!({ "locked": true }))).await;
            assert_eq!(error_code(response).await, (StatusCode::NOT_FOUND, "not_found".into()), "{bad}");
        }
        let response = call(&boss, Method::DELETE, "/api/admin/users/999999", None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        for bad in ["page=0", "page=-3", "page=two", "q=%00"] {
            let response = boss.get(&format!("/api/admin/users?{bad}")).await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
        // Without the CSRF token the change is refused.
        let response = boss.http.patch(boss.url(&path)).json(&json!({ "locked": true })).send().await.unwrap();
        assert_eq!(error_code(response).await, (StatusCode::FORBIDDEN, "csrf_failed".into()));
        let response = form_without_token(&boss, &format!("/admin/users/{target}/lock"), &[("locked", "true")]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(!admin::find(&app.db, target, ANY_TIME).await.unwrap().unwrap().locked);
    }
}

async fn form_without_token(c: &TestClient, path: &str, fields: &[(&str, &str)]) -> Response {
    c.post_form(path, fields).await
}

db_test! {
    async fn posts_validate_lengths_and_report_every_field(app) {
        let (alice, _) = user_client(&app, "alice").await;
        let long_title = "t".repeat(201);
        let long_body = "b".repeat(20_001);
        let response = call(&alice, Method::POST, "/api/posts", Some(&json!({ "title": long_title, "body": long_body }))).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]["fields"]["title"].is_array() && error["error"]["fields"]["body"].is_array());
        let response = call(&alice, Method::POST, "/api/posts", Some(&json!({ "title": "  ", "body": "" }))).await;
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]["fields"]["title"].is_array() && error["error"]["fields"]["body"].is_array());
        let response = call(&alice, Method::POST, "/api/posts", Some(&json!({ "title": 5, "body": "x" }))).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        // The limits themselves are fine.
        let response = call(&alice, Method::POST, "/api/posts", Some(&json!({ "title": "é".repeat(200), "body": "ü".repeat(20_000) }))).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let id = response.json::<Value>().await.unwrap()["post"]["id"].as_i64().unwrap();
        let response = call(&alice, Method::PATCH, &format!("/api/posts/{id}"), Some(&json!({}))).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let response = call(&alice, Method::PATCH, &format!("/api/posts/{id}"), Some(&json!({ "body": long_body }))).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

        // The form is shown again with the messages and what was typed.
        let response = form(&alice, "/posts/new", &[("title", "Kept title"), ("body", "")]).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = response.text().await.unwrap();
        assert!(html.contains("id=\"body-error\"") && html.contains("Kept title"));
        assert!(!html.contains("id=\"title-error\""));
    }
}

db_test! {
    async fn sec_h3_post_titles_and_bodies_are_escaped(app) {
        let (alice, _) = user_client(&app, "alice").await;
        let script = "<script>alert(1)</script>";
        let response = form(&alice, "/posts/new", &[("title", script), ("body", "<img src=x onerror=alert(1)>{{7*7}}")]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let show = location(&response);
        assert!(show.starts_with("/posts/"), "{show}");
        for path in [show.as_str(), "/posts", &format!("{}/edit", show.split('?').next().unwrap())] {
            let html = alice.get(path).await.text().await.unwrap();
            assert!(!html.contains(script) && !html.contains("<img src=x"), "{path}");
            assert!(html.contains("&lt;script&gt;"), "{path}");
        }
        let html = alice.get(&show).await.text().await.unwrap();
        assert!(html.contains("{{7*7}}"), "template syntax in a post is text");
        assert!(html.contains("The post was published."));
        // The JSON keeps the text as written.
        let list: Value = alice.get("/api/posts").await.json().await.unwrap();
        assert_eq!(list["posts"][0]["title"], script);
    }
}

db_test! {
    async fn a_post_lives_through_the_pages(app) {
        let (alice, alice_id) = user_client(&app, "alice").await;
        assert!(alice.get("/posts").await.text().await.unwrap().contains("not written anything"));
        let response = form(&alice, "/posts/new", &[("title", "First"), ("body", "Hello\r\nthere")]).await;
        let show = location(&response);
        let id: i64 = show.trim_start_matches("/posts/").split('?').next().unwrap().parse().unwrap();
        let edit = alice.get(&format!("/posts/{id}/edit")).await.text().await.unwrap();
        assert!(edit.contains("value=\"First\"") && edit.contains("Hello\nthere"));
        let response = form(&alice, &format!("/posts/{id}/edit"), &[("title", "Second"), ("body", "Changed")]).await;
        assert_redirect(&response, &format!("/posts/{id}?done=updated"));
        let post: Value = alice.get(&format!("/api/posts/{id}")).await.json().await.unwrap();
        assert_eq!(post["post"]["title"], "Second");
        assert_eq!(post["post"]["author_id"], alice_id);
        for key in ["id", "title", "body", "author_id", "created_at", "updated_at"] {
            assert!(post["post"].get(key).is_some(), "{key}");
        }
        let response = form(&alice, &format!("/posts/{id}/delete"), &[]).await;
        assert_redirect(&response, "/posts?done=deleted");
        assert_eq!(alice.get(&format!("/posts/{id}")).await.status(), StatusCode::NOT_FOUND);
        // Deleting the author deletes the posts.
        let kept = create_post(&alice, "Kept").await;
        let change = UserChange { delete: true, ..UserChange::default() };
        admin::change(&app.db, alice_id, &change, ANY_TIME).await.unwrap();
        assert!(latch::store::posts::find(&app.db, kept).await.unwrap().is_none());
    }
}

// ---- the admin pages ----

db_test! {
    async fn the_admin_pages_search_lock_and_delete_with_confirmation(app) {
        let (boss, boss_id) = admin_client(&app, "boss").await;
        let (carol, carol_id) = user_client(&app, "carol").await;
        let list = boss.get("/admin/users?q=CAR").await.text().await.unwrap();
        assert!(list.contains(&format!("href=\"/admin/users/{carol_id}\"")));
        assert!(!list.contains(&format!("href=\"/admin/users/{boss_id}\"")), "boss does not match");
        assert!(list.contains("1 user starting with"));
        let page = boss.get(&format!("/admin/users/{carol_id}")).await.text().await.unwrap();
        for fact in ["carol@example.com", "Active sessions", "Last sign-in", "not verified", "Grant admin"] {
            assert!(page.contains(fact), "{fact} missing");
        }

        let response = form(&boss, &format!("/admin/users/{carol_id}/lock"), &[("locked", "true")]).await;
        assert_redirect(&response, &format!("/admin/users/{carol_id}?done=locked"));
        let page = boss.get(&location(&response)).await.text().await.unwrap();
        assert!(page.contains("The account is locked"));
        assert!(page.contains("Unlock"));
        assert_eq!(verify_auth(&carol).await.0, StatusCode::UNAUTHORIZED);
        let response = form(&boss, &format!("/admin/users/{carol_id}/lock"), &[("locked", "false")]).await;
        assert_redirect(&response, &format!("/admin/users/{carol_id}?done=unlocked"));

        // Deleting asks for the username first.
        let confirm = boss.get(&format!("/admin/users/{carol_id}/delete")).await.text().await.unwrap();
        assert!(confirm.contains("confirm_username") && confirm.contains("cannot be undone"));
        let response = form(&boss, &format!("/admin/users/{carol_id}/delete"), &[("confirm_username", "carl")]).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(admin::find(&app.db, carol_id, ANY_TIME).await.unwrap().is_some());
        let response = form(&boss, &format!("/admin/users/{carol_id}/delete"), &[("confirm_username", "Carol")]).await;
        assert_redirect(&response, "/admin/users?done=user_deleted");
        assert!(admin::find(&app.db, carol_id, ANY_TIME).await.unwrap().is_none());
        assert_eq!(boss.get(&format!("/admin/users/{carol_id}")).await.status(), StatusCode::NOT_FOUND);
    }
}

// ---- paging ----

/// Inserts `n` users named `m{i}` (emails `m{i}@example.com`, every tenth `zz{i}@example.org`)
/// with plain SQL, 500 rows a statement.
async fn seed_many(db: &Db, n: usize) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for chunk_start in (0..n).step_by(500) {
        let mut values = Vec::new();
        for i in chunk_start..(chunk_start + 500).min(n) {
            let name = format!("m{i}");
            let email = if i % 10 == 0 {
                format!("zz{i}@example.org")
            } else {
                format!("m{i}@example.com")
            };
            values.push(format!(
                "('{name}', '{name}', '{email}', '{email}', 'x', '', 1700000000)"
            ));
            all.push((name, email));
        }
        let sql = format!(
            "INSERT INTO users (username, username_norm, email, email_norm, password_hash, roles, created_at) VALUES {}",
            values.join(", ")
        );
        match db {
            Db::Sqlite(pool) => {
                sqlx::query(&sql).execute(pool).await.unwrap();
            }
            Db::Postgres(pool) => {
                sqlx::query(&sql).execute(pool).await.unwrap();
            }
        }
    }
    all
}

/// Every page of `/api/admin/users?q=…`, checking the page shape; returns the usernames.
async fn walk(c: &TestClient, q: &str) -> (Vec<String>, i64) {
    let mut names = Vec::new();
    let mut page = 1;
    let mut total = -1;
    loop {
        let response = c.get(&format!("/api/admin/users?q={q}&page={page}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["page"], page);
        let this_total = body["total"].as_i64().unwrap();
        if total >= 0 {
            assert_eq!(this_total, total, "the total changed between pages");
        }
        total = this_total;
        let users = body["users"].as_array().unwrap();
        let expected = (total - (page - 1) * 50).clamp(0, 50);
        assert_eq!(users.len() as i64, expected, "page {page} of q={q:?}");
        if users.is_empty() {
            break;
        }
        names.extend(
            users
                .iter()
                .map(|u| u["username"].as_str().unwrap().to_owned()),
        );
        page += 1;
    }
    (names, total)
}

db_test! {
    async fn paging_over_thousands_of_users_is_exact_at_every_boundary(app) {
        let (boss, _) = admin_client(&app, "boss").await;
        let seeded = seed_many(&app.db, 3_021).await;
        let mut expected: Vec<String> = seeded.iter().map(|(n, _)| n.clone()).collect();
        expected.push("boss".into());
        expected.sort();

        let (names, total) = walk(&boss, "").await;
        assert_eq!(total, expected.len() as i64);
        assert_eq!(names, expected, "every user exactly once, in username order");

        // A username prefix: m1, m10…m19, m100…m199, m1000…m1999.
        let mut wanted: Vec<String> = expected.iter().filter(|n| n.starts_with("m1")).cloned().collect();
        wanted.sort();
        let (names, total) = walk(&boss, "M1").await;
        assert_eq!(total, wanted.len() as i64);
        assert_eq!(names, wanted);
        assert_eq!(total, 1 + 10 + 100 + 1000);

        // An email prefix that matches no username.
        let mut wanted: Vec<String> = seeded.iter().filter(|(_, e)| e.starts_with("zz")).map(|(n, _)| n.clone()).collect();
        wanted.sort();
        let (names, total) = walk(&boss, "zz").await;
        assert_eq!(total, 303);
        assert_eq!(names, wanted);
        let (names, _) = walk(&boss, "zz1000%40").await;
        assert_eq!(names, vec!["m1000"]);

        // Past the end: an empty page with the right total; prefixes of nothing: nothing.
        let body: Value = boss.get("/api/admin/users?page=1000").await.json().await.unwrap();
        assert_eq!(body["users"], json!([]));
        assert_eq!(body["total"], expected.len() as i64);
        let body: Value = boss.get("/api/admin/users?q=nobody").await.json().await.unwrap();
        assert_eq!((body["users"].clone(), body["total"].clone()), (json!([]), json!(0)));

        // The page links.
        let html = boss.get("/admin/users?q=m1&page=2").await.text().await.unwrap();
        assert!(html.contains("page 2 of 23"), "pager text");
        assert!(html.contains("q=m1&amp;page=1") && html.contains("q=m1&amp;page=3"));
    }
}

// ---- the CLI ----

const BIN: &str = env!("CARGO_BIN_EXE_latch");

/// Runs `latch <args> --database <the app's database>` and waits for it.
pub async fn latch(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("LATCH_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .args(["--database", &app.database_url])
        .env("LATCH_ARGON2_MEMORY_KIB", "256")
        .env("LATCH_ARGON2_ITERATIONS", "1")
        .env("LATCH_MAIL_OUTBOX", &app.outbox)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let stdin = stdin.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = command.spawn().expect("the latch binary starts");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn out(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[track_caller]
pub fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}{}",
        output.status.code(),
        out(output),
        String::from_utf8_lossy(&output.stderr)
    );
    out(output)
}

/// A failure: non-zero exit and one line on stderr, returned.
#[track_caller]
fn fails(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "expected a failure: {}",
        out(output)
    );
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got: {err}");
    lines[0].to_owned()
}

db_test! {
    async fn the_cli_manages_roles_locks_and_deletion(app) {
        let added = latch(&app, &["user", "add", "root", "root@example.com", "--role", "admin", "--password-stdin"], Some(&format!("{PASSWORD}\n"))).await;
        ok(&added);
        let root = app.new_client();
        assert_eq!(root.login("root", PASSWORD, false).await.status(), StatusCode::OK);
        assert_eq!(root.get("/api/admin/users").await.status(), StatusCode::OK);
        let (bob, bob_id) = user_client(&app, "bob").await;

        let shown = ok(&latch(&app, &["user", "show", "BOB@example.com"], None).await);
        for fact in ["bob@example.com", "roles:", "user", "locked:", "no", "active sessions: 1", "last sign-in:"] {
            assert!(shown.contains(fact), "{fact} missing in {shown}");
        }
        assert!(!shown.contains("argon2"));
        assert!(fails(&latch(&app, &["user", "show", "nobody"], None).await).contains("nobody"));

        // Roles: unknown ones are refused, created ones can be granted and removed.
        let line = fails(&latch(&app, &["user", "set-role", "bob", "editor"], None).await);
        assert!(line.contains("unknown role") && line.contains("editor"), "{line}");
        assert!(fails(&latch(&app, &["user", "set-role", "nobody", "admin"], None).await).contains("no user"));
        assert!(fails(&latch(&app, &["role", "add", "two words"], None).await).contains("role"));
        assert!(fails(&latch(&app, &["role", "add", "user"], None).await).contains("implicit"));
        ok(&latch(&app, &["role", "add", "Editor"], None).await);
        assert!(fails(&latch(&app, &["role", "add", "editor"], None).await).contains("already exists"));
        ok(&latch(&app, &["role", "add", "content_editor"], None).await);
        let granted = ok(&latch(&app, &["user", "set-role", "bob", "editor"], None).await);
        assert!(granted.contains("1 session(s) ended"), "{granted}");
        assert_eq!(verify_auth(&bob).await.0, StatusCode::UNAUTHORIZED, "the grant ended bob's session");
        assert_eq!(roles_of(&app.db, bob_id).await, vec!["editor"]);
        let roles = ok(&latch(&app, &["role", "list"], None).await);
        let count = |name: &str| -> String {
            roles.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap_or_default().split_whitespace().last().unwrap_or_default().to_owned()
        };
        assert_eq!(count("admin"), "1", "{roles}");
        assert_eq!(count("editor"), "1", "{roles}");
        assert_eq!(count("content_editor"), "0", "{roles}");
        ok(&latch(&app, &["user", "set-role", "bob", "editor", "--revoke"], None).await);
        assert!(roles_of(&app.db, bob_id).await.is_empty());

        // Lock ends sessions and refuses sign-in; unlock lets bob back in.
        assert_eq!(bob.login("bob", PASSWORD, false).await.status(), StatusCode::OK);
        let locked = ok(&latch(&app, &["user", "lock", "bob"], None).await);
        assert!(locked.contains("1 session(s) ended"), "{locked}");
        assert_eq!(verify_auth(&bob).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(bob.login("bob", PASSWORD, false).await).await.1, "account_locked");
        ok(&latch(&app, &["user", "unlock", "bob"], None).await);
        assert_eq!(bob.login("bob", PASSWORD, false).await.status(), StatusCode::OK);

        // The last admin stays.
        for args in [&["user", "set-role", "root", "admin", "--revoke"][..], &["user", "lock", "root"], &["user", "delete", "root"]] {
            let line = fails(&latch(&app, args, None).await);
            assert!(line.contains("last"), "{args:?}: {line}");
        }
        assert_eq!(verify_auth(&root).await.0, StatusCode::OK);

        // Delete, and the audit trail of it all.
        ok(&latch(&app, &["user", "delete", "bob"], None).await);
        assert!(fails(&latch(&app, &["user", "show", "bob"], None).await).contains("no user"));
        assert!(fails(&latch(&app, &["user", "delete", "bob"], None).await).contains("no user"));
        let audit = ok(&latch(&app, &["audit"], None).await);
        for event in ["role_grant", "role_revoke", "lock", "unlock", "session_revoke", "user_delete"] {
            assert!(audit.contains(event), "{event} missing in:\n{audit}");
        }
        let root_only = ok(&latch(&app, &["audit", "--user", "root"], None).await);
        assert!(!root_only.contains("bob"), "{root_only}");
        assert!(fails(&latch(&app, &["audit", "--user", "nobody"], None).await).contains("nobody"));
    }
}
