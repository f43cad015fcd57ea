//! Several nodes over one PostgreSQL database: a task created on node B reaches a device
//! connected to node A at once, and a device that reconnects to node B is closed on node A.
//!
//! Mechanism: PostgreSQL `LISTEN/NOTIFY`. A node that creates a task for a device it does not
//! hold calls [`Store::announce_tasks`](crate::store::Store::announce_tasks) (`pg_notify` on
//! [`TASK_CHANNEL`]); every node listens, and the one holding the device's connection pushes
//! its due tasks. Notifications are not durable: after the listener reconnects, the node
//! pushes due tasks to every device it holds, and heartbeats remain the backstop (a device
//! sees its due task ids in its next heartbeat). An embedded (SQLite) platform is one node
//! and runs no listener.
//!
//! Device sessions (issue 15): a node that authenticates a device over TCP takes its session
//! over ([`DeviceStore::claim_session`](crate::store::DeviceStore::claim_session): the epoch
//! goes up, `pg_notify` on [`SESSION_CHANNEL`]). Notifications carry only the sn; a node that
//! holds that device reads the session row and, when another node now holds it, closes its
//! connection and forgets the device's presence, so the device never flaps offline. After
//! the listener reconnects, every device held here is checked the same way.
//!
//! Announcements also keep the directory's task hints honest (heartbeats of a device with no
//! open task skip the due-task query): an announced device's hint is dropped, and while the
//! listener is not connected no hint is trusted.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::watch;

use crate::services::tasks;
use crate::state::AppState;
use crate::store::{SESSION_CHANNEL, TASK_CHANNEL};

/// Listens for task announcements until `stop` turns true.
pub async fn listen(app: AppState, url: String, mut stop: watch::Receiver<bool>) {
    let mut first = true;
    loop {
        let mut listener = match connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                app.directory.task_notices(false);
                tracing::warn!(error = %e, "task notifications unavailable; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        };
        // From here on, announcements arrive: task hints may be trusted again (all hints from
        // before are dropped, as announcements may have been missed).
        app.directory.task_notices(true);
        if !first {
            // Announcements sent while we were away are lost: push to everyone we hold, and
            // check that we still hold them.
            for sn in app.registry.connected() {
                check_session(&app, Arc::clone(&sn));
                push(&app, sn);
            }
        }
        first = false;
        loop {
            tokio::select! {
                n = listener.recv() => match n {
                    Ok(n) => {
                        let sn = n.payload();
                        if n.channel() == SESSION_CHANNEL {
                            if app.registry.is_connected(sn) {
                                check_session(&app, sn.into());
                            }
                            continue;
                        }
                        app.directory.tasks_changed(sn);
                        if app.registry.is_connected(sn) {
                            push(&app, sn.into());
                        }
                    }
                    Err(e) => {
                        app.directory.task_notices(false);
                        tracing::warn!(error = %e, "task notification listener lost; reconnecting");
                        break;
                    }
                },
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen_all([TASK_CHANNEL, SESSION_CHANNEL]).await?;
    Ok(listener)
}

/// Closes this node's connection of `sn` when another node holds its session now.
fn check_session(app: &AppState, sn: Arc<str>) {
    let app = Arc::clone(app);
    tokio::spawn(async move {
        match app.store.device_session(&sn).await {
            Ok(Some(s)) if *s.node != *app.node => {
                tracing::info!(%sn, holder = %s.node, epoch = s.epoch, "device moved to another node");
                app.registry.kick(&sn);
                app.presence.forget(&sn);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(%sn, error = %e, "reading the device session failed"),
        }
    });
}

fn push(app: &AppState, sn: Arc<str>) {
    let app = Arc::clone(app);
    tokio::spawn(async move {
        if let Err(e) = tasks::push_due(&app, &sn).await {
            tracing::warn!(%sn, error = %e, "pushing announced tasks failed");
        }
    });
}
