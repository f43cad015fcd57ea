//! Several nodes over one PostgreSQL database: a task created on node B reaches a device
//! connected to node A at once.
//!
//! Mechanism: PostgreSQL `LISTEN/NOTIFY`. A node that creates a task for a device it does not
//! hold calls [`Store::announce_tasks`](crate::store::Store::announce_tasks) (`pg_notify` on
//! [`TASK_CHANNEL`]); every node listens, and the one holding the device's connection pushes
//! its due tasks. Notifications are not durable: after the listener reconnects, the node
//! pushes due tasks to every device it holds, and heartbeats remain the backstop (a device
//! sees its due task ids in its next heartbeat). An embedded (SQLite) platform is one node
//! and runs no listener.
//!
//! Announcements also keep the directory's task hints honest (heartbeats of a device with no
//! open task skip the due-task query): an announced device's hint is dropped, and while the
//! listener is not connected no hint is trusted.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::watch;

use crate::services::tasks;
use crate::state::AppState;
use crate::store::TASK_CHANNEL;

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
            // Announcements sent while we were away are lost: push to everyone we hold.
            for sn in app.registry.connected() {
                push(&app, sn);
            }
        }
        first = false;
        loop {
            tokio::select! {
                n = listener.recv() => match n {
                    Ok(n) => {
                        let sn = n.payload();
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
    listener.listen(TASK_CHANNEL).await?;
    Ok(listener)
}

fn push(app: &AppState, sn: std::sync::Arc<str>) {
    let app = std::sync::Arc::clone(app);
    tokio::spawn(async move {
        if let Err(e) = tasks::push_due(&app, &sn).await {
            tracing::warn!(%sn, error = %e, "pushing announced tasks failed");
        }
    });
}
