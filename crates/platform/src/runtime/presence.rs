//! Online/offline state of devices (ZJ-HB-03 online window, ZJ-HB-04 what is recorded).
//!
//! A device is online while its last heartbeat is younger than `offline_after`. Heartbeats
//! update memory only; the housekeeper writes the latest state and every transition behind,
//! in one transaction per flush (within `flush_interval`), so heartbeats cost no write and
//! the online/offline history is still durable within seconds.
//!
//! Every heartbeating device has an entry for as long as this process runs, so entries are
//! compact (the idle-memory target, BENCHMARKS.md): the sn is the one the token cache and the
//! registry share, firmware versions are interned behind a thin pointer (a site's gates
//! mostly run the same one), and a plain IPv4 address is kept inline as its four bytes. An
//! entry is 40 bytes; the table's buckets are what a device costs here, twice over while the
//! table is half full after it doubles (BENCHMARKS.md, session 23).

use std::borrow::Borrow;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use crate::runtime::util::{FastMap, FastSet, intern};
use crate::store::{PresenceTransition, PresenceUpdate, Store, StoreResult};

#[derive(Debug, Clone)]
struct Entry {
    last_heartbeat: i64,
    firmware_version: Option<Version>,
    ip: Option<Addr>,
    online: bool,
    dirty: bool,
}

// What every heartbeating device holds in the table (see the module's doc).
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Entry>() <= 40);

/// A firmware version, one copy shared by every entry that runs it. An `Arc<Box<str>>` is
/// one pointer where an `Arc<str>` is two, and every entry holds one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Version(Arc<Box<str>>);

impl Borrow<str> for Version {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Version {
    fn from(text: &str) -> Self {
        Version(Arc::new(text.into()))
    }
}

impl std::ops::Deref for Version {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// A device's reported address, exactly as reported.
#[derive(Debug, Clone, PartialEq)]
enum Addr {
    /// A dotted quad that an [`Ipv4Addr`] gives back unchanged (almost every device).
    V4(Ipv4Addr),
    /// Anything else, boxed so that the common case keeps the entry small.
    Other(Box<OtherAddr>),
}

/// Whether `text` is `v4` as its canonical dotted quad (what [`Addr::new`] keeps as one):
/// written out digit by digit on the stack, a third of what parsing `text` cost a heartbeat
/// (callgrind, BENCHMARKS.md session 23).
fn v4_is(v4: Ipv4Addr, text: &[u8]) -> bool {
    let mut quad = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            quad[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            quad[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            quad[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        quad[len] = b'0' + octet % 10;
        len += 1;
    }
    quad[..len] == *text
}

#[derive(Debug, Clone, PartialEq)]
enum OtherAddr {
    /// Text that an [`IpAddr`] (IPv6) gives back unchanged.
    Ip(IpAddr),
    /// Anything else, kept verbatim.
    Text(Box<str>),
}

impl Addr {
    fn new(text: &str) -> Self {
        match text.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) if v4.to_string() == text => Addr::V4(v4),
            Ok(ip) if ip.to_string() == text => Addr::Other(Box::new(OtherAddr::Ip(ip))),
            _ => Addr::Other(Box::new(OtherAddr::Text(text.into()))),
        }
    }

    fn text(&self) -> String {
        match self {
            Addr::V4(v4) => v4.to_string(),
            Addr::Other(other) => match &**other {
                OtherAddr::Ip(ip) => ip.to_string(),
                OtherAddr::Text(t) => t.to_string(),
            },
        }
    }

    /// Whether `text` is this address as reported, without allocating (every heartbeat
    /// asks, and the answer is almost always yes).
    fn is(&self, text: &str) -> bool {
        match self {
            Addr::V4(v4) => v4_is(*v4, text.as_bytes()),
            Addr::Other(other) => match &**other {
                OtherAddr::Text(t) => **t == *text,
                OtherAddr::Ip(ip) => {
                    use std::io::Write as _;
                    // The longest IPv6 text is 45 bytes.
                    let mut buf = [0u8; 64];
                    let mut rest = &mut buf[..];
                    write!(rest, "{ip}").is_ok() && {
                        let len = 64 - rest.len();
                        buf[..len] == *text.as_bytes()
                    }
                }
            },
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    devices: FastMap<Arc<str>, Entry>,
    transitions: Vec<PresenceTransition>,
    /// One copy of each firmware version in use; versions no entry holds are dropped by
    /// [`Presence::flush`].
    firmwares: FastSet<Version>,
}

#[derive(Debug)]
pub struct Presence {
    offline_after_ms: i64,
    inner: Mutex<Inner>,
}

impl Presence {
    pub fn new(offline_after_secs: u64) -> Self {
        Presence {
            offline_after_ms: (offline_after_secs as i64).saturating_mul(1000),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a heartbeat. `stored_last` is the device's last heartbeat as stored (from
    /// before this process knew it), so a restart does not invent an offline→online flap.
    pub fn heartbeat(
        &self,
        sn: &Arc<str>,
        firmware_version: Option<&str>,
        ip: Option<&str>,
        stored_last: Option<i64>,
        now: i64,
    ) {
        let mut guard = self.lock();
        let Inner {
            devices,
            transitions,
            firmwares,
        } = &mut *guard;
        let window = self.offline_after_ms;
        // Updated in place when known: a heartbeat that reports what the last one did then
        // allocates nothing.
        let was_online = match devices.get_mut(&**sn) {
            Some(e) => {
                let was = e.online;
                e.last_heartbeat = now;
                e.online = true;
                e.dirty = true;
                if e.firmware_version.as_deref() != firmware_version {
                    e.firmware_version = firmware_version.map(|v| intern(firmwares, v));
                }
                match (&e.ip, ip) {
                    (Some(old), Some(new)) if old.is(new) => {}
                    (_, new) => e.ip = new.map(Addr::new),
                }
                was
            }
            None => {
                let entry = Entry {
                    last_heartbeat: now,
                    firmware_version: firmware_version.map(|v| intern(firmwares, v)),
                    ip: ip.map(Addr::new),
                    online: true,
                    dirty: true,
                };
                devices.insert(Arc::clone(sn), entry);
                stored_last.is_some_and(|t| now - t <= window)
            }
        };
        if !was_online {
            transitions.push(PresenceTransition {
                sn: sn.to_string(),
                online: true,
                at: now,
            });
        }
    }

    /// Marks devices whose last heartbeat here is too old as offline — unless another node
    /// holds the device's session (`node` is this node's name: the session row is the fencing
    /// token) or the store shows a newer heartbeat from another node (an HTTP device that
    /// moved): then this node just forgets it, so a device moving between nodes never flaps
    /// offline/online.
    pub async fn sweep(&self, store: &dyn Store, node: &str, now: i64) {
        for (sn, last) in self.expired(now) {
            let held_elsewhere = match store.device_session(&sn).await {
                Ok(s) => s.is_some_and(|s| s.node != node),
                Err(_) => continue,
            };
            let moved = held_elsewhere
                || match store.device(&sn).await {
                    Ok(Some(d)) => d
                        .last_heartbeat_at
                        .is_some_and(|t| t > last && now - t <= self.offline_after_ms),
                    Ok(None) => false,
                    // Unsure: decide on the next sweep.
                    Err(_) => continue,
                };
            let mut inner = self.lock();
            let Some(e) = inner.devices.get(&*sn) else {
                continue;
            };
            if e.last_heartbeat != last || !e.online {
                continue; // it heartbeated here meanwhile
            }
            if moved {
                inner.devices.remove(&*sn);
            } else if let Some(e) = inner.devices.get_mut(&*sn) {
                e.online = false;
                let at = last + self.offline_after_ms;
                inner.transitions.push(PresenceTransition {
                    sn: sn.to_string(),
                    online: false,
                    at,
                });
            }
        }
    }

    /// Devices online here whose last heartbeat is older than the window.
    fn expired(&self, now: i64) -> Vec<(Arc<str>, i64)> {
        self.lock()
            .devices
            .iter()
            .filter(|(_, e)| e.online && now - e.last_heartbeat > self.offline_after_ms)
            .map(|(sn, e)| (sn.clone(), e.last_heartbeat))
            .collect()
    }

    /// Forgets a device that another node now holds: this node neither writes its state
    /// behind nor sweeps it offline (that node does both).
    pub fn forget(&self, sn: &str) {
        self.lock().devices.remove(sn);
    }

    /// The device's latest heartbeat as this node saw it: time, firmware version and address
    /// (ahead of the database until the next flush).
    pub fn live(&self, sn: &str) -> Option<(i64, Option<String>, Option<String>)> {
        self.lock().devices.get(sn).map(|e| {
            (
                e.last_heartbeat,
                e.firmware_version.as_deref().map(str::to_owned),
                e.ip.as_ref().map(Addr::text),
            )
        })
    }

    /// Whether this node has seen the device online (`None`: no heartbeat seen here).
    pub fn is_online(&self, sn: &str) -> Option<bool> {
        self.lock().devices.get(sn).map(|e| e.online)
    }

    /// Latest heartbeat seen by this node.
    pub fn last_heartbeat(&self, sn: &str) -> Option<i64> {
        self.lock().devices.get(sn).map(|e| e.last_heartbeat)
    }

    /// Devices online according to this node.
    pub fn online_count(&self) -> usize {
        self.lock().devices.values().filter(|e| e.online).count()
    }

    /// Writes dirty state and pending transitions in one go; on failure they are kept for the
    /// next flush.
    pub async fn flush(&self, store: &dyn Store) -> StoreResult<()> {
        let (updates, transitions) = {
            let mut inner = self.lock();
            // A version only this set holds is on no device here any more.
            inner.firmwares.retain(|v| Arc::strong_count(&v.0) > 1);
            let updates: Vec<PresenceUpdate> = inner
                .devices
                .iter_mut()
                .filter(|(_, e)| e.dirty)
                .map(|(sn, e)| {
                    e.dirty = false;
                    PresenceUpdate {
                        sn: sn.to_string(),
                        last_heartbeat_at: e.last_heartbeat,
                        firmware_version: e.firmware_version.as_deref().map(str::to_owned),
                        ip: e.ip.as_ref().map(Addr::text),
                    }
                })
                .collect();
            (updates, std::mem::take(&mut inner.transitions))
        };
        if updates.is_empty() && transitions.is_empty() {
            return Ok(());
        }
        if let Err(e) = store.record_presence(&updates, &transitions).await {
            let mut inner = self.lock();
            for u in &updates {
                if let Some(e) = inner.devices.get_mut(u.sn.as_str()) {
                    e.dirty = true;
                }
            }
            let newer = std::mem::replace(&mut inner.transitions, transitions);
            inner.transitions.extend(newer);
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::prelude::*;

    fn transitions(p: &Presence) -> Vec<(String, bool, i64)> {
        p.lock()
            .transitions
            .iter()
            .map(|t| (t.sn.clone(), t.online, t.at))
            .collect()
    }

    #[test]
    fn only_devices_past_the_window_expire() {
        let p = Presence::new(60);
        p.heartbeat(&"a".into(), None, None, None, 1_000);
        p.heartbeat(&"a".into(), None, None, None, 30_000);
        assert!(p.expired(90_000).is_empty());
        assert_eq!(p.expired(90_001), vec![(Arc::from("a"), 30_000)]);
        assert_eq!(transitions(&p), vec![("a".into(), true, 1_000)]);
    }

    #[test]
    fn a_recent_stored_heartbeat_is_no_new_transition() {
        let p = Presence::new(60);
        p.heartbeat(&"a".into(), None, None, Some(10_000), 20_000);
        assert!(transitions(&p).is_empty());
        p.heartbeat(&"b".into(), None, None, Some(10_000), 100_000);
        assert_eq!(transitions(&p), vec![("b".into(), true, 100_000)]);
    }

    async fn store_with_device(dir: &std::path::Path, sn: &str) -> crate::store::sql::SqlStore {
        use crate::store::Vendor;
        use rollcall_protocol::ids::Secret;
        let store = crate::store::test_db::TestDb::sqlite(dir)
            .open()
            .await
            .unwrap();
        let vendor = Vendor {
            id: 1,
            name: "v".into(),
            access_id: "id".into(),
            access_key: Secret::new("k"),
            access_secret: Secret::new("s"),
            rsa_public_key: None,
            created_at: 0,
        };
        store.create_vendor(&vendor).await.unwrap();
        let device = crate::store::Device {
            sn: sn.to_owned(),
            vendor_id: 1,
            project_id: None,
            kind: crate::store::DeviceKind::Face,
            direction: crate::store::Direction::Both,
            name: None,
            enabled: true,
            firmware_version: None,
            ip: None,
            last_heartbeat_at: None,
            person_count: None,
            face_count: None,
            created_at: 0,
        };
        store.create_device(&device).await.unwrap();
        store
    }

    #[tokio::test]
    async fn a_silent_device_goes_offline_and_the_history_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_device(dir.path(), "a").await;
        let p = Presence::new(60);
        p.heartbeat(&"a".into(), None, None, None, 1_000);
        p.flush(&store).await.unwrap();
        p.sweep(&store, "node-a", 61_001).await;
        assert_eq!(p.is_online("a"), Some(false));
        p.flush(&store).await.unwrap();
        let history = store.presence_history("a", 10).await.unwrap();
        let got: Vec<(bool, i64)> = history.iter().map(|t| (t.online, t.at)).collect();
        assert_eq!(got, vec![(false, 61_000), (true, 1_000)]);
    }

    #[tokio::test]
    async fn a_device_that_moved_to_another_node_does_not_flap() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_device(dir.path(), "a").await;
        let node_a = Presence::new(60);
        node_a.heartbeat(&"a".into(), None, None, None, 1_000);
        node_a.flush(&store).await.unwrap();
        // The device reconnects to node B, which sees a recent stored heartbeat (no new
        // "online" transition) and writes its own heartbeats behind.
        let node_b = Presence::new(60);
        node_b.heartbeat(&"a".into(), None, None, Some(1_000), 50_000);
        node_b.flush(&store).await.unwrap();
        // Node A's window passes: it forgets the device instead of recording "offline".
        node_a.sweep(&store, "node-a", 70_000).await;
        assert_eq!(node_a.is_online("a"), None);
        node_a.flush(&store).await.unwrap();
        let history = store.presence_history("a", 10).await.unwrap();
        assert_eq!(
            history.len(),
            1,
            "only the first online transition: {history:?}"
        );
        assert!(history[0].online);
    }

    #[tokio::test]
    async fn a_node_whose_session_was_taken_over_never_records_the_device_offline() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_device(dir.path(), "a").await;
        let node_a = Presence::new(60);
        store.claim_session("a", "node-a", 1_000).await.unwrap();
        node_a.heartbeat(&"a".into(), None, None, None, 1_000);
        node_a.flush(&store).await.unwrap();
        // Node B takes the session over before its first heartbeat was written behind: the
        // stored heartbeat cannot tell node A that the device moved; the session row does.
        store.claim_session("a", "node-b", 2_000).await.unwrap();
        node_a.sweep(&store, "node-a", 70_000).await;
        assert_eq!(node_a.is_online("a"), None, "forgotten, not offline");
        node_a.flush(&store).await.unwrap();
        let history = store.presence_history("a", 10).await.unwrap();
        assert_eq!(history.len(), 1, "{history:?}");
        // Node B, still holding it, does record it offline when it falls silent.
        let node_b = Presence::new(60);
        node_b.heartbeat(&"a".into(), None, None, Some(1_000), 3_000);
        node_b.sweep(&store, "node-b", 70_000).await;
        assert_eq!(node_b.is_online("a"), Some(false));
    }

    #[test]
    fn addresses_come_back_exactly_as_reported() {
        for text in [
            "192.168.1.20",
            "::1",
            "fe80::1",
            "::FFFF:1.2.3.4",
            "010.0.0.1",
            "",
            "网关",
        ] {
            assert_eq!(Addr::new(text).text(), text);
        }
        assert!(matches!(Addr::new("10.0.0.7"), Addr::V4(_)));
        let ip = Addr::new("10.0.0.7");
        assert!(ip.is("10.0.0.7"));
        assert!(!ip.is("10.0.0.70") && !ip.is("10.0.0.") && !ip.is(""));
        // Texts that mean the same address but were not reported so are not "the same".
        assert!(!ip.is("010.0.0.7") && !ip.is("10.0.0.07") && !ip.is(" 10.0.0.7"));
        assert!(Addr::new("fe80::1").is("fe80::1"));
        assert!(!Addr::new("fe80::1").is("fe80:0::1"));
        assert!(Addr::new("网关").is("网关"));
        assert!(
            matches!(Addr::new("010.0.0.1"), Addr::Other(o) if matches!(*o, OtherAddr::Text(_)))
        );
        assert!(matches!(Addr::new("::1"), Addr::Other(o) if matches!(*o, OtherAddr::Ip(_))));
    }

    proptest::proptest! {
        /// The digit-by-digit comparison agrees with std's formatting, for the address's own
        /// text and for texts one edit away from it.
        #[test]
        fn a_v4_address_is_exactly_its_canonical_text(
            octets in proptest::array::uniform4(0u8..=255),
            cut in 0usize..16,
            extra in proptest::sample::select(vec!["0", ".", " ", "1", ""]),
        ) {
            let v4 = Ipv4Addr::from(octets);
            let text = v4.to_string();
            proptest::prop_assert!(v4_is(v4, text.as_bytes()));
            let mut edited = text.clone();
            edited.truncate(cut.min(text.len()));
            edited.push_str(extra);
            edited.push_str(text.get(cut.min(text.len())..).unwrap_or_default());
            proptest::prop_assert_eq!(v4_is(v4, edited.as_bytes()), edited == text);
        }
    }

    #[tokio::test]
    async fn devices_share_one_copy_of_a_firmware_version_until_none_runs_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_device(dir.path(), "a").await;
        let p = Presence::new(60);
        p.heartbeat(&"a".into(), Some("v1.2"), Some("10.0.0.7"), None, 1_000);
        p.heartbeat(&"b".into(), Some("v1.2"), None, None, 1_000);
        {
            let inner = p.lock();
            let (a, b) = (&inner.devices["a"], &inner.devices["b"]);
            let (fa, fb) = (
                a.firmware_version.as_ref().unwrap(),
                b.firmware_version.as_ref().unwrap(),
            );
            assert!(Arc::ptr_eq(&fa.0, &fb.0), "one copy");
        }
        // "a" upgrades and moves: after the next flush only the new version is kept.
        p.heartbeat(&"a".into(), Some("v1.3"), Some("10.0.0.8"), None, 2_000);
        p.heartbeat(&"b".into(), Some("v1.3"), None, None, 2_000);
        p.flush(&store).await.unwrap();
        let kept: Vec<String> = p.lock().firmwares.iter().map(|v| v.to_string()).collect();
        assert_eq!(kept, vec!["v1.3".to_owned()]);
        let stored = store.device("a").await.unwrap().unwrap();
        assert_eq!(stored.firmware_version.as_deref(), Some("v1.3"));
        assert_eq!(stored.ip.as_deref(), Some("10.0.0.8"), "the new address");
    }
}
