//! What the kit's tests share: Rollcall's platform started in-process on port 0 with short
//! timers (so every case that waits out a timer takes seconds), its admin API, and a target
//! for the kit.
#![allow(dead_code)] // each test binary uses its own subset

pub mod broken_platform;
pub mod scripted_device;

use std::net::SocketAddr;

use rollcall_client::{AdminClient, NewVendor, VendorCreated};
use rollcall_conformance::Features;
use rollcall_conformance::platform::{PlatformTarget, Timers, VendorCreds};
use rollcall_platform::{Listeners, Platform, Settings};
use rollcall_protocol::ids::Secret;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const ADMIN: &str = "conformance-test-admin-token";

/// The timers the platform under test runs with, and the kit is told.
pub const TIMERS: Timers = Timers {
    token_idle_secs: 2,
    offline_after_secs: 2,
    redelivery_secs: 2,
    idle_timeout_secs: 3,
};

pub struct Running {
    pub tcp: SocketAddr,
    pub http: String,
    pub admin: AdminClient,
    pub vendor: VendorCreated,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

/// Rollcall's platform, as `rollcall serve` starts it, with short timers.
pub async fn platform() -> Running {
    let dir = tempfile::tempdir().expect("temp dir");
    let http = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind tcp");
    let http_url = format!("http://{}", http.local_addr().expect("addr"));
    let tcp_addr = tcp.local_addr().expect("addr");
    let settings = Settings {
        data_dir: dir.path().to_owned(),
        admin_token: Some(Secret::new(ADMIN)),
        token_idle_secs: TIMERS.token_idle_secs,
        offline_after_secs: TIMERS.offline_after_secs,
        redelivery_secs: TIMERS.redelivery_secs,
        idle_timeout_secs: TIMERS.idle_timeout_secs,
        flush_interval_ms: 50,
        ..Settings::default()
    };
    let platform = Platform::build(settings, &http_url)
        .await
        .expect("platform");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = platform
            .run(Listeners { http, tcp }, async {
                let _ = stopped.await;
            })
            .await;
    });
    let admin = AdminClient::new(&http_url, ADMIN);
    let vendor = admin
        .create_vendor(&NewVendor {
            name: "kit vendor".into(),
            ..NewVendor::default()
        })
        .await
        .expect("vendor");
    Running {
        tcp: tcp_addr,
        http: http_url,
        admin,
        vendor,
        _stop: stop,
        _dir: dir,
    }
}

/// A target for the kit: every feature declared, the admin API given.
pub fn target(
    tcp: &str,
    http: &str,
    admin: &AdminClient,
    vendor: &VendorCreated,
) -> PlatformTarget {
    let mut t = PlatformTarget::new(
        tcp,
        http,
        VendorCreds {
            access_id: vendor.access_id.clone(),
            access_key: vendor.access_key.clone(),
            access_secret: vendor.access_secret.clone(),
        },
    );
    t.admin = Some(admin.clone());
    t.vendor_id = Some(vendor.id.clone());
    t.timers = TIMERS;
    t.features = Features::parse("", "face,mobile,collector", true).expect("features");
    t
}
