//! The golden vectors of `PROTOCOL.md` (`tests/data/frames.json`, `tests/data/sign.json`),
//! computed by an independent implementation. Every vector must pass, byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

use bytes::BytesMut;
use rollcall_protocol::frame::{self, FrameDecoder, FrameError};
use rollcall_protocol::sign::{self, SignFields};
use rollcall_protocol::{ApiCode, Packet};
use serde_json::Value;

const FRAMES: &str = include_str!("data/frames.json");
const SIGNS: &str = include_str!("data/sign.json");

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn packet_from(v: &Value) -> Packet {
    Packet {
        version: s(v, "version").into(),
        sn: s(v, "sn").into(),
        token: s(v, "token").into(),
        apicode: s(v, "apicode").into(),
        time_stamp: s(v, "timeStamp").into(),
        param: s(v, "param").into(),
        sign: s(v, "sign").into(),
        access_id: s(v, "accessId").into(),
        access_key: s(v, "accessKey").into(),
        success: v.get("success").and_then(Value::as_bool).unwrap_or(false),
        error: s(v, "error").into(),
        response: s(v, "response").into(),
        taskid: s(v, "taskid").into(),
        seq: v.get("seq").and_then(Value::as_u64).unwrap_or(0),
    }
}

/// ZJ-FRAME-01, ZJ-PKT-01: frames and packets byte for byte.
#[test]
fn every_frame_vector_encodes_and_decodes_exactly() {
    let doc: Value = serde_json::from_str(FRAMES).unwrap();
    let frames = doc["frames"].as_array().unwrap();
    assert!(frames.len() >= 5);
    for f in frames {
        let name = s(f, "name");
        let packet = packet_from(&f["packet"]);
        let expected = hex::decode(s(f, "frameHex")).unwrap();
        assert_eq!(frame::encode_to_vec(&packet), expected, "encode {name}");
        let mut buf = BytesMut::new();
        frame::encode(&packet, &mut buf);
        assert_eq!(&buf[..], &expected[..], "encode into buffer {name}");

        let mut buf = BytesMut::from(&expected[..]);
        let decoded = FrameDecoder::default().decode(&mut buf).unwrap();
        assert_eq!(decoded, Some(packet), "decode {name}");
        assert!(buf.is_empty(), "{name}: the frame is consumed whole");
    }
}

/// ZJ-FRAME-02 (partial frames awaited), ZJ-FRAME-03 and ZJ-FRAME-04 (malformed ones).
#[test]
fn every_bad_frame_vector_is_refused_or_awaited() {
    let doc: Value = serde_json::from_str(FRAMES).unwrap();
    let bad = doc["bad"].as_array().unwrap();
    let dec = FrameDecoder::default();
    let mut seen = 0;
    for b in bad {
        let name = s(b, "name");
        let bytes = hex::decode(s(b, "bytesHex")).unwrap();
        let mut buf = BytesMut::from(&bytes[..]);
        let got = dec.decode(&mut buf);
        match name {
            "varint-6-bytes" => assert_eq!(got, Err(FrameError::VarintTooLong)),
            "oversize-length" => {
                assert!(
                    matches!(got, Err(FrameError::Oversize { len, .. }) if len == 3 * 1024 * 1024)
                );
                assert_eq!(got.unwrap_err().code().as_str(), "413_01");
            }
            "partial-varint" | "partial-body" => {
                assert_eq!(got, Ok(None), "{name}");
                assert_eq!(
                    buf.len(),
                    bytes.len(),
                    "{name}: nothing consumed while waiting"
                );
            }
            "wrong-wire-type" => {
                let e = got.unwrap_err();
                assert!(matches!(e, FrameError::Body(_)));
                assert_eq!(e.code().as_str(), "400_02");
            }
            other => panic!("a bad-frame vector this test does not know: {other}"),
        }
        seen += 1;
    }
    assert_eq!(seen, 5);
}

/// The param text of a vector: a string, or an object whose exact body text is `paramText`.
fn vector_param(v: &Value) -> Option<String> {
    match v["fields"].get("param") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p.clone()),
        Some(_) => Some(s(v, "paramText").to_owned()),
    }
}

fn fields_of<'a>(v: &'a Value, param: Option<&'a str>) -> SignFields<'a> {
    let f = &v["fields"];
    SignFields {
        version: s(f, "version"),
        sn: s(f, "sn"),
        token: s(f, "token"),
        apicode: s(f, "apicode"),
        taskid: s(f, "taskid"),
        time_stamp: s(f, "timeStamp"),
        access_id: s(f, "accessId"),
        access_key: s(f, "accessKey"),
        param,
        success: f.get("success").and_then(Value::as_bool),
        response: f.get("response").and_then(Value::as_str),
    }
}

/// ZJ-SIGN-01, ZJ-SIGN-02, ZJ-SIGN-05: the request sign of every apicode.
#[test]
fn every_request_vector_signs_and_verifies() {
    let doc: Value = serde_json::from_str(SIGNS).unwrap();
    let reqs = doc["requests"].as_array().unwrap();
    assert!(reqs.len() >= 15);
    for v in reqs {
        let name = s(v, "name");
        let secret = s(v, "accessSecret");
        let param = vector_param(v);
        if let Some(text) = v.get("paramText").and_then(Value::as_str) {
            assert_eq!(param.as_deref(), Some(text), "{name}: paramText");
        }
        let fields = fields_of(v, param.as_deref());
        let api: ApiCode = fields.apicode.parse().unwrap();
        let expected = s(v, "sign");
        assert_eq!(
            sign::sign_request(api, &fields, secret).unwrap(),
            expected,
            "sign {name} (material {})",
            s(v, "signString")
        );
        sign::verify_request(api, &fields, None, secret, expected)
            .unwrap_or_else(|e| panic!("verify {name}: {e}"));
        sign::verify_request(api, &fields, None, secret, &expected.to_uppercase())
            .unwrap_or_else(|e| panic!("verify uppercase {name}: {e}"));
        // Any other secret, or a one-character change of the sign, fails.
        assert!(
            sign::verify_request(api, &fields, None, "x", expected).is_err(),
            "{name}"
        );
        let mut flipped = expected.to_owned();
        flipped.replace_range(0..1, if expected.starts_with('0') { "1" } else { "0" });
        assert!(
            sign::verify_request(api, &fields, None, secret, &flipped).is_err(),
            "{name}"
        );
    }
}

/// ZJ-SIGN-06, ZJ-SIGN-07, ZJ-SIGN-08: param without img, forms A and B.
#[test]
fn every_param_without_img_vector_gives_both_forms() {
    let doc: Value = serde_json::from_str(SIGNS).unwrap();
    let cuts = doc["paramWithoutImg"].as_array().unwrap();
    assert!(cuts.len() >= 6);
    for v in cuts {
        let name = s(v, "name");
        let secret = s(v, "accessSecret");
        let param = vector_param(v);
        let fields = fields_of(v, param.as_deref());
        let api: ApiCode = fields.apicode.parse().unwrap();
        // What a device should send: form A.
        assert_eq!(
            sign::sign_request(api, &fields, secret).unwrap(),
            s(v, "signA"),
            "form A {name}"
        );
        // The platform accepts both forms.
        for form in ["signA", "signB"] {
            sign::verify_request(api, &fields, None, secret, s(v, form))
                .unwrap_or_else(|e| panic!("{form} of {name}: {e}"));
        }
        // And the material is exactly the vector's sign string.
        let cands = sign::param_candidates(api, param.as_deref(), None).unwrap();
        let material_a = s(v, "signStringA");
        assert!(
            material_a.contains(&cands[0]),
            "{name}: form A text {:?} not in {material_a:?}",
            cands[0]
        );
        let material_b = s(v, "signStringB");
        assert!(
            cands.iter().any(|c| material_b.contains(c.as_str())),
            "{name}: form B"
        );
    }
}

/// ZJ-SIGN-09, ZJ-SIGN-10: the response sign, acknowledgements included.
#[test]
fn every_response_vector_signs() {
    let doc: Value = serde_json::from_str(SIGNS).unwrap();
    let resps = doc["responses"].as_array().unwrap();
    assert!(resps.len() >= 8);
    for v in resps {
        let name = s(v, "name");
        let api: ApiCode = s(v, "apicode").parse().unwrap();
        let fields = fields_of(v, None);
        let secret = s(v, "accessSecret");
        assert_eq!(
            sign::sign_response(api, &fields, secret),
            s(v, "sign"),
            "{name}"
        );
        assert!(
            sign::verify_response(api, &fields, secret, s(v, "sign")),
            "{name}"
        );
    }
}

/// ZJ-CONN-08: the command sign.
#[test]
fn the_command_vector_signs() {
    let doc: Value = serde_json::from_str(SIGNS).unwrap();
    let v = &doc["command"];
    let param = vector_param(v);
    let fields = fields_of(v, param.as_deref());
    let secret = s(v, "accessSecret");
    assert_eq!(sign::sign_command(&fields, secret), s(v, "sign"));
    assert!(sign::verify_command(&fields, secret, s(v, "sign")));
    assert!(!sign::verify_command(&fields, "other", s(v, "sign")));
}
