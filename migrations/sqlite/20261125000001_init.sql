-- Accounts and sessions. Times are Unix seconds; uniqueness is on the normalised forms.
CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    username       TEXT    NOT NULL,
    username_norm  TEXT    NOT NULL,
    email          TEXT    NOT NULL,
    email_norm     TEXT    NOT NULL,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash  TEXT    NOT NULL,
    first_name     TEXT,
    last_name      TEXT,
    roles          TEXT    NOT NULL DEFAULT '',
    locked         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     INTEGER NOT NULL,
    last_login_at  INTEGER
);
CREATE UNIQUE INDEX users_username_norm ON users (username_norm);
CREATE UNIQUE INDEX users_email_norm ON users (email_norm);

CREATE TABLE roles (
    name       TEXT    PRIMARY KEY,
    created_at INTEGER NOT NULL
);
INSERT INTO roles (name, created_at) VALUES ('admin', 0);

CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash   BLOB    NOT NULL,
    user_id      INTEGER REFERENCES users (id) ON DELETE CASCADE,
    remember     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    ip           TEXT,
    user_agent   TEXT
);
CREATE UNIQUE INDEX sessions_token_hash ON sessions (token_hash);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_last_seen_at ON sessions (last_seen_at);
