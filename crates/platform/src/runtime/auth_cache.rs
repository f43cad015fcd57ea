//! A short-lived read cache for the authentication path, and a hint of which devices have no
//! open task.
//!
//! Every device request needs its device row, the credential its token was issued under and
//! its vendor. Reading them from the database on every heartbeat was most of a heartbeat's
//! cost (BENCHMARKS.md), so they are kept here for [`TTL_MS`]. Changes made through this node
//! (binding, enabling, registering a device, rotating credentials) forget the affected entries
//! at once, and move the directory's epoch, which ends every busy connection's copy of its
//! rows (`pipeline::session`); a change made through another node sharing the database is
//! seen within [`TTL_MS`].
//! Absent rows are never cached, so a device registered elsewhere is found on its first
//! request. Rows are shared (`Arc`), so a hit costs a lock and a reference count, not a copy
//! of every string in the row. Of a device row only what the request path reads is kept
//! ([`DeviceFacts`]: no name, counts or stored address), since every connected device holds
//! its entry for the TTL (BENCHMARKS.md, "idle").
//!
//! **How long.** On PostgreSQL, other nodes may change the rows, so a row is trusted for
//! [`TTL_MS`]. On SQLite this node is the only one (the store's lock refuses a second
//! process), and every change of a cached row goes through it and forgets the entry, so rows
//! are kept for [`SINGLE_NODE_TTL_MS`], which only bounds how long a row nobody asks for stays
//! in memory. With a 1 s TTL, 1,000 busy devices re-read 1,000 device rows a second, in bursts
//! (they authenticated together): a tail of queued lookups that showed as heartbeat p99
//! (BENCHMARKS.md, issue 18). It stays shorter than a heartbeat's 30 s period, so an idle
//! gate's row is swept between its heartbeats rather than held (60 s cost ~120 B per idle
//! device).
//!
//! **Task hints.** After the rows, a heartbeat's remaining database read was its due-task
//! query, and almost every heartbeat finds nothing. A device whose query found no *open* task
//! at all (neither pending nor delivered) is remembered here, and its heartbeats answer an
//! empty list without a query until one of these forgets it:
//! - a task is created for it through this node ([`Directory::tasks_changed`], called by
//!   `services::tasks::create` after the task is committed);
//! - another node announces a task for it (PostgreSQL `NOTIFY`, `cluster`), or the
//!   announcements stop being trustworthy: while the listener is not connected no hint is
//!   used, and every hint is dropped when it (re)connects or fails;
//! - the hint is older than the redelivery period. A task created and pushed by *another*
//!   node is announced to nobody, but it is delivered there, and a delivered task is only due
//!   again after that period: a hint never outlives it, so redelivery is never missed.
//!
//! A hint is only stored when no task change happened between the query and the store (an
//! epoch checked under the lock), so a task created while a heartbeat's query runs is never
//! hidden by that query's stale answer.
//!
//! **Sign-in facts.** Flagging a sign-in (`services::attendance::flags`) asks whether its
//! person is enrolled, whether they are on the device's project roster, and for the project's
//! fence. A 60,000-record backlog asked the database that once per record (BENCHMARKS.md,
//! "backlog"), so the *positive* answers are kept here for [`TTL_MS`] like the rows above:
//! an unknown person or someone off the roster is asked again every time, so an enrolment or
//! a join counts from the very next record. Leaving a project or being blacklisted through
//! this node forgets the roster answers at once ([`Directory::forget_rosters`]); through
//! another node it is seen within [`TTL_MS`] (a record taken in that second is not flagged
//! `not_authorised`). Workers are never deleted, so "enrolled" cannot go stale.

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rollcall_protocol::sign::SignMemo;

use crate::runtime::util::FastMap;
use crate::store::{
    Credential, Device, DeviceKind, Direction, Project, Store, StoreResult, Vendor,
};

/// How long a cached row is trusted when other nodes share the database.
pub const TTL_MS: i64 = 1000;

/// How long a cached row is kept when this node makes every change (SQLite).
pub const SINGLE_NODE_TTL_MS: i64 = 10_000;

/// Hints kept before expired ones are swept (then the threshold follows the live count).
const HINT_SWEEP_MIN: usize = 1024;

/// Entries a cache holds before expired ones are swept (then the threshold follows the live
/// count), so rows nobody asks for again do not stay forever.
const CACHE_SWEEP_MIN: usize = 4096;

#[derive(Debug)]
struct Cache<K, V> {
    entries: Mutex<CacheState<K, V>>,
    ttl_ms: i64,
}

#[derive(Debug)]
struct CacheState<K, V> {
    map: FastMap<K, (i64, Arc<V>)>,
    sweep_at: usize,
}

impl<K: Eq + Hash, V> Cache<K, V> {
    fn new(ttl_ms: i64) -> Self {
        Cache {
            entries: Mutex::new(CacheState {
                map: FastMap::default(),
                sweep_at: CACHE_SWEEP_MIN,
            }),
            ttl_ms,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState<K, V>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the entry for `key` was stored, if it is still fresh at `now`.
    fn stored_at<Q>(&self, key: &Q, now: i64) -> Option<i64>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.lock();
        let (at, _) = entries.map.get(key)?;
        fresh(*at, now, self.ttl_ms).then_some(*at)
    }

    fn get<Q>(&self, key: &Q, now: i64) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.lock();
        let (at, v) = entries.map.get(key)?;
        fresh(*at, now, self.ttl_ms).then(|| Arc::clone(v))
    }

    /// [`Self::get`] with the map's own key.
    fn get_keyed<Q>(&self, key: &Q, now: i64) -> Option<(K, Arc<V>)>
    where
        K: Borrow<Q> + Clone,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.lock();
        let (k, (at, v)) = entries.map.get_key_value(key)?;
        fresh(*at, now, self.ttl_ms).then(|| (k.clone(), Arc::clone(v)))
    }

    fn put(&self, key: K, value: Arc<V>, now: i64) {
        let ttl = self.ttl_ms;
        let mut entries = self.lock();
        if entries.map.len() >= entries.sweep_at {
            entries.map.retain(|_, (at, _)| fresh(*at, now, ttl));
            entries.sweep_at = (entries.map.len() * 2).max(CACHE_SWEEP_MIN);
        }
        entries.map.insert(key, (now, value));
    }

    /// Drops every expired entry, and gives back the table's memory when it is mostly empty
    /// (after a burst of registrations, say).
    fn sweep(&self, now: i64) {
        let ttl = self.ttl_ms;
        let mut entries = self.lock();
        entries.map.retain(|_, (at, _)| fresh(*at, now, ttl));
        if entries.map.capacity() > 4 * entries.map.len().max(64) {
            entries.map.shrink_to_fit();
        }
        entries.sweep_at = (entries.map.len() * 2).max(CACHE_SWEEP_MIN);
    }

    fn forget<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().map.remove(key);
    }

    fn clear(&self) {
        self.lock().map.clear();
    }
}

/// A vendor row as the directory keeps it, with the sign of the answer its devices mostly get
/// to a heartbeat (no task due). The memo lives and goes with the row, so with the secret it
/// signs with: a credential rotation forgets the row ([`Directory::forget_vendor`]), and a
/// row read again starts a new memo.
#[derive(Debug)]
pub struct CachedVendor {
    pub row: Vendor,
    /// For C_HEARTBEAT answers only (their text repeats; other answers rarely do).
    pub heartbeat_sign: SignMemo,
}

/// What the request path reads of a device row. The sn is not here: a request knows it (the
/// token owner's, shared with the token cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceFacts {
    pub vendor_id: i64,
    /// `None`: unbound.
    pub project_id: Option<i64>,
    pub kind: DeviceKind,
    pub direction: Direction,
    pub enabled: bool,
    /// As stored (presence writes behind), for the offline→online rule of a first heartbeat.
    pub last_heartbeat_at: Option<i64>,
}

impl From<&Device> for DeviceFacts {
    fn from(d: &Device) -> Self {
        DeviceFacts {
            vendor_id: d.vendor_id,
            project_id: d.project_id,
            kind: d.kind,
            direction: d.direction,
            enabled: d.enabled,
            last_heartbeat_at: d.last_heartbeat_at,
        }
    }
}

/// Whether an entry stored at `at` may still be used at `now`.
fn fresh(at: i64, now: i64, ttl_ms: i64) -> bool {
    now >= at && now - at <= ttl_ms
}

/// Devices whose last due-task query found no open task, and since when.
#[derive(Debug, Default)]
struct HintState {
    /// Bumped by every forget; a query's answer is stored only if it did not move meanwhile.
    epoch: u64,
    /// Keyed by the sn the token cache and the registry share (one copy per device).
    idle_since: FastMap<Arc<str>, i64>,
    /// Sweep expired hints when the map grows past this.
    sweep_at: usize,
}

/// The cache; one per platform instance, in its state.
#[derive(Debug)]
pub struct Directory {
    /// Keyed by the sn C_AUTH then gives the token cache and the registry
    /// ([`Directory::device_with_sn`]): one copy of it per connected device.
    devices: Cache<Arc<str>, DeviceFacts>,
    credentials: Cache<String, Credential>,
    vendors: Cache<i64, CachedVendor>,
    /// Person ids known to be enrolled.
    enrolled: Cache<i64, ()>,
    /// (project id, person id) known to be on the active roster.
    rostered: Cache<(i64, i64), ()>,
    projects: Cache<i64, Project>,
    hints: Mutex<HintState>,
    /// PostgreSQL only: task announcements of other nodes are being received.
    notices_live: AtomicBool,
    /// Bumped after every forgotten device or vendor row: what a connection remembers of its
    /// device (`pipeline::session`) holds only while this has not moved.
    epoch: AtomicU64,
    ttl_ms: i64,
}

impl Default for Directory {
    /// Rows trusted for [`TTL_MS`]: safe with other nodes.
    fn default() -> Self {
        Directory::with_ttl(TTL_MS)
    }
}

impl Directory {
    /// The cache for a store of `backend` ([`Store::backend`]): see the module's "How long".
    pub fn for_backend(backend: &str) -> Self {
        match backend {
            "sqlite" => Directory::with_ttl(SINGLE_NODE_TTL_MS),
            _ => Directory::with_ttl(TTL_MS),
        }
    }

    fn with_ttl(ttl_ms: i64) -> Self {
        Directory {
            devices: Cache::new(ttl_ms),
            credentials: Cache::new(ttl_ms),
            vendors: Cache::new(ttl_ms),
            enrolled: Cache::new(ttl_ms),
            rostered: Cache::new(ttl_ms),
            projects: Cache::new(ttl_ms),
            hints: Mutex::new(HintState {
                sweep_at: HINT_SWEEP_MIN,
                ..HintState::default()
            }),
            notices_live: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            ttl_ms,
        }
    }
}

impl Directory {
    pub async fn device(
        &self,
        store: &dyn Store,
        sn: &str,
        now: i64,
    ) -> StoreResult<Option<Arc<DeviceFacts>>> {
        Ok(self.device_with_sn(store, sn, now).await?.map(|(_, d)| d))
    }

    /// [`Self::device`] with the directory's copy of the sn, for a caller that keeps the sn
    /// (C_AUTH hands it to the token cache and the registry), so a connected device's sn is
    /// held once, not once more here (BENCHMARKS.md, session 23).
    pub async fn device_with_sn(
        &self,
        store: &dyn Store,
        sn: &str,
        now: i64,
    ) -> StoreResult<Option<(Arc<str>, Arc<DeviceFacts>)>> {
        if let Some(found) = self.devices.get_keyed(sn, now) {
            return Ok(Some(found));
        }
        let Some(d) = store.device(sn).await? else {
            return Ok(None);
        };
        let d = Arc::new(DeviceFacts::from(&d));
        let sn: Arc<str> = sn.into();
        self.devices.put(Arc::clone(&sn), Arc::clone(&d), now);
        Ok(Some((sn, d)))
    }

    pub async fn credential(
        &self,
        store: &dyn Store,
        access_id: &str,
        now: i64,
    ) -> StoreResult<Option<Arc<Credential>>> {
        if let Some(c) = self.credentials.get(access_id, now) {
            return Ok(Some(c));
        }
        let Some(c) = store.credential(access_id).await? else {
            return Ok(None);
        };
        let c = Arc::new(c);
        self.credentials
            .put(access_id.to_owned(), Arc::clone(&c), now);
        Ok(Some(c))
    }

    pub async fn vendor(
        &self,
        store: &dyn Store,
        id: i64,
        now: i64,
    ) -> StoreResult<Option<Arc<CachedVendor>>> {
        if let Some(v) = self.vendors.get(&id, now) {
            return Ok(Some(v));
        }
        let Some(row) = store.vendor(id).await? else {
            return Ok(None);
        };
        let v = Arc::new(CachedVendor {
            row,
            heartbeat_sign: SignMemo::default(),
        });
        self.vendors.put(id, Arc::clone(&v), now);
        Ok(Some(v))
    }

    /// How long a row is trusted.
    pub fn ttl_ms(&self) -> i64 {
        self.ttl_ms
    }

    /// Moves on every forgotten device or vendor row. Read it **before** the rows a copy is
    /// made of: a copy is current while this has not moved and its oldest row is fresh.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// When the oldest of a request's three rows (its device, the credential its token was
    /// issued under, the device's vendor) was stored; `None` unless all three are cached
    /// and fresh at `now`.
    pub fn rows_since(&self, sn: &str, access_id: &str, vendor_id: i64, now: i64) -> Option<i64> {
        let device = self.devices.stored_at(sn, now)?;
        let credential = self.credentials.stored_at(access_id, now)?;
        let vendor = self.vendors.stored_at(&vendor_id, now)?;
        Some(device.min(credential).min(vendor))
    }

    /// Whether the person is enrolled (only "yes" is remembered).
    pub async fn enrolled(&self, store: &dyn Store, person_id: i64, now: i64) -> StoreResult<bool> {
        if self.enrolled.get(&person_id, now).is_some() {
            return Ok(true);
        }
        let known = store.worker(person_id).await?.is_some();
        if known {
            self.enrolled.put(person_id, Arc::new(()), now);
        }
        Ok(known)
    }

    /// Whether the person is on the project's active roster (only "yes" is remembered).
    pub async fn on_roster(
        &self,
        store: &dyn Store,
        project_id: i64,
        person_id: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let key = (project_id, person_id);
        if self.rostered.get(&key, now).is_some() {
            return Ok(true);
        }
        let on = store.on_roster(project_id, person_id).await?;
        if on {
            self.rostered.put(key, Arc::new(()), now);
        }
        Ok(on)
    }

    pub async fn project(
        &self,
        store: &dyn Store,
        id: i64,
        now: i64,
    ) -> StoreResult<Option<Arc<Project>>> {
        if let Some(p) = self.projects.get(&id, now) {
            return Ok(Some(p));
        }
        let Some(p) = store.project(id).await? else {
            return Ok(None);
        };
        let p = Arc::new(p);
        self.projects.put(id, Arc::clone(&p), now);
        Ok(Some(p))
    }

    /// Drops the rows that have expired, so a row nobody asks for again (a device that went
    /// quiet, a worker who left) does not stay in memory. Called by the housekeeper.
    pub fn sweep(&self, now: i64) {
        self.devices.sweep(now);
        self.credentials.sweep(now);
        self.vendors.sweep(now);
        self.enrolled.sweep(now);
        self.rostered.sweep(now);
        self.projects.sweep(now);
    }

    /// Someone left a roster or was blacklisted through this node.
    pub fn forget_rosters(&self) {
        self.rostered.clear();
    }

    /// A device row changed (or was created) through this node.
    pub fn forget_device(&self, sn: &str) {
        self.devices.forget(sn);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// A vendor's credentials changed through this node.
    pub fn forget_vendor(&self, id: i64) {
        self.vendors.forget(&id);
        // Rotation revokes a credential by access id; drop them all rather than track which.
        self.credentials.clear();
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    // --- task hints ----------------------------------------------------------------------

    fn hints(&self) -> std::sync::MutexGuard<'_, HintState> {
        self.hints.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the device is known to have no open task: its last query found none, no task
    /// change was heard of since, and that was less than `max_age_ms` ago. `backend` is the
    /// store's; on PostgreSQL hints are only trusted while other nodes' announcements arrive.
    pub fn no_open_tasks(&self, backend: &str, sn: &str, now: i64, max_age_ms: i64) -> bool {
        if backend == "postgres" && !self.notices_live.load(Ordering::Acquire) {
            return false;
        }
        self.hints()
            .idle_since
            .get(sn)
            .is_some_and(|&at| now >= at && now - at < max_age_ms)
    }

    /// The current task epoch: read it before a due-task query and pass it to
    /// [`Directory::note_no_open_tasks`] with the answer.
    pub fn task_epoch(&self) -> u64 {
        self.hints().epoch
    }

    /// Remembers that a query begun at `epoch` found no open task for the device (ignored if
    /// a task change was heard of since the query began).
    pub fn note_no_open_tasks(&self, sn: &Arc<str>, epoch: u64, now: i64, max_age_ms: i64) {
        let mut h = self.hints();
        if h.epoch != epoch {
            return;
        }
        if h.idle_since.len() >= h.sweep_at {
            h.idle_since
                .retain(|_, &mut at| now >= at && now - at < max_age_ms);
            h.sweep_at = (h.idle_since.len() * 2).max(HINT_SWEEP_MIN);
        }
        match h.idle_since.get_mut(&**sn) {
            Some(at) => *at = now,
            None => {
                h.idle_since.insert(Arc::clone(sn), now);
            }
        }
    }

    /// A task was created for the device (here, or announced by another node).
    pub fn tasks_changed(&self, sn: &str) {
        let mut h = self.hints();
        h.epoch = h.epoch.wrapping_add(1);
        h.idle_since.remove(sn);
    }

    /// Other nodes' task announcements are (`true`) or are not (`false`) being received.
    /// Either way every hint is dropped: announcements may have been missed.
    pub fn task_notices(&self, live: bool) {
        {
            let mut h = self.hints();
            h.epoch = h.epoch.wrapping_add(1);
            h.idle_since.clear();
        }
        self.notices_live.store(live, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_is_dropped_by_a_task_change_and_by_age() {
        let d = Directory::default();
        let e = d.task_epoch();
        d.note_no_open_tasks(&"a".into(), e, 1_000, 600_000);
        assert!(d.no_open_tasks("sqlite", "a", 2_000, 600_000));
        assert!(!d.no_open_tasks("sqlite", "a", 601_000, 600_000), "too old");
        assert!(!d.no_open_tasks("sqlite", "b", 2_000, 600_000));
        d.tasks_changed("a");
        assert!(!d.no_open_tasks("sqlite", "a", 2_000, 600_000));
    }

    #[test]
    fn a_single_node_keeps_rows_until_it_changes_them_and_a_shared_database_for_a_second() {
        let single = Directory::for_backend("sqlite");
        let shared = Directory::for_backend("postgres");
        for d in [&single, &shared] {
            d.rostered.put((1, 2), Arc::new(()), 1_000);
        }
        let later = 1_001 + TTL_MS;
        assert!(single.rostered.get(&(1, 2), later).is_some());
        assert!(
            shared.rostered.get(&(1, 2), later).is_none(),
            "another node may have changed it"
        );
        // A change through this node is seen at once.
        single.forget_rosters();
        assert!(single.rostered.get(&(1, 2), 1_000).is_none());
        single.rostered.put((1, 2), Arc::new(()), 1_000);
        assert!(
            single
                .rostered
                .get(&(1, 2), 1_001 + SINGLE_NODE_TTL_MS)
                .is_none()
        );
    }

    #[test]
    fn cached_rows_expire_and_expired_ones_are_swept() {
        let c: Cache<i64, ()> = Cache::new(TTL_MS);
        c.put(1, Arc::new(()), 1_000);
        assert!(c.get(&1, 1_000 + TTL_MS).is_some());
        assert!(c.get(&1, 1_001 + TTL_MS).is_none(), "expired");
        assert!(c.get(&1, 999).is_none(), "clock went back");
        for k in 0..CACHE_SWEEP_MIN as i64 {
            c.put(k, Arc::new(()), 1_000);
        }
        // The next put at a later time sweeps every expired entry.
        c.put(-1, Arc::new(()), 1_001 + TTL_MS);
        assert_eq!(c.lock().map.len(), 1);
        // The housekeeper's sweep drops it once it has expired, and gives the table back.
        c.sweep(1_001 + TTL_MS);
        assert_eq!(c.lock().map.len(), 1, "still fresh");
        c.sweep(1_002 + 2 * TTL_MS);
        assert!(c.lock().map.is_empty());
        assert!(c.lock().map.capacity() < CACHE_SWEEP_MIN);
    }

    #[test]
    fn an_answer_from_before_a_task_change_is_not_stored() {
        let d = Directory::default();
        let e = d.task_epoch();
        // A task is created while the query runs.
        d.tasks_changed("a");
        d.note_no_open_tasks(&"a".into(), e, 1_000, 600_000);
        assert!(!d.no_open_tasks("sqlite", "a", 1_000, 600_000));
    }

    #[test]
    fn on_postgres_hints_need_live_announcements() {
        let d = Directory::default();
        d.note_no_open_tasks(&"a".into(), d.task_epoch(), 1_000, 600_000);
        assert!(!d.no_open_tasks("postgres", "a", 1_000, 600_000));
        d.task_notices(true);
        assert!(!d.no_open_tasks("postgres", "a", 1_000, 600_000), "dropped");
        d.note_no_open_tasks(&"a".into(), d.task_epoch(), 1_000, 600_000);
        assert!(d.no_open_tasks("postgres", "a", 1_000, 600_000));
        d.task_notices(false);
        d.note_no_open_tasks(&"a".into(), d.task_epoch(), 1_000, 600_000);
        assert!(!d.no_open_tasks("postgres", "a", 1_000, 600_000));
    }
}
