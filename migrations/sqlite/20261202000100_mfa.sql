-- Second factor. One TOTP secret per user: unconfirmed (`confirmed_at` NULL) between setup and
-- the first right code, then on. `last_step` is the last accepted 30-second step, advanced only
-- by a compare-and-set, so a code works once even when two processes see it at once.
CREATE TABLE mfa_totp (
    user_id      INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    confirmed_at INTEGER,
    last_step    INTEGER NOT NULL DEFAULT 0
);
-- Recovery codes, stored hashed; a code is used by deleting its row.
CREATE TABLE mfa_recovery_codes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX mfa_recovery_codes_user_hash ON mfa_recovery_codes (user_id, code_hash);
-- Whether the user has a second factor: read with every session lookup, written in the same
-- transaction as the factor rows.
ALTER TABLE users ADD COLUMN mfa_enabled BOOLEAN NOT NULL DEFAULT FALSE;
-- How a session was made: `factor:unix_time` words (`password:1733000000 totp:1733000020`).
ALTER TABLE sessions ADD COLUMN factors TEXT NOT NULL DEFAULT '';
-- A sign-in waiting for its second factor: the session is anonymous (`user_id` NULL) and names
-- the user here; `credential_gen` holds the generation the password was checked under.
ALTER TABLE sessions ADD COLUMN pending_user_id INTEGER REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE sessions ADD COLUMN pending_remember BOOLEAN NOT NULL DEFAULT FALSE;
