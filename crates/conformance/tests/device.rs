//! The kit against terminals: the SDK's device and a scripted terminal pass every device
//! case; scripted terminals with one fault each are reported breaking exactly that fault's
//! rules.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::scripted_device::{Faults, Scripted};
use rollcall_conformance::device::{self, DeviceTarget};
use rollcall_conformance::platform::VendorCreds;
use rollcall_conformance::{Report, Verdict};
use rollcall_device::{AttendanceRecord, Credentials, Device, DeviceConfig};
use rollcall_protocol::params::{Coordinate, QrCodeInfo};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const ID: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const KEY: &str = "1b2c3d4e5f60718293a4b5c6d7e8f90a";
const SECRET: &str = "2c3d4e5f60718293a4b5c6d7e8f90a1b";

struct Kit {
    tcp: TcpListener,
    http: TcpListener,
    target: DeviceTarget,
    prompts: mpsc::UnboundedReceiver<(String, String)>,
}

async fn kit() -> Kit {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", http.local_addr().unwrap());
    let mut target = DeviceTarget::new(
        VendorCreds {
            access_id: ID.into(),
            access_key: KEY.into(),
            access_secret: SECRET.into(),
        },
        &url,
    );
    target.heartbeat_window = Duration::from_secs(4);
    target.heartbeat_period = common::scripted_device::HEARTBEAT;
    // Wide: a loaded CI machine delays beats; a terminal three times slow is still caught.
    target.heartbeat_tolerance_pct = 50;
    target.outage = Duration::from_secs(2);
    // The kinds with their own cases (D-KIND-*), besides face.
    target.features =
        rollcall_conformance::Features::parse("", "face,iris,mobile,qr", false).unwrap();
    // Any bytes do: the SDK and the scripted terminal install whatever matches its sha256.
    target.firmware = Some(device::Firmware {
        version: "kit-fw-2".into(),
        bytes: b"rollcall conformance kit test firmware".repeat(100),
    });
    target.step_timeout = Duration::from_secs(20);
    target.records = 3;
    // Verdicts on stderr as they come (shown when a test fails).
    target.interactive = true;
    let (tx, prompts) = mpsc::unbounded_channel();
    target.prompts = Some(tx);
    Kit {
        tcp,
        http,
        target,
        prompts,
    }
}

fn show(report: &Report) -> String {
    let mut out = report.to_text();
    for r in &report.results {
        if r.verdict != Verdict::Pass {
            for e in &r.evidence {
                out.push_str(&format!(
                    "  {} {:?} {} {}\n",
                    r.id, e.dir, e.channel, e.text
                ));
            }
        }
    }
    out
}

/// Runs the device cases against a scripted terminal; the person asked to take records is
/// played by this function.
async fn against_scripted(faults: Faults) -> Report {
    let Kit {
        tcp,
        http,
        target,
        mut prompts,
    } = kit().await;
    let dev = Scripted {
        sn: "SCRIPTED0001".into(),
        access_id: ID.into(),
        access_key: KEY.into(),
        secret: SECRET.into(),
        tcp: tcp.local_addr().unwrap().to_string(),
        http: format!("http://{}", http.local_addr().unwrap()),
        faults,
        clock_offset_ms: Default::default(),
    };
    let (rec_tx, rec_rx) = mpsc::unbounded_channel();
    let device = tokio::spawn(dev.run(rec_rx));
    let person = tokio::spawn(async move {
        while let Some((case, _)) = prompts.recv().await {
            if case == "D-SIGNIN-01" || case == "D-OFFLINE-01" {
                let _ = rec_tx.send(3);
            }
            if let Some(kind) = kind_of(&case) {
                let _ = rec_tx.send(1000 + kind);
            }
        }
    });
    let report = device::run(&target, tcp, http).await;
    device.abort();
    person.abort();
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sdk_device_passes_every_device_case() {
    let Kit {
        tcp,
        http,
        mut target,
        mut prompts,
    } = kit().await;
    // The SDK decrypts answers with the kit's test key pair.
    target.features.jwe = true;
    target.jwe_public_key = Some(rollcall_conformance::platform::KIT_PUBLIC_KEY.into());
    let dir = tempfile::tempdir().unwrap();
    let mut config = DeviceConfig::new(
        "SDKDEVICE0001",
        Credentials::new(ID, KEY, SECRET),
        tcp.local_addr().unwrap().to_string(),
        format!("http://{}", http.local_addr().unwrap()),
        dir.path(),
    );
    config.tuning.heartbeat_interval = Duration::from_millis(800);
    target.heartbeat_period = Duration::from_millis(800);
    config.rsa_private_key_pem = Some(rollcall_conformance::platform::KIT_PRIVATE_KEY.into());
    let device = Device::open(config).unwrap();
    let handle = device.handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(device.run(async {
        let _ = stopped.await;
    }));
    let person = tokio::spawn(async move {
        // The offline records are other records than the first ones (recordTime differs).
        let mut offset = 0;
        while let Some((case, _)) = prompts.recv().await {
            let now = rollcall_protocol::time::now_ms();
            match kind_of(&case) {
                Some(32) => handle
                    .enqueue(AttendanceRecord::iris("9101", now, "sdk-iris-template"))
                    .await
                    .unwrap(),
                Some(64) => handle
                    .enqueue(AttendanceRecord::mobile(
                        "9101",
                        now,
                        Coordinate {
                            longitude: 120.1551,
                            latitude: 30.2741,
                        },
                        None,
                    ))
                    .await
                    .unwrap(),
                Some(_) => handle
                    .enqueue(AttendanceRecord::qr(
                        "9101",
                        now,
                        QrCodeInfo {
                            r#type: QrCodeInfo::PERSON_CODE,
                            code_color: Some("green".into()),
                            code_value: Some("sdk-code".into()),
                            city_code: Some("330100".into()),
                        },
                    ))
                    .await
                    .unwrap(),
                None => 0,
            };
            if case == "D-SIGNIN-01" || case == "D-OFFLINE-01" {
                let base = rollcall_protocol::time::now_ms() - 5_000 - offset;
                offset += 60_000;
                for i in 0..3 {
                    handle
                        .enqueue(AttendanceRecord::face("9101", base + i * 1000, None))
                        .await
                        .unwrap();
                }
            }
        }
    });
    let report = device::run(&target, tcp, http).await;
    let _ = stop.send(());
    let _ = running.await;
    person.abort();
    let text = show(&report);
    println!("{text}");
    assert!(
        report.results.iter().all(|r| r.verdict == Verdict::Pass),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_conforming_scripted_terminal_passes() {
    let report = against_scripted(Faults::default()).await;
    let text = show(&report);
    println!("{text}");
    // It declares no JWE: that case does not apply.
    assert!(
        report.results.iter().all(|r| r.verdict == Verdict::Pass
            || (r.id == "D-JWE-01" && r.verdict == Verdict::NotApplicable)),
        "{text}"
    );
}

/// The type bit a D-KIND-* case asks for.
fn kind_of(case: &str) -> Option<u32> {
    match case {
        "D-KIND-IRIS" => Some(32),
        "D-KIND-MOBILE" => Some(64),
        "D-KIND-QR" => Some(16),
        _ => None,
    }
}

fn broken(report: &Report) -> BTreeSet<String> {
    report.failed_rules()
}

/// A scripted terminal with `faults` is reported breaking `rule` and nothing else.
async fn breaks_exactly(faults: Faults, rule: &str) {
    let report = against_scripted(faults).await;
    let text = show(&report);
    println!("{text}");
    assert_eq!(broken(&report), BTreeSet::from([rule.to_owned()]), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_terminal_resending_acknowledged_records_breaks_exactly_zj_signin_05() {
    breaks_exactly(
        Faults {
            resend_duplicates: true,
            ..Faults::default()
        },
        "ZJ-SIGNIN-05",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_terminal_running_tasks_out_of_order_breaks_exactly_zj_task_04() {
    breaks_exactly(
        Faults {
            reverse_tasks: true,
            ..Faults::default()
        },
        "ZJ-TASK-04",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_terminal_ignoring_401_01_breaks_exactly_zj_token_03() {
    breaks_exactly(
        Faults {
            ignore_401: true,
            ..Faults::default()
        },
        "ZJ-TOKEN-03",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_terminal_hiding_failed_faces_breaks_exactly_zj_status_01() {
    breaks_exactly(
        Faults {
            hide_failed_faces: true,
            ..Faults::default()
        },
        "ZJ-STATUS-01",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_terminal_skipping_the_firmware_sha256_breaks_exactly_zj_fw_03() {
    breaks_exactly(
        Faults {
            skip_sha256: true,
            ..Faults::default()
        },
        "ZJ-FW-03",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_terminal_heartbeating_too_slowly_breaks_exactly_zj_hb_03() {
    breaks_exactly(
        Faults {
            slow_heartbeat: true,
            ..Faults::default()
        },
        "ZJ-HB-03",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_terminal_losing_records_taken_offline_breaks_exactly_zj_signin_05() {
    breaks_exactly(
        Faults {
            drop_offline: true,
            ..Faults::default()
        },
        "ZJ-SIGNIN-05",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mobile_terminal_without_its_coordinate_breaks_exactly_zj_signin_01() {
    breaks_exactly(
        Faults {
            mobile_without_coordinate: true,
            ..Faults::default()
        },
        "ZJ-SIGNIN-01",
    )
    .await;
}
