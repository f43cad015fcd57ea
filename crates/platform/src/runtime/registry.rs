//! The registry of devices connected to this node over TCP, for pushing commands.
//!
//! An entry lives exactly as long as its connection: [`Registry::bind`] returns a
//! [`Binding`] guard whose drop removes the entry (if it is still that connection's). A
//! device's newest connection wins: binding kicks the older connection, which then ends.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::task::AtomicWaker;
use rollcall_protocol::Packet;

use crate::runtime::util::FastMap;

/// Commands queued for one connection before pushes fall back to heartbeat pull.
pub const OUTBOUND_QUEUE: usize = 64;

/// How a connection is reached: its outbox (commands and the kick switch).
#[derive(Debug, Clone)]
pub struct ConnHandle {
    pub id: u64,
    pub outbox: Arc<Outbox>,
}

/// A connection's outbound commands, its stop switch and its last activity, in one small
/// allocation.
///
/// A tokio channel plus a `Notify` per connection was ~1 KB of every idle connection (its
/// cache-padded channel state and a first block of 32 slots, BENCHMARKS.md "idle"); an idle
/// outbox is a mutex, no queue, a waker and two timestamps: 72 bytes, so with its reference
/// counts one 96-byte block of the allocator (an inline empty `VecDeque` made it 128,
/// BENCHMARKS.md session 23; a queue is boxed only while commands wait). The connection waits on
/// [`Outbox::notified`] and then takes what is there with [`Outbox::take`]. Everything that
/// ends a connection from outside — a newer connection of its device, the idle sweep, a
/// shutdown — arrives here too, so a connection waits on its socket and this, nothing else.
#[derive(Debug, Default)]
pub struct Outbox {
    state: Mutex<OutboxState>,
    /// The connection's waker and whether something arrived since it last looked: a
    /// one-permit notification whose state lives here, not in the waiting task.
    waker: AtomicWaker,
    woken: AtomicBool,
    /// When the connection last received a whole frame (the gateway's clock, ms).
    last_active: AtomicU64,
    /// When the connection's unfinished write began (the gateway's clock, ms, at least 1);
    /// 0 when it is not writing.
    write_since: AtomicU64,
}

// The size its allocation is chosen for (see above).
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Outbox>() <= 72);

#[derive(Debug, Default)]
struct OutboxState {
    /// Commands waiting; `None` when there are none (almost always).
    #[allow(
        clippy::box_collection,
        reason = "one word in every connection's outbox instead of an empty deque's four"
    )]
    queue: Option<Box<VecDeque<Packet>>>,
    stop: Option<Stop>,
    /// The connection has stopped reading its outbox: pushes are refused.
    closed: bool,
}

/// Why a connection is told to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A newer connection of the device took over.
    Kicked,
    /// No whole frame for the idle timeout.
    Idle,
    /// Not bound to a device within the authentication timeout.
    Unauthenticated,
    /// The platform is shutting down (answer what is in flight, then close).
    Shutdown,
}

/// What a connection finds in its outbox.
#[derive(Debug)]
pub enum Outgoing {
    /// End now, for this reason.
    Stop(Stop),
    /// The commands queued so far, oldest first.
    Commands(VecDeque<Packet>),
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, OutboxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a command; `false` when the connection has ended or its queue is full.
    pub fn push(&self, packet: Packet) -> bool {
        {
            let mut s = self.lock();
            if s.closed || s.queue.as_ref().is_some_and(|q| q.len() >= OUTBOUND_QUEUE) {
                return false;
            }
            s.queue.get_or_insert_default().push_back(packet);
        }
        self.wake();
        true
    }

    /// Asks the connection to end (its device connected again).
    pub fn kick(&self) {
        self.stop(Stop::Kicked);
    }

    /// Asks the connection to end; the first reason given is the one it sees.
    pub fn stop(&self, why: Stop) {
        self.lock().stop.get_or_insert(why);
        self.wake();
    }

    /// Records activity at `now` (the gateway's clock, ms); the activity recorded before.
    pub fn touch(&self, now: u64) -> u64 {
        self.last_active.swap(now, Ordering::Relaxed)
    }

    /// The last activity recorded.
    pub fn last_active(&self) -> u64 {
        self.last_active.load(Ordering::Relaxed)
    }

    /// A write of the connection begins (`now` on the gateway's clock).
    pub fn writing(&self, now: u64) {
        self.write_since.store(now.max(1), Ordering::Relaxed);
    }

    /// The connection's write is done.
    pub fn written(&self) {
        self.write_since.store(0, Ordering::Relaxed);
    }

    /// When the connection's unfinished write began, if it is writing.
    pub fn write_since(&self) -> Option<u64> {
        Some(self.write_since.load(Ordering::Relaxed)).filter(|t| *t != 0)
    }

    /// A stored permit: wakes the connection even if it is not waiting yet.
    fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Ready after a push, a kick or a stop since the last time it was ready (possibly one
    /// already taken: then `take` finds nothing).
    pub fn poll_wake(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.woken.swap(false, Ordering::AcqRel) {
            return std::task::Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // A wake between the check and the registration found no waker to call.
        if self.woken.swap(false, Ordering::AcqRel) {
            return std::task::Poll::Ready(());
        }
        std::task::Poll::Pending
    }

    /// [`Outbox::poll_wake`] as a future.
    pub async fn notified(&self) {
        std::future::poll_fn(|cx| self.poll_wake(cx)).await
    }

    /// The stop, or everything queued (the queue's memory goes with it).
    pub fn take(&self) -> Outgoing {
        let mut s = self.lock();
        if let Some(why) = s.stop {
            return Outgoing::Stop(why);
        }
        Outgoing::Commands(s.queue.take().map(|q| *q).unwrap_or_default())
    }

    /// The connection no longer reads its outbox.
    pub fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        s.queue = None;
    }
}

/// The devices connected to this node. Keys are shared with each connection's [`Binding`]:
/// one copy of a device's sn for both (an idle device's memory, BENCHMARKS.md "idle").
#[derive(Debug, Default)]
pub struct Registry {
    inner: Mutex<FastMap<Arc<str>, ConnHandle>>,
    next_id: AtomicU64,
}

impl Registry {
    /// A fresh id for a new connection.
    pub fn next_conn_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Makes `handle` the device's connection, kicking any other one.
    pub fn bind(self: &Arc<Self>, sn: Arc<str>, handle: ConnHandle) -> Binding {
        let old = self.lock().insert(Arc::clone(&sn), handle.clone());
        if let Some(old) = old
            && old.id != handle.id
        {
            old.outbox.kick();
        }
        Binding {
            registry: Arc::clone(self),
            sn,
            conn_id: handle.id,
        }
    }

    /// Queues a packet for the device's connection on this node. `false` if the device is
    /// not connected here or its queue is full (it will pull the task on its next heartbeat).
    pub fn send(&self, sn: &str, packet: Packet) -> bool {
        let handle = self.lock().get(sn).cloned();
        handle.is_some_and(|h| h.outbox.push(packet))
    }

    /// Closes the device's connection on this node (another node took its session over);
    /// `false` when it has none here.
    pub fn kick(&self, sn: &str) -> bool {
        let handle = self.lock().get(sn).cloned();
        handle.map(|h| h.outbox.kick()).is_some()
    }

    /// The sns of every device connected to this node.
    pub fn connected(&self) -> Vec<Arc<str>> {
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

    fn lock(&self) -> std::sync::MutexGuard<'_, FastMap<Arc<str>, ConnHandle>> {
        // A panic while holding this lock leaves a plain map behind: keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes the registry entry when the connection ends (unless a newer one replaced it).
#[derive(Debug)]
pub struct Binding {
    registry: Arc<Registry>,
    sn: Arc<str>,
    conn_id: u64,
}

impl Binding {
    pub fn sn(&self) -> &Arc<str> {
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

    fn handle(r: &Registry) -> ConnHandle {
        ConnHandle {
            id: r.next_conn_id(),
            outbox: Arc::new(Outbox::default()),
        }
    }

    fn commands(h: &ConnHandle) -> usize {
        match h.outbox.take() {
            Outgoing::Commands(q) => q.len(),
            Outgoing::Stop(why) => panic!("stopped: {why:?}"),
        }
    }

    #[tokio::test]
    async fn newest_connection_wins_and_entries_remove_themselves() {
        let r = Arc::new(Registry::default());
        let h1 = handle(&r);
        let b1 = r.bind("sn1".into(), h1.clone());
        let h2 = handle(&r);
        let b2 = r.bind("sn1".into(), h2.clone());
        // The older connection is kicked.
        tokio::time::timeout(std::time::Duration::from_secs(1), h1.outbox.notified())
            .await
            .unwrap();
        assert!(matches!(h1.outbox.take(), Outgoing::Stop(Stop::Kicked)));
        // Dropping the old binding does not remove the new entry.
        drop(b1);
        assert!(r.send("sn1", Packet::default()));
        tokio::time::timeout(std::time::Duration::from_secs(1), h2.outbox.notified())
            .await
            .unwrap();
        assert_eq!(commands(&h2), 1);
        drop(b2);
        assert!(!r.is_connected("sn1"));
        assert!(!r.send("sn1", Packet::default()));
    }

    #[test]
    fn a_full_or_closed_outbox_refuses_commands() {
        let o = Outbox::default();
        assert!((0..OUTBOUND_QUEUE).all(|_| o.push(Packet::default())));
        assert!(!o.push(Packet::default()), "full");
        assert!(matches!(o.take(), Outgoing::Commands(q) if q.len() == OUTBOUND_QUEUE));
        assert!(o.push(Packet::default()));
        o.close();
        assert!(!o.push(Packet::default()), "closed");
    }
}
