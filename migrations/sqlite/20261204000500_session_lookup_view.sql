-- The session lookup of every authenticated request (store::sessions::FIND_SQL) as a view:
-- the statement that names it is a few dozen bytes instead of several hundred, and the
-- statement caches (rusqlite's and sqlx's) hash a statement's whole text on every use. The
-- database inlines the view, so the lookup is the same indexed read of `sessions` joined to
-- its user. A signed-in session counts only while its credential generation is the user's.
CREATE VIEW session_lookup AS
SELECT s.token_hash, s.id, s.user_id, s.remember, s.created_at, s.last_seen_at,
       u.username, u.email, u.email_verified, u.first_name, u.last_name, u.roles, u.locked,
       u.created_at AS user_created_at, s.credential_gen, u.mfa_enabled, s.factors,
       s.pending_user_id, s.pending_remember, u.passkey_count
FROM sessions s LEFT JOIN users u ON u.id = s.user_id
WHERE s.user_id IS NULL OR s.credential_gen = u.credential_gen;
