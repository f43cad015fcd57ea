//! Platform mode: the kit plays devices against a platform under test and runs the platform
//! cases of the catalogue. Set-up (vendors, projects, workers, devices, tasks) goes through
//! Rollcall's admin API when an admin token is given; without it the cases that need set-up
//! are inconclusive and say what to check by hand.

mod cases;

pub use cases::{KIT_PRIVATE_KEY, KIT_PUBLIC_KEY};

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rollcall_client::AdminClient;
use rollcall_protocol::envelope::Response;
use rollcall_protocol::{ApiCode, ErrorCode};

use crate::KitError;
use crate::catalogue::{self, Case, Side};
use crate::evidence::Log;
use crate::features::Features;
use crate::probe::{Http, Identity, Tcp};
use crate::report::{CaseResult, Check, Report};
use crate::verdict::Verdict;

/// The timers of the platform under test the kit must wait out (its `ROLLCALL_*` settings).
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    pub token_idle_secs: u64,
    pub offline_after_secs: u64,
    pub redelivery_secs: u64,
    pub idle_timeout_secs: u64,
}

impl Default for Timers {
    /// The standard's values (PROTOCOL.md).
    fn default() -> Self {
        Timers {
            token_idle_secs: 1800,
            offline_after_secs: 60,
            redelivery_secs: 600,
            idle_timeout_secs: 90,
        }
    }
}

/// Vendor credentials the kit's devices use.
#[derive(Clone)]
pub struct VendorCreds {
    pub access_id: String,
    pub access_key: String,
    pub access_secret: String,
}

impl std::fmt::Debug for VendorCreds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorCreds")
            .field("access_id", &self.access_id)
            .finish_non_exhaustive()
    }
}

/// A platform under test and how to reach it.
#[derive(Debug, Clone)]
pub struct PlatformTarget {
    /// Device TCP address, `host:port`.
    pub tcp: String,
    /// Base URL of the device HTTP API (`…/device/api` is appended).
    pub http: String,
    pub vendor: VendorCreds,
    /// Rollcall's admin API, for set-up and read-back.
    pub admin: Option<AdminClient>,
    /// The vendor id of `vendor` on the platform (found through the admin API).
    pub vendor_id: Option<String>,
    pub timers: Timers,
    pub features: Features,
    /// Serial numbers the kit makes start with this.
    pub sn_prefix: String,
    /// Only these case ids (all when empty).
    pub only: Vec<String>,
    /// How long to wait for any one answer.
    pub response_timeout: Duration,
    /// Print each verdict to stderr as it comes.
    pub progress: bool,
    /// Extra trusted CA certificates (PEM) for an HTTPS platform under test, besides the
    /// system's roots (`--ca-cert`).
    pub ca_cert_pem: Option<String>,
}

impl PlatformTarget {
    pub fn new(tcp: &str, http: &str, vendor: VendorCreds) -> PlatformTarget {
        PlatformTarget {
            tcp: tcp.to_owned(),
            http: http.trim_end_matches('/').to_owned(),
            vendor,
            admin: None,
            vendor_id: None,
            timers: Timers::default(),
            features: Features::default(),
            sn_prefix: "CONF".into(),
            only: Vec::new(),
            response_timeout: Duration::from_secs(10),
            progress: false,
            ca_cert_pem: None,
        }
    }

    fn selected(&self, case: &Case) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == case.id)
    }

    /// The longest a case may take: the timers it waits out, plus room.
    fn case_budget(&self) -> Duration {
        let t = self.timers;
        let longest = t
            .token_idle_secs
            .max(t.offline_after_secs)
            .max(t.redelivery_secs)
            .max(t.idle_timeout_secs);
        Duration::from_secs(120 + 3 * longest)
    }
}

/// What a manual run needs (no admin token): printed before the run.
pub const MANUAL_SET_UP: &str = "\
手动模式 / Manual mode (no --admin-token):
  1. 在被测平台登记一个厂商，把它的 accessId / accessKey / accessSecret 通过参数交给工具。
     Register a vendor on the platform under test; give its credentials with the flags.
  2. 开启设备自动登记（auto_register），或预先以 --sn-prefix 开头登记设备序列号。
     Turn auto-registration on, or register serial numbers starting with --sn-prefix.
  3. 把平台的 token 空闲时间、离线判定时间、任务重发时间通过 --token-idle-secs、
     --offline-after-secs、--redelivery-secs 告诉工具（平台可调短以加快测试）。
     Give the platform's timers with --token-idle-secs, --offline-after-secs, --redelivery-secs.
  需要后台配置的用例（轮换凭据、停用设备、任务、人员名单……）将判为“无法判定”，并说明如何人工核对。
  Cases that need set-up on the platform are inconclusive and say what to check by hand.";

/// Runs the selected platform cases, one after the other.
pub async fn run(target: &PlatformTarget) -> Report {
    let mut results = Vec::new();
    let counter = AtomicU64::new(0);
    for case in catalogue::cases(Side::Platform) {
        if !target.selected(case) {
            continue;
        }
        let result = if let Some(why) = case.not_applicable(&target.features) {
            CaseResult::without_run(case, Verdict::NotApplicable, why)
        } else if case.needs_admin() && target.admin.is_none() {
            CaseResult::without_run(
                case,
                Verdict::Inconclusive,
                format!(
                    "需要通过管理接口配置（--admin-token），或人工核对 / needs set-up through the admin API (--admin-token), or check by hand: {}",
                    case.scenario
                ),
            )
        } else {
            run_one(target, case, &counter).await
        };
        if target.progress {
            eprintln!(
                "{:<14} {:<12} {}",
                result.verdict.as_str().to_uppercase(),
                result.id,
                result.title_zh
            );
        }
        results.push(result);
    }
    Report::new(
        Side::Platform,
        format!("platform tcp={} http={}", target.tcp, target.http),
        target.features.clone(),
        results,
    )
}

async fn run_one(target: &PlatformTarget, case: &Case, counter: &AtomicU64) -> CaseResult {
    let mut ctx = Ctx {
        t: target,
        log: Log::default(),
        checks: Vec::new(),
        inconclusive: None,
        counter,
        conns: 0,
    };
    let started = Instant::now();
    let outcome =
        match tokio::time::timeout(target.case_budget(), cases::run(case.id, &mut ctx)).await {
            Ok(r) => r,
            Err(_) => Err(KitError::Timeout(format!(
                "the case ran over {:?}",
                target.case_budget()
            ))),
        };
    ctx.finish(case, outcome, started)
}

/// The state of one running case: its evidence and checks.
pub(crate) struct Ctx<'a> {
    pub t: &'a PlatformTarget,
    pub log: Log,
    checks: Vec<Check>,
    inconclusive: Option<String>,
    counter: &'a AtomicU64,
    conns: usize,
}

impl Ctx<'_> {
    /// Records a check of `rule`; returns `ok`.
    pub fn check(&mut self, rule: &str, ok: bool, text: impl Into<String>) -> bool {
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

    /// The case cannot decide (keeps the first reason).
    pub fn inconclusive(&mut self, why: impl Into<String>) {
        let why = why.into();
        self.log.note(format!("inconclusive: {why}"));
        self.inconclusive.get_or_insert(why);
    }

    /// A fresh serial number for this run.
    pub fn sn(&self, tag: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let stamp = rollcall_protocol::time::now_ms() % 100_000_000;
        format!("{}{tag}{stamp:08}{n:03}", self.t.sn_prefix)
    }

    /// A device of the target vendor, not yet authenticated.
    pub fn device(&self, tag: &str) -> Identity {
        Identity {
            sn: self.sn(tag),
            access_id: self.t.vendor.access_id.clone(),
            access_key: self.t.vendor.access_key.clone(),
            secret: self.t.vendor.access_secret.clone(),
            token: String::new(),
        }
    }

    pub async fn tcp(&mut self) -> Result<Tcp, KitError> {
        self.conns += 1;
        Tcp::connect(
            &self.t.tcp,
            self.log.clone(),
            format!("tcp#{}", self.conns),
            self.t.response_timeout,
        )
        .await
    }

    pub fn http(&self) -> Http {
        // The given CA is trusted besides the system's roots; on a system without roots, alone
        // (as rollcall-client does). A PEM without certificates was refused when read.
        let roots = self
            .t
            .ca_cert_pem
            .as_deref()
            .and_then(|pem| reqwest::Certificate::from_pem_bundle(pem.as_bytes()).ok())
            .unwrap_or_default();
        let timeout = self.t.response_timeout + Duration::from_secs(20);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .tls_certs_merge(roots.clone())
            .build()
            .or_else(|_| {
                reqwest::Client::builder()
                    .timeout(timeout)
                    .tls_certs_only(roots)
                    .build()
            })
            .unwrap_or_default();
        Http::new(client, &self.t.http, self.log.clone())
    }

    pub fn admin(&self) -> Result<&AdminClient, KitError> {
        self.t
            .admin
            .as_ref()
            .ok_or_else(|| KitError::Setup("no admin token".into()))
    }

    /// Connects and authenticates `id` over TCP; its token is set. A refused C_AUTH is an
    /// error of the set-up (the cases that judge C_AUTH do it themselves).
    pub async fn auth_tcp(&mut self, id: &mut Identity) -> Result<Tcp, KitError> {
        let mut tcp = self.tcp().await?;
        let resp = tcp.call(&id.request(ApiCode::Auth, None)).await?;
        id.token = token_of(&resp)?;
        Ok(tcp)
    }

    /// Authenticates `id` over HTTP; its token is set.
    pub async fn auth_http(&mut self, id: &mut Identity) -> Result<(), KitError> {
        let resp = self.http().call(&id.request(ApiCode::Auth, None)).await?;
        id.token = token_of(&resp)?;
        Ok(())
    }

    /// Checks that `resp` is the error `code`.
    pub fn expect_code(
        &mut self,
        rule: &str,
        resp: &Response,
        code: ErrorCode,
        what: &str,
    ) -> bool {
        let got = describe(resp);
        self.check(
            rule,
            code_of(resp) == Some(code),
            format!("{what}: expected {code}, got {got}"),
        )
    }

    /// Checks that `resp` is a success.
    pub fn expect_ok(&mut self, rule: &str, resp: &Response, what: &str) -> bool {
        let got = describe(resp);
        self.check(
            rule,
            resp.success(),
            format!("{what}: expected success, got {got}"),
        )
    }

    /// Checks the response sign with the response recipe of `api` (ZJ-SIGN-09, or the rule
    /// given for error answers, ZJ-SIGN-11).
    pub fn expect_signed(
        &mut self,
        rule: &str,
        api: ApiCode,
        resp: &Response,
        secret: &str,
        what: &str,
    ) -> bool {
        let ok = resp.verify(api, secret);
        self.check(
            rule,
            ok,
            format!(
                "{what}: response sign {}",
                if ok { "verifies" } else { "does not verify" }
            ),
        )
    }

    fn finish(self, case: &Case, outcome: Result<(), KitError>, started: Instant) -> CaseResult {
        let failed: Vec<&Check> = self.checks.iter().filter(|c| !c.passed).collect();
        let (verdict, reason) = if !failed.is_empty() {
            let mut reason: Vec<String> = failed
                .iter()
                .map(|c| format!("{}: {}", c.rule, c.text))
                .collect();
            if let Err(e) = &outcome {
                reason.push(format!("then: {e}"));
            }
            (Verdict::Fail, reason.join("\n"))
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

/// The error code of a response, if it is an error.
pub fn code_of(resp: &Response) -> Option<ErrorCode> {
    resp.outcome.as_ref().err().map(|e| e.code)
}

/// A short text of a response for check messages.
pub fn describe(resp: &Response) -> String {
    match &resp.outcome {
        Ok(Some(text)) => format!("success {}", crate::evidence::render_body(text.as_bytes())),
        Ok(None) => "success (acknowledgement)".into(),
        Err(e) => format!("error {}", e.errormsg_with_code()),
    }
}

trait ErrText {
    fn errormsg_with_code(&self) -> String;
}

impl ErrText for rollcall_protocol::ProtocolError {
    fn errormsg_with_code(&self) -> String {
        format!("{} {}", self.code, self.errormsg())
    }
}

/// The token of a C_AUTH answer.
pub fn token_of(resp: &Response) -> Result<String, KitError> {
    let text = resp
        .response_text()
        .ok_or_else(|| KitError::Setup(format!("C_AUTH refused: {}", describe(resp))))?;
    let auth: rollcall_protocol::params::AuthResponse = rollcall_protocol::params::parse(text)
        .map_err(|e| KitError::Protocol(format!("C_AUTH answer without a token: {e}")))?;
    Ok(auth.token)
}
