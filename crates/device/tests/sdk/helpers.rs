//! The harness: the real platform in-process on `127.0.0.1:0` with a temporary data dir,
//! set up through its admin HTTP API (`rollcall-client`, bearer token), and SDK devices that talk to
//! it over real TCP and HTTP.
//!
//! Only bulk enrolment reaches inside the platform ([`TestPlatform::enrol_fast`]): 10,000
//! `POST /workers` calls, each fsynced, would dominate a debug-build run. The device side
//! always goes through the real protocol.
//!
//! The platform stores in SQLite in its temp dir, or in PostgreSQL when
//! `ROLLCALL_TEST_DATABASE_URL` is set, in a schema of its own per test ([`TestDb`], as in
//! the platform's own suite).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rollcall_client::{
    AdminClient, AttendanceQuery, AttendanceRecord, Method, NewDevice, NewProject, NewVendor,
    NewWorker, RawResponse,
};
use rollcall_device::photo::sample::SMALL_JPEG;
use rollcall_device::{Credentials, DeviceConfig};
use rollcall_platform::config::Settings;
use rollcall_platform::state::AppState;
use rollcall_platform::store::test_db::TestDb;
use rollcall_platform::store::{Store, Worker};
use rollcall_platform::{Listeners, Platform, StartupError};
use rollcall_protocol::ids::Secret;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_TOKEN: &str = "sdk-test-admin-token-9c1d2e3f4a5b";

/// Full size (10,000 persons, 60,000 records) with `ROLLCALL_FULL_SIZE=1`; a tenth by default.
pub fn scaled(full: usize) -> usize {
    if std::env::var("ROLLCALL_FULL_SIZE").is_ok_and(|v| v == "1") {
        full
    } else {
        full / 10
    }
}

/// A running platform.
pub struct TestPlatform {
    pub tcp_addr: SocketAddr,
    pub base_url: String,
    /// The admin API with the admin token.
    pub admin: AdminClient,
    state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), StartupError>>>,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

/// A vendor's id and credentials.
#[derive(Debug, Clone)]
pub struct Vendor {
    pub id: String,
    pub creds: Credentials,
}

impl TestPlatform {
    pub async fn spawn() -> TestPlatform {
        Self::spawn_with(|_| {}, None).await
    }

    /// A platform serving HTTPS with `pki`'s server certificate; its admin client trusts
    /// the test CA.
    pub async fn spawn_tls(pki: &TestPki) -> TestPlatform {
        let (cert, key) = (pki.cert.clone(), pki.key.clone());
        Self::spawn_with(
            move |s| {
                s.tls_cert = Some(cert);
                s.tls_key = Some(key);
            },
            Some(&pki.ca_pem),
        )
        .await
    }

    /// A platform with settings adjusted by `f`; the admin client trusts `ca_pem` too.
    async fn spawn_with(f: impl FnOnce(&mut Settings), ca_pem: Option<&str>) -> TestPlatform {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = TestDb::new("sdk", dir.path());
        let store: Arc<dyn Store> = Arc::new(db.open().await.expect("open the test database"));
        let mut settings = Settings {
            data_dir: dir.path().to_owned(),
            database_url: Some(db.url.clone()),
            admin_token: Some(Secret::new(ADMIN_TOKEN)),
            flush_interval_ms: 50,
            ..Settings::default()
        };
        f(&mut settings);
        let http = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind tcp");
        let http_addr = http.local_addr().expect("http addr");
        let tcp_addr = tcp.local_addr().expect("tcp addr");
        let base_url = settings.public_url_for(http_addr);
        let platform = Platform::build_with_store(settings, &base_url, store)
            .await
            .expect("platform builds");
        let state = platform.state();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(platform.run(Listeners { http, tcp }, async move {
            let _ = rx.await;
        }));
        let admin = match ca_pem {
            Some(pem) => AdminClient::with_extra_ca(&base_url, ADMIN_TOKEN, pem.as_bytes())
                .expect("an admin client trusting the test CA"),
            None => AdminClient::new(&base_url, ADMIN_TOKEN),
        };
        TestPlatform {
            tcp_addr,
            admin,
            base_url,
            state,
            shutdown: Some(tx),
            server: Some(server),
            _db: db,
            _dir: dir,
        }
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), s).await;
        }
    }

    // --- the admin API -----------------------------------------------------------------------

    async fn admin(&self, method: Method, path: &str, body: Option<&Value>) -> RawResponse {
        self.admin
            .send(method, path, body)
            .await
            .expect("admin API answers")
    }

    /// `POST`, expecting `want`.
    pub async fn post(&self, path: &str, body: &Value, want: u16) -> Value {
        let r = self.admin(Method::POST, path, Some(body)).await;
        assert_eq!(r.status, want, "POST {path}: {}", r.body);
        r.body
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Value {
        let r = self.admin(Method::PATCH, path, Some(body)).await;
        assert_eq!(r.status, 200, "PATCH {path}: {}", r.body);
        r.body
    }

    pub async fn get(&self, path: &str) -> Value {
        let r = self.admin(Method::GET, path, None).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        r.body
    }

    pub async fn delete(&self, path: &str) -> u16 {
        self.admin(Method::DELETE, path, None).await.status
    }

    pub async fn vendor(&self) -> Vendor {
        let v = self
            .admin
            .create_vendor(&NewVendor {
                name: "SDK 测试厂商".into(),
                ..NewVendor::default()
            })
            .await
            .expect("create a vendor");
        Vendor {
            id: v.id,
            creds: Credentials::new(v.access_id, v.access_key, v.access_secret),
        }
    }

    pub async fn project(&self) -> String {
        self.project_with_fence(None).await
    }

    /// A project with an electronic fence (admin API JSON), or none.
    pub async fn project_with_fence(&self, fence: Option<Value>) -> String {
        let p = NewProject {
            name: "SDK 工地".into(),
            fence,
            ..NewProject::default()
        };
        self.admin
            .create_project(&p)
            .await
            .expect("create a project")
            .id
    }

    pub async fn register_device(&self, sn: &str, vendor: &Vendor, project: Option<&str>) {
        self.register_terminal(sn, vendor, project, rollcall_device::TerminalKind::Face)
            .await;
    }

    /// Registers a device of `kind` (a gate with its direction), as an operator does.
    pub async fn register_terminal(
        &self,
        sn: &str,
        vendor: &Vendor,
        project: Option<&str>,
        kind: rollcall_device::TerminalKind,
    ) {
        let body = NewDevice {
            sn: sn.to_owned(),
            vendor_id: vendor.id.clone(),
            project_id: project.map(str::to_owned),
            kind: kind.admin_kind().to_owned(),
            direction: kind.admin_direction().map(str::to_owned),
            ..NewDevice::default()
        };
        self.admin
            .create_device(&body)
            .await
            .expect("register a device");
    }

    pub async fn device(&self, sn: &str) -> Value {
        self.get(&format!("/devices/{sn}")).await
    }

    /// Tasks of a device, newest first.
    pub async fn tasks(&self, sn: &str) -> Vec<Value> {
        let v = self.get(&format!("/devices/{sn}/tasks?limit=1000")).await;
        v["tasks"].as_array().cloned().unwrap_or_default()
    }

    /// The status of one task.
    pub async fn task_status(&self, sn: &str, taskid: &str) -> String {
        self.admin
            .device_tasks(sn, 1000)
            .await
            .expect("the device's tasks")
            .into_iter()
            .find(|t| t.taskid == taskid)
            .map(|t| t.status)
            .unwrap_or_default()
    }

    /// Every attendance record of a device, paging with the cursor (newest first).
    pub async fn records(&self, sn: &str) -> Vec<AttendanceRecord> {
        let q = AttendanceQuery {
            sn: Some(sn.to_owned()),
            limit: Some(1000),
            ..AttendanceQuery::default()
        };
        self.admin.attendance_all(&q).await.expect("attendance")
    }

    /// Enrols a worker through `POST /workers` (the real enrolment path); its person id.
    pub async fn enrol(&self, name: &str, photo: &[u8]) -> String {
        use base64::Engine as _;
        let body = NewWorker {
            idcard_no: idcard(next_serial()),
            name: name.to_owned(),
            face_photo: base64::engine::general_purpose::STANDARD.encode(photo),
            ..NewWorker::default()
        };
        self.admin
            .create_worker(&body)
            .await
            .expect("enrol a worker")
            .person_id
    }

    /// Enrols `n` workers with the small JPEG face straight into the platform's store (all
    /// sharing one stored photo) and puts them on the project's roster. Devices are not told:
    /// bind a device afterwards to give it the roster (T_SEND_PERSON).
    pub async fn enrol_fast(&self, n: usize, project: &str) -> Vec<i64> {
        let app = self.state();
        let key = "faces/shared/sdk-test.jpg";
        app.blobs.put(key, SMALL_JPEG).await.expect("store a face");
        let now = rollcall_platform::util::now_ms();
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let person_id = app.ids.next();
            let worker = Worker {
                person_id,
                idcard_no: idcard(next_serial()),
                name: format!("工人{i:05}"),
                gender: None,
                nation: None,
                address: None,
                phone: Some(format!("138{i:08}")),
                face_key: Some(key.to_owned()),
                created_at: now,
                updated_at: now,
            };
            app.store
                .create_worker(&worker)
                .await
                .expect("create worker");
            ids.push(person_id);
        }
        let project: i64 = project.parse().expect("numeric project id");
        for chunk in ids.chunks(1000) {
            app.store
                .add_project_workers(project, chunk, now)
                .await
                .expect("join project");
        }
        ids
    }

    /// A device configuration for this platform, with test-friendly timings.
    pub fn config(&self, sn: &str, vendor: &Vendor, data_dir: &std::path::Path) -> DeviceConfig {
        let mut c = DeviceConfig::new(
            sn,
            vendor.creds.clone(),
            self.tcp_addr.to_string(),
            self.base_url.clone(),
            data_dir,
        );
        c.tuning.heartbeat_interval = Duration::from_secs(1);
        c.tuning.reconnect = rollcall_device::backoff::Backoff::new(
            Duration::from_millis(50),
            Duration::from_secs(1),
        );
        c
    }
}

/// A test CA and a server certificate for `localhost` and `127.0.0.1` it signed, as PEM
/// files in a temporary directory.
pub struct TestPki {
    _dir: tempfile::TempDir,
    pub ca_pem: String,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl TestPki {
    pub fn new() -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Rollcall SDK test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().expect("server key");
        let mut server =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = server.signed_by(&key, &issuer).expect("server certificate");
        let pki = TestPki {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            ca_pem: ca_cert.pem(),
            _dir: dir,
        };
        std::fs::write(&pki.cert, cert.pem()).expect("write cert.pem");
        std::fs::write(&pki.key, key.serialize_pem()).expect("write key.pem");
        pki
    }
}

fn next_serial() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A valid ID-card number (GB 11643-1999), distinct per `n`.
pub fn idcard(n: u32) -> String {
    let day = 1 + (n / 1000) % 28;
    let month = 1 + (n / 28_000) % 12;
    let year = 1970 + (n / 336_000) % 30;
    let first17 = format!("330102{year}{month:02}{day:02}{:03}", n % 1000);
    rollcall_platform::rules::idcard::with_check_char(&first17).expect("17 digits")
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks that the platform holds exactly `expected` (personId, recordTime) pairs for `sn`,
/// each once, and that they arrived in queue order (recordTime order here): receivedAt never
/// goes down as recordTime goes up.
pub async fn assert_exactly_once_in_order(
    platform: &TestPlatform,
    sn: &str,
    expected: &[(String, i64)],
) {
    let records = platform.records(sn).await;
    let mut got: Vec<(String, i64, i64)> = records
        .into_iter()
        .map(|r| (r.person_id, r.record_time, r.received_at))
        .collect();
    assert_eq!(
        got.len(),
        expected.len(),
        "every record stored exactly once"
    );
    got.sort_by_key(|r| r.1);
    let mut want = expected.to_vec();
    want.sort_by_key(|r| r.1);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!((&g.0, g.1), (&w.0, w.1), "the same records");
    }
    let out_of_order = got.windows(2).filter(|w| w[1].2 < w[0].2).count();
    assert_eq!(out_of_order, 0, "records arrive in queue order");
}
