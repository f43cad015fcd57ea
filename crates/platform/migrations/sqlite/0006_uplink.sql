-- Uplink to the national real-name platform (docs/UPLINK.md). SQLite dialect; keep in step
-- with migrations/postgres/0006_uplink.sql.

-- A project's uplink settings. appsecret is sealed (store/sealing.rs, column
-- "uplink_appsecret", bound to the project id). failures/retry_at: the project's backoff
-- after a failed request (the whole queue waits, so nothing overtakes a failed batch).
-- lease_owner/lease_until: the one node sending for this project.
CREATE TABLE uplink_configs (
    project_id      INTEGER PRIMARY KEY REFERENCES projects (id),
    endpoint        TEXT    NOT NULL,
    appid           TEXT    NOT NULL,
    appsecret       TEXT    NOT NULL,
    corp_code       TEXT    NOT NULL,
    corp_name       TEXT    NOT NULL,
    enabled         INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_success_at INTEGER,
    last_error      TEXT,
    failures        INTEGER NOT NULL DEFAULT 0,
    retry_at        INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until     INTEGER NOT NULL DEFAULT 0
) STRICT;

-- The durable outbox: one row per thing to report, written in the transaction that stores
-- the thing. kind: 'team' | 'worker' | 'entry' | 'exit' | 'attendance'; ref_id: the team
-- id, person id or attendance record id. state: 'pending' | 'sending' (a request carrying
-- it is in flight or in doubt) | 'sent' (awaiting the async result of serial) | 'accepted'
-- | 'refused'. solo: sent alone (its batch was refused as a whole).
CREATE TABLE uplink_outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    ref_id     INTEGER NOT NULL,
    person_id  TEXT,
    at         INTEGER NOT NULL,
    state      TEXT    NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    INTEGER NOT NULL DEFAULT 0,
    solo       INTEGER NOT NULL DEFAULT 0,
    request    TEXT,
    serial     TEXT,
    message    TEXT,
    created_at INTEGER NOT NULL,
    sent_at    INTEGER,
    done_at    INTEGER
) STRICT;
CREATE INDEX uplink_outbox_queue ON uplink_outbox (project_id, state, id);
CREATE INDEX uplink_outbox_ref ON uplink_outbox (kind, ref_id);
-- A team and an attendance record are reported once per project.
CREATE UNIQUE INDEX uplink_outbox_once ON uplink_outbox (project_id, kind, ref_id)
    WHERE kind IN ('team', 'attendance');

-- The national platform's number of each reported team (teamSysNo).
CREATE TABLE uplink_teams (
    team_id     INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL,
    team_sys_no INTEGER NOT NULL
) STRICT;

-- What the national platform needs of a worker beyond the workers table: the ID card's
-- issuing authority (grantOrg) and validity (YYYY-MM-DD; id_valid_to may be '长期'), the
-- politics type and national work-type code (dictionary codes), and whether the worker
-- leads their team.
CREATE TABLE worker_national (
    person_id     INTEGER PRIMARY KEY REFERENCES workers (person_id),
    grant_org     TEXT,
    id_valid_from TEXT,
    id_valid_to   TEXT,
    politics_type TEXT,
    work_type     TEXT,
    team_leader   INTEGER NOT NULL DEFAULT 0,
    updated_at    INTEGER NOT NULL
) STRICT;

-- The operator's additions to (and renamings of) the built-in dictionaries
-- (uplink/dictionaries.rs): kind 'work_type' | 'politics_type' | 'nation'.
CREATE TABLE dictionaries (
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (kind, code)
) STRICT;

-- Webhooks for integrators: the outbox's second profile. An endpoint subscribes to events
-- ('attendance', 'worker', 'device', 'task', or '*'); its secret (HMAC-SHA256 key) is sealed
-- like the uplink's. lease_owner/lease_until: the one node delivering to it.
CREATE TABLE webhook_endpoints (
    id          INTEGER PRIMARY KEY,
    url         TEXT    NOT NULL,
    secret      TEXT    NOT NULL,
    events      TEXT    NOT NULL,
    enabled     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    failures    INTEGER NOT NULL DEFAULT 0,
    retry_at    INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0
) STRICT;

-- One row per event and endpoint, written in the transaction that stores the event; the
-- payload is built from ref when it is delivered. state: 'pending' | 'delivered' |
-- 'failed' (gave up after max_attempts). The endpoint's delivery log.
CREATE TABLE webhook_deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id  INTEGER NOT NULL,
    event        TEXT    NOT NULL,
    ref          TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_status  INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    delivered_at INTEGER
) STRICT;
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (endpoint_id, state, id);
