//! Typed settings of `rollcall serve`, with the defaults of docs/PRODUCT.md (RC-PROD-02, RC-PROD-04).
//!
//! Layering (defaults → config file → `ROLLCALL_*` environment → flags) is done by the
//! binary; this module owns the names, the defaults and the derived values (database URL,
//! public URL). The admin token is a [`Secret`]: `Debug` of the settings never shows it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use rollcall_protocol::ids::Secret;
use serde::{Deserialize, Deserializer};

/// Every setting of the platform. Field names are the config-file keys and, upper-cased
/// with a `ROLLCALL_` prefix, the environment variables.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub http_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    /// Base of absolute URLs handed to devices (photos, firmware). Default: derived from
    /// `http_addr` (`0.0.0.0` becomes `127.0.0.1`).
    pub public_url: Option<String>,
    /// Without one, a token is generated on first start and kept in the data dir.
    pub admin_token: Option<Secret>,
    /// Default: `sqlite://{data_dir}/rollcall.db`.
    pub database_url: Option<String>,
    /// The keys that seal vendor secrets at rest, base64, comma-separated, current first
    /// (`ROLLCALL_SECRET_KEY`). Wins over `secret_key_file`.
    pub secret_key: Option<Secret>,
    /// The same keys in a file, one per line (mode 0600). Default `{data_dir}/secret.key`,
    /// generated on first start.
    pub secret_key_file: Option<PathBuf>,
    pub token_idle_secs: u64,
    pub offline_after_secs: u64,
    pub clock_skew_secs: u64,
    pub redelivery_secs: u64,
    pub auto_register: bool,
    pub auto_repair: bool,
    pub require_encryption: bool,
    pub max_frame_bytes: usize,
    pub max_body_bytes: usize,
    pub max_photo_bytes: usize,
    pub url_ttl_secs: u64,
    pub idle_timeout_secs: u64,
    pub max_connections: usize,
    /// A TCP connection not bound to a device this long after it was accepted is closed,
    /// whatever it sends (an unauthenticated client cannot keep a connection alive).
    pub auth_timeout_secs: u64,
    /// Bytes of incomplete TCP frames buffered at once, over all connections: a connection
    /// whose announced frame does not fit waits; a frame larger than this gets 413_01.
    pub max_inflight_frame_bytes: usize,
    /// A TCP connection whose writes make no progress this long is closed (a device that
    /// never reads its answers).
    pub write_timeout_secs: u64,
    /// At shutdown, connections get this long to answer what they have in flight; the ones
    /// left after it are dropped.
    pub shutdown_grace_secs: u64,
    /// Threads of the async runtime `rollcall serve` builds (connections, APIs, housekeeping);
    /// 0 = one per core. Default 1: see `crates/rollcall/src/main.rs` (`runtime`).
    pub worker_threads: usize,
    /// An HTTP connection that has not sent a whole request header this long is closed.
    pub http_header_timeout_secs: u64,
    /// An HTTP request (its body included) not answered this long gets 408.
    pub http_request_timeout_secs: u64,
    /// HTTP connections served at once; more wait in the listen queue.
    pub max_http_connections: usize,
    /// HTTP connections served at once from one source address; more are closed at once.
    pub max_http_connections_per_addr: usize,
    /// A PEM certificate chain (end-entity first): with [`Settings::tls_key`], the HTTP
    /// listener speaks HTTPS only. Both or neither. The device TCP gateway is not affected.
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, RSA or EC) of [`Settings::tls_cert`].
    pub tls_key: Option<PathBuf>,
    pub rate_limit: RateLimit,
    /// Where photos, faces, firmware and import reports live: a path (default
    /// `{data_dir}/files`, this node's disk) or `s3://bucket[/prefix]`, an S3-compatible
    /// store shared by every node (endpoint and keys from the `AWS_*` environment).
    pub photo_store: Option<String>,
    /// Extra settings of an `s3://` photo store, object_store's S3 keys (`aws_endpoint`,
    /// `aws_access_key_id`, `aws_allow_http`…), applied over the `AWS_*` environment.
    pub photo_store_options: StoreOptions,
    /// The key that signs photo and firmware URLs, base64 of 32 bytes
    /// (`ROLLCALL_URL_SIGNING_KEY`): the same on every node, so a URL signed by one is
    /// served by all. Default: `{data_dir}/url-signing.key`, generated on first start.
    pub url_signing_key: Option<Secret>,
    /// How often heartbeat state and token touches are written behind (milliseconds).
    pub flush_interval_ms: u64,
    /// Most sign-ins committed in one transaction.
    pub ingest_batch_max: usize,
    /// Distinguishes nodes sharing one database in generated ids (0..1023); random if unset.
    pub node_id: Option<u16>,
    /// Check enrolment face photos with the face detector (one face, ≥ 128×128 px, ≥ 1/3 of
    /// the picture — RC-DEV-09, RC-DEV-10). Off only for load tests with synthetic photos.
    pub face_rules: bool,
    /// Most password hashes (argon2id, 19 MiB each) computed at once; sign-ins beyond wait
    /// (see `password_hash_wait_ms`).
    pub max_password_hashes: usize,
    /// How long a sign-in waits for a free password hasher before it is answered 503.
    pub password_hash_wait_ms: u64,
    /// Failed sign-ins in a row after which a username is locked out (429).
    pub login_max_failures: u32,
    /// Failed sign-ins in a row after which a source address is locked out (429).
    pub login_max_failures_per_addr: u32,
    /// The first lockout; each further failure after it doubles it.
    pub login_lockout_secs: u64,
    /// The longest lockout; failures this long ago are forgotten.
    pub login_lockout_max_secs: u64,
    /// Reporting to the national real-name platform (docs/UPLINK.md).
    pub uplink: UplinkSettings,
}

/// Settings of an object store, by object_store's key names. `Debug` shows the keys only:
/// values include access keys.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct StoreOptions(pub BTreeMap<String, String>);

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("data"),
            // ZJ-TRANS-05: HTTP on 0.0.0.0:8080, TCP on 0.0.0.0:7700.
            http_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            tcp_addr: SocketAddr::from(([0, 0, 0, 0], 7700)),
            public_url: None,
            admin_token: None,
            database_url: None,
            secret_key: None,
            secret_key_file: None,
            token_idle_secs: 1800,
            offline_after_secs: 60,
            clock_skew_secs: 300,
            redelivery_secs: 600,
            auto_register: true,
            auto_repair: false,
            require_encryption: false,
            max_frame_bytes: 2 * 1024 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
            max_photo_bytes: 409_600,
            url_ttl_secs: 86_400,
            idle_timeout_secs: 90,
            max_connections: 20_000,
            auth_timeout_secs: 20,
            max_inflight_frame_bytes: 64 * 1024 * 1024,
            write_timeout_secs: 30,
            shutdown_grace_secs: 10,
            worker_threads: 1,
            http_header_timeout_secs: 10,
            http_request_timeout_secs: 60,
            max_http_connections: 1024,
            max_http_connections_per_addr: 128,
            tls_cert: None,
            tls_key: None,
            rate_limit: RateLimit::default(),
            photo_store: None,
            photo_store_options: StoreOptions::default(),
            url_signing_key: None,
            flush_interval_ms: 1000,
            ingest_batch_max: 512,
            node_id: None,
            face_rules: true,
            max_password_hashes: 4,
            password_hash_wait_ms: 2000,
            login_max_failures: 5,
            login_max_failures_per_addr: 20,
            login_lockout_secs: 60,
            login_lockout_max_secs: 3600,
            uplink: UplinkSettings::default(),
        }
    }
}

/// How the uplink sender works (docs/UPLINK.md). Times in milliseconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UplinkSettings {
    /// Runs the sender on this node (every node may; one sends per project at a time).
    pub enabled: bool,
    /// How often each project's queue is looked at (and async results polled).
    pub poll_ms: u64,
    /// Items per request (UPLINK.md: at most 50).
    pub batch_max: u32,
    /// A request not answered this long is in doubt (resolved by querying).
    pub request_timeout_ms: u64,
    /// First backoff after a failed request; doubles per failure up to `backoff_max_ms`.
    pub backoff_ms: u64,
    pub backoff_max_ms: u64,
    /// An item waiting for data (a team, a photo) is looked at again after this.
    pub blocked_retry_ms: u64,
    /// A sender's hold on a project; another node takes over after it lapses.
    pub lease_ms: u64,
    /// One WARN line when a project's oldest pending item gets older than this (and an
    /// INFO line when it is back under); the console's dashboard marks the project late.
    pub alert_after_ms: u64,
    /// A webhook receiver not answering this long fails the attempt.
    pub webhook_timeout_ms: u64,
    /// Attempts per webhook event before it is marked failed and the next one goes.
    pub webhook_max_attempts: u32,
}

impl Default for UplinkSettings {
    fn default() -> Self {
        UplinkSettings {
            enabled: true,
            poll_ms: 2000,
            batch_max: 50,
            request_timeout_ms: 30_000,
            backoff_ms: 2000,
            backoff_max_ms: 300_000,
            blocked_retry_ms: 600_000,
            lease_ms: 60_000,
            alert_after_ms: 3_600_000,
            webhook_timeout_ms: 10_000,
            webhook_max_attempts: 20,
        }
    }
}

impl Settings {
    /// The secret key file in force.
    pub fn secret_key_file(&self) -> PathBuf {
        self.secret_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secret.key"))
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("rollcall.db").display()
            )
        })
    }

    /// The directory photos live under.
    pub fn files_dir(&self) -> PathBuf {
        match &self.photo_store {
            Some(p) if !p.contains("://") => PathBuf::from(p),
            _ => self.data_dir.join("files"),
        }
    }

    /// Whether the HTTP listener serves TLS (a certificate is configured; the key is checked
    /// with it at startup).
    pub fn serves_tls(&self) -> bool {
        self.tls_cert.is_some()
    }

    /// Whether browsers reach the platform over https: it serves TLS itself, or the configured
    /// public URL is https (a TLS proxy in front). Session cookies are then `Secure`.
    pub fn public_url_is_https(&self) -> bool {
        self.serves_tls()
            || self
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
    }

    /// The public base URL, for a platform whose HTTP listener is bound to `bound`: the
    /// configured one, or `http(s)://{bound}` (https when it serves TLS).
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        if let Some(u) = &self.public_url {
            return u.trim_end_matches('/').to_owned();
        }
        let scheme = if self.serves_tls() { "https" } else { "http" };
        let host = if bound.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else if bound.is_ipv6() {
            format!("[{}]", bound.ip())
        } else {
            bound.ip().to_string()
        };
        format!("{scheme}://{host}:{}", bound.port())
    }
}

/// A warning for an operator whose devices would be handed loopback photo and firmware URLs
/// (ZJ-URL-01: URLs are absolute under `public_url`): a device cannot fetch
/// `http://127.0.0.1:…` from the platform. `None` when `public_url` names another host.
pub fn loopback_url_warning(public_url: &str) -> Option<String> {
    let rest = public_url.split_once("://").map_or(public_url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback.then(|| {
        format!(
            "警告：设备将收到回环地址 {public_url} 下的照片和固件 URL，其他机器上的设备无法下载；\
             请用 --public-url http(s)://<设备可访问的地址>:<端口> 指定。 / warning: devices \
             would be given photo and firmware URLs under {public_url}, which no other machine \
             can reach; set --public-url http(s)://<address devices reach>:<port>"
        )
    })
}

/// The per-device request budget of `429_01`: a token bucket, or off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateLimit {
    Off,
    Bucket { per_sec: f64, burst: u32 },
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::Bucket {
            per_sec: 20.0,
            burst: 100,
        }
    }
}

impl FromStr for RateLimit {
    type Err = String;

    /// `off`, `20/s`, or `20/s burst 100`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(RateLimit::Off);
        }
        let bad = || format!("rate_limit {s:?}: expected \"off\", \"20/s\" or \"20/s burst 100\"");
        let mut words = s.split_whitespace();
        let rate = words.next().ok_or_else(bad)?;
        let per_sec: f64 = rate
            .strip_suffix("/s")
            .and_then(|r| r.parse().ok())
            .filter(|r: &f64| r.is_finite() && *r > 0.0)
            .ok_or_else(bad)?;
        let burst = match (words.next(), words.next(), words.next()) {
            (None, _, _) => per_sec.ceil() as u32,
            (Some("burst"), Some(b), None) => b.parse().ok().filter(|b| *b > 0).ok_or_else(bad)?,
            _ => return Err(bad()),
        };
        Ok(RateLimit::Bucket { per_sec, burst })
    }
}

impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_public_urls_are_warned_about() {
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost:8080/",
            "http://[::1]:8080",
            "http://127.1.2.3",
        ] {
            assert!(loopback_url_warning(url).is_some(), "{url}");
        }
        for url in [
            "http://192.0.2.10:8080",
            "https://rollcall.example.com",
            "http://[2001:db8::1]:8080",
        ] {
            assert_eq!(loopback_url_warning(url), None, "{url}");
        }
    }

    #[test]
    fn rate_limit_forms() {
        assert_eq!("off".parse::<RateLimit>(), Ok(RateLimit::Off));
        assert_eq!(
            "20/s burst 100".parse::<RateLimit>(),
            Ok(RateLimit::Bucket {
                per_sec: 20.0,
                burst: 100
            })
        );
        assert_eq!(
            "5/s".parse::<RateLimit>(),
            Ok(RateLimit::Bucket {
                per_sec: 5.0,
                burst: 5
            })
        );
        for bad in [
            "",
            "20",
            "20/m",
            "-1/s",
            "20/s burst",
            "20/s burst 0",
            "20/s x 1",
        ] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn derived_values() {
        let s = Settings::default();
        assert_eq!(
            s.public_url_for("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert!(s.database_url().starts_with("sqlite://data/rollcall.db"));
        let tls = Settings {
            tls_cert: Some("cert.pem".into()),
            tls_key: Some("key.pem".into()),
            ..Settings::default()
        };
        assert_eq!(
            tls.public_url_for("0.0.0.0:8443".parse().unwrap()),
            "https://127.0.0.1:8443"
        );
        assert!(tls.public_url_is_https() && !s.public_url_is_https());
        let s = Settings {
            public_url: Some("https://x.example/".into()),
            ..s
        };
        assert_eq!(
            s.public_url_for("0.0.0.0:1".parse().unwrap()),
            "https://x.example"
        );
    }

    #[test]
    fn debug_hides_the_admin_token() {
        let s = Settings {
            admin_token: Some(Secret::new("hunter2-token")),
            ..Settings::default()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn debug_names_the_photo_store_options_but_not_their_values() {
        let s = Settings {
            photo_store_options: StoreOptions(
                [
                    ("aws_access_key_id".to_owned(), "AKIAEXAMPLE".to_owned()),
                    (
                        "aws_secret_access_key".to_owned(),
                        "wJalrXUtnFEMI".to_owned(),
                    ),
                ]
                .into(),
            ),
            ..Settings::default()
        };
        let shown = format!("{s:?}");
        assert!(shown.contains("aws_secret_access_key"), "{shown}");
        assert!(!shown.contains("wJalrXUtnFEMI") && !shown.contains("AKIAEXAMPLE"));
    }
}
