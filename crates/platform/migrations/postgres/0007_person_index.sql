-- A worker's records are found through a per-person index that is brought up to date in bulk
-- instead of at every group commit (store/sql/person_index.rs): a commit appends its new
-- records' ids to attendance_to_index, and every few thousand records one transaction moves
-- them into attendance_by_person. PostgreSQL dialect; keep in step with
-- migrations/sqlite/0007_person_index.sql, which says why.
CREATE TABLE attendance_by_person (
    person_id TEXT   NOT NULL,
    record_id BIGINT NOT NULL,
    PRIMARY KEY (person_id, record_id)
);
CREATE TABLE attendance_to_index (
    record_id BIGINT PRIMARY KEY,
    person_id TEXT   NOT NULL
);
INSERT INTO attendance_by_person (person_id, record_id)
SELECT person_id, record_id FROM attendance;
DROP INDEX attendance_person;
