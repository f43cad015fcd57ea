//! Every kind of terminal against the real platform: the typed sign-ins of iris, mobile (inside
//! and outside the project's fence), QR (with its code info) and gate (in and out) terminals,
//! and the collection device enrolling workers with X_COLLECT_PERSON, its answers mapped as
//! every other call of the SDK.

use std::time::Duration;

use rollcall_client::AttendanceRecord as Stored;
use rollcall_device::collect::{CollectedPerson, Collector};
use rollcall_device::photo::sample::{FACE_JPEG, SMALL_JPEG, iris_bmp};
use rollcall_device::{
    AttendanceRecord, CollectError, Device, GateDirection, SdkError, TerminalKind,
};
use rollcall_protocol::ErrorCode;
use rollcall_protocol::params::{Coordinate, QrCodeInfo};
use serde_json::json;

use crate::helpers::{TestPlatform, Vendor, eventually, idcard};

const WAIT: Duration = Duration::from_secs(60);

/// The fence of these tests: 500 m around a point of West Lake (GCJ-02).
const SITE: Coordinate = Coordinate {
    longitude: 120.15,
    latitude: 30.28,
};

/// A collection device registered as such and bound to `project`.
async fn collector(
    platform: &TestPlatform,
    vendor: &Vendor,
    sn: &str,
    project: Option<&str>,
    dir: &std::path::Path,
) -> Collector {
    platform
        .register_terminal(sn, vendor, project, TerminalKind::Collector)
        .await;
    Collector::new(platform.config(sn, vendor, dir)).unwrap()
}

fn capture(serial: u32) -> CollectedPerson {
    let mut p = CollectedPerson::new(idcard(900_000 + serial), "陈六", FACE_JPEG.to_vec());
    p.nation = Some("汉".into());
    p.address = Some("浙江省杭州市西湖区某路 1 号".into());
    p.valid_to = Some("长期".into());
    p.id_card_photo = Some(SMALL_JPEG.to_vec());
    p.iris_left = Some(iris_bmp(0));
    p.iris_right = Some(iris_bmp(10));
    p.phone = Some("13800000000".into());
    p.face_match_score = Some(0.93);
    p
}

/// ZJ-COLLECT-01, ZJ-COLLECT-02, ZJ-COLLECT-06: the SDK's collector enrols a worker (every
/// image, irises included, signed out of the signature), who joins the collector's project; a
/// second upload of the same ID card gives the same person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_enrols_a_worker_who_joins_its_project() {
    let platform = TestPlatform::spawn().await;
    let vendor = platform.vendor().await;
    let project = platform.project().await;
    let dir = tempfile::tempdir().unwrap();
    let c = collector(
        &platform,
        &vendor,
        "SDK-COLLECT-1",
        Some(&project),
        dir.path(),
    )
    .await;

    let person = capture(1);
    let enrolled = c.upload(&person).await.expect("enrolled");
    let worker = platform
        .get(&format!("/workers/{}", enrolled.person_id))
        .await;
    assert_eq!(worker["name"], "陈六");
    assert_eq!(worker["nation"], "汉");
    assert!(worker["faceUrl"].is_string(), "the face is kept: {worker}");
    let roster = platform.get(&format!("/projects/{project}/workers")).await;
    assert!(
        roster["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["personId"] == enrolled.person_id.as_str()),
        "the collector's project has the worker: {roster}"
    );

    let again = c.upload(&person).await.expect("enrolled again");
    assert_eq!(again.person_id, enrolled.person_id);
}

/// ZJ-COLLECT-05, ZJ-COLLECT-07: the platform's refusals reach the caller as the SDK maps every
/// answer — permanent codes are not retried, `400_02` names the member — and what the SDK can
/// check itself never leaves the device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_s_refusals_are_mapped_like_every_other_answer() {
    let platform = TestPlatform::spawn().await;
    let vendor = platform.vendor().await;
    let dir = tempfile::tempdir().unwrap();
    let c = collector(&platform, &vendor, "SDK-COLLECT-2", None, dir.path()).await;

    // A wrong check character: the shape is right, so only the platform can tell.
    let mut bad = capture(2);
    let last = if bad.idcard_no.ends_with('0') {
        '1'
    } else {
        '0'
    };
    bad.idcard_no.pop();
    bad.idcard_no.push(last);
    let e = c.upload(&bad).await.expect_err("a wrong check character");
    assert_eq!(e.code(), Some(ErrorCode::ParamInvalid), "{e}");
    assert_eq!(e.refused_member(), Some("idcardNo"), "{e}");
    assert!(!e.is_retryable());

    // An iris image that is not 640×480: the platform names it.
    let mut bad = capture(3);
    bad.iris_right = Some(SMALL_JPEG.to_vec());
    let e = c.upload(&bad).await.expect_err("a small iris image");
    assert_eq!(e.refused_member(), Some("irisRight"), "{e}");

    // Checked on the device: nothing is sent.
    let mut short = capture(4);
    short.idcard_no.truncate(17);
    let e = c.upload(&short).await.expect_err("17 characters");
    assert!(
        matches!(e, SdkError::Collect(CollectError::IdCardNo)),
        "{e}"
    );
    assert!(!e.is_retryable());

    // A device registered as a face terminal may not enrol.
    platform.register_device("SDK-FACE-2", &vendor, None).await;
    let face = Collector::new(platform.config("SDK-FACE-2", &vendor, dir.path())).unwrap();
    let e = face.upload(&capture(5)).await.expect_err("not a collector");
    assert_eq!(e.code(), Some(ErrorCode::ApiCodeInvalid), "{e}");
    assert!(!e.is_retryable());

    let workers = platform.get("/workers?limit=100").await;
    let names: Vec<&str> = workers["workers"]
        .as_array()
        .map(|w| w.iter().filter_map(|w| w["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(!names.contains(&"陈六"), "nobody was enrolled: {workers}");
}

/// The one stored record of `sn`, once it is there.
async fn stored(platform: &TestPlatform, sn: &str) -> Stored {
    eventually(&format!("a record of {sn}"), WAIT, || async {
        platform.records(sn).await.into_iter().next()
    })
    .await
}

/// ZJ-SIGNIN-01, ZJ-SIGNIN-07, ZJ-SIGNIN-08: each kind of terminal sends its typed record
/// through the SDK's queue, and the platform files it as its rules say — the iris
/// information kept; mobile records inside the fence clean and outside it flagged
/// `outside_fence`; the QR code's info kept and, with the face, real-name; a gate's records
/// stamped with its direction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_terminal_signs_in_and_the_platform_files_it_by_its_rules() {
    let platform = TestPlatform::spawn().await;
    let vendor = platform.vendor().await;
    let fence = json!({"center": {"longitude": SITE.longitude, "latitude": SITE.latitude}, "radiusMeters": 500});
    let project = platform.project_with_fence(Some(fence)).await;
    let person = platform.enrol("张三", FACE_JPEG).await;
    platform
        .post(
            &format!("/projects/{project}/workers"),
            &json!({ "personIds": [person] }),
            200,
        )
        .await;

    let now = rollcall_device::http::now_ms();
    let photo = || Some(SMALL_JPEG.to_vec());
    // ~1.1 km north of the centre: outside the 500 m fence.
    let far = Coordinate {
        longitude: SITE.longitude,
        latitude: SITE.latitude + 0.01,
    };
    let code = QrCodeInfo {
        r#type: QrCodeInfo::PERSON_CODE,
        code_color: Some("green".into()),
        code_value: Some(format!("RC-PERSON-{person}")),
        city_code: Some("330100".into()),
    };
    let cases = [
        (
            "SDK-IRIS",
            TerminalKind::Iris,
            AttendanceRecord::iris(&*person, now, "IRIS-FEATURE-1"),
        ),
        (
            "SDK-MOBILE-IN",
            TerminalKind::Mobile,
            AttendanceRecord::mobile(&*person, now, SITE, photo()),
        ),
        (
            "SDK-MOBILE-OUT",
            TerminalKind::Mobile,
            AttendanceRecord::mobile(&*person, now, far, photo()),
        ),
        (
            "SDK-QR",
            TerminalKind::Qr,
            AttendanceRecord::qr(&*person, now, code.clone()).with_face(SMALL_JPEG.to_vec()),
        ),
        (
            "SDK-GATE-IN",
            TerminalKind::Gate(GateDirection::In),
            AttendanceRecord::face(&*person, now, photo()),
        ),
        (
            "SDK-GATE-OUT",
            TerminalKind::Gate(GateDirection::Out),
            AttendanceRecord::face(&*person, now, photo()),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut running = Vec::new();
    for (sn, kind, record) in cases {
        platform
            .register_terminal(sn, &vendor, Some(&project), kind)
            .await;
        let device = Device::open(platform.config(sn, &vendor, &dir.path().join(sn))).unwrap();
        device.handle().enqueue(record).await.unwrap();
        let mut stopped = stopped.clone();
        running.push(tokio::spawn(device.run(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })));
    }

    let iris = stored(&platform, "SDK-IRIS").await;
    assert_eq!(iris.kind, 32);
    assert_eq!(iris.iris_info, Some(json!("IRIS-FEATURE-1")));
    assert!(iris.flags.is_empty(), "{:?}", iris.flags);

    let inside = stored(&platform, "SDK-MOBILE-IN").await;
    assert_eq!(inside.kind, 64);
    assert!(inside.coordinate.is_some());
    assert!(inside.flags.is_empty(), "{:?}", inside.flags);
    let outside = stored(&platform, "SDK-MOBILE-OUT").await;
    assert_eq!(outside.flags, ["outside_fence"]);

    let qr = stored(&platform, "SDK-QR").await;
    assert_eq!((qr.kind, qr.bit_type), (16, Some(17)));
    let info = qr.qr_code_info.expect("the code info is kept");
    assert_eq!(info["type"], 1);
    assert_eq!(info["codeValue"], format!("RC-PERSON-{person}"));
    assert!(qr.flags.is_empty(), "{:?}", qr.flags);

    let gate_in = stored(&platform, "SDK-GATE-IN").await;
    let gate_out = stored(&platform, "SDK-GATE-OUT").await;
    assert_eq!((gate_in.kind, gate_in.direction.as_str()), (1, "in"));
    assert_eq!((gate_out.kind, gate_out.direction.as_str()), (1, "out"));

    let _ = stop.send(true);
    for r in running {
        r.await.unwrap().unwrap();
    }
}
