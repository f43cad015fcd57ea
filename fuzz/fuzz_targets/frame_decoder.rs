//! Arbitrary bytes from a socket: the frame decoder must answer "packet", "need more" or
//! "corrupt" without panicking, re-encoding a decoded packet must decode to itself, and the
//! gateway's direct decoder (`decode_request`) must give the same verdicts and requests.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rollcall_protocol::envelope::Request;
use rollcall_protocol::frame::{self, FrameDecoder};

fuzz_target!(|data: &[u8]| {
    let dec = FrameDecoder::new(64 * 1024);
    let mut direct = BytesMut::from(data);
    let mut via_packet = BytesMut::from(data);
    loop {
        let ours = dec.decode_request(&mut direct);
        let theirs = dec.decode(&mut via_packet);
        match (ours, theirs) {
            (Ok(Some(req)), Ok(Some(packet))) => assert_eq!(req, Request::from_packet(packet)),
            (Ok(None), Ok(None)) | (Err(_), Err(_)) => break,
            (ours, theirs) => panic!("direct {ours:?}, via the packet {theirs:?}"),
        }
    }
    let mut buf = BytesMut::from(data);
    while let Ok(Some(packet)) = dec.decode(&mut buf) {
        let mut again = BytesMut::new();
        frame::encode(&packet, &mut again);
        assert_eq!(dec.decode(&mut again).ok().flatten(), Some(packet));
    }
    let _ = dec.needed(&buf);
});
