//! Arrival order on one connection.
//!
//! A device pipelines sign-ins; the platform handles them concurrently, so their checks
//! finish in any order. Records must still reach the group commit in the order the device
//! sent them (the queue drains in order; of two copies of one record the first sent is the
//! one stored). Each request of a connection takes a [`Ticket`] when it is decoded; a sign-in
//! waits for its turn just before handing its record to the ingest queue. A request that ends
//! without storing anything (an error, a heartbeat) passes its turn on when its ticket drops.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct State {
    /// Tickets below this have all passed.
    next: u64,
    /// Tickets issued so far.
    issued: u64,
    /// Passed tickets at or above `next` (they finished before their turn came).
    passed: BTreeSet<u64>,
}

/// The turnstile of one connection.
#[derive(Debug, Default)]
pub struct Turnstile {
    state: Mutex<State>,
    moved: Notify,
}

impl Turnstile {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next ticket, in arrival order.
    pub fn ticket(self: &Arc<Self>) -> Ticket {
        let mut s = self.lock();
        let n = s.issued;
        s.issued += 1;
        Ticket {
            turnstile: Arc::clone(self),
            n,
            passed: false,
        }
    }

    fn pass(&self, n: u64) {
        let mut s = self.lock();
        s.passed.insert(n);
        loop {
            let next = s.next;
            if !s.passed.remove(&next) {
                break;
            }
            s.next += 1;
        }
        drop(s);
        self.moved.notify_waiters();
    }
}

/// One request's place in its connection's order.
#[derive(Debug)]
pub struct Ticket {
    turnstile: Arc<Turnstile>,
    n: u64,
    passed: bool,
}

impl Ticket {
    /// Waits until every earlier request of the connection has passed.
    pub async fn wait_turn(&self) {
        loop {
            let notified = self.turnstile.moved.notified();
            if self.turnstile.lock().next >= self.n {
                return;
            }
            notified.await;
        }
    }

    /// Lets later requests go.
    pub fn pass(mut self) {
        self.passed = true;
        self.turnstile.pass(self.n);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.passed {
            self.turnstile.pass(self.n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn turns_follow_arrival_order_whatever_order_requests_finish_in() {
        let t = Arc::new(Turnstile::default());
        let (a, b, c) = (t.ticket(), t.ticket(), t.ticket());
        // c waits for a and b; b drops early (an error), a passes after.
        let waiter = tokio::spawn(async move {
            c.wait_turn().await;
            c.pass();
        });
        drop(b);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "c waits for a");
        a.wait_turn().await;
        a.pass();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("c's turn comes")
            .unwrap();
        assert_eq!(t.lock().next, 3);
    }
}
