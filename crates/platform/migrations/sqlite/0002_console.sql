-- Console: users and roles, sessions, API tokens, the audit log, teams, trades, the
-- blacklist and firmware packages. SQLite dialect; keep in step with
-- migrations/postgres/0002_console.sql.

-- role: 'administrator' | 'project_manager' | 'auditor'.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
) STRICT;

-- The projects a project manager may see and change.
CREATE TABLE user_projects (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id INTEGER NOT NULL REFERENCES projects (id),
    PRIMARY KEY (user_id, project_id)
) STRICT;

-- Console sessions: only the SHA-256 of the cookie value is stored.
CREATE TABLE sessions (
    token_hash TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);

-- Personal API tokens: only the SHA-256 of the token is stored.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Who did what, when: every change and every bulk read of personal data.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    actor    TEXT    NOT NULL,
    user_id  INTEGER,
    action   TEXT    NOT NULL,
    target   TEXT    NOT NULL,
    detail   TEXT,
    ip       TEXT
) STRICT;
CREATE INDEX audit_log_at ON audit_log (at);

-- Teams (班组) inside a project.
CREATE TABLE teams (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects (id),
    name       TEXT    NOT NULL,
    leader     TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (project_id, name)
) STRICT;

-- A worker's team and trade (工种) in a project.
ALTER TABLE project_workers ADD COLUMN team_id INTEGER;
ALTER TABLE project_workers ADD COLUMN trade TEXT;

-- The platform-wide blacklist: a listed worker is on no roster and joins no project.
CREATE TABLE blacklist (
    person_id  INTEGER PRIMARY KEY REFERENCES workers (person_id),
    reason     TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- Uploaded firmware packages (the file lives in the file store under file_key).
CREATE TABLE firmware (
    id         INTEGER PRIMARY KEY,
    vendor_id  INTEGER NOT NULL REFERENCES vendors (id),
    kind       TEXT    NOT NULL,
    version    TEXT    NOT NULL,
    file_key   TEXT    NOT NULL,
    sha256     TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    notes      TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (vendor_id, kind, version)
) STRICT;
