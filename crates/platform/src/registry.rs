//! The registry of devices connected to this node over TCP, for pushing commands.
//!
//! An entry lives exactly as long as its connection: [`Registry::bind`] returns a
//! [`Binding`] guard whose drop removes the entry (if it is still that connection's). A
//! device's newest connection wins: binding kicks the older connection, which then ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rollcall_protocol::Packet;
use tokio::sync::{Notify, mpsc};

/// How a connection is reached: its outbound queue and its kick switch.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    pub id: u64,
    pub outbound: mpsc::Sender<Packet>,
    pub kick: Arc<Notify>,
}

#[derive(Debug, Default)]
pub struct Registry {
    inner: Mutex<HashMap<String, ConnHandle>>,
    next_id: AtomicU64,
}

impl Registry {
    /// A fresh id for a new connection.
    pub fn next_conn_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Makes `handle` the device's connection, kicking any other one.
    pub fn bind(self: &Arc<Self>, sn: &str, handle: ConnHandle) -> Binding {
        let old = self.lock().insert(sn.to_owned(), handle.clone());
        if let Some(old) = old
            && old.id != handle.id
        {
            old.kick.notify_one();
        }
        Binding {
            registry: Arc::clone(self),
            sn: sn.to_owned(),
            conn_id: handle.id,
        }
    }

    /// Queues a packet for the device's connection on this node. `false` if the device is
    /// not connected here or its queue is full (it will pull the task on its next heartbeat).
    pub fn send(&self, sn: &str, packet: Packet) -> bool {
        let handle = self.lock().get(sn).cloned();
        handle.is_some_and(|h| h.outbound.try_send(packet).is_ok())
    }

    /// The sns of every device connected to this node.
    pub fn connected(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    pub fn is_connected(&self, sn: &str) -> bool {
        self.lock().contains_key(sn)
    }

    /// Devices connected to this node.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ConnHandle>> {
        // A panic while holding this lock leaves a plain map behind: keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes the registry entry when the connection ends (unless a newer one replaced it).
#[derive(Debug)]
pub struct Binding {
    registry: Arc<Registry>,
    sn: String,
    conn_id: u64,
}

impl Binding {
    pub fn sn(&self) -> &str {
        &self.sn
    }
}

impl Drop for Binding {
    fn drop(&mut self) {
        let mut map = self.registry.lock();
        if map.get(&self.sn).is_some_and(|h| h.id == self.conn_id) {
            map.remove(&self.sn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(r: &Registry) -> (ConnHandle, mpsc::Receiver<Packet>) {
        let (tx, rx) = mpsc::channel(4);
        let h = ConnHandle {
            id: r.next_conn_id(),
            outbound: tx,
            kick: Arc::new(Notify::new()),
        };
        (h, rx)
    }

    #[tokio::test]
    async fn newest_connection_wins_and_entries_remove_themselves() {
        let r = Arc::new(Registry::default());
        let (h1, _rx1) = handle(&r);
        let kick1 = h1.kick.clone();
        let b1 = r.bind("sn1", h1);
        let (h2, mut rx2) = handle(&r);
        let b2 = r.bind("sn1", h2);
        // The older connection is kicked.
        tokio::time::timeout(std::time::Duration::from_secs(1), kick1.notified())
            .await
            .unwrap();
        // Dropping the old binding does not remove the new entry.
        drop(b1);
        assert!(r.send("sn1", Packet::default()));
        assert!(rx2.recv().await.is_some());
        drop(b2);
        assert!(!r.is_connected("sn1"));
        assert!(!r.send("sn1", Packet::default()));
    }
}
