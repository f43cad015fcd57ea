//! The gateway's direct path (`wire`) against prost's `Packet`: the same request from every
//! body prost accepts, a refusal of every body it refuses, and the same bytes for every answer
//! (ZJ-PKT-01, ZJ-PKT-04, ZJ-CONN-05).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

use bytes::BytesMut;
use proptest::prelude::*;
use prost::Message;
use rollcall_protocol::envelope::{Request, Response, Success};
use rollcall_protocol::frame::{self, FrameDecoder};
use rollcall_protocol::{ApiCode, ErrorCode, Packet, ProtocolError, sign, wire};

mod common;
use common::{arb_packet, text};

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One field as a device (or a fuzzer) might write it: any tag (known, unknown, 0), any wire
/// type (6 and 7 too), a length that may lie, a varint that may be over-long.
fn arb_field() -> impl Strategy<Value = Vec<u8>> {
    (
        0u32..20,
        0u64..8,
        prop::collection::vec(any::<u8>(), 0..12),
        any::<u64>(),
        0u8..4,
    )
        .prop_map(|(tag, wire, payload, number, lie)| {
            let mut out = Vec::new();
            put_varint(&mut out, (u64::from(tag) << 3) | wire);
            match wire {
                0 if lie == 0 => out.extend([0xff; 10]),
                0 => put_varint(&mut out, number),
                1 => out.extend(&payload[..payload.len().min(8)]),
                2 => {
                    let len = payload.len() as u64 + u64::from(lie == 0);
                    put_varint(&mut out, len);
                    out.extend(&payload);
                }
                5 => out.extend(&payload[..payload.len().min(4)]),
                _ => {} // groups' ends and starts, and the invalid wire types, have no value
            }
            out
        })
}

proptest! {
    // A packet prost encodes decodes to the request `Request::from_packet` makes of it.
    #[test]
    fn decodes_what_prost_encodes(p in arb_packet()) {
        let body = p.encode_to_vec();
        prop_assert_eq!(wire::decode_request(&body).unwrap(), Request::from_packet(p));
    }

    // Any sequence of fields, cut anywhere: the verdict and the request are prost's.
    #[test]
    fn agrees_with_prost_on_any_fields(fields in prop::collection::vec(arb_field(), 0..8),
                                      cut in any::<usize>()) {
        let mut body: Vec<u8> = fields.concat();
        body.truncate(cut % (body.len() + 1));
        let ours = wire::decode_request(&body).ok();
        let prost = Packet::decode(&body[..]).ok().map(Request::from_packet);
        prop_assert_eq!(ours, prost, "body {:02x?}", body);
    }

    // Arbitrary bytes too.
    #[test]
    fn agrees_with_prost_on_any_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let ours = wire::decode_request(&body).ok();
        let prost = Packet::decode(&body[..]).ok().map(Request::from_packet);
        prop_assert_eq!(ours, prost);
    }

    // An answer's frame is byte for byte the frame of its packet.
    #[test]
    fn encodes_what_prost_encodes(version in text(), apicode in text(), taskid in text(),
                                  sign in text(), seq in any::<u64>(), text in ".{0,300}",
                                  kind in 0u8..4) {
        let outcome = match kind {
            0 => Ok(None),
            1 => Ok(Some(text)),
            2 => Err(ProtocolError::new(ErrorCode::TokenNotFound)),
            _ => Err(ProtocolError::with_detail(ErrorCode::ParamInvalid, text)),
        };
        let resp = Response { version, apicode, taskid, seq, outcome, sign };
        let mut ours = BytesMut::from(&b"before"[..]);
        wire::encode_response(&resp, &mut ours);
        let mut prost = BytesMut::from(&b"before"[..]);
        frame::encode(&resp.clone().into_packet(), &mut prost);
        prop_assert_eq!(&ours[..], &prost[..]);
    }

    // Framed into a slice (a server's stack), an answer is the same bytes when it fits, and
    // nothing is written when it does not.
    #[test]
    fn encodes_into_a_slice_what_it_encodes_into_a_buffer(version in text(), sign in text(),
                                                           seq in any::<u64>(),
                                                           text in ".{0,300}", room in 0usize..400) {
        let resp = Response {
            version,
            apicode: "C_HEARTBEAT".into(),
            taskid: String::new(),
            seq,
            outcome: Ok(Some(text)),
            sign,
        };
        let mut whole = BytesMut::new();
        wire::encode_response(&resp, &mut whole);
        let mut slice = vec![0xAAu8; room];
        match wire::encode_response_into(&resp, &mut slice) {
            Some(len) => {
                prop_assert!(whole.len() <= room);
                prop_assert_eq!(&slice[..len], &whole[..]);
                prop_assert!(slice[len..].iter().all(|&b| b == 0xAA));
            }
            None => {
                prop_assert!(whole.len() > room);
                prop_assert!(slice.iter().all(|&b| b == 0xAA));
            }
        }
    }

    // A request borrowed from its body is the request decoded from it, field for field, and
    // a request's view gives it back.
    #[test]
    fn a_view_is_the_request_borrowed(p in arb_packet()) {
        let body = p.encode_to_vec();
        let view = wire::decode_request_view(&body).unwrap();
        let req = wire::decode_request(&body).unwrap();
        prop_assert_eq!(view.to_request(), req.clone());
        prop_assert_eq!(req.view(), view);
    }

    // A success framed from the request's view and signed from its fields is the frame and
    // the sign of the `Response` answering the same request: on the stack, in a buffer, and
    // through a sign memo.
    #[test]
    fn a_borrowed_success_is_the_answers_bytes_and_sign(p in arb_packet(), text in ".{0,300}",
                                                        some in any::<bool>(),
                                                        secret in text(), room in 0usize..400) {
        let body = p.encode_to_vec();
        let view = wire::decode_request_view(&body).unwrap();
        let response = some.then_some(text.as_str());
        let success = Success::answering(&view, response);
        let api = ApiCode::Heartbeat;
        let sign = sign::sign_response(api, &success.sign_fields(), &secret);
        let memo = sign::SignMemo::default();
        for _ in 0..2 {
            let hex = memo.sign_response_hex(api, &success.sign_fields(), &secret);
            prop_assert_eq!(sign::hex_str(&hex), sign.as_str());
        }
        let mut resp = Response::answering(view.to_request(), Ok(response.map(str::to_owned)));
        resp.sign_with(api, &secret);
        prop_assert_eq!(&resp.sign, &sign);
        let mut whole = BytesMut::new();
        wire::encode_response(&resp, &mut whole);
        let mut ours = BytesMut::new();
        wire::encode_success(&success, &sign, &mut ours);
        prop_assert_eq!(&ours[..], &whole[..]);
        let mut slice = vec![0xAAu8; room];
        match wire::encode_success_into(&success, &sign, &mut slice) {
            Some(len) => prop_assert_eq!(&slice[..len], &whole[..]),
            None => {
                prop_assert!(whole.len() > room);
                prop_assert!(slice.iter().all(|&b| b == 0xAA));
            }
        }
    }

    // Requests are read from a slice (a read on the stack) exactly as from a buffer: the same
    // request, the same bytes consumed, the same wait for the rest of a partial frame.
    #[test]
    fn decodes_from_a_slice_what_it_decodes_from_a_buffer(p in arb_packet(), cut in 0usize..600) {
        let mut bytes = BytesMut::new();
        frame::encode(&p, &mut bytes);
        frame::encode(&p, &mut bytes);
        let cut = cut.min(bytes.len());
        let decoder = FrameDecoder::new(1 << 20);
        let mut buffer = BytesMut::from(&bytes[..cut]);
        let mut slice: &[u8] = &bytes[..cut];
        loop {
            let from_buffer = decoder.decode_request(&mut buffer).map_err(|e| e.to_string());
            let from_slice = decoder.decode_request(&mut slice).map_err(|e| e.to_string());
            prop_assert_eq!(&from_buffer, &from_slice);
            prop_assert_eq!(&buffer[..], slice);
            if !matches!(from_buffer, Ok(Some(_))) {
                break;
            }
        }
    }
}

#[test]
fn the_direct_path_knows_every_field_of_the_packet() {
    // `wire` reads tags 1..=14 as the packet's fields and skips the rest: a field added to
    // the packet must be added there too (and to `common::arb_packet`).
    let tags: Vec<u32> = rollcall_protocol::packet::FIELDS
        .iter()
        .map(|f| f.1)
        .collect();
    assert_eq!(tags, (1..=14).collect::<Vec<u32>>());
}

#[test]
fn groups_are_skipped_to_their_end_and_nest_at_most_100_deep() {
    let key = |tag: u64, wire: u64| {
        let mut k = Vec::new();
        put_varint(&mut k, (tag << 3) | wire);
        k
    };
    // Field 15 as a group holding field 16 (a varint) and a nested group 17, then sn.
    let body = [
        key(15, 3),
        key(16, 0),
        vec![7],
        key(17, 3),
        key(17, 4),
        key(15, 4),
        key(2, 2),
        b"\x02ab".to_vec(),
    ]
    .concat();
    let req = wire::decode_request(&body).unwrap();
    assert_eq!(req.sn, "ab");
    assert_eq!(Packet::decode(&body[..]).unwrap().sn, "ab");

    let nested = |depth: usize| {
        let mut b = vec![(15 << 3) | 3; depth];
        b.extend(vec![(15 << 3) | 4; depth]);
        b
    };
    for depth in [100, 101] {
        let body = nested(depth);
        assert_eq!(
            wire::decode_request(&body).is_ok(),
            Packet::decode(&body[..]).is_ok(),
            "depth {depth}"
        );
    }
    assert!(wire::decode_request(&nested(100)).is_ok());
    assert!(wire::decode_request(&nested(101)).is_err());
}

#[test]
fn refusals_name_what_is_wrong() {
    // sn sent as a varint: a known field with another wire type.
    let err = wire::decode_request(&[2 << 3, 1]).unwrap_err();
    assert!(err.to_string().contains("field 2"), "{err}");
    // A string that is not UTF-8.
    let err = wire::decode_request(&[(2 << 3) | 2, 1, 0xff]).unwrap_err();
    assert!(err.to_string().contains("UTF-8"), "{err}");
    // A character cut by the field's end, whose last byte is the next field's key (a valid
    // body as a whole, '中' = e4 b8 ad): the field alone is not UTF-8.
    let body = [
        (2 << 3) | 2,
        2,
        0xe4,
        0xb8,
        0xad,
        0x01,
        b'a',
        b'b',
        b'c',
        b'd',
    ];
    assert!(std::str::from_utf8(&body).is_ok());
    assert!(Packet::decode(&body[..]).is_err());
    let err = wire::decode_request(&body).unwrap_err();
    assert!(err.to_string().contains("UTF-8"), "{err}");
    // A length past the end.
    let err = wire::decode_request(&[(2 << 3) | 2, 5, b'a']).unwrap_err();
    assert!(err.to_string().contains("underflow"), "{err}");
}

#[test]
fn the_gateway_decoder_frames_like_the_packet_decoder() {
    let p = Packet {
        version: "v1.0.0".into(),
        sn: "SN1".into(),
        apicode: "C_HEARTBEAT".into(),
        param: r#"{"deviceVersion":"1","deviceIp":"10.0.0.2"}"#.into(),
        seq: 9,
        ..Packet::default()
    };
    let mut stream = BytesMut::new();
    frame::encode(&p, &mut stream);
    frame::encode(&p, &mut stream);
    let dec = FrameDecoder::default();
    // Not a whole frame yet: nothing taken.
    let mut partial = BytesMut::from(&stream[..stream.len() / 4]);
    assert_eq!(dec.decode_request(&mut partial).unwrap(), None);
    assert_eq!(partial.len(), stream.len() / 4);
    for _ in 0..2 {
        let req = dec.decode_request(&mut stream).unwrap().unwrap();
        assert_eq!(req, Request::from_packet(p.clone()));
    }
    assert!(stream.is_empty());
}
