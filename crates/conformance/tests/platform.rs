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
        assert!(
            r.verdict == Verdict::Pass,
            "{} {:?}: {}\n{}",
            r.id,
            r.verdict,
            r.reason,
            r.evidence.iter().map(|e| format!("{:?} {} {}", e.dir, e.channel, e.text)).collect::<Vec<_>>().join("\n")
        );
    }
    assert!(!report.any_failed());
}
