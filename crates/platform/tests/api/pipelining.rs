//! Pipelining (ZJ-CONN-05, ZJ-CONN-06): many requests in flight on one connection, answered in
//! request order, each stored once.

use std::collections::HashSet;

use rollcall_protocol::params::{self, SignInResponse};
use rollcall_protocol::{ApiCode, ErrorCode};

use crate::helpers::*;

#[tokio::test]
async fn a_hundred_pipelined_sign_ins_are_answered_in_request_order_and_stored_once() {
    let app = TestApp::spawn().await;
    pipelined_sign_ins_in_order_stored_once(&app, "SN-PIPE", 100, 1000).await;
}

/// Signs in `count` records of persons `first`, `first + 1`, … on one connection, all in
/// flight at once, and checks that each answer comes in request order, belongs to its
/// request, and is stored once.
async fn pipelined_sign_ins_in_order_stored_once(app: &TestApp, sn: &str, count: i64, first: i64) {
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, sn).await;
    dev.auth().await;
    let base = now_ms();
    let reqs: Vec<_> = (0..count)
        .map(|i| {
            let p = sign_in_param(&format!("{}", first + i), 1, base + i);
            dev.id.signed(ApiCode::SignIn, Some(&p.to_string()))
        })
        .collect();

    let seqs = dev.send_many(reqs).await;
    let mut record_ids = Vec::new();
    for seq in &seqs {
        let resp = dev.recv().await;
        assert_eq!(resp.seq, *seq, "answers come in request order");
        let text = dev.id.ok(&resp, ApiCode::SignIn).expect("a record id");
        let r: SignInResponse = params::parse(&text).unwrap();
        assert!(!r.duplicate);
        record_ids.push(r.record_id);
    }

    let n = usize::try_from(count).unwrap();
    assert_eq!(record_ids.iter().collect::<HashSet<_>>().len(), n);
    let stored = app.records(sn).await;
    assert_eq!(stored.len(), n, "each stored once");
    for (i, id) in (0..).zip(&record_ids) {
        let r = stored
            .iter()
            .find(|r| r.record_id == *id)
            .expect("the answered id is stored");
        assert_eq!(
            r.person_id,
            format!("{}", first + i),
            "answer i belongs to request i"
        );
        assert_eq!(r.record_time, base + i);
    }
}

#[tokio::test]
async fn pipelined_requests_of_mixed_kinds_and_outcomes_keep_their_order() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-PIPE-MIX").await;
    dev.auth().await;
    let now = now_ms();
    let mut bad_sign = dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));
    bad_sign.sign = "0".repeat(32);
    let reqs = vec![
        dev.id.signed(
            ApiCode::SignIn,
            Some(&sign_in_param("1", 1, now).to_string()),
        ),
        bad_sign,
        dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param())),
        dev.id.signed(
            ApiCode::SignIn,
            Some(&sign_in_param("1", 3, now).to_string()),
        ),
        // The first one again: a duplicate.
        dev.id.signed(
            ApiCode::SignIn,
            Some(&sign_in_param("1", 1, now).to_string()),
        ),
    ];

    dev.send_many(reqs).await;
    let answers: Vec<_> = {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(dev.recv().await);
        }
        v
    };

    let first: SignInResponse =
        params::parse(&dev.id.ok(&answers[0], ApiCode::SignIn).unwrap()).unwrap();
    expect_err(&answers[1], ErrorCode::AuthFailed);
    dev.id.ok(&answers[2], ApiCode::Heartbeat);
    expect_err(&answers[3], ErrorCode::AttendanceType);
    let dup: SignInResponse =
        params::parse(&dev.id.ok(&answers[4], ApiCode::SignIn).unwrap()).unwrap();
    // Handled concurrently, either copy may be the one stored; the other is its duplicate.
    assert_ne!(first.duplicate, dup.duplicate, "exactly one duplicate");
    assert_eq!(dup.record_id, first.record_id);
    assert_eq!(app.records("SN-PIPE-MIX").await.len(), 1);
}

#[tokio::test]
async fn pipelined_copies_of_one_record_store_the_first_and_answer_the_rest_as_duplicates() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-PIPE-DUP").await;
    dev.auth().await;
    let p = sign_in_param("4242", 1, now_ms()).to_string();
    let reqs: Vec<_> = (0..8)
        .map(|_| dev.id.signed(ApiCode::SignIn, Some(&p)))
        .collect();
    let seqs = dev.send_many(reqs).await;
    let mut answers = Vec::new();
    for _ in &seqs {
        let resp = dev.recv().await;
        let text = dev.id.ok(&resp, ApiCode::SignIn).expect("a record id");
        answers.push(params::parse::<SignInResponse>(&text).unwrap());
    }
    assert!(
        !answers[0].duplicate,
        "the first to arrive is the one stored"
    );
    assert!(answers[1..].iter().all(|a| a.duplicate), "{answers:?}");
    assert!(answers.iter().all(|a| a.record_id == answers[0].record_id));
    assert_eq!(app.records("SN-PIPE-DUP").await.len(), 1);
}

/// A connection keeps its arrival order only while requests are in flight (the turnstile is
/// dropped when it has answered everything, and made again by the next request): every burst
/// after a quiet spell is ordered on its own, however many came before.
#[tokio::test]
async fn each_burst_after_a_quiet_spell_keeps_arrival_order() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-PIPE-BURSTS").await;
    dev.auth().await;
    let base = now_ms();
    for burst in 0..3_i64 {
        // Each burst: a record, then copies of it and of the next: the first of each stored.
        let first = sign_in_param(&format!("{}", 7000 + burst), 1, base + burst).to_string();
        let second = sign_in_param(&format!("{}", 8000 + burst), 1, base + burst).to_string();
        let order = [&first, &second, &first, &second, &first];
        let reqs: Vec<_> = order
            .iter()
            .map(|p| dev.id.signed(ApiCode::SignIn, Some(p)))
            .collect();
        let seqs = dev.send_many(reqs).await;
        let mut answers = Vec::new();
        for seq in &seqs {
            let resp = dev.recv().await;
            assert_eq!(resp.seq, *seq, "burst {burst}: answers in request order");
            let text = dev.id.ok(&resp, ApiCode::SignIn).expect("a record id");
            answers.push(params::parse::<SignInResponse>(&text).unwrap());
        }
        let dup: Vec<bool> = answers.iter().map(|a| a.duplicate).collect();
        assert_eq!(dup, [false, false, true, true, true], "burst {burst}");
        assert_eq!(answers[2].record_id, answers[0].record_id);
        assert_eq!(answers[3].record_id, answers[1].record_id);
        assert!(
            answers[1].record_id > answers[0].record_id,
            "ids in arrival order"
        );
    }
    assert_eq!(app.records("SN-PIPE-BURSTS").await.len(), 6);
}

/// ZJ-CONN-06 with the commit queue full: sign-ins that find no room wait for it
/// (`Ingest::enqueue`) and are still answered in request order, each stored once.
#[tokio::test]
async fn pipelined_sign_ins_that_find_the_commit_queue_full_wait_for_room() {
    // One record per commit, a queue of four: most of the window waits for room.
    let app = TestApp::spawn_with(|s| s.ingest_batch_max = 1).await;
    pipelined_sign_ins_in_order_stored_once(&app, "SN-PIPE-FULL", 64, 2000).await;
}
