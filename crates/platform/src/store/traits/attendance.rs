//! [`AttendanceStore`]: attendance records.

use async_trait::async_trait;

use crate::store::StoreResult;
use crate::store::model::*;

#[async_trait]
pub trait AttendanceStore: Send + Sync + 'static {
    // --- attendance ----------------------------------------------------------------------
    /// Inserts a batch in one transaction (group commit). A record whose key is already
    /// stored — or appears earlier in the batch — is a duplicate: nothing new is stored and
    /// the first record's id is returned. The batch is taken whole: SQLite's group commit
    /// hands it to a thread of its own.
    async fn insert_attendance(&self, batch: Vec<NewAttendance>) -> StoreResult<Vec<Inserted>>;
    async fn attendance(&self, query: &AttendanceQuery) -> StoreResult<Vec<Attendance>>;
    async fn attendance_record(&self, record_id: i64) -> StoreResult<Option<Attendance>>;
}
