//! Encrypted responses (ZJ-JWE-01 to ZJ-JWE-05): a vendor with a registered RSA key gets every
//! success response as JWE (RSA-OAEP-256 + A256GCM), signed over the JWE string; errors and
//! acknowledgements stay in clear.

use rollcall_protocol::envelope::Response;
use rollcall_protocol::jwe::JweDecrypter;
use rollcall_protocol::params::{self, AuthResponse, SignInResponse};
use rollcall_protocol::{ApiCode, ErrorCode};
use serde_json::json;

use crate::helpers::*;

const PUBLIC_KEY: &str = include_str!("../../../protocol/tests/data/jwe/key2048.spki.pem");
const PRIVATE_KEY: &str = include_str!("../../../protocol/tests/data/jwe/key2048.pkcs8.pem");

/// Checks the sign over the JWE string, then decrypts it.
fn decrypt(resp: &Response, api: ApiCode, secret: &str) -> String {
    let text = expect_ok(resp, api, secret).expect("a response");
    assert_eq!(
        text.split('.').count(),
        5,
        "JWE compact serialization: {text}"
    );
    let key = JweDecrypter::from_private_key_pem(PRIVATE_KEY).expect("private key");
    String::from_utf8(key.decrypt(&text).expect("decrypts")).expect("UTF-8 JSON")
}

#[tokio::test]
async fn success_responses_to_a_vendor_with_a_key_are_jwe_that_decrypt_to_the_json() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor_with_key(Some(PUBLIC_KEY)).await;
    let mut http = app.http_device(&vendor, "SN-JWE");

    // C_AUTH over HTTP.
    let resp = http.call(&http.id.signed(ApiCode::Auth, None)).await;
    let auth: AuthResponse = params::parse(&decrypt(&resp, ApiCode::Auth, &vendor.secret)).unwrap();
    http.id.token = auth.token;

    // A heartbeat over HTTP.
    let resp = http
        .call(&http.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param())))
        .await;
    assert_eq!(
        decrypt(&resp, ApiCode::Heartbeat, &vendor.secret),
        r#"{"taskids":[]}"#
    );

    // A sign-in over TCP.
    let mut tcp = app.device(&vendor, "SN-JWE").await;
    tcp.id.token = http.id.token.clone();
    let p = sign_in_param("1", 1, now_ms());
    let resp = tcp
        .call(tcp.id.signed(ApiCode::SignIn, Some(&p.to_string())))
        .await;
    let r: SignInResponse =
        params::parse(&decrypt(&resp, ApiCode::SignIn, &vendor.secret)).unwrap();
    assert_eq!(app.records("SN-JWE").await[0].record_id, r.record_id);
}

/// ZJ-JWE-04: errors stay in clear; ZJ-HTTP-04: an acknowledgement has no `response`.
#[tokio::test]
async fn errors_and_acknowledgements_stay_in_clear_for_a_vendor_with_a_key() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor_with_key(Some(PUBLIC_KEY)).await;
    let mut dev = app.http_device(&vendor, "SN-JWE-CLEAR");
    let resp = dev.call(&dev.id.signed(ApiCode::Auth, None)).await;
    dev.id.token = params::parse::<AuthResponse>(&decrypt(&resp, ApiCode::Auth, &vendor.secret))
        .unwrap()
        .token;

    let bad = dev
        .call(
            &dev.id
                .signed(ApiCode::Heartbeat, Some(r#"{"deviceVersion":"1"}"#)),
        )
        .await;
    let e = expect_err(&bad, ErrorCode::ParamInvalid);
    assert!(e.errormsg().contains("deviceIp"));
    assert!(bad.verify(ApiCode::Heartbeat, &vendor.secret));

    dev.update_status(&json!({"task": [], "personCount": 0, "faceCount": 0}))
        .await;
}

#[tokio::test]
async fn a_vendor_without_a_key_gets_clear_json() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let dev = app.http_device(&vendor, "SN-NO-JWE");

    let resp = dev.call(&dev.id.signed(ApiCode::Auth, None)).await;

    let text = expect_ok(&resp, ApiCode::Auth, &vendor.secret).unwrap();
    assert!(text.starts_with("{\"token\":"), "{text}");
}
