-- Failed sign-ins, counted per account (or unknown identifier) and per client IP, in the
-- database so the limits hold across processes.
CREATE TABLE sign_in_failures (
    id  INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT    NOT NULL,
    at  INTEGER NOT NULL
);
CREATE INDEX sign_in_failures_key_at ON sign_in_failures (key, at);
CREATE INDEX sign_in_failures_at ON sign_in_failures (at);
