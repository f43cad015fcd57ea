//! The console in a real browser: headless Chromium driven over WebDriver (chromedriver),
//! against a real platform (HTTP and TCP gateway on port 0) and a simulated gate running the
//! device SDK.
//!
//! The "done when", from the console alone: manager A signs in, registers the gate
//! (bound to A's project) with the console's form, enrols three workers with face photos
//! through the upload form; the gate receives all three pushed by the platform; the gate
//! signs one in and the record shows on A's attendance page with its photo; the reports page
//! shows the day and this month's sheet downloads with the worker in it. Manager B, of
//! another project, signs in and neither sees the worker in the list nor opens their page
//! (404). Nothing sleeps: every wait polls a condition against a deadline.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use rollcall_client::{AdminClient, NewProject, NewUser, NewVendor};
use rollcall_device::{AttendanceRecord, Credentials, Device, DeviceConfig, DeviceEvent};
use rollcall_platform::store::Store;
use rollcall_platform::store::test_db::TestDb;
use rollcall_platform::{Listeners, Platform, Settings};
use rollcall_protocol::ids::Secret;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ADMIN_TOKEN: &str = "browser-test-admin-token-3c8e1f";
const PASSWORD: &str = "Browser-Test-2026";
/// A real face photo (NASA's public-domain astronaut portrait), as the API tests use.
const FACE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../platform/tests/data/face1.jpg"
);
/// The longest any single step may take.
const STEP: Duration = Duration::from_secs(20);
const CHROME_FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// A chromedriver child process, killed (and reaped) on drop.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    /// Starts chromedriver on a free port and waits until its `/status` says ready.
    async fn start() -> ChromeDriver {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists(),
            "{CHROMEDRIVER} is missing: apt-get install chromium chromium-driver (.ci/run does)"
        );
        // A free port: bind port 0 and release it for chromedriver.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let driver = ChromeDriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let status = format!("{}/status", driver.url);
        let deadline = Instant::now() + STEP;
        loop {
            if let Ok(r) = http.get(&status).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not get ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }

    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "args": CHROME_FLAGS.iter().chain(["--window-size=1280,900"].iter()).collect::<Vec<_>>() }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A platform in this process on port 0, with its own data directory.
struct TestPlatform {
    base: String,
    tcp: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

impl TestPlatform {
    async fn start() -> TestPlatform {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = TestDb::new("browser", dir.path());
        let store: Arc<dyn Store> = Arc::new(db.open().await.expect("open the test database"));
        let http = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind tcp");
        let http_addr = http.local_addr().expect("http addr");
        let tcp_addr = tcp.local_addr().expect("tcp addr");
        let settings = Settings {
            data_dir: dir.path().to_owned(),
            database_url: Some(db.url.clone()),
            admin_token: Some(Secret::new(ADMIN_TOKEN)),
            flush_interval_ms: 50,
            ..Settings::default()
        };
        let base = settings.public_url_for(http_addr);
        let platform = Platform::build_with_store(settings, &base, store)
            .await
            .expect("platform builds");
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(platform.run(Listeners { http, tcp }, async move {
            let _ = rx.await;
        }));
        TestPlatform {
            base,
            tcp: tcp_addr,
            shutdown: Some(tx),
            _db: db,
            _dir: dir,
        }
    }

    /// The admin API with the root token.
    fn admin(&self) -> AdminClient {
        AdminClient::new(&self.base, ADMIN_TOKEN)
    }
}

impl Drop for TestPlatform {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Signs in through the form and waits for the dashboard.
async fn sign_in(b: &Client, base: &str, username: &str) {
    b.goto(&format!("{base}/console/login"))
        .await
        .expect("login page");
    b.find(Locator::Id("username"))
        .await
        .expect("username")
        .send_keys(username)
        .await
        .expect("type");
    b.find(Locator::Id("password"))
        .await
        .expect("password")
        .send_keys(PASSWORD)
        .await
        .expect("type");
    b.find(Locator::Id("login"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    b.wait()
        .at_most(STEP)
        .for_element(Locator::Id("online-count"))
        .await
        .expect("the dashboard after signing in");
}

/// Reloads `url` until `css` matches an element (the page is server-rendered: new state
/// shows on reload), or fails after [`STEP`].
async fn reload_until(
    b: &Client,
    url: &str,
    css: &str,
    what: &str,
) -> fantoccini::elements::Element {
    let deadline = Instant::now() + STEP;
    loop {
        b.goto(url).await.expect("navigate");
        if let Ok(e) = b.find(Locator::Css(css)).await {
            return e;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_registers_a_gate_enrols_workers_and_downloads_the_month() {
    let started = Instant::now();
    let driver = ChromeDriver::start().await;
    let platform = TestPlatform::start().await;
    let base = platform.base.clone();

    // Set-up through the admin API with the root token.
    let admin = platform.admin();
    let vendor = admin
        .create_vendor(&NewVendor {
            name: "闸机厂商".into(),
            ..NewVendor::default()
        })
        .await
        .expect("create a vendor");
    let project = |name: &str| {
        let admin = admin.clone();
        let name = name.to_owned();
        async move {
            admin
                .create_project(&NewProject {
                    name,
                    ..NewProject::default()
                })
                .await
                .expect("create a project")
                .id
        }
    };
    let a = project("西溪项目").await;
    let b_project = project("滨江项目").await;
    for (user, project) in [("manager_a", &a), ("manager_b", &b_project)] {
        admin
            .create_user(&NewUser {
                username: user.into(),
                display_name: Some(user.into()),
                password: PASSWORD.into(),
                role: "project_manager".into(),
                project_ids: vec![project.clone()],
            })
            .await
            .expect("create a user");
    }
    let sn = "GATE-A-01";
    let browser = driver.browser().await;

    // Manager A registers the gate from the console.
    sign_in(&browser, &base, "manager_a").await;
    browser
        .goto(&format!("{base}/console/devices/new"))
        .await
        .expect("the gate form");
    browser
        .find(Locator::Id("sn"))
        .await
        .expect("sn field")
        .send_keys(sn)
        .await
        .expect("type the sn");
    for (field, value) in [
        ("vendor_id", vendor.id.clone()),
        ("project_id", a.clone()),
        ("kind", "gate".to_owned()),
        ("direction", "in".to_owned()),
    ] {
        browser
            .find(Locator::Id(field))
            .await
            .expect("a select")
            .select_by_value(&value)
            .await
            .expect("choose");
    }
    browser
        .find(Locator::Id("register"))
        .await
        .expect("button")
        .click()
        .await
        .expect("register");
    browser
        .wait()
        .at_most(STEP)
        .for_element(Locator::Id("device-state"))
        .await
        .expect("the new gate's page");

    // The gate: the device SDK, authenticated over the TCP gateway.
    let device_dir = tempfile::tempdir().expect("device dir");
    let creds = Credentials::new(
        vendor.access_id.clone(),
        vendor.access_key.clone(),
        vendor.access_secret.clone(),
    );
    let mut device = Device::open(DeviceConfig::new(
        sn,
        creds,
        platform.tcp.to_string(),
        base.as_str(),
        device_dir.path(),
    ))
    .expect("open the device");
    let mut events = device.subscribe();
    let gate = device.handle();
    let (stop_device, stop_rx) = oneshot::channel::<()>();
    let device_run = tokio::spawn(device.run(async move {
        let _ = stop_rx.await;
    }));
    let (acked_tx, mut acked_rx) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            if let DeviceEvent::Acked { record_id, .. } = e {
                let _ = acked_tx.send(record_id);
            }
        }
    });

    let setup = started.elapsed();

    // Manager A enrols three workers with photos; the first is the one followed below.
    let mut enrolled = Vec::new();
    for (serial, name) in [
        ("33010619850612041", "张建国"),
        ("33010619900301052", "李卫东"),
        ("33010619920815063", "王秀英"),
    ] {
        browser
            .goto(&format!("{base}/console/workers/new"))
            .await
            .expect("enrolment form");
        let form = [
            (
                "idcard_no",
                rollcall_platform::rules::idcard::with_check_char(serial).expect("17 digits"),
            ),
            ("name", name.to_owned()),
            ("phone", "13800138000".to_owned()),
            ("trade", "钢筋工".to_owned()),
        ];
        for (field, value) in &form {
            browser
                .find(Locator::Id(field))
                .await
                .expect("a form field")
                .send_keys(value)
                .await
                .expect("type");
        }
        let face = std::fs::canonicalize(FACE).expect("the face photo");
        browser
            .find(Locator::Id("photo"))
            .await
            .expect("the photo field")
            .send_keys(&face.display().to_string())
            .await
            .expect("choose the photo");
        browser
            .find(Locator::Id("enrol"))
            .await
            .expect("button")
            .click()
            .await
            .expect("submit");
        let id = browser
            .wait()
            .at_most(STEP)
            .for_element(Locator::Id("person-id"))
            .await
            .expect("the new worker's page")
            .text()
            .await
            .expect("person id");
        let id = id.trim().to_owned();
        assert!(id.parse::<i64>().is_ok(), "person id {id}");
        browser
            .find(Locator::Id("face"))
            .await
            .expect("the face photo is shown");
        enrolled.push((id, name));
    }
    let person_id = enrolled[0].0.clone();

    // The platform pushes the workers to the gate, which downloads each person and face.
    let deadline = Instant::now() + STEP;
    for (id, name) in &enrolled {
        loop {
            if let Ok(Some(p)) = gate.person(id).await
                && p.face.is_some()
            {
                assert_eq!(&p.name, name);
                break;
            }
            assert!(Instant::now() < deadline, "the gate never received {name}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // …and the device page shows the sync state the gate reported.
    let row = reload_until(
        &browser,
        &format!("{base}/console/devices/{sn}"),
        &format!("#sync tr[data-person='{person_id}']"),
        "the device's sync report",
    )
    .await;
    assert!(row.text().await.expect("row").contains("已同步"));

    // The worker signs in at the gate; the record reaches the attendance page.
    let now = rollcall_protocol::time::now_ms();
    gate.enqueue(AttendanceRecord::face(
        person_id.clone(),
        now,
        Some(rollcall_device::photo::sample::SMALL_JPEG.to_vec()),
    ))
    .await
    .expect("enqueue a sign-in");
    tokio::time::timeout(STEP, acked_rx.recv())
        .await
        .expect("the platform acknowledges the record")
        .expect("an ack");
    let record = reload_until(
        &browser,
        &format!("{base}/console/attendance"),
        &format!("#attendance tr[data-person='{person_id}']"),
        "the record on the attendance page",
    )
    .await;
    assert!(record.text().await.expect("row").contains("张建国"));
    record
        .find(Locator::Css("img.thumb"))
        .await
        .expect("the record's photo");

    // The reports page shows the day, and this month's sheet downloads with the worker in it.
    browser
        .goto(&format!("{base}/console/reports"))
        .await
        .expect("reports");
    let daily = browser
        .wait()
        .at_most(STEP)
        .for_element(Locator::Id("daily"))
        .await
        .expect("the daily summary");
    assert!(daily.text().await.expect("daily").contains("张建国"));
    let month = browser
        .find(Locator::Css("#monthly input[name='month']"))
        .await
        .expect("the month field")
        .attr("value")
        .await
        .expect("month value")
        .expect("a default month");
    let cookie = browser
        .get_named_cookie("rollcall_session")
        .await
        .expect("the session cookie");
    let sheet = reqwest::Client::new()
        .get(format!("{base}/console/reports/monthly.xlsx?month={month}"))
        .header("cookie", format!("rollcall_session={}", cookie.value()))
        .send()
        .await
        .expect("the monthly sheet");
    assert_eq!(sheet.status(), 200);
    let bytes = sheet.bytes().await.expect("sheet bytes");
    let mut book: calamine::Xlsx<_> =
        calamine::Reader::new(std::io::Cursor::new(bytes.to_vec())).expect("an xlsx workbook");
    let names = calamine::Reader::sheet_names(&book);
    let range = calamine::Reader::worksheet_range(&mut book, &names[0]).expect("the sheet");
    assert!(
        range.rows().any(|r| r
            .iter()
            .any(|c| matches!(c, calamine::Data::String(s) if s == "张建国"))),
        "this month's sheet lists the worker"
    );

    // Manager B (another project) neither lists nor opens the worker.
    browser
        .find(Locator::Css("nav.main form button"))
        .await
        .expect("sign out")
        .click()
        .await
        .expect("sign out");
    browser
        .wait()
        .at_most(STEP)
        .for_element(Locator::Id("login"))
        .await
        .expect("the sign-in form after signing out");
    sign_in(&browser, &base, "manager_b").await;
    browser
        .goto(&format!("{base}/console/workers"))
        .await
        .expect("workers");
    browser
        .wait()
        .at_most(STEP)
        .for_element(Locator::Id("workers"))
        .await
        .expect("the list");
    assert!(
        browser
            .find(Locator::Css(&format!("tr[data-person='{person_id}']")))
            .await
            .is_err(),
        "manager B sees A's worker"
    );
    browser
        .goto(&format!("{base}/console/workers/{person_id}"))
        .await
        .expect("worker page");
    let body = browser.source().await.expect("page source");
    assert!(body.contains("错误代码 404"), "manager B opened A's worker");
    let status = reqwest::Client::new()
        .get(format!("{base}/console/workers/{person_id}"))
        .send()
        .await
        .expect("get");
    // Without the browser's cookie it is the sign-in redirect (followed): never the worker.
    assert!(!status.text().await.unwrap_or_default().contains("张建国"));

    browser.close().await.expect("close the browser");
    let _ = stop_device.send(());
    let _ = tokio::time::timeout(STEP, device_run).await;
    eprintln!(
        "browser test: set-up {:.1?}, total {:.1?}",
        setup,
        started.elapsed()
    );
    drop(driver);
}
