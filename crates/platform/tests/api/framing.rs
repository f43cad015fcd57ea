//! TCP framing (ZJ-FRAME-01 to ZJ-FRAME-05): a corrupt or oversize stream costs only its own
//! connection; split and coalesced frames are reassembled.

use std::time::Duration;

use prost::Message;
use rollcall_protocol::envelope::Response;
use rollcall_protocol::frame;
use rollcall_protocol::{ApiCode, ErrorCode, Packet};

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

/// The packets a connection gets after sending `bytes`, until it is closed.
async fn answers_to(app: &TestApp, vendor: &VendorCreds, bytes: &[u8]) -> Vec<Packet> {
    let mut raw = app.device(vendor, "SN-RAW").await;
    raw.send_bytes(bytes).await;
    raw.expect_closed().await
}

/// ZJ-FRAME-04: exactly one error packet before the close, never signed (ZJ-SIGN-12).
fn the_one_error(packets: &[Packet], code: ErrorCode) {
    assert_eq!(packets.len(), 1, "exactly one error packet: {packets:?}");
    let resp = Response::from_packet(packets[0].clone());
    expect_err(&resp, code);
    assert!(resp.sign.is_empty(), "framing errors are never signed");
}

/// ZJ-FRAME-03, ZJ-FRAME-04: a length over the limit is refused on the header alone.
#[tokio::test]
async fn an_oversize_frame_gets_one_413_01_packet_then_the_connection_closes() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    // A 3 MiB length (the default limit is 2 MiB) and a few body bytes: refused on the header.
    let mut bytes = varint(3 * 1024 * 1024);
    bytes.extend_from_slice(&[0x0a; 16]);

    let packets = answers_to(&app, &vendor, &bytes).await;

    the_one_error(&packets, ErrorCode::TooLarge);
}

/// ZJ-FRAME-03: `max_frame_bytes` is a setting.
#[tokio::test]
async fn a_frame_over_a_configured_max_frame_bytes_gets_413_01() {
    let app = TestApp::spawn_with(|s| s.max_frame_bytes = 1024).await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-FRAME-LIMIT").await;
    dev.auth().await;
    let mut p = sign_in_param("1", 1, now_ms());
    p["img"] = b64(&[0u8; 2048]).into();

    dev.send(dev.id.signed(ApiCode::SignIn, Some(&p.to_string())))
        .await;

    the_one_error(&dev.expect_closed().await, ErrorCode::TooLarge);
    assert!(app.records("SN-FRAME-LIMIT").await.is_empty());
}

/// ZJ-FRAME-03, ZJ-FRAME-04: a body that is not a `Packet`.
#[tokio::test]
async fn a_body_that_is_not_a_packet_gets_one_400_02_packet_then_the_connection_closes() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    // Field 1 with wire type 7 (invalid), then junk.
    let body = [0x0f, 0xff, 0xff, 0xff];
    let mut bytes = varint(body.len() as u64);
    bytes.extend_from_slice(&body);

    let packets = answers_to(&app, &vendor, &bytes).await;

    the_one_error(&packets, ErrorCode::ParamInvalid);
}

/// ZJ-FRAME-03, ZJ-FRAME-04: a length varint over 5 bytes.
#[tokio::test]
async fn a_six_byte_varint_gets_one_400_02_packet_then_the_connection_closes() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;

    let packets = answers_to(&app, &vendor, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).await;

    the_one_error(&packets, ErrorCode::ParamInvalid);
}

#[tokio::test]
async fn answers_owed_before_a_corrupt_frame_are_written_before_the_error() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-OWED").await;
    dev.auth().await;
    let mut bytes = Vec::new();
    let hb = dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));
    bytes.extend(frame::encode_to_vec(&hb.to_packet()));
    bytes.extend([0x80, 0x80, 0x80, 0x80, 0x80, 0x80]);

    dev.send_bytes(&bytes).await;
    let packets = dev.expect_closed().await;

    assert_eq!(packets.len(), 2, "{packets:?}");
    let first = Response::from_packet(packets[0].clone());
    dev.id.ok(&first, ApiCode::Heartbeat);
    the_one_error(&packets[1..], ErrorCode::ParamInvalid);
}

/// ZJ-FRAME-04: no other connection is affected.
#[tokio::test]
async fn garbage_on_one_connection_closes_only_that_connection() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut good = app.device(&vendor, "SN-GOOD").await;
    good.auth().await;

    for garbage in [
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
        &[0x03, 0xff, 0xff, 0xff][..],
        &[0xff, 0xff, 0xff, 0x7f][..],
    ] {
        let mut bad = app.device(&vendor, "SN-BAD").await;
        bad.send_bytes(garbage).await;
        let packets = bad.expect_closed().await;
        assert!(packets.len() <= 1, "at most one error packet");

        assert_eq!(good.heartbeat().await, Vec::<String>::new());
        let r = good.sign_in(&sign_in_param("5", 1, now_ms())).await;
        assert!(!r.duplicate);
    }
    // A new connection is served as well.
    let mut late = app.device(&vendor, "SN-LATE").await;
    late.auth().await;
}

/// ZJ-FRAME-02: a partial frame is buffered until complete.
#[tokio::test]
async fn a_frame_split_across_many_small_writes_is_reassembled() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-SPLIT").await;
    let mut p = sign_in_param("77", 1, now_ms());
    p["img"] = b64(FACE_JPG).into();
    let auth = frame::encode_to_vec(&dev.id.signed(ApiCode::Auth, None).to_packet());

    // The auth frame one byte at a time.
    for b in &auth {
        dev.send_bytes(std::slice::from_ref(b)).await;
        tokio::task::yield_now().await;
    }
    let resp = dev.recv().await;
    let token = dev.id.ok(&resp, ApiCode::Auth).expect("token");
    dev.id.token =
        rollcall_protocol::params::parse::<rollcall_protocol::params::AuthResponse>(&token)
            .unwrap()
            .token;

    // A 65 KB sign-in in 1000-byte pieces.
    let si = frame::encode_to_vec(
        &dev.id
            .signed(ApiCode::SignIn, Some(&p.to_string()))
            .to_packet(),
    );
    for chunk in si.chunks(1000) {
        dev.send_bytes(chunk).await;
    }
    let resp = dev.recv().await;
    dev.id.ok(&resp, ApiCode::SignIn);
    let records = app.records("SN-SPLIT").await;
    assert_eq!(records.len(), 1);
    assert!(records[0].photo_url.is_some(), "the photo was stored");
}

/// ZJ-FRAME-02: every frame of one read is handled, in order.
#[tokio::test]
async fn several_frames_in_one_write_are_all_answered() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-COALESCED").await;
    dev.auth().await;
    let mut bytes = Vec::new();
    for _ in 0..3 {
        let hb = dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));
        bytes.extend(frame::encode_to_vec(&hb.to_packet()));
    }

    dev.send_bytes(&bytes).await;

    for _ in 0..3 {
        let resp = dev.recv().await;
        dev.id.ok(&resp, ApiCode::Heartbeat);
    }
}

/// ZJ-FRAME-02: however many frames one read holds, each is answered, in order, also when
/// their answers outgrow the gateway's stack buffer for answers given on the spot (the rest
/// then goes through its write buffer, after what the stack held).
#[tokio::test]
async fn answers_to_many_small_frames_of_one_read_keep_their_order() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-MANY-SMALL").await;
    // Envelopes without sn or token: each is refused on the spot with an error text, so
    // twenty answers take several times the 480 bytes their twenty frames do.
    let mut bytes = Vec::new();
    for seq in 1..=20u64 {
        let packet = Packet {
            version: rollcall_protocol::PROTOCOL_VERSION.to_owned(),
            apicode: ApiCode::Heartbeat.as_str().to_owned(),
            seq,
            ..Packet::default()
        };
        bytes.extend(frame::encode_to_vec(&packet));
    }
    assert!(
        bytes.len() <= 512,
        "one read's worth: {} bytes",
        bytes.len()
    );

    dev.send_bytes(&bytes).await;

    let mut answered = 0;
    for seq in 1..=20u64 {
        let p = dev.recv_packet().await.expect("an answer, not a close");
        assert_eq!(p.seq, seq, "answers in request order");
        assert!(!p.success && !p.error.is_empty(), "a refusal: {p:?}");
        answered += p.encoded_len();
    }
    assert!(
        answered > 512,
        "the answers outgrew the stack buffer: {answered} bytes"
    );
}

#[tokio::test]
async fn a_connection_without_a_complete_frame_for_idle_timeout_is_closed() {
    let app = TestApp::spawn_with(|s| s.idle_timeout_secs = 1).await;
    let vendor = app.vendor().await;
    let mut idle = app.device(&vendor, "SN-IDLE-CONN").await;
    idle.auth().await;
    let mut partial = app.device(&vendor, "SN-PARTIAL").await;
    // Half a frame, never finished.
    partial.send_bytes(&[0x40, 0x0a, 0x06]).await;

    assert!(idle.expect_closed().await.is_empty());
    assert!(partial.expect_closed().await.is_empty());
}

/// `max_connections` bounds the connections served at once; a connection's slot comes back
/// when it ends (however it ends), so a device waiting in the listen queue is served then.
#[tokio::test]
async fn a_connection_beyond_max_connections_is_served_when_a_slot_frees() {
    let app = TestApp::spawn_with(|s| s.max_connections = 2).await;
    let vendor = app.vendor().await;
    let mut a = app.device(&vendor, "SN-SLOT-A").await;
    a.auth().await;
    let mut b = app.device(&vendor, "SN-SLOT-B").await;
    b.auth().await;
    // The kernel completes the third handshake; the platform takes it only with a free slot.
    let mut c = app.device(&vendor, "SN-SLOT-C").await;
    let mut waiting = tokio::spawn(async move {
        c.auth().await;
        c
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut waiting)
            .await
            .is_err(),
        "both slots are taken: no answer yet"
    );
    drop(a);
    let mut c = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("served once a slot is free")
        .unwrap();
    c.heartbeat().await;
    // And again, for the slot given back by the connection that just ended.
    drop(b);
    let mut d = app.device(&vendor, "SN-SLOT-D").await;
    tokio::time::timeout(Duration::from_secs(10), d.auth())
        .await
        .expect("served in the slot B left");
}
