-- Attendance's idempotency key in arrival order: (sn, record_time, person_id, record_type),
-- the same four columns as before (sn, person_id, record_time, record_type). A device sends
-- its records in time order, so their keys now land at the end of the device's part of the
-- index instead of in every worker's part: a batch of records dirties a few index pages
-- instead of one per worker (BENCHMARKS.md, "backlog"). Keep in step with
-- migrations/sqlite/0003_attendance_key.sql.
ALTER TABLE attendance DROP CONSTRAINT attendance_sn_person_id_record_time_record_type_key;
ALTER TABLE attendance ADD CONSTRAINT attendance_key UNIQUE (sn, record_time, person_id, record_type);
