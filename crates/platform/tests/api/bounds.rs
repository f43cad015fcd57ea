//! No client exhausts the platform: unauthenticated TCP connections have a deadline and a
//! per-address failure budget (ZJ-ERR-07), incomplete frames share a global memory budget
//! (ZJ-FRAME-03), writes have a deadline and shutdown a bounded drain, and HTTP connections
//! have header and request timeouts and caps.

use std::time::Duration;

use rollcall_protocol::envelope::Response;
use rollcall_protocol::frame;
use rollcall_protocol::{ApiCode, ErrorCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::*;

/// A varint as the frame header writes it.
fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// A heartbeat whose token is unknown (401_01).
fn bogus_heartbeat(id: &Identity) -> rollcall_protocol::envelope::Request {
    let mut r = id.request(ApiCode::Heartbeat, Some(&heartbeat_param()));
    r.token = "ffffffffffffffffffffffffffffffff".into();
    id.sign(&mut r);
    r
}

// --- unauthenticated TCP ------------------------------------------------------------------

/// An unbound connection is closed `auth_timeout_secs` after it was accepted, however often it
/// sends frames (each would reset the idle timer); a bound one is not.
#[tokio::test]
async fn an_unbound_connection_is_closed_after_the_auth_timeout_whatever_it_sends() {
    let app = TestApp::spawn_with(|s| {
        s.auth_timeout_secs = 1;
        s.idle_timeout_secs = 60;
        s.rate_limit = rollcall_platform::config::RateLimit::Off;
    })
    .await;
    let vendor = app.vendor().await;
    let mut bound = app.device(&vendor, "SN-AUTH-BOUND").await;
    bound.auth().await;
    let mut chatty = app.device(&vendor, "SN-AUTH-CHATTY").await;

    let mut closed = false;
    for _ in 0..40 {
        chatty.send(bogus_heartbeat(&chatty.id)).await;
        match chatty.recv_packet().await {
            Some(p) => {
                expect_err(&Response::from_packet(p), ErrorCode::TokenNotFound);
            }
            None => {
                closed = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    assert!(
        closed,
        "an unbound connection is closed within the auth timeout"
    );
    // The bound connection, older than the deadline, is still served.
    bound.heartbeat().await;
}

/// ZJ-ERR-07: every refusal of an unauthenticated request (unknown token, bad sign) spends
/// its source address's budget, so a flood gets 429_01; a device's own budget is untouched.
#[tokio::test]
async fn unauthenticated_failures_spend_the_source_addresses_budget_and_a_flood_gets_429_01() {
    // A slow refill: what is spent stays spent for the length of the test.
    let app = TestApp::spawn_with(|s| s.rate_limit = "0.1/s burst 3".parse().unwrap()).await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-FAIL-BUDGET").await;
    dev.auth().await;

    // Someone floods with the device's sn over HTTP: unknown tokens and bad signs.
    let flood = app.http_device(&vendor, "SN-FAIL-BUDGET");
    let mut codes = Vec::new();
    for i in 0..12 {
        let mut r = dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));
        if i % 2 == 0 {
            r.token = "ffffffffffffffffffffffffffffffff".into();
        } else {
            r.sign = "0".repeat(32);
        }
        let resp = flood.call(&r).await;
        codes.push(resp.outcome.unwrap_err().code);
    }
    assert_eq!(
        &codes[..3],
        &[
            ErrorCode::TokenNotFound,
            ErrorCode::AuthFailed,
            ErrorCode::TokenNotFound
        ]
    );
    assert!(
        codes[3..].iter().all(|c| *c == ErrorCode::RateLimited),
        "the flood is limited: {codes:?}"
    );

    // An unbound TCP connection from the same address is refused before any lookup.
    let mut tcp = app.device(&vendor, "SN-FAIL-BUDGET-TCP").await;
    let resp = tcp.call(bogus_heartbeat(&tcp.id)).await;
    expect_err(&resp, ErrorCode::RateLimited);

    // The device's own budget (burst 3) is intact, and its bound connection is not limited
    // by its address.
    for _ in 0..3 {
        dev.heartbeat().await;
    }
}

// --- frames in flight ---------------------------------------------------------------------

/// ZJ-FRAME-03: an incomplete frame's announced length is reserved from
/// `max_inflight_frame_bytes` before its body is buffered; a frame that does not fit waits
/// for room.
#[tokio::test]
async fn an_incomplete_frame_beyond_the_inflight_budget_waits_for_room() {
    let app = TestApp::spawn_with(|s| {
        s.max_inflight_frame_bytes = 256 * 1024;
        s.rate_limit = rollcall_platform::config::RateLimit::Off;
    })
    .await;
    let vendor = app.vendor().await;

    // A: a small request, then the head of a 200 KiB frame, in one write. The reservation is
    // made in the read that decodes the small request, so once its answer is back the
    // 200 KiB are held.
    let mut a = app.device(&vendor, "SN-BUDGET-A").await;
    let mut bytes = frame::encode_to_vec(&bogus_heartbeat(&a.id).to_packet());
    bytes.extend(varint(200 * 1024));
    bytes.extend([0x0a, 0x03]);
    assert!(bytes.len() < 512, "one read: {}", bytes.len());
    a.send_bytes(&bytes).await;
    expect_err(&a.recv().await, ErrorCode::TokenNotFound);

    // B: a whole 100 KiB frame, more than the 56 KiB left.
    let mut b = app.device(&vendor, "SN-BUDGET-B").await;
    let mut big = bogus_heartbeat(&b.id);
    big.param = Some("x".repeat(100 * 1024));
    b.send(big).await;
    let mut answered = tokio::spawn(async move {
        let resp = b.recv().await;
        (b, resp)
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut answered)
            .await
            .is_err(),
        "B's frame waits while A holds the budget"
    );

    // A goes: its reservation comes back, and B's frame is read and answered.
    drop(a);
    let (_b, resp) = tokio::time::timeout(WAIT, answered)
        .await
        .expect("answered once there is room")
        .unwrap();
    assert!(resp.outcome.is_err());
}

/// ZJ-FRAME-04: a frame that could never fit the whole in-flight budget gets one 413_01
/// packet on its header, then the connection closes.
#[tokio::test]
async fn a_frame_larger_than_the_whole_inflight_budget_gets_413_01() {
    let app = TestApp::spawn_with(|s| s.max_inflight_frame_bytes = 256 * 1024).await;
    let vendor = app.vendor().await;
    let mut raw = app.device(&vendor, "SN-BUDGET-HUGE").await;
    let mut bytes = varint(300 * 1024);
    bytes.extend_from_slice(&[0x0a; 16]);

    raw.send_bytes(&bytes).await;
    let packets = raw.expect_closed().await;

    assert_eq!(packets.len(), 1, "{packets:?}");
    expect_err(
        &Response::from_packet(packets[0].clone()),
        ErrorCode::TooLarge,
    );
}

// --- writes that make no progress ---------------------------------------------------------

/// A bound device connected with a tiny receive buffer that floods heartbeats without ever
/// reading an answer, in a task that writes whole batches (never a cut frame) until its write
/// fails. Returns once the platform has stopped taking its requests for a while (its answers
/// fill the buffers, so the platform's writes to it are blocked); the task goes on writing, so
/// the platform stays blocked on it.
async fn a_device_that_never_reads(
    app: &TestApp,
    vendor: &VendorCreds,
    sn: &str,
) -> tokio::task::JoinHandle<()> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(app.tcp_addr).await.unwrap();
    let mut dev = TestDevice::over(stream, Identity::new(sn, vendor));
    dev.auth().await;
    let mut batch = Vec::new();
    for _ in 0..200 {
        let hb = dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));
        batch.extend(frame::encode_to_vec(&hb.to_packet()));
    }
    let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let progress = std::sync::Arc::clone(&written);
    let writer = tokio::spawn(async move {
        while dev.write_raw(&batch).await.is_ok() {
            progress.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    eventually("the platform stops taking the requests", || {
        let written = std::sync::Arc::clone(&written);
        async move {
            let before = written.load(std::sync::atomic::Ordering::Relaxed);
            // Long enough that a merely slow (loaded) platform is not taken for a blocked one.
            tokio::time::sleep(Duration::from_millis(1000)).await;
            (before > 0 && written.load(std::sync::atomic::Ordering::Relaxed) == before)
                .then_some(())
        }
    })
    .await;
    writer
}

#[tokio::test]
async fn a_device_that_never_reads_its_answers_is_dropped_after_the_write_timeout() {
    let app = TestApp::spawn_with(|s| {
        s.write_timeout_secs = 1;
        s.idle_timeout_secs = 60;
        s.rate_limit = rollcall_platform::config::RateLimit::Off;
    })
    .await;
    let vendor = app.vendor().await;
    let writer = a_device_that_never_reads(&app, &vendor, "SN-NEVER-READS").await;

    // A bound well above the 1 s write timeout: on a loaded 2-core machine the sweep and the
    // stalled task may wait for a turn, and this test is about the drop, not its speed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while app.state().registry.is_connected("SN-NEVER-READS") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stalled connection is still registered after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its writes fail once it is gone.
    tokio::time::timeout(WAIT, writer).await.unwrap().unwrap();
    // Others are still served.
    let mut other = app.device(&vendor, "SN-READS").await;
    other.auth().await;
    other.heartbeat().await;
}

/// Shutdown finishes within `shutdown_grace_secs` even with a connection whose writes are
/// blocked (the write timeout is far longer here).
#[tokio::test]
async fn shutdown_finishes_within_the_grace_despite_a_device_that_never_reads() {
    let mut app = TestApp::spawn_with(|s| {
        s.write_timeout_secs = 600;
        s.idle_timeout_secs = 600;
        s.shutdown_grace_secs = 1;
        s.rate_limit = rollcall_platform::config::RateLimit::Off;
    })
    .await;
    let vendor = app.vendor().await;
    let _writer = a_device_that_never_reads(&app, &vendor, "SN-NEVER-READS-2").await;

    // Within the harness's bound (it fails the test otherwise).
    app.shutdown().await;
}

// --- HTTP ---------------------------------------------------------------------------------

/// The HTTP port's address.
fn http_addr(app: &TestApp) -> String {
    app.base_url.trim_start_matches("http://").to_owned()
}

/// Reads until the peer closes; `true` when it closed within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let closed = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, closed).await.is_ok()
}

#[tokio::test]
async fn a_silent_or_partial_header_http_connection_is_closed_after_the_header_timeout() {
    let app = TestApp::spawn_with(|s| s.http_header_timeout_secs = 1).await;
    let mut silent = TcpStream::connect(http_addr(&app)).await.unwrap();
    let mut partial = TcpStream::connect(http_addr(&app)).await.unwrap();
    partial
        .write_all(b"GET /console HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();

    assert!(closed_within(&mut silent, WAIT).await, "silent");
    assert!(closed_within(&mut partial, WAIT).await, "partial header");
}

#[tokio::test]
async fn an_http_request_whose_body_stalls_gets_408_after_the_request_timeout() {
    let app = TestApp::spawn_with(|s| s.http_request_timeout_secs = 1).await;
    let mut stalled = TcpStream::connect(http_addr(&app)).await.unwrap();
    // Announces 1 MiB of body, sends 10 bytes.
    stalled
        .write_all(
            b"POST /device/api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 1048576\r\n\r\n{\"sn\":\"12",
        )
        .await
        .unwrap();

    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, stalled.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the connection is answered and closed in time"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}

/// Beyond `max_http_connections`, connections wait in the listen queue (holding no file
/// descriptor of the platform); the device TCP listener keeps accepting meanwhile.
#[tokio::test]
async fn http_connections_beyond_the_cap_wait_and_the_device_listener_still_accepts() {
    let app = TestApp::spawn_with(|s| {
        s.max_http_connections = 3;
        s.http_header_timeout_secs = 60;
    })
    .await;
    // No admin call before: its pooled connection would take a slot. A vendor unknown to the
    // platform is enough for the device listener to answer (401_01).
    let vendor = VendorCreds {
        id: "0".into(),
        access_id: "unknown".into(),
        access_key: "unknown".into(),
        secret: "unknown".into(),
    };
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(http_addr(&app)).await.unwrap());
    }
    let mut fourth = TcpStream::connect(http_addr(&app)).await.unwrap();
    fourth
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answered = tokio::spawn(async move {
        let mut answer = Vec::new();
        let _ = fourth.read_to_end(&mut answer).await;
        answer
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut answered)
            .await
            .is_err(),
        "every HTTP slot is taken: no answer yet"
    );

    // The device listener is unaffected.
    let mut dev = app.device(&vendor, "SN-HTTP-CAP").await;
    let resp = dev.call(bogus_heartbeat(&dev.id)).await;
    expect_err(&resp, ErrorCode::TokenNotFound);

    drop(idle.pop());
    let answer = tokio::time::timeout(WAIT, answered)
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 3"),
        "the redirect to the console"
    );
}

#[tokio::test]
async fn http_connections_beyond_the_per_address_cap_are_closed_at_once() {
    let app = TestApp::spawn_with(|s| {
        s.max_http_connections_per_addr = 2;
        s.http_header_timeout_secs = 60;
    })
    .await;
    let _a = TcpStream::connect(http_addr(&app)).await.unwrap();
    let _b = TcpStream::connect(http_addr(&app)).await.unwrap();
    let mut third = TcpStream::connect(http_addr(&app)).await.unwrap();

    assert!(closed_within(&mut third, WAIT).await);
}
