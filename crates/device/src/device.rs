//! The device: the thin network layer around the [`Session`] state machine, plus the handle a
//! vendor's application uses.
//!
//! [`Device::run`] is one `select!` loop (mini-redis style) over: the TCP read half, the
//! session's timers, the results of store loads and connection attempts, notes from the task
//! runner, and control messages from [`DeviceHandle`]s. Every input becomes a session
//! [`Event`]; every [`Action`] the session returns is carried out here — write a frame, arm a
//! timer, ask the store, hand a task to the runner. Nothing here decides anything.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rollcall_device::SdkError> {
//! use rollcall_device::{AttendanceRecord, Credentials, Device, DeviceConfig};
//! let creds = Credentials::new("access id", "access key", "access secret");
//! let config = DeviceConfig::new("SN0001", creds, "192.0.2.10:7700", "http://192.0.2.10:8080", "/var/lib/terminal");
//! let device = Device::open(config)?;
//! let handle = device.handle();
//! let running = tokio::spawn(device.run(std::future::pending::<()>()));
//! // The recognition engine found person 42:
//! handle.enqueue(AttendanceRecord::face("42", 1_700_000_000_000, None)).await?;
//! # running.abort(); Ok(()) }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use bytes::BytesMut;
use rollcall_protocol::Packet;
use rollcall_protocol::frame::{self, FrameDecoder};
use rollcall_protocol::jwe::JweDecrypter;
use rollcall_protocol::time::now_ms;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::backoff::Rng;
use crate::config::DeviceConfig;
use crate::error::SdkError;
use crate::http::DeviceHttp;
use crate::record::{AttendanceRecord, DeadLetter};
use crate::session::{Action, Event, Session, SessionState, Timer};
use crate::store::StoreHandle;
use crate::store::ops::{self, StoredPerson};
use crate::tasks::{META_FIRMWARE, RunnerMsg, RunnerNote, TaskRunner};

pub use crate::event::DeviceEvent;

/// Counters of one device (cumulative since it was opened).
#[derive(Debug, Default)]
pub struct DeviceStats {
    /// Sign-ins written to the connection (resends included).
    pub sent: AtomicU64,
    /// Records acknowledged.
    pub acked: AtomicU64,
    /// Of which the platform already had.
    pub duplicates: AtomicU64,
    /// Records refused for good.
    pub dead_lettered: AtomicU64,
    /// Successful authentications.
    pub sessions: AtomicU64,
    online: AtomicBool,
}

impl DeviceStats {
    pub fn online(&self) -> bool {
        self.online.load(Ordering::Relaxed)
    }
}

enum Control {
    Enqueued,
    Network(bool),
}

/// A cheap, cloneable handle on a device: enqueue records, read the store, switch the
/// network, read counters. Works whether or not the device is running.
#[derive(Clone, Debug)]
pub struct DeviceHandle {
    store: StoreHandle,
    control: mpsc::UnboundedSender<Control>,
    stats: Arc<DeviceStats>,
    max_photo_bytes: usize,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Control::Enqueued => f.write_str("Enqueued"),
            Control::Network(on) => write!(f, "Network({on})"),
        }
    }
}

impl DeviceHandle {
    /// Checks a record and appends it to the durable queue; returns its queue id once it is
    /// on disk. It is uploaded as soon as the device is online.
    pub async fn enqueue(&self, record: AttendanceRecord) -> Result<i64, SdkError> {
        let ids = self.enqueue_many(vec![record]).await?;
        Ok(ids.first().copied().unwrap_or_default())
    }

    /// [`DeviceHandle::enqueue`] for many records, in one transaction; ids in order.
    pub async fn enqueue_many(&self, records: Vec<AttendanceRecord>) -> Result<Vec<i64>, SdkError> {
        for r in &records {
            r.validate(self.max_photo_bytes)?;
        }
        let ids = self
            .store
            .call(move |c| ops::enqueue(c, &records, now_ms()))
            .await?;
        let _ = self.control.send(Control::Enqueued);
        Ok(ids)
    }

    /// Records waiting for the platform.
    pub async fn queue_len(&self) -> Result<u64, SdkError> {
        Ok(self.store.call(ops::queue_len).await?.max(0) as u64)
    }

    /// Records the platform refused for good, oldest first.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, SdkError> {
        Ok(self
            .store
            .call(move |c| ops::dead_letters(c, limit))
            .await?)
    }

    pub async fn dead_letter_count(&self) -> Result<u64, SdkError> {
        Ok(self.store.call(ops::dead_letter_count).await?.max(0) as u64)
    }

    /// Puts dead letters (all when `ids` is empty) back at the end of the queue.
    pub async fn requeue_dead_letters(&self, ids: Vec<i64>) -> Result<usize, SdkError> {
        let n = self
            .store
            .call(move |c| ops::requeue_dead_letters(c, &ids, now_ms()))
            .await?;
        let _ = self.control.send(Control::Enqueued);
        Ok(n)
    }

    /// Deletes dead letters (all when `ids` is empty) for good.
    pub async fn discard_dead_letters(&self, ids: Vec<i64>) -> Result<usize, SdkError> {
        Ok(self
            .store
            .call(move |c| ops::discard_dead_letters(c, &ids))
            .await?)
    }

    /// `(personCount, faceCount)` held locally.
    pub async fn counts(&self) -> Result<(u64, u64), SdkError> {
        Ok(self.store.call(ops::counts).await?)
    }

    /// One person with the face photo (for the recognition engine).
    pub async fn person(&self, person_id: &str) -> Result<Option<StoredPerson>, SdkError> {
        let id = person_id.to_owned();
        Ok(self.store.call(move |c| ops::person(c, &id)).await?)
    }

    /// Persons in id order after `after` (photos not loaded).
    pub async fn persons(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<StoredPerson>, SdkError> {
        Ok(self
            .store
            .call(move |c| ops::persons_page(c, after.as_deref(), limit, false))
            .await?)
    }

    /// Up to `limit` person ids.
    pub async fn person_ids(&self, limit: usize) -> Result<Vec<String>, SdkError> {
        Ok(self.store.call(move |c| ops::person_ids(c, limit)).await?)
    }

    /// The firmware version installed by a T_UPDATE_DEVICE_VERSION task, if any.
    pub async fn firmware_version(&self) -> Result<Option<String>, SdkError> {
        Ok(self.store.call(|c| ops::meta(c, META_FIRMWARE)).await?)
    }

    /// Switches the device's network off (it closes its connection and stops reconnecting;
    /// records keep queueing) or on again.
    pub fn set_network(&self, on: bool) {
        let _ = self.control.send(Control::Network(on));
    }

    pub fn stats(&self) -> &Arc<DeviceStats> {
        &self.stats
    }

    /// The underlying store (vendor tools).
    pub fn store(&self) -> &StoreHandle {
        &self.store
    }
}

/// An opened device, ready to [`run`](Device::run).
pub struct Device {
    cfg: Arc<DeviceConfig>,
    store: StoreHandle,
    handle: DeviceHandle,
    control_rx: mpsc::UnboundedReceiver<Control>,
    events: Option<mpsc::UnboundedSender<DeviceEvent>>,
    decrypter: Option<Arc<JweDecrypter>>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device").field("sn", &self.cfg.sn).finish()
    }
}

impl Device {
    /// Opens the device's store under `config.data_dir` (creating it).
    pub fn open(config: DeviceConfig) -> Result<Device, SdkError> {
        let decrypter = crate::http::decrypter_of(&config)?;
        // A CA file that holds no certificate is a configuration error now, not at run.
        crate::http::extra_roots(config.ca_cert_pem.as_deref())?;
        let store = StoreHandle::open(config.store_path())?;
        let (control, control_rx) = mpsc::unbounded_channel();
        let handle = DeviceHandle {
            store: store.clone(),
            control,
            stats: Arc::new(DeviceStats::default()),
            max_photo_bytes: config.tuning.max_photo_bytes,
        };
        Ok(Device {
            cfg: Arc::new(config),
            store,
            handle,
            control_rx,
            events: None,
            decrypter,
        })
    }

    /// Receives [`DeviceEvent`]s from now on.
    pub fn subscribe(&mut self) -> mpsc::UnboundedReceiver<DeviceEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.events = Some(tx);
        rx
    }

    pub fn handle(&self) -> DeviceHandle {
        self.handle.clone()
    }

    /// Runs until `shutdown` completes: connects, authenticates, heartbeats, uploads the
    /// queue, runs tasks. Returns after the store has committed everything submitted.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), SdkError> {
        let Device {
            cfg,
            store,
            handle,
            mut control_rx,
            events,
            decrypter,
        } = self;
        let clock = Arc::new(AtomicI64::new(0));
        let http = Arc::new(DeviceHttp::new(
            Arc::clone(&cfg),
            Arc::clone(&clock),
            decrypter.clone(),
        )?);
        let mut session_cfg = cfg.session();
        if let Some(v) = handle_firmware(&store).await {
            session_cfg.device_version = v;
        }
        let mut session = Session::new(session_cfg, Rng::from_entropy());
        if let Some(d) = decrypter {
            session = session.with_decrypter(d);
        }
        let (runner_tx, runner_rx) = mpsc::unbounded_channel();
        let (notes_tx, mut notes_rx) = mpsc::unbounded_channel();
        let runner = tokio::spawn(
            TaskRunner {
                http: Arc::clone(&http),
                store: store.clone(),
                cfg: Arc::clone(&cfg),
                notes: notes_tx,
                events: events.clone(),
            }
            .run(runner_rx),
        );
        let mut driver = Driver {
            cfg: Arc::clone(&cfg),
            store: store.clone(),
            http,
            clock,
            stats: Arc::clone(&handle.stats),
            events,
            runner: runner_tx,
            conn: None,
            timers: HashMap::new(),
            internal: mpsc::unbounded_channel(),
            connect_gen: 0,
            decoder: FrameDecoder::default(),
        };
        // The handle keeps a sender; drop ours so the loop does not wait on itself.
        drop(handle);

        let mut queue = std::collections::VecDeque::from([Event::Start]);
        tokio::pin!(shutdown);
        loop {
            while let Some(ev) = queue.pop_front() {
                let actions = session.handle(now_ms(), ev);
                driver.apply(actions, &mut queue).await;
            }
            let next_timer = driver.timers.values().min().copied();
            tokio::select! {
                _ = &mut shutdown => break,
                Some(msg) = driver.internal.1.recv() => match msg {
                    Internal::Connected(generation, stream) if generation == driver.connect_gen => {
                        let _ = stream.set_nodelay(true);
                        let (rd, wr) = stream.into_split();
                        driver.conn = Some(Conn { rd, wr, buf: BytesMut::with_capacity(16 * 1024) });
                        queue.push_back(Event::Connected);
                    }
                    Internal::ConnectFailed(generation) if generation == driver.connect_gen => {
                        queue.push_back(Event::ConnectFailed);
                    }
                    Internal::Connected(..) | Internal::ConnectFailed(_) => {}
                    Internal::Loaded(Ok(records)) => queue.push_back(Event::RecordsLoaded(records)),
                    Internal::Loaded(Err(e)) => {
                        tracing::error!(error = %e, "loading queued records failed");
                        queue.push_back(Event::LoadFailed);
                    }
                },
                Some(note) = notes_rx.recv() => match note {
                    RunnerNote::Finished(taskid) => queue.push_back(Event::TaskFinished(taskid)),
                    RunnerNote::Firmware(v) => queue.push_back(Event::FirmwareInstalled(v)),
                },
                Some(ctrl) = control_rx.recv() => match ctrl {
                    Control::Enqueued => queue.push_back(Event::RecordsEnqueued),
                    Control::Network(on) => queue.push_back(Event::Network(on)),
                },
                r = read_some(&mut driver.conn) => match r {
                    Ok(0) | Err(_) => {
                        driver.conn = None;
                        queue.push_back(Event::Disconnected);
                    }
                    Ok(_) => driver.decode(&mut queue),
                },
                _ = sleep_until(next_timer) => {
                    let now = Instant::now();
                    let due: Vec<Timer> = driver
                        .timers
                        .iter()
                        .filter(|(_, at)| **at <= now)
                        .map(|(t, _)| *t)
                        .collect();
                    for t in due {
                        driver.timers.remove(&t);
                        queue.push_back(Event::Timer(t));
                    }
                }
            }
        }
        if let Some(mut c) = driver.conn.take() {
            let _ = c.wr.shutdown().await;
        }
        runner.abort();
        store.flush().await?;
        Ok(())
    }
}

async fn handle_firmware(store: &StoreHandle) -> Option<String> {
    store
        .call(|c| ops::meta(c, META_FIRMWARE))
        .await
        .ok()
        .flatten()
}

struct Conn {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    buf: BytesMut,
}

enum Internal {
    Connected(u64, TcpStream),
    ConnectFailed(u64),
    Loaded(Result<Vec<crate::record::QueuedRecord>, crate::store::StoreError>),
}

struct Driver {
    cfg: Arc<DeviceConfig>,
    store: StoreHandle,
    http: Arc<DeviceHttp>,
    clock: Arc<AtomicI64>,
    stats: Arc<DeviceStats>,
    events: Option<mpsc::UnboundedSender<DeviceEvent>>,
    runner: mpsc::UnboundedSender<RunnerMsg>,
    conn: Option<Conn>,
    timers: HashMap<Timer, Instant>,
    internal: (
        mpsc::UnboundedSender<Internal>,
        mpsc::UnboundedReceiver<Internal>,
    ),
    connect_gen: u64,
    decoder: FrameDecoder,
}

/// Reads into the connection's buffer; never completes without a connection.
async fn read_some(conn: &mut Option<Conn>) -> std::io::Result<usize> {
    match conn {
        Some(c) => {
            c.buf.reserve(8 * 1024);
            c.rd.read_buf(&mut c.buf).await
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    fn emit(&self, e: DeviceEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.send(e);
        }
    }

    /// Decodes every complete frame in the buffer into events.
    fn decode(&mut self, queue: &mut std::collections::VecDeque<Event>) {
        let Some(c) = self.conn.as_mut() else {
            return;
        };
        loop {
            match self.decoder.decode(&mut c.buf) {
                Ok(Some(p)) => queue.push_back(Event::Packet(Box::new(p))),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(sn = %self.cfg.sn, error = %e, "corrupt stream from the platform");
                    self.conn = None;
                    queue.push_back(Event::Disconnected);
                    break;
                }
            }
        }
    }

    async fn write(&mut self, p: &Packet) -> std::io::Result<()> {
        let Some(c) = self.conn.as_mut() else {
            return Ok(());
        };
        let mut out = BytesMut::new();
        frame::encode(p, &mut out);
        c.wr.write_all(&out).await
    }

    async fn apply(&mut self, actions: Vec<Action>, queue: &mut std::collections::VecDeque<Event>) {
        for action in actions {
            match action {
                Action::Connect => {
                    self.connect_gen += 1;
                    let (generation, addr, timeout) = (
                        self.connect_gen,
                        self.cfg.tcp_addr.clone(),
                        self.cfg.tuning.connect_timeout,
                    );
                    let tx = self.internal.0.clone();
                    tokio::spawn(async move {
                        let msg =
                            match tokio::time::timeout(timeout, TcpStream::connect(&addr)).await {
                                Ok(Ok(s)) => Internal::Connected(generation, s),
                                Ok(Err(e)) => {
                                    tracing::debug!(%addr, error = %e, "connect failed");
                                    Internal::ConnectFailed(generation)
                                }
                                Err(_) => Internal::ConnectFailed(generation),
                            };
                        let _ = tx.send(msg);
                    });
                }
                Action::Send(p) => {
                    let is_sign_in = p.apicode == "C_SIGN_IN";
                    if let Err(e) = self.write(&p).await {
                        tracing::debug!(sn = %self.cfg.sn, error = %e, "write failed");
                        if self.conn.take().is_some() {
                            queue.push_back(Event::Disconnected);
                        }
                    } else if is_sign_in {
                        self.stats.sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Action::Close => {
                    // A connection attempt in flight is void from now on.
                    self.connect_gen += 1;
                    if let Some(mut c) = self.conn.take() {
                        let _ = c.wr.shutdown().await;
                    }
                    queue.push_back(Event::Disconnected);
                }
                Action::Schedule(t, d) => {
                    self.timers.insert(t, Instant::now() + d);
                }
                Action::Cancel(t) => {
                    self.timers.remove(&t);
                }
                Action::LoadRecords { after, limit } => {
                    let tx = self.internal.0.clone();
                    let store = self.store.clone();
                    tokio::spawn(async move {
                        let r = store
                            .call(move |c| ops::load_records(c, after, limit))
                            .await;
                        let _ = tx.send(Internal::Loaded(r));
                    });
                }
                Action::Ack(a) => {
                    let id = a.id;
                    // Counted before the queue forgets the record: whoever sees the queue
                    // empty also sees every acknowledgement counted.
                    self.stats.acked.fetch_add(1, Ordering::Relaxed);
                    if a.duplicate {
                        self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                    self.store.submit(move |c| ops::ack(c, id));
                    self.emit(DeviceEvent::Acked {
                        id: a.id,
                        record_time: a.record_time,
                        record_id: a.record_id,
                        duplicate: a.duplicate,
                        acked_at: now_ms(),
                    });
                }
                Action::DeadLetter { id, error } => {
                    let (code, msg) = (error.code.as_str().to_owned(), error.errormsg());
                    // Counted first, as an acknowledgement is.
                    self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    self.store
                        .submit(move |c| ops::dead_letter(c, id, &code, &msg, now_ms()));
                    self.emit(DeviceEvent::DeadLettered { id, error });
                }
                Action::RunTask(order) => {
                    let _ = self.runner.send(RunnerMsg::Run(order));
                }
                Action::FetchTasks(ids) => {
                    let _ = self.runner.send(RunnerMsg::Fetch(ids));
                }
                Action::Token(t) => self.http.set_token(t),
                Action::ClockCorrected { offset_ms } => {
                    self.clock.store(offset_ms, Ordering::Relaxed);
                }
                Action::State(s) => {
                    let online = s == SessionState::Ready;
                    self.stats.online.store(online, Ordering::Relaxed);
                    if online {
                        self.stats.sessions.fetch_add(1, Ordering::Relaxed);
                        self.emit(DeviceEvent::Online);
                    } else {
                        self.emit(DeviceEvent::Offline);
                    }
                }
                Action::Refused(e) => self.emit(DeviceEvent::Refused(e)),
            }
        }
    }
}
