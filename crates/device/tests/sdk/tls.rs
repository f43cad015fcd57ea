//! The SDK against a platform serving HTTPS (`tls_cert` / `tls_key`): given the private CA
//! (`DeviceConfig::ca_cert_pem`) a device registers and runs its tasks over HTTPS, face
//! photos downloaded from https signed URLs; without it the certificate is refused before
//! any request reaches the platform; a CA that holds no certificate is a configuration error.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use rollcall_client::Method;
use rollcall_device::http::DeviceHttp;
use rollcall_device::photo::sample::FACE_JPEG;
use rollcall_device::{Device, SdkError};
use serde_json::json;

use crate::helpers::{TestPki, TestPlatform, eventually};

const WAIT: Duration = Duration::from_secs(60);

/// The platform's answer to `GET /devices/{sn}`: its status.
async fn device_status(platform: &TestPlatform, sn: &str) -> u16 {
    platform
        .admin
        .send(Method::GET, &format!("/devices/{sn}"), None)
        .await
        .expect("admin API answers")
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_the_ca_a_device_registers_and_runs_its_tasks_over_https() {
    let pki = TestPki::new();
    let platform = TestPlatform::spawn_tls(&pki).await;
    assert!(
        platform.base_url.starts_with("https://"),
        "{}",
        platform.base_url
    );
    let vendor = platform.vendor().await;
    let dir = tempfile::tempdir().unwrap();

    // C_AUTH over HTTPS registers an unknown device (auto_register).
    let sn = "SDK-TLS-REG-1";
    let mut cfg = platform.config(sn, &vendor, dir.path());
    cfg.ca_cert_pem = Some(pki.ca_pem.clone());
    let http = DeviceHttp::new(Arc::new(cfg), Arc::new(AtomicI64::new(0)), None).unwrap();
    let token = http.authenticate().await.expect("C_AUTH over HTTPS");
    assert!(!token.expose().is_empty());
    assert_eq!(device_status(&platform, sn).await, 200, "registered");

    // A bound device downloads its roster (T_SEND_PERSON) and the face photo (a signed
    // https URL) over HTTPS.
    let project = platform.project().await;
    let worker = platform.enrol("张三", FACE_JPEG).await;
    platform
        .post(
            &format!("/projects/{project}/workers"),
            &json!({ "personIds": [worker] }),
            200,
        )
        .await;
    let sn = "SDK-TLS-RUN-1";
    platform.register_device(sn, &vendor, Some(&project)).await;
    let mut cfg = platform.config(sn, &vendor, &dir.path().join(sn));
    cfg.ca_cert_pem = Some(pki.ca_pem.clone());
    let device = Device::open(cfg).unwrap();
    let handle = device.handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(device.run(async move {
        let _ = stopped.await;
    }));
    eventually("the roster on the device", WAIT, || async {
        let d = platform.device(sn).await;
        (d["personCount"].as_i64() == Some(1) && d["faceCount"].as_i64() == Some(1)).then_some(())
    })
    .await;
    let stored = handle.person(&worker).await.unwrap().expect("stored");
    assert_eq!(stored.face.unwrap().photo.as_deref(), Some(FACE_JPEG));

    let _ = stop.send(());
    running.await.unwrap().unwrap();
    platform.shutdown().await;
}

#[tokio::test]
async fn without_the_ca_the_certificate_is_refused_and_nothing_reaches_the_platform() {
    let pki = TestPki::new();
    let platform = TestPlatform::spawn_tls(&pki).await;
    let vendor = platform.vendor().await;
    let dir = tempfile::tempdir().unwrap();

    let sn = "SDK-TLS-NOCA-1";
    let mut cfg = platform.config(sn, &vendor, dir.path());
    cfg.tuning.http_attempts = 1;
    let http = DeviceHttp::new(Arc::new(cfg), Arc::new(AtomicI64::new(0)), None).unwrap();
    match http.authenticate().await {
        Err(SdkError::Network(why)) => assert!(why.contains("certificate"), "{why}"),
        other => panic!("the certificate must be refused: {other:?}"),
    }
    // C_AUTH would have registered it (auto_register): it never arrived.
    assert_eq!(device_status(&platform, sn).await, 404, "not registered");

    // Another CA does not help either.
    let other = TestPki::new();
    let mut cfg = platform.config(sn, &vendor, dir.path());
    cfg.ca_cert_pem = Some(other.ca_pem.clone());
    let http = DeviceHttp::new(Arc::new(cfg), Arc::new(AtomicI64::new(0)), None).unwrap();
    assert!(matches!(
        http.authenticate().await,
        Err(SdkError::Network(_))
    ));
    assert_eq!(device_status(&platform, sn).await, 404, "not registered");
    platform.shutdown().await;
}

#[test]
fn a_ca_without_a_certificate_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let creds = rollcall_device::Credentials::new("id", "key", "secret");
    let mut cfg = rollcall_device::DeviceConfig::new(
        "SDK-TLS-BADCA",
        creds,
        "127.0.0.1:1",
        "https://127.0.0.1:1",
        dir.path(),
    );
    cfg.ca_cert_pem = Some("not a certificate\n".into());
    match Device::open(cfg) {
        Err(SdkError::Config(why)) => assert!(why.contains("extra CA certificate"), "{why}"),
        Err(e) => panic!("a configuration error, not {e}"),
        Ok(_) => panic!("a configuration error"),
    }
}
