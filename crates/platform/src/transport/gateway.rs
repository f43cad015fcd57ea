//! The TCP gateway (ZJ-FRAME-01 to ZJ-FRAME-05, ZJ-CONN-01 to ZJ-CONN-08): one task per connection.
//!
//! A connection reads frames with the protocol crate's decoder and handles requests
//! **concurrently but answers in request order** (a device keeps a window of sign-ins in
//! flight; they reach the group commit together). Commands for the device arrive on its
//! outbound queue from the [`Registry`](crate::runtime::registry::Registry).
//!
//! **Memory is sized to need**, because a site's gates sit idle most of the day (the target
//! is ≤ 2 KB per idle device, BENCHMARKS.md "idle"):
//! - an idle connection holds no buffer: it waits for readability first, allocates only when
//!   bytes arrive, and frees the read buffer once it is empty and the write buffer once
//!   written;
//! - it waits on two things only, its socket and its [`Outbox`]. The idle timeout and
//!   shutdown are not a timer and a watch per connection (together ~230 bytes of every
//!   task): the accept loop keeps the live connections' outboxes, sweeps them every quarter
//!   of the idle timeout and tells the idle ones to stop, and tells all of them at shutdown.
//!   So a connection is closed between `idle_timeout_secs` and 1.25× that after its last
//!   whole frame;
//! - its task is one 384-byte allocation: what a connection keeps across an `.await` is a
//!   field of every idle connection, so the cold end is boxed, writes are polled by hand, its
//!   slot and place among the live connections are one `Member` guard, and nothing borrowed
//!   from its context is held across a write (the outbox is named again after it). tokio's
//!   task cells are 128-byte aligned here, so the margin is thin: the future is 264 bytes
//!   (`std::mem::size_of_val` of it in a release build); 280 still fit, 288 put every
//!   connection's task at 512, ~100 B more per idle device (BENCHMARKS.md, "third machine"
//!   and session 15). Measure after adding anything the loop keeps.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf as _, BytesMut};
use futures_util::FutureExt;
use futures_util::stream::{FuturesOrdered, StreamExt};
use prost::Message;
use rollcall_protocol::code::ProtocolError;
use rollcall_protocol::envelope::{RequestView, Response, Transport};
use rollcall_protocol::frame::{self, FrameDecoder, FrameError, Head};
use rollcall_protocol::{ApiCode, PROTOCOL_VERSION, Packet, wire};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{AcquireError, Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::pipeline::{self, ConnCtx};
use crate::runtime::metrics::Metrics;
use crate::runtime::registry::{ConnHandle, Outbox, Outgoing, Stop};
use crate::runtime::util::FastMap;
use crate::state::AppState;

/// Requests of one connection handled at once; reading pages beyond this (backpressure).
const MAX_IN_FLIGHT: usize = 256;

/// Answers already due are gathered into one write up to this many bytes.
const WRITE_COALESCE: usize = 64 * 1024;

/// A read with nothing buffered, on the stack: a heartbeat or a few whole, and the head of a
/// larger frame (whose body then waits for its share of the budget, ZJ-FRAME-03).
const STACK_READ: usize = 512;

/// Answers given on the spot, framed on the stack before their write: a heartbeat's is about
/// a hundred bytes.
const STACK_ANSWERS: usize = 512;

/// The live connections' outboxes, for the idle sweep and shutdown; the connection slots; the
/// budget of frames in flight; and the gateway's clock.
#[derive(Debug)]
struct Live {
    conns: Mutex<FastMap<u64, Conn>>,
    epoch: Instant,
    /// `max_connections` slots: the accept loop takes one per connection, its [`Member`] gives
    /// it back.
    slots: Semaphore,
    /// `max_inflight_frame_bytes`, one permit a byte: a connection reserves an incomplete
    /// frame's announced length before buffering its body (ZJ-FRAME-03) and gives it back
    /// once the frame is decoded or the connection ends.
    frames: Arc<Semaphore>,
    /// Notified when the last connection has left (shutdown waits for it).
    emptied: Notify,
    metrics: Arc<Metrics>,
}

/// What the sweep knows of a live connection (kept here, not in its task). Every connected
/// device has one, so it is three words: the table's buckets are 32 bytes.
#[derive(Debug)]
struct Conn {
    outbox: Arc<Outbox>,
    /// When it was accepted (the gateway's clock, ms), for the authentication deadline;
    /// [`BOUND`] once it is bound to a device, when that deadline no longer applies.
    unbound_since: u64,
    /// Its task, to drop it when its writes stall or shutdown's grace is over.
    abort: Option<AbortHandle>,
}

/// [`Conn::unbound_since`] of a connection bound to a device.
const BOUND: u64 = u64::MAX;

/// The deadlines the sweep enforces.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    idle: Duration,
    auth: Duration,
    write: Duration,
}

/// A connection's place among the live ones. Dropping it — when the connection ends, or if its
/// task panics — takes the connection off the list and gives its slot back. One small value
/// in the connection's task, instead of a semaphore permit and a channel sender.
#[derive(Debug)]
struct Member {
    live: Arc<Live>,
    id: u64,
}

impl Drop for Member {
    fn drop(&mut self) {
        let left = self.live.remove(self.id);
        self.live.slots.add_permits(1);
        if left == 0 {
            self.live.emptied.notify_waiters();
        }
    }
}

impl Live {
    fn lock(&self) -> std::sync::MutexGuard<'_, FastMap<u64, Conn>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Milliseconds since the gateway started (tokio's clock, so tests may pause it).
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Adds a connection (its slot already taken); its membership.
    fn add(self: &Arc<Self>, id: u64, outbox: Arc<Outbox>) -> Member {
        let now = self.now();
        outbox.touch(now);
        let live = {
            let mut conns = self.lock();
            conns.insert(
                id,
                Conn {
                    outbox,
                    unbound_since: now,
                    abort: None,
                },
            );
            conns.len()
        };
        self.metrics.tcp_connections(live);
        Member {
            live: Arc::clone(self),
            id,
        }
    }

    /// Removes a connection; the count of live connections after.
    fn remove(&self, id: u64) -> usize {
        let live = {
            let mut conns = self.lock();
            conns.remove(&id);
            conns.len()
        };
        self.metrics.tcp_connections(live);
        live
    }

    /// Waits until every connection has left.
    async fn all_left(&self) {
        loop {
            // Made before the check: a `notify_waiters` after it still reaches this one.
            let emptied = self.emptied.notified();
            if self.lock().is_empty() {
                return;
            }
            emptied.await;
        }
    }

    /// The connection's task, once spawned (unless it has already ended).
    fn set_abort(&self, id: u64, abort: AbortHandle) {
        if let Some(conn) = self.lock().get_mut(&id) {
            conn.abort = Some(abort);
        }
    }

    /// The connection is bound to a device.
    fn bound(&self, id: u64) {
        if let Some(conn) = self.lock().get_mut(&id) {
            conn.unbound_since = BOUND;
        }
    }

    /// Tells every connection without a whole frame for the idle timeout, or unbound after
    /// the authentication timeout, to stop; drops every connection whose write has made no
    /// progress for the write timeout (it cannot see a stop while its write waits).
    fn sweep(&self, d: Deadlines) {
        let now = self.now();
        let ms = |d: Duration| d.as_millis() as u64;
        let mut stalled = Vec::new();
        for conn in self.lock().values() {
            let outbox = &conn.outbox;
            if outbox
                .write_since()
                .is_some_and(|t| now.saturating_sub(t) >= ms(d.write))
            {
                stalled.extend(conn.abort.clone());
            } else if now.saturating_sub(outbox.last_active()) >= ms(d.idle) {
                outbox.stop(Stop::Idle);
            } else if conn.unbound_since != BOUND
                && now.saturating_sub(conn.unbound_since) >= ms(d.auth)
            {
                // Whatever it sends: only a binding stops this clock.
                outbox.stop(Stop::Unauthenticated);
            }
        }
        // Outside the lock: a dropped task takes itself off the list.
        for task in stalled {
            tracing::debug!("dropping a connection whose writes have stalled");
            task.abort();
        }
    }

    fn stop_all(&self) {
        for conn in self.lock().values() {
            conn.outbox.stop(Stop::Shutdown);
        }
    }

    /// Drops every connection still there.
    fn abort_all(&self) {
        let tasks: Vec<AbortHandle> = self
            .lock()
            .values()
            .filter_map(|c| c.abort.clone())
            .collect();
        for task in tasks {
            task.abort();
        }
    }
}

/// A connection slot, then a connection. `None` when the slots are closed (never, in
/// practice). Cancel-safe: a slot taken is kept in a permit until a connection comes, and
/// handed over to the connection's [`Member`] only then.
async fn accept(slots: &Semaphore, listener: &TcpListener) -> Option<TcpStream> {
    let permit = slots.acquire().await.ok()?;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                permit.forget();
                return Some(stream);
            }
            Err(e) => {
                // EMFILE and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Accepts connections until `shutdown` turns true, then tells every connection to answer
/// what it has in flight and close, and waits for them.
pub async fn serve(app: AppState, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let live = Arc::new(Live {
        conns: Mutex::new(FastMap::default()),
        epoch: Instant::now(),
        slots: Semaphore::new(app.settings.max_connections.max(1)),
        frames: Arc::new(Semaphore::new(frame_budget(&app))),
        emptied: Notify::new(),
        metrics: Arc::clone(&app.metrics),
    });
    let secs = |s: u64| Duration::from_secs(s.max(1));
    let deadlines = Deadlines {
        idle: secs(app.settings.idle_timeout_secs),
        auth: secs(app.settings.auth_timeout_secs),
        write: secs(app.settings.write_timeout_secs),
    };
    let mut sweep =
        tokio::time::interval(deadlines.idle.min(deadlines.auth).min(deadlines.write) / 4);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stream = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            _ = sweep.tick() => {
                live.sweep(deadlines);
                continue;
            }
            // Cancel-safe: a slot or a connection not yet taken stays where it was.
            accepted = accept(&live.slots, &listener) => match accepted {
                Some(a) => a,
                None => break,
            },
        };
        let _ = stream.set_nodelay(true);
        let handle = ConnHandle {
            id: app.registry.next_conn_id(),
            outbox: Arc::new(Outbox::default()),
        };
        let member = live.add(handle.id, Arc::clone(&handle.outbox));
        // Spawned as it is, with no wrapping block: a wrapper keeps the values it moves into
        // the connection a second time, a task size class up for every connection.
        let id = handle.id;
        let task = tokio::spawn(connection(
            Arc::clone(&app),
            member,
            stream,
            ConnCtx::new(handle),
        ));
        live.set_abort(id, task.abort_handle());
    }
    live.stop_all();
    // Every connection answers what it has in flight and closes, within the grace; the ones
    // left then (a device that never reads its answers) are dropped.
    let grace = Duration::from_secs(app.settings.shutdown_grace_secs);
    if tokio::time::timeout(grace, live.all_left()).await.is_err() {
        tracing::warn!("shutdown grace over: dropping the connections left");
        live.abort_all();
        live.all_left().await;
    }
}

/// The bytes of frames in flight: `max_inflight_frame_bytes`, at least one frame's worth of
/// a small request.
fn frame_budget(app: &AppState) -> usize {
    app.settings
        .max_inflight_frame_bytes
        .clamp(1024, Semaphore::MAX_PERMITS)
}

/// The largest frame a connection may announce: `max_frame_bytes`, and never more than the
/// whole in-flight budget (such a frame could never be buffered: 413_01 on its header).
fn max_frame(app: &AppState) -> usize {
    app.settings
        .max_frame_bytes
        .min(frame_budget(app))
        .min(u32::MAX as usize)
}

/// An incomplete frame's share of the in-flight budget: waited for, then held until the frame
/// is decoded or the connection ends (dropping it gives the bytes back, on a panic too).
enum Reservation {
    Waiting(Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>),
    Held(
        #[expect(dead_code, reason = "held for its drop, which gives the bytes back")]
        OwnedSemaphorePermit,
    ),
}

type Pending<'a> = Pin<Box<dyn Future<Output = Response> + Send + 'a>>;

/// Why a connection ends.
#[derive(Debug)]
enum End {
    Eof,
    Stopped(Stop),
    Corrupt(FrameError),
    Io(std::io::Error),
}

/// What woke a connection.
enum Event {
    /// Its outbox: commands to push, or a stop.
    Outbox,
    /// The oldest request in flight is answered, and its answer framed into `out`.
    Answered,
    /// The socket is readable, or failed: the read that follows says which. (No payload: an
    /// event is held across the writes, in every connection's task.)
    Readable,
}

/// One connection's life. A plain `fn` returning an `async move` block rather than an
/// `async fn`, spawned directly: an `async fn` copies its arguments into locals and keeps both
/// in its state. The task's size decides its allocation's class (multiples of 128 bytes), so
/// every local kept across an await counts: the cold end of the connection is boxed, and
/// nothing taken from the outbox is held across a write.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would keep its arguments twice in every connection's state"
)]
fn connection(
    app: AppState,
    member: Member,
    mut stream: TcpStream,
    ctx: ConnCtx,
) -> impl Future<Output = ()> + Send + 'static {
    async move {
        let mut buf = BytesMut::new();
        // Made on a connection's first request and dropped once it has answered everything: an
        // idle connection holds no queue.
        let mut in_flight: Option<Box<FuturesOrdered<Pending<'_>>>> = None;
        let mut out = BytesMut::new();
        // The incomplete frame's share of the in-flight budget, while there is one.
        let mut reserve: Option<Box<Reservation>> = None;

        let end = loop {
            // For the wait only: past it the outbox is named through `ctx`, so this borrow is
            // not kept across the writes (8 bytes of every task, its size class, see above).
            let outbox = &ctx.handle.outbox;
            // Polled by hand rather than through `select!` over futures: the socket's and the
            // outbox's wakers live in the socket's and the outbox's own state, so a waiting
            // connection keeps no readiness or notification future in its task (BENCHMARKS.md,
            // "idle"). Outbox first (a stop must not wait behind reads), then answers, then reads.
            let event = std::future::poll_fn(|cx| {
                let busy = in_flight.as_ref().map_or(0, |f| f.len());
                if outbox.poll_wake(cx).is_ready() {
                    return Poll::Ready(Event::Outbox);
                }
                if let Some(pending) = in_flight.as_mut().filter(|_| busy > 0)
                    && let Poll::Ready(Some(resp)) = pending.poll_next_unpin(cx)
                {
                    // Framed here, so no answer is held in the task's state across the write;
                    // with every other answer already due, so a group commit's answers leave
                    // in one write, not one each (BENCHMARKS.md, "backlog").
                    out.clear();
                    append_response(&mut out, resp);
                    while out.len() < WRITE_COALESCE
                        && let Poll::Ready(Some(resp)) = pending.poll_next_unpin(cx)
                    {
                        append_response(&mut out, resp);
                    }
                    return Poll::Ready(Event::Answered);
                }
                if busy >= MAX_IN_FLIGHT {
                    return Poll::Pending;
                }
                // An incomplete frame waiting for its share of the budget: no read until then.
                let acquired = match reserve.as_deref_mut() {
                    Some(Reservation::Waiting(acquire)) => match acquire.as_mut().poll(cx) {
                        Poll::Ready(acquired) => Some(acquired),
                        Poll::Pending => return Poll::Pending,
                    },
                    _ => None,
                };
                if let Some(acquired) = acquired {
                    reserve = acquired.ok().map(|p| Box::new(Reservation::Held(p)));
                }
                if stream.poll_read_ready(cx).is_ready() {
                    return Poll::Ready(Event::Readable);
                }
                Poll::Pending
            })
            .await;
            match event {
                Event::Outbox => {
                    let commands = match ctx.handle.outbox.take() {
                        Outgoing::Stop(why) => break End::Stopped(why),
                        Outgoing::Commands(commands) => commands,
                    };
                    // Every command framed into one buffer before the write's await (one
                    // write for all).
                    encode_all(&mut out, commands);
                    ctx.handle.outbox.writing(member.live.now());
                    if let Err(e) = write_out(&mut stream, &mut out).await {
                        break End::Io(e);
                    }
                    ctx.handle.outbox.written();
                }
                Event::Answered => {
                    ctx.handle.outbox.writing(member.live.now());
                    if let Err(e) = write_out(&mut stream, &mut out).await {
                        break End::Io(e);
                    }
                    ctx.handle.outbox.written();
                    answers_written(&app, &ctx, &member, &mut in_flight);
                }
                Event::Readable => {
                    // A read with nothing buffered goes to a buffer on the stack, and the
                    // answers given on the spot are framed on the stack and written from
                    // there: a busy connection otherwise allocated, grew and freed a read
                    // buffer and a write buffer for every heartbeat (BENCHMARKS.md, session
                    // 14). What is left over (a frame's beginning, an answer the socket did
                    // not take) moves into `buf` or `out`. Nothing of this block lives across
                    // the write's await below, so none of it is in the task's state.
                    {
                        let mut scratch = [0u8; STACK_READ];
                        let mut spot = [0u8; STACK_ANSWERS];
                        let mut spot_len = 0;
                        let on_stack = buf.is_empty() && reserve.is_none();
                        // One poll of an ordinary read rather than `try_read`: tokio's read
                        // takes a read that did not fill the buffer as proof the socket is
                        // drained and clears its readiness, which saves the second `recv`
                        // (the one that would answer "would block") on every request — half
                        // of the reads a heartbeat cost (BENCHMARKS.md, "Third round").
                        let read = if on_stack {
                            stream.read(&mut scratch).now_or_never()
                        } else {
                            let needed =
                                FrameDecoder::new(max_frame(&app)).needed(&buf).unwrap_or(1);
                            // A frame with its budget is read into exactly its size (growing
                            // by doubling would hold twice what was reserved); otherwise a
                            // bounded read.
                            let want = match reserve.as_deref() {
                                Some(Reservation::Held(_)) => needed.max(1),
                                _ => needed.clamp(STACK_READ, 64 * 1024),
                            };
                            buf.reserve(want);
                            stream.read_buf(&mut buf).now_or_never()
                        };
                        let n = match read {
                            Some(Ok(0)) => break End::Eof,
                            Some(Ok(n)) => n,
                            // Readiness was stale: nothing to read. The next turn's poll
                            // registers this task's waker again; an empty buffer is not kept
                            // for the wait (it used to be: ~0.4 KB of every idle device).
                            None => {
                                if buf.is_empty() {
                                    buf = BytesMut::new();
                                }
                                continue;
                            }
                            Some(Err(e)) => break End::Io(e),
                        };
                        let mut fresh: &[u8] = if on_stack {
                            scratch.get(..n).unwrap_or_default()
                        } else {
                            &[]
                        };
                        // ZJ-FRAME-02: every complete frame of the read, in order; a partial
                        // one stays for the next read.
                        let mut corrupt = None;
                        let mut decoded = false;
                        loop {
                            let decoder = FrameDecoder::new(max_frame(&app));
                            // Nothing ahead of it: a heartbeat answered from memory is
                            // answered from the frame's bytes (`pipeline::answer_at_once`).
                            let quiet = in_flight.as_ref().is_none_or(|f| f.is_empty());
                            let at_once = |req: RequestView<'_>| {
                                ctx.frame_arrived(member.live.now());
                                let answer = quiet
                                    .then(|| pipeline::answer_at_once(&app, &req, &ctx))
                                    .flatten();
                                match answer {
                                    Some(answer) => {
                                        let success = answer.success;
                                        frame_answer(
                                            &mut spot,
                                            &mut spot_len,
                                            &mut out,
                                            |room| {
                                                wire::encode_success_into(
                                                    &success,
                                                    answer.sign(),
                                                    room,
                                                )
                                            },
                                            |out| {
                                                wire::encode_success(&success, answer.sign(), out)
                                            },
                                        );
                                        None
                                    }
                                    None => Some(req.to_request()),
                                }
                            };
                            let next = if on_stack {
                                decoder.decode_request_view(&mut fresh, at_once)
                            } else {
                                decoder.decode_request_view(&mut buf, at_once)
                            };
                            match next {
                                Ok(Some(None)) => decoded = true,
                                Ok(Some(Some(req))) => {
                                    decoded = true;
                                    let peer = source(&stream, &ctx, &req.apicode);
                                    let mut pending: Pending<'_> = Box::pin(pipeline::handle(
                                        &app,
                                        req,
                                        Transport::Tcp,
                                        Some(&ctx),
                                        peer,
                                    ));
                                    // Nothing ahead of it: polled once on the spot, and a
                                    // request answered from memory (a heartbeat) is framed
                                    // straight away, without the ordered queue's allocations:
                                    // on the stack while the answers fit there, else (and from
                                    // then on, to keep their order) into `out`.
                                    if quiet && let Poll::Ready(resp) = poll_now(pending.as_mut()) {
                                        frame_answer(
                                            &mut spot,
                                            &mut spot_len,
                                            &mut out,
                                            |room| wire::encode_response_into(&resp, room),
                                            |out| wire::encode_response(&resp, out),
                                        );
                                        continue;
                                    }
                                    in_flight
                                        .get_or_insert_with(Default::default)
                                        .push_back(pending);
                                }
                                Ok(None) => break,
                                Err(e) => {
                                    corrupt = Some(e);
                                    break;
                                }
                            }
                        }
                        if let Some(e) = corrupt {
                            // The answers given before the corrupt frame go first (`finish`).
                            out.extend_from_slice(&spot[..spot_len]);
                            break End::Corrupt(e);
                        }
                        // A frame's beginning read onto the stack waits in `buf` for its
                        // rest, in a buffer of a whole read's size, as if it had been read
                        // there: the rest of a small frame then fits without growing it (in a
                        // device's window of sign-ins, nearly every read).
                        if !fresh.is_empty() {
                            buf.reserve(STACK_READ);
                            buf.extend_from_slice(fresh);
                        }
                        // The reserved frame was the first one decoded: its bytes go back.
                        if decoded {
                            reserve = None;
                        }
                        // The answers on the stack: written at once when the socket takes
                        // them, else what it did not take goes into `out`, written below.
                        if spot_len > 0 {
                            match stream.write(&spot[..spot_len]).now_or_never() {
                                Some(Ok(n)) => {
                                    out.extend_from_slice(spot.get(n..spot_len).unwrap_or_default())
                                }
                                None => out.extend_from_slice(&spot[..spot_len]),
                                Some(Err(e)) => break End::Io(e),
                            }
                            if out.is_empty() {
                                answers_written(&app, &ctx, &member, &mut in_flight);
                            }
                        }
                    }
                    // ZJ-FRAME-03: an incomplete frame's announced length is reserved from
                    // the in-flight budget before its body is buffered; without room, the
                    // connection reads nothing until there is.
                    if reserve.is_none()
                        && let Ok(Some(total)) = FrameDecoder::new(max_frame(&app))
                            .head(&buf)
                            .map(Head::frame_len)
                        && total > buf.len()
                    {
                        let frames = &member.live.frames;
                        let n = u32::try_from(total).unwrap_or(u32::MAX);
                        reserve = Some(Box::new(
                            match Arc::clone(frames).try_acquire_many_owned(n) {
                                Ok(held) => Reservation::Held(held),
                                Err(_) => Reservation::Waiting(Box::pin(
                                    Arc::clone(frames).acquire_many_owned(n),
                                )),
                            },
                        ));
                    }
                    if buf.is_empty() {
                        buf = BytesMut::new();
                    }
                    // The answers the socket did not take at once, or that did not fit on
                    // the stack.
                    if !out.is_empty() {
                        ctx.handle.outbox.writing(member.live.now());
                        if let Err(e) = write_out(&mut stream, &mut out).await {
                            break End::Io(e);
                        }
                        ctx.handle.outbox.written();
                        answers_written(&app, &ctx, &member, &mut in_flight);
                    }
                }
            }
        };
        drop(reserve);
        // Pushes from now on fail, so their tasks stay due (as when the queue was a channel whose
        // receiver is gone).
        ctx.handle.outbox.close();
        // Boxed: its awaits would otherwise size every connection's task, idle ones included.
        Box::pin(finish(
            &mut stream,
            out,
            in_flight,
            end,
            &app,
            (&ctx.handle.outbox, &member.live),
        ))
        .await;
        drop(ctx);
        drop(member);
    }
}

/// The end of a connection: answer what is in flight, in order, before closing (graceful for
/// shutdown and kicks; for a corrupt stream the error packet comes after the answers it owes).
async fn finish(
    stream: &mut TcpStream,
    mut out: BytesMut,
    in_flight: Option<Box<FuturesOrdered<Pending<'_>>>>,
    end: End,
    app: &AppState,
    (outbox, live): (&Outbox, &Live),
) {
    let ip = stream.peer_addr().ok().map(|a| a.ip());
    // Its writes are timed like any other (the sweep drops it when they stall). Answers given
    // on the spot before a corrupt frame are still in `out`: they go first.
    if !out.is_empty() {
        outbox.writing(live.now());
        let _ = write_out(stream, &mut out).await;
        outbox.written();
    }
    if let Some(mut pending) = in_flight {
        while let Some(resp) = pending.next().await {
            encode_response(&mut out, resp);
            outbox.writing(live.now());
            if write_out(stream, &mut out).await.is_err() {
                break;
            }
            outbox.written();
        }
    }
    match &end {
        // ZJ-FRAME-04: one error packet (413_01 or 400_02), then only this connection closes;
        // the packet is never signed (ZJ-SIGN-12).
        End::Corrupt(e) => {
            app.metrics.frame_error(e.code().as_str());
            tracing::info!(?ip, error = %e, "closing a connection with a corrupt stream");
            let packet = Packet {
                version: PROTOCOL_VERSION.to_owned(),
                success: false,
                error: ProtocolError::with_detail(e.code(), e.to_string()).to_json(),
                ..Packet::default()
            };
            encode(&mut out, packet);
            outbox.writing(live.now());
            let _ = write_out(stream, &mut out).await;
            outbox.written();
        }
        End::Io(e) => tracing::debug!(?ip, error = %e, "connection error"),
        End::Stopped(why) => tracing::debug!(?ip, reason = ?why, "connection told to stop"),
        End::Eof => tracing::debug!(?ip, "connection closed by the peer"),
    }
    let _ = stream.shutdown().await;
}

// The encoders take what they frame **by value**: a local the task borrows keeps its slot in
// the task's state until the end of its scope, across the write's await, even when it was
// dropped before (a `Response` or `Packet` there made every connection's task bigger).

/// The request's source address, for the budgets of ZJ-ERR-07, which only apply before the
/// connection is bound and to C_AUTH: asked of the socket then rather than kept in every
/// connection's task (17 bytes of it, its size class, see the module's doc).
fn source(stream: &TcpStream, ctx: &ConnCtx, apicode: &str) -> Option<IpAddr> {
    if ctx.is_bound() && apicode != ApiCode::Auth.as_str() {
        return None;
    }
    stream.peer_addr().ok().map(|a| a.ip())
}

/// After answers are written: a queue with nothing left in flight is dropped (an idle
/// connection holds none), and a binding just made takes the device's session over and
/// pushes its due tasks.
fn answers_written<'a>(
    app: &AppState,
    ctx: &ConnCtx,
    member: &Member,
    in_flight: &mut Option<Box<FuturesOrdered<Pending<'a>>>>,
) {
    if in_flight.as_ref().is_none_or(|f| f.is_empty()) {
        *in_flight = None;
        ctx.rest();
    }
    if let Some(sn) = ctx.take_bound_now() {
        member.live.bound(member.id);
        push_due_later(app, sn);
    }
}

/// Polls a request's future once, outside the connection's own poll. A future still pending
/// goes on into the ordered queue, which polls it again at once with the task's waker (a
/// future registers the waker of its latest poll), so the no-op waker here is never relied on.
fn poll_now(pending: Pin<&mut (dyn Future<Output = Response> + Send + '_)>) -> Poll<Response> {
    pending.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
}

/// Frames an answer given on the spot: on the stack while the answers fit there (`into` the
/// room left, its length or `None`), else, and from then on to keep their order, `append`ed
/// to `out` after the stack's.
fn frame_answer(
    spot: &mut [u8; STACK_ANSWERS],
    spot_len: &mut usize,
    out: &mut BytesMut,
    into: impl FnOnce(&mut [u8]) -> Option<usize>,
    append: impl FnOnce(&mut BytesMut),
) {
    let framed = spot
        .get_mut(*spot_len..)
        .filter(|_| out.is_empty())
        .and_then(into);
    match framed {
        Some(len) => *spot_len += len,
        None => {
            out.extend_from_slice(&spot[..*spot_len]);
            *spot_len = 0;
            append(out);
        }
    }
}

/// Frames `packet` into `out`, replacing what it held.
fn encode(out: &mut BytesMut, packet: Packet) {
    out.clear();
    append(out, &packet);
}

/// Frames `packet` after what `out` holds.
fn append(out: &mut BytesMut, packet: &Packet) {
    out.reserve(packet.encoded_len() + frame::MAX_VARINT_BYTES);
    frame::encode(packet, out);
}

/// Frames a response into `out`, replacing what it held.
fn encode_response(out: &mut BytesMut, resp: Response) {
    out.clear();
    append_response(out, resp);
}

/// Frames a response after what `out` holds.
fn append_response(out: &mut BytesMut, resp: Response) {
    wire::encode_response(&resp, out);
}

/// Frames every packet of `packets` into `out`, one after the other.
fn encode_all(out: &mut BytesMut, packets: std::collections::VecDeque<Packet>) {
    out.clear();
    out.reserve(
        packets
            .iter()
            .map(|p| p.encoded_len() + frame::MAX_VARINT_BYTES)
            .sum(),
    );
    for packet in &packets {
        frame::encode(packet, out);
    }
}

/// Writes `out` whole and releases its memory. Polled by hand: tokio's `write_all` future is
/// 56 bytes of every connection's task (its largest state is a write), this one 16.
fn write_out<'a>(
    stream: &'a mut TcpStream,
    out: &'a mut BytesMut,
) -> impl Future<Output = std::io::Result<()>> + Send + 'a {
    std::future::poll_fn(move |cx| {
        while !out.is_empty() {
            let written = match Pin::new(&mut *stream).poll_write(cx, out) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => Err(std::io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => Ok(n),
                Poll::Ready(Err(e)) => Err(e),
            };
            match written {
                Ok(n) => out.advance(n),
                Err(e) => {
                    *out = BytesMut::new();
                    return Poll::Ready(Err(e));
                }
            }
        }
        *out = BytesMut::new();
        Poll::Ready(Ok(()))
    })
}

/// After a connection binds, push the device's due tasks (outside the connection's loop:
/// the push goes through the registry back into this connection's outbound queue).
/// A device just bound this connection: take its session over (the node that held it
/// closes its connection, see [`crate::transport::cluster`]), then push its due tasks.
fn push_due_later(app: &AppState, sn: Arc<str>) {
    let app = Arc::clone(app);
    tokio::spawn(async move {
        if let Err(e) = app
            .store
            .claim_session(&sn, &app.node, crate::runtime::util::now_ms())
            .await
        {
            // The connection still works; another node may keep its stale one until it idles
            // out, and presence falls back to comparing heartbeats.
            tracing::warn!(%sn, error = %e, "taking the device session over failed");
        }
        if let Err(e) = crate::services::tasks::push_due(&app, &sn).await {
            tracing::warn!(%sn, error = %e, "pushing due tasks failed");
        }
    });
}
