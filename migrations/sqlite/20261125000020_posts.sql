-- Posts: the ownership demo. A post dies with its author.
CREATE TABLE posts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    author_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
-- "My posts, newest first" is one range of this index.
CREATE INDEX posts_author_id ON posts (author_id, id);
