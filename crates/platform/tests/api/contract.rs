//! The admin API keeps the promises of its OpenAPI document where schemathesis
//! (`.ci/schemathesis.sh`) found that it did not: every error is `{"error": {...}}` JSON
//! (never axum's plain-text rejections) with a status the document lists (RC-PROD-08), and a
//! request the document's schema forbids is refused and changes nothing (RC-PROD-13).

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, TestApp};

/// Sends a raw request as the administrator: status, `Content-Type`, body as JSON (`Null`
/// when the body is not JSON).
async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: &'static [u8],
) -> (u16, String, Value) {
    let mut req = app
        .http
        .request(method, format!("{}/api/v1{path}", app.base_url))
        .bearer_auth(ADMIN_TOKEN)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header(reqwest::header::CONTENT_TYPE, ct);
    }
    let resp = req.send().await.expect("a response");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = resp.bytes().await.expect("a body");
    (
        status,
        ct,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// An upload that is not a form, or a form without a usable boundary, was axum's plain-text
/// 400; it is the documented 415 `unsupported_media_type` / 422 `invalid_form`, in JSON.
#[tokio::test]
async fn uploads_that_are_not_readable_forms_get_json_errors_with_documented_statuses() {
    let app = TestApp::spawn().await;
    let project = app.project(None).await;

    for path in [
        "/firmware".to_owned(),
        format!("/projects/{project}/import"),
    ] {
        let (status, ct, body) = raw(&app, Method::POST, &path, None, b"").await;
        assert_eq!(status, 415, "{path}: {body}");
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        assert_eq!(body["error"]["code"], "unsupported_media_type", "{path}");

        let (status, ct, body) = raw(
            &app,
            Method::POST,
            &path,
            Some("application/json"),
            b"{\"vendorId\":\"1\"}",
        )
        .await;
        assert_eq!(status, 415, "{path}: {body}");
        assert!(ct.starts_with("application/json"), "{path}: {ct}");

        let (status, ct, body) = raw(
            &app,
            Method::POST,
            &path,
            Some("multipart/form-data"),
            b"--x\r\n",
        )
        .await;
        assert_eq!(status, 422, "{path}: {body}");
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        assert_eq!(body["error"]["code"], "invalid_form", "{path}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("boundary")),
            "{path}: {body}"
        );
    }
}

/// A path parameter that is not UTF-8 once percent-decoded was axum's plain-text 400; like a
/// malformed id it names nothing, so it is a JSON 404 naming the parameter.
#[tokio::test]
async fn a_path_parameter_that_is_not_utf8_is_a_json_404_naming_it() {
    let app = TestApp::spawn().await;
    let project = app.project(None).await;

    for (path, field) in [
        ("/projects/%FF".to_owned(), "id"),
        ("/devices/%C3%28".to_owned(), "sn"),
        ("/workers/%FF/blacklist".to_owned(), "personId"),
        (format!("/projects/{project}/workers/%FF%FE"), "personId"),
    ] {
        let (status, ct, body) = raw(&app, Method::GET, &path, None, b"").await;
        let (status, ct, body) = if status == 405 {
            // The blacklist and membership routes have no GET: DELETE them.
            raw(&app, Method::DELETE, &path, None, b"").await
        } else {
            (status, ct, body)
        };
        assert_eq!(status, 404, "{path}: {body}");
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        assert_eq!(body["error"]["code"], "not_found", "{path}");
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
    }
}

/// serde reads a struct from an array of its members, so `[null, null]` was an empty patch
/// answered 200. Every body the document describes is an object: anything else is 422.
#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_refused() {
    let app = TestApp::spawn().await;
    let user = app
        .admin()
        .post(
            "/users",
            &json!({"username": "contract-user", "password": "密码-12345678", "role": "auditor"}),
        )
        .await
        .expect(201);
    let id = user["id"].as_str().expect("a user id");
    let path = format!("/users/{id}");

    for body in [&b"[null, null]"[..], b"[]", b"\"x\"", b"42", b"null"] {
        let resp = app
            .http
            .patch(format!("{}/api/v1{path}", app.base_url))
            .bearer_auth(ADMIN_TOKEN)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .expect("a response");
        assert_eq!(
            resp.status().as_u16(),
            422,
            "{}",
            String::from_utf8_lossy(body)
        );
        let answer: Value = resp.json().await.expect("a JSON error");
        assert_eq!(answer["error"]["code"], "invalid_json", "{answer}");
    }
    // The object form still works.
    let changed = app
        .admin()
        .patch(&path, &json!({"displayName": "审计员甲"}))
        .await
        .expect(200);
    assert_eq!(changed["displayName"], "审计员甲");
}

/// `limit` is documented as a 64-bit integer of at least 1, a larger one counting as the
/// route's maximum; a value past 64 bits was read as one and answered 200.
#[tokio::test]
async fn limit_is_a_positive_64_bit_integer() {
    let app = TestApp::spawn().await;
    let api = app.admin();

    for path in ["/workers", "/attendance", "/audit"] {
        for bad in [
            "9223372036854775808",
            "18446744073709551615",
            "0",
            "-1",
            "x",
        ] {
            let body = api.get(&format!("{path}?limit={bad}")).await.expect(422);
            assert_eq!(body["error"]["code"], "invalid_query", "{path} {bad}");
            assert_eq!(body["error"]["field"], "limit", "{path} {bad}");
        }
        // Within 64 bits, past the maximum: clamped, as documented.
        api.get(&format!("{path}?limit=9223372036854775807"))
            .await
            .expect(200);
        api.get(&format!("{path}?limit=")).await.expect(200);
    }
}

/// A device's `name` is a string (or `null`); a number was taken as its text.
#[tokio::test]
async fn a_device_name_must_be_a_string() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    app.register_device("SN-NAMED", &vendor, None).await;
    let api = app.admin();

    for bad in [json!(5807354202862264320_u64), json!(true), json!(["闸机"])] {
        let body = api
            .patch("/devices/SN-NAMED", &json!({"name": bad}))
            .await
            .expect(422);
        assert_eq!(body["error"]["field"], "name", "{bad}: {body}");
    }
    let device = api.get("/devices/SN-NAMED").await.expect(200);
    assert_eq!(device["name"], Value::Null, "unchanged: {device}");
    let device = api
        .patch("/devices/SN-NAMED", &json!({"name": "1 号闸机"}))
        .await
        .expect(200);
    assert_eq!(device["name"], "1 号闸机");
    let device = api
        .patch("/devices/SN-NAMED", &json!({"name": null}))
        .await
        .expect(200);
    assert_eq!(device["name"], Value::Null);
}
