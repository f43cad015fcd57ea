-- A worker's records are found through a per-person index that is brought up to date in bulk
-- instead of at every group commit (store/sql/person_index.rs). The index attendance_person
-- (person_id, record_id) put one entry of almost every record of a batch into a different
-- leaf page (a batch holds one record of each of many workers), so each commit wrote most of
-- those leaves to the WAL again: about four fifths of what a commit wrote (BENCHMARKS.md,
-- "eighth machine"). Now a commit appends its new records' ids and persons to attendance_to_index, whose
-- keys grow with time (few pages per commit), and every few thousand records one transaction
-- moves them into attendance_by_person, touching each leaf once for all of them. A query for
-- a person reads both. Keep in step with migrations/postgres/0007_person_index.sql.
CREATE TABLE attendance_by_person (
    person_id TEXT    NOT NULL,
    record_id INTEGER NOT NULL,
    PRIMARY KEY (person_id, record_id)
) STRICT, WITHOUT ROWID;
CREATE TABLE attendance_to_index (
    record_id INTEGER PRIMARY KEY,
    person_id TEXT    NOT NULL
) STRICT;
INSERT INTO attendance_by_person (person_id, record_id)
SELECT person_id, record_id FROM attendance;
DROP INDEX attendance_person;
