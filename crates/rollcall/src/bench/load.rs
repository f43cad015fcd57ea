//! The load side of `rollcall bench`, shared by every scenario: the server under test as a
//! child process (its addresses read from stdout, its CPU time and RSS read from `/proc`),
//! the admin API, a protocol client built on the protocol crate's codec, and [`drive`], one
//! connection's pipelined request loop, closed-loop or open-loop.
//!
//! Latency is measured from the **send time** in closed-loop mode and from the **intended
//! send time** in open-loop mode, so a stalled server is charged for the requests it
//! delayed (coordinated omission corrected). Samples are kept whole and sorted, so
//! percentiles are exact.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rollcall_client::{AdminClient, NewDevice, NewProject, NewVendor, NewWorker, VendorCreated};
use rollcall_protocol::envelope::{Request, Response};
use rollcall_protocol::frame::{self, FrameDecoder};
use rollcall_protocol::params::{self, AuthResponse, HeartbeatParam};
use rollcall_protocol::time::Timestamp;
use rollcall_protocol::{ApiCode, PROTOCOL_VERSION};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

/// The admin token the bench gives the server it starts.
pub const ADMIN_TOKEN: &str = "rollcall-bench-admin-token";

/// A bench failure: what went wrong, in words.
pub type BenchResult<T> = Result<T, String>;

/// CPU time and memory of one process, read from `/proc/<pid>`.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// utime alone: the process's own code, where stime is the kernel's work for it.
    pub user_ticks: u64,
    /// VmRSS, in KiB.
    pub rss_kib: u64,
}

/// Reads `/proc/<pid>/stat` (utime, stime) and `/proc/<pid>/status` (VmRSS).
pub fn proc_sample(pid: u32) -> BenchResult<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("/proc stat without a command name")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of the man page, utime 14 and stime 15.
    let num = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let user_ticks = num(14 - 3);
    let cpu_ticks = user_ticks + num(15 - 3);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(ProcSample {
        cpu_ticks,
        user_ticks,
        rss_kib,
    })
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 when it cannot be asked).
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// The pid of a running process whose command name is `comm` (e.g. `mosquitto`).
pub fn find_pid(comm: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let name = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (name.trim() == comm).then_some(pid)
    })
}

/// The soft limit on open files of this process (`/proc/self/limits`).
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// A child process that prints `<label>: <addr>` lines on stdout; killed when dropped.
pub struct ChildProc {
    pub child: Child,
    /// The values of the labels asked for, in order.
    pub addrs: Vec<String>,
    /// A temporary data dir, removed when dropped.
    _dir: Option<tempfile::TempDir>,
}

impl ChildProc {
    /// Starts `exe args…` and waits for a line holding each of `labels`.
    pub fn start(
        mut cmd: Command,
        labels: &[&str],
        dir: Option<tempfile::TempDir>,
    ) -> BenchResult<ChildProc> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut addrs: Vec<Option<String>> = vec![None; labels.len()];
        while addrs.iter().any(Option::is_none) {
            let line = match lines.next() {
                Some(Ok(l)) => l,
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{cmd:?} exited before printing its addresses"));
                }
            };
            for (label, slot) in labels.iter().zip(addrs.iter_mut()) {
                if let Some(rest) = line.split(label).nth(1) {
                    *slot = Some(rest.trim().to_owned());
                }
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(ChildProc {
            child,
            addrs: addrs.into_iter().flatten().collect(),
            _dir: dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn sample(&self) -> BenchResult<ProcSample> {
        proc_sample(self.pid())
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the servers of one `rollcall bench` invocation keep their state (a fresh data dir
/// each, or one shared database) and the one secret key they all seal vendor secrets with: on
/// a shared database, run 2's server must open what run 1's sealed, or it refuses to start.
#[derive(Debug, Clone)]
pub struct Backing {
    database_url: Option<String>,
    secret_key: String,
}

impl Backing {
    pub fn new(database_url: Option<String>) -> BenchResult<Backing> {
        let secret_key = rollcall_platform::store::sealing::Keyring::generate_key()
            .map_err(|e| format!("secret key: {e}"))?;
        Ok(Backing {
            database_url,
            secret_key,
        })
    }

    pub fn database_url(&self) -> Option<&str> {
        self.database_url.as_deref()
    }
}

/// The platform under test: `rollcall serve` on free ports, `--rate-limit off`, a temporary
/// data dir (or `database_url`).
pub struct Server {
    pub proc: ChildProc,
    pub tcp: String,
    pub http: String,
    pub data_dir: PathBuf,
}

impl Server {
    pub fn start(target: &Backing) -> BenchResult<Server> {
        Self::start_env(target, &[])
    }

    /// [`Server::start`] with extra environment (e.g. `ROLLCALL_PHOTO_STORE`).
    pub fn start_env(target: &Backing, env: &[(&str, &str)]) -> BenchResult<Server> {
        let dir = tempfile::Builder::new()
            .prefix("rollcall-bench-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let data_dir = dir.path().to_path_buf();
        let mut cmd = Command::new(server_exe()?);
        cmd.args(["serve", "--data-dir"])
            .arg(&data_dir)
            .args([
                "--http-addr",
                "127.0.0.1:0",
                "--tcp-addr",
                "127.0.0.1:0",
                "--admin-token",
                ADMIN_TOKEN,
                "--rate-limit",
                "off",
            ])
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or("warn".into()),
            )
            // Enrolment is set-up, not what is measured: skip the face detector, which would
            // spend most of the sync scenario's set-up on one photo checked 10,000 times.
            .env("ROLLCALL_FACE_RULES", "false")
            .env("ROLLCALL_SECRET_KEY", &target.secret_key)
            .envs(env.iter().copied());
        if let Some(url) = target.database_url() {
            cmd.args(["--database-url", url]);
        }
        let proc = ChildProc::start(cmd, &["device TCP:", "device HTTP:"], Some(dir))?;
        let tcp = proc.addrs[0].clone();
        let http = proc.addrs[1].trim_end_matches("/device/api").to_owned();
        Ok(Server {
            proc,
            tcp,
            http,
            data_dir,
        })
    }

    pub fn admin(&self) -> Admin {
        Admin(AdminClient::new(&self.http, ADMIN_TOKEN))
    }
}

/// The admin API of the server under test, with the set-ups the scenarios share.
#[derive(Clone)]
pub struct Admin(AdminClient);

impl Admin {
    /// A new project with `count` workers enrolled (face `face`, 16 enrolments at a time) on
    /// its roster: the project's id and the workers' person ids, in enrolment order.
    pub async fn project_with_workers(
        &self,
        name: &str,
        count: usize,
        face: &[u8],
    ) -> BenchResult<(String, Vec<String>)> {
        use base64::Engine as _;
        let project = self
            .0
            .create_project(&NewProject {
                name: name.to_owned(),
                ..NewProject::default()
            })
            .await
            .map_err(|e| e.to_string())?
            .id;
        let face = base64::engine::general_purpose::STANDARD.encode(face);
        let mut persons: Vec<String> = Vec::with_capacity(count);
        let serials: Vec<usize> = (0..count).collect();
        for chunk in serials.chunks(16) {
            let posts = chunk.iter().map(|&i| {
                let body = NewWorker {
                    idcard_no: crate::simulate::idcard(i as u32),
                    name: format!("压测工人{i:05}"),
                    face_photo: face.clone(),
                    ..NewWorker::default()
                };
                async move { self.0.create_worker(&body).await }
            });
            for w in futures_util::future::join_all(posts).await {
                persons.push(w.map_err(|e| e.to_string())?.person_id);
            }
        }
        for chunk in persons.chunks(500) {
            self.0
                .join_project(&project, chunk)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok((project, persons))
    }

    /// A new vendor's credentials.
    pub async fn vendor(&self, name: &str) -> BenchResult<Vendor> {
        self.0
            .create_vendor(&NewVendor {
                name: name.to_owned(),
                ..NewVendor::default()
            })
            .await
            .map_err(|e| e.to_string())
    }

    /// Registers a face device of `vendor`, bound to `project`.
    pub async fn device(&self, sn: &str, vendor: &Vendor, project: &str) -> BenchResult<()> {
        self.0
            .create_device(&NewDevice {
                sn: sn.to_owned(),
                vendor_id: vendor.id.clone(),
                project_id: Some(project.to_owned()),
                kind: "face".to_owned(),
                ..NewDevice::default()
            })
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// Vendor credentials, as the admin API issued them.
pub type Vendor = VendorCreated;

/// The binary whose `serve` is measured: this one, or `ROLLCALL_BENCH_SERVER` — so an older
/// build can be measured by the same load generator for a before/after comparison.
fn server_exe() -> BenchResult<PathBuf> {
    match std::env::var_os("ROLLCALL_BENCH_SERVER") {
        Some(path) => Ok(PathBuf::from(path)),
        None => std::env::current_exe().map_err(|e| format!("current exe: {e}")),
    }
}

/// Device time now, epoch ms (the protocol crate's one clock read).
pub use rollcall_protocol::time::now_ms;

/// One device's side of the protocol: builds signed requests as frames.
#[derive(Clone)]
pub struct Proto {
    pub sn: String,
    secret: String,
    token: String,
    seq: u64,
    stamp: (i64, String),
}

impl Proto {
    fn request(&mut self, api: ApiCode, param: Option<String>) -> Vec<u8> {
        let now = now_ms() / 1000;
        if self.stamp.0 != now {
            self.stamp = (now, Timestamp::from_epoch_ms(now * 1000).to_wire());
        }
        self.seq += 1;
        let mut req = Request {
            version: PROTOCOL_VERSION.into(),
            sn: self.sn.clone(),
            token: self.token.clone(),
            apicode: api.as_str().into(),
            time_stamp: self.stamp.1.clone(),
            param,
            seq: self.seq,
            ..Request::default()
        };
        // Signing fails only for an apicode without a recipe; these all have one.
        let _ = req.sign_with(api, &self.secret);
        frame::encode_to_vec(&req.to_packet())
    }

    /// A C_HEARTBEAT frame.
    pub fn heartbeat(&mut self) -> Vec<u8> {
        let param = params::to_json(&HeartbeatParam {
            device_version: "bench-1.0".into(),
            device_ip: "127.0.0.1".into(),
        });
        self.request(ApiCode::Heartbeat, Some(param))
    }

    /// A C_SIGN_IN frame with `img_b64` as the photo.
    pub fn sign_in(&mut self, person: u64, record_time: i64, img_b64: &str) -> Vec<u8> {
        let param = json!({
            "personId": person.to_string(),
            "type": 1,
            "recordTime": record_time,
            "img": img_b64,
        })
        .to_string();
        self.request(ApiCode::SignIn, Some(param))
    }
}

/// Connects and authenticates device `sn` (C_AUTH over TCP): the stream and its protocol side.
pub async fn authenticate(
    addr: &str,
    sn: &str,
    vendor: &Vendor,
) -> BenchResult<(TcpStream, Proto)> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut auth = Request {
        version: PROTOCOL_VERSION.into(),
        sn: sn.into(),
        apicode: ApiCode::Auth.as_str().into(),
        access_id: vendor.access_id.clone(),
        access_key: vendor.access_key.clone(),
        time_stamp: Timestamp::from_epoch_ms(now_ms()).to_wire(),
        ..Request::default()
    };
    auth.sign_with(ApiCode::Auth, &vendor.access_secret)
        .map_err(|e| format!("sign C_AUTH: {e}"))?;
    let resp = round_trip(
        &mut stream,
        &frame::encode_to_vec(&auth.to_packet()),
        "C_AUTH",
    )
    .await?;
    let text = match &resp.outcome {
        Ok(Some(t)) => t.clone(),
        Ok(None) => return Err("C_AUTH: no token".into()),
        Err(e) => return Err(format!("C_AUTH refused: {e}")),
    };
    let token: AuthResponse = params::parse(&text).map_err(|e| format!("C_AUTH: {e}"))?;
    Ok((
        stream,
        Proto {
            sn: sn.to_owned(),
            secret: vendor.access_secret.clone(),
            token: token.token,
            seq: 0,
            stamp: (0, String::new()),
        },
    ))
}

/// Sends one request frame and reads its answer (within 30 s); `what` names it in errors.
pub async fn round_trip(stream: &mut TcpStream, frame: &[u8], what: &str) -> BenchResult<Response> {
    stream
        .write_all(frame)
        .await
        .map_err(|e| format!("send {what}: {e}"))?;
    let mut buf = BytesMut::new();
    loop {
        if let Some(r) = parse_response(&mut buf)? {
            return Ok(r);
        }
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read_buf(&mut buf))
            .await
            .map_err(|_| format!("{what}: no answer in 30 s"))?
            .map_err(|e| format!("{what}: {e}"))?;
        if n == 0 {
            return Err(format!("{what}: connection closed"));
        }
    }
}

/// One response frame from the front of `buf`, if complete.
pub fn parse_response(buf: &mut BytesMut) -> BenchResult<Option<Response>> {
    FrameDecoder::default()
        .decode(buf)
        .map(|p| p.map(Response::from_packet))
        .map_err(|e| format!("corrupt frame: {e}"))
}

/// How requests are paced on one connection.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// At most `window` requests in flight; the next goes when an answer comes.
    Closed { window: usize },
    /// One request every `interval`, whatever the answers do.
    Open { interval: Duration },
}

/// What one connection measured.
#[derive(Debug, Default)]
pub struct Samples {
    /// Round-trip latencies, ns.
    pub latencies_ns: Vec<u64>,
    /// Answers that were errors.
    pub failed: u64,
}

impl Samples {
    pub fn merge(&mut self, other: Samples) {
        self.latencies_ns.extend(other.latencies_ns);
        self.failed += other.failed;
    }

    pub fn ops(&self) -> u64 {
        self.latencies_ns.len() as u64
    }

    /// Sorts the samples; call before [`Samples::percentile_us`].
    pub fn sort(&mut self) {
        self.latencies_ns.sort_unstable();
    }

    /// The `p`-quantile (0..=1) in µs of the sorted samples.
    pub fn percentile_us(&self, p: f64) -> f64 {
        if self.latencies_ns.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_ns.len() - 1) as f64 * p).round() as usize;
        self.latencies_ns[i.min(self.latencies_ns.len() - 1)] as f64 / 1000.0
    }
}

/// Reads one answer: `Ok(Some(success))`, `Ok(None)` when more bytes are needed.
pub type Parse = fn(&mut BytesMut) -> BenchResult<Option<bool>>;

/// [`Parse`] for the rollcall protocol.
pub fn parse_rollcall(buf: &mut BytesMut) -> BenchResult<Option<bool>> {
    Ok(parse_response(buf)?.map(|r| r.success()))
}

/// Sends requests made by `make` on `stream` until `deadline` (or `max_ops` requests),
/// paced by `pace`, and times each answer read by `parse`. Answers come in request order.
/// Every answer is read before it returns, so the connection and `make` come back ready
/// for the next stretch of load (the heartbeat scenario takes turns between servers).
pub async fn drive<F: FnMut() -> Vec<u8> + Send + 'static>(
    stream: TcpStream,
    mut make: F,
    parse: Parse,
    pace: Pace,
    deadline: Instant,
    max_ops: Option<u64>,
) -> BenchResult<(Samples, TcpStream, F)> {
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
    // Open-loop pacing never waits on the window.
    let window = Arc::new(Semaphore::new(match pace {
        Pace::Closed { window } => window.max(1),
        Pace::Open { .. } => 0,
    }));
    let permits = Arc::clone(&window);
    let writer = tokio::spawn(async move {
        let started = Instant::now();
        let mut sent: u64 = 0;
        loop {
            if max_ops.is_some_and(|m| sent >= m) || Instant::now() >= deadline {
                break;
            }
            let at = match pace {
                Pace::Closed { .. } => {
                    match permits.acquire().await {
                        Ok(p) => p.forget(),
                        Err(_) => break,
                    }
                    Instant::now()
                }
                Pace::Open { interval } => {
                    let intended = started + interval.saturating_mul(sent as u32);
                    if intended >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(intended).await;
                    intended
                }
            };
            let bytes = make();
            if tx.send(at).is_err() {
                break;
            }
            if let Err(e) = wr.write_all(&bytes).await {
                return Err(format!("send: {e}"));
            }
            sent += 1;
        }
        Ok((wr, make))
    });
    let mut buf = BytesMut::with_capacity(4096);
    let mut samples = Samples::default();
    let mut pending: VecDeque<Instant> = VecDeque::new();
    let result = async {
        loop {
            let Some(at) = rx.recv().await else {
                return Ok(());
            };
            pending.push_back(at);
            loop {
                if let Some(ok) = parse(&mut buf)? {
                    let at = pending.pop_front().unwrap_or_else(Instant::now);
                    samples.latencies_ns.push(at.elapsed().as_nanos() as u64);
                    if !ok {
                        samples.failed += 1;
                    }
                    if let Pace::Closed { .. } = pace {
                        window.add_permits(1);
                    }
                    break;
                }
                let n = tokio::time::timeout(Duration::from_secs(60), rd.read_buf(&mut buf))
                    .await
                    .map_err(|_| "no answer in 60 s".to_owned())?
                    .map_err(|e| format!("receive: {e}"))?;
                if n == 0 {
                    return Err("the server closed the connection".to_owned());
                }
            }
        }
    }
    .await;
    window.close();
    let (wr, make) = match writer.await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(format!("writer: {e}")),
    };
    result?;
    let stream = rd.reunite(wr).map_err(|e| format!("reunite: {e}"))?;
    Ok((samples, stream, make))
}

/// A temporary directory on the same filesystem as `near`.
pub fn temp_dir_in(near: &Path) -> BenchResult<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("rollcall-bench-disk-")
        .tempdir_in(near)
        .map_err(|e| format!("temp dir: {e}"))
}
