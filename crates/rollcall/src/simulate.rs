//! `rollcall simulate`: N simulated attendance terminals, each a real `rollcall-device` SDK
//! device with its own store under `--data-dir`, taking records at `--rate` per minute
//! (`--pattern steady | morning-peak`), optionally losing the network for a while, with live
//! progress and a summary (records sent, acknowledged, duplicates, upload latency p50/p99).
//!
//! With `--admin-token` the simulator sets up a self-contained demo through the admin API: a
//! vendor (unless credentials are given), a project, `--workers` enrolled workers with a face
//! photo, and the devices registered and bound to the project, so every device first
//! downloads the roster and then signs in those workers. Without it, vendor credentials are
//! required and the devices register themselves (unbound) on their first C_AUTH; their
//! records name persons the platform does not know (flag `unknown_person`).
//!
//! Every kind of terminal can be played (`--kind`, or a mix with `--kinds
//! face=10,iris=1,mobile=2,qr=1,gate=2,collector=1`; [`kinds`]): face and gate terminals send
//! face records, iris terminals `irisInfo`, mobile terminals a face and their coordinate —
//! inside the project's fence or, for `--outside-fence-share` of them, outside it — QR
//! terminals the code info with a face, and collectors enrol new workers with
//! `X_COLLECT_PERSON` at `--collect-rate`. With `--admin-token` each device is registered with
//! its kind (gates with their direction, in or out) and the project gets a circular fence of
//! `--fence-radius` metres around `--site`; without it the platform knows none of this.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rollcall_client::{
    AdminClient, ClientError, DevicePatch, NewDevice, NewProject, NewVendor, NewWorker,
};
use rollcall_device::backoff::Rng;
use rollcall_device::photo::sample::FACE_JPEG;
use rollcall_device::{Collector, Credentials, Device, DeviceConfig, DeviceEvent, DeviceHandle};
use rollcall_protocol::ids::Secret;
use tokio::sync::{mpsc, watch};

pub(crate) mod kinds;

use kinds::{KindMix, Site, Terminal};

/// Flags of `rollcall simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// How many terminals (all of --kind). / 模拟设备数
    #[arg(long, default_value_t = 10)]
    pub devices: usize,
    /// The kind of every terminal: face, iris, mobile, qr, gate (alternating in and out),
    /// gate-in, gate-out, collector. / 终端类型
    #[arg(long, default_value = "face")]
    pub kind: String,
    /// A mix of kinds with their counts, e.g. face=10,mobile=2,gate=4,collector=1 (instead of
    /// --devices and --kind). / 终端组合
    #[arg(long, conflicts_with_all = ["devices", "kind"])]
    pub kinds: Option<KindMix>,
    /// Share of the mobile terminals that stand outside the project's fence, 0 to 1. / 围栏外移动终端比例
    #[arg(long, default_value_t = 0.0)]
    pub outside_fence_share: f64,
    /// The site, centre of the fence: longitude,latitude (GCJ-02). / 工地坐标（经度,纬度）
    #[arg(long, default_value = "120.15,30.28", allow_hyphen_values = true)]
    pub site: Site,
    /// Radius of the project's fence in metres (set with --admin-token). / 电子围栏半径（米）
    #[arg(long, default_value_t = 500.0)]
    pub fence_radius: f64,
    /// Enrolments per collector per minute (mean). / 每台采集设备每分钟登记人数
    #[arg(long, default_value_t = 2.0)]
    pub collect_rate: f64,
    /// The platform's device TCP address. / 平台 TCP 地址
    #[arg(long, default_value = "127.0.0.1:7700")]
    pub tcp: String,
    /// The platform's HTTP base URL (http:// or https://). / 平台 HTTP 地址
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub http: String,
    /// A PEM CA certificate to trust for an https:// platform, besides the system's roots. / 额外信任的 CA 证书
    #[arg(long, env = "ROLLCALL_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Vendor accessId (made with --admin-token when absent). / 厂商 accessId
    #[arg(long, env = "ROLLCALL_ACCESS_ID")]
    pub access_id: Option<String>,
    /// Vendor accessKey. / 厂商 accessKey
    #[arg(long, env = "ROLLCALL_ACCESS_KEY", hide_env_values = true)]
    pub access_key: Option<Secret>,
    /// Vendor accessSecret. / 厂商 accessSecret
    #[arg(long, env = "ROLLCALL_ACCESS_SECRET", hide_env_values = true)]
    pub access_secret: Option<Secret>,
    /// Admin token: set up vendor, project, workers and devices for a self-contained demo. / 管理员令牌
    #[arg(long, env = "ROLLCALL_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,
    /// Serial numbers are PREFIX0001, PREFIX0002, … / 序列号前缀
    #[arg(long, default_value = "SIM")]
    pub sn_prefix: String,
    /// Workers to enrol with --admin-token. / 登记工人数
    #[arg(long, default_value_t = 20)]
    pub workers: usize,
    /// Records per device per minute (mean). / 每台设备每分钟考勤数
    #[arg(long, default_value_t = 6.0)]
    pub rate: f64,
    /// How records spread over the run. / 考勤分布
    #[arg(long, value_enum, default_value_t = Pattern::Steady)]
    pub pattern: Pattern,
    /// Go offline this many seconds into the run… / 多少秒后断网
    #[arg(long)]
    pub offline_after: Option<u64>,
    /// …for this many seconds (records keep queueing). / 断网持续秒数
    #[arg(long, default_value_t = 30)]
    pub offline_for: u64,
    /// Length of the run in seconds. / 运行秒数
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// After the run, wait at most this long for the queues to drain. / 结束后等待上传秒数
    #[arg(long, default_value_t = 60)]
    pub drain: u64,
    /// Each device keeps its store under DIR/<sn>. / 数据目录
    #[arg(long, default_value = "sim-data")]
    pub data_dir: PathBuf,
    /// Sign-ins in flight per device. / 每台设备并发上传数
    #[arg(long, default_value_t = 64)]
    pub window: usize,
}

/// How records are spread over the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pattern {
    /// A constant rate. / 均匀
    Steady,
    /// A rush around a quarter of the run, near 3× the mean, over a 40 % baseline; the mean
    /// stays `--rate`. / 早高峰
    MorningPeak,
}

impl Pattern {
    /// The rate factor at `x` ∈ [0, 1] of the run, and its maximum.
    fn factor(self, x: f64) -> (f64, f64) {
        match self {
            Pattern::Steady => (1.0, 1.0),
            Pattern::MorningPeak => {
                let z = (x - 0.25) / 0.1;
                (0.4 + 2.4 * (-z * z / 2.0).exp(), 2.8)
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum SimError {
    #[error("{0}")]
    Usage(String),
    #[error("admin API {0}")]
    Admin(#[from] ClientError),
    #[error(transparent)]
    Sdk(#[from] rollcall_device::SdkError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Runs the simulator; the exit code of `rollcall simulate`.
pub fn run(args: SimulateArgs) -> ExitCode {
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rollcall simulate: {}", SimError::Runtime(e));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(simulate(args)) {
        Ok(summary) => {
            summary.print();
            if summary.left_in_queues > 0 {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(SimError::Usage(u)) => {
            eprintln!("rollcall simulate: {u}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("rollcall simulate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Warnings only by default (`RUST_LOG` overrides), so the progress line stays readable.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Vendor credentials, a project (with its fence) and enrolled workers, devices of their
/// kinds bound to it.
async fn set_up(
    args: &SimulateArgs,
    ca_pem: Option<&str>,
    terminals: &[Terminal],
) -> Result<Credentials, SimError> {
    let given = match (&args.access_id, &args.access_key, &args.access_secret) {
        (Some(i), Some(k), Some(s)) => Some(Credentials::new(i.as_str(), k.clone(), s.clone())),
        (None, None, None) => None,
        _ => {
            return Err(SimError::Usage(
                "give all of --access-id, --access-key and --access-secret, or none".into(),
            ));
        }
    };
    let Some(token) = &args.admin_token else {
        if terminals
            .iter()
            .any(|t| t.kind != rollcall_device::TerminalKind::Face)
        {
            eprintln!(
                "没有 --admin-token：平台只知道设备自行登记的类型 face / without --admin-token the platform registers every device as kind face (no gate direction, no collector) unless an operator registered them"
            );
        }
        return given.ok_or_else(|| {
            SimError::Usage(
                "vendor credentials (--access-id/--access-key/--access-secret) or --admin-token are needed"
                    .into(),
            )
        });
    };
    let admin = match ca_pem {
        Some(pem) => AdminClient::with_extra_ca(&args.http, token.expose(), pem.as_bytes())?,
        None => AdminClient::new(&args.http, token.expose()),
    };
    let (creds, vendor_id) = match given {
        Some(c) => {
            // Find the vendor these credentials belong to (devices are registered under it).
            let list = match admin.list_vendors().await {
                Ok(list) => list,
                Err(e @ ClientError::Transport { .. }) => return Err(e.into()),
                Err(_) => Vec::new(),
            };
            let id = list
                .into_iter()
                .find(|v| v.access_id == c.access_id.as_str())
                .map(|v| v.id);
            (c, id)
        }
        None => {
            let v = admin
                .create_vendor(&NewVendor {
                    name: format!("模拟厂商 {}", args.sn_prefix),
                    ..NewVendor::default()
                })
                .await?;
            eprintln!("厂商 / vendor: id {} accessId {}", v.id, v.access_id);
            (
                Credentials::new(v.access_id, v.access_key, v.access_secret),
                Some(v.id),
            )
        }
    };
    let Some(vendor_id) = vendor_id else {
        // Credentials the admin API does not list: let the devices register themselves.
        return Ok(creds);
    };
    let project = admin
        .create_project(&NewProject {
            name: format!("模拟工地 {}", args.sn_prefix),
            fence: Some(kinds::fence(args.site, args.fence_radius)),
            ..NewProject::default()
        })
        .await?
        .id;
    let face = base64::engine::general_purpose::STANDARD.encode(FACE_JPEG);
    let mut rng = Rng::from_entropy();
    let base = rng.below(300_000) as u32;
    let mut persons = Vec::with_capacity(args.workers);
    for i in 0..args.workers {
        let body = NewWorker {
            idcard_no: idcard(base + i as u32),
            name: format!("模拟工人{:03}", i + 1),
            face_photo: face.clone(),
            ..NewWorker::default()
        };
        match admin.create_worker(&body).await {
            Ok(w) => persons.push(w.person_id),
            // Enrolled by an earlier run: the answer names the worker.
            Err(e) if e.status() == Some(409) => {
                persons.extend(e.existing_person_id().map(str::to_owned));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !persons.is_empty() {
        admin.join_project(&project, &persons).await?;
    }
    for t in terminals {
        let (kind, direction) = (t.kind.admin_kind(), t.kind.admin_direction());
        let body = NewDevice {
            sn: t.sn.clone(),
            vendor_id: vendor_id.clone(),
            project_id: Some(project.clone()),
            kind: kind.to_owned(),
            // Every kind but a gate counts both ways.
            direction: Some(direction.unwrap_or("both").to_owned()),
            ..NewDevice::default()
        };
        match admin.create_device(&body).await {
            Ok(_) => {}
            // Registered by an earlier run: bind it, with this run's kind and direction.
            Err(e) if e.status() == Some(409) => {
                let bind = DevicePatch {
                    project_id: Some(Some(project.clone())),
                    kind: Some(kind.to_owned()),
                    direction: Some(direction.unwrap_or("both").to_owned()),
                    ..DevicePatch::default()
                };
                admin.patch_device(&t.sn, &bind).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    eprintln!(
        "项目 / project {project}: {} workers, {} devices bound ({})",
        persons.len(),
        terminals.len(),
        kinds::describe(terminals)
    );
    Ok(creds)
}

/// A valid ID-card number (GB 11643-1999) for serial `n`.
pub(crate) fn idcard(n: u32) -> String {
    let day = 1 + (n / 1000) % 28;
    let month = 1 + (n / 28_000) % 12;
    let year = 1960 + (n / 336_000) % 40;
    let first17 = format!("330106{year}{month:02}{day:02}{:03}", n % 1000);
    // 17 digits by construction.
    rollcall_platform::rules::idcard::with_check_char(&first17).unwrap_or(first17)
}

/// Shared counters of the run.
#[derive(Default)]
struct Tally {
    taken: AtomicU64,
    acked: AtomicU64,
    duplicates: AtomicU64,
    dead: AtomicU64,
    refused: AtomicU64,
    collected: AtomicU64,
    collect_failed: AtomicU64,
    /// The first enrolment that failed, for the summary.
    collect_error: Mutex<Option<String>>,
}

/// What the run did.
struct Summary {
    devices: usize,
    terminals: String,
    collectors: usize,
    collected: u64,
    collect_failed: u64,
    collect_error: Option<String>,
    online_at_end: usize,
    taken: u64,
    sent: u64,
    acked: u64,
    duplicates: u64,
    dead: u64,
    refused: u64,
    left_in_queues: u64,
    latencies: Vec<i64>,
    persons: (u64, u64),
    faces: (u64, u64),
    elapsed: Duration,
}

impl Summary {
    fn percentile(&self, p: f64) -> Option<i64> {
        if self.latencies.is_empty() {
            return None;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies.get(i).copied()
    }

    fn print(&self) {
        let ms = |v: Option<i64>| v.map_or("-".to_owned(), |v| format!("{v} ms"));
        println!("模拟结束 / simulation finished in {:.1?}", self.elapsed);
        println!(
            "  设备 / devices:                {} ({} online at the end)",
            self.devices, self.online_at_end
        );
        println!("  终端 / terminals:              {}", self.terminals);
        println!(
            "  人员 / persons per device:     {}..{} (faces {}..{})",
            self.persons.0, self.persons.1, self.faces.0, self.faces.1
        );
        println!("  采集 / records taken:          {}", self.taken);
        println!(
            "  发送 / sign-ins sent:          {} (resends included)",
            self.sent
        );
        println!(
            "  确认 / acknowledged:           {} ({} duplicates)",
            self.acked, self.duplicates
        );
        println!("  死信 / dead letters:           {}", self.dead);
        println!("  队列剩余 / left in queues:     {}", self.left_in_queues);
        if self.collectors > 0 {
            println!(
                "  登记 / persons collected:      {} ({} failed)",
                self.collected, self.collect_failed
            );
            if let Some(e) = &self.collect_error {
                println!("  登记失败 / first failure:      {e}");
            }
        }
        if self.refused > 0 {
            println!("  拒绝 / device refusals:        {}", self.refused);
        }
        println!(
            "  上传延迟 / upload latency:     p50 {}  p99 {}  max {}",
            ms(self.percentile(0.5)),
            ms(self.percentile(0.99)),
            ms(self.latencies.last().copied())
        );
    }
}

async fn simulate(args: SimulateArgs) -> Result<Summary, SimError> {
    if args.kinds.is_none() && args.devices == 0 {
        return Err(SimError::Usage("--devices must be at least 1".into()));
    }
    if !(args.rate.is_finite() && args.rate >= 0.0) {
        return Err(SimError::Usage("--rate must be a number ≥ 0".into()));
    }
    if !(args.collect_rate.is_finite() && args.collect_rate >= 0.0) {
        return Err(SimError::Usage(
            "--collect-rate must be a number ≥ 0".into(),
        ));
    }
    if !(0.0..=1.0).contains(&args.outside_fence_share) {
        return Err(SimError::Usage(
            "--outside-fence-share must be between 0 and 1".into(),
        ));
    }
    if !(args.fence_radius.is_finite() && args.fence_radius > 0.0 && args.fence_radius <= 100_000.0)
    {
        return Err(SimError::Usage(
            "--fence-radius must be more than 0 and at most 100000 metres".into(),
        ));
    }
    let mix = match &args.kinds {
        Some(mix) => mix.clone(),
        None => format!("{}={}", args.kind, args.devices)
            .parse::<KindMix>()
            .map_err(|e| SimError::Usage(format!("--kind: {e}")))?,
    };
    let terminals = kinds::plan(&mix, &args.sn_prefix, args.outside_fence_share);
    let ca_pem = match &args.ca_cert {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| SimError::Usage(format!("--ca-cert {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let creds = set_up(&args, ca_pem.as_deref(), &terminals).await?;

    let tally = Arc::new(Tally::default());
    let (latency_tx, mut latency_rx) = mpsc::unbounded_channel::<i64>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut handles: Vec<DeviceHandle> = Vec::with_capacity(terminals.len());
    let mut collectors: Vec<(usize, Collector)> = Vec::new();
    let mut runs = Vec::with_capacity(terminals.len());
    for (i, t) in terminals.iter().enumerate() {
        let sn = &t.sn;
        let mut config = DeviceConfig::new(
            sn.as_str(),
            creds.clone(),
            args.tcp.as_str(),
            args.http.as_str(),
            args.data_dir.join(sn),
        );
        config.device_version = "SIM-1.0".into();
        config.ca_cert_pem = ca_pem.clone();
        config.tuning.window = args.window.max(1);
        if !t.kind.takes_attendance() {
            // A collector enrols over HTTP; its Device beside heartbeats and runs its tasks.
            collectors.push((i, Collector::new(config.clone())?));
        }
        let mut device = Device::open(config)?;
        let mut events = device.subscribe();
        handles.push(device.handle());
        let tally = Arc::clone(&tally);
        let latency = latency_tx.clone();
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                match e {
                    DeviceEvent::Acked {
                        duplicate,
                        record_time,
                        acked_at,
                        ..
                    } => {
                        tally.acked.fetch_add(1, Ordering::Relaxed);
                        if duplicate {
                            tally.duplicates.fetch_add(1, Ordering::Relaxed);
                        }
                        let _ = latency.send(acked_at - record_time);
                    }
                    DeviceEvent::DeadLettered { .. } => {
                        tally.dead.fetch_add(1, Ordering::Relaxed);
                    }
                    DeviceEvent::Refused(e) => {
                        tally.refused.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(error = %e, "the platform refused a device");
                    }
                    _ => {}
                }
            }
        });
        let mut stop = stop_rx.clone();
        runs.push(tokio::spawn(device.run(async move {
            let _ = stop.wait_for(|s| *s).await;
        })));
    }
    drop(latency_tx);
    let latencies = tokio::spawn(async move {
        let mut v = Vec::new();
        while let Some(l) = latency_rx.recv().await {
            v.push(l);
        }
        v
    });

    let started = Instant::now();
    let duration = Duration::from_secs(args.duration);
    let (gen_stop_tx, gen_stop_rx) = watch::channel(false);
    let mut generators = Vec::new();
    let placing = Placing {
        site: args.site,
        radius: args.fence_radius,
    };
    for (i, (handle, terminal)) in handles.iter().zip(&terminals).enumerate() {
        if !terminal.kind.takes_attendance() {
            continue;
        }
        generators.push(tokio::spawn(generate(
            handle.clone(),
            terminal.clone(),
            i,
            placing,
            args.rate,
            args.pattern,
            duration,
            Arc::clone(&tally),
            gen_stop_rx.clone(),
        )));
    }
    let collector_count = collectors.len();
    // ID numbers of enrolments: above the range `set_up` enrols from, a block per collector.
    let idcard_base = 400_000 + Rng::from_entropy().below(200_000) as u32;
    for (i, collector) in collectors {
        generators.push(tokio::spawn(collect(
            collector,
            idcard_base + i as u32 * 10_000,
            args.collect_rate,
            Arc::clone(&tally),
            gen_stop_rx.clone(),
        )));
    }

    let bar = ProgressBar::new(args.duration.max(1));
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut offline_done = false;
    let mut went_offline = false;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let drain_deadline = duration + Duration::from_secs(args.drain);
    let mut draining = false;
    loop {
        tick.tick().await;
        let t = started.elapsed();
        if let Some(after) = args.offline_after {
            let (from, to) = (
                Duration::from_secs(after),
                Duration::from_secs(after + args.offline_for),
            );
            if !went_offline && t >= from {
                went_offline = true;
                handles.iter().for_each(|h| h.set_network(false));
                bar.println(format!("{:>6.1?}  网络断开 / network off", t));
            }
            if went_offline && !offline_done && t >= to {
                offline_done = true;
                handles.iter().for_each(|h| h.set_network(true));
                bar.println(format!("{:>6.1?}  网络恢复 / network back", t));
            }
        }
        let queued = queued(&handles).await;
        let online = handles.iter().filter(|h| h.stats().online()).count();
        bar.set_position(t.as_secs().min(args.duration));
        let enrolments = if collector_count > 0 {
            format!(
                " | 登记 collected {}",
                tally.collected.load(Ordering::Relaxed)
            )
        } else {
            String::new()
        };
        bar.set_message(format!(
            "在线 online {online}/{} | 采集 taken {} | 确认 acked {} | 队列 queued {queued} | 重复 dup {} | 死信 dead {}{enrolments}",
            handles.len(),
            tally.taken.load(Ordering::Relaxed),
            tally.acked.load(Ordering::Relaxed),
            tally.duplicates.load(Ordering::Relaxed),
            tally.dead.load(Ordering::Relaxed),
        ));
        if t >= duration && !draining {
            draining = true;
            let _ = gen_stop_tx.send(true);
            if went_offline && !offline_done {
                offline_done = true;
                handles.iter().for_each(|h| h.set_network(true));
            }
            // Wait for the generators' last records to be queued before judging the queues
            // drained: `queued` above was read while they still ran.
            for g in std::mem::take(&mut generators) {
                let _ = g.await;
            }
            continue;
        }
        if draining && (queued == 0 || t >= drain_deadline) {
            break;
        }
    }
    bar.finish();
    for g in generators {
        let _ = g.await;
    }
    let online_at_end = handles.iter().filter(|h| h.stats().online()).count();
    let left_in_queues = queued(&handles).await;
    let (mut persons, mut faces) = ((u64::MAX, 0), (u64::MAX, 0));
    for h in &handles {
        let (p, f) = h.counts().await.unwrap_or_default();
        persons = (persons.0.min(p), persons.1.max(p));
        faces = (faces.0.min(f), faces.1.max(f));
    }
    let sent = handles
        .iter()
        .map(|h| h.stats().sent.load(Ordering::Relaxed))
        .sum();
    let _ = stop_tx.send(true);
    for r in runs {
        match r.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "a device stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "a device task failed"),
        }
    }
    drop(handles);
    let mut latencies = latencies.await.unwrap_or_default();
    latencies.sort_unstable();
    let collect_error = tally
        .collect_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(Summary {
        devices: terminals.len(),
        terminals: kinds::describe(&terminals),
        collectors: collector_count,
        collected: tally.collected.load(Ordering::Relaxed),
        collect_failed: tally.collect_failed.load(Ordering::Relaxed),
        collect_error,
        online_at_end,
        taken: tally.taken.load(Ordering::Relaxed),
        sent,
        acked: tally.acked.load(Ordering::Relaxed),
        duplicates: tally.duplicates.load(Ordering::Relaxed),
        dead: tally.dead.load(Ordering::Relaxed),
        refused: tally.refused.load(Ordering::Relaxed),
        left_in_queues,
        latencies,
        persons: (persons.0.min(persons.1), persons.1),
        faces: (faces.0.min(faces.1), faces.1),
        elapsed: started.elapsed(),
    })
}

async fn queued(handles: &[DeviceHandle]) -> u64 {
    let mut n = 0;
    for h in handles {
        n += h.queue_len().await.unwrap_or_default();
    }
    n
}

/// Where mobile terminals stand: the fence's centre and radius.
#[derive(Debug, Clone, Copy)]
struct Placing {
    site: Site,
    radius: f64,
}

/// Takes records on one device: a Poisson process of `rate` per minute shaped by `pattern`
/// (thinning), naming persons of the device's roster when it has one; each record is the
/// kind's own ([`kinds::record`]).
#[allow(clippy::too_many_arguments)] // one spawned task's whole input
async fn generate(
    handle: DeviceHandle,
    terminal: Terminal,
    index: usize,
    placing: Placing,
    rate: f64,
    pattern: Pattern,
    duration: Duration,
    tally: Arc<Tally>,
    mut stop: watch::Receiver<bool>,
) {
    if rate <= 0.0 {
        return;
    }
    let mut rng = Rng::from_entropy();
    let (_, peak) = pattern.factor(0.0);
    let max_per_sec = rate * peak / 60.0;
    let started = Instant::now();
    let mut roster: Vec<String> = Vec::new();
    let mut roster_read = None::<Instant>;
    loop {
        // Exponential gap at the peak rate, then keep the arrival with probability f/peak.
        let gap = -(1.0 - rng.next_f64()).ln() / max_per_sec;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(gap.min(3600.0))) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let x = started.elapsed().as_secs_f64() / duration.as_secs_f64().max(1.0);
        let (f, _) = pattern.factor(x.min(1.0));
        if rng.next_f64() * peak > f {
            continue;
        }
        if roster_read.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
            roster = handle.person_ids(1000).await.unwrap_or_default();
            roster_read = Some(Instant::now());
        }
        let person = if roster.is_empty() {
            format!("{}", 9_000_000 + index as u64 * 1000 + rng.below(50))
        } else {
            roster[rng.below(roster.len() as u64) as usize].clone()
        };
        let now = rollcall_device::http::now_ms();
        let Some(record) = kinds::record(
            &terminal,
            person,
            now,
            placing.site,
            placing.radius,
            &mut rng,
        ) else {
            return;
        };
        match handle.enqueue(record).await {
            Ok(_) => {
                tally.taken.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "cannot queue a record"),
        }
    }
}

/// Enrols workers on one collector: a Poisson process of `rate` per minute, each a new ID
/// card (serials from `first_serial`) uploaded with `X_COLLECT_PERSON` and awaited — a
/// collection device enrols one worker at a time.
async fn collect(
    collector: Collector,
    first_serial: u32,
    rate: f64,
    tally: Arc<Tally>,
    mut stop: watch::Receiver<bool>,
) {
    if rate <= 0.0 {
        return;
    }
    let mut rng = Rng::from_entropy();
    let per_sec = rate / 60.0;
    for n in 0u32.. {
        let gap = -(1.0 - rng.next_f64()).ln() / per_sec;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(gap.min(3600.0))) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let person = kinds::collected(idcard(first_serial + n), u64::from(n) + 1);
        match collector.upload(&person).await {
            Ok(_) => {
                tally.collected.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tally.collect_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "an enrolment failed");
                let mut first = tally
                    .collect_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn morning_peak_keeps_the_mean_rate() {
        let steps = 10_000;
        let mean: f64 = (0..steps)
            .map(|i| Pattern::MorningPeak.factor(i as f64 / steps as f64).0)
            .sum::<f64>()
            / steps as f64;
        assert!((mean - 1.0).abs() < 0.05, "{mean}");
        let (f, max) = Pattern::MorningPeak.factor(0.25);
        assert!(f <= max && f > 2.5);
    }

    #[test]
    fn generated_id_cards_are_distinct_and_well_formed() {
        let n = idcard(12_345);
        assert_eq!(n.len(), 18);
        assert!(n[..17].bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(idcard(1), idcard(2));
    }
}
