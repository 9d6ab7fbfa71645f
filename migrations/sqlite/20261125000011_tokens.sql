-- Single-use mailed tokens (email verification, password reset); only their hash is stored.
CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash BLOB    NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT    NOT NULL,
    email      TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX tokens_token_hash ON tokens (token_hash);
CREATE INDEX tokens_user_purpose ON tokens (user_id, purpose);

-- The failure table now counts every throttled action (sign-ups, reset mails…).
ALTER TABLE sign_in_failures RENAME TO throttle_events;
