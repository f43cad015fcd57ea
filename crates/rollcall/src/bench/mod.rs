//! `rollcall bench <scenario>`: the platform measured against the physical floor, a C broker
//! and the disk, in the same run. Every scenario starts its own `rollcall serve` as a child
//! process (free ports, `--rate-limit off`, a temporary data dir, or `--database-url`) so the
//! server's CPU time and RSS can be read from `/proc`, prints a table, and with `--json FILE`
//! writes the same numbers as JSON (`--svg FILE` draws the heartbeat chart from that JSON).
//!
//! | module | scenario |
//! |---|---|
//! | [`idle`] | idle authenticated devices: server RSS per device |
//! | [`heartbeat`] | heartbeat round trips vs the floor ([`floor`]) and Mosquitto ([`mqtt`]) |
//! | [`signin`] | durable 50 KB sign-ins vs the disk's batched write rate |
//! | [`sync`] | a roster of persons with faces onto one SDK device |
//! | [`backlog`] | an SDK device draining its offline queue |
//!
//! [`load`] holds what they share (the child server, `/proc`, the protocol client, the
//! pipelined driver) and [`report`] the table, JSON and SVG.
//!
//! Every scenario runs `--runs` times (default 5) in one sitting, each run against a fresh
//! server; the report gives each value's median with its min and max, ratios taken inside each
//! run, and the machine's fingerprint (CPU, kernel, clock source, the disk's measured rates), so
//! that figures of different machines are never compared as if alike.

mod backlog;
mod floor;
mod heartbeat;
mod idle;
pub mod load;
mod mqtt;
pub mod report;
mod signin;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

/// Flags of `rollcall bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub scenario: Scenario,
    /// Also write the results as JSON. / 结果另存为 JSON
    #[arg(long, global = true)]
    pub json: Option<PathBuf>,
    /// Heartbeat: also draw latency against connections as SVG. / 心跳延迟图
    #[arg(long, global = true)]
    pub svg: Option<PathBuf>,
    /// Run the server on PostgreSQL instead of SQLite. / 使用 PostgreSQL
    #[arg(long, global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Runs of the scenario; the report gives medians with min and max. / 重复次数（取中位数）
    #[arg(long, global = true, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub runs: u32,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Idle authenticated devices: server RSS per device. / 空闲连接内存
    Idle(idle::IdleArgs),
    /// Heartbeat round trips vs a bare framed-ack server and Mosquitto. / 心跳往返
    Heartbeat(heartbeat::HeartbeatArgs),
    /// Durable sign-ins with 50 KB photos vs the disk. / 持久签到
    Signin(signin::SignInArgs),
    /// Syncing a roster with photos onto one SDK device. / 人员同步
    Sync(sync::SyncArgs),
    /// Draining an offline backlog. / 离线积压上传
    Backlog(backlog::BacklogArgs),
    /// The floor server itself (started by `heartbeat`). / 基线服务器
    #[command(hide = true)]
    FloorServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
}

/// One run of a scenario, against a fresh server.
async fn run_once(scenario: &Scenario, db: &load::Backing) -> load::BenchResult<report::Report> {
    match scenario {
        Scenario::Idle(a) => idle::run(a.clone(), db).await,
        Scenario::Heartbeat(a) => heartbeat::run(a.clone(), db).await,
        Scenario::Signin(a) => signin::run(a.clone(), db).await,
        Scenario::Sync(a) => sync::run(a.clone(), db).await,
        Scenario::Backlog(a) => backlog::run(a.clone(), db).await,
        Scenario::FloorServer { .. } => Err("the floor server is not a scenario to repeat".into()),
    }
}

/// Runs a scenario; the exit code of `rollcall bench`.
pub fn run(args: BenchArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rollcall bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        if let Scenario::FloorServer { listen } = &args.scenario {
            return match floor::serve(listen).await {
                Ok(()) => std::process::exit(0),
                Err(e) => Err(format!("floor server: {e}")),
            };
        }
        // One key for every server of every run (they may share a database).
        let db = load::Backing::new(args.database_url.clone())?;
        // Measured once, before the runs: what the disk does on its own.
        let machine = report::fingerprint();
        let mut runs = Vec::new();
        for run in 1..=args.runs {
            if args.runs > 1 {
                eprintln!("rollcall bench: run {run} of {}", args.runs);
            }
            runs.push(run_once(&args.scenario, &db).await?);
        }
        let mut report = report::Report::aggregate(runs);
        report.machine = Some(machine);
        Ok(report)
    });
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rollcall bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.table());
    let json = report.to_json();
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&json).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("rollcall bench: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if let Some(path) = &args.svg {
        if report.scenario != "heartbeat" {
            eprintln!("rollcall bench: --svg draws the heartbeat scenario only");
        } else if let Err(e) = std::fs::write(path, report::heartbeat_svg(&json)) {
            eprintln!("rollcall bench: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
