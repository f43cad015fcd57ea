//! The `rollcall` command line. It parses arguments, layers the configuration and starts
//! things; business logic lives in the library crates.

mod bench;
mod config;
mod conformance;
mod migrate;
mod simulate;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rollcall_platform::{Listeners, Platform, Settings};
use tokio::net::TcpListener;

use config::ServeArgs;

#[derive(Debug, Parser)]
#[command(
    name = "rollcall",
    version,
    about = "Rollcall 实名制考勤物联平台 / real-name attendance IoT platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the platform: TCP gateway, HTTP device API, admin API. / 运行平台
    Serve(ServeArgs),
    /// Print a commented example configuration file with every default. / 打印示例配置
    Config,
    /// Simulated attendance terminals against a platform (device SDK). / 模拟考勤设备
    Simulate(simulate::SimulateArgs),
    /// Benchmarks: the platform against the physical floor, Mosquitto and the disk. / 基准测试
    Bench(bench::BenchArgs),
    /// The conformance kit: certify a platform or a terminal rule by rule. / 一致性测试工具
    #[command(subcommand)]
    Conformance(conformance::ConformanceCommand),
    /// Copy an installation's data into another database (SQLite → PostgreSQL). / 迁移数据到另一数据库
    MigrateData(migrate::MigrateArgs),
    /// The secret keys that seal vendor secrets at rest (SECURITY.md). / 密钥
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Print a new random key (base64) for `secret_key` or the key file. / 生成新密钥
    Generate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate(args) => simulate::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Conformance(cmd) => conformance::run(cmd),
        Command::MigrateData(args) => migrate::run(args),
        Command::Keys(KeysCommand::Generate) => {
            match rollcall_platform::store::sealing::Keyring::generate_key() {
                Ok(key) => {
                    println!("{key}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("rollcall: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Config => {
            print!("{}", config::EXAMPLE);
            ExitCode::SUCCESS
        }
        Command::Serve(args) => {
            init_tracing();
            let settings = match config::load(&args) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("rollcall: configuration: {e}");
                    return ExitCode::from(2);
                }
            };
            let runtime = match runtime(&settings) {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("rollcall: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(serve(settings)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rollcall: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The runtime `serve` runs on: `worker_threads` threads (0 = one per core).
///
/// **One by default.** On the multi-threaded runtime a connection's task runs on whichever
/// worker polled the I/O driver, so one device's consecutive requests alternate between the
/// cores and everything a request touches (its connection's state, the token cache's and the
/// presence table's locks, the metrics) passes between the cores' caches. One worker keeps
/// all of it on one core: less CPU per request, measured in pairs on a 2-core machine, at the
/// same idle memory (BENCHMARKS.md, session 16). What is heavy runs on the blocking pool
/// (password hashing, photo files, face checks, a monthly report's workbook, a roster
/// import's spreadsheet and zip) and SQLite on sqlx's threads, and one worker answers tens of
/// thousands of heartbeats a second, far more than `max_connections` gates send. Busier
/// nodes set more.
fn runtime(settings: &Settings) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if settings.worker_threads > 0 {
        builder.worker_threads(settings.worker_threads);
    }
    builder.enable_all().build()
}

#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Startup(#[from] rollcall_platform::StartupError),
}

async fn serve(settings: Settings) -> Result<(), ServeError> {
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })
    };
    let http = bind(settings.http_addr).await?;
    let tcp = bind(settings.tcp_addr).await?;
    let http_addr = http.local_addr().map_err(|source| ServeError::Bind {
        addr: settings.http_addr,
        source,
    })?;
    let tcp_addr = tcp.local_addr().map_err(|source| ServeError::Bind {
        addr: settings.tcp_addr,
        source,
    })?;
    let public_url = settings.public_url_for(http_addr);
    let backend = settings.database_url();
    let platform = Platform::build(settings, &public_url).await?;

    if let Some(token) = &platform.generated_admin_token {
        // Printed once, on the start that generated it; it is kept in the data dir.
        println!("管理员令牌 / admin token (shown once): {token}");
    }
    if let Some(password) = &platform.generated_admin_password {
        // The console's first account; change the password after signing in.
        println!("控制台账号 / console user: admin  密码 / password (shown once): {password}");
    }
    println!("Rollcall 已启动 / started");
    println!("  设备 TCP / device TCP:   {tcp_addr}");
    println!("  设备 HTTP / device HTTP: {public_url}/device/api");
    println!(
        "  管理 API / admin API:    {public_url}/api/v1  (OpenAPI: {public_url}/api/v1/openapi.json)"
    );
    println!(
        "  存储 / storage:          {}",
        rollcall_platform::util::redact_url(&backend)
    );
    if let Some(warning) = rollcall_platform::config::loopback_url_warning(&public_url) {
        eprintln!("{warning}");
        tracing::warn!(%public_url, "devices would be given loopback URLs");
    }
    tracing::info!(%tcp_addr, %http_addr, "listening");

    platform
        .run(Listeners { http, tcp }, shutdown_signal())
        .await?;
    Ok(())
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Logs to stderr; `RUST_LOG` filters (default `info`), `ROLLCALL_LOG_FORMAT=json` for JSON.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if std::env::var("ROLLCALL_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_has_the_configured_workers_and_one_by_default() {
        let workers = |n: Option<usize>| {
            let mut settings = Settings::default();
            if let Some(n) = n {
                settings.worker_threads = n;
            }
            runtime(&settings).unwrap().metrics().num_workers()
        };
        assert_eq!(workers(None), 1);
        assert_eq!(workers(Some(3)), 3);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // 0 leaves it to tokio: one per core (unless TOKIO_WORKER_THREADS says otherwise).
        if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
            assert_eq!(workers(Some(0)), cores);
        }
    }
}
