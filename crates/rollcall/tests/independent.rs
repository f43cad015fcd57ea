//! Issue 3's acceptance, from the outside: a device written from PROTOCOL.md alone
//! (`independent_device.py`, Python's standard library only, sharing no code with Rollcall)
//! authenticates, heartbeats, receives a pushed task, pages through its persons, downloads
//! their photos, reports the task's status and uploads attendance that shows up once in the
//! admin API — against the real `rollcall serve` binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

mod common;

use std::path::Path;
use std::process::Command;

use common::{ADMIN, start};

#[test]
fn a_device_written_from_the_protocol_document_alone_conforms() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = manifest.join("tests/independent_device.py");
    let face = manifest.join("../platform/tests/data/face1.jpg");
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("python3 not found: the independent device cannot run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let out = Command::new("python3")
        .arg(&script)
        .arg(&server.tcp)
        .arg(&server.http)
        .arg(ADMIN)
        .arg(&face)
        .output()
        .expect("run the independent device");
    server.child.kill().unwrap();
    let _ = server.child.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("CONFORMING"),
        "the independent device failed:\n{stdout}\n{stderr}"
    );
}
