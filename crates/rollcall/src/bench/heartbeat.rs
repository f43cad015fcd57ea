//! `rollcall bench heartbeat`: C_HEARTBEAT round trips against the platform, side by side in
//! the same run with the physical floor ([`super::floor`]) and Mosquitto (QoS 1
//! PUBLISH → PUBACK, [`super::mqtt`]), at several connection counts, closed-loop; then an
//! open-loop run at a constant arrival rate with latency taken from the intended send time.
//! Reports rate, p50/p99/p999 and the server's CPU µs per operation (utime + stime of the
//! server process, from `/proc`).

use std::process::Command;
use std::time::Duration;

use clap::Args;
use futures_util::future::join_all;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::load::{
    self, Backing, BenchResult, ChildProc, Pace, Parse, ProcSample, Samples, Server, authenticate,
    clock_ticks, parse_rollcall,
};
use super::report::{Report, Row};
use super::{floor, mqtt};

/// Flags of `rollcall bench heartbeat`.
#[derive(Debug, Clone, Args)]
pub struct HeartbeatArgs {
    /// Connection counts, closed-loop (one request in flight per connection). / 连接数
    #[arg(long, value_delimiter = ',', default_value = "1,64,1000")]
    pub connections: Vec<usize>,
    /// Seconds per measurement. / 每项测量秒数
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Open-loop: total requests per second (0: no open-loop run). / 开环总速率
    #[arg(long, default_value_t = 5000.0)]
    pub open_rate: f64,
    /// Open-loop: over this many connections. / 开环连接数
    #[arg(long, default_value_t = 64)]
    pub open_connections: usize,
    /// Turns per measurement: the targets take turns, each running `duration / slices`
    /// seconds at a time, so a slow spell of the machine falls on every target alike. / 轮流次数
    #[arg(long, default_value_t = 5)]
    pub slices: u32,
    /// Mosquitto's address ("off" to skip). / Mosquitto 地址
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub mqtt: String,
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Rollcall,
    Floor,
    Mosquitto,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Rollcall => "rollcall",
            Target::Floor => "floor",
            Target::Mosquitto => "mosquitto",
        }
    }
}

struct Setup {
    server: Server,
    floor: ChildProc,
    vendor: load::Vendor,
    mqtt_pid: Option<u32>,
    clk: u64,
}

pub async fn run(args: HeartbeatArgs, backing: &Backing) -> BenchResult<Report> {
    let mut report = Report::new("heartbeat");
    let server = Server::start(backing)?;
    let vendor = server.admin().vendor("bench heartbeat").await?;
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args(["bench", "floor-server", "--listen", "127.0.0.1:0"]);
    let floor = ChildProc::start(cmd, &[floor::LABEL], None)?;
    let mqtt_pid = if args.mqtt == "off" {
        None
    } else {
        match mqtt::connect(&args.mqtt, "rollcall-bench-probe").await {
            Ok(_) => {
                let pid = load::find_pid("mosquitto");
                if pid.is_none() {
                    report.notes.push(
                        "Mosquitto answers but its process is not visible: no CPU figure".into(),
                    );
                }
                Some(pid.unwrap_or(0))
            }
            Err(e) => {
                report
                    .notes
                    .push(format!("Mosquitto skipped ({}): {e}", args.mqtt));
                None
            }
        }
    };
    let setup = Setup {
        server,
        floor,
        vendor,
        mqtt_pid,
        clk: clock_ticks(),
    };
    let duration = Duration::from_secs_f64(args.duration.max(0.1));
    let mut targets = vec![Target::Rollcall, Target::Floor];
    if setup.mqtt_pid.is_some() {
        targets.push(Target::Mosquitto);
    }
    for &c in &args.connections {
        let pace = Pace::Closed { window: 1 };
        let rows = measure(&setup, &args, &targets, c.max(1), pace, duration).await?;
        report.rows.extend(rows);
    }
    if args.open_rate > 0.0 {
        let c = args.open_connections.max(1);
        let interval = Duration::from_secs_f64(c as f64 / args.open_rate);
        let pace = Pace::Open { interval };
        let rows = measure(&setup, &args, &targets, c, pace, duration).await?;
        report.rows.extend(
            rows.into_iter()
                .map(|row| row.with("offered_per_s", args.open_rate)),
        );
    }
    add_ratios(&mut report);
    report.notes.push(format!(
        "server CPU from /proc/<pid>/stat utime+stime at {} ticks/s; latency from the send time (closed) or the intended send time (open)",
        setup.clk
    ));
    Ok(report)
}

/// Every target at one connection count. Each target's connections are opened first; then
/// the targets take turns, `slices` turns each of `duration / slices`, and each target's
/// figures add up its turns. Measured one after the other instead, a target's ratio to
/// another compared different minutes of the machine, whose speed drifts by tens of per cent
/// within a minute on some machines of this kind (BENCHMARKS.md, session 14).
async fn measure(
    setup: &Setup,
    args: &HeartbeatArgs,
    targets: &[Target],
    connections: usize,
    pace: Pace,
    duration: Duration,
) -> BenchResult<Vec<Row>> {
    // Authenticate every device once. The floor and Mosquitto are sent the same signed
    // frames (their bytes), on connections of their own; authenticating again would start a
    // new session and close the platform's connection of the same device.
    let sns: Vec<String> = (0..connections)
        .map(|i| format!("HB{connections:05}{i:05}"))
        .collect();
    let mut protos = Vec::with_capacity(connections);
    let mut platform: Vec<TcpStream> = Vec::with_capacity(connections);
    for chunk in sns.chunks(64) {
        let done = join_all(
            chunk
                .iter()
                .map(|sn| authenticate(&setup.server.tcp, sn, &setup.vendor)),
        )
        .await;
        for r in done {
            let (stream, proto) = r?;
            platform.push(stream);
            protos.push(proto);
        }
    }
    let mut lanes = Vec::with_capacity(targets.len());
    for &target in targets {
        let streams = match target {
            Target::Rollcall => std::mem::take(&mut platform),
            Target::Floor => {
                let mut streams = Vec::with_capacity(connections);
                for _ in 0..connections {
                    let s = TcpStream::connect(&setup.floor.addrs[0])
                        .await
                        .map_err(|e| format!("floor: {e}"))?;
                    let _ = s.set_nodelay(true);
                    streams.push(s);
                }
                streams
            }
            Target::Mosquitto => {
                let mut streams = Vec::with_capacity(connections);
                for i in 0..connections {
                    streams.push(mqtt::connect(&args.mqtt, &format!("rollcall-bench-{i}")).await?);
                }
                streams
            }
        };
        lanes.push(Lane::new(setup, target, streams, protos.clone()));
    }
    let slices = args.slices.max(1);
    let slice = duration / slices;
    for _ in 0..slices {
        for lane in &mut lanes {
            lane.turn(pace, slice).await?;
        }
    }
    Ok(lanes
        .into_iter()
        .map(|lane| lane.row(setup, pace, connections))
        .collect())
}

/// Makes a target's next request frame.
type Make = Box<dyn FnMut() -> Vec<u8> + Send>;

/// One target's connections and what its turns have measured so far.
struct Lane {
    target: Target,
    pid: Option<u32>,
    conns: Vec<(TcpStream, Make, Parse)>,
    samples: Samples,
    cpu_ticks: u64,
    user_ticks: u64,
    /// Whether every turn had a CPU figure.
    sampled: bool,
    elapsed: f64,
}

impl Lane {
    fn new(
        setup: &Setup,
        target: Target,
        streams: Vec<TcpStream>,
        protos: Vec<load::Proto>,
    ) -> Self {
        let pid = match target {
            Target::Rollcall => Some(setup.server.proc.pid()),
            Target::Floor => Some(setup.floor.pid()),
            Target::Mosquitto => setup.mqtt_pid.filter(|&p| p != 0),
        };
        let conns = streams
            .into_iter()
            .zip(protos)
            .enumerate()
            .map(|(i, (stream, mut proto))| {
                let (make, parse): (Make, Parse) = match target {
                    Target::Rollcall | Target::Floor => {
                        (Box::new(move || proto.heartbeat()), parse_rollcall)
                    }
                    Target::Mosquitto => {
                        // The payload: a heartbeat request frame, so the bytes match.
                        let payload = proto.heartbeat();
                        let topic = format!("rollcall/bench/{i}");
                        let mut id: u16 = 0;
                        (
                            Box::new(move || {
                                id = id.checked_add(1).unwrap_or(1);
                                mqtt::publish(&topic, id, &payload)
                            }),
                            mqtt::parse_puback,
                        )
                    }
                };
                (stream, make, parse)
            })
            .collect();
        Lane {
            target,
            pid,
            conns,
            samples: Samples::default(),
            cpu_ticks: 0,
            user_ticks: 0,
            sampled: pid.is_some(),
            elapsed: 0.0,
        }
    }

    /// One turn: load on every connection for `slice`, every answer read.
    async fn turn(&mut self, pace: Pace, slice: Duration) -> BenchResult<()> {
        let sample = |pid: Option<u32>| pid.map(load::proc_sample).transpose();
        let before: Option<ProcSample> = sample(self.pid)?;
        let started = Instant::now();
        let deadline = started + slice;
        let runs =
            std::mem::take(&mut self.conns)
                .into_iter()
                .map(|(stream, make, parse)| async move {
                    let (samples, stream, make) =
                        load::drive(stream, make, parse, pace, deadline, None).await?;
                    Ok::<_, String>((samples, (stream, make, parse)))
                });
        let results = join_all(runs).await;
        self.elapsed += started.elapsed().as_secs_f64();
        let after = sample(self.pid)?;
        for r in results {
            let (samples, conn) = r?;
            self.samples.merge(samples);
            self.conns.push(conn);
        }
        match (before, after) {
            (Some(b), Some(a)) => {
                self.cpu_ticks += a.cpu_ticks.saturating_sub(b.cpu_ticks);
                self.user_ticks += a.user_ticks.saturating_sub(b.user_ticks);
            }
            _ => self.sampled = false,
        }
        Ok(())
    }

    fn row(mut self, setup: &Setup, pace: Pace, connections: usize) -> Row {
        self.samples.sort();
        let all = &self.samples;
        let ops = all.ops();
        let per_op = |ticks: u64| {
            (self.sampled && ops > 0).then(|| ticks as f64 * 1e6 / setup.clk as f64 / ops as f64)
        };
        let cpu_us_per_op = per_op(self.cpu_ticks);
        // The user-space share apart: the kernel's work per request is about the same for
        // every target, so where machines differ in ratio, this says whether the code or the
        // kernel did.
        let user_us_per_op = per_op(self.user_ticks);
        Row::new()
            .with("target", self.target.name())
            .with(
                "mode",
                match pace {
                    Pace::Closed { .. } => "closed",
                    Pace::Open { .. } => "open",
                },
            )
            .with("connections", connections as u64)
            .with("ops", ops)
            .with("failed", all.failed)
            .with("rate_per_s", ops as f64 / self.elapsed.max(1e-9))
            .with("p50_us", all.percentile_us(0.5))
            .with("p99_us", all.percentile_us(0.99))
            .with("p999_us", all.percentile_us(0.999))
            .with("server_cpu_us_per_op", cpu_us_per_op)
            .with("server_user_us_per_op", user_us_per_op)
    }
}

/// Adds `cpu_vs_floor` and `cpu_vs_mosquitto` to the platform's rows (same mode, same
/// connection count, same run).
fn add_ratios(report: &mut Report) {
    let get = |r: &Row, k: &str| r.0.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let key = |r: &Row| {
        (
            get(r, "mode").and_then(|v| v.as_str().map(str::to_owned)),
            get(r, "connections").and_then(|v| v.as_u64()),
        )
    };
    let cpu = |r: &Row| get(r, "server_cpu_us_per_op").and_then(|v| v.as_f64());
    let snapshot = report.rows.clone();
    for row in report.rows.iter_mut() {
        if get(row, "target")
            .and_then(|v| v.as_str().map(str::to_owned))
            .as_deref()
            != Some("rollcall")
        {
            continue;
        }
        let ours = cpu(row);
        for (other, col) in [("floor", "cpu_vs_floor"), ("mosquitto", "cpu_vs_mosquitto")] {
            let theirs = snapshot
                .iter()
                .find(|r| {
                    key(r) == key(row)
                        && get(r, "target").and_then(|v| v.as_str().map(str::to_owned))
                            == Some(other.to_owned())
                })
                .and_then(cpu);
            if let (Some(a), Some(b)) = (ours, theirs)
                && b > 0.0
            {
                row.0.push((col.to_owned(), (a / b).into()));
            }
        }
    }
}
