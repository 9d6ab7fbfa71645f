-- Admin search by username or email prefix runs as range scans
-- (`username_norm >= $1 AND username_norm < $2`) on the unique indexes of the init
-- migration. SQLite compares TEXT with BINARY (memcmp of UTF-8, i.e. code point order)
-- already, so nothing changes here; the PostgreSQL twin of this migration makes the
-- columns compare the same way. This file keeps the version numbers of both in step.
SELECT 1;
