//! C_SIGN_IN (ZJ-SIGNIN-01 to ZJ-SIGNIN-09): stored and flagged, never rejected for business reasons;
//! idempotent; photos kept behind signed URLs.

use serde_json::{Value, json};

use crate::helpers::*;

/// A fenced project (500 m around West Lake, GCJ-02), a device bound to it, a worker on its
/// roster and one who is not, and an unbound device of the same vendor.
struct Site {
    app: TestApp,
    bound: HttpDevice,
    unbound: HttpDevice,
    on_roster: String,
    off_roster: String,
}

async fn site() -> Site {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let fence = json!({"center": {"longitude": 120.15, "latitude": 30.28}, "radiusMeters": 500});
    let project = app.project(Some(fence)).await;
    let on = app.worker("张三").await;
    let off = app.worker("李四").await;
    app.assign(&project, &[on]).await;
    app.register_device("SN-SITE", &vendor, Some(&project))
        .await;
    let mut bound = app.http_device(&vendor, "SN-SITE");
    bound.auth().await;
    let mut unbound = app.http_device(&vendor, "SN-LOOSE");
    unbound.auth().await;
    Site {
        app,
        bound,
        unbound,
        on_roster: on.to_string(),
        off_roster: off.to_string(),
    }
}

/// Signs in and returns the stored record's flags.
async fn flags(app: &TestApp, dev: &HttpDevice, param: &Value) -> Vec<String> {
    let r = dev.sign_in(param).await;
    let mut f = app.record(&dev.id.sn, &r.record_id).await.flags;
    f.sort();
    f
}

fn with(mut p: Value, key: &str, v: Value) -> Value {
    p[key] = v;
    p
}

/// The roster facts behind the flags are cached (directory, "sign-in facts"), but a change
/// through the admin API counts from the very next record, in both directions.
#[tokio::test]
async fn roster_changes_count_from_the_next_record_despite_the_cache() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    let worker = app.worker("王五").await;
    app.register_device("SN-ROSTER", &vendor, Some(&project))
        .await;
    let mut dev = app.http_device(&vendor, "SN-ROSTER");
    dev.auth().await;
    let now = now_ms();
    let p = |n: i64| sign_in_param(&worker.to_string(), 1, now + n);

    // Not on the roster yet ("no" is never cached), then joins: unflagged at once.
    assert_eq!(flags(&app, &dev, &p(1)).await, ["not_authorised"]);
    app.assign(&project, &[worker]).await;
    assert_eq!(flags(&app, &dev, &p(2)).await, Vec::<String>::new());
    // Leaves: "yes" was cached a moment ago, and is forgotten with the change.
    app.unassign(&project, worker).await;
    assert_eq!(flags(&app, &dev, &p(3)).await, ["not_authorised"]);
}

#[tokio::test]
async fn a_face_sign_in_of_a_worker_on_the_roster_carries_no_flags() {
    let s = site().await;
    let p = sign_in_param(&s.on_roster, 1, now_ms());
    assert_eq!(flags(&s.app, &s.bound, &p).await, Vec::<String>::new());
}

#[tokio::test]
async fn records_are_stored_and_flagged_never_rejected() {
    let s = site().await;
    let (app, dev) = (&s.app, &s.bound);
    let on = s.on_roster.as_str();
    let now = now_ms();
    let far = json!({"longitude": 121.47, "latitude": 31.23});
    let near = json!({"longitude": 120.151, "latitude": 30.2805});
    let qr = json!({"type": 2, "codeColor": "green", "codeValue": "abc", "cityCode": "330100"});

    let cases: Vec<(Value, Vec<&str>)> = vec![
        (sign_in_param("999999", 1, now), vec!["unknown_person"]),
        (
            sign_in_param("not-a-number", 1, now),
            vec!["unknown_person"],
        ),
        (sign_in_param(&s.off_roster, 1, now), vec!["not_authorised"]),
        (
            with(sign_in_param(on, 64, now), "coordinate", far),
            vec!["outside_fence"],
        ),
        (
            with(sign_in_param(on, 64, now + 1), "coordinate", near),
            vec![],
        ),
        (sign_in_param(on, 64, now + 2), vec!["no_coordinate"]),
        (
            with(sign_in_param(on, 1, now + 3), "bitType", 65.into()),
            vec!["no_coordinate"],
        ),
        (
            sign_in_param(on, 16, now),
            vec!["indirect_method", "no_qr_info"],
        ),
        (
            sign_in_param(on, 4, now),
            vec!["indirect_method", "no_qr_info"],
        ),
        (
            with(sign_in_param(on, 4, now + 1), "qrCodeInfo", qr),
            vec!["indirect_method"],
        ),
        (sign_in_param(on, 2, now), vec!["indirect_method"]),
        (sign_in_param(on, 8, now), vec!["indirect_method"]),
        (
            with(sign_in_param(on, 2, now + 4), "bitType", 3.into()),
            vec![],
        ),
        (sign_in_param(on, 32, now), vec![]),
        (sign_in_param(on, 1, now - 60_000), vec!["late_upload"]),
    ];
    for (param, expected) in cases {
        assert_eq!(flags(app, dev, &param).await, expected, "{param}");
    }
}

#[tokio::test]
async fn a_record_from_an_unbound_device_is_flagged_unbound_device_and_not_not_authorised() {
    let s = site().await;
    let p = sign_in_param(&s.off_roster, 1, now_ms());
    assert_eq!(flags(&s.app, &s.unbound, &p).await, vec!["unbound_device"]);
    let p = sign_in_param("424242", 1, now_ms());
    assert_eq!(
        flags(&s.app, &s.unbound, &p).await,
        vec!["unbound_device", "unknown_person"]
    );
}

#[tokio::test]
async fn a_photo_that_is_not_an_image_or_over_400_kb_is_dropped_and_flagged_photo_rejected() {
    let s = site().await;
    let now = now_ms();
    let not_image = b64(b"hello, this is text and not a picture");
    let mut big = vec![0xFF, 0xD8, 0xFF, 0xE0];
    big.resize(409_601, 0);

    for (i, img) in [not_image, b64(&big)].into_iter().enumerate() {
        let p = with(
            sign_in_param(&s.on_roster, 1, now + i as i64),
            "img",
            img.into(),
        );
        assert_eq!(flags(&s.app, &s.bound, &p).await, vec!["photo_rejected"]);
    }
    let records = s.app.records("SN-SITE").await;
    assert_eq!(records.len(), 2);
    assert!(
        records.iter().all(|r| r.photo_url.is_none()),
        "no photo kept"
    );
}

/// A worker's records are listed by `personId`, newest first and page by page, whether they
/// came over TCP or HTTP, and nobody else's are: the per-person index serves the query from
/// the moment each record is acknowledged (store/sql/person_index.rs).
#[tokio::test]
async fn a_worker_s_records_are_listed_by_person_newest_first_page_by_page() {
    let s = site().await;
    let mut tcp = s.app.device(&s.bound.id.vendor, "SN-SITE").await;
    tcp.auth().await;
    let now = now_ms();
    let mut mine = Vec::new();
    for n in 0..3 {
        mine.push(
            tcp.sign_in(&sign_in_param(&s.on_roster, 1, now + n))
                .await
                .record_id,
        );
        tcp.sign_in(&sign_in_param(&s.off_roster, 1, now + n)).await;
    }
    mine.push(
        s.bound
            .sign_in(&sign_in_param(&s.on_roster, 1, now + 10))
            .await
            .record_id,
    );
    mine.reverse();

    let (first, cursor) = s.app.records_of_person(&s.on_roster, 3, None).await;
    let (second, last) = s.app.records_of_person(&s.on_roster, 3, cursor).await;
    assert!(last.is_none(), "{last:?}");
    let listed: Vec<String> = first
        .iter()
        .chain(&second)
        .map(|r| r.record_id.clone())
        .collect();
    assert_eq!(listed, mine);
    assert!(
        first
            .iter()
            .chain(&second)
            .all(|r| r.person_id == s.on_roster)
    );
    let (theirs, _) = s.app.records_of_person(&s.off_roster, 100, None).await;
    assert_eq!(theirs.len(), 3);
    assert!(
        s.app
            .records_of_person("nobody", 100, None)
            .await
            .0
            .is_empty()
    );
}

#[tokio::test]
async fn a_resent_record_answers_duplicate_with_the_same_record_id_and_is_stored_once() {
    let s = site().await;
    let mut tcp = s.app.device(&s.bound.id.vendor, "SN-SITE").await;
    tcp.auth().await;
    let p = with(
        sign_in_param(&s.on_roster, 1, now_ms()),
        "img",
        b64(FACE_JPG).into(),
    );

    let first = tcp.sign_in(&p).await;
    let again = tcp.sign_in(&p).await;
    let over_http = s.bound.sign_in(&p).await;
    // Same person and time, another type: another record.
    let other_type = tcp.sign_in(&with(p.clone(), "type", 32.into())).await;

    assert!(!first.duplicate);
    assert!(again.duplicate && over_http.duplicate);
    assert_eq!(again.record_id, first.record_id);
    assert_eq!(over_http.record_id, first.record_id);
    assert!(!other_type.duplicate);
    assert_ne!(other_type.record_id, first.record_id);
    assert_eq!(s.app.records("SN-SITE").await.len(), 2);
}

#[tokio::test]
async fn a_photo_is_served_at_its_signed_url_and_a_tampered_url_is_403() {
    let s = site().await;
    let now = now_ms();
    let jpg = with(
        sign_in_param(&s.on_roster, 1, now),
        "img",
        b64(FACE_JPG).into(),
    );
    let png = with(
        sign_in_param(&s.on_roster, 1, now + 1),
        "img",
        b64(FACE_PNG).into(),
    );
    let jpg_id = s.bound.sign_in(&jpg).await.record_id;
    let png_id = s.bound.sign_in(&png).await.record_id;

    for (id, bytes, mime) in [
        (&jpg_id, FACE_JPG, "image/jpeg"),
        (&png_id, FACE_PNG, "image/png"),
    ] {
        let r = s.app.record("SN-SITE", id).await;
        assert!(r.flags.is_empty(), "{:?}", r.flags);
        let url = r.photo_url.expect("a photoUrl");
        assert!(
            url.starts_with(&s.app.base_url),
            "absolute under public_url: {url}"
        );
        let resp = s.app.http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], mime);
        assert_eq!(resp.bytes().await.unwrap().as_ref(), bytes);
    }

    let url = s.app.record("SN-SITE", &jpg_id).await.photo_url.unwrap();
    let (path, query) = url.split_once('?').unwrap();
    let tampered_sig = {
        let last = url.chars().last().unwrap();
        let flipped = if last == '0' { '1' } else { '0' };
        format!("{}{flipped}", &url[..url.len() - 1])
    };
    let expires: u64 = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("expires="))
        .unwrap()
        .parse()
        .unwrap();
    let sig = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("sig="))
        .unwrap();
    let tampered_expiry = format!("{path}?expires={}&sig={sig}", expires + 1);
    for bad in [tampered_sig, tampered_expiry, path.to_owned()] {
        let (status, _) = fetch(&s.app.http, &bad).await;
        assert_eq!(status, 403, "{bad}");
    }
}

#[tokio::test]
async fn the_record_keeps_what_the_device_sent() {
    let s = site().await;
    let now = now_ms() - 1_000;
    let mut p = sign_in_param(&s.on_roster, 64, now);
    p["bitType"] = 65.into();
    p["temperature"] = "36.70".into();
    p["coordinate"] = json!({"longitude": "120.15", "latitude": 30.28});
    let r = s.bound.sign_in(&p).await;

    let rec = s.app.record("SN-SITE", &r.record_id).await;
    assert_eq!(rec.person_id, s.on_roster);
    assert_eq!(rec.sn, "SN-SITE");
    assert_eq!(rec.kind, 64);
    assert_eq!(rec.bit_type, Some(65));
    assert_eq!(rec.record_time, now);
    assert_eq!(rec.temperature, Some(36.7));
    assert!(rec.received_at >= now);
    assert!(rec.project_id.is_some());
    assert_eq!(rec.coordinate.unwrap()["longitude"], 120.15);
    assert!(rec.flags.is_empty(), "{:?}", rec.flags);
}

#[tokio::test]
async fn a_photo_of_exactly_400_kb_is_kept_and_one_byte_more_is_rejected() {
    let s = site().await;
    let now = now_ms();
    // A real JPEG header padded after its end: 409,600 bytes, then 409,601.
    let mut at_limit = FACE_JPG.to_vec();
    at_limit.resize(409_600, 0);
    let mut over = at_limit.clone();
    over.push(0);

    let kept = with(
        sign_in_param(&s.on_roster, 1, now),
        "img",
        b64(&at_limit).into(),
    );
    let rejected = with(
        sign_in_param(&s.on_roster, 1, now + 1),
        "img",
        b64(&over).into(),
    );
    // A data URI is base64 too.
    let data_uri = format!("data:image/jpeg;base64,{}", b64(FACE_JPG));
    let uri = with(
        sign_in_param(&s.on_roster, 1, now + 2),
        "img",
        data_uri.into(),
    );

    assert_eq!(flags(&s.app, &s.bound, &kept).await, Vec::<String>::new());
    assert_eq!(
        flags(&s.app, &s.bound, &rejected).await,
        vec!["photo_rejected"]
    );
    assert_eq!(flags(&s.app, &s.bound, &uri).await, Vec::<String>::new());
    let with_photo = s
        .app
        .records("SN-SITE")
        .await
        .into_iter()
        .filter(|r| r.photo_url.is_some())
        .count();
    assert_eq!(with_photo, 2);
}
