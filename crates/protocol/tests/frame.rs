//! Framing: round trips over arbitrary packets and arbitrary split points of the stream,
//! the size and varint limits, and the decoder's refusal to panic on any bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

use bytes::BytesMut;
use proptest::prelude::*;
use prost::Message;
use rollcall_protocol::Packet;
use rollcall_protocol::frame::{self, FrameDecoder, FrameError, Head, read_head};
use rollcall_protocol::packet::{FIELDS, PROTO_FILE};

mod common;
use common::arb_packet;

/// Feeds `stream` to a decoder in chunks cut at `cuts`, as reads from a socket would.
fn decode_chunked(stream: &[u8], cuts: &[usize]) -> Result<Vec<Packet>, FrameError> {
    let dec = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    points.push(stream.len());
    points.sort_unstable();
    let mut prev = 0;
    for p in points {
        buf.extend_from_slice(&stream[prev..p]);
        prev = p;
        while let Some(packet) = dec.decode(&mut buf)? {
            out.push(packet);
        }
    }
    assert!(buf.is_empty(), "leftover bytes after a whole stream");
    Ok(out)
}

proptest! {
    // ZJ-FRAME-02: frame boundaries do not follow read boundaries.
    #[test]
    fn round_trip_over_any_split(packets in prop::collection::vec(arb_packet(), 1..6),
                                 cuts in prop::collection::vec(any::<usize>(), 0..12)) {
        let mut stream = BytesMut::new();
        for p in &packets {
            frame::encode(p, &mut stream);
        }
        let decoded = decode_chunked(&stream, &cuts).unwrap();
        prop_assert_eq!(decoded, packets);
    }

    #[test]
    fn decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512),
                            limit in 0usize..1024) {
        let dec = FrameDecoder::new(limit);
        let mut buf = BytesMut::from(&bytes[..]);
        // Decode until the decoder wants more or refuses; never loop forever.
        for _ in 0..bytes.len() + 1 {
            match dec.decode(&mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
        let _ = dec.needed(&buf);
    }

    #[test]
    fn needed_is_exact_once_the_header_is_known(p in arb_packet(), cut in any::<usize>()) {
        let bytes = frame::encode_to_vec(&p);
        let dec = FrameDecoder::default();
        let cut = cut % bytes.len();
        let head = dec.head(&bytes[..cut]).unwrap();
        let needed = dec.needed(&bytes[..cut]).unwrap();
        match head {
            Head::NeedHeader => prop_assert_eq!(needed, 1),
            Head::Frame { .. } => prop_assert_eq!(cut + needed, bytes.len()),
        }
    }
}

/// ZJ-FRAME-02: several frames of one read, in order.
#[test]
fn several_frames_in_one_read_decode_in_order() {
    let a = Packet {
        apicode: "C_HEARTBEAT".into(),
        seq: 1,
        ..Packet::default()
    };
    let b = Packet {
        apicode: "C_SIGN_IN".into(),
        seq: 2,
        ..Packet::default()
    };
    let mut buf = BytesMut::new();
    frame::encode(&a, &mut buf);
    frame::encode(&b, &mut buf);
    let dec = FrameDecoder::default();
    assert_eq!(dec.decode(&mut buf).unwrap(), Some(a));
    assert_eq!(dec.decode(&mut buf).unwrap(), Some(b));
    assert_eq!(dec.decode(&mut buf).unwrap(), None);
}

/// ZJ-FRAME-03: the length limit is checked on the header alone.
#[test]
fn the_limit_is_a_parameter_and_checked_before_the_body() {
    let p = Packet {
        param: "x".repeat(100),
        ..Packet::default()
    };
    let bytes = frame::encode_to_vec(&p);
    let body_len = p.encoded_len();
    // Exactly at the limit: accepted.
    let mut buf = BytesMut::from(&bytes[..]);
    assert_eq!(
        FrameDecoder::new(body_len).decode(&mut buf).unwrap(),
        Some(p)
    );
    // One below: refused from the header alone (no body bytes present at all).
    let header_only = &bytes[..1];
    assert_eq!(
        read_head(header_only, body_len - 1),
        Err(FrameError::Oversize {
            len: body_len as u64,
            limit: body_len - 1
        })
    );
}

/// ZJ-FRAME-03: a length varint of more than 5 bytes is malformed.
#[test]
fn a_five_byte_varint_is_allowed_and_a_sixth_byte_is_not() {
    // 5-byte encoding of a small length (non-canonical but valid): 0x81 0x80 0x80 0x80 0x00 = 1.
    assert_eq!(
        read_head(&[0x81, 0x80, 0x80, 0x80, 0x00], 10),
        Ok(Head::Frame {
            header_len: 5,
            body_len: 1
        })
    );
    assert_eq!(
        read_head(&[0x81, 0x80, 0x80, 0x80], 10),
        Ok(Head::NeedHeader)
    );
    assert_eq!(
        read_head(&[0x81, 0x80, 0x80, 0x80, 0x80], 10),
        Err(FrameError::VarintTooLong)
    );
}

/// The hand-derived `Packet` and `proto/packet.proto` (ZJ-PKT-01) agree on every field name,
/// number and type: each `type name = N;` line of the file is checked against what prost encodes.
#[test]
fn packet_matches_proto_file() {
    let mut declared = Vec::new();
    for line in PROTO_FILE.lines() {
        let line = line.trim();
        let Some(code) = line.split("//").next() else {
            continue;
        };
        let parts: Vec<&str> = code.split_whitespace().collect();
        if let [ty, name, "=", num] = parts[..] {
            let num: u32 = num.trim_end_matches(';').parse().unwrap();
            declared.push((ty.to_owned(), name.to_owned(), num));
        }
    }
    assert_eq!(declared.len(), FIELDS.len(), "field count");
    for ((ty, name, num), (fname, fnum)) in declared.iter().zip(FIELDS) {
        assert_eq!((name.as_str(), *num), (fname, fnum));
        // Set only this field and look at the tag prost writes.
        let mut p = Packet::default();
        match name.as_str() {
            "version" => p.version = "v".into(),
            "sn" => p.sn = "v".into(),
            "token" => p.token = "v".into(),
            "apicode" => p.apicode = "v".into(),
            "timeStamp" => p.time_stamp = "v".into(),
            "param" => p.param = "v".into(),
            "sign" => p.sign = "v".into(),
            "accessId" => p.access_id = "v".into(),
            "accessKey" => p.access_key = "v".into(),
            "success" => p.success = true,
            "error" => p.error = "v".into(),
            "response" => p.response = "v".into(),
            "taskid" => p.taskid = "v".into(),
            "seq" => p.seq = 1,
            other => panic!("unknown field {other}"),
        }
        let wire_type = match ty.as_str() {
            "string" => 2,
            "bool" | "uint64" => 0,
            other => panic!("unexpected type {other}"),
        };
        let bytes = p.encode_to_vec();
        assert_eq!(u32::from(bytes[0]), (num << 3) | wire_type, "tag of {name}");
    }
}
