-- Rollcall schema, SQLite dialect. Keep in step with migrations/postgres/0001_init.sql:
-- same tables, columns, constraints and indexes; only the types are spelled differently.
-- Times are epoch milliseconds, booleans 0/1, JSON is TEXT (portable through sqlx::Any).

CREATE TABLE vendors (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL,
    access_id      TEXT    NOT NULL UNIQUE,
    access_key     TEXT    NOT NULL,
    access_secret  TEXT    NOT NULL,
    rsa_public_key TEXT,
    created_at     INTEGER NOT NULL
) STRICT;

-- Every credential pair ever issued; the vendor's current one has revoked_at NULL.
CREATE TABLE credentials (
    access_id     TEXT    PRIMARY KEY,
    access_key    TEXT    NOT NULL,
    access_secret TEXT    NOT NULL,
    vendor_id     INTEGER NOT NULL REFERENCES vendors (id),
    revoked_at    INTEGER
) STRICT;
CREATE INDEX credentials_vendor ON credentials (vendor_id);

CREATE TABLE tokens (
    token        TEXT    PRIMARY KEY,
    sn           TEXT    NOT NULL,
    access_id    TEXT    NOT NULL,
    last_used_at INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE projects (
    id                INTEGER PRIMARY KEY,
    name              TEXT    NOT NULL,
    code              TEXT,
    address           TEXT,
    coordinate_system TEXT    NOT NULL,
    fence             TEXT,
    created_at        INTEGER NOT NULL
) STRICT;

CREATE TABLE devices (
    sn                TEXT    PRIMARY KEY,
    vendor_id         INTEGER NOT NULL REFERENCES vendors (id),
    project_id        INTEGER REFERENCES projects (id),
    kind              TEXT    NOT NULL,
    direction         TEXT    NOT NULL,
    name              TEXT,
    enabled           INTEGER NOT NULL,
    firmware_version  TEXT,
    ip                TEXT,
    last_heartbeat_at INTEGER,
    person_count      INTEGER,
    face_count        INTEGER,
    created_at        INTEGER NOT NULL
) STRICT;
CREATE INDEX devices_project ON devices (project_id);

-- Online/offline transitions (written behind; no foreign key so one stale sn cannot fail a batch).
CREATE TABLE presence_transitions (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    sn     TEXT    NOT NULL,
    online INTEGER NOT NULL,
    at     INTEGER NOT NULL
) STRICT;
CREATE INDEX presence_transitions_sn ON presence_transitions (sn, at);

CREATE TABLE workers (
    person_id  INTEGER PRIMARY KEY,
    idcard_no  TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    gender     TEXT,
    nation     TEXT,
    address    TEXT,
    phone      TEXT,
    face_key   TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- Project membership: status 'active' | 'exited'; blacklisted 0/1 (a roster excludes it).
CREATE TABLE project_workers (
    project_id  INTEGER NOT NULL REFERENCES projects (id),
    person_id   INTEGER NOT NULL REFERENCES workers (person_id),
    status      TEXT    NOT NULL,
    blacklisted INTEGER NOT NULL DEFAULT 0,
    joined_at   INTEGER NOT NULL,
    exited_at   INTEGER,
    PRIMARY KEY (project_id, person_id)
) STRICT;
CREATE INDEX project_workers_person ON project_workers (person_id);

-- Tasks: state 'pending' | 'delivered' | 'done' | 'failed' | 'unsupported' | 'cancelled'.
CREATE TABLE tasks (
    taskid       INTEGER PRIMARY KEY,
    sn           TEXT    NOT NULL REFERENCES devices (sn),
    apicode      TEXT    NOT NULL,
    param        TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    delivered_at INTEGER,
    finished_at  INTEGER
) STRICT;
CREATE INDEX tasks_sn_state ON tasks (sn, state);
CREATE INDEX tasks_sn_taskid ON tasks (sn, taskid);
CREATE INDEX tasks_open ON tasks (state) WHERE state IN ('pending', 'delivered');

-- The frozen person list of a person task.
CREATE TABLE task_persons (
    taskid    INTEGER NOT NULL REFERENCES tasks (taskid) ON DELETE CASCADE,
    person_id INTEGER NOT NULL,
    PRIMARY KEY (taskid, person_id)
) STRICT;

-- failedPersons (kind 'person') and failedFaces (kind 'face') of a task's status report.
CREATE TABLE task_failures (
    taskid    INTEGER NOT NULL REFERENCES tasks (taskid) ON DELETE CASCADE,
    kind      TEXT    NOT NULL,
    person_id TEXT    NOT NULL,
    err_code  TEXT    NOT NULL,
    PRIMARY KEY (taskid, kind, person_id)
) STRICT;

-- Per person and device: did the device accept the person and the face?
CREATE TABLE person_sync (
    sn         TEXT    NOT NULL,
    person_id  INTEGER NOT NULL,
    person_ok  INTEGER NOT NULL,
    person_err TEXT,
    face_ok    INTEGER NOT NULL,
    face_err   TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (sn, person_id)
) STRICT;

-- Pages of a T_POST_DEVICE_PERSON upload; a resent page replaces the old one.
CREATE TABLE reconcile_pages (
    taskid     INTEGER NOT NULL REFERENCES tasks (taskid) ON DELETE CASCADE,
    page       INTEGER NOT NULL,
    total_page INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    PRIMARY KEY (taskid, page)
) STRICT;

-- Attendance records; (sn, person_id, record_time, record_type) is the idempotency key.
-- No foreign keys: records are stored (and flagged) whatever they name.
CREATE TABLE attendance (
    record_id   INTEGER PRIMARY KEY,
    sn          TEXT    NOT NULL,
    person_id   TEXT    NOT NULL,
    record_type INTEGER NOT NULL,
    bit_type    INTEGER,
    record_time INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    project_id  INTEGER,
    direction   TEXT    NOT NULL,
    photo_key   TEXT,
    flags       TEXT    NOT NULL,
    temperature REAL,
    extra       TEXT,
    UNIQUE (sn, person_id, record_time, record_type)
) STRICT;
CREATE INDEX attendance_project ON attendance (project_id, record_id);
CREATE INDEX attendance_person ON attendance (person_id, record_id);
