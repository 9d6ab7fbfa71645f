-- Passkeys (WebAuthn credentials). `credential` is the verified credential as webauthn-rs
-- serialises it (public key, flags); `sign_count` is kept apart so a sign-in advances it by a
-- compare-and-set. `user_handle` is the random id the authenticator stores for the user (the
-- same for every passkey of one user), never the database id.
CREATE TABLE passkeys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id BLOB    NOT NULL UNIQUE,
    user_handle   BLOB    NOT NULL,
    name          TEXT    NOT NULL,
    credential    TEXT    NOT NULL,
    sign_count    INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX passkeys_user ON passkeys (user_id);
-- A ceremony between its start and its finish, found by its challenge (which the browser
-- signs into the response) and taken by deleting the row: single use, also across nodes.
CREATE TABLE passkey_challenges (
    challenge  BLOB    PRIMARY KEY,
    purpose    TEXT    NOT NULL,
    user_id    INTEGER REFERENCES users (id) ON DELETE CASCADE,
    state      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX passkey_challenges_expiry ON passkey_challenges (expires_at);
