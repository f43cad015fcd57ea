-- Device tokens are stored as their SHA-256 (lowercase hex) from now on, so a copy of the
-- database signs no device in. Tokens stored in plain text before cannot be hashed here
-- (SQLite has no SHA-256), and they expire after 30 idle minutes anyway: they are deleted,
-- and their devices are answered 401_01 once and authenticate again (ZJ-TOKEN-03).
DELETE FROM tokens;
