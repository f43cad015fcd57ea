//! What a device is and how it behaves: identity, vendor credentials, where the platform is,
//! and the tuning knobs, with defaults that suit a real terminal; and the session's part of
//! it ([`SessionConfig`]).
//!
//! Credentials are [`Secret`]s: `Debug` of a config never shows `accessKey` or
//! `accessSecret`.

use std::path::PathBuf;
use std::time::Duration;

use rollcall_protocol::ids::Secret;

use crate::backoff::Backoff;

/// The vendor credentials the platform issued (ZJ-CRED-01). The accessSecret only signs and
/// verifies; it is never sent (ZJ-CRED-02).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_id: String,
    pub access_key: Secret,
    pub access_secret: Secret,
}

impl Credentials {
    pub fn new(
        access_id: impl Into<String>,
        access_key: impl Into<Secret>,
        access_secret: impl Into<Secret>,
    ) -> Self {
        Credentials {
            access_id: access_id.into(),
            access_key: access_key.into(),
            access_secret: access_secret.into(),
        }
    }
}

/// Everything a [`crate::Device`] needs.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// The serial number, unique across the platform.
    pub sn: String,
    pub credentials: Credentials,
    /// The platform's TCP gateway, `host:port`.
    pub tcp_addr: String,
    /// The platform's HTTP base URL, e.g. `http://192.0.2.10:8080` or
    /// `https://rollcall.example.com` (`/device/api` is appended).
    pub http_url: String,
    /// Extra trust roots (PEM, one or more certificates) for a platform whose HTTPS certificate
    /// is issued by a private CA. The system's trust roots apply as well; certificates are
    /// always verified (there is no switch to turn that off).
    pub ca_cert_pem: Option<String>,
    /// Where the store (`device.db`) and downloaded firmware live.
    pub data_dir: PathBuf,
    /// Reported in heartbeats until a firmware task installs another.
    pub device_version: String,
    /// Reported in heartbeats.
    pub device_ip: String,
    /// The device's RSA private key (PEM), for vendors whose responses are encrypted
    /// (ZJ-JWE-02).
    pub rsa_private_key_pem: Option<Secret>,
    pub tuning: Tuning,
}

impl DeviceConfig {
    /// A configuration with default tuning.
    pub fn new(
        sn: impl Into<String>,
        credentials: Credentials,
        tcp_addr: impl Into<String>,
        http_url: impl Into<String>,
        data_dir: impl Into<PathBuf>,
    ) -> Self {
        DeviceConfig {
            sn: sn.into(),
            credentials,
            tcp_addr: tcp_addr.into(),
            http_url: http_url.into().trim_end_matches('/').to_owned(),
            ca_cert_pem: None,
            data_dir: data_dir.into(),
            device_version: concat!("rollcall-device/", env!("CARGO_PKG_VERSION")).to_owned(),
            device_ip: "127.0.0.1".to_owned(),
            rsa_private_key_pem: None,
            tuning: Tuning::default(),
        }
    }

    /// The store file.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("device.db")
    }

    /// The session's part of the configuration.
    pub fn session(&self) -> SessionConfig {
        let t = &self.tuning;
        SessionConfig {
            sn: self.sn.clone(),
            access_id: self.credentials.access_id.clone(),
            access_key: self.credentials.access_key.clone(),
            access_secret: self.credentials.access_secret.clone(),
            device_version: self.device_version.clone(),
            device_ip: self.device_ip.clone(),
            heartbeat_interval: t.heartbeat_interval,
            response_timeout: t.response_timeout,
            window: t.window.max(1),
            window_bytes: t.window_bytes,
            load_batch: t.load_batch.max(1),
            reconnect: t.reconnect,
            retry: t.retry,
            refused_backoff: t.refused_backoff,
        }
    }
}

/// Timings, sizes and limits.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Between heartbeats (the platform calls a device offline after 60 s without one).
    pub heartbeat_interval: Duration,
    /// An unanswered TCP request older than this closes the connection.
    pub response_timeout: Duration,
    pub connect_timeout: Duration,
    /// Sign-ins in flight at once on the TCP connection (the platform answers up to 256
    /// requests of one connection at once).
    pub window: usize,
    /// Photo bytes in flight at once: a window of 50 KB photos stops at 8 MiB (~170), records
    /// without photos fill the whole window. One record always goes, however large.
    pub window_bytes: usize,
    /// Records read from the store at once.
    pub load_batch: usize,
    /// Between reconnect attempts (jittered, growing).
    pub reconnect: Backoff,
    /// Pause after a transient failure (jittered, growing); also between HTTP retries.
    pub retry: Backoff,
    /// Before reconnecting after the platform refused the device itself.
    pub refused_backoff: Duration,
    /// Persons per page of T_SEND_PERSON / T_UPDATE_DEVICE_PERSON (the platform serves ≤ 100).
    pub page_size: u32,
    /// Persons per page of the T_POST_DEVICE_PERSON upload.
    pub post_page_size: usize,
    /// Face photos downloaded at once.
    pub download_concurrency: usize,
    /// Largest face or attendance photo accepted (the platform's `max_photo_bytes`).
    pub max_photo_bytes: usize,
    /// Largest firmware package accepted.
    pub max_firmware_bytes: u64,
    /// Per HTTP request.
    pub http_timeout: Duration,
    /// Tries of one HTTP call before a task gives up for now.
    pub http_attempts: u32,
    /// Runs of one task before it is reported failed.
    pub task_attempts: u32,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            heartbeat_interval: Duration::from_secs(30),
            response_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            window: 256,
            window_bytes: 8 * 1024 * 1024,
            load_batch: 256,
            reconnect: Backoff::new(Duration::from_millis(500), Duration::from_secs(30)),
            retry: Backoff::new(Duration::from_millis(200), Duration::from_secs(10)),
            refused_backoff: Duration::from_secs(60),
            page_size: 100,
            post_page_size: 50,
            download_concurrency: 8,
            max_photo_bytes: 409_600,
            max_firmware_bytes: 512 * 1024 * 1024,
            http_timeout: Duration::from_secs(30),
            http_attempts: 6,
            task_attempts: 5,
        }
    }
}

/// What the session ([`crate::session::Session`]) needs to know; no I/O handles.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub sn: String,
    pub access_id: String,
    pub access_key: Secret,
    pub access_secret: Secret,
    /// Reported in every heartbeat (`deviceVersion`).
    pub device_version: String,
    /// Reported in every heartbeat (`deviceIp`).
    pub device_ip: String,
    pub heartbeat_interval: Duration,
    /// An unanswered request older than this means the connection is dead.
    pub response_timeout: Duration,
    /// Sign-ins in flight at once.
    pub window: usize,
    /// Photo bytes in flight at once (one record is always let through, however large).
    pub window_bytes: usize,
    /// Records asked of the store at once.
    pub load_batch: usize,
    /// Between reconnect attempts.
    pub reconnect: Backoff,
    /// Pause of the window after a transient failure.
    pub retry: Backoff,
    /// Before reconnecting after the platform refused the device itself (401_02, 400_06,
    /// 400_04 on C_AUTH).
    pub refused_backoff: Duration,
}

impl SessionConfig {
    /// Defaults for everything but identity and credentials.
    pub fn new(
        sn: impl Into<String>,
        access_id: impl Into<String>,
        access_key: Secret,
        access_secret: Secret,
    ) -> Self {
        SessionConfig {
            sn: sn.into(),
            access_id: access_id.into(),
            access_key,
            access_secret,
            device_version: "rollcall-device/0.1".into(),
            device_ip: "127.0.0.1".into(),
            heartbeat_interval: Duration::from_secs(30),
            response_timeout: Duration::from_secs(30),
            window: 256,
            window_bytes: 8 * 1024 * 1024,
            load_batch: 256,
            reconnect: Backoff::new(Duration::from_millis(500), Duration::from_secs(30)),
            retry: Backoff::new(Duration::from_millis(200), Duration::from_secs(10)),
            refused_backoff: Duration::from_secs(60),
        }
    }
}
