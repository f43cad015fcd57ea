//! The kit against Rollcall's own platform: every platform case passes (none fails, none
//! errs), so what the kit reports against other platforms is the standard, not noise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use rollcall_conformance::{Verdict, platform};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollcall_passes_every_platform_case() {
    let p = common::platform().await;
    let mut target = common::target(&p.tcp.to_string(), &p.http, &p.admin, &p.vendor);
    if let Ok(only) = std::env::var("KIT_ONLY") {
        target.only = only.split(',').map(str::to_owned).collect();
    }
    let report = platform::run(&target).await;
    println!("{}", report.to_text());
    for r in &report.results {
        for c in &r.checks {
            assert!(
                r.rules.contains(&c.rule),
                "{} checks {}, which its catalogue entry does not name",
                r.id,
                c.rule
            );
        }
        assert!(
            r.verdict == Verdict::Pass,
            "{} {:?}: {}\n{}",
            r.id,
            r.verdict,
            r.reason,
            r.evidence
                .iter()
                .map(|e| format!("{:?} {} {}", e.dir, e.channel, e.text))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(!report.any_failed());
}

use common::broken_platform::{self, Fault};
use std::collections::BTreeSet;

/// Runs every platform case against Rollcall behind a proxy with `fault`; the rules broken.
async fn broken_rules(fault: Fault) -> (BTreeSet<String>, String) {
    let p = common::platform().await;
    let proxy = broken_platform::start(p.tcp, &p.http, &p.vendor, fault).await;
    let target = common::target(&proxy.tcp.to_string(), &proxy.http, &p.admin, &p.vendor);
    let report = platform::run(&target).await;
    let text = report.to_text();
    println!("{text}");
    for r in &report.results {
        assert!(
            r.verdict != Verdict::Error,
            "{} errs: {}\n{text}",
            r.id,
            r.reason
        );
    }
    (report.failed_rules(), text)
}

fn set(rules: &[&str]) -> BTreeSet<String> {
    rules.iter().map(|r| (*r).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_platform_that_skips_dedupe_breaks_exactly_zj_signin_05() {
    let (broken, text) = broken_rules(Fault::SkipDedupe).await;
    assert_eq!(broken, set(&["ZJ-SIGNIN-05"]), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_platform_that_signs_wrongly_breaks_exactly_the_signature_rules() {
    let (broken, text) = broken_rules(Fault::WrongSign).await;
    assert_eq!(
        broken,
        set(&[
            "ZJ-CONN-08",
            "ZJ-JWE-03",
            "ZJ-SIGN-02",
            "ZJ-SIGN-09",
            "ZJ-SIGN-10",
            "ZJ-SIGN-11",
            "ZJ-SIGN-14"
        ]),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_platform_that_ignores_precedence_breaks_exactly_the_precedence_rules() {
    let (broken, text) = broken_rules(Fault::IgnorePrecedence).await;
    assert_eq!(
        broken,
        set(&["ZJ-ERR-04", "ZJ-ERR-05", "ZJ-SIGN-08"]),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_platform_whose_tokens_never_expire_breaks_exactly_zj_token_02() {
    let (broken, text) = broken_rules(Fault::NeverExpire).await;
    assert_eq!(broken, set(&["ZJ-TOKEN-02"]), "{text}");
}

/// `--ca-cert`: an HTTPS platform whose certificate a private CA signed. With the CA the
/// HTTP cases pass (photo downloads included); without it they cannot reach the platform.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_https_platform_is_tested_with_its_ca_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = common::pki(dir.path());
    let p = common::platform_with(Some((ca.clone(), cert, key))).await;
    assert!(p.http.starts_with("https://"), "{}", p.http);
    let only: Vec<String> = ["P-HTTP-01", "P-HTTP-02", "P-PERSON-01"]
        .map(String::from)
        .to_vec();
    let mut target = common::target(&p.tcp.to_string(), &p.http, &p.admin, &p.vendor);
    target.only = only.clone();
    target.ca_cert_pem = Some(ca);
    let report = platform::run(&target).await;
    let text = report.to_text();
    println!("{text}");
    assert_eq!(report.results.len(), 3, "{text}");
    assert!(
        report.results.iter().all(|r| r.verdict == Verdict::Pass),
        "{text}"
    );

    let mut untrusting = common::target(&p.tcp.to_string(), &p.http, &p.admin, &p.vendor);
    untrusting.only = only;
    let report = platform::run(&untrusting).await;
    let text = report.to_text();
    println!("{text}");
    assert!(
        report.results.iter().all(|r| r.verdict != Verdict::Pass),
        "without the CA no HTTPS case can pass:\n{text}"
    );
}
