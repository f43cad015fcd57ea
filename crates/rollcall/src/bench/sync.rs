//! `rollcall bench sync`: one device (the real SDK) downloading a roster of N persons with
//! face photos (the SDK's 48.9 KB sample face) onto its store: wall time from the device's
//! start until it holds every person and every face, and the server's CPU seconds meanwhile.
//! The enrolment through the admin API beforehand is not timed.
//!
//! In the same run, the disk's own time for the same result (`disk_s`): the same faces
//! written into a fresh SDK store the way a sync writes them, a page at a time, each page one
//! transaction and its fsync. Where the disk is what bounds a sync, `vs_disk` (wall ÷ disk)
//! is the figure to compare between machines.

use std::time::{Duration, Instant};

use clap::Args;
use rollcall_device::photo::PhotoFormat;
use rollcall_device::photo::sample::FACE_JPEG;
use rollcall_device::store::ops::{self, FaceUpdate, PersonRow};
use rollcall_device::{Credentials, Device, DeviceConfig, StoreHandle, Tuning};
use tokio::sync::watch;

use super::load::{self, Backing, BenchResult, Server};
use super::report::{Report, Row};

/// Flags of `rollcall bench sync`.
#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    /// Persons on the roster. / 人员数
    #[arg(long, default_value_t = 10_000)]
    pub persons: usize,
    /// Give up after this many seconds. / 超时秒数
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
}

pub async fn run(args: SyncArgs, backing: &Backing) -> BenchResult<Report> {
    let mut report = Report::new("sync");
    let server = Server::start(backing)?;
    let admin = server.admin();
    let vendor = admin.vendor("bench sync").await?;
    let enrol_started = Instant::now();
    let (project, persons) = admin
        .project_with_workers("bench sync", args.persons, FACE_JPEG)
        .await?;
    let sn = "SYNC00001";
    admin.device(sn, &vendor, &project).await?;
    let enrol_secs = enrol_started.elapsed().as_secs_f64();

    let dir = tempfile::Builder::new()
        .prefix("rollcall-bench-device-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let creds = Credentials::new(
        vendor.access_id.as_str(),
        vendor.access_key.as_str(),
        vendor.access_secret.as_str(),
    );
    let config = DeviceConfig::new(
        sn,
        creds,
        server.tcp.as_str(),
        server.http.as_str(),
        dir.path(),
    );
    let device = Device::open(config).map_err(|e| format!("device: {e}"))?;
    let handle = device.handle();
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let before = server.proc.sample()?;
    let started = Instant::now();
    let running = tokio::spawn(device.run(async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    let want = persons.len() as u64;
    let mut held = (0, 0);
    while started.elapsed() < Duration::from_secs(args.timeout) {
        held = handle.counts().await.unwrap_or_default();
        if held.0 >= want && held.1 >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let after = server.proc.sample()?;
    let _ = stop_tx.send(true);
    let _ = running.await;
    let cpu = after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64 / load::clock_ticks() as f64;
    let complete = held.0 >= want && held.1 >= want;
    let disk = disk_secs(persons.len(), Tuning::default().page_size as usize).await?;
    report.rows.push(
        Row::new()
            .with("persons", want)
            .with("on_device", held.0)
            .with("faces_on_device", held.1)
            .with("complete", complete)
            .with("wall_s", wall)
            .with("server_cpu_s", cpu)
            .with("disk_s", disk)
            .with("vs_disk", wall / disk.max(1e-9))
            .with("target_s", 10.0 * want as f64 / 10_000.0)
            // Issue 18: within the time target, or within 1.5× of the disk where it bounds.
            .with(
                "met",
                complete && (wall <= 10.0 * want as f64 / 10_000.0 || wall <= 1.5 * disk),
            ),
    );
    report.notes.push(format!(
        "face photo {} bytes; enrolment through the admin API (not timed) took {enrol_secs:.1} s",
        FACE_JPEG.len()
    ));
    Ok(report)
}

/// Seconds the disk takes to store `persons` faces the way the SDK's sync does: into a fresh
/// SDK store on the same filesystem as the device's, `page` persons per transaction (one
/// fsync each), the pages one after the other.
async fn disk_secs(persons: usize, page: usize) -> BenchResult<f64> {
    let dir = tempfile::Builder::new()
        .prefix("rollcall-bench-disk-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let store = StoreHandle::open(dir.path().join("device.db")).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let serials: Vec<usize> = (0..persons).collect();
    for chunk in serials.chunks(page.max(1)) {
        let rows: Vec<PersonRow> = chunk
            .iter()
            .map(|i| PersonRow {
                person_id: format!("DISK{i:08}"),
                name: format!("压测工人{i:05}"),
                face: FaceUpdate::Set {
                    format: PhotoFormat::Jpeg,
                    photo: FACE_JPEG.to_vec(),
                },
            })
            .collect();
        store
            .call(move |c| ops::upsert_persons(c, &rows, None, 0))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(started.elapsed().as_secs_f64())
}
