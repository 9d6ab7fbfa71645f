//! Posts: title, body and author. Who may see or change a post is decided in
//! [`crate::posts`], not here; these queries only do what they are told.

use super::{db_run, Db, StoreError};
use crate::clock::Timestamp;

/// A stored post.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PostRecord {
    /// Primary key.
    pub id: i64,
    /// The user who wrote it.
    pub author_id: i64,
    /// Title (1–200 characters).
    pub title: String,
    /// Body (1–20,000 characters).
    pub body: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

const COLUMNS: &str = "id, author_id, title, body, created_at, updated_at";

/// Stores a new post by `author_id`.
pub async fn insert(
    db: &Db,
    author_id: i64,
    title: &str,
    body: &str,
    now: Timestamp,
) -> Result<PostRecord, StoreError> {
    let sql = format!(
        "INSERT INTO posts (author_id, title, body, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) RETURNING {COLUMNS}"
    );
    Ok(db_run!(db, |pool| sqlx::query_as::<_, PostRecord>(&sql)
        .bind(author_id)
        .bind(title)
        .bind(body)
        .bind(now)
        .fetch_one(pool)
        .await)?)
}

/// Finds a post by id, whoever wrote it.
pub async fn find(db: &Db, id: i64) -> Result<Option<PostRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM posts WHERE id = $1");
    Ok(db_run!(db, |pool| sqlx::query_as::<_, PostRecord>(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

/// The posts of one author, newest first (one range of the `posts_author_id` index).
pub async fn list_by_author(db: &Db, author_id: i64) -> Result<Vec<PostRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM posts WHERE author_id = $1 ORDER BY id DESC");
    Ok(db_run!(db, |pool| sqlx::query_as::<_, PostRecord>(&sql)
        .bind(author_id)
        .fetch_all(pool)
        .await)?)
}

/// Changes the title and/or body (`None` keeps the old value); [`StoreError::NotFound`]
/// when the post no longer exists.
pub async fn update(
    db: &Db,
    id: i64,
    title: Option<&str>,
    body: Option<&str>,
    now: Timestamp,
) -> Result<PostRecord, StoreError> {
    let sql = format!(
        "UPDATE posts SET title = COALESCE($1, title), body = COALESCE($2, body), \
         updated_at = $3 WHERE id = $4 RETURNING {COLUMNS}"
    );
    Ok(db_run!(db, |pool| sqlx::query_as::<_, PostRecord>(&sql)
        .bind(title)
        .bind(body)
        .bind(now)
        .bind(id)
        .fetch_one(pool)
        .await)?)
}

/// Deletes a post; [`StoreError::NotFound`] when there was none.
pub async fn delete(db: &Db, id: i64) -> Result<(), StoreError> {
    let sql = "DELETE FROM posts WHERE id = $1";
    let done = db_run!(db, |pool| sqlx::query(sql)
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    if done == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
