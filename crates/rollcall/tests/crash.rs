//! Crash safety of `rollcall serve`, from the outside: spawn the real binary, pipeline
//! sign-ins over TCP as a device would, SIGKILL the process mid-ingest, restart it on the
//! same data dir, and check that every record it acknowledged is stored exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

mod common;

use std::collections::HashMap;

use common::{Device, start, stored, vendor};
use rollcall_protocol::envelope::Request;
use rollcall_protocol::params::{self, SignInResponse};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_record_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let vendor = vendor(&server.http, "crash").await;
    let mut device = Device::connect(&server.tcp, "CRASH-1", &vendor).await;

    // Pipeline sign-ins in windows of 32 and kill the server while a window is in flight.
    let base = 1_700_000_000_000_i64 + (std::process::id() as i64) * 1000;
    let mut acked: HashMap<(String, i64), String> = HashMap::new();
    let mut sent = 0u64;
    let kill_after = 400;
    'outer: loop {
        let window: Vec<Request> = (0..32)
            .map(|i| device.sign_in(1000 + (sent + i) % 50, base + (sent + i) as i64))
            .collect();
        let keys: Vec<(String, i64)> = window
            .iter()
            .map(|r| {
                let v: Value = serde_json::from_str(r.param.as_deref().unwrap()).unwrap();
                (
                    v["personId"].as_str().unwrap().to_owned(),
                    v["recordTime"].as_i64().unwrap(),
                )
            })
            .collect();
        for r in window {
            if device.send(r).await.is_err() {
                break 'outer;
            }
        }
        sent += 32;
        if acked.len() >= kill_after {
            server.child.kill().expect("SIGKILL");
        }
        for key in keys {
            match device.recv().await {
                Some(resp) if resp.success() => {
                    let r: SignInResponse = params::parse(resp.response_text().unwrap()).unwrap();
                    acked.insert(key, r.record_id);
                }
                Some(resp) => panic!("sign-in refused: {:?}", resp.outcome),
                None => break 'outer,
            }
        }
    }
    let _ = server.child.wait();
    assert!(
        acked.len() >= kill_after,
        "acknowledged {} before the kill",
        acked.len()
    );

    // Restart on the same data dir: every acknowledged record is there, once, same id.
    let mut server = start(dir.path());
    let stored = stored(&server.http, "CRASH-1").await;
    for (key, record_id) in &acked {
        let ids = stored
            .get(key)
            .unwrap_or_else(|| panic!("acknowledged record {key:?} lost"));
        assert_eq!(ids, &vec![record_id.clone()], "record {key:?} stored once");
    }
    assert!(
        stored.values().all(|ids| ids.len() == 1),
        "nothing stored twice"
    );

    // Resending what was acknowledged stores nothing new.
    let mut device = Device::connect(&server.tcp, "CRASH-1", &vendor).await;
    let resend: Vec<((String, i64), String)> = acked
        .iter()
        .take(50)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for ((person, time), _) in &resend {
        let req = device.sign_in(person.parse().unwrap(), *time);
        device.send(req).await.unwrap();
    }
    for (_, record_id) in &resend {
        let resp = device.recv().await.expect("resend answer");
        let r: SignInResponse = params::parse(resp.response_text().unwrap()).unwrap();
        assert!(r.duplicate);
        assert_eq!(&r.record_id, record_id);
    }
    assert_eq!(stored_len(&server.http).await, stored.len());
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

async fn stored_len(http: &str) -> usize {
    stored(http, "CRASH-1").await.len()
}
