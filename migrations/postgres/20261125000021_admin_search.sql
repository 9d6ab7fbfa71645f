-- Admin search by username or email prefix runs as range scans
-- (`username_norm >= $1 AND username_norm < $2`). A prefix is one contiguous range only in
-- code point order: under a linguistic collation (en_US.UTF-8 ...) punctuation is ignored
-- at the first level, so "a-z" sorts after "a." and a range would miss it. Comparing these
-- two columns in "C" order (byte order of UTF-8, the same as SQLite's BINARY) makes the
-- unique indexes serve the range scans on any server; equality, and so uniqueness, is
-- unchanged (both collations are deterministic). The indexes are rebuilt by this statement.
ALTER TABLE users ALTER COLUMN username_norm TYPE TEXT COLLATE "C";
ALTER TABLE users ALTER COLUMN email_norm TYPE TEXT COLLATE "C";
-- With "C" the plain indexes serve prefix searches, so the text_pattern_ops copies only
-- cost writes.
DROP INDEX IF EXISTS users_username_norm_prefix;
DROP INDEX IF EXISTS users_email_norm_prefix;
