//! The TCP gateway (PROTOCOL.md §1.1, §1.3): one task per connection.
//!
//! A connection reads frames with the protocol crate's decoder and handles requests
//! **concurrently but answers in request order** (a device keeps a window of sign-ins in
//! flight; they reach the group commit together). Commands for the device arrive on its
//! outbound queue from the [`Registry`](crate::registry::Registry). Memory is sized to need:
//! an idle connection holds no buffer — it waits for readability first and allocates only when
//! bytes arrive, and frees the read buffer once it is empty and the write buffer once written.
//! (Keeping the last frame's buffers, as before, cost every idle device about a kilobyte; an
//! allocation per frame is cheap next to the two system calls each frame needs anyway.)

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::stream::{FuturesOrdered, StreamExt};
use prost::Message;
use rollcall_protocol::code::ProtocolError;
use rollcall_protocol::envelope::{Request, Response, Transport};
use rollcall_protocol::frame::{self, FrameDecoder, FrameError};
use rollcall_protocol::{PROTOCOL_VERSION, Packet};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

use crate::dispatch::{self, ConnCtx};
use crate::registry::{ConnHandle, Outbox, Outgoing};
use crate::state::AppState;

/// Requests of one connection handled at once; reading pauses beyond this (backpressure).
const MAX_IN_FLIGHT: usize = 256;

/// Accepts connections until `shutdown` turns true, then waits for every connection to
/// answer what it has in flight and close.
pub async fn serve(app: AppState, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(app.settings.max_connections.max(1)));
    let open = Arc::new(AtomicUsize::new(0));
    // Every connection holds a clone; when all are dropped, `done_rx` yields None.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&limit).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&app);
        let shutdown = shutdown.clone();
        let done = done_tx.clone();
        let open = Arc::clone(&open);
        app.metrics
            .tcp_connections(open.fetch_add(1, Ordering::Relaxed) + 1);
        tokio::spawn(async move {
            connection(&app, stream, peer, shutdown).await;
            app.metrics
                .tcp_connections(open.fetch_sub(1, Ordering::Relaxed) - 1);
            drop(permit);
            drop(done);
        });
    }
    drop(done_tx);
    let _ = done_rx.recv().await;
}

type Pending<'a> = Pin<Box<dyn Future<Output = Response> + Send + 'a>>;

/// Why a connection ends.
#[derive(Debug)]
enum End {
    Eof,
    Idle,
    Kicked,
    Shutdown,
    Corrupt(FrameError),
    Io(std::io::Error),
}

async fn connection(
    app: &AppState,
    stream: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    let (rd, mut wr) = stream.into_split();
    let outbox = Arc::new(Outbox::default());
    let ctx = ConnCtx::new(ConnHandle {
        id: app.registry.next_conn_id(),
        outbox: Arc::clone(&outbox),
    });
    let decoder = FrameDecoder::new(app.settings.max_frame_bytes);
    let idle = Duration::from_secs(app.settings.idle_timeout_secs.max(1));
    let mut deadline = Instant::now() + idle;
    // The waits that outlive one loop turn are made once, not re-registered every turn: one
    // timer for the connection's life (a frame only moves `deadline`; the timer is re-armed
    // when it fires early), one shutdown wait, one outbox wait (re-made after it fires).
    let idle_timer = tokio::time::sleep_until(deadline);
    tokio::pin!(idle_timer);
    let stopping = shutdown.changed();
    tokio::pin!(stopping);
    let wake = outbox.notified();
    tokio::pin!(wake);
    let mut buf = BytesMut::new();
    // Made on a connection's first request and dropped once it has answered everything: an
    // idle connection holds no queue.
    let mut in_flight: Option<FuturesOrdered<Pending<'_>>> = None;
    let mut out = BytesMut::new();

    let end = loop {
        let busy = in_flight.as_ref().map_or(0, FuturesOrdered::len);
        tokio::select! {
            biased;
            _ = &mut stopping => break End::Shutdown,
            _ = &mut wake => {
                wake.set(outbox.notified());
                match outbox.take() {
                    Outgoing::Kicked => break End::Kicked,
                    Outgoing::Commands(commands) => {
                        let mut failed = None;
                        for cmd in commands {
                            encode(&mut out, &cmd);
                            if let Err(e) = write_out(&mut wr, &mut out).await {
                                failed = Some(e);
                                break;
                            }
                        }
                        if let Some(e) = failed {
                            break End::Io(e);
                        }
                    }
                }
            }
            Some(resp) = async { in_flight.as_mut()?.next().await }, if busy > 0 => {
                encode(&mut out, &resp.to_packet());
                drop(resp);
                if let Err(e) = write_out(&mut wr, &mut out).await {
                    break End::Io(e);
                }
                if in_flight.as_ref().is_some_and(FuturesOrdered::is_empty) {
                    in_flight = None;
                }
                if let Some(sn) = ctx.take_bound_now() {
                    push_due_later(app, sn);
                }
            }
            r = rd.readable(), if busy < MAX_IN_FLIGHT => {
                if let Err(e) = r {
                    break End::Io(e);
                }
                let want = decoder.needed(&buf).unwrap_or(1).clamp(512, 64 * 1024);
                buf.reserve(want);
                match rd.try_read_buf(&mut buf) {
                    Ok(0) => break End::Eof,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => break End::Io(e),
                }
                let mut corrupt = None;
                loop {
                    match decoder.decode(&mut buf) {
                        Ok(Some(packet)) => {
                            deadline = Instant::now() + idle;
                            let req = Request::from_packet(packet);
                            in_flight
                                .get_or_insert_with(FuturesOrdered::new)
                                .push_back(Box::pin(dispatch::handle(
                                    app,
                                    req,
                                    Transport::Tcp,
                                    Some(&ctx),
                                    Some(peer.ip()),
                                )));
                        }
                        Ok(None) => break,
                        Err(e) => {
                            corrupt = Some(e);
                            break;
                        }
                    }
                }
                if let Some(e) = corrupt {
                    break End::Corrupt(e);
                }
                if buf.is_empty() {
                    buf = BytesMut::new();
                }
            }
            _ = &mut idle_timer => {
                if Instant::now() >= deadline {
                    break End::Idle;
                }
                idle_timer.as_mut().reset(deadline);
            }
        }
    };
    // Pushes from now on fail, so their tasks stay due (as when the queue was a channel whose
    // receiver is gone).
    outbox.close();

    // Answer what is in flight, in order, before closing (graceful for shutdown and kicks;
    // for a corrupt stream the error packet comes after the answers it owes).
    if let Some(mut pending) = in_flight {
        while let Some(resp) = pending.next().await {
            encode(&mut out, &resp.to_packet());
            drop(resp);
            if write_out(&mut wr, &mut out).await.is_err() {
                break;
            }
        }
    }
    match &end {
        End::Corrupt(e) => {
            app.metrics.frame_error(e.code().as_str());
            tracing::info!(%peer, error = %e, "closing a connection with a corrupt stream");
            let packet = Packet {
                version: PROTOCOL_VERSION.to_owned(),
                success: false,
                error: ProtocolError::with_detail(e.code(), e.to_string()).to_json(),
                ..Packet::default()
            };
            encode(&mut out, &packet);
            drop(packet);
            let _ = write_out(&mut wr, &mut out).await;
        }
        End::Io(e) => tracing::debug!(%peer, error = %e, "connection error"),
        other => tracing::debug!(%peer, reason = ?other, "connection closed"),
    }
    let _ = wr.shutdown().await;
}

/// Frames `packet` into `out`. Kept apart from the write so no packet is held across the
/// write's await (that would make every connection's task larger).
fn encode(out: &mut BytesMut, packet: &Packet) {
    out.clear();
    out.reserve(packet.encoded_len() + frame::MAX_VARINT_BYTES);
    frame::encode(packet, out);
}

/// Writes `out` and releases its memory.
async fn write_out(wr: &mut OwnedWriteHalf, out: &mut BytesMut) -> std::io::Result<()> {
    let written = wr.write_all(out).await;
    *out = BytesMut::new();
    written
}

/// After a connection binds, push the device's due tasks (outside the connection's loop:
/// the push goes through the registry back into this connection's outbound queue).
fn push_due_later(app: &AppState, sn: String) {
    let app = Arc::clone(app);
    tokio::spawn(async move {
        if let Err(e) = crate::services::tasks::push_due(&app, &sn).await {
            tracing::warn!(%sn, error = %e, "pushing due tasks failed");
        }
    });
}
