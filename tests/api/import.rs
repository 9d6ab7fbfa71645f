//! `latch import werkzeug`: users of a Flask app sign in with their old passwords.

use std::process::Command;

use crate::helpers::*;
use reqwest::StatusCode;
use sqlx::Connection;

// Made with Werkzeug 3.1.8's generate_password_hash.
const PBKDF2: &str = "pbkdf2:sha256:1000$Nqq2h5XAggzYy0pK$a7de6a1cc3e32bb94989245612294f76365f7f5faadc19b92bca73c3911f2bed";
const PBKDF2_PASSWORD: &str = "flask password 3";
const SCRYPT: &str = "scrypt:32768:8:1$bFyEE8KL61Dr3kpV$6ddfd2d5ca47805857777ee30f5b4b03f877a958f6aaa44cccbe54d87ca4607d03b83bd02607f8ed08ed7cb001932214f61489576d247fd87d1ec783f8dc7c37";
const SCRYPT_PASSWORD: &str = "flask password 2";

async fn flask_database(path: &std::path::Path) -> String {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, email TEXT, password_hash TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();
    let rows = [
        (1, "anna", "anna@example.com", PBKDF2),
        (2, "Bert", "BERT@example.com", SCRYPT),
        (3, "not valid", "c@example.com", PBKDF2),
        (4, "dora", "dora@example.com", "md5$abc$0123"),
        (5, "eve", "not-an-email", PBKDF2),
    ];
    for (id, name, email, hash) in rows {
        sqlx::query("INSERT INTO users VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(name)
            .bind(email)
            .bind(hash)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    format!("sqlite://{}", path.display())
}

fn import(latch_db: &str, source: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_latch"))
        .args(["import", "werkzeug", source, "--database", latch_db])
        .env("LATCH_ARGON2_MEMORY_KIB", "256")
        .env("LATCH_ARGON2_ITERATIONS", "1")
        .env("LATCH_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flask_users_are_imported_and_sign_in_with_their_old_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let source = flask_database(&dir.path().join("flask.db")).await;
    let app = TestApp::spawn(Backend::Sqlite).await;

    let first = import(&app.database_url, &source);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(stdout.contains("imported 2 user(s)"), "{stdout}");
    for id in ["id 3", "id 4", "id 5"] {
        assert!(
            stdout.contains(&format!("skipped {id}")),
            "{id} not reported: {stdout}"
        );
    }
    // A re-run is safe: everything already exists or is still invalid.
    let again = import(&app.database_url, &source);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success());
    assert!(
        stdout.contains("imported 0 user(s); 2 already existed"),
        "{stdout}"
    );

    assert_eq!(
        app.login("anna", "wrong password", false).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.new_client()
            .login("anna", PBKDF2_PASSWORD, false)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.new_client()
            .login("bert@example.com", SCRYPT_PASSWORD, false)
            .await
            .status(),
        StatusCode::OK
    );
    // The old hashes were replaced by Argon2id at that first sign-in.
    let latch::store::Db::Sqlite(pool) = &app.db else {
        unreachable!()
    };
    let hashes: Vec<(String,)> = sqlx::query_as("SELECT password_hash FROM users")
        .fetch_all(pool)
        .await
        .unwrap();
    assert!(
        hashes.iter().all(|(h,)| h.starts_with("$argon2id$")),
        "{hashes:?}"
    );
    assert_eq!(
        app.new_client()
            .login("anna", PBKDF2_PASSWORD, false)
            .await
            .status(),
        StatusCode::OK
    );
}

#[test]
fn a_missing_source_or_a_hostile_table_name_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let latch_db = format!("sqlite://{}", dir.path().join("latch.db").display());
    let missing = import(
        &latch_db,
        &format!("sqlite://{}", dir.path().join("nope.db").display()),
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).starts_with("error: source database"));
    let hostile = Command::new(env!("CARGO_BIN_EXE_latch"))
        .args([
            "import",
            "werkzeug",
            &latch_db,
            "--table",
            "users; DROP TABLE users",
            "--database",
            &latch_db,
        ])
        .output()
        .unwrap();
    assert!(!hostile.status.success());
    assert!(String::from_utf8_lossy(&hostile.stderr).contains("not a valid table or column name"));
}
