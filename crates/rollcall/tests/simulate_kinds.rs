//! `rollcall simulate --kinds …` from the outside: the binary plays every kind of terminal
//! against `rollcall serve` (both child processes, real sockets), and the platform's admin API
//! shows what each kind did — devices registered with their kind and a gate's direction, iris
//! information, mobile records flagged `outside_fence` exactly for the terminals placed outside
//! the project's fence, QR code info with a face, gate records stamped in and out, and the
//! workers a collector enrolled with X_COLLECT_PERSON on the project's roster.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

mod common;

use std::collections::HashSet;
use std::process::Command;

use rollcall_client::{AttendanceQuery, AttendanceRecord, Method};

async fn records(admin: &rollcall_client::AdminClient, sn: &str) -> Vec<AttendanceRecord> {
    let q = AttendanceQuery {
        sn: Some(sn.to_owned()),
        limit: Some(1000),
        ..AttendanceQuery::default()
    };
    admin.attendance_all(&q).await.expect("attendance")
}

/// The number after `label` in the summary.
fn number_after(out: &str, label: &str) -> u64 {
    let rest = out
        .split(label)
        .nth(1)
        .unwrap_or_else(|| panic!("{label:?} in the summary:\n{out}"));
    rest.trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a number after {label:?}:\n{out}"))
}

/// ZJ-SIGNIN-07, ZJ-SIGNIN-08, ZJ-COLLECT-06: every kind of terminal, one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_plays_every_kind_of_terminal_and_the_platform_files_each_by_its_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = common::start(&dir.path().join("platform"));
    let (http, tcp) = (server.http.clone(), server.tcp.clone());
    let sim_dir = dir.path().join("sim");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_rollcall"))
            .args(["simulate", "--tcp", &tcp, "--http", &http])
            .args(["--admin-token", common::ADMIN, "--sn-prefix", "KIND"])
            .args(["--kinds", "face=1,iris=1,mobile=2,qr=1,gate=2,collector=1"])
            .args(["--outside-fence-share", "0.5", "--site", "120.15,30.28"])
            .args(["--fence-radius", "500", "--workers", "3"])
            .args(["--rate", "240", "--collect-rate", "240"])
            .args(["--duration", "3", "--drain", "60", "--data-dir"])
            .arg(&sim_dir)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run rollcall simulate")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "simulate: {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("face 1, iris 1, mobile 2 (1 outside the fence / 围栏外), qr 1, gate-in 1, gate-out 1, collector 1"),
        "{stdout}"
    );
    let collected = number_after(&stdout, "persons collected:");
    assert!(collected >= 1, "{stdout}");
    assert!(
        stdout.contains(&format!("{collected} (0 failed)")),
        "{stdout}"
    );

    let admin = common::admin(&server.http);
    // Devices are registered with their kinds and a gate's direction.
    let kinds = [
        ("KIND0001", "face", "both"),
        ("KIND0002", "iris", "both"),
        ("KIND0003", "mobile", "both"),
        ("KIND0004", "mobile", "both"),
        ("KIND0005", "qr", "both"),
        ("KIND0006", "gate", "in"),
        ("KIND0007", "gate", "out"),
        ("KIND0008", "collector", "both"),
    ];
    for (sn, kind, direction) in kinds {
        let d = admin.device(sn).await.expect("a device");
        assert_eq!(
            (d.kind.as_str(), d.direction.as_str()),
            (kind, direction),
            "{sn}"
        );
    }
    let project = admin
        .device("KIND0001")
        .await
        .unwrap()
        .project_id
        .expect("bound");

    let face = records(&admin, "KIND0001").await;
    assert!(!face.is_empty());
    assert!(face.iter().all(|r| r.kind == 1 && r.direction == "both"));

    let iris = records(&admin, "KIND0002").await;
    assert!(!iris.is_empty());
    assert!(iris.iter().all(|r| r.kind == 32 && r.iris_info.is_some()));
    assert!(
        iris.iter()
            .all(|r| !r.flags.iter().any(|f| f == "indirect_method"))
    );

    // Of two mobile terminals at a share of 0.5, the first stands outside the fence.
    let outside = records(&admin, "KIND0003").await;
    let inside = records(&admin, "KIND0004").await;
    assert!(!outside.is_empty() && !inside.is_empty());
    for r in &outside {
        assert_eq!(r.kind, 64);
        assert!(r.coordinate.is_some());
        assert!(
            r.flags.iter().any(|f| f == "outside_fence"),
            "{:?}",
            r.flags
        );
    }
    for r in &inside {
        assert_eq!(r.kind, 64);
        assert!(r.coordinate.is_some());
        assert!(
            !r.flags
                .iter()
                .any(|f| f == "outside_fence" || f == "no_coordinate"),
            "{:?}",
            r.flags
        );
    }

    let qr = records(&admin, "KIND0005").await;
    assert!(!qr.is_empty());
    for r in &qr {
        assert_eq!((r.kind, r.bit_type), (16, Some(17)));
        let info = r.qr_code_info.as_ref().expect("the code info");
        assert_eq!(info["type"], 1);
        assert!(
            !r.flags
                .iter()
                .any(|f| f == "no_qr_info" || f == "indirect_method"),
            "{:?}",
            r.flags
        );
    }

    let gate_in = records(&admin, "KIND0006").await;
    let gate_out = records(&admin, "KIND0007").await;
    assert!(!gate_in.is_empty() && !gate_out.is_empty());
    assert!(gate_in.iter().all(|r| r.kind == 1 && r.direction == "in"));
    assert!(gate_out.iter().all(|r| r.kind == 1 && r.direction == "out"));

    // The collector takes no attendance; the workers it enrolled are on the roster.
    assert!(records(&admin, "KIND0008").await.is_empty());
    let roster = admin
        .send(Method::GET, &format!("/projects/{project}/workers"), None)
        .await
        .unwrap();
    assert_eq!(roster.status, 200, "{}", roster.body);
    let enrolled: HashSet<&str> = roster.body["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| {
            w["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("采集工人"))
        })
        .filter_map(|w| w["personId"].as_str())
        .collect();
    assert_eq!(enrolled.len() as u64, collected, "{}", roster.body);

    server.child.kill().unwrap();
    let _ = server.child.wait();
}

/// A mix or a share that cannot be played is refused before anything is set up (exit 2, the
/// flag named), with no platform needed.
#[test]
fn an_unplayable_mix_is_refused_naming_the_flag() {
    for (args, names) in [
        (&["--kinds", "face=2,palm=1"][..], "palm"),
        (&["--kind", "fingerprint"][..], "fingerprint"),
        (
            &["--kind", "mobile", "--outside-fence-share", "1.5"][..],
            "--outside-fence-share",
        ),
        (
            &["--kind", "mobile", "--fence-radius", "0"][..],
            "--fence-radius",
        ),
        (&["--kinds", "face=1", "--devices", "3"][..], "--devices"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_rollcall"))
            .arg("simulate")
            .args(args)
            .args([
                "--access-id",
                "a",
                "--access-key",
                "k",
                "--access-secret",
                "s",
            ])
            .args(["--tcp", "127.0.0.1:1", "--http", "http://127.0.0.1:1"])
            .output()
            .expect("run rollcall simulate");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(names), "{args:?}: {stderr}");
    }
}
