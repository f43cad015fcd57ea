//! Signed webhooks (docs/UPLINK.md, "Webhooks"): a receiver on port 0 that checks every
//! signature, fails the first deliveries, and records what it got; events for a worker, a
//! device coming online and an attendance record arrive at least once, in order, and the
//! endpoint's delivery log shows the attempts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

use crate::helpers::*;

#[derive(Default)]
struct Received {
    /// (delivery id, event, body), in arrival order, only the answered-2xx ones.
    taken: Vec<(i64, String, Value)>,
    /// How many requests arrived in all.
    requests: usize,
    bad_signatures: usize,
    /// Statuses to answer first.
    fail: VecDeque<u16>,
}

struct Receiver {
    url: String,
    got: Arc<Mutex<Received>>,
    secret: Arc<Mutex<String>>,
    _server: tokio::task::JoinHandle<()>,
}

/// What the receiver shares with its handler: what it got, and the secret to check with.
type Shared = (Arc<Mutex<Received>>, Arc<Mutex<String>>);

async fn receive(
    State((got, secret)): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let header = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let timestamp: i64 = header("x-rollcall-timestamp").parse().unwrap_or_default();
    let secret = secret.lock().unwrap().clone();
    let expected = rollcall_platform::uplink::webhooks::signature(&secret, timestamp, &body);
    let mut got = got.lock().unwrap();
    got.requests += 1;
    if header("x-rollcall-signature") != expected {
        got.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    if let Some(status) = got.fail.pop_front() {
        return StatusCode::from_u16(status).unwrap();
    }
    let value: Value = serde_json::from_slice(&body).unwrap();
    let id: i64 = header("x-rollcall-delivery").parse().unwrap();
    assert_eq!(value["id"], id.to_string());
    got.taken.push((id, header("x-rollcall-event"), value));
    StatusCode::NO_CONTENT
}

async fn receiver(fail: &[u16]) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Received {
        fail: fail.iter().copied().collect(),
        ..Received::default()
    }));
    let secret = Arc::new(Mutex::new(String::new()));
    let router = axum::Router::new()
        .route("/hook", post(receive))
        .with_state((Arc::clone(&got), Arc::clone(&secret)));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Receiver {
        url: format!("http://{addr}/hook"),
        got,
        secret,
        _server: server,
    }
}

#[tokio::test]
async fn events_are_signed_retried_and_delivered_in_order() {
    let app = TestApp::spawn_with(|s| {
        s.uplink.poll_ms = 20;
        s.uplink.backoff_ms = 20;
        s.uplink.backoff_max_ms = 100;
    })
    .await;
    let rx = receiver(&[500, 503]).await;
    let created = app
        .admin()
        .post(
            "/webhooks",
            &json!({"url": rx.url, "events": ["worker", "attendance", "device"]}),
        )
        .await
        .expect(201);
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    *rx.secret.lock().unwrap() = secret.clone();
    let id = created["id"].as_str().unwrap().to_owned();
    // Never shown again.
    let list = app.admin().get("/webhooks").await.expect(200);
    assert!(!list.to_string().contains(&secret));

    let vendor = app.vendor().await;
    let project = app.project(None).await;
    let person = app.worker("回调工人").await;
    app.assign(&project, &[person]).await;
    app.register_device("SN-HOOK", &vendor, Some(&project))
        .await;
    let mut device = app.http_device(&vendor, "SN-HOOK");
    device.auth().await;
    device.heartbeat().await;
    let r = device
        .sign_in(&sign_in_param(&person.to_string(), 1, now_ms() - 5_000))
        .await;

    let taken = eventually("the three events", || async {
        let got = rx.got.lock().unwrap();
        let events: Vec<&str> = got.taken.iter().map(|t| t.1.as_str()).collect();
        (events.contains(&"worker") && events.contains(&"device") && events.contains(&"attendance"))
            .then(|| got.taken.clone())
    })
    .await;
    let got = rx.got.lock().unwrap().requests;
    assert!(got >= taken.len() + 2, "the failed attempts were retried");
    assert_eq!(rx.got.lock().unwrap().bad_signatures, 0);
    // In order, each once.
    let ids: Vec<i64> = taken.iter().map(|t| t.0).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(ids, sorted, "delivered in order, each once");
    let by_event = |e: &str| taken.iter().find(|t| t.1 == e).unwrap().2.clone();
    assert_eq!(by_event("worker")["data"]["personId"], person.to_string());
    assert!(
        by_event("worker")["data"]["idcardNo"]
            .as_str()
            .unwrap()
            .contains('*')
    );
    assert_eq!(by_event("attendance")["data"]["recordId"], r.record_id);
    assert_eq!(by_event("device")["data"]["sn"], "SN-HOOK");
    assert_eq!(by_event("device")["data"]["online"], true);

    // The delivery log: the first event took three attempts.
    // The receiver answered before the platform recorded the last delivery: wait for it.
    let log = eventually("every delivery recorded as delivered", || async {
        let log = app
            .admin()
            .get(&format!("/webhooks/{id}/deliveries"))
            .await
            .expect(200);
        let rows = log["deliveries"].as_array().unwrap();
        (rows.len() >= 3 && rows.iter().all(|d| d["state"] == "delivered")).then_some(log)
    })
    .await;
    let rows = log["deliveries"].as_array().unwrap();
    let first = rows.last().unwrap();
    assert_eq!(first["attempts"], 3);
    assert_eq!(first["lastStatus"], 204);

    // Disabled: nothing more is delivered.
    let r = app.admin().delete(&format!("/webhooks/{id}")).await;
    assert_eq!(r.status, 204);
    let (_, pm) = app.user("pm-hooks", "project_manager", &[&project]).await;
    assert_eq!(pm.get("/webhooks").await.status, 403);
}
