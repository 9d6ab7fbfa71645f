-- A per-user credential generation, bumped in the same transaction as every revocation
-- (password reset or set, lock, "end all sessions"). Sessions and API tokens record the
-- generation they were proven under, and the lookups accept them only while it is current,
-- so a sign-in checked against the old password (or before a lock) that commits its session
-- after the revocation still yields a dead session (docs/security.md, "Revocation").
ALTER TABLE users ADD COLUMN credential_gen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN credential_gen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN credential_gen INTEGER NOT NULL DEFAULT 0;
