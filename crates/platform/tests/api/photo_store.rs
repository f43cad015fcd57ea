//! Where photos live when several nodes share one database (issue 15): every photo key names
//! what it points to, a node that does not have a photo says so (404) and never answers
//! another record's photo, and with an S3-compatible store every node serves every photo,
//! face and signed URL. The S3 tests use the test server of `.ci/seaweedfs.sh`.

use rollcall_platform::config::Settings;
use rollcall_platform::store::test_s3::TestS3;
use rollcall_protocol::ids::Secret;
use serde_json::Value;

use crate::helpers::*;

/// One URL-signing key for every node of a test (as ROLLCALL_URL_SIGNING_KEY would be).
const URL_KEY: &str = "dGVzdC11cmwtc2lnbmluZy1rZXktMzItYnl0ZXMhISE=";

fn shared_url_key(s: &mut Settings) {
    s.url_signing_key = Some(Secret::new(URL_KEY));
}

fn on_s3(s3: &TestS3) -> impl FnOnce(&mut Settings) + '_ {
    move |s| {
        shared_url_key(s);
        s.photo_store = Some(s3.photo_store());
        s.photo_store_options = s3.options();
    }
}

/// A URL signed by one node, asked of another.
fn at(node: &TestApp, url: &str, signed_by: &TestApp) -> String {
    let rest = url
        .strip_prefix(&signed_by.base_url)
        .unwrap_or_else(|| panic!("{url} is not under {}", signed_by.base_url));
    format!("{}{rest}", node.base_url)
}

async fn fetch(app: &TestApp, url: &str) -> (u16, Vec<u8>) {
    let resp = app.http.get(url).send().await.unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

/// A device of `app`'s platform, bound to a new project with one worker, signed in once with
/// `photo`; the record's photo URL.
async fn sign_in_with_photo(app: &TestApp, vendor: &VendorCreds, sn: &str, photo: &[u8]) -> String {
    let project = app.project(None).await;
    let worker = app.worker("张三").await;
    app.assign(&project, &[worker]).await;
    app.register_device(sn, vendor, Some(&project)).await;
    let mut device = app.http_device(vendor, sn);
    device.auth().await;
    let mut param = sign_in_param(&worker.to_string(), 1, now_ms());
    param["img"] = b64(photo).into();
    let id = device.sign_in(&param).await.record_id;
    app.record(sn, &id).await.photo_url.expect("a photoUrl")
}

#[tokio::test]
async fn nodes_on_their_own_disks_answer_404_for_each_others_photos_never_another_record() {
    let a = TestApp::spawn_with(shared_url_key).await;
    let b = a.join(|_| {}).await;
    let vendor = a.vendor().await;
    // Each node's first photo: same segment, same offset, same store layout on two disks.
    let url_a = sign_in_with_photo(&a, &vendor, "SN-ON-A", FACE_JPG).await;
    let url_b = sign_in_with_photo(&b, &vendor, "SN-ON-B", FACE_PNG).await;

    assert_eq!(fetch(&a, &url_a).await, (200, FACE_JPG.to_vec()));
    assert_eq!(fetch(&b, &url_b).await, (200, FACE_PNG.to_vec()));
    // Asked of the node that does not have it: 404, not the other node's photo.
    assert_eq!(fetch(&b, &at(&b, &url_a, &a)).await.0, 404);
    assert_eq!(fetch(&a, &at(&a, &url_b, &b)).await.0, 404);
}

#[tokio::test]
async fn with_an_s3_store_every_node_serves_every_photo_face_and_signed_url() {
    let s3 = TestS3::new("api-nodes");
    s3.require().await;
    let a = TestApp::spawn_with(on_s3(&s3)).await;
    let b = a.join(|_| {}).await;
    assert!(a.state().blobs.shared() && a.state().blobs.describe().starts_with("s3://"));
    let vendor = a.vendor().await;

    let url_a = sign_in_with_photo(&a, &vendor, "SN-S3-A", FACE_JPG).await;
    let url_b = sign_in_with_photo(&b, &vendor, "SN-S3-B", FACE_PNG).await;
    for node in [&a, &b] {
        assert_eq!(
            fetch(node, &at(node, &url_a, &a)).await,
            (200, FACE_JPG.to_vec())
        );
        assert_eq!(
            fetch(node, &at(node, &url_b, &b)).await,
            (200, FACE_PNG.to_vec())
        );
    }

    // A face enrolled through node A is served by node B under B's own signature.
    let person = a.worker("李四").await;
    let view: Value = b
        .admin()
        .get(&format!("/workers/{person}"))
        .await
        .expect(200);
    let face_url = view["faceUrl"].as_str().expect("a faceUrl").to_owned();
    assert!(face_url.starts_with(&b.base_url), "{face_url}");
    assert_eq!(fetch(&b, &face_url).await, (200, FACE_JPG.to_vec()));

    // Restarted, a node still serves what it stored before (nothing lived on its disk).
    let mut a = a;
    a.restart().await;
    assert_eq!(
        fetch(&a, &at(&a, &url_b, &b)).await,
        (200, FACE_PNG.to_vec())
    );
}

#[tokio::test]
async fn a_photo_store_that_cannot_be_used_stops_the_start_with_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (store, options, expect) in [
        ("gs://bucket", vec![], "other than s3://"),
        ("s3://", vec![], "no bucket"),
        (
            "s3://photos",
            vec![("aws_no_such_key", "1")],
            "photo_store_options.aws_no_such_key",
        ),
    ] {
        let settings = Settings {
            data_dir: dir.path().to_owned(),
            photo_store: Some(store.to_owned()),
            photo_store_options: rollcall_platform::config::StoreOptions(
                options
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            ),
            ..Settings::default()
        };
        let err = match rollcall_platform::Platform::build(settings, "http://127.0.0.1:1").await {
            Ok(_) => panic!("{store} started"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(expect), "{store}: {err}");
    }
}

/// Issue 15: an installation whose photos are on its disk moves them into S3 with
/// `migrate-data --photos-to` (here its library function): every file and attendance photo is
/// copied and read back, the attendance keys are rewritten, and the platform restarted on the
/// S3 store serves every record's own photo and every face. A second run has nothing left to
/// move.
#[tokio::test]
async fn photos_on_a_disk_move_into_s3_and_every_record_keeps_its_own_photo() {
    use rollcall_platform::store::blobs::open_s3;
    use rollcall_platform::store::copy::photos::copy_photos;

    let s3 = TestS3::new("api-migrate");
    s3.require().await;
    let mut app = TestApp::spawn_with(shared_url_key).await;
    let vendor = app.vendor().await;
    let jpg = sign_in_with_photo(&app, &vendor, "SN-MOVE-1", FACE_JPG).await;
    sign_in_with_photo(&app, &vendor, "SN-MOVE-2", FACE_PNG).await;
    let person = app.worker("王五").await;
    let record_path = |url: &str, app: &TestApp| {
        url.strip_prefix(&app.base_url)
            .unwrap()
            .split('?')
            .next()
            .unwrap()
            .to_owned()
    };
    assert!(record_path(&jpg, &app).starts_with("/files/s/"), "{jpg}");

    let to = open_s3(&s3.photo_store(), &s3.options().0).unwrap();
    let db_url = app.settings().database_url();
    let files_dir = app.settings().files_dir();
    // Not while the platform that owns the photos runs.
    let running = copy_photos(&files_dir, &to, &db_url, &mut |_| {}).await;
    assert!(
        running.unwrap_err().to_string().contains("already open"),
        "the store's lock keeps the copy out"
    );
    app.stop().await;
    let mut seen = 0;
    let summary = copy_photos(&files_dir, &to, &db_url, &mut |_| seen += 1)
        .await
        .expect("copy the photos");
    assert_eq!(summary.attendance, 2);
    assert!(summary.files >= 3, "three faces at least: {summary:?}");
    assert!(seen > 0, "progress reported");
    let again = copy_photos(&files_dir, &to, &db_url, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(again.attendance, 0, "nothing left to move");

    app.restart_with(|s| {
        s.photo_store = Some(s3.photo_store());
        s.photo_store_options = s3.options();
    })
    .await;
    for (sn, bytes) in [("SN-MOVE-1", FACE_JPG), ("SN-MOVE-2", FACE_PNG)] {
        let records = app.records(sn).await;
        let url = records[0].photo_url.clone().expect("a photo URL");
        assert!(
            record_path(&url, &app).starts_with("/files/o/"),
            "re-keyed: {url}"
        );
        assert_eq!(fetch(&app, &url).await, (200, bytes.to_vec()));
    }
    let view: Value = app
        .admin()
        .get(&format!("/workers/{person}"))
        .await
        .expect(200);
    let face = view["faceUrl"].as_str().unwrap();
    assert_eq!(fetch(&app, face).await, (200, FACE_JPG.to_vec()));
}
