//! The store's queries, as plain functions over a connection. They run on the store thread
//! (see [`super::StoreHandle::call`]), each inside its own savepoint of a group commit.

use rollcall_protocol::params::{self, SignInParam};
use rusqlite::{Connection, OptionalExtension, params as sql};
use sha2::{Digest, Sha256};

use super::{StoreError, StoreResult};
use crate::photo::PhotoFormat;
use crate::record::{AttendanceRecord, DeadLetter, QueuedRecord};

// --- the attendance queue --------------------------------------------------------------------

/// Appends records to the queue; returns their ids (queue positions).
pub fn enqueue(conn: &Connection, records: &[AttendanceRecord], now: i64) -> StoreResult<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO records (person_id, type, record_time, param, photo, taken_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut ids = Vec::with_capacity(records.len());
    for r in records {
        let param = params::to_json(&r.to_param());
        stmt.execute(sql![
            r.person_id,
            r.method.code(),
            r.record_time,
            param,
            r.photo.as_deref(),
            now
        ])?;
        ids.push(conn.last_insert_rowid());
    }
    Ok(ids)
}

/// Up to `limit` queued records with ids above `after`, in id order. A row whose param cannot
/// be read (a corrupted file) is moved to the dead letters rather than blocking the queue.
pub fn load_records(conn: &Connection, after: i64, limit: usize) -> StoreResult<Vec<QueuedRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, param, photo FROM records WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(sql![after, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<Vec<u8>>>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, param, photo) in rows {
        match params::parse::<SignInParam>(&param) {
            Ok(param) => out.push(QueuedRecord { id, param, photo }),
            Err(e) => {
                tracing::error!(id, error = %e, "an unreadable queued record; dead-lettered");
                dead_letter(conn, id, "local", &e.to_string(), 0)?;
            }
        }
    }
    Ok(out)
}

/// The platform acknowledged a record: it leaves the queue.
pub fn ack(conn: &Connection, id: i64) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM records WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Moves a record from the queue to the dead letters.
pub fn dead_letter(
    conn: &Connection,
    id: i64,
    code: &str,
    message: &str,
    now: i64,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO dead_letters
            (id, person_id, type, record_time, param, photo, error_code, error_message, failed_at)
         SELECT id, person_id, type, record_time, param, photo, ?2, ?3, ?4
           FROM records WHERE id = ?1",
    )?
    .execute(sql![id, code, message, now])?;
    conn.prepare_cached("DELETE FROM records WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Records waiting in the queue.
pub fn queue_len(conn: &Connection) -> StoreResult<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))?)
}

/// Dead letters, oldest first.
pub fn dead_letters(conn: &Connection, limit: usize) -> StoreResult<Vec<DeadLetter>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, person_id, record_time, param, photo IS NOT NULL, error_code,
                error_message, failed_at
           FROM dead_letters ORDER BY id LIMIT ?1",
    )?;
    let rows = stmt
        .query_map([limit as i64], |r| {
            Ok(DeadLetter {
                id: r.get(0)?,
                person_id: r.get(1)?,
                record_time: r.get(2)?,
                param: r.get(3)?,
                has_photo: r.get(4)?,
                error_code: r.get(5)?,
                error_message: r.get(6)?,
                failed_at: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn dead_letter_count(conn: &Connection) -> StoreResult<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM dead_letters", [], |r| r.get(0))?)
}

/// Puts dead letters back at the end of the queue (after the vendor fixed the cause), in
/// their original order; `ids` empty means all. Returns how many.
pub fn requeue_dead_letters(conn: &Connection, ids: &[i64], now: i64) -> StoreResult<usize> {
    let chosen: Vec<i64> = if ids.is_empty() {
        conn.prepare("SELECT id FROM dead_letters ORDER BY id")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    } else {
        let mut v = ids.to_vec();
        v.sort_unstable();
        v
    };
    let mut moved = 0;
    for id in chosen {
        moved += conn
            .prepare_cached(
                "INSERT INTO records (person_id, type, record_time, param, photo, taken_at)
                 SELECT person_id, type, record_time, param, photo, ?2
                   FROM dead_letters WHERE id = ?1",
            )?
            .execute(sql![id, now])?;
        conn.prepare_cached("DELETE FROM dead_letters WHERE id = ?1")?
            .execute([id])?;
    }
    Ok(moved)
}

/// Deletes dead letters for good; `ids` empty means all. Returns how many.
pub fn discard_dead_letters(conn: &Connection, ids: &[i64]) -> StoreResult<usize> {
    if ids.is_empty() {
        return Ok(conn.execute("DELETE FROM dead_letters", [])?);
    }
    let mut n = 0;
    for id in ids {
        n += conn
            .prepare_cached("DELETE FROM dead_letters WHERE id = ?1")?
            .execute([id])?;
    }
    Ok(n)
}

// --- persons and faces -----------------------------------------------------------------------

/// What to do with a person's face in an upsert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaceUpdate {
    /// A verified photo.
    Set { format: PhotoFormat, photo: Vec<u8> },
    /// The person has no photo any more.
    Remove,
    /// Leave the stored face as it is (the new one could not be fetched).
    Keep,
}

/// A person as a roster page delivers it, with the face outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    pub person_id: String,
    pub name: String,
    pub face: FaceUpdate,
}

/// A person as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPerson {
    pub person_id: String,
    pub name: String,
    pub phone: Option<String>,
    pub idcard_no: Option<String>,
    pub face: Option<StoredFace>,
}

/// A stored face; `photo` is loaded only when asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFace {
    pub format: String,
    pub sha256: String,
    pub photo: Option<Vec<u8>>,
}

/// Inserts or updates persons (and their faces), tagging them with `tag` (the taskid of a
/// full roster download, so that [`retain_tagged`] can drop everyone else afterwards).
pub fn upsert_persons(
    conn: &Connection,
    rows: &[PersonRow],
    tag: Option<&str>,
    now: i64,
) -> StoreResult<()> {
    let mut person = conn.prepare_cached(
        "INSERT INTO persons (person_id, name, sync_tag, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (person_id) DO UPDATE SET
            name = excluded.name,
            sync_tag = COALESCE(excluded.sync_tag, persons.sync_tag),
            updated_at = excluded.updated_at",
    )?;
    let mut face = conn.prepare_cached(
        "INSERT OR REPLACE INTO faces (person_id, format, sha256, photo, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut unface = conn.prepare_cached("DELETE FROM faces WHERE person_id = ?1")?;
    for row in rows {
        person.execute(sql![row.person_id, row.name, tag, now])?;
        match &row.face {
            FaceUpdate::Set { format, photo } => {
                let digest = hex::encode(Sha256::digest(photo));
                face.execute(sql![row.person_id, format.as_str(), digest, photo, now])?;
            }
            FaceUpdate::Remove => {
                unface.execute([&row.person_id])?;
            }
            FaceUpdate::Keep => {}
        }
    }
    Ok(())
}

/// Deletes every person not tagged `tag` (end of a T_SEND_PERSON: the list is replaced).
pub fn retain_tagged(conn: &Connection, tag: &str) -> StoreResult<usize> {
    conn.execute(
        "DELETE FROM faces WHERE person_id IN
            (SELECT person_id FROM persons WHERE sync_tag IS NOT ?1)",
        [tag],
    )?;
    Ok(conn.execute("DELETE FROM persons WHERE sync_tag IS NOT ?1", [tag])?)
}

/// Deletes these persons and their faces; returns how many persons were removed.
pub fn delete_persons(conn: &Connection, ids: &[String]) -> StoreResult<usize> {
    let mut n = 0;
    for id in ids {
        conn.prepare_cached("DELETE FROM faces WHERE person_id = ?1")?
            .execute([id])?;
        n += conn
            .prepare_cached("DELETE FROM persons WHERE person_id = ?1")?
            .execute([id])?;
    }
    Ok(n)
}

/// Deletes every person and face.
pub fn clear_persons(conn: &Connection) -> StoreResult<()> {
    conn.execute_batch("DELETE FROM faces; DELETE FROM persons;")?;
    Ok(())
}

/// `(personCount, faceCount)`: persons held, and persons with a face.
pub fn counts(conn: &Connection) -> StoreResult<(u64, u64)> {
    let persons: i64 = conn.query_row("SELECT COUNT(*) FROM persons", [], |r| r.get(0))?;
    let faces: i64 = conn.query_row(
        "SELECT COUNT(*) FROM faces f JOIN persons p ON p.person_id = f.person_id",
        [],
        |r| r.get(0),
    )?;
    Ok((persons.max(0) as u64, faces.max(0) as u64))
}

/// Persons in person-id (text) order after `after`, with their photos when `with_photos`.
pub fn persons_page(
    conn: &Connection,
    after: Option<&str>,
    limit: usize,
    with_photos: bool,
) -> StoreResult<Vec<StoredPerson>> {
    let mut stmt = conn.prepare_cached(
        "SELECT p.person_id, p.name, p.phone, p.idcard_no, f.format, f.sha256,
                CASE WHEN ?3 THEN f.photo END
           FROM persons p LEFT JOIN faces f ON f.person_id = p.person_id
          WHERE p.person_id > ?1 ORDER BY p.person_id LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(
            sql![after.unwrap_or(""), limit as i64, with_photos],
            stored_person,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// One person with the face photo.
pub fn person(conn: &Connection, person_id: &str) -> StoreResult<Option<StoredPerson>> {
    let mut page = persons_page_exact(conn, person_id)?;
    Ok(page.pop())
}

fn persons_page_exact(conn: &Connection, person_id: &str) -> StoreResult<Vec<StoredPerson>> {
    let mut stmt = conn.prepare_cached(
        "SELECT p.person_id, p.name, p.phone, p.idcard_no, f.format, f.sha256, f.photo
           FROM persons p LEFT JOIN faces f ON f.person_id = p.person_id
          WHERE p.person_id = ?1",
    )?;
    let rows = stmt
        .query_map([person_id], stored_person)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// A row of `person_id, name, phone, idcard_no, format, sha256, photo` (faces LEFT JOINed).
fn stored_person(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredPerson> {
    let format: Option<String> = r.get(4)?;
    Ok(StoredPerson {
        person_id: r.get(0)?,
        name: r.get(1)?,
        phone: r.get(2)?,
        idcard_no: r.get(3)?,
        face: match format {
            Some(format) => Some(StoredFace {
                format,
                sha256: r.get(5)?,
                photo: r.get(6)?,
            }),
            None => None,
        },
    })
}

/// Up to `limit` person ids, in order, for choosing who signs in (simulators).
pub fn person_ids(conn: &Connection, limit: usize) -> StoreResult<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT person_id FROM persons ORDER BY person_id LIMIT ?1")?;
    let ids = stmt
        .query_map([limit as i64], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(ids)
}

// --- settings and the task log ---------------------------------------------------------------

pub fn meta(conn: &Connection, key: &str) -> StoreResult<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

pub fn set_meta(conn: &Connection, key: &str, value: &str) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

/// Records a finished task and its status entry (JSON of a `TaskStatus`), unreported.
pub fn log_task(
    conn: &Connection,
    taskid: &str,
    apicode: &str,
    status: u8,
    report: &str,
    now: i64,
) -> StoreResult<()> {
    conn.execute(
        "INSERT OR REPLACE INTO task_log (taskid, apicode, status, report, finished_at, reported)
         VALUES (?1, ?2, ?3, ?4, ?5, 0)",
        sql![taskid, apicode, status, report, now],
    )?;
    Ok(())
}

/// Status entries not yet acknowledged by the platform, oldest first.
pub fn unreported(conn: &Connection) -> StoreResult<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT taskid, report FROM task_log WHERE reported = 0 ORDER BY finished_at, taskid",
    )?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn mark_reported(conn: &Connection, taskids: &[String]) -> StoreResult<()> {
    for id in taskids {
        conn.prepare_cached("UPDATE task_log SET reported = 1 WHERE taskid = ?1")?
            .execute([id])?;
    }
    Ok(())
}

/// A task's logged status (1 done, 2 failed, 3 unsupported), if it finished here.
pub fn task_status(conn: &Connection, taskid: &str) -> StoreResult<Option<u8>> {
    Ok(conn
        .query_row(
            "SELECT status FROM task_log WHERE taskid = ?1",
            [taskid],
            |r| r.get(0),
        )
        .optional()?)
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::photo::sample::SMALL_JPEG;
    use crate::store::StoreHandle;

    fn store() -> (tempfile::TempDir, StoreHandle) {
        let dir = tempfile::tempdir().unwrap();
        let s = StoreHandle::open(dir.path().join("device.db")).unwrap();
        (dir, s)
    }

    #[tokio::test]
    async fn a_failing_write_undoes_only_its_own_work_again_and_again() {
        let (_dir, s) = store();
        let put = |key: String| {
            move |c: &Connection| -> StoreResult<()> {
                c.execute("INSERT INTO meta (key, value) VALUES (?1, 'x')", [&key])?;
                Ok(())
            }
        };
        // Several rounds, so the savepoint statements run again once prepared.
        for round in 0..3 {
            s.submit(put(format!("kept-{round}-a")));
            let failing = put(format!("undone-{round}"));
            s.submit(move |c| {
                failing(c)?;
                Err(StoreError::Corrupt("this write fails after writing".into()))
            });
            s.submit(put(format!("kept-{round}-b")));
            s.flush().await.unwrap();
        }
        let keys = s
            .call(|c| {
                let mut stmt = c.prepare("SELECT key FROM meta WHERE value = 'x' ORDER BY key")?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(
            keys,
            [
                "kept-0-a", "kept-0-b", "kept-1-a", "kept-1-b", "kept-2-a", "kept-2-b"
            ]
        );
    }

    #[tokio::test]
    async fn the_queue_keeps_order_and_moves_refusals_aside() {
        let (_dir, s) = store();
        let recs: Vec<AttendanceRecord> = (0..5)
            .map(|i| AttendanceRecord::face(format!("p{i}"), 1000 + i, Some(SMALL_JPEG.to_vec())))
            .collect();
        let ids = s.call(move |c| enqueue(c, &recs, 1)).await.unwrap();
        assert_eq!(ids.len(), 5);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let loaded = s.call(|c| load_records(c, 0, 3)).await.unwrap();
        assert_eq!(loaded.len(), 3);
        assert_eq!(loaded[0].param.person_id, "p0");
        assert_eq!(loaded[0].photo.as_deref(), Some(SMALL_JPEG));
        let (a, b) = (ids[0], ids[1]);
        s.submit(move |c| ack(c, a));
        s.submit(move |c| dead_letter(c, b, "403_01", "考勤类型有误", 9));
        s.flush().await.unwrap();
        assert_eq!(s.call(queue_len).await.unwrap(), 3);
        let dl = s.call(|c| dead_letters(c, 10)).await.unwrap();
        assert_eq!(dl.len(), 1);
        assert_eq!(
            (dl[0].person_id.as_str(), dl[0].error_code.as_str()),
            ("p1", "403_01")
        );
        assert!(dl[0].has_photo);
        // Requeued at the end, with a new (higher) id.
        assert_eq!(
            s.call(|c| requeue_dead_letters(c, &[], 10)).await.unwrap(),
            1
        );
        let all = s.call(|c| load_records(c, 0, 10)).await.unwrap();
        let people: Vec<&str> = all.iter().map(|r| r.param.person_id.as_str()).collect();
        assert_eq!(people, ["p2", "p3", "p4", "p1"]);
        // Ids are never reused, even after the newest row is deleted.
        let last = all.last().unwrap().id;
        s.submit(move |c| ack(c, last));
        let again = s
            .call(|c| enqueue(c, &[AttendanceRecord::face("x", 1, None)], 1))
            .await
            .unwrap();
        assert!(again[0] > last);
    }

    #[tokio::test]
    async fn a_roster_download_replaces_the_list() {
        let (_dir, s) = store();
        let row = |id: &str, face: FaceUpdate| PersonRow {
            person_id: id.into(),
            name: format!("n{id}"),
            face,
        };
        let jpeg = || FaceUpdate::Set {
            format: PhotoFormat::Jpeg,
            photo: SMALL_JPEG.to_vec(),
        };
        let first = vec![
            row("1", jpeg()),
            row("2", jpeg()),
            row("3", FaceUpdate::Remove),
        ];
        s.call(move |c| upsert_persons(c, &first, Some("t1"), 1))
            .await
            .unwrap();
        assert_eq!(s.call(counts).await.unwrap(), (3, 2));
        let second = vec![row("2", FaceUpdate::Keep), row("4", jpeg())];
        s.call(move |c| upsert_persons(c, &second, Some("t2"), 2))
            .await
            .unwrap();
        assert_eq!(s.call(|c| retain_tagged(c, "t2")).await.unwrap(), 2);
        assert_eq!(s.call(counts).await.unwrap(), (2, 2));
        let p = s.call(|c| person(c, "2")).await.unwrap().unwrap();
        assert_eq!(p.face.unwrap().photo.as_deref(), Some(SMALL_JPEG));
        s.call(|c| delete_persons(c, &["4".to_owned()]))
            .await
            .unwrap();
        assert_eq!(s.call(counts).await.unwrap(), (1, 1));
        let page = s.call(|c| persons_page(c, None, 10, false)).await.unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].face.as_ref().unwrap().photo, None);
        s.call(clear_persons).await.unwrap();
        assert_eq!(s.call(counts).await.unwrap(), (0, 0));
    }

    #[tokio::test]
    async fn a_failing_job_rolls_back_alone() {
        let (_dir, s) = store();
        let bad = s.call(|c| {
            enqueue(c, &[AttendanceRecord::face("a", 1, None)], 1)?;
            c.execute("INSERT INTO nowhere VALUES (1)", [])?;
            Ok(())
        });
        let good = s.call(|c| enqueue(c, &[AttendanceRecord::face("b", 1, None)], 1));
        let (bad, good) = tokio::join!(bad, good);
        assert!(bad.is_err());
        assert!(good.is_ok());
        assert_eq!(s.call(queue_len).await.unwrap(), 1);
    }
}
