//! `rollcall conformance list | platform | device`: the conformance kit
//! (`rollcall-conformance`) on the command line. `platform` acts as a device against a
//! platform under test; `device` listens and acts as the platform for a terminal under test.
//! Both print each verdict as it comes, then a summary, and write the reports asked for;
//! the exit status is 0 when no case failed, 1 when any did, 2 for a usage error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use rollcall_client::{AdminClient, NewVendor};
use rollcall_conformance::catalogue::{self, Side};
use rollcall_conformance::device::DeviceTarget;
use rollcall_conformance::platform::{MANUAL_SET_UP, PlatformTarget, Timers, VendorCreds};
use rollcall_conformance::{Features, Report};
use rollcall_protocol::ids::Secret;
use tokio::net::TcpListener;

#[derive(Debug, Subcommand)]
pub enum ConformanceCommand {
    /// Print the catalogue: every case, the rules it checks, and the rules no case can check. / 列出测试用例
    List(ListArgs),
    /// Test a platform: the kit acts as devices. / 测试平台（工具充当设备）
    Platform(PlatformArgs),
    /// Test a terminal: the kit listens and acts as the platform. / 测试终端（工具充当平台）
    Device(DeviceArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SideArg {
    Platform,
    Device,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only the cases of one side. / 只列出一方的用例
    #[arg(long, value_enum)]
    pub side: Option<SideArg>,
    /// The catalogue as JSON. / 以 JSON 输出
    #[arg(long)]
    pub json: bool,
}

/// What the system under test declares, and where the reports go.
#[derive(Debug, Args)]
pub struct Common {
    /// Declared apicodes, comma-separated (default: the standard's). / 声明支持的接口
    #[arg(long, default_value = "")]
    pub apicodes: String,
    /// Declared device kinds: face, iris, mobile, qr, gate, collector (default face). / 声明的设备类型
    #[arg(long, default_value = "face")]
    pub kinds: String,
    /// Encrypted responses (JWE) are declared. / 声明支持 JWE 加密
    #[arg(long)]
    pub jwe: bool,
    /// Run only these cases (repeatable). / 只运行这些用例
    #[arg(long = "case")]
    pub cases: Vec<String>,
    /// Write the JSON report here. / JSON 报告
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the self-contained HTML report here. / HTML 报告
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Write the JUnit XML report here. / JUnit 报告
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Vendor accessId. / 厂商 accessId
    #[arg(long, env = "ROLLCALL_ACCESS_ID")]
    pub access_id: Option<String>,
    /// Vendor accessKey. / 厂商 accessKey
    #[arg(long, env = "ROLLCALL_ACCESS_KEY", hide_env_values = true)]
    pub access_key: Option<Secret>,
    /// Vendor accessSecret. / 厂商 accessSecret
    #[arg(long, env = "ROLLCALL_ACCESS_SECRET", hide_env_values = true)]
    pub access_secret: Option<Secret>,
}

#[derive(Debug, Args)]
pub struct PlatformArgs {
    /// The platform's device TCP address. / 平台 TCP 地址
    #[arg(long, default_value = "127.0.0.1:7700")]
    pub tcp: String,
    /// The platform's HTTP base URL. / 平台 HTTP 地址
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub http: String,
    /// A CA certificate (PEM) to trust for an HTTPS platform, besides the system's roots. / 额外信任的 CA 证书（HTTPS 平台）
    #[arg(long, env = "ROLLCALL_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Rollcall admin token: set-up and read-back through the admin API (else manual mode). / 管理员令牌
    #[arg(long, env = "ROLLCALL_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,
    /// The platform's token idle time. / 平台 token 空闲过期秒数
    #[arg(long, env = "ROLLCALL_TOKEN_IDLE_SECS", default_value_t = 1800)]
    pub token_idle_secs: u64,
    /// The platform's offline window. / 平台离线判定秒数
    #[arg(long, env = "ROLLCALL_OFFLINE_AFTER_SECS", default_value_t = 60)]
    pub offline_after_secs: u64,
    /// The platform's task redelivery time. / 平台任务重发秒数
    #[arg(long, env = "ROLLCALL_REDELIVERY_SECS", default_value_t = 600)]
    pub redelivery_secs: u64,
    /// The platform's idle-connection timeout. / 平台空闲连接超时秒数
    #[arg(long, env = "ROLLCALL_IDLE_TIMEOUT_SECS", default_value_t = 90)]
    pub idle_timeout_secs: u64,
    /// Serial numbers the kit makes start with this. / 序列号前缀
    #[arg(long, default_value = "CONF")]
    pub sn_prefix: String,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// Listen here for the terminal's TCP connection. / 监听终端 TCP 连接的地址
    #[arg(long, default_value = "0.0.0.0:7700")]
    pub listen: SocketAddr,
    /// Listen here for the terminal's HTTP calls. / 监听终端 HTTP 请求的地址
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen_http: SocketAddr,
    /// The kit's HTTP base URL as the terminal reaches it (photo URLs). / 终端访问本工具的 HTTP 地址
    #[arg(long)]
    pub public_url: Option<String>,
    /// How long heartbeats are collected (a little over two heartbeat intervals). / 心跳观察秒数
    #[arg(long, default_value_t = 70)]
    pub heartbeat_window_secs: u64,
    /// The heartbeat period the terminal is configured with. / 终端配置的心跳周期（秒）
    #[arg(long, default_value_t = 30)]
    pub heartbeat_secs: u64,
    /// How far the median heartbeat interval may stray from it, in percent. / 心跳周期允许偏差（百分比）
    #[arg(long, default_value_t = 25)]
    pub heartbeat_tolerance_pct: u32,
    /// A firmware package the terminal accepts (the firmware case). / 终端可接受的固件包
    #[arg(long, requires = "firmware_version")]
    pub firmware: Option<PathBuf>,
    /// The version the terminal reports once that package is installed. / 该固件包的版本号
    #[arg(long, requires = "firmware")]
    pub firmware_version: Option<String>,
    /// The kit cuts the network itself (refusing every connection) instead of asking the
    /// operator to. / 由工具拒绝连接来模拟断网，而不提示操作员断网
    #[arg(long)]
    pub kit_cuts_network: bool,
    /// How long the kit refuses connections with --kit-cuts-network. / 工具模拟断网的秒数
    #[arg(long, default_value_t = 20)]
    pub outage_secs: u64,
    /// How long the kit waits for the terminal (or its operator) at each step. / 每步等待秒数
    #[arg(long, default_value_t = 180)]
    pub step_timeout_secs: u64,
    /// The terminal's RSA public key (PEM), for the encrypted-answers case (with --jwe). / 终端的 RSA 公钥
    #[arg(long)]
    pub rsa_public_key: Option<PathBuf>,
    /// Records the operator makes the terminal take. / 需要考勤的次数
    #[arg(long, default_value_t = 3)]
    pub records: usize,
    #[command(flatten)]
    pub common: Common,
}

pub fn run(cmd: ConformanceCommand) -> ExitCode {
    if let ConformanceCommand::List(args) = cmd {
        return list(&args);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rollcall conformance: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cmd {
        ConformanceCommand::Platform(args) => runtime.block_on(platform(args)),
        ConformanceCommand::Device(args) => runtime.block_on(device(args)),
        ConformanceCommand::List(_) => return ExitCode::SUCCESS,
    };
    match outcome {
        Ok(report) => {
            println!("\n{}", report.to_text());
            if report.any_failed() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("rollcall conformance: {e}");
            ExitCode::from(2)
        }
    }
}

fn list(args: &ListArgs) -> ExitCode {
    let want = |s: Side| match args.side {
        None => true,
        Some(SideArg::Platform) => s == Side::Platform,
        Some(SideArg::Device) => s == Side::Device,
    };
    let cases: Vec<_> = catalogue::CASES.iter().filter(|c| want(c.side)).collect();
    if args.json {
        let untestable: Vec<_> = catalogue::UNTESTABLE
            .iter()
            .map(|(rule, why)| serde_json::json!({"rule": rule, "reason": why}))
            .collect();
        let out = serde_json::json!({"cases": cases, "untestable": untestable});
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    for c in &cases {
        println!(
            "{:<13} {:<8} {}  / {}",
            c.id,
            c.side.as_str(),
            c.title_zh,
            c.title
        );
        println!("              规则 rules: {}", c.rules.join(" "));
        println!("              {}\n", c.scenario);
    }
    println!("无法由工具检查的规则 / rules the kit cannot check:");
    for (rule, why) in catalogue::UNTESTABLE {
        println!("  {rule:<14} {why}");
    }
    ExitCode::SUCCESS
}

fn features(c: &Common) -> Result<Features, String> {
    Features::parse(&c.apicodes, &c.kinds, c.jwe)
}

fn write_reports(c: &Common, report: &Report) -> Result<(), String> {
    let write = |path: &Option<PathBuf>, text: String| -> Result<(), String> {
        match path {
            Some(p) => {
                std::fs::write(p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))
            }
            None => Ok(()),
        }
    };
    write(&c.json, report.to_json())?;
    write(&c.html, report.to_html())?;
    write(&c.junit, report.to_junit())
}

async fn platform(args: PlatformArgs) -> Result<Report, String> {
    let features = features(&args.common)?;
    let given = match (
        &args.common.access_id,
        &args.common.access_key,
        &args.common.access_secret,
    ) {
        (Some(i), Some(k), Some(s)) => Some(VendorCreds {
            access_id: i.clone(),
            access_key: k.expose().to_owned(),
            access_secret: s.expose().to_owned(),
        }),
        (None, None, None) => None,
        _ => {
            return Err(
                "give all of --access-id, --access-key and --access-secret, or none".into(),
            );
        }
    };
    let ca_pem = match &args.ca_cert {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            // Checked here, so a wrong file stops the run instead of failing every case.
            rollcall_client::http_client(Some(pem.as_bytes()))
                .map_err(|e| format!("--ca-cert {}: {e}", path.display()))?;
            Some(pem)
        }
        None => None,
    };
    let admin = match (&args.admin_token, &ca_pem) {
        (Some(t), Some(pem)) => Some(
            AdminClient::with_extra_ca(&args.http, t.expose(), pem.as_bytes())
                .map_err(|e| format!("--ca-cert: {e}"))?,
        ),
        (Some(t), None) => Some(AdminClient::new(&args.http, t.expose())),
        (None, _) => None,
    };
    let (vendor, vendor_id) = match (given, &admin) {
        (Some(v), Some(admin)) => {
            let id = admin
                .list_vendors()
                .await
                .map_err(|e| format!("admin API: {e}"))?
                .into_iter()
                .find(|x| x.access_id == v.access_id)
                .map(|x| x.id);
            (v, id)
        }
        (Some(v), None) => {
            eprintln!("{MANUAL_SET_UP}\n");
            (v, None)
        }
        (None, Some(admin)) => {
            let v = admin
                .create_vendor(&NewVendor {
                    name: format!("一致性测试 {}", args.sn_prefix),
                    ..NewVendor::default()
                })
                .await
                .map_err(|e| format!("admin API: {e}"))?;
            eprintln!(
                "厂商 / vendor made for the run: id {} accessId {}",
                v.id, v.access_id
            );
            (
                VendorCreds {
                    access_id: v.access_id,
                    access_key: v.access_key,
                    access_secret: v.access_secret,
                },
                Some(v.id),
            )
        }
        (None, None) => {
            return Err("vendor credentials (--access-id/--access-key/--access-secret) or --admin-token are needed".into());
        }
    };
    let mut target = PlatformTarget::new(&args.tcp, &args.http, vendor);
    target.admin = admin;
    target.vendor_id = vendor_id;
    target.timers = Timers {
        token_idle_secs: args.token_idle_secs,
        offline_after_secs: args.offline_after_secs,
        redelivery_secs: args.redelivery_secs,
        idle_timeout_secs: args.idle_timeout_secs,
    };
    target.features = features;
    target.sn_prefix = args.sn_prefix.clone();
    target.only = args.common.cases.clone();
    target.progress = true;
    target.ca_cert_pem = ca_pem;
    let report = rollcall_conformance::platform::run(&target).await;
    write_reports(&args.common, &report)?;
    Ok(report)
}

async fn device(args: DeviceArgs) -> Result<Report, String> {
    let features = features(&args.common)?;
    let vendor = match (&args.common.access_id, &args.common.access_key, &args.common.access_secret) {
        (Some(i), Some(k), Some(s)) => VendorCreds {
            access_id: i.clone(),
            access_key: k.expose().to_owned(),
            access_secret: s.expose().to_owned(),
        },
        _ => return Err("the terminal's vendor credentials are needed: --access-id, --access-key, --access-secret".into()),
    };
    let tcp = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let http = TcpListener::bind(args.listen_http)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen_http))?;
    let http_addr = http.local_addr().map_err(|e| e.to_string())?;
    let public_url = args.public_url.clone().unwrap_or_else(|| {
        let ip = if http_addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            http_addr.ip().to_string()
        };
        format!("http://{ip}:{}", http_addr.port())
    });
    eprintln!(
        "工具监听 / kit listening: TCP {}  HTTP {} (photo URLs {public_url})",
        tcp.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        http_addr
    );
    let mut target = DeviceTarget::new(vendor, &public_url);
    target.features = features;
    target.heartbeat_window = Duration::from_secs(args.heartbeat_window_secs);
    target.heartbeat_period = Duration::from_secs(args.heartbeat_secs);
    target.heartbeat_tolerance_pct = args.heartbeat_tolerance_pct;
    target.operator_cuts_network = !args.kit_cuts_network;
    target.outage = Duration::from_secs(args.outage_secs);
    if let (Some(path), Some(version)) = (&args.firmware, &args.firmware_version) {
        target.firmware = Some(rollcall_conformance::device::Firmware {
            version: version.clone(),
            bytes: std::fs::read(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        });
    }
    target.step_timeout = Duration::from_secs(args.step_timeout_secs);
    target.records = args.records;
    if let Some(path) = &args.rsa_public_key {
        target.jwe_public_key = Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        );
    }
    target.only = args.common.cases.clone();
    target.interactive = true;
    let report = rollcall_conformance::device::run(&target, tcp, http).await;
    write_reports(&args.common, &report)?;
    Ok(report)
}
