//! Arbitrary param text: the lenient JSON reader, the image cut, every typed param parser and
//! the photo's base64 decoding must refuse or accept without panicking, and what a heartbeat
//! param's peek reads in place must be what its parser reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollcall_protocol::json::{self, Cut};
use rollcall_protocol::params::{self, *};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = json::to_strict(text);
    let _ = json::cut_members(text, Cut::TopLevel(&["img"]));
    let _ = json::cut_members(text, Cut::DataRows("img"));
    if let Ok(p) = params::parse::<SignInParam>(text) {
        let _ = p.validate();
    }
    let _ = params::decode_base64("img", text);
    let parsed = params::parse::<HeartbeatParam>(text).ok();
    if let Some(seen) = HeartbeatParam::peek(text) {
        let parsed = parsed.map(|p| (p.device_version, p.device_ip));
        let seen = (seen.device_version.to_owned(), seen.device_ip.to_owned());
        assert_eq!(parsed, Some(seen));
    }
    let _ = params::parse::<GetTasksParam>(text);
    let _ = params::parse::<PageParam>(text);
    let _ = params::parse::<PostDevicePersonParam>(text);
    let _ = params::parse::<UpdateTasksStatusParam>(text);
    let _ = params::parse::<CollectPersonParam>(text);
});
