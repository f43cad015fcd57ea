//! What the protocol's tests share: arbitrary packets.

use proptest::prelude::*;
use rollcall_protocol::Packet;

/// A string field: absent, short text of any characters, or a token-sized one whose length
/// takes a two-byte varint.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), ".{0,40}", "[a-z0-9]{100,200}"]
}

/// Any packet: every field set or absent, a param of up to 600 characters.
pub fn arb_packet() -> impl Strategy<Value = Packet> {
    (
        (text(), text(), text(), text(), text(), ".{0,600}", text()),
        (
            text(),
            text(),
            any::<bool>(),
            text(),
            text(),
            text(),
            any::<u64>(),
        ),
    )
        .prop_map(
            |(
                (version, sn, token, apicode, time_stamp, param, sign),
                (access_id, access_key, success, error, response, taskid, seq),
            )| Packet {
                version,
                sn,
                token,
                apicode,
                time_stamp,
                param,
                sign,
                access_id,
                access_key,
                success,
                error,
                response,
                taskid,
                seq,
            },
        )
}
