//! `rollcall bench idle`: N authenticated devices holding idle TCP connections, and what they
//! cost the server in memory (VmRSS of the server process before and after, per device).
//! Each device authenticates and sends one C_HEARTBEAT, as a gate does when it comes up, so
//! its presence (online state, firmware, address) is part of what it costs.
//! Each N gets a fresh server. Every connection is one open file on each side: the bench
//! checks its own limit (`ulimit -n`; raise the soft limit to the hard one in the shell
//! before running, as the server inherits it).

use std::time::Duration;

use clap::Args;
use futures_util::future::join_all;

use super::load::{self, Backing, BenchResult, Server, authenticate};
use super::report::{Report, Row};

/// Flags of `rollcall bench idle`.
#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    /// Device counts, one fresh server each. / 设备数
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,9000")]
    pub devices: Vec<usize>,
    /// Seconds to wait, connected and idle, before reading the RSS. / 空闲等待秒数
    #[arg(long, default_value_t = 3.0)]
    pub settle: f64,
    /// Open bare TCP connections that never authenticate: the connection's own cost,
    /// without any device state. / 仅建立TCP连接，不认证
    #[arg(long)]
    pub bare: bool,
}

pub async fn run(args: IdleArgs, backing: &Backing) -> BenchResult<Report> {
    let mut report = Report::new("idle");
    let limit = load::open_files_limit();
    let most = args.devices.iter().copied().max().unwrap_or(0) as u64;
    if let Some(l) = limit
        && l < most + 64
    {
        return Err(format!(
            "{most} connections need more open files than the limit {l}: run `ulimit -n $(ulimit -Hn)` first"
        ));
    }
    let mut previous: Option<(usize, u64)> = None;
    for &n in &args.devices {
        let server = Server::start(backing)?;
        let vendor = server.admin().vendor("bench idle").await?;
        // Warm up: one round of connections, closed again, so one-time allocations (pools,
        // caches, the first registrations) are in the baseline.
        connect_all(&server, &vendor, "WARM", n.min(64), args.bare).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = server.proc.sample()?;
        let held = connect_all(&server, &vendor, "IDLE", n, args.bare).await?;
        tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
        let after = server.proc.sample()?;
        let delta_kib = after.rss_kib.saturating_sub(before.rss_kib);
        let per_device = delta_kib as f64 * 1024.0 / n.max(1) as f64;
        // What each device past the previous count added: one-time costs that fill as the
        // first devices arrive (SQLite's page caches, the allocator's arenas) drop out.
        let marginal = previous
            .filter(|&(m, _)| n > m)
            .map(|(m, rss): (usize, u64)| {
                (after.rss_kib as f64 - rss as f64) * 1024.0 / (n - m) as f64
            });
        previous = Some((n, after.rss_kib));
        let mut row = Row::new()
            .with("devices", held.len() as u64)
            .with("authenticated", !args.bare)
            .with("rss_before_kib", before.rss_kib)
            .with("rss_after_kib", after.rss_kib)
            .with("rss_per_device_bytes", per_device);
        if let Some(m) = marginal {
            row = row.with("marginal_bytes", m);
        }
        report.rows.push(
            row.with("target_bytes", 2048)
                .with("met", per_device <= 2048.0),
        );
        drop(held);
    }
    report.notes.push(format!(
        "open-files soft limit of the bench: {}",
        limit.map_or("unknown".into(), |l| l.to_string())
    ));
    Ok(report)
}

/// `n` authenticated connections of devices `<prefix>00001…` (or bare ones), 64 at a time.
async fn connect_all(
    server: &Server,
    vendor: &load::Vendor,
    prefix: &str,
    n: usize,
    bare: bool,
) -> BenchResult<Vec<tokio::net::TcpStream>> {
    let sns: Vec<String> = (0..n).map(|i| format!("{prefix}{i:06}")).collect();
    let mut held = Vec::with_capacity(n);
    for chunk in sns.chunks(64) {
        let connects = chunk.iter().map(|sn| async move {
            if bare {
                tokio::net::TcpStream::connect(&server.tcp)
                    .await
                    .map_err(|e| format!("connect: {e}"))
            } else {
                let (mut stream, mut proto) = authenticate(&server.tcp, sn, vendor).await?;
                heartbeat(&mut stream, &mut proto).await?;
                Ok(stream)
            }
        });
        for r in join_all(connects).await {
            held.push(r?);
        }
    }
    Ok(held)
}

/// One C_HEARTBEAT round trip; an error unless it succeeds.
async fn heartbeat(stream: &mut tokio::net::TcpStream, proto: &mut load::Proto) -> BenchResult<()> {
    match load::round_trip(stream, &proto.heartbeat(), "C_HEARTBEAT")
        .await?
        .outcome
    {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("C_HEARTBEAT refused: {e}")),
    }
}
