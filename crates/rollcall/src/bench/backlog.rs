//! `rollcall bench backlog`: a device (the real SDK) comes back online with N records queued
//! offline and drains them over its pipelined TCP connection: wall time from its start until
//! its queue is empty, and the server's CPU seconds. As on a site, the device is bound to a
//! project and the records are its 500 rostered workers' (enrolled with the 1.7 KB thumbnail,
//! so the roster the device also downloads on coming online stays small), so every record
//! goes through the full flagging: enrolled, on the roster, the project. Run without photos and with photos (the
//! SDK's 48.9 KB sample face by default, or its 1.7 KB thumbnail with `--small-photos`), each
//! against a fresh server. Queueing the records beforehand is not timed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args;
use rollcall_device::photo::sample::{FACE_JPEG, SMALL_JPEG};
use rollcall_device::{AttendanceRecord, Credentials, Device, DeviceConfig};
use tokio::sync::watch;

use super::load::{self, Backing, BenchResult, Server};
use super::report::{Report, Row};

/// Workers on the device's project whose records make up the backlog (fewer for a backlog
/// of fewer records).
const WORKERS: usize = 500;

/// Flags of `rollcall bench backlog`.
#[derive(Debug, Clone, Args)]
pub struct BacklogArgs {
    /// Records queued offline. / 离线积压记录数
    #[arg(long, default_value_t = 60_000)]
    pub records: usize,
    /// Which runs: none, photos or both. / 是否带照片
    #[arg(long, default_value = "both", value_parser = ["none", "photos", "both"])]
    pub photos: String,
    /// Use the 1.7 KB thumbnail instead of the 48.9 KB face. / 使用小照片
    #[arg(long)]
    pub small_photos: bool,
    /// Sign-ins the device keeps in flight (the SDK's default unless given). / 设备同时在途的考勤数
    #[arg(long)]
    pub window: Option<usize>,
    /// Give up after this many seconds. / 超时秒数
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
}

pub async fn run(args: BacklogArgs, backing: &Backing) -> BenchResult<Report> {
    let mut report = Report::new("backlog");
    let photo: &'static [u8] = if args.small_photos {
        SMALL_JPEG
    } else {
        FACE_JPEG
    };
    let runs: &[bool] = match args.photos.as_str() {
        "none" => &[false],
        "photos" => &[true],
        _ => &[false, true],
    };
    for &with_photos in runs {
        let row = drain(&args, backing, with_photos.then_some(photo)).await?;
        report.rows.push(row);
    }
    report.notes.push(
        "targets for 60,000 records: ≤ 2 s without photos, ≤ 30 s with (scaled by --records)"
            .into(),
    );
    Ok(report)
}

async fn drain(
    args: &BacklogArgs,
    backing: &Backing,
    photo: Option<&'static [u8]>,
) -> BenchResult<Row> {
    let server = Server::start(backing)?;
    let admin = server.admin();
    let vendor = admin.vendor("bench backlog").await?;
    let (project, persons) = admin
        .project_with_workers(
            "bench backlog",
            WORKERS.min(args.records.max(1)),
            SMALL_JPEG,
        )
        .await?;
    let dir = tempfile::Builder::new()
        .prefix("rollcall-bench-device-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let creds = Credentials::new(
        vendor.access_id.as_str(),
        vendor.access_key.as_str(),
        vendor.access_secret.as_str(),
    );
    let sn = if photo.is_some() {
        "BACKLOGP1"
    } else {
        "BACKLOGN1"
    };
    let mut config = DeviceConfig::new(
        sn,
        creds,
        server.tcp.as_str(),
        server.http.as_str(),
        dir.path(),
    );
    if let Some(window) = args.window {
        config.tuning.window = window;
    }
    let window = config.tuning.window;
    admin.device(sn, &vendor, &project).await?;
    let device = Device::open(config).map_err(|e| format!("device: {e}"))?;
    let handle = device.handle();
    // Queued while offline: the device is not running yet.
    let base = load::now_ms() - 24 * 3_600_000;
    let serials: Vec<usize> = (0..args.records).collect();
    for chunk in serials.chunks(1000) {
        let records = chunk
            .iter()
            .map(|&i| {
                AttendanceRecord::face(
                    persons[i % persons.len()].clone(),
                    base + i as i64 * 1000,
                    photo.map(<[u8]>::to_vec),
                )
            })
            .collect();
        handle
            .enqueue_many(records)
            .await
            .map_err(|e| format!("queue: {e}"))?;
    }
    let queued = handle
        .queue_len()
        .await
        .map_err(|e| format!("queue: {e}"))?;
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let before = server.proc.sample()?;
    let started = Instant::now();
    let running = tokio::spawn(device.run(async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    // The device's counters say when every record may be done; only then is the queue
    // counted. Counting it scans the SDK's queue table: polled every 10 ms, it took 0.16 s
    // of CPU in a 1.43 s drain, on the two cores the server shares with the bench
    // (BENCHMARKS.md, session 24).
    let stats = Arc::clone(handle.stats());
    let settled =
        || stats.acked.load(Ordering::Relaxed) + stats.dead_lettered.load(Ordering::Relaxed);
    let mut left = queued;
    while started.elapsed() < Duration::from_secs(args.timeout) {
        if settled() >= queued {
            left = handle.queue_len().await.unwrap_or(left);
            if left == 0 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let after = server.proc.sample()?;
    if left != 0 {
        // Timed out: what is left, counted once.
        left = handle.queue_len().await.unwrap_or(left);
    }
    let _ = stop_tx.send(true);
    let _ = running.await;
    let acked = stats.acked.load(Ordering::Relaxed);
    let cpu = after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64 / load::clock_ticks() as f64;
    let scale = args.records as f64 / 60_000.0;
    let target = if photo.is_some() { 30.0 } else { 2.0 } * scale;
    Ok(Row::new()
        .with("photo_bytes", photo.map_or(0, <[u8]>::len) as u64)
        .with("window", window as u64)
        .with("queued", queued)
        .with("acked", acked)
        .with("left", left)
        .with("wall_s", wall)
        .with("records_per_s", acked as f64 / wall.max(1e-9))
        .with("server_cpu_s", cpu)
        .with("target_s", target)
        .with("met", left == 0 && wall <= target))
}
