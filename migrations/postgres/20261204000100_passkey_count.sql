-- How many passkeys the user has: read with every session lookup (a `require_mfa_roles` holder
-- without TOTP is held while it is 0), so that no request counts the rows; written in the same
-- transaction as the passkey rows.
ALTER TABLE users ADD COLUMN passkey_count BIGINT NOT NULL DEFAULT 0;
UPDATE users SET passkey_count = (SELECT COUNT(*) FROM passkeys p WHERE p.user_id = users.id);
