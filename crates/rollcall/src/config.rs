//! Configuration layering for `rollcall serve`: defaults → config file → `ROLLCALL_*`
//! environment → flags (RC-PROD-03, RC-PROD-04). Every setting can come from the
//! file or the environment; the common ones also have flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use rollcall_platform::Settings;
use serde::Serialize;

/// Flags of `rollcall serve`. Each also reads `ROLLCALL_<NAME>`.
#[derive(Debug, Args, Serialize, Default)]
pub struct ServeArgs {
    /// Data directory (SQLite database, photos, generated keys). / 数据目录
    #[arg(long, env = "ROLLCALL_DATA_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address (device API, admin API). / HTTP 监听地址
    #[arg(long, env = "ROLLCALL_HTTP_ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_addr: Option<SocketAddr>,
    /// TCP listen address (device connections). / TCP 监听地址
    #[arg(long, env = "ROLLCALL_TCP_ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_addr: Option<SocketAddr>,
    /// Base of the URLs handed to devices, e.g. http://HOST:8080. / 对外地址
    #[arg(long, env = "ROLLCALL_PUBLIC_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Admin API token; generated and stored in the data dir when absent. / 管理员令牌
    #[arg(long, env = "ROLLCALL_ADMIN_TOKEN", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// sqlite://… or postgres://… (default: SQLite in the data dir). / 数据库地址
    #[arg(long, env = "ROLLCALL_DATABASE_URL", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// A token expires after this long without use. / 令牌空闲过期秒数
    #[arg(long, env = "ROLLCALL_TOKEN_IDLE_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_idle_secs: Option<u64>,
    /// A device is offline this long after its last heartbeat. / 离线判定秒数
    #[arg(long, env = "ROLLCALL_OFFLINE_AFTER_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline_after_secs: Option<u64>,
    /// Allowed difference between a device's timeStamp and the platform clock. / 时钟偏差秒数
    #[arg(long, env = "ROLLCALL_CLOCK_SKEW_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_skew_secs: Option<u64>,
    /// A delivered task without a status is offered again after this long. / 任务重发秒数
    #[arg(long, env = "ROLLCALL_REDELIVERY_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redelivery_secs: Option<u64>,
    /// Per-device request budget: "20/s burst 100" or "off". / 限流
    #[arg(long, env = "ROLLCALL_RATE_LIMIT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    /// PEM certificate chain: the HTTP listener serves HTTPS only (with --tls-key). / TLS 证书
    #[arg(long, env = "ROLLCALL_TLS_CERT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, RSA or EC) of --tls-cert. / TLS 私钥
    #[arg(long, env = "ROLLCALL_TLS_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// A TOML file with any of the settings (`rollcall config` prints an example). / 配置文件
    #[arg(long, env = "ROLLCALL_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

/// Reads the layered settings.
pub fn load(args: &ServeArgs) -> Result<Settings, Box<figment::Error>> {
    let mut figment = Figment::new();
    if let Some(file) = &args.config {
        figment = figment.merge(Toml::file_exact(file));
    }
    figment
        .merge(Env::prefixed("ROLLCALL_").ignore(&[
            "LOG_FORMAT",
            "CONFIG",
            "TEST_DATABASE_URL",
            "TEST_S3_ENDPOINT",
        ]))
        .merge(Serialized::defaults(args))
        .extract()
        .map_err(Box::new)
}

/// `rollcall config`: every setting with its default, commented.
pub const EXAMPLE: &str = r#"# rollcall.toml — every setting with its default. Each key is also read from the
# environment as ROLLCALL_<KEY> (e.g. ROLLCALL_ADMIN_TOKEN); flags override both.

data_dir = "data"                 # SQLite database, photos, generated keys
http_addr = "0.0.0.0:8080"        # device HTTP API, admin API, console
tcp_addr = "0.0.0.0:7700"         # device TCP connections
# public_url = "http://HOST:8080" # base of photo/firmware URLs given to devices
# admin_token = "..."             # default: generated on first start, kept in data_dir
# database_url = "postgres://user@host/db"   # default: sqlite in data_dir
# secret_key = "..."              # keys sealing vendor secrets (base64, comma-separated, current
#                                 #   first); better ROLLCALL_SECRET_KEY from a secret manager
# secret_key_file = "data/secret.key"  # default: data_dir/secret.key, generated on first start
token_idle_secs = 1800            # tokens expire after 30 min without use
offline_after_secs = 60           # online while the last heartbeat is younger
clock_skew_secs = 300             # allowed device clock difference (400_05)
redelivery_secs = 600             # offer a delivered task again without a status
auto_register = true              # unknown sn with valid vendor credentials registers unbound
auto_repair = false               # reconciliation creates the tasks that fix a device
require_encryption = false        # vendors must register an RSA key (JWE responses)
max_frame_bytes = 2097152         # TCP frame limit (413_01)
max_body_bytes = 16777216         # HTTP body limit (413_01)
max_photo_bytes = 409600          # larger photos are not kept (photo_rejected)
url_ttl_secs = 86400              # lifetime of signed photo/firmware URLs
idle_timeout_secs = 90            # close TCP connections silent this long
max_connections = 20000           # TCP connection limit
auth_timeout_secs = 20            # close TCP connections not bound to a device this long
max_inflight_frame_bytes = 67108864  # incomplete TCP frames buffered at once, all connections
write_timeout_secs = 30           # close TCP connections whose writes make no progress this long
shutdown_grace_secs = 10          # at shutdown, connections still open after this are dropped
worker_threads = 1                # threads of the async runtime (connections, APIs); 0 = one per core
http_header_timeout_secs = 10     # close HTTP connections without a whole request header
http_request_timeout_secs = 60    # HTTP requests (body included) not answered by then get 408
max_http_connections = 1024       # HTTP connections at once; more wait
max_http_connections_per_addr = 128  # HTTP connections at once from one address; more are closed
# tls_cert = "/etc/rollcall/cert.pem"  # PEM chain: the HTTP listener serves HTTPS only (needs tls_key);
# tls_key = "/etc/rollcall/key.pem"    # the TLS handshake must finish within http_header_timeout_secs
rate_limit = "20/s burst 100"     # per device, never applied to C_SIGN_IN; "off" disables
# photo_store = "/var/lib/rollcall/files"   # default: data_dir/files (this node's disk)
# photo_store = "s3://rollcall-photos"       # shared by every node; endpoint and keys from AWS_*
# photo_store_options = { aws_endpoint = "http://s3.internal:8333" }  # object_store S3 keys, over AWS_*
# url_signing_key = "…"           # base64, 32 bytes; the same on every node (rollcall keys generate)
flush_interval_ms = 1000          # heartbeat state and token use written behind
ingest_batch_max = 512            # most sign-ins per group commit
# node_id = 1                     # 0..1023, distinct per node sharing a database
face_rules = true                 # enrolment photos: one face, >= 128x128 px, >= 1/3 of the picture
max_password_hashes = 4           # password hashes (argon2id, 19 MiB each) computed at once
password_hash_wait_ms = 2000      # a sign-in waits this long for a hasher, then 503
login_max_failures = 5            # failed sign-ins in a row that lock a username (429)
login_max_failures_per_addr = 20  # failed sign-ins in a row that lock a source address (429)
login_lockout_secs = 60           # first lockout; each further failure doubles it
login_lockout_max_secs = 3600     # longest lockout; failures older than this are forgotten

[uplink]                          # reporting to the national real-name platform (docs/UPLINK.md);
                                  #   each project's endpoint and credentials are set by the admin API
enabled = true                    # run the sender on this node (one node sends per project at a time)
poll_ms = 2000                    # how often each project's queue is looked at
batch_max = 50                    # items per request (the national platform takes at most 50)
request_timeout_ms = 30000        # unanswered this long: in doubt, resolved by querying
backoff_ms = 2000                 # first wait after a failed request; doubles per failure
backoff_max_ms = 300000           # longest wait
blocked_retry_ms = 600000         # an item waiting for data (team, photo) is looked at again after this
lease_ms = 60000                  # a node's hold on a project; another takes over after it lapses
alert_after_ms = 3600000          # one WARN line when a project's oldest pending item gets older than this
webhook_timeout_ms = 10000        # a webhook receiver not answering this long fails the attempt
webhook_max_attempts = 20         # attempts per webhook event before it is marked failed
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_parses_to_the_defaults() {
        let parsed: Settings = Figment::new()
            .merge(Toml::string(EXAMPLE))
            .extract()
            .unwrap();
        let d = Settings::default();
        assert_eq!(parsed.http_addr, d.http_addr);
        assert_eq!(parsed.tcp_addr, d.tcp_addr);
        assert_eq!(parsed.token_idle_secs, d.token_idle_secs);
        assert_eq!(parsed.max_photo_bytes, d.max_photo_bytes);
        assert_eq!(parsed.rate_limit, d.rate_limit);
        assert_eq!(parsed.ingest_batch_max, d.ingest_batch_max);
        assert_eq!(parsed.auth_timeout_secs, d.auth_timeout_secs);
        assert_eq!(parsed.max_inflight_frame_bytes, d.max_inflight_frame_bytes);
        assert_eq!(parsed.write_timeout_secs, d.write_timeout_secs);
        assert_eq!(parsed.shutdown_grace_secs, d.shutdown_grace_secs);
        assert_eq!(parsed.worker_threads, d.worker_threads);
        assert_eq!(parsed.http_header_timeout_secs, d.http_header_timeout_secs);
        assert_eq!(
            parsed.http_request_timeout_secs,
            d.http_request_timeout_secs
        );
        assert_eq!(parsed.max_http_connections, d.max_http_connections);
        assert_eq!(
            parsed.max_http_connections_per_addr,
            d.max_http_connections_per_addr
        );
        assert_eq!(parsed.max_password_hashes, d.max_password_hashes);
        assert_eq!(parsed.password_hash_wait_ms, d.password_hash_wait_ms);
        assert_eq!(parsed.login_max_failures, d.login_max_failures);
        assert_eq!(
            parsed.login_max_failures_per_addr,
            d.login_max_failures_per_addr
        );
        assert_eq!(parsed.login_lockout_secs, d.login_lockout_secs);
        assert_eq!(parsed.login_lockout_max_secs, d.login_lockout_max_secs);
        assert_eq!((parsed.tls_cert, parsed.tls_key), (None, None));
        let (u, du) = (&parsed.uplink, &d.uplink);
        assert_eq!(
            (u.enabled, u.poll_ms, u.batch_max, u.request_timeout_ms),
            (du.enabled, du.poll_ms, du.batch_max, du.request_timeout_ms)
        );
        assert_eq!(
            (
                u.backoff_ms,
                u.backoff_max_ms,
                u.blocked_retry_ms,
                u.lease_ms
            ),
            (
                du.backoff_ms,
                du.backoff_max_ms,
                du.blocked_retry_ms,
                du.lease_ms
            )
        );
        assert_eq!(u.alert_after_ms, du.alert_after_ms);
        assert_eq!(
            (u.webhook_timeout_ms, u.webhook_max_attempts),
            (du.webhook_timeout_ms, du.webhook_max_attempts)
        );
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.toml");
        std::fs::write(&file, "token_idle_secs = 5\nredelivery_secs = 7\n").unwrap();
        let args = ServeArgs {
            config: Some(file),
            token_idle_secs: Some(9),
            ..ServeArgs::default()
        };
        let s = load(&args).unwrap();
        assert_eq!(s.token_idle_secs, 9);
        assert_eq!(s.redelivery_secs, 7);
    }

    #[test]
    fn tls_paths_come_from_the_file_and_the_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.toml");
        std::fs::write(
            &file,
            "tls_cert = \"/a/cert.pem\"\ntls_key = \"/a/key.pem\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file),
            tls_key: Some("/b/key.pem".into()),
            ..ServeArgs::default()
        };
        let s = load(&args).unwrap();
        assert_eq!(
            s.tls_cert.as_deref(),
            Some(std::path::Path::new("/a/cert.pem"))
        );
        assert_eq!(
            s.tls_key.as_deref(),
            Some(std::path::Path::new("/b/key.pem"))
        );
    }
}
