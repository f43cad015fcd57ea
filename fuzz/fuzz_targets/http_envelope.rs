//! Arbitrary HTTP bodies: the envelope reader and the signature check over whatever param
//! it finds must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollcall_protocol::envelope::Request;
use rollcall_protocol::{ApiCode, sign};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = Request::from_http_body(data) {
        for api in [ApiCode::SignIn, ApiCode::PostDevicePerson, ApiCode::GetTasks] {
            let _ = sign::verify_request(api, &req.sign_fields(), req.param_alt.as_deref(), "s", &req.sign);
        }
    }
});
