//! [`FaultyStore`]: a [`Store`] wrapper that fails on demand, for tests of the `500_01` paths.
//!
//! It implements every aggregate trait of [`super::traits`], one `delegate!` block each.
//! Every method delegates to the inner store unless a switch is on: [`FaultyStore::fail_writes`]
//! fails the methods that change data, [`FaultyStore::fail_all`] fails every method (reads and
//! `ping` included) with [`StoreError::Injected`]. `backend()` never fails.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use super::console::*;
use super::prelude::*;
use super::{StoreError, StoreResult, model::*};

/// Wraps a store; see the module docs.
#[derive(Debug)]
pub struct FaultyStore<S> {
    inner: S,
    writes: AtomicBool,
    all: AtomicBool,
}

/// What a method does, for choosing which ones fail.
#[derive(Clone, Copy)]
enum Access {
    Read,
    Write,
}

impl<S> FaultyStore<S> {
    pub fn new(inner: S) -> Self {
        FaultyStore {
            inner,
            writes: AtomicBool::new(false),
            all: AtomicBool::new(false),
        }
    }

    /// Makes every method that changes data fail (or work again).
    pub fn fail_writes(&self, on: bool) {
        self.writes.store(on, Ordering::SeqCst);
    }

    /// Makes every method fail (or work again).
    pub fn fail_all(&self, on: bool) {
        self.all.store(on, Ordering::SeqCst);
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn check(&self, access: Access) -> StoreResult<()> {
        let fail = self.all.load(Ordering::SeqCst)
            || (matches!(access, Access::Write) && self.writes.load(Ordering::SeqCst));
        if fail {
            Err(StoreError::Injected)
        } else {
            Ok(())
        }
    }
}

/// Generates a delegating impl of a trait: its non-failing items, then
/// `Read|Write fn name(args) -> ret;` per async method.
macro_rules! delegate {
    (impl $trait:ident { $($item:item)* }
     $($access:ident fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        #[async_trait]
        impl<S: Store> $trait for FaultyStore<S> {
            $($item)*

            $(async fn $name(&self $(, $arg: $ty)*) -> $ret {
                self.check(Access::$access)?;
                self.inner.$name($($arg),*).await
            })*
        }
    };
}

delegate! {
    impl Store {
        fn backend(&self) -> &'static str {
            self.inner.backend()
        }
    }
    Read fn ping(&self) -> StoreResult<()>;
    Write fn announce_tasks(&self, sn: &str) -> StoreResult<()>;
}

delegate! {
    impl VendorStore {}
    Write fn create_vendor(&self, vendor: &Vendor) -> StoreResult<()>;
    Read fn vendor(&self, id: i64) -> StoreResult<Option<Vendor>>;
    Read fn vendors(&self) -> StoreResult<Vec<Vendor>>;
    Read fn credential(&self, access_id: &str) -> StoreResult<Option<Credential>>;
    Write fn rotate_credentials(&self, vendor_id: i64, new: &Credential) -> StoreResult<()>;
    Write fn reseal_secrets(&self) -> StoreResult<usize>;

    Write fn create_firmware(&self, firmware: &Firmware) -> StoreResult<()>;
    Read fn firmware(&self, id: i64) -> StoreResult<Option<Firmware>>;
    Read fn firmwares(&self) -> StoreResult<Vec<Firmware>>;
}

delegate! {
    impl DeviceStore {}
    Write fn insert_token(&self, token: &str, sn: &str, access_id: &str, now: i64)
        -> StoreResult<()>;
    Read fn token(&self, token: &str) -> StoreResult<Option<(String, String, i64)>>;
    Write fn touch_tokens(&self, touches: &[(String, i64)]) -> StoreResult<()>;
    Write fn delete_idle_tokens(&self, before: i64) -> StoreResult<u64>;

    Write fn create_project(&self, project: &Project) -> StoreResult<()>;
    Read fn project(&self, id: i64) -> StoreResult<Option<Project>>;
    Read fn projects(&self) -> StoreResult<Vec<Project>>;

    Write fn create_device(&self, device: &Device) -> StoreResult<()>;
    Read fn device(&self, sn: &str) -> StoreResult<Option<Device>>;
    Write fn claim_session(&self, sn: &str, node: &str, now: i64) -> StoreResult<i64>;
    Read fn device_session(&self, sn: &str) -> StoreResult<Option<DeviceSession>>;
    Read fn devices(&self, project_id: Option<i64>) -> StoreResult<Vec<Device>>;
    Write fn update_device(&self, sn: &str, patch: &DevicePatch) -> StoreResult<Device>;
    Write fn set_device_counts(&self, sn: &str, persons: i64, faces: i64) -> StoreResult<()>;
    Write fn record_presence(&self, updates: &[PresenceUpdate], transitions: &[PresenceTransition])
        -> StoreResult<()>;
    Read fn presence_history(&self, sn: &str, limit: u32) -> StoreResult<Vec<PresenceTransition>>;
}

delegate! {
    impl WorkerStore {}
    Write fn create_worker(&self, worker: &Worker) -> StoreResult<()>;
    Read fn worker(&self, person_id: i64) -> StoreResult<Option<Worker>>;
    Read fn worker_by_idcard(&self, idcard_no: &str) -> StoreResult<Option<Worker>>;
    Read fn workers_by_ids(&self, person_ids: &[i64]) -> StoreResult<Vec<Worker>>;
    Read fn workers(&self, after: Option<i64>, limit: u32) -> StoreResult<Vec<Worker>>;
    Read fn workers_in_projects(&self, project_ids: &[i64], after: Option<i64>, limit: u32)
        -> StoreResult<Vec<Worker>>;
    Write fn update_worker(&self, person_id: i64, patch: &WorkerPatch)
        -> StoreResult<Option<Worker>>;
}

delegate! {
    impl RosterStore {}
    Write fn add_project_workers(&self, project_id: i64, person_ids: &[i64], now: i64)
        -> StoreResult<()>;
    Write fn remove_project_worker(&self, project_id: i64, person_id: i64, now: i64)
        -> StoreResult<bool>;
    Read fn roster(&self, project_id: i64) -> StoreResult<Vec<i64>>;
    Read fn on_roster(&self, project_id: i64, person_id: i64) -> StoreResult<bool>;

    Write fn create_team(&self, team: &Team) -> StoreResult<()>;
    Read fn team(&self, id: i64) -> StoreResult<Option<Team>>;
    Read fn teams(&self, project_id: i64) -> StoreResult<Vec<Team>>;
    Read fn members(&self, project_id: i64) -> StoreResult<Vec<Member>>;
    Read fn memberships(&self, person_id: i64) -> StoreResult<Vec<Member>>;
    Write fn set_member_details(&self, project_id: i64, person_id: i64, team_id: Option<i64>,
        trade: Option<&str>) -> StoreResult<bool>;

    Write fn blacklist_worker(&self, entry: &BlacklistEntry) -> StoreResult<()>;
    Write fn unblacklist_worker(&self, person_id: i64) -> StoreResult<bool>;
    Read fn blacklist_entry(&self, person_id: i64) -> StoreResult<Option<BlacklistEntry>>;
    Read fn blacklist(&self) -> StoreResult<Vec<BlacklistEntry>>;
}

delegate! {
    impl TaskStore {}
    Write fn create_task(&self, task: &NewTask) -> StoreResult<()>;
    Write fn merge_into_pending_update(&self, sn: &str, person_ids: &[i64])
        -> StoreResult<Option<i64>>;
    Read fn task(&self, taskid: i64) -> StoreResult<Option<Task>>;
    Read fn tasks_of_device(&self, sn: &str, limit: u32) -> StoreResult<Vec<Task>>;
    Read fn due_tasks(&self, sn: &str, redeliver_before: i64, limit: u32)
        -> StoreResult<Vec<Task>>;
    Write fn mark_delivered(&self, taskids: &[i64], now: i64) -> StoreResult<Vec<i64>>;
    Write fn claim_delivery(&self, taskid: i64, state: TaskState, delivered_at: Option<i64>,
        now: i64) -> StoreResult<Option<i64>>;
    Write fn release_delivery(&self, taskid: i64, state: TaskState, delivered_at: Option<i64>,
        claimed: i64) -> StoreResult<()>;
    Write fn finish_task(&self, taskid: i64, state: TaskState, now: i64,
        sync: Option<&SyncReport>) -> StoreResult<bool>;
    Read fn task_persons(&self, taskid: i64, offset: u32, limit: u32)
        -> StoreResult<(Vec<i64>, u32)>;
    Write fn record_sync(&self, report: &SyncReport) -> StoreResult<()>;
    Read fn person_sync(&self, sn: &str) -> StoreResult<Vec<PersonSync>>;
    Read fn task_failures(&self, taskid: i64)
        -> StoreResult<(Vec<SyncFailure>, Vec<SyncFailure>)>;
    Write fn put_reconcile_page(&self, page: &ReconcilePage) -> StoreResult<()>;
    Read fn reconcile_pages(&self, taskid: i64) -> StoreResult<Vec<ReconcilePage>>;
    Read fn open_task_count(&self) -> StoreResult<i64>;
}

delegate! {
    impl AttendanceStore {}
    Write fn insert_attendance(&self, batch: Vec<NewAttendance>) -> StoreResult<Vec<Inserted>>;
    Read fn attendance(&self, query: &AttendanceQuery) -> StoreResult<Vec<Attendance>>;
    Read fn attendance_record(&self, record_id: i64) -> StoreResult<Option<Attendance>>;
}

delegate! {
    impl AccountStore {}
    Write fn create_user(&self, user: &User) -> StoreResult<()>;
    Read fn user(&self, id: i64) -> StoreResult<Option<User>>;
    Read fn user_by_name(&self, username: &str) -> StoreResult<Option<User>>;
    Read fn users(&self) -> StoreResult<Vec<User>>;
    Write fn update_user(&self, id: i64, patch: &UserPatch) -> StoreResult<User>;
    Write fn set_user_projects(&self, user_id: i64, project_ids: &[i64]) -> StoreResult<()>;
    Read fn user_projects(&self, user_id: i64) -> StoreResult<Vec<i64>>;

    Write fn create_session(&self, session: &SessionRow) -> StoreResult<()>;
    Read fn session(&self, token_hash: &str) -> StoreResult<Option<SessionRow>>;
    Write fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
    Write fn delete_user_sessions(&self, user_id: i64) -> StoreResult<()>;
    Write fn delete_expired_sessions(&self, now: i64) -> StoreResult<u64>;
    Write fn create_api_token(&self, token: &ApiTokenRow) -> StoreResult<()>;
    Read fn api_token(&self, token_hash: &str) -> StoreResult<Option<ApiTokenRow>>;
    Read fn api_tokens(&self, user_id: i64) -> StoreResult<Vec<ApiTokenRow>>;
    Write fn touch_api_token(&self, id: i64, now: i64) -> StoreResult<()>;
    Write fn revoke_api_token(&self, user_id: i64, id: i64, now: i64) -> StoreResult<bool>;

    Write fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    Read fn audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>>;
}

delegate! {
    impl UplinkStore {}
    Write fn put_uplink_config(&self, config: &UplinkConfig, backfill_from: i64)
        -> StoreResult<()>;
    Read fn uplink_config(&self, project_id: i64) -> StoreResult<Option<UplinkConfig>>;
    Read fn enabled_uplinks(&self) -> StoreResult<Vec<UplinkConfig>>;
    Write fn take_uplink_lease(&self, project_id: i64, owner: &str, now: i64, until: i64)
        -> StoreResult<bool>;
    Write fn record_uplink_attempt(&self, project_id: i64, result: Result<i64, (String, i64)>)
        -> StoreResult<()>;
    Read fn uplink_in_flight(&self, project_id: i64) -> StoreResult<Vec<UplinkItem>>;
    Read fn uplink_due(&self, project_id: i64, now: i64, limit: u32)
        -> StoreResult<Vec<UplinkItem>>;
    Write fn uplink_mark_sending(&self, ids: &[i64], request: &str, now: i64)
        -> StoreResult<()>;
    Write fn uplink_mark_sent(&self, ids: &[i64], request: &str, serial: &str)
        -> StoreResult<()>;
    Write fn uplink_settle(&self, ids: &[i64], outcome: &UplinkOutcome, now: i64,
        team_sys_no: Option<(i64, i64)>) -> StoreResult<()>;
    Read fn uplink_team_sys_no(&self, team_id: i64) -> StoreResult<Option<i64>>;
    Read fn uplink_items(&self, project_id: i64, state: Option<UplinkState>,
        before_id: Option<i64>, limit: u32) -> StoreResult<Vec<UplinkItem>>;
    Read fn uplink_items_of(&self, kind: UplinkKind, ref_id: i64)
        -> StoreResult<Vec<UplinkItem>>;
    Read fn uplink_stats(&self, project_id: i64, day: (i64, i64)) -> StoreResult<UplinkStats>;
    Write fn uplink_requeue_refused(&self, project_id: i64, now: i64) -> StoreResult<u64>;
    Write fn uplink_wake_person(&self, person_id: i64) -> StoreResult<()>;
    Read fn worker_national(&self, person_id: i64) -> StoreResult<Option<WorkerNational>>;
    Read fn worker_nationals(&self, person_ids: &[i64]) -> StoreResult<Vec<WorkerNational>>;
    Write fn put_worker_national(&self, data: &WorkerNational) -> StoreResult<()>;
    Write fn edit_worker(&self, person_id: i64, patch: &WorkerPatch, data: &WorkerNational)
        -> StoreResult<Option<Worker>>;
    Read fn dictionary_entries(&self) -> StoreResult<Vec<DictionaryEntry>>;
    Write fn put_dictionary_entry(&self, entry: &DictionaryEntry) -> StoreResult<()>;
}

delegate! {
    impl WebhookStore {}
    Write fn create_webhook(&self, endpoint: &WebhookEndpoint) -> StoreResult<()>;
    Read fn webhook(&self, id: i64) -> StoreResult<Option<WebhookEndpoint>>;
    Read fn webhooks(&self) -> StoreResult<Vec<WebhookEndpoint>>;
    Write fn disable_webhook(&self, id: i64) -> StoreResult<bool>;
    Write fn take_webhook_lease(&self, id: i64, owner: &str, now: i64, until: i64)
        -> StoreResult<bool>;
    Read fn webhook_due(&self, endpoint_id: i64, limit: u32) -> StoreResult<Vec<WebhookDelivery>>;
    Write fn record_webhook_attempt(&self, delivery: &WebhookDelivery, state: &str, now: i64,
        retry_at: i64) -> StoreResult<()>;
    Read fn webhook_deliveries(&self, endpoint_id: i64, before_id: Option<i64>, limit: u32)
        -> StoreResult<Vec<WebhookDelivery>>;
}
