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
    platform_with(None).await
}

/// A test CA and a server certificate for `127.0.0.1` it signed: the CA's PEM and the
/// certificate's and key's PEM files in `dir`.
pub fn pki(dir: &std::path::Path) -> (String, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Rollcall conformance test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("server key");
    let mut server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server params");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = server.signed_by(&key, &issuer).expect("server certificate");
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (ca_cert.pem(), cert_path, key_path)
}

/// [`platform`], serving HTTPS with (CA PEM, certificate, key) when given.
pub async fn platform_with(
    tls: Option<(String, std::path::PathBuf, std::path::PathBuf)>,
) -> Running {
    let dir = tempfile::tempdir().expect("temp dir");
    let http = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind tcp");
    let scheme = if tls.is_some() { "https" } else { "http" };
    let http_url = format!("{scheme}://{}", http.local_addr().expect("addr"));
    let tcp_addr = tcp.local_addr().expect("addr");
    let settings = Settings {
        data_dir: dir.path().to_owned(),
        admin_token: Some(Secret::new(ADMIN)),
        token_idle_secs: TIMERS.token_idle_secs,
        offline_after_secs: TIMERS.offline_after_secs,
        redelivery_secs: TIMERS.redelivery_secs,
        idle_timeout_secs: TIMERS.idle_timeout_secs,
        flush_interval_ms: 50,
        tls_cert: tls.as_ref().map(|t| t.1.clone()),
        tls_key: tls.as_ref().map(|t| t.2.clone()),
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
    let admin = match &tls {
        Some((ca, ..)) => {
            AdminClient::with_extra_ca(&http_url, ADMIN, ca.as_bytes()).expect("admin")
        }
        None => AdminClient::new(&http_url, ADMIN),
    };
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
