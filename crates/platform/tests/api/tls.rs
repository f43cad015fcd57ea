//! HTTPS on the HTTP listener (`tls_cert` / `tls_key`): the whole surface (admin API,
//! console, device API) is served over TLS with its bounds; a client that does not trust
//! the certificate, or speaks plain HTTP, gets nothing; a client that never completes the
//! handshake is closed by the header timeout and holds its connection slot until then; bad
//! settings stop the startup with an error naming the setting or the file.
//!
//! Certificates are made here with rcgen: a test CA and a server certificate for
//! `localhost` and `127.0.0.1` signed by it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rollcall_platform::{Platform, StartupError, TlsError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// A test CA and a server certificate it signed, as PEM files in a temporary directory.
pub struct TestPki {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestPki {
    pub fn new() -> TestPki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Rollcall test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);

        let key = KeyPair::generate().unwrap();
        let mut server =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = server.signed_by(&key, &issuer).unwrap();

        let pki = TestPki {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            ca_pem: ca_cert.pem(),
            dir,
        };
        std::fs::write(&pki.cert, cert.pem()).unwrap();
        std::fs::write(&pki.key, key.serialize_pem()).unwrap();
        pki
    }

    /// A client trusting the test CA (and the system's roots).
    pub fn client(&self) -> reqwest::Client {
        rollcall_client::http_client(Some(self.ca_pem.as_bytes())).unwrap()
    }
}

/// A platform serving HTTPS with `pki`'s certificate, its `http` client trusting the CA.
async fn spawn_tls(pki: &TestPki, f: impl FnOnce(&mut rollcall_platform::Settings)) -> TestApp {
    let (cert, key) = (pki.cert.clone(), pki.key.clone());
    let mut app = TestApp::spawn_with(move |s| {
        s.tls_cert = Some(cert);
        s.tls_key = Some(key);
        f(s);
    })
    .await;
    app.http = pki.client();
    app
}

fn http_addr(app: &TestApp) -> String {
    app.base_url.trim_start_matches("https://").to_owned()
}

/// Reads until the peer closes: what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Whether `e` or one of its sources says `what`.
fn says(e: &dyn std::error::Error, what: &str) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.to_string().contains(what) {
            return true;
        }
        cur = e.source();
    }
    false
}

#[tokio::test]
async fn the_admin_api_console_and_device_api_are_served_over_https() {
    let pki = TestPki::new();
    let app = spawn_tls(&pki, |_| {}).await;
    assert!(
        app.base_url.starts_with("https://127.0.0.1:"),
        "{}",
        app.base_url
    );

    // The admin API (the CA-trusting client).
    let vendor = app.vendor().await;
    let listed = app.admin().get("/vendors").await.expect(200);
    assert!(listed.to_string().contains(&vendor.access_id));

    // The console's page, and a session cookie marked Secure (the platform serves TLS).
    let console = app
        .http
        .get(format!("{}/console/login", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(console.status(), 200);
    app.user("tls.li", "auditor", &[]).await;
    let signed_in = app
        .http
        .post(format!("{}/api/v1/login", app.base_url))
        .json(&serde_json::json!({ "username": "tls.li", "password": "密码-12345678" }))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");

    // The device HTTP API: a device authenticates and heartbeats over HTTPS.
    let mut device = app.http_device(&vendor, "SN-TLS-HTTP-1");
    assert!(!device.auth().await.is_empty());
    device.heartbeat().await;
}

#[tokio::test]
async fn a_client_without_the_ca_refuses_the_certificate_and_nothing_reaches_the_platform() {
    let pki = TestPki::new();
    let app = spawn_tls(&pki, |_| {}).await;

    // A plain reqwest client: the system's roots only.
    let untrusting = reqwest::Client::new();
    let refused = untrusting
        .post(format!("{}/api/v1/vendors", app.base_url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "name": "不应创建" }))
        .send()
        .await
        .expect_err("the certificate is not trusted");
    assert!(refused.is_connect(), "{refused:?}");
    assert!(says(&refused, "certificate"), "{refused:?}");

    // The admin client the same way.
    let admin = rollcall_client::AdminClient::new(&app.base_url, ADMIN_TOKEN);
    let e = admin.list_vendors().await.expect_err("refused");
    assert!(says(&e, "certificate"), "{e:?}");

    // Nothing was created.
    let listed = app.admin().get("/vendors").await.expect(200);
    assert!(!listed.to_string().contains("不应创建"), "{listed}");
}

#[tokio::test]
async fn plain_http_to_the_tls_port_gets_no_http_answer() {
    let pki = TestPki::new();
    let app = spawn_tls(&pki, |_| {}).await;
    let mut plain = TcpStream::connect(http_addr(&app)).await.unwrap();
    plain
        .write_all(b"GET /console/login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = tokio::time::timeout(WAIT, read_until_closed(&mut plain))
        .await
        .expect("the connection is closed");
    assert!(
        !answer.starts_with(b"HTTP/"),
        "no HTTP answer: {}",
        String::from_utf8_lossy(&answer)
    );

    // reqwest speaking http:// to it fails as well.
    let url = format!("http://{}/console/login", http_addr(&app));
    assert!(reqwest::Client::new().get(url).send().await.is_err());
}

#[tokio::test]
async fn a_client_that_never_sends_a_client_hello_is_closed_after_the_handshake_timeout() {
    let pki = TestPki::new();
    let app = spawn_tls(&pki, |s| s.http_header_timeout_secs = 1).await;
    let mut silent = TcpStream::connect(http_addr(&app)).await.unwrap();
    let mut partial = TcpStream::connect(http_addr(&app)).await.unwrap();
    // The first bytes of a TLS record header (a handshake record), then nothing.
    partial.write_all(&[0x16, 0x03, 0x01]).await.unwrap();

    let silent_answer = tokio::time::timeout(WAIT, read_until_closed(&mut silent))
        .await
        .expect("the silent connection is closed");
    assert!(silent_answer.is_empty());
    tokio::time::timeout(WAIT, read_until_closed(&mut partial))
        .await
        .expect("the partial handshake is closed");
}

/// The handshake runs in the connection's task: a client stuck before its ClientHello does
/// not stop the accept loop, but it holds its connection slot until it goes.
#[tokio::test]
async fn a_pending_handshake_holds_its_slot_and_does_not_block_other_connections() {
    let pki = TestPki::new();
    // Room for the stuck client and one more.
    let app = spawn_tls(&pki, |s| {
        s.max_http_connections = 2;
        s.http_header_timeout_secs = 600;
    })
    .await;
    let stuck = TcpStream::connect(http_addr(&app)).await.unwrap();
    let fresh = || {
        // A client of its own each time: no pooled connection keeps a slot.
        let http = pki.client();
        let url = format!("{}/console/login", app.base_url);
        async move {
            let r = http.get(url).header("connection", "close").send().await?;
            Ok::<u16, reqwest::Error>(r.status().as_u16())
        }
    };
    let served = tokio::time::timeout(WAIT, fresh())
        .await
        .expect("served while the other handshake is pending");
    assert_eq!(served.unwrap(), 200);

    // Both slots taken by stuck clients: the next request waits…
    let stuck_too = TcpStream::connect(http_addr(&app)).await.unwrap();
    let mut waiting = tokio::spawn(fresh());
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut waiting)
            .await
            .is_err(),
        "no slot while two handshakes are pending"
    );
    // …until one of them goes.
    drop(stuck_too);
    let served = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert_eq!(served.unwrap(), 200);
    drop(stuck);
}

/// A platform built with `tls_cert` / `tls_key` adjusted by `f`: the startup error.
async fn startup_error(dir: &Path, f: impl FnOnce(&mut rollcall_platform::Settings)) -> String {
    let mut settings = rollcall_platform::Settings {
        data_dir: dir.join("data"),
        ..rollcall_platform::Settings::default()
    };
    f(&mut settings);
    let e = match Platform::build(settings, "https://127.0.0.1:1").await {
        Ok(_) => panic!("the platform must not start"),
        Err(e) => e,
    };
    assert!(matches!(e, StartupError::Tls(_)), "{e:?}");
    // Nothing was opened or written before the TLS settings were checked.
    assert!(!dir.join("data").exists(), "no data dir made");
    e.to_string()
}

#[tokio::test]
async fn startup_refuses_incomplete_or_unusable_tls_settings() {
    let pki = TestPki::new();
    let other = TestPki::new();
    let dir = pki.dir.path();
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = dir.join("missing.pem");

    let e = startup_error(dir, |s| s.tls_cert = Some(pki.cert.clone())).await;
    assert!(
        e.contains("--tls-key") && e.contains("ROLLCALL_TLS_KEY"),
        "{e}"
    );
    let e = startup_error(dir, |s| s.tls_key = Some(pki.key.clone())).await;
    assert!(e.contains("--tls-cert"), "{e}");

    let e = startup_error(dir, |s| {
        s.tls_cert = Some(missing.clone());
        s.tls_key = Some(pki.key.clone());
    })
    .await;
    assert!(
        e.contains("cannot read") && e.contains("missing.pem"),
        "{e}"
    );

    let e = startup_error(dir, |s| {
        s.tls_cert = Some(garbage.clone());
        s.tls_key = Some(pki.key.clone());
    })
    .await;
    assert!(
        e.contains("no certificate") && e.contains("garbage.pem"),
        "{e}"
    );

    // The certificate where the key should be.
    let e = startup_error(dir, |s| {
        s.tls_cert = Some(pki.cert.clone());
        s.tls_key = Some(pki.cert.clone());
    })
    .await;
    assert!(
        e.contains("no private key") && e.contains("cert.pem"),
        "{e}"
    );

    // The key of another certificate.
    let e = startup_error(dir, |s| {
        s.tls_cert = Some(pki.cert.clone());
        s.tls_key = Some(other.key.clone());
    })
    .await;
    assert!(e.contains("does not match"), "{e}");
    assert!(
        e.contains(&other.key.display().to_string()) && e.contains(&pki.cert.display().to_string()),
        "{e}"
    );

    // The typed error, for callers that match on it.
    let settings = rollcall_platform::Settings {
        data_dir: dir.join("data"),
        tls_cert: Some(pki.cert.clone()),
        ..rollcall_platform::Settings::default()
    };
    match Platform::build(settings, "https://127.0.0.1:1").await {
        Err(StartupError::Tls(TlsError::Incomplete { missing, .. })) => {
            assert_eq!(missing, "tls-key")
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("the platform must not start"),
    }
}
