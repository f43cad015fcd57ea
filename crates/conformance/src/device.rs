//! Device mode: the kit plays the platform for a terminal under test. It listens on a TCP
//! and an HTTP address the terminal is pointed at, answers as a conforming platform would
//! (signing, tokens, tasks, paging, photos), and runs scripted scenarios by bending its own
//! behaviour at chosen moments — answering a heartbeat `401_01`, pushing tasks newest
//! first, cutting the connection after an acknowledgement — while it watches what the
//! terminal sends. Where a person must act (take records, power the terminal on) it prints a
//! prompt and waits.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use bytes::BytesMut;
use md5::{Digest, Md5};
use rollcall_protocol::envelope::{Command, Request, Response};
use rollcall_protocol::frame::{self, FrameDecoder};
use rollcall_protocol::params::{self, PageParam, SignInParam};
use rollcall_protocol::{ApiCode, ErrorCode, PROTOCOL_VERSION, Packet, ProtocolError};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::KitError;
use crate::catalogue::{self, Case, Side};
use crate::evidence::{Dir, Log};
use crate::features::Features;
use crate::platform::VendorCreds;
use crate::report::{CaseResult, Check, Report};
use crate::verdict::Verdict;

/// How long the kit drains a connection it cut, waiting for the terminal to close its side.
const CUT_DRAIN: Duration = Duration::from_secs(2);

/// A terminal under test and how the kit waits for it.
#[derive(Debug, Clone)]
pub struct DeviceTarget {
    /// The credentials the terminal is configured with.
    pub vendor: VendorCreds,
    pub features: Features,
    /// The kit's HTTP base URL as the terminal reaches it (photo URLs are built on it).
    pub public_url: String,
    /// How long heartbeats are collected (D-HB-01): a little over two heartbeat intervals.
    pub heartbeat_window: Duration,
    /// The heartbeat period the terminal is configured with (D-HB-01 measures against it).
    pub heartbeat_period: Duration,
    /// How far the median interval may stray from `heartbeat_period`, in percent.
    pub heartbeat_tolerance_pct: u32,
    /// A firmware package the terminal accepts, with its version (D-FW-01).
    pub firmware: Option<Firmware>,
    /// D-OFFLINE-01: the operator cuts and restores the terminal's network, pressing Enter
    /// after each step. When off, the kit itself refuses every connection for `outage`.
    pub operator_cuts_network: bool,
    /// How long the kit refuses connections when it plays the cut network itself.
    pub outage: Duration,
    /// How long the kit waits for the terminal to do something.
    pub step_timeout: Duration,
    /// How many records the tester makes the terminal take (D-SIGNIN-01).
    pub records: usize,
    /// Only these case ids (all when empty).
    pub only: Vec<String>,
    /// Print prompts and verdicts to stderr.
    pub interactive: bool,
    /// Where prompts also go, as (case id, text): a test plays the person who acts.
    pub prompts: Option<mpsc::UnboundedSender<(String, String)>>,
    /// The terminal's RSA public key (PEM), for the encrypted answers of D-JWE-01.
    pub jwe_public_key: Option<String>,
}

impl DeviceTarget {
    pub fn new(vendor: VendorCreds, public_url: &str) -> DeviceTarget {
        DeviceTarget {
            vendor,
            features: Features::default(),
            public_url: public_url.trim_end_matches('/').to_owned(),
            heartbeat_window: Duration::from_secs(70),
            heartbeat_period: Duration::from_secs(30),
            heartbeat_tolerance_pct: 25,
            firmware: None,
            operator_cuts_network: false,
            outage: Duration::from_secs(20),
            step_timeout: Duration::from_secs(180),
            records: 3,
            only: Vec::new(),
            interactive: false,
            prompts: None,
            jwe_public_key: None,
        }
    }
}

/// A firmware package a terminal accepts (the vendor supplies it: the kit cannot make one).
#[derive(Debug, Clone)]
pub struct Firmware {
    /// The version the terminal reports in its heartbeats once it is installed.
    pub version: String,
    pub bytes: Vec<u8>,
}

/// What the kit saw the terminal do.
#[derive(Debug, Clone)]
pub enum Seen {
    /// A request and the kit's answer. `sign_ok`: the sign verifies with the vendor's secret
    /// (either img-cut form); `form_a`: it is the form A signature (ZJ-SIGN-06).
    Request {
        tcp: bool,
        conn: u64,
        req: Request,
        sign_ok: bool,
        form_a: bool,
        answer: Response,
        /// When the kit received it.
        at: Instant,
    },
    /// A TCP packet from the terminal that is not a request (e.g. a reply to a command).
    Stray {
        conn: u64,
        packet: Packet,
    },
    /// A photo URL the kit handed out was downloaded.
    Photo(String),
    Connected(u64),
    Closed(u64),
}

/// A task the kit offers.
#[derive(Debug, Clone)]
struct KitTask {
    apicode: ApiCode,
    param: String,
    persons: Vec<String>,
}

/// The kit platform's state, shared by its connections and the running case.
struct Shared {
    vendor: VendorCreds,
    public_url: String,
    tokens: HashMap<String, String>,
    fail_next_heartbeat: bool,
    /// Answer the next heartbeat 400_05, naming as the platform's time now + this offset (ms).
    skew_next_heartbeat: Option<i64>,
    /// Close the connection after this many more sign-in acknowledgements.
    cut_after_acks: Option<usize>,
    tasks: BTreeMap<String, KitTask>,
    offered: Vec<String>,
    records: HashMap<(String, String, i64, String), u64>,
    bound: Option<mpsc::UnboundedSender<Out>>,
    /// Faces served broken, by personId: `true` answers 404, `false` a body that is no image.
    bad_photos: HashMap<String, bool>,
    /// The network is "cut": every connection is closed at once, every HTTP call answered 503.
    refuse: bool,
    /// Firmware packages served under `/firmware/{name}`.
    firmware: HashMap<String, Vec<u8>>,
    /// Encrypt success answers (ZJ-JWE-02) with this key while `encrypt` is on.
    encrypter: Option<rollcall_protocol::jwe::JweEncrypter>,
    encrypt: bool,
    log: Log,
    seen: mpsc::UnboundedSender<Seen>,
}

enum Out {
    Packet(Box<Packet>),
    /// Several packets in one write (they reach the terminal in one read).
    Batch(Vec<Packet>),
    Close,
}

type Kit = Arc<Mutex<Shared>>;

fn lock(kit: &Kit) -> std::sync::MutexGuard<'_, Shared> {
    kit.lock().unwrap_or_else(|e| e.into_inner())
}

static COUNTER: AtomicU64 = AtomicU64::new(1);

/// 32 hex characters, unique in this process (a token; not a secret of any value beyond a
/// test run).
fn fresh_hex() -> String {
    let mut md5 = Md5::new();
    md5.update(rollcall_protocol::time::now_ms().to_le_bytes());
    md5.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    md5.update(format!("{:?}", Instant::now()).as_bytes());
    hex_of(&md5.finalize())
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A 19-digit taskid, increasing.
fn fresh_taskid() -> String {
    let base = 7_000_000_000_000_000_000u64;
    let n = u64::try_from(rollcall_protocol::time::now_ms()).unwrap_or(0) * 1000
        + COUNTER.fetch_add(1, Ordering::Relaxed) % 1000;
    format!("{}", base + n % 1_000_000_000_000_000_000)
}

/// Answers one request as a conforming platform would, bent by the case's script.
fn handle(kit: &Kit, req: &Request, tcp: bool) -> (Response, bool, bool, bool) {
    let mut s = lock(kit);
    let secret = s.vendor.access_secret.clone();
    let mut cut = false;
    let api: ApiCode = match req.apicode.parse() {
        Ok(a) => a,
        Err(_) => {
            let r = Response::to(req, Err(ProtocolError::new(ErrorCode::ApiCodeInvalid)));
            return (r, false, false, false);
        }
    };
    let sign_ok = rollcall_protocol::sign::verify_request(
        api,
        &req.sign_fields(),
        req.param_alt.as_deref(),
        &secret,
        &req.sign,
    )
    .is_ok();
    let form_a = rollcall_protocol::sign::sign_request(api, &req.sign_fields(), &secret)
        .is_ok_and(|s| rollcall_protocol::sign::matches(&s, &req.sign));
    let outcome: Result<Option<String>, ProtocolError> = (|| {
        if tcp && !api.is_connection() {
            return Err(ProtocolError::new(ErrorCode::ApiCodeInvalid));
        }
        if api == ApiCode::Auth {
            if req.access_id != s.vendor.access_id
                || req.access_key != s.vendor.access_key
                || !sign_ok
            {
                return Err(ProtocolError::new(ErrorCode::AuthFailed));
            }
            let token = fresh_hex();
            s.tokens.insert(token.clone(), req.sn.clone());
            return Ok(Some(json!({"token": token}).to_string()));
        }
        match s.tokens.get(&req.token) {
            None => return Err(ProtocolError::new(ErrorCode::TokenNotFound)),
            Some(sn) if *sn != req.sn => return Err(ProtocolError::new(ErrorCode::AuthFailed)),
            Some(_) => {}
        }
        if !sign_ok {
            return Err(ProtocolError::new(ErrorCode::AuthFailed));
        }
        match api {
            ApiCode::Heartbeat => {
                if s.fail_next_heartbeat {
                    s.fail_next_heartbeat = false;
                    s.tokens.remove(&req.token);
                    return Err(ProtocolError::new(ErrorCode::TokenNotFound));
                }
                if let Some(offset) = s.skew_next_heartbeat.take() {
                    let platform = rollcall_protocol::time::Timestamp::from_epoch_ms(
                        rollcall_protocol::time::now_ms() + offset,
                    );
                    let skew = rollcall_protocol::time::SkewError {
                        device: req.time_stamp.clone(),
                        platform: platform.to_wire(),
                        max_skew_secs: 300,
                    };
                    return Err(ProtocolError::with_detail(
                        ErrorCode::TimestampSkew,
                        skew.detail(),
                    ));
                }
                Ok(Some(json!({"taskids": s.offered}).to_string()))
            }
            ApiCode::SignIn => {
                let p: SignInParam = params::parse(req.param.as_deref().unwrap_or(""))?;
                let key = (
                    req.sn.clone(),
                    p.person_id.clone(),
                    p.record_time,
                    format!("{:?}", p.r#type),
                );
                let n = s.records.len() as u64 + 1;
                let (id, dup) = match s.records.get(&key) {
                    Some(id) => (*id, true),
                    None => {
                        s.records.insert(key, n);
                        (n, false)
                    }
                };
                if let Some(left) = s.cut_after_acks.as_mut() {
                    *left = left.saturating_sub(1);
                    if *left == 0 {
                        s.cut_after_acks = None;
                        cut = true;
                    }
                }
                Ok(Some(
                    json!({"recordId": id.to_string(), "duplicate": dup}).to_string(),
                ))
            }
            ApiCode::GetTasks => {
                let p: params::GetTasksParam = params::parse(req.param.as_deref().unwrap_or(""))?;
                let tasks: Vec<_> = p
                    .taskids
                    .iter()
                    .filter_map(|id| s.tasks.get(id).map(|t| json!({"taskid": id, "apicode": t.apicode.as_str(), "param": t.param})))
                    .collect();
                Ok(Some(json!({"tasks": tasks}).to_string()))
            }
            ApiCode::SendPerson | ApiCode::UpdateDevicePerson => {
                let task = s
                    .tasks
                    .get(&req.taskid)
                    .ok_or_else(|| ProtocolError::new(ErrorCode::TaskNotFound))?;
                let p: PageParam = params::parse(req.param.as_deref().unwrap_or("{}"))?;
                let size = p.effective_size().max(1);
                let total = task.persons.len().div_ceil(size as usize) as u32;
                let data: Vec<_> = task
                    .persons
                    .iter()
                    .skip(p.offset() as usize)
                    .take(size as usize)
                    .map(|id| json!({"personId": id, "name": format!("测试{id}"), "imgUrls": [format!("{}/photos/{id}.jpg", s.public_url)]}))
                    .collect();
                Ok(Some(json!({"data": data, "currentPage": p.current_page, "totalPage": total, "size": size}).to_string()))
            }
            ApiCode::UpdateDeviceVersion => {
                // The answer repeats the task's param (ZJ-FW-01).
                let task = s
                    .tasks
                    .get(&req.taskid)
                    .ok_or_else(|| ProtocolError::new(ErrorCode::TaskNotFound))?;
                Ok(Some(task.param.clone()))
            }
            ApiCode::DelDevicePerson => {
                let task = s
                    .tasks
                    .get(&req.taskid)
                    .ok_or_else(|| ProtocolError::new(ErrorCode::TaskNotFound))?;
                Ok(Some(json!({"personIds": task.persons}).to_string()))
            }
            ApiCode::UpdateTasksStatus => {
                let p: params::UpdateTasksStatusParam =
                    params::parse(req.param.as_deref().unwrap_or(""))?;
                let done: HashSet<String> = p.task.iter().map(|t| t.taskid.clone()).collect();
                s.offered.retain(|t| !done.contains(t));
                Ok(None)
            }
            _ => Ok(None),
        }
    })();
    // Encrypted answers carry the JWE text, and the sign covers it (ZJ-JWE-02, ZJ-JWE-03).
    let outcome = match (outcome, s.encrypt, s.encrypter.as_ref()) {
        (Ok(Some(text)), true, Some(enc)) => enc
            .encrypt(text.as_bytes())
            .map(Some)
            .map_err(|_| ProtocolError::new(ErrorCode::Internal)),
        (o, ..) => o,
    };
    let mut resp = Response::to(req, outcome);
    resp.sign_with(api, &secret);
    (resp, sign_ok, form_a, cut)
}

async fn serve_tcp(kit: Kit, listener: TcpListener) {
    let conns = AtomicU64::new(1);
    while let Ok((stream, _)) = listener.accept().await {
        if lock(&kit).refuse {
            // The cut network of D-OFFLINE-01: the connection ends before anything is read.
            drop(stream);
            continue;
        }
        let conn = conns.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(connection(kit.clone(), stream, conn));
    }
}

async fn connection(kit: Kit, stream: TcpStream, conn: u64) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let channel = format!("tcp#{conn}");
    // The evidence goes to the case running when it happens.
    let log_of = |kit: &Kit| lock(kit).log.clone();
    let _ = lock(&kit).seen.send(Seen::Connected(conn));
    log_of(&kit).note(format!("{channel}: the terminal connected"));
    let writer_kit = kit.clone();
    let writer_channel = channel.clone();
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let writer_log = lock(&writer_kit).log.clone();
            match out {
                Out::Packet(p) => {
                    writer_log.packet(Dir::Sent, &writer_channel, &p);
                    if wr.write_all(&frame::encode_to_vec(&p)).await.is_err() {
                        break;
                    }
                }
                Out::Batch(ps) => {
                    let mut bytes = Vec::new();
                    for p in &ps {
                        writer_log.packet(Dir::Sent, &writer_channel, p);
                        bytes.extend(frame::encode_to_vec(p));
                    }
                    if wr.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                Out::Close => {
                    writer_log.note(format!("{writer_channel}: the kit cuts the connection"));
                    let _ = wr.shutdown().await;
                    break;
                }
            }
        }
    });
    let dec = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut cut_by_kit = false;
    'read: loop {
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(p)) => {
                    log_of(&kit).packet(Dir::Received, &channel, &p);
                    let is_request = !p.apicode.is_empty()
                        && (p.apicode.starts_with("C_") || p.taskid.is_empty());
                    if !is_request || p.success || !p.error.is_empty() {
                        let _ = lock(&kit).seen.send(Seen::Stray { conn, packet: p });
                        continue;
                    }
                    let req = Request::from_packet(p);
                    let (answer, sign_ok, form_a, cut) = handle(&kit, &req, true);
                    if answer.success() && req.apicode.starts_with("C_") {
                        lock(&kit).bound = Some(tx.clone());
                    }
                    let _ = tx.send(Out::Packet(Box::new(answer.to_packet())));
                    if cut {
                        let _ = tx.send(Out::Close);
                    }
                    let _ = lock(&kit).seen.send(Seen::Request {
                        tcp: true,
                        conn,
                        req,
                        sign_ok,
                        form_a,
                        answer,
                        at: Instant::now(),
                    });
                    if cut {
                        cut_by_kit = true;
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    log_of(&kit).note(format!("{channel}: malformed frame from the terminal: {e}"));
                    break 'read;
                }
            }
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    drop(tx);
    let _ = writer.await;
    if cut_by_kit {
        // The cut is a FIN after the last answer. What the terminal still has in flight is
        // read and dropped until it closes its side (bounded): closing a socket with unread
        // bytes answers with a reset, which may destroy the acknowledgement just sent before
        // the terminal reads it — and the kit would then blame the terminal for resending.
        let _ = tokio::time::timeout(CUT_DRAIN, async {
            let mut sink = [0u8; 4096];
            while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
    }
    log_of(&kit).note(format!("{channel}: closed"));
    let _ = lock(&kit).seen.send(Seen::Closed(conn));
}

async fn device_api(
    State(kit): State<Kit>,
    path: Option<Path<String>>,
    body: Bytes,
) -> impl IntoResponse {
    let log = lock(&kit).log.clone();
    let channel = "http POST /device/api";
    if lock(&kit).refuse {
        log.note("http: refused (the network is cut)");
        return (StatusCode::SERVICE_UNAVAILABLE, String::new());
    }
    log.body(Dir::Received, channel, &body);
    let mut req = match Request::from_http_body(&body) {
        Ok(r) => r,
        Err(e) => {
            let r = Response::to(&Request::default(), Err(e));
            return (StatusCode::OK, r.to_http_json());
        }
    };
    if let Some(Path(api)) = path
        && let Err(e) = req.apply_path_apicode(&api)
    {
        return (StatusCode::OK, Response::to(&req, Err(e)).to_http_json());
    }
    let (answer, sign_ok, form_a, _) = handle(&kit, &req, false);
    let text = answer.to_http_json();
    log.body(Dir::Sent, channel, text.as_bytes());
    let _ = lock(&kit).seen.send(Seen::Request {
        tcp: false,
        conn: 0,
        req,
        sign_ok,
        form_a,
        answer,
        at: Instant::now(),
    });
    (StatusCode::OK, text)
}

async fn device_api_root(state: State<Kit>, body: Bytes) -> impl IntoResponse {
    device_api(state, None, body).await
}

async fn device_api_path(state: State<Kit>, path: Path<String>, body: Bytes) -> impl IntoResponse {
    device_api(state, Some(path), body).await
}

async fn photo(State(kit): State<Kit>, Path(name): Path<String>) -> axum::response::Response {
    lock(&kit)
        .log
        .push(Dir::Received, "http GET", format!("/photos/{name}"));
    let bad = lock(&kit)
        .bad_photos
        .get(name.trim_end_matches(".jpg"))
        .copied();
    let _ = lock(&kit).seen.send(Seen::Photo(name));
    match bad {
        Some(true) => StatusCode::NOT_FOUND.into_response(),
        Some(false) => (
            [("content-type", "image/jpeg")],
            "这不是一张照片 / not a photo",
        )
            .into_response(),
        None => (
            [("content-type", "image/jpeg")],
            rollcall_device::photo::sample::FACE_JPEG,
        )
            .into_response(),
    }
}

async fn firmware(State(kit): State<Kit>, Path(name): Path<String>) -> axum::response::Response {
    lock(&kit)
        .log
        .push(Dir::Received, "http GET", format!("/firmware/{name}"));
    match lock(&kit).firmware.get(&name).cloned() {
        Some(bytes) => ([("content-type", "application/octet-stream")], bytes).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Runs the selected device cases with the kit listening on `tcp` and `http`; stops serving
/// when it returns.
pub async fn run(target: &DeviceTarget, tcp: TcpListener, http: TcpListener) -> Report {
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let kit: Kit = Arc::new(Mutex::new(Shared {
        vendor: target.vendor.clone(),
        public_url: target.public_url.clone(),
        tokens: HashMap::new(),
        fail_next_heartbeat: false,
        skew_next_heartbeat: None,
        cut_after_acks: None,
        tasks: BTreeMap::new(),
        offered: Vec::new(),
        records: HashMap::new(),
        bound: None,
        bad_photos: HashMap::new(),
        refuse: false,
        firmware: HashMap::new(),
        encrypter: target
            .jwe_public_key
            .as_deref()
            .and_then(|pem| rollcall_protocol::jwe::JweEncrypter::from_public_key_pem(pem).ok()),
        encrypt: false,
        log: Log::default(),
        seen: seen_tx,
    }));
    let addrs = format!(
        "terminal; kit listening tcp={} http={}",
        tcp.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        http.local_addr().map(|a| a.to_string()).unwrap_or_default()
    );
    let tcp_task = tokio::spawn(serve_tcp(kit.clone(), tcp));
    let router = Router::new()
        .route("/device/api", post(device_api_root))
        .route("/device/api/{apicode}", post(device_api_path))
        .route("/photos/{name}", get(photo))
        .route("/firmware/{name}", get(firmware))
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024))
        .with_state(kit.clone());
    let http_task = tokio::spawn(async move {
        let _ = axum::serve(http, router).await;
    });
    let mut results = Vec::new();
    let mut state = Flow::default();
    for case in catalogue::cases(Side::Device) {
        if !(target.only.is_empty() || target.only.iter().any(|o| o == case.id)) {
            continue;
        }
        let result = if let Some(why) = case.not_applicable(&target.features) {
            CaseResult::without_run(case, Verdict::NotApplicable, why)
        } else {
            let log = Log::default();
            lock(&kit).log = log.clone();
            let mut c = DCtx {
                case: case.id,
                t: target,
                kit: kit.clone(),
                log,
                checks: Vec::new(),
                inconclusive: None,
                seen: &mut seen,
                flow: &mut state,
            };
            let started = Instant::now();
            let outcome = run_case(case.id, &mut c).await;
            c.finish(case, outcome, started)
        };
        if target.interactive {
            eprintln!(
                "{:<14} {:<12} {}",
                result.verdict.as_str().to_uppercase(),
                result.id,
                result.title_zh
            );
        }
        results.push(result);
    }
    tcp_task.abort();
    http_task.abort();
    Report::new(Side::Device, addrs, target.features.clone(), results)
}

/// What earlier cases learnt about the terminal (its sn, its current token).
#[derive(Debug, Default)]
struct Flow {
    sn: Option<String>,
}

struct DCtx<'a> {
    case: &'static str,
    t: &'a DeviceTarget,
    kit: Kit,
    log: Log,
    checks: Vec<Check>,
    inconclusive: Option<String>,
    seen: &'a mut mpsc::UnboundedReceiver<Seen>,
    flow: &'a mut Flow,
}

impl DCtx<'_> {
    fn check(&mut self, rule: &str, ok: bool, text: impl Into<String>) -> bool {
        let text = text.into();
        self.log.note(format!(
            "check {rule}: {} — {text}",
            if ok { "ok" } else { "FAILED" }
        ));
        self.checks.push(Check {
            rule: rule.to_owned(),
            passed: ok,
            text,
        });
        ok
    }

    fn inconclusive(&mut self, why: impl Into<String>) {
        let why = why.into();
        self.log.note(format!("inconclusive: {why}"));
        self.inconclusive.get_or_insert(why);
    }

    fn prompt(&self, text: &str) {
        self.log.push(Dir::Note, "prompt", text.to_owned());
        if self.t.interactive {
            eprintln!("\n>>> {text}\n");
        }
        if let Some(tx) = &self.t.prompts {
            let _ = tx.send((self.case.to_owned(), text.to_owned()));
        }
    }

    /// The next thing seen within `within`.
    async fn next(&mut self, within: Duration) -> Option<Seen> {
        // A spent deadline ends every waiting loop, however busy the terminal is.
        if within.is_zero() {
            return None;
        }
        tokio::time::timeout(within, self.seen.recv())
            .await
            .ok()
            .flatten()
    }

    /// Requests seen until `pred` holds for one (returned last), or `within` passes.
    async fn until(
        &mut self,
        within: Duration,
        mut pred: impl FnMut(&Seen) -> bool,
    ) -> (Vec<Seen>, bool) {
        let deadline = tokio::time::Instant::now() + within;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(s) => {
                    let hit = pred(&s);
                    out.push(s);
                    if hit {
                        return (out, true);
                    }
                }
                None => return (out, false),
            }
        }
    }

    fn finish(self, case: &Case, outcome: Result<(), KitError>, started: Instant) -> CaseResult {
        let failed: Vec<&Check> = self.checks.iter().filter(|c| !c.passed).collect();
        let (verdict, reason) = if !failed.is_empty() {
            (
                Verdict::Fail,
                failed
                    .iter()
                    .map(|c| format!("{}: {}", c.rule, c.text))
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        } else if let Err(e) = &outcome {
            (Verdict::Error, e.to_string())
        } else if let Some(why) = self.inconclusive.clone() {
            (Verdict::Inconclusive, why)
        } else if self.checks.is_empty() {
            (Verdict::Inconclusive, "no check could run".into())
        } else {
            (Verdict::Pass, String::new())
        };
        CaseResult {
            id: case.id.to_owned(),
            title: case.title.to_owned(),
            title_zh: case.title_zh.to_owned(),
            rules: case.rules.iter().map(|r| (*r).to_owned()).collect(),
            verdict,
            reason,
            checks: self.checks,
            evidence: self.log.entries(),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }
}

fn request_of(s: &Seen) -> Option<(&Request, bool, bool, bool, &Response)> {
    match s {
        Seen::Request {
            req,
            sign_ok,
            form_a,
            answer,
            tcp,
            ..
        } => Some((req, *sign_ok, *form_a, *tcp, answer)),
        _ => None,
    }
}

fn is_api(s: &Seen, api: ApiCode) -> bool {
    request_of(s).is_some_and(|(r, ..)| r.apicode == api.as_str())
}

async fn run_case(id: &str, c: &mut DCtx<'_>) -> Result<(), KitError> {
    match id {
        "D-AUTH-01" => d_auth(c).await,
        "D-HB-01" => d_heartbeat(c).await,
        "D-TOKEN-01" => d_token(c).await,
        "D-TIME-01" => d_time(c).await,
        "D-TASK-01" => d_tasks(c).await,
        "D-PERSON-01" => d_persons(c).await,
        "D-RECON-01" => d_reconcile(c).await,
        "D-JWE-01" => d_jwe(c).await,
        "D-STATUS-01" => d_failed_faces(c).await,
        "D-FW-01" => d_firmware(c).await,
        "D-OFFLINE-01" => d_offline(c).await,
        "D-KIND-IRIS" => d_kind(c, 32, "虹膜 / iris").await,
        "D-KIND-MOBILE" => {
            d_kind(
                c,
                64,
                "移动考勤（带 GPS 坐标）/ mobile, with its GPS position",
            )
            .await
        }
        "D-KIND-QR" => d_kind(c, 16, "二维码 / QR code").await,
        "D-SIGNIN-01" => d_sign_in(c).await,
        other => Err(KitError::Setup(format!("no executor for case {other}"))),
    }
}

async fn d_auth(c: &mut DCtx<'_>) -> Result<(), KitError> {
    c.prompt("请启动终端，并将其平台地址设为本工具的监听地址 / Start the terminal pointed at the kit's addresses.");
    let (seen, found) = c
        .until(c.t.step_timeout, |s| is_api(s, ApiCode::Auth))
        .await;
    if !found {
        return Err(KitError::Timeout("the terminal sent no C_AUTH".into()));
    }
    let Some((req, sign_ok, _, tcp, answer)) = seen.last().and_then(request_of) else {
        return Err(KitError::Protocol("no C_AUTH".into()));
    };
    let v = c.t.vendor.clone();
    c.flow.sn = Some(req.sn.clone());
    let (req, answer) = (req.clone(), answer.clone());
    c.check(
        "ZJ-FRAME-01",
        tcp,
        "the C_AUTH came as a varint-framed Packet over TCP",
    );
    c.check(
        "ZJ-SIGN-05",
        req.access_id == v.access_id && req.access_key == v.access_key,
        "C_AUTH carries the configured accessId and accessKey",
    );
    c.check("ZJ-SIGN-01", sign_ok, "its sign verifies: lowercase hex MD5 of version+sn+apicode+accessId+accessKey+timeStamp+secret");
    let stamp = rollcall_protocol::time::Timestamp::parse_wire(&req.time_stamp);
    let skew = stamp
        .as_ref()
        .map(|t| (t.epoch_ms() - rollcall_protocol::time::now_ms()).abs());
    c.check(
        "ZJ-TIME-01",
        skew.is_ok_and(|s| s <= 300_000),
        format!(
            "timeStamp {:?} is Beijing time within 5 minutes",
            req.time_stamp
        ),
    );
    c.check(
        "ZJ-CRED-02",
        !c.log
            .entries()
            .iter()
            .any(|e| e.text.contains(&v.access_secret)),
        "no frame carries the accessSecret",
    );
    if !answer.success() {
        c.inconclusive("the kit refused the C_AUTH (check the credentials given to the kit)");
    }
    Ok(())
}

async fn d_heartbeat(c: &mut DCtx<'_>) -> Result<(), KitError> {
    let window = c.t.heartbeat_window;
    c.log.note(format!("collecting heartbeats for {window:?}"));
    let deadline = tokio::time::Instant::now() + window;
    let mut beats = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match c.next(left).await {
            Some(s) if is_api(&s, ApiCode::Heartbeat) => beats.push(s),
            Some(_) => {}
            None => break,
        }
    }
    c.check(
        "ZJ-HB-01",
        beats.len() >= 2,
        format!("{} heartbeats in {window:?}", beats.len()),
    );
    // Cadence (ZJ-HB-03): the median interval is the configured period within the tolerance
    // (the median, so one late beat under load is not a verdict), and no gap reaches the
    // offline window (60 s in the standard, or less when the period is shorter).
    let times: Vec<Instant> = beats
        .iter()
        .filter_map(|b| match b {
            Seen::Request { at, .. } => Some(*at),
            _ => None,
        })
        .collect();
    let mut gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_unstable();
    if let Some(median) = gaps.get(gaps.len() / 2).copied() {
        let period = c.t.heartbeat_period;
        let tol = period * c.t.heartbeat_tolerance_pct / 100;
        let (low, high) = (period.saturating_sub(tol), period + tol);
        let offline = Duration::from_secs(60);
        let longest = gaps.last().copied().unwrap_or_default();
        c.check(
            "ZJ-HB-03",
            median >= low && median <= high && longest < offline,
            format!(
                "heartbeat intervals: median {} ms, longest {} ms over {} intervals; configured period {} ms ± {}% ({}..{} ms), every gap below the {} ms offline window",
                median.as_millis(),
                longest.as_millis(),
                gaps.len(),
                period.as_millis(),
                c.t.heartbeat_tolerance_pct,
                low.as_millis(),
                high.as_millis(),
                offline.as_millis()
            ),
        );
    }
    for b in &beats {
        if let Some((req, sign_ok, _, tcp, answer)) = request_of(b) {
            let p: Result<params::HeartbeatParam, _> =
                params::parse(req.param.as_deref().unwrap_or(""));
            c.check(
                "ZJ-HB-01",
                sign_ok && p.is_ok(),
                format!(
                    "heartbeat signed, with deviceVersion and deviceIp ({})",
                    if sign_ok { "sign ok" } else { "bad sign" }
                ),
            );
            c.check(
                "ZJ-CONN-01",
                !tcp || answer.success(),
                "the heartbeat is sent on a bound connection with a valid token",
            );
        }
    }
    Ok(())
}

async fn d_token(c: &mut DCtx<'_>) -> Result<(), KitError> {
    lock(&c.kit).fail_next_heartbeat = true;
    c.log.note("the next heartbeat will be answered 401_01");
    let (seen, found) = c
        .until(c.t.step_timeout, |s| {
            request_of(s).is_some_and(|(r, _, _, _, a)| {
                r.apicode == ApiCode::Heartbeat.as_str()
                    && a.outcome
                        .as_ref()
                        .err()
                        .is_some_and(|e| e.code == ErrorCode::TokenNotFound)
            })
        })
        .await;
    if !found {
        return Err(KitError::Timeout("the terminal sent no heartbeat".into()));
    }
    let dead = seen
        .last()
        .and_then(request_of)
        .map(|(r, ..)| (r.token.clone(), r.sn.clone()))
        .unwrap_or_default();
    let within =
        c.t.heartbeat_window
            .max(Duration::from_secs(5))
            .min(c.t.step_timeout);
    let (after, authed) = c.until(within, |s| is_api(s, ApiCode::Auth)).await;
    let stale = after
        .iter()
        .filter(|s| request_of(s).is_some_and(|(r, ..)| r.token == dead.0 && !r.token.is_empty()))
        .count();
    c.check(
        "ZJ-TOKEN-03",
        authed,
        "after 401_01 the terminal authenticates again",
    );
    c.check(
        "ZJ-TOKEN-03",
        stale == 0,
        format!("and sends nothing more with the dead token ({stale} requests did)"),
    );
    if !authed {
        // Take the dead token back, so the later cases judge what they are about.
        lock(&c.kit).tokens.insert(dead.0, dead.1);
        c.log
            .note("the kit accepts the old token again for the cases that follow");
    }
    Ok(())
}

async fn d_tasks(c: &mut DCtx<'_>) -> Result<(), KitError> {
    let sn = c.flow.sn.clone().unwrap_or_default();
    let t1 = fresh_taskid();
    let t2 = fresh_taskid();
    let t3 = fresh_taskid();
    let specs = [
        (
            t1.clone(),
            ApiCode::SendPerson,
            vec!["9101".to_owned(), "9102".to_owned(), "9103".to_owned()],
        ),
        (
            t2.clone(),
            ApiCode::DelDevicePerson,
            vec!["9102".to_owned()],
        ),
        (t3.clone(), ApiCode::SendPerson, vec!["9104".to_owned()]),
    ];
    let bound = {
        let mut s = lock(&c.kit);
        // Offered newest first too: the terminal must order them itself.
        for (id, api, persons) in specs.iter().rev() {
            let param = if *api == ApiCode::DelDevicePerson {
                json!({"personIds": persons}).to_string()
            } else {
                "{}".to_owned()
            };
            s.tasks.insert(
                id.clone(),
                KitTask {
                    apicode: *api,
                    param,
                    persons: persons.clone(),
                },
            );
            s.offered.push(id.clone());
        }
        s.bound.clone()
    };
    // Pushed oldest first, as a platform does (a terminal acting on each command as it
    // arrives could not know of an older one still on the wire); the heartbeat lists them
    // newest first, so a terminal that does not order them itself is caught.
    if let Some(tx) = bound {
        let mut batch = Vec::new();
        for (id, api, _) in specs.iter() {
            let task = lock(&c.kit).tasks.get(id).cloned();
            let cmd = Command {
                version: PROTOCOL_VERSION.into(),
                sn: sn.clone(),
                apicode: *api,
                taskid: id.clone(),
                time_stamp: crate::probe::now_wire(),
                param: task.map(|t| t.param).unwrap_or_default(),
            };
            batch.push(cmd.to_packet(&c.t.vendor.access_secret));
        }
        let _ = tx.send(Out::Batch(batch));
        c.log.note("three commands pushed in one write, oldest first; the heartbeat lists them newest first");
    } else {
        c.log
            .note("no bound connection: the tasks are offered by heartbeat only");
    }
    let ids = [t1.clone(), t2.clone(), t3.clone()];
    let mut reported: HashSet<String> = HashSet::new();
    let mut calls: Vec<String> = Vec::new();
    let mut stray = 0;
    let mut counts_ok = true;
    let deadline = tokio::time::Instant::now() + c.t.step_timeout;
    while reported.len() < 3 {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(s) = c.next(left).await else { break };
        match &s {
            Seen::Stray { packet, .. } if !packet.taskid.is_empty() => stray += 1,
            Seen::Request { req, .. }
                if ids.contains(&req.taskid)
                    && req.apicode != ApiCode::UpdateTasksStatus.as_str()
                    && calls.last() != Some(&req.taskid) =>
            {
                calls.push(req.taskid.clone());
            }
            Seen::Request { req, .. } if ids.contains(&req.taskid) => {}
            Seen::Request { req, .. } if req.apicode == ApiCode::UpdateTasksStatus.as_str() => {
                let v: serde_json::Value =
                    serde_json::from_str(req.param.as_deref().unwrap_or("")).unwrap_or_default();
                counts_ok &= v.get("personCount").is_some() && v.get("faceCount").is_some();
                for t in v
                    .get("task")
                    .and_then(|t| t.as_array())
                    .into_iter()
                    .flatten()
                {
                    if let Some(id) = t.get("taskid").and_then(|i| i.as_str())
                        && ids.iter().any(|x| x == id)
                        && t.get("status")
                            .and_then(|s| {
                                s.as_u64()
                                    .or_else(|| s.as_str().and_then(|x| x.parse().ok()))
                            })
                            .is_some()
                    {
                        reported.insert(id.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    let order = |id: &str| ids.iter().position(|x| x == id).map_or(9, |p| p + 1);
    let seq: Vec<usize> = calls.iter().map(|id| order(id)).collect();
    c.check("ZJ-TASK-04", seq == vec![1, 2, 3], format!("the task interfaces were called one task at a time in taskid order: tasks {seq:?} (1 = oldest)"));
    c.check(
        "ZJ-CONN-07",
        stray == 0 && !calls.is_empty(),
        format!(
            "the pushed tasks were run over HTTP, with no TCP reply to a command ({stray} replies)"
        ),
    );
    c.check(
        "ZJ-STATUS-01",
        reported.len() == 3,
        format!(
            "each task was reported with T_UPDATE_TASKS_STATUS ({} of 3)",
            reported.len()
        ),
    );
    c.check(
        "ZJ-STATUS-02",
        counts_ok && !reported.is_empty(),
        "each status report carries personCount and faceCount",
    );
    Ok(())
}

async fn d_sign_in(c: &mut DCtx<'_>) -> Result<(), KitError> {
    let want = c.t.records.max(2);
    lock(&c.kit).cut_after_acks = Some(1);
    c.prompt(&format!("请在终端上考勤 {want} 次（刷脸），工具会在第一次确认后断开连接 / Make the terminal take {want} records; the kit cuts the connection after the first acknowledgement."));
    let mut acked: HashMap<(String, i64, String), u32> = HashMap::new();
    let mut resent_after_ack = 0;
    let mut all_signed = true;
    let mut all_form_a = true;
    let mut members_ok = true;
    let deadline = tokio::time::Instant::now() + c.t.step_timeout;
    let mut quiet_until: Option<tokio::time::Instant> = None;
    loop {
        let now = tokio::time::Instant::now();
        let until = quiet_until.unwrap_or(deadline).min(deadline);
        let Some(s) = c.next(until.saturating_duration_since(now)).await else {
            break;
        };
        let Some((req, sign_ok, form_a, _, answer)) = request_of(&s) else {
            continue;
        };
        if req.apicode != ApiCode::SignIn.as_str() {
            continue;
        }
        all_signed &= sign_ok;
        all_form_a &= form_a;
        let p: Option<SignInParam> = params::parse(req.param.as_deref().unwrap_or("")).ok();
        members_ok &= p.is_some();
        if let Some(p) = p {
            let key = (
                p.person_id.clone(),
                p.record_time,
                format!("{:?}", p.r#type),
            );
            if let Some(n) = acked.get_mut(&key) {
                *n += 1;
                resent_after_ack += 1;
            } else if answer.success() {
                acked.insert(key, 1);
            }
        }
        if acked.len() >= want && quiet_until.is_none() {
            // Wait a little longer for any resend of what was acknowledged.
            quiet_until = Some(tokio::time::Instant::now() + Duration::from_secs(3));
        }
    }
    if acked.is_empty() {
        return Err(KitError::Timeout("the terminal sent no record".into()));
    }
    if acked.len() < want {
        c.inconclusive(format!("only {} of {want} records arrived", acked.len()));
    }
    c.check(
        "ZJ-SIGN-06",
        all_signed && all_form_a,
        "every record is signed over the param without img, form A",
    );
    c.check(
        "ZJ-SIGNIN-01",
        members_ok,
        "every record has personId, type and recordTime",
    );
    c.check(
        "ZJ-SIGNIN-05",
        resent_after_ack == 0,
        format!("no acknowledged record was sent again after the cut ({resent_after_ack} were)"),
    );
    Ok(())
}

/// The timeStamp of a request as epoch ms.
fn stamp_ms(req: &Request) -> Option<i64> {
    rollcall_protocol::time::Timestamp::parse_wire(&req.time_stamp)
        .ok()
        .map(|t| t.epoch_ms())
}

async fn d_time(c: &mut DCtx<'_>) -> Result<(), KitError> {
    for (offset, what) in [
        (600_000i64, "10 minutes ahead"),
        (0, "back to the real time"),
    ] {
        lock(&c.kit).skew_next_heartbeat = Some(offset);
        c.log.note(format!(
            "the next heartbeat is answered 400_05 with the platform's time {what}"
        ));
        let (_, found) = c
            .until(c.t.step_timeout, |s| {
                request_of(s).is_some_and(|(_, _, _, _, a)| {
                    a.outcome
                        .as_ref()
                        .err()
                        .is_some_and(|e| e.code == ErrorCode::TimestampSkew)
                })
            })
            .await;
        if !found {
            return Err(KitError::Timeout("the terminal sent no heartbeat".into()));
        }
        let (seen, got) = c
            .until(c.t.step_timeout, |s| {
                request_of(s).is_some_and(|(r, ..)| !r.time_stamp.is_empty())
            })
            .await;
        let next = seen
            .last()
            .and_then(request_of)
            .and_then(|(r, ..)| stamp_ms(r));
        let want = rollcall_protocol::time::now_ms() + offset;
        let off = next.map(|t| (t - want).abs());
        c.check(
            "ZJ-TIME-03",
            got && off.is_some_and(|d| d <= 120_000),
            format!("after 400_05 the terminal's timeStamps follow the platform's time ({what}): off by {:?} s", off.map(|d| d / 1000)),
        );
    }
    Ok(())
}

/// Offers a task (pushed when a connection is bound, and listed by heartbeats).
fn offer(c: &DCtx<'_>, sn: &str, api: ApiCode, param: String, persons: Vec<String>) -> String {
    offer_with(c, sn, api, param, persons, true)
}

/// [`offer`], pushed only when `push`.
fn offer_with(
    c: &DCtx<'_>,
    sn: &str,
    api: ApiCode,
    param: String,
    persons: Vec<String>,
    push: bool,
) -> String {
    let id = fresh_taskid();
    let bound = {
        let mut s = lock(&c.kit);
        s.tasks.insert(
            id.clone(),
            KitTask {
                apicode: api,
                param: param.clone(),
                persons,
            },
        );
        s.offered.push(id.clone());
        s.bound.clone().filter(|_| push)
    };
    if let Some(tx) = bound {
        let cmd = Command {
            version: PROTOCOL_VERSION.into(),
            sn: sn.to_owned(),
            apicode: api,
            taskid: id.clone(),
            time_stamp: crate::probe::now_wire(),
            param,
        };
        let _ = tx.send(Out::Packet(Box::new(
            cmd.to_packet(&c.t.vendor.access_secret),
        )));
    }
    id
}

/// Whether a status report names `taskid`, and its personCount.
fn reports(req: &Request, taskid: &str) -> Option<Option<u64>> {
    if req.apicode != ApiCode::UpdateTasksStatus.as_str() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(req.param.as_deref().unwrap_or("")).ok()?;
    let named = v
        .get("task")?
        .as_array()?
        .iter()
        .any(|t| t.get("taskid").and_then(|i| i.as_str()) == Some(taskid));
    named.then(|| {
        v.get("personCount").and_then(|n| {
            n.as_u64()
                .or_else(|| n.as_str().and_then(|x| x.parse().ok()))
        })
    })
}

async fn d_persons(c: &mut DCtx<'_>) -> Result<(), KitError> {
    let sn = c.flow.sn.clone().unwrap_or_default();
    let persons: Vec<String> = (9201..=9212).map(|n: u32| n.to_string()).collect();
    let taskid = offer(c, &sn, ApiCode::SendPerson, "{}".into(), persons.clone());
    c.log.note(format!(
        "T_SEND_PERSON {taskid} of 12 persons offered (two pages of 10)"
    ));
    let mut pages = HashSet::new();
    let mut size = 10u32;
    let mut photos = HashSet::new();
    let mut count = None;
    let deadline = tokio::time::Instant::now() + c.t.step_timeout;
    while count.is_none() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(s) = c.next(left).await else { break };
        match &s {
            Seen::Photo(name) => {
                photos.insert(name.trim_end_matches(".jpg").to_owned());
            }
            Seen::Request { req, .. } if req.taskid == taskid => {
                if let Ok(p) = params::parse::<PageParam>(req.param.as_deref().unwrap_or("{}")) {
                    pages.insert(p.current_page);
                    size = p.effective_size().max(1);
                }
            }
            Seen::Request { req, .. } => {
                if let Some(n) = reports(req, &taskid) {
                    count = Some(n);
                }
            }
            _ => {}
        }
    }
    // Downloads may finish just after the report: a second more for them.
    let grace = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        let left = grace.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match c.next(left).await {
            Some(Seen::Photo(name)) => {
                photos.insert(name.trim_end_matches(".jpg").to_owned());
            }
            Some(_) => {}
            None => break,
        }
    }
    let mut got: Vec<u32> = pages.into_iter().collect();
    got.sort_unstable();
    let needed: Vec<u32> = (1..=12u32.div_ceil(size)).collect();
    c.check(
        "ZJ-PERSON-03",
        got.starts_with(&needed),
        format!("the terminal fetched every page of size {size}: {got:?}"),
    );
    let missing = persons.iter().filter(|p| !photos.contains(*p)).count();
    c.check(
        "ZJ-URL-01",
        missing == 0,
        format!("the terminal downloaded every face from its imgUrl ({missing} of 12 not)"),
    );
    c.check(
        "ZJ-PERSON-02",
        count == Some(Some(12)),
        format!(
            "it replaced its whole list: personCount {:?} reported, 12 expected",
            count.flatten()
        ),
    );
    Ok(())
}

async fn d_reconcile(c: &mut DCtx<'_>) -> Result<(), KitError> {
    let sn = c.flow.sn.clone().unwrap_or_default();
    let taskid = offer(
        c,
        &sn,
        ApiCode::PostDevicePerson,
        json!({"excludeFields": "img"}).to_string(),
        Vec::new(),
    );
    c.log.note(format!(
        "T_POST_DEVICE_PERSON {taskid} offered with excludeFields img"
    ));
    let mut pages: BTreeMap<u32, u32> = BTreeMap::new();
    let mut with_img = 0;
    let mut reported = false;
    let deadline = tokio::time::Instant::now() + c.t.step_timeout;
    while !reported {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(s) = c.next(left).await else { break };
        let Seen::Request { req, sign_ok, .. } = &s else {
            continue;
        };
        if req.taskid == taskid && req.apicode == ApiCode::PostDevicePerson.as_str() {
            let v: serde_json::Value =
                serde_json::from_str(req.param.as_deref().unwrap_or("")).unwrap_or_default();
            let n = |k: &str| {
                v.get(k)
                    .and_then(|x| {
                        x.as_u64()
                            .or_else(|| x.as_str().and_then(|t| t.parse().ok()))
                    })
                    .unwrap_or(0) as u32
            };
            if *sign_ok {
                pages.insert(n("currentPage"), n("totalPage"));
            }
            with_img += v.get("data").and_then(|d| d.as_array()).map_or(0, |rows| {
                rows.iter()
                    .filter(|r| r.get("img").is_some_and(|i| !i.is_null() && i != ""))
                    .count()
            });
        } else if reports(req, &taskid).is_some() {
            reported = true;
        }
    }
    let total = pages.values().copied().max().unwrap_or(0);
    let complete = total >= 1
        && (1..=total).all(|p| pages.contains_key(&p))
        && pages.values().all(|t| *t == total);
    c.check("ZJ-RECON-01", complete && reported, format!("the terminal uploaded pages 1..{total} with one totalPage, signed, then reported the task: pages {:?}", pages.keys().collect::<Vec<_>>()));
    c.check(
        "ZJ-RECON-03",
        with_img == 0,
        format!("excludeFields img: no row carries img ({with_img} did)"),
    );
    Ok(())
}

async fn d_jwe(c: &mut DCtx<'_>) -> Result<(), KitError> {
    if lock(&c.kit).encrypter.is_none() {
        c.inconclusive("no usable RSA public key of the terminal was given (--rsa-public-key)");
        return Ok(());
    }
    let sn = c.flow.sn.clone().unwrap_or_default();
    lock(&c.kit).encrypt = true;
    // Not pushed: the terminal learns of it only from an encrypted heartbeat answer, fetches it
    // with an encrypted T_GET_TASKS answer and runs it on an encrypted T_DEL_DEVICE_PERSON answer.
    let param = json!({"personIds": ["9301"]}).to_string();
    let taskid = offer_with(
        c,
        &sn,
        ApiCode::DelDevicePerson,
        param,
        vec!["9301".into()],
        false,
    );
    c.log.note(format!(
        "answers now encrypted; T_DEL_DEVICE_PERSON {taskid} offered by heartbeat only"
    ));
    let mut status = None;
    let deadline = tokio::time::Instant::now() + c.t.step_timeout;
    while status.is_none() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(s) = c.next(left).await else { break };
        let Seen::Request { req, .. } = &s else {
            continue;
        };
        if req.apicode != ApiCode::UpdateTasksStatus.as_str() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(req.param.as_deref().unwrap_or("")).unwrap_or_default();
        status = v
            .get("task")
            .and_then(|t| t.as_array())
            .and_then(|ts| {
                ts.iter()
                    .find(|t| t.get("taskid").and_then(|i| i.as_str()) == Some(taskid.as_str()))
                    .cloned()
            })
            .and_then(|t| {
                t.get("status").and_then(|x| {
                    x.as_u64()
                        .or_else(|| x.as_str().and_then(|y| y.parse().ok()))
                })
            });
    }
    lock(&c.kit).encrypt = false;
    c.check(
        "ZJ-JWE-02",
        status == Some(1),
        format!("with every answer a JWE, the terminal found, fetched and ran the task and reported it done: status {status:?}"),
    );
    Ok(())
}

/// The entry of a status report for `taskid`, if the request is one.
fn status_entry(req: &Request, taskid: &str) -> Option<serde_json::Value> {
    if req.apicode != ApiCode::UpdateTasksStatus.as_str() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(req.param.as_deref().unwrap_or("")).ok()?;
    v.get("task")?
        .as_array()?
        .iter()
        .find(|t| t.get("taskid").and_then(|i| i.as_str()) == Some(taskid))
        .cloned()
}

fn status_of(entry: &serde_json::Value) -> Option<u64> {
    entry.get("status").and_then(|x| {
        x.as_u64()
            .or_else(|| x.as_str().and_then(|y| y.parse().ok()))
    })
}

/// Waits for the status report of `taskid`; its entry, or `None` when none came in time.
async fn await_status(c: &mut DCtx<'_>, taskid: &str) -> Option<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + c.t.step_timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let s = c.next(left).await?;
        if let Some(entry) = request_of(&s).and_then(|(r, ..)| status_entry(r, taskid)) {
            return Some(entry);
        }
    }
}

async fn d_failed_faces(c: &mut DCtx<'_>) -> Result<(), KitError> {
    let sn = c.flow.sn.clone().unwrap_or_default();
    // 9501 is a good face; 9502's URL answers 404; 9503's answers a body that is no image.
    let persons: Vec<String> = ["9501", "9502", "9503"].map(String::from).to_vec();
    {
        let mut s = lock(&c.kit);
        s.bad_photos.insert("9502".into(), true);
        s.bad_photos.insert("9503".into(), false);
    }
    let taskid = offer(c, &sn, ApiCode::SendPerson, "{}".into(), persons);
    c.log.note(format!(
        "T_SEND_PERSON {taskid} offered: 9501 with a good face, 9502 whose face answers 404, 9503 whose face is not an image"
    ));
    let entry = await_status(c, &taskid).await;
    {
        let mut s = lock(&c.kit);
        s.bad_photos.clear();
    }
    let Some(entry) = entry else {
        return Err(KitError::Timeout(format!(
            "the terminal did not report task {taskid}"
        )));
    };
    // A person is reported failed with a non-empty errCode, in failedFaces or failedPersons.
    let failed: BTreeMap<String, String> = ["failedFaces", "failedPersons"]
        .iter()
        .filter_map(|k| entry.get(*k).and_then(|l| l.as_array()))
        .flatten()
        .filter_map(|f| {
            let id = f.get("personId")?;
            let id = id
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| id.to_string());
            let code = f.get("errCode").map(|e| {
                e.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| e.to_string())
            });
            Some((id, code.unwrap_or_default()))
        })
        .collect();
    let named = |id: &str| failed.get(id).is_some_and(|code| !code.is_empty());
    c.check(
        "ZJ-STATUS-01",
        named("9502") && named("9503") && !failed.contains_key("9501"),
        format!(
            "the report names the two faces it could not take, each with an errCode, and not the good one: failed {failed:?}, status {:?}",
            status_of(&entry)
        ),
    );
    Ok(())
}

async fn d_firmware(c: &mut DCtx<'_>) -> Result<(), KitError> {
    use sha2::Digest as _;
    let Some(fw) = c.t.firmware.clone() else {
        c.inconclusive("no firmware package the terminal accepts was given (--firmware FILE --firmware-version V)");
        return Ok(());
    };
    let sn = c.flow.sn.clone().unwrap_or_default();
    let digest = hex_of(&sha2::Sha256::digest(&fw.bytes));
    let mut wrong = sha2::Sha256::digest(&fw.bytes);
    wrong[0] ^= 0xff;
    let wrong = hex_of(&wrong);
    let name = format!("{}.bin", fresh_hex());
    lock(&c.kit).firmware.insert(name.clone(), fw.bytes.clone());
    let url = format!("{}/firmware/{name}", c.t.public_url);
    let mut statuses = Vec::new();
    for (sha, label) in [(&wrong, "a wrong sha256"), (&digest, "the right sha256")] {
        let param = json!({"version": fw.version, "size": fw.bytes.len(), "downloadUrl": url, "sha256": sha}).to_string();
        let taskid = offer(c, &sn, ApiCode::UpdateDeviceVersion, param, Vec::new());
        c.log.note(format!(
            "T_UPDATE_DEVICE_VERSION {taskid} offered: version {} with {label}",
            fw.version
        ));
        let status = await_status(c, &taskid).await.and_then(|e| status_of(&e));
        c.log.note(format!(
            "task {taskid} ({label}) reported status {status:?}"
        ));
        statuses.push(status);
    }
    if statuses[1].is_none() && statuses[0].is_none() {
        return Err(KitError::Timeout(
            "the terminal reported neither firmware task".into(),
        ));
    }
    c.check(
        "ZJ-FW-03",
        statuses[0] == Some(2),
        format!(
            "a package whose sha256 differs from the signed task param is refused: status {:?} (2 expected)",
            statuses[0]
        ),
    );
    c.check(
        "ZJ-FW-03",
        statuses[1] == Some(1),
        format!(
            "the same package with its right sha256 is installed: status {:?} (1 expected)",
            statuses[1]
        ),
    );
    Ok(())
}

/// Waits for the operator's Enter on stdin; a closed stdin is an error (nobody acted).
async fn enter() -> Result<(), KitError> {
    let read = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)
    })
    .await
    .map_err(|e| KitError::Setup(format!("stdin: {e}")))?;
    match read {
        Ok(0) => Err(KitError::Setup(
            "stdin closed: no operator to cut the network (try --kit-cuts-network)".into(),
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(KitError::Setup(format!("stdin: {e}"))),
    }
}

async fn d_offline(c: &mut DCtx<'_>) -> Result<(), KitError> {
    let want = c.t.records.max(2);
    if c.t.operator_cuts_network {
        c.prompt("请断开终端的网络（拔网线或关闭 Wi-Fi / 4G），完成后按回车 / Cut the terminal's network now, then press Enter.");
        enter().await?;
        c.prompt(&format!("请在断网状态下在终端上考勤 {want} 次，然后恢复网络并按回车 / Take {want} records on the terminal while it is offline, then restore its network and press Enter."));
        enter().await?;
    } else {
        let bound = {
            let mut s = lock(&c.kit);
            s.refuse = true;
            s.bound.take()
        };
        c.log.note(format!(
            "the kit cuts the network: every connection refused for {:?}",
            c.t.outage
        ));
        if let Some(tx) = bound {
            let _ = tx.send(Out::Close);
            // The records are taken once the terminal has seen its connection end.
            let _ = c
                .until(Duration::from_secs(5), |s| matches!(s, Seen::Closed(_)))
                .await;
        }
        c.prompt(&format!("网络已由工具断开：请在终端上考勤 {want} 次 / The kit has cut the network: take {want} records on the terminal now."));
        tokio::time::sleep(c.t.outage).await;
        lock(&c.kit).refuse = false;
        c.log.note("the kit restores the network");
    }
    // Only what arrives from now on counts: the records taken offline, resent.
    let mut acked: HashMap<(String, i64, String), u32> = HashMap::new();
    let mut resent_after_ack = 0;
    let deadline = tokio::time::Instant::now() + c.t.step_timeout;
    let mut quiet_until: Option<tokio::time::Instant> = None;
    while let Some(seen) = {
        let now = tokio::time::Instant::now();
        let until = quiet_until.unwrap_or(deadline).min(deadline);
        c.next(until.saturating_duration_since(now)).await
    } {
        let Some((req, _, _, _, answer)) = request_of(&seen) else {
            continue;
        };
        if req.apicode != ApiCode::SignIn.as_str() {
            continue;
        }
        let Ok(p) = params::parse::<SignInParam>(req.param.as_deref().unwrap_or("")) else {
            continue;
        };
        let key = (p.person_id, p.record_time, format!("{:?}", p.r#type));
        if let Some(n) = acked.get_mut(&key) {
            *n += 1;
            resent_after_ack += 1;
        } else if answer.success() {
            acked.insert(key, 1);
        }
        if acked.len() >= want && quiet_until.is_none() {
            // A little longer for any duplicate of what was acknowledged.
            quiet_until = Some(tokio::time::Instant::now() + Duration::from_secs(3));
        }
    }
    c.check(
        "ZJ-SIGNIN-05",
        acked.len() >= want,
        format!(
            "the {want} records taken offline were kept and sent once the network came back ({} arrived)",
            acked.len()
        ),
    );
    c.check(
        "ZJ-SIGNIN-05",
        resent_after_ack == 0,
        format!("no acknowledged record was sent again ({resent_after_ack} were)"),
    );
    Ok(())
}

/// Whether a record of `kind` (its `type` bit) carries what that kind requires
/// (ZJ-SIGNIN-01): an iris record its irisInfo, a mobile record its coordinate, a QR record its
/// qrCodeInfo with a code type of 1 or 2 and a code value. The reason when not.
fn kind_members(kind: u32, p: &SignInParam) -> Result<(), String> {
    match kind {
        32 => match p.iris_info.as_deref() {
            Some(i) if !i.trim().is_empty() => Ok(()),
            _ => Err("no irisInfo".into()),
        },
        64 => match p.coordinate {
            Some(c)
                if c.longitude.is_finite()
                    && c.latitude.is_finite()
                    && c.longitude.abs() <= 180.0
                    && c.latitude.abs() <= 90.0
                    && (c.longitude, c.latitude) != (0.0, 0.0) =>
            {
                Ok(())
            }
            Some(c) => Err(format!(
                "an implausible coordinate ({}, {})",
                c.longitude, c.latitude
            )),
            None => Err("no coordinate".into()),
        },
        16 => match &p.qr_code_info {
            Some(q)
                if (q.r#type == 1 || q.r#type == 2)
                    && q.code_value.as_deref().is_some_and(|v| !v.is_empty()) =>
            {
                Ok(())
            }
            Some(q) => Err(format!(
                "qrCodeInfo of type {} with codeValue {:?}",
                q.r#type, q.code_value
            )),
            None => Err("no qrCodeInfo".into()),
        },
        _ => Ok(()),
    }
}

async fn d_kind(c: &mut DCtx<'_>, kind: u32, what: &str) -> Result<(), KitError> {
    c.prompt(&format!(
        "请在终端上以{what}方式考勤一次 / Take one record on the terminal as: {what}."
    ));
    let deadline = tokio::time::Instant::now() + c.t.step_timeout;
    let mut found = None;
    while found.is_none() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(s) = c.next(left).await else { break };
        let Some((req, ..)) = request_of(&s) else {
            continue;
        };
        if req.apicode != ApiCode::SignIn.as_str() {
            continue;
        }
        let Ok(p) = params::parse::<SignInParam>(req.param.as_deref().unwrap_or("")) else {
            continue;
        };
        if p.r#type == kind || p.bit_type.is_some_and(|b| b & kind != 0) {
            found = Some(p);
        }
    }
    let Some(p) = found else {
        return Err(KitError::Timeout(format!(
            "no record of type {kind} arrived"
        )));
    };
    let members = kind_members(kind, &p);
    c.check(
        "ZJ-SIGNIN-01",
        members.is_ok(),
        format!(
            "a record of type {kind} (personId {}) carries what its kind requires{}",
            p.person_id,
            members.err().map(|e| format!(": {e}")).unwrap_or_default()
        ),
    );
    Ok(())
}
