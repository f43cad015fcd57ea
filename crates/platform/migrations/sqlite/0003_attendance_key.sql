-- Attendance's idempotency key in arrival order: (sn, record_time, person_id, record_type),
-- the same four columns as before (sn, person_id, record_time, record_type). A device sends
-- its records in time order, so their keys now land at the end of the device's part of the
-- index instead of in every worker's part: a batch of records dirties a few index pages
-- instead of one per worker (BENCHMARKS.md, "backlog"). SQLite cannot change a table's
-- UNIQUE constraint, so the table is rebuilt. Keep in step with
-- migrations/postgres/0003_attendance_key.sql.
CREATE TABLE attendance_rebuilt (
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
    UNIQUE (sn, record_time, person_id, record_type)
) STRICT;
INSERT INTO attendance_rebuilt (record_id, sn, person_id, record_type, bit_type, record_time,
    received_at, project_id, direction, photo_key, flags, temperature, extra)
SELECT record_id, sn, person_id, record_type, bit_type, record_time,
    received_at, project_id, direction, photo_key, flags, temperature, extra
FROM attendance;
DROP TABLE attendance;
ALTER TABLE attendance_rebuilt RENAME TO attendance;
CREATE INDEX attendance_project ON attendance (project_id, record_id);
CREATE INDEX attendance_person ON attendance (person_id, record_id);
