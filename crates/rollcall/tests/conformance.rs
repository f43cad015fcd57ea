//! `rollcall conformance` end to end: the real binary runs the kit against the real
//! `rollcall serve` (short timers), writes its three reports and exits 0; told wrong timers,
//! it reports the failure and exits 1; `list` prints the catalogue.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::process::Command;

fn kit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rollcall"))
}

#[test]
fn list_prints_every_case_and_the_untestable_rules() {
    let out = kit().args(["conformance", "list"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for c in rollcall_conformance::CASES {
        assert!(text.contains(c.id), "{} listed", c.id);
    }
    for (rule, _) in rollcall_conformance::UNTESTABLE {
        assert!(text.contains(rule), "{rule} listed as untestable");
    }
}

#[test]
fn the_kit_passes_rollcall_serve_and_writes_its_reports() {
    let data = tempfile::tempdir().unwrap();
    let timers = [
        ("ROLLCALL_TOKEN_IDLE_SECS", "2"),
        ("ROLLCALL_OFFLINE_AFTER_SECS", "2"),
        ("ROLLCALL_REDELIVERY_SECS", "2"),
        ("ROLLCALL_IDLE_TIMEOUT_SECS", "3"),
    ];
    let mut server = common::start_with(data.path(), &[], &timers);
    let reports = tempfile::tempdir().unwrap();
    let json = reports.path().join("report.json");
    let html = reports.path().join("report.html");
    let junit = reports.path().join("junit.xml");
    // The timers reach the kit the way they reach the platform: as ROLLCALL_* settings.
    let out = kit()
        .args([
            "conformance",
            "platform",
            "--tcp",
            &server.tcp,
            "--http",
            &server.http,
            "--admin-token",
            common::ADMIN,
        ])
        .args(["--kinds", "face,mobile,collector", "--jwe"])
        .arg("--json")
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .arg("--junit")
        .arg(&junit)
        .envs(timers)
        .output()
        .unwrap();
    let _ = server.child.kill();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    let platform_cases =
        rollcall_conformance::catalogue::cases(rollcall_conformance::Side::Platform).count();
    assert_eq!(results.len(), platform_cases);
    // `serve` runs with the rate limit off (common::start_with), so that one case cannot decide.
    for r in results {
        let id = r["id"].as_str().unwrap();
        let verdict = r["verdict"].as_str().unwrap();
        if id == "P-ERR-04" {
            assert_eq!(verdict, "inconclusive", "{stdout}");
        } else {
            assert_eq!(verdict, "pass", "{id}: {}\n{stdout}", r["reason"]);
        }
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.starts_with("<!DOCTYPE html>")
            && page.contains("P-SIGNIN-02")
            && !page.contains("<script")
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuites")
            && xml.contains(&format!("tests=\"{platform_cases}\""))
            && xml.contains("failures=\"0\"")
    );
}

#[test]
fn a_failed_case_makes_the_exit_status_1() {
    let data = tempfile::tempdir().unwrap();
    let mut server = common::start_with(data.path(), &[], &[("ROLLCALL_TOKEN_IDLE_SECS", "60")]);
    // The kit is told tokens idle out after 1 s: the platform's still work after 3 s, which
    // is what a platform whose tokens never expire looks like.
    let out = kit()
        .args([
            "conformance",
            "platform",
            "--tcp",
            &server.tcp,
            "--http",
            &server.http,
            "--admin-token",
            common::ADMIN,
        ])
        .args(["--case", "P-TOKEN-01", "--token-idle-secs", "1"])
        .output()
        .unwrap();
    let _ = server.child.kill();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("ZJ-TOKEN-02"), "{stdout}");
}
