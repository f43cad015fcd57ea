//! Arbitrary bytes from a socket: the frame decoder must answer "packet", "need more" or
//! "corrupt" without panicking, and re-encoding a decoded packet must decode to itself.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rollcall_protocol::frame::{self, FrameDecoder};

fuzz_target!(|data: &[u8]| {
    let dec = FrameDecoder::new(64 * 1024);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(packet)) = dec.decode(&mut buf) {
        let mut again = BytesMut::new();
        frame::encode(&packet, &mut again);
        assert_eq!(dec.decode(&mut again).ok().flatten(), Some(packet));
    }
    let _ = dec.needed(&buf);
});
