-- Uplink to the national real-name platform (docs/UPLINK.md). PostgreSQL dialect; keep in step
-- with migrations/sqlite/0006_uplink.sql.

-- A project's uplink settings. appsecret is sealed (store/sealing.rs, column
-- "uplink_appsecret", bound to the project id). failures/retry_at: the project's backoff
-- after a failed request (the whole queue waits, so nothing overtakes a failed batch).
-- lease_owner/lease_until: the one node sending for this project.
CREATE TABLE uplink_configs (
    project_id      BIGINT  PRIMARY KEY REFERENCES projects (id),
    endpoint        TEXT    NOT NULL,
    appid           TEXT    NOT NULL,
    appsecret       TEXT    NOT NULL,
    corp_code       TEXT    NOT NULL,
    corp_name       TEXT    NOT NULL,
    enabled         BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    last_success_at BIGINT,
    last_error      TEXT,
    failures        BIGINT  NOT NULL DEFAULT 0,
    retry_at        BIGINT  NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until     BIGINT  NOT NULL DEFAULT 0
);

-- The durable outbox: one row per thing to report, written in the transaction that stores
-- the thing. kind: 'team' | 'worker' | 'entry' | 'exit' | 'attendance'; ref_id: the team
-- id, person id or attendance record id. state: 'pending' | 'sending' (a request carrying
-- it is in flight or in doubt) | 'sent' (awaiting the async result of serial) | 'accepted'
-- | 'refused'. solo: sent alone (its batch was refused as a whole).
CREATE TABLE uplink_outbox (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id BIGINT  NOT NULL,
    kind       TEXT    NOT NULL,
    ref_id     BIGINT  NOT NULL,
    person_id  TEXT,
    at         BIGINT  NOT NULL,
    state      TEXT    NOT NULL,
    attempts   BIGINT  NOT NULL DEFAULT 0,
    next_at    BIGINT  NOT NULL DEFAULT 0,
    solo       BIGINT  NOT NULL DEFAULT 0,
    request    TEXT,
    serial     TEXT,
    message    TEXT,
    created_at BIGINT  NOT NULL,
    sent_at    BIGINT,
    done_at    BIGINT
);
CREATE INDEX uplink_outbox_queue ON uplink_outbox (project_id, state, id);
CREATE INDEX uplink_outbox_ref ON uplink_outbox (kind, ref_id);
-- A team and an attendance record are reported once per project.
CREATE UNIQUE INDEX uplink_outbox_once ON uplink_outbox (project_id, kind, ref_id)
    WHERE kind IN ('team', 'attendance');

-- The national platform's number of each reported team (teamSysNo).
CREATE TABLE uplink_teams (
    team_id     BIGINT  PRIMARY KEY,
    project_id  BIGINT  NOT NULL,
    team_sys_no BIGINT  NOT NULL
);

-- What the national platform needs of a worker beyond the workers table: the ID card's
-- issuing authority (grantOrg) and validity (YYYY-MM-DD; id_valid_to may be '长期'), the
-- politics type and national work-type code (dictionary codes), and whether the worker
-- leads their team.
CREATE TABLE worker_national (
    person_id     BIGINT  PRIMARY KEY REFERENCES workers (person_id),
    grant_org     TEXT,
    id_valid_from TEXT,
    id_valid_to   TEXT,
    politics_type TEXT,
    work_type     TEXT,
    team_leader   BIGINT  NOT NULL DEFAULT 0,
    updated_at    BIGINT  NOT NULL
);

-- The operator's additions to (and renamings of) the built-in dictionaries
-- (uplink/dictionaries.rs): kind 'work_type' | 'politics_type' | 'nation'.
CREATE TABLE dictionaries (
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (kind, code)
);

-- Webhooks for integrators: the outbox's second profile. An endpoint subscribes to events
-- ('attendance', 'worker', 'device', 'task', or '*'); its secret (HMAC-SHA256 key) is sealed
-- like the uplink's. lease_owner/lease_until: the one node delivering to it.
CREATE TABLE webhook_endpoints (
    id          BIGINT  PRIMARY KEY,
    url         TEXT    NOT NULL,
    secret      TEXT    NOT NULL,
    events      TEXT    NOT NULL,
    enabled     BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    failures    BIGINT  NOT NULL DEFAULT 0,
    retry_at    BIGINT  NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until BIGINT  NOT NULL DEFAULT 0
);

-- One row per event and endpoint, written in the transaction that stores the event; the
-- payload is built from ref when it is delivered. state: 'pending' | 'delivered' |
-- 'failed' (gave up after max_attempts). The endpoint's delivery log.
CREATE TABLE webhook_deliveries (
    id           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id  BIGINT  NOT NULL,
    event        TEXT    NOT NULL,
    ref          TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    attempts     BIGINT  NOT NULL DEFAULT 0,
    last_status  BIGINT ,
    last_error   TEXT,
    created_at   BIGINT  NOT NULL,
    delivered_at BIGINT 
);
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (endpoint_id, state, id);
