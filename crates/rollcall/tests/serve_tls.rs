//! `rollcall serve --tls-cert/--tls-key` from the outside: the binary serves its HTTP surface
//! over HTTPS (the printed URLs are https, the admin API answers a client trusting the CA,
//! the key may come from `ROLLCALL_TLS_KEY`); one flag without the other stops the startup
//! with an error naming the missing flag.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rollcall_client::{AdminClient, NewVendor};

/// A test CA and a server certificate for `localhost` and `127.0.0.1` it signed, written to
/// `dir`: (CA PEM, cert path, key path).
fn pki(dir: &Path) -> (String, PathBuf, PathBuf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Rollcall binary test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut server =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = server.signed_by(&key, &issuer).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (ca_cert.pem(), cert_path, key_path)
}

#[tokio::test]
async fn serve_speaks_https_with_the_certificate_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, cert, key) = pki(dir.path());
    let mut server = common::start_with(
        &dir.path().join("data"),
        &["--tls-cert", cert.to_str().unwrap()],
        &[("ROLLCALL_TLS_KEY", key.to_str().unwrap())],
    );
    assert!(
        server.http.starts_with("https://127.0.0.1:"),
        "{}",
        server.http
    );

    let admin = AdminClient::with_extra_ca(&server.http, common::ADMIN, ca_pem.as_bytes()).unwrap();
    let vendor = admin
        .create_vendor(&NewVendor {
            name: "TLS 厂商".into(),
            ..NewVendor::default()
        })
        .await
        .expect("the admin API over HTTPS");
    assert!(!vendor.access_id.is_empty());
    // Without the CA, the certificate is refused.
    let untrusting = AdminClient::new(&server.http, common::ADMIN);
    assert!(untrusting.list_vendors().await.is_err());

    server.child.kill().unwrap();
    let _ = server.child.wait();
}

#[test]
fn one_tls_flag_without_the_other_stops_the_startup_naming_the_missing_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = pki(dir.path());
    for (flag, path, missing) in [
        ("--tls-cert", &cert, "--tls-key"),
        ("--tls-key", &key, "--tls-cert"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_rollcall"))
            .args(["serve", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--http-addr",
                "127.0.0.1:0",
                "--tcp-addr",
                "127.0.0.1:0",
                flag,
            ])
            .arg(path)
            .env_remove("ROLLCALL_TLS_CERT")
            .env_remove("ROLLCALL_TLS_KEY")
            .env("RUST_LOG", "off")
            .stdin(Stdio::null())
            .output()
            .expect("run rollcall serve");
        assert!(!out.status.success(), "{flag} alone must not start");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(missing), "{flag} alone: {stderr}");
        assert!(!dir.path().join("data").exists(), "nothing written");
    }

    // An unreadable certificate names the file.
    let out = Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--tcp-addr",
            "127.0.0.1:0",
            "--tls-cert",
        ])
        .arg(dir.path().join("absent.pem"))
        .arg("--tls-key")
        .arg(&key)
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .output()
        .expect("run rollcall serve");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("absent.pem"), "{stderr}");
}
