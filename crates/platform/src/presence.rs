//! Online/offline state of devices (PROTOCOL.md §5 C_HEARTBEAT).
//!
//! A device is online while its last heartbeat is younger than `offline_after`. Heartbeats
//! update memory only; the housekeeper writes the latest state and every transition behind,
//! in one transaction per flush (within `flush_interval`), so heartbeats cost no write and
//! the online/offline history is still durable within seconds.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::{PresenceTransition, PresenceUpdate, Store, StoreResult};

#[derive(Debug, Clone)]
struct Entry {
    last_heartbeat: i64,
    firmware_version: Option<String>,
    ip: Option<String>,
    online: bool,
    dirty: bool,
}

#[derive(Debug, Default)]
struct Inner {
    devices: HashMap<String, Entry>,
    transitions: Vec<PresenceTransition>,
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
        sn: &str,
        firmware_version: Option<String>,
        ip: Option<String>,
        stored_last: Option<i64>,
        now: i64,
    ) {
        let mut inner = self.lock();
        let window = self.offline_after_ms;
        let was_online = match inner.devices.get(sn) {
            Some(e) => e.online,
            None => stored_last.is_some_and(|t| now - t <= window),
        };
        inner.devices.insert(
            sn.to_owned(),
            Entry {
                last_heartbeat: now,
                firmware_version,
                ip,
                online: true,
                dirty: true,
            },
        );
        if !was_online {
            inner.transitions.push(PresenceTransition {
                sn: sn.to_owned(),
                online: true,
                at: now,
            });
        }
    }

    /// Marks devices whose last heartbeat is too old as offline.
    pub fn sweep(&self, now: i64) {
        let mut inner = self.lock();
        let window = self.offline_after_ms;
        let mut gone = Vec::new();
        for (sn, e) in inner.devices.iter_mut() {
            if e.online && now - e.last_heartbeat > window {
                e.online = false;
                gone.push(PresenceTransition {
                    sn: sn.clone(),
                    online: false,
                    at: e.last_heartbeat + window,
                });
            }
        }
        inner.transitions.extend(gone);
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
            let updates: Vec<PresenceUpdate> = inner
                .devices
                .iter_mut()
                .filter(|(_, e)| e.dirty)
                .map(|(sn, e)| {
                    e.dirty = false;
                    PresenceUpdate {
                        sn: sn.clone(),
                        last_heartbeat_at: e.last_heartbeat,
                        firmware_version: e.firmware_version.clone(),
                        ip: e.ip.clone(),
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
                if let Some(e) = inner.devices.get_mut(&u.sn) {
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

    fn transitions(p: &Presence) -> Vec<(String, bool, i64)> {
        p.lock()
            .transitions
            .iter()
            .map(|t| (t.sn.clone(), t.online, t.at))
            .collect()
    }

    #[test]
    fn online_then_offline_after_the_window() {
        let p = Presence::new(60);
        p.heartbeat("a", None, None, None, 1_000);
        p.heartbeat("a", None, None, None, 30_000);
        p.sweep(80_000);
        assert_eq!(p.is_online("a"), Some(true));
        p.sweep(90_001);
        assert_eq!(p.is_online("a"), Some(false));
        assert_eq!(
            transitions(&p),
            vec![("a".into(), true, 1_000), ("a".into(), false, 90_000)]
        );
    }

    #[test]
    fn a_recent_stored_heartbeat_is_no_new_transition() {
        let p = Presence::new(60);
        p.heartbeat("a", None, None, Some(10_000), 20_000);
        assert!(transitions(&p).is_empty());
        p.heartbeat("b", None, None, Some(10_000), 100_000);
        assert_eq!(transitions(&p), vec![("b".into(), true, 100_000)]);
    }
}
