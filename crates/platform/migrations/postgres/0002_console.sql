-- Console: users and roles, sessions, API tokens, the audit log, teams, trades, the
-- blacklist and firmware packages. PostgreSQL dialect; keep in step with
-- migrations/sqlite/0002_console.sql.

-- role: 'administrator' | 'project_manager' | 'auditor'.
CREATE TABLE users (
    id            BIGINT  PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    disabled      BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL
);

-- The projects a project manager may see and change.
CREATE TABLE user_projects (
    user_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id BIGINT  NOT NULL REFERENCES projects (id),
    PRIMARY KEY (user_id, project_id)
);

-- Console sessions: only the SHA-256 of the cookie value is stored.
CREATE TABLE sessions (
    token_hash TEXT    PRIMARY KEY,
    user_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Personal API tokens: only the SHA-256 of the token is stored.
CREATE TABLE api_tokens (
    id           BIGINT  PRIMARY KEY,
    user_id      BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Who did what, when: every change and every bulk read of personal data.
CREATE TABLE audit_log (
    id       BIGINT  PRIMARY KEY,
    at       BIGINT  NOT NULL,
    actor    TEXT    NOT NULL,
    user_id  BIGINT,
    action   TEXT    NOT NULL,
    target   TEXT    NOT NULL,
    detail   TEXT,
    ip       TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);

-- Teams (班组) inside a project.
CREATE TABLE teams (
    id         BIGINT  PRIMARY KEY,
    project_id BIGINT  NOT NULL REFERENCES projects (id),
    name       TEXT    NOT NULL,
    leader     TEXT,
    created_at BIGINT  NOT NULL,
    UNIQUE (project_id, name)
);

-- A worker's team and trade (工种) in a project.
ALTER TABLE project_workers ADD COLUMN team_id BIGINT;
ALTER TABLE project_workers ADD COLUMN trade TEXT;

-- The platform-wide blacklist: a listed worker is on no roster and joins no project.
CREATE TABLE blacklist (
    person_id  BIGINT  PRIMARY KEY REFERENCES workers (person_id),
    reason     TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at BIGINT  NOT NULL
);

-- Uploaded firmware packages (the file lives in the file store under file_key).
CREATE TABLE firmware (
    id         BIGINT  PRIMARY KEY,
    vendor_id  BIGINT  NOT NULL REFERENCES vendors (id),
    kind       TEXT    NOT NULL,
    version    TEXT    NOT NULL,
    file_key   TEXT    NOT NULL,
    sha256     TEXT    NOT NULL,
    size       BIGINT  NOT NULL,
    notes      TEXT,
    created_at BIGINT  NOT NULL,
    UNIQUE (vendor_id, kind, version)
);
