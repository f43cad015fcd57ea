//! The harness: a real platform in-process on `127.0.0.1:0`, devices that speak TCP and
//! HTTP exactly as a device would (every request signed with the protocol crate, every
//! response checked with `Response::verify`), and fixtures.
//!
//! Fixtures are made and read back through the admin API (`app.admin()`, bearer token), as
//! an operator would; `app.store()` / `app.state()` reach inside only for what no endpoint
//! shows (the durable presence history after a shutdown, the connection registry).
//!
//! Nothing sleeps to synchronise: listeners are bound before the platform runs, responses
//! are awaited, and eventually-consistent state (write-behind flushes) is polled with a
//! deadline ([`eventually`]).

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use rollcall_client::{
    AdminClient, AttendanceQuery, DevicePatch, Method, NewDevice, NewProject, NewTask, NewUser,
    NewVendor, NewWorker,
};
use rollcall_platform::config::Settings;
use rollcall_platform::state::AppState;
use rollcall_platform::store::Store;
use rollcall_platform::store::faulty::FaultyStore;
use rollcall_platform::store::sql::SqlStore;
use rollcall_platform::store::test_db::{TEST_SECRET_KEY, TestDb};
pub use rollcall_platform::util::now_ms;
use rollcall_platform::{Listeners, Platform, StartupError};
use rollcall_protocol::envelope::{Command, Request, Response};
use rollcall_protocol::frame::{self, FrameDecoder};
use rollcall_protocol::ids::Secret;
use rollcall_protocol::params::{self, AuthResponse, HeartbeatResponse, SignInResponse};
use rollcall_protocol::time::Timestamp;
use rollcall_protocol::{ApiCode, ErrorCode, PROTOCOL_VERSION, Packet, ProtocolError};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The admin token every test platform is started with.
pub const ADMIN_TOKEN: &str = "test-admin-token-5f2c9a1e7b3d4c6a";
/// A JPEG face (tests/data, copied from the shared fixtures).
pub const FACE_JPG: &[u8] = include_bytes!("../data/face1.jpg");
/// A PNG face.
pub const FACE_PNG: &[u8] = include_bytes!("../data/face3.png");
/// How long a test waits for anything that should happen (a response, a push, a flush).
pub const WAIT: Duration = Duration::from_secs(10);

/// A running platform with its own temporary data directory.
pub struct TestApp {
    pub tcp_addr: SocketAddr,
    /// `http://127.0.0.1:{port}`, also the platform's `public_url`.
    pub base_url: String,
    /// A plain HTTP client (no credentials).
    pub http: reqwest::Client,
    /// The platform's shared state (see [`TestApp::state`]).
    state: Option<AppState>,
    settings: Settings,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), StartupError>>>,
    /// `None` for a second node ([`TestApp::join`]): the first node owns the database.
    _db: Option<TestDb>,
    _dir: tempfile::TempDir,
}

/// One started platform.
struct Running {
    tcp_addr: SocketAddr,
    base_url: String,
    state: AppState,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<Result<(), StartupError>>,
}

/// Binds both listeners on port 0, builds the platform and runs it. Listeners are bound
/// before `run`, so the platform is ready when this returns.
async fn start(settings: Settings, store: Option<Arc<dyn Store>>) -> Running {
    let http = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind tcp");
    let http_addr = http.local_addr().expect("http addr");
    let tcp_addr = tcp.local_addr().expect("tcp addr");
    let base_url = settings.public_url_for(http_addr);
    let platform = match store {
        Some(store) => Platform::build_with_store(settings, &base_url, store).await,
        None => Platform::build(settings, &base_url).await,
    }
    .expect("platform builds");
    let state = platform.state();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(platform.run(Listeners { http, tcp }, async move {
        let _ = rx.await;
    }));
    Running {
        tcp_addr,
        base_url,
        state,
        shutdown: tx,
        server,
    }
}

impl TestApp {
    /// A platform with the test defaults (fast write-behind, a known admin token).
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// A platform with settings adjusted by `f`.
    pub async fn spawn_with(f: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = TestDb::new("api", dir.path());
        // Open (and migrate) the database first: on PostgreSQL this creates the schema.
        let store: Arc<dyn Store> = Arc::new(db.open().await.expect("open the test database"));
        Self::spawn_in(dir, db, f, Some(store)).await
    }

    /// A platform that opens its store from the settings, as `rollcall serve` does (the
    /// secret key and the key file included), with settings adjusted by `f`.
    pub async fn spawn_from_settings(f: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = TestDb::new("api", dir.path());
        // On PostgreSQL this creates the schema the settings' URL names.
        db.open()
            .await
            .expect("open the test database")
            .close()
            .await;
        Self::spawn_in(dir, db, f, None).await
    }

    /// Another node on this platform's database, on a data dir of its own, with settings
    /// adjusted by `f` (start from this node's settings: same secret key and admin token).
    pub async fn join(&self, f: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings {
            data_dir: dir.path().to_owned(),
            public_url: None,
            ..self.settings.clone()
        };
        f(&mut settings);
        let run = start(settings.clone(), None).await;
        Self::running(run, settings, None, dir)
    }

    /// A platform over a [`FaultyStore`], for 500_01.
    pub async fn spawn_faulty() -> (TestApp, Arc<FaultyStore<SqlStore>>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = TestDb::new("api", dir.path());
        let inner = db.open().await.expect("open the test database");
        let faulty = Arc::new(FaultyStore::new(inner));
        let store: Arc<dyn Store> = faulty.clone();
        let app = Self::spawn_in(dir, db, |_| {}, Some(store)).await;
        (app, faulty)
    }

    async fn spawn_in(
        dir: tempfile::TempDir,
        db: TestDb,
        f: impl FnOnce(&mut Settings),
        store: Option<Arc<dyn Store>>,
    ) -> TestApp {
        let mut settings = Settings {
            data_dir: dir.path().to_owned(),
            database_url: Some(db.url.clone()),
            admin_token: Some(Secret::new(ADMIN_TOKEN)),
            // The test store's key, so a restart (which opens the store from the settings)
            // opens what the first start sealed.
            secret_key: Some(Secret::new(TEST_SECRET_KEY)),
            flush_interval_ms: 50,
            ..Settings::default()
        };
        f(&mut settings);
        let run = start(settings.clone(), store).await;
        Self::running(run, settings, Some(db), dir)
    }

    fn running(
        run: Running,
        settings: Settings,
        db: Option<TestDb>,
        dir: tempfile::TempDir,
    ) -> TestApp {
        TestApp {
            tcp_addr: run.tcp_addr,
            base_url: run.base_url,
            state: Some(run.state),
            http: reqwest::Client::new(),
            settings,
            shutdown: Some(run.shutdown),
            server: Some(run.server),
            _db: db,
            _dir: dir,
        }
    }

    /// Stops the platform and waits until it has drained and flushed. The data directory
    /// and the store stay readable.
    pub async fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(WAIT, server)
                .await
                .expect("platform shuts down in time")
                .expect("platform task")
                .expect("platform ran cleanly");
        }
    }

    /// Shuts down and lets go of the platform's state, so another process may open its files
    /// (the photo store's lock included).
    pub async fn stop(&mut self) {
        self.shutdown().await;
        self.state = None;
    }

    /// Shuts down gracefully, then starts a new platform on the same data directory (new
    /// ports: devices reconnect).
    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await;
    }

    /// [`TestApp::restart`] with settings changed by `f` (kept for later restarts).
    pub async fn restart_with(&mut self, f: impl FnOnce(&mut Settings)) {
        self.shutdown().await;
        f(&mut self.settings);
        // The photo segment store stays locked while anything holds the old state.
        self.state = None;
        let run = start(self.settings.clone(), None).await;
        self.tcp_addr = run.tcp_addr;
        self.base_url = run.base_url;
        self.state = Some(run.state);
        self.shutdown = Some(run.shutdown);
        self.server = Some(run.server);
    }

    /// The settings the platform was (last) started with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The platform's shared state: store, registry, presence, files.
    pub fn state(&self) -> &AppState {
        self.state.as_ref().expect("a platform state")
    }

    pub fn store(&self) -> &dyn Store {
        self.state().store.as_ref()
    }

    /// The admin API client (bearer token set).
    pub fn admin(&self) -> Admin {
        self.api_as(ADMIN_TOKEN)
    }

    /// The admin API with another bearer token (a personal `rcp_` token).
    pub fn api_as(&self, token: &str) -> Admin {
        Admin(AdminClient::with_http(
            self.http.clone(),
            &self.base_url,
            token,
        ))
    }

    /// Signs in (`POST /api/v1/login`): the `Cookie` header value and the CSRF token.
    pub async fn login(&self, username: &str, password: &str) -> (String, String) {
        let s = self
            .admin()
            .0
            .login(username, password)
            .await
            .unwrap_or_else(|e| panic!("login of {username}: {e}"));
        assert!(!s.cookie.is_empty(), "a session cookie");
        (s.cookie, s.csrf_token)
    }

    /// A console user with a personal API token (`POST /users`, `POST /login`,
    /// `POST /me/tokens`): returns the user id and the API as that user.
    pub async fn user(&self, username: &str, role: &str, projects: &[&str]) -> (String, Admin) {
        let admin = self.admin().0;
        let created = admin
            .create_user(&NewUser {
                username: username.to_owned(),
                display_name: None,
                password: "密码-12345678".to_owned(),
                role: role.to_owned(),
                project_ids: projects.iter().map(|p| (*p).to_owned()).collect(),
            })
            .await
            .expect("create a user");
        let token = admin
            .personal_token(username, "密码-12345678", "测试")
            .await
            .expect("a personal token")
            .token
            .expect("the token's text");
        (created.id, self.api_as(&token))
    }

    // --- fixtures, through the admin API ---------------------------------------------------

    /// A new vendor with fresh credentials (`POST /vendors`).
    pub async fn vendor(&self) -> VendorCreds {
        self.vendor_with_key(None).await
    }

    /// A new vendor that registered an RSA public key (ZJ-JWE-01).
    pub async fn vendor_with_key(&self, rsa_public_key: Option<&str>) -> VendorCreds {
        let body = NewVendor {
            name: "测试厂商".to_owned(),
            rsa_public_key: rsa_public_key.map(str::to_owned),
        };
        let v = self.client().create_vendor(&body).await.expect("a vendor");
        VendorCreds {
            id: v.id,
            access_id: v.access_id,
            access_key: v.access_key,
            secret: v.access_secret,
        }
    }

    /// Rotates a vendor's credentials; the old pair stops working.
    pub async fn rotate(&self, vendor: &VendorCreds) -> VendorCreds {
        let c = self
            .client()
            .rotate_vendor_credentials(&vendor.id)
            .await
            .expect("rotated credentials");
        VendorCreds {
            id: vendor.id.clone(),
            access_id: c.access_id,
            access_key: c.access_key,
            secret: c.access_secret,
        }
    }

    /// A new project, optionally fenced (GCJ-02); its id.
    pub async fn project(&self, fence: Option<Value>) -> String {
        let body = NewProject {
            name: "西湖工地".to_owned(),
            fence,
            ..NewProject::default()
        };
        self.client()
            .create_project(&body)
            .await
            .expect("a project")
            .id
    }

    /// Registers a face device for a vendor (`POST /devices`), bound to `project` when given
    /// (which makes its T_SEND_PERSON).
    pub async fn register_device(&self, sn: &str, vendor: &VendorCreds, project: Option<&str>) {
        self.register_device_of_kind(sn, vendor, project, "face")
            .await;
    }

    /// Registers a device of a given kind (`face`, `collector`, …).
    pub async fn register_device_of_kind(
        &self,
        sn: &str,
        vendor: &VendorCreds,
        project: Option<&str>,
        kind: &str,
    ) {
        let body = NewDevice {
            sn: sn.to_owned(),
            vendor_id: vendor.id.clone(),
            project_id: project.map(str::to_owned),
            kind: kind.to_owned(),
            ..NewDevice::default()
        };
        self.client()
            .create_device(&body)
            .await
            .expect("a registered device");
    }

    /// Binds (or, with `None`, unbinds) a device (`PATCH /devices/{sn}`).
    pub async fn bind(&self, sn: &str, project: Option<&str>) {
        let body = DevicePatch {
            project_id: Some(project.map(str::to_owned)),
            ..DevicePatch::default()
        };
        self.client().patch_device(sn, &body).await.expect("bound");
    }

    pub async fn set_enabled(&self, sn: &str, enabled: bool) {
        let body = DevicePatch {
            enabled: Some(enabled),
            ..DevicePatch::default()
        };
        self.client()
            .patch_device(sn, &body)
            .await
            .expect("patched");
    }

    /// Enrols a worker with a valid ID-card number and the JPEG face (`POST /workers`);
    /// returns the person id.
    pub async fn worker(&self, name: &str) -> i64 {
        self.worker_with_idcard(name, &next_idcard_number()).await
    }

    /// A worker with a face photo and this ID number (a test that looks for it elsewhere).
    pub async fn worker_with_idcard(&self, name: &str, idcard: &str) -> i64 {
        let body = NewWorker {
            idcard_no: idcard.to_owned(),
            name: name.to_owned(),
            face_photo: b64(FACE_JPG),
            ..NewWorker::default()
        };
        let w = self.client().create_worker(&body).await.expect("a worker");
        w.person_id.parse().expect("decimal personId")
    }

    /// Workers join a project (`POST /projects/{id}/workers`): every device of the project
    /// gets an update task, pushed at once to connected ones.
    pub async fn assign(&self, project: &str, persons: &[i64]) {
        let ids: Vec<String> = persons.iter().map(i64::to_string).collect();
        self.client()
            .join_project(project, &ids)
            .await
            .expect("joined");
    }

    /// A worker leaves a project (`DELETE /projects/{id}/workers/{personId}`).
    pub async fn unassign(&self, project: &str, person: i64) {
        self.client()
            .leave_project(project, &person.to_string())
            .await
            .expect("left");
    }

    /// A task for a device (`POST /devices/{sn}/tasks`).
    pub async fn task(&self, sn: &str, api: ApiCode, param: Option<Value>) -> TaskInfo {
        let body = NewTask {
            apicode: api.as_str().to_owned(),
            param,
        };
        self.client().create_task(sn, &body).await.expect("a task")
    }

    // --- reading back, through the admin API -----------------------------------------------

    /// `GET /devices/{sn}`; `None` when the sn is not registered.
    pub async fn device_info(&self, sn: &str) -> Option<DeviceInfo> {
        match self.client().device(sn).await {
            Ok(d) => Some(d),
            Err(e) if e.status() == Some(404) => None,
            Err(e) => panic!("a device: {e}"),
        }
    }

    /// `GET /devices/{sn}/tasks`, oldest first.
    pub async fn tasks_of(&self, sn: &str) -> Vec<TaskInfo> {
        let mut tasks = self
            .client()
            .device_tasks(sn, 1000)
            .await
            .expect("a task list");
        tasks.sort_by_key(|t| t.taskid.parse::<i64>().expect("numeric taskid"));
        tasks
    }

    /// One task of a device, as `GET /devices/{sn}/tasks` shows it.
    pub async fn task_info(&self, sn: &str, taskid: &str) -> TaskInfo {
        self.tasks_of(sn)
            .await
            .into_iter()
            .find(|t| t.taskid == taskid)
            .unwrap_or_else(|| panic!("task {taskid} of {sn}"))
    }

    /// `GET /devices/{sn}/presence`.
    pub async fn presence(&self, sn: &str) -> PresenceInfo {
        self.client().device_presence(sn).await.expect("presence")
    }

    /// `GET /devices/{sn}/persons`: per-person sync state.
    pub async fn person_sync(&self, sn: &str) -> Vec<Value> {
        let v = self
            .admin()
            .get(&format!("/devices/{sn}/persons"))
            .await
            .expect(200);
        v["persons"].as_array().expect("persons").clone()
    }

    /// `GET /attendance?sn=…`: the device's records, newest first.
    pub async fn records(&self, sn: &str) -> Vec<Record> {
        let q = AttendanceQuery {
            sn: Some(sn.to_owned()),
            limit: Some(1000),
            ..AttendanceQuery::default()
        };
        self.client().attendance(&q).await.expect("records").records
    }

    /// `GET /attendance?personId=…`: one worker's records, newest first, `limit` per page from
    /// `cursor`; returns the page and the next cursor.
    pub async fn records_of_person(
        &self,
        person_id: &str,
        limit: u32,
        cursor: Option<String>,
    ) -> (Vec<Record>, Option<String>) {
        let q = AttendanceQuery {
            person_id: Some(person_id.to_owned()),
            limit: Some(limit),
            cursor,
            ..AttendanceQuery::default()
        };
        let page = self.client().attendance(&q).await.expect("records");
        (page.records, page.next_cursor)
    }

    /// The record answered with `record_id`.
    pub async fn record(&self, sn: &str, record_id: &str) -> Record {
        self.records(sn)
            .await
            .into_iter()
            .find(|r| r.record_id == record_id)
            .unwrap_or_else(|| panic!("record {record_id} is listed"))
    }

    // --- devices -------------------------------------------------------------------------

    /// A device connected over TCP (not yet authenticated).
    pub async fn device(&self, vendor: &VendorCreds, sn: &str) -> TestDevice {
        TestDevice::connect(self.tcp_addr, Identity::new(sn, vendor)).await
    }

    /// A device speaking `POST /device/api`.
    pub fn http_device(&self, vendor: &VendorCreds, sn: &str) -> HttpDevice {
        self.http_device_as(Identity::new(sn, vendor))
    }

    /// An HTTP device with a known identity (e.g. its token from before a restart).
    pub fn http_device_as(&self, id: Identity) -> HttpDevice {
        HttpDevice {
            id,
            http: self.http.clone(),
            base: self.base_url.clone(),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The admin API, `Authorization: Bearer` set: [`AdminClient`] with status-asserting
/// `get`/`post`/`patch`/`delete` for tests that look at the raw answer.
#[derive(Clone)]
pub struct Admin(pub AdminClient);

/// An admin API answer: status and JSON body.
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
}

impl ApiResponse {
    /// Asserts the status; returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status, status, "admin API answered {}", self.body);
        self.body
    }
}

impl Admin {
    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> ApiResponse {
        let r = self.0.send(method, path, body).await.expect("admin API");
        ApiResponse {
            status: r.status,
            body: r.body,
        }
    }

    pub async fn get(&self, path: &str) -> ApiResponse {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> ApiResponse {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> ApiResponse {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> ApiResponse {
        self.send(Method::DELETE, path, None).await
    }
}

/// `GET /attendance` → one record.
pub type Record = rollcall_client::AttendanceRecord;
/// `GET /devices/{sn}`.
pub type DeviceInfo = rollcall_client::Device;
/// `GET /devices/{sn}/tasks` → one task.
pub type TaskInfo = rollcall_client::Task;
pub type Failure = rollcall_client::TaskFailure;
/// `GET /devices/{sn}/presence`.
pub type PresenceInfo = rollcall_client::Presence;

/// A vendor's credentials as a device holds them.
#[derive(Debug, Clone)]
pub struct VendorCreds {
    pub id: String,
    pub access_id: String,
    pub access_key: String,
    pub secret: String,
}

/// Who a device is: its sn, its vendor's credentials, and its token once it has one.
#[derive(Debug, Clone)]
pub struct Identity {
    pub sn: String,
    pub vendor: VendorCreds,
    pub token: String,
}

impl Identity {
    pub fn new(sn: &str, vendor: &VendorCreds) -> Self {
        Identity {
            sn: sn.to_owned(),
            vendor: vendor.clone(),
            token: String::new(),
        }
    }

    /// An unsigned request of `api`: credentials for C_AUTH, the token otherwise, a fresh
    /// timeStamp where the apicode signs one.
    pub fn request(&self, api: ApiCode, param: Option<&str>) -> Request {
        let mut req = Request {
            version: PROTOCOL_VERSION.to_owned(),
            sn: self.sn.clone(),
            apicode: api.as_str().to_owned(),
            param: param.map(str::to_owned),
            ..Request::default()
        };
        if api == ApiCode::Auth {
            req.access_id = self.vendor.access_id.clone();
            req.access_key = self.vendor.access_key.clone();
        } else {
            req.token = self.token.clone();
        }
        if api.requires_timestamp() {
            req.time_stamp = now_stamp();
        }
        req
    }

    /// A signed request of `api`.
    pub fn signed(&self, api: ApiCode, param: Option<&str>) -> Request {
        let mut req = self.request(api, param);
        self.sign(&mut req);
        req
    }

    /// A signed task request (taskid set).
    pub fn task_request(&self, api: ApiCode, taskid: &str, param: Option<&str>) -> Request {
        let mut req = self.request(api, param);
        req.taskid = taskid.to_owned();
        self.sign(&mut req);
        req
    }

    /// (Re)signs a request after a test changed it, by its apicode.
    pub fn sign(&self, req: &mut Request) {
        let api: ApiCode = req.apicode.parse().expect("known apicode to sign");
        req.sign_with(api, &self.vendor.secret)
            .expect("sign request");
    }

    /// Asserts a success signed with this device's secret; returns the response text.
    pub fn ok(&self, resp: &Response, api: ApiCode) -> Option<String> {
        expect_ok(resp, api, &self.vendor.secret)
    }
}

/// A heartbeat param.
pub fn heartbeat_param() -> String {
    json!({"deviceVersion": "FW-1.2.3", "deviceIp": "10.1.2.3"}).to_string()
}

/// A C_SIGN_IN param: person, type, recordTime (add members with `obj[...] = …`).
pub fn sign_in_param(person_id: &str, r#type: u32, record_time: i64) -> Value {
    json!({"personId": person_id, "type": r#type, "recordTime": record_time})
}

/// Now as a wire timeStamp.
pub fn now_stamp() -> String {
    Timestamp::from_epoch_ms(now_ms()).to_wire()
}

/// Asserts a successful response whose sign verifies with `secret`; returns its text.
#[track_caller]
pub fn expect_ok(resp: &Response, api: ApiCode, secret: &str) -> Option<String> {
    match &resp.outcome {
        Ok(_) => {}
        Err(e) => panic!("{api} failed: {e}"),
    }
    assert!(resp.verify(api, secret), "{api} response sign verifies");
    resp.response_text().map(str::to_owned)
}

/// Asserts an error with `code`; returns it.
#[track_caller]
pub fn expect_err(resp: &Response, code: ErrorCode) -> ProtocolError {
    match &resp.outcome {
        Ok(r) => panic!("expected {code}, got success {r:?}"),
        Err(e) => {
            assert_eq!(e.code, code, "error code (got {e})");
            e.clone()
        }
    }
}

/// A valid citizen ID-card number (GB 11643-1999), different at every call.
pub fn next_idcard_number() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // Born 1980-01-01 + n/1000 days (kept within valid days of January..), sequence n%1000.
    let day = 1 + (n / 1000) % 28;
    let month = 1 + (n / 28_000) % 12;
    idcard_with_check(&format!("330102{}{month:02}{day:02}{:03}", 1980, n % 1000))
}

/// Appends the GB 11643 check character to 17 digits.
pub fn idcard_with_check(first17: &str) -> String {
    rollcall_platform::rules::idcard::with_check_char(first17).expect("17 digits")
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Polls `f` every 20 ms until it returns `Some`, for at most [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Fetches a URL; returns status and body.
pub async fn fetch(http: &reqwest::Client, url: &str) -> (u16, Vec<u8>) {
    let r = http.get(url).send().await.expect("GET");
    let status = r.status().as_u16();
    (status, r.bytes().await.expect("body").to_vec())
}

// --- TCP ----------------------------------------------------------------------------------

/// A device on one TCP connection. Commands that arrive while a response is awaited are
/// kept for [`TestDevice::expect_command`].
pub struct TestDevice {
    pub id: Identity,
    stream: TcpStream,
    buf: BytesMut,
    decoder: FrameDecoder,
    next_seq: u64,
    commands: VecDeque<Packet>,
}

impl TestDevice {
    pub async fn connect(addr: SocketAddr, id: Identity) -> TestDevice {
        let stream = TcpStream::connect(addr).await.expect("connect tcp");
        Self::over(stream, id)
    }

    /// A device over a stream the test connected itself (e.g. with a tiny receive buffer).
    pub fn over(stream: TcpStream, id: Identity) -> TestDevice {
        stream.set_nodelay(true).expect("nodelay");
        TestDevice {
            id,
            stream,
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(64 * 1024 * 1024),
            next_seq: 1,
            commands: VecDeque::new(),
        }
    }

    /// Writes one request (a `seq` is assigned when it has none); returns its seq.
    pub async fn send(&mut self, req: Request) -> u64 {
        self.send_many(vec![req]).await[0]
    }

    /// Writes many requests in one go, without waiting for any answer.
    pub async fn send_many(&mut self, reqs: Vec<Request>) -> Vec<u64> {
        let mut out = BytesMut::new();
        let mut seqs = Vec::with_capacity(reqs.len());
        for mut req in reqs {
            if req.seq == 0 {
                req.seq = self.next_seq;
                self.next_seq += 1;
            }
            seqs.push(req.seq);
            frame::encode(&req.to_packet(), &mut out);
        }
        self.send_bytes(&out).await;
        seqs
    }

    /// Writes `bytes` whole, or fails (e.g. once the platform has dropped the connection).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
        self.stream.flush().await.expect("flush");
    }

    /// The next packet, or `None` when the platform closed the connection.
    pub async fn recv_packet(&mut self) -> Option<Packet> {
        loop {
            if let Some(p) = self.decoder.decode(&mut self.buf).expect("valid frames") {
                return Some(p);
            }
            self.buf.reserve(64 * 1024);
            let n = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("a packet arrives in time");
            match n {
                Ok(0) => {
                    assert!(self.buf.is_empty(), "connection closed mid-frame");
                    return None;
                }
                Ok(_) => {}
                // A reset after the platform closed is a close too.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// The next response (commands arriving first are kept).
    pub async fn recv(&mut self) -> Response {
        loop {
            let p = self.recv_packet().await.expect("a response, not a close");
            if is_command(&p) {
                self.commands.push_back(p);
            } else {
                return Response::from_packet(p);
            }
        }
    }

    /// Sends one request and reads its response.
    pub async fn call(&mut self, req: Request) -> Response {
        let seq = self.send(req).await;
        let resp = self.recv().await;
        assert_eq!(resp.seq, seq, "the response echoes the request's seq");
        resp
    }

    /// C_AUTH; keeps and returns the token.
    pub async fn auth(&mut self) -> String {
        let resp = self.call(self.id.signed(ApiCode::Auth, None)).await;
        let text = self.id.ok(&resp, ApiCode::Auth).expect("auth response");
        let token = params::parse::<AuthResponse>(&text).expect("token").token;
        self.id.token = token.clone();
        token
    }

    /// C_HEARTBEAT; returns the due task ids.
    pub async fn heartbeat(&mut self) -> Vec<String> {
        let req = self.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));
        let resp = self.call(req).await;
        let text = self
            .id
            .ok(&resp, ApiCode::Heartbeat)
            .expect("heartbeat response");
        params::parse::<HeartbeatResponse>(&text)
            .expect("heartbeat response")
            .taskids
    }

    /// C_SIGN_IN that must succeed.
    pub async fn sign_in(&mut self, param: &Value) -> SignInResponse {
        let req = self.id.signed(ApiCode::SignIn, Some(&param.to_string()));
        let resp = self.call(req).await;
        let text = self
            .id
            .ok(&resp, ApiCode::SignIn)
            .expect("sign-in response");
        params::parse(&text).expect("sign-in response")
    }

    /// The next pushed command, its sign verified with the vendor's secret.
    pub async fn expect_command(&mut self) -> Command {
        let p = match self.commands.pop_front() {
            Some(p) => p,
            None => {
                let p = self.recv_packet().await.expect("a command, not a close");
                assert!(is_command(&p), "expected a command, got {p:?}");
                p
            }
        };
        let cmd = Command::from_packet(&p).expect("a task command");
        assert_eq!(cmd.sn, self.id.sn, "the command names this device");
        assert!(
            cmd.verify(&self.id.vendor.secret, &p.sign),
            "the command's sign verifies"
        );
        cmd
    }

    /// Reads until the platform closes the connection; returns what came before.
    pub async fn expect_closed(&mut self) -> Vec<Packet> {
        let mut packets = Vec::new();
        while let Some(p) = self.recv_packet().await {
            packets.push(p);
        }
        packets
    }
}

/// A command carries the device's sn; a response never does.
fn is_command(p: &Packet) -> bool {
    !p.sn.is_empty() && !p.taskid.is_empty()
}

// --- HTTP ---------------------------------------------------------------------------------

/// A device speaking `POST /device/api`.
pub struct HttpDevice {
    pub id: Identity,
    http: reqwest::Client,
    base: String,
}

impl HttpDevice {
    /// Posts a body to `/device/api{suffix}`; returns the HTTP status and the body text.
    pub async fn post_raw(&self, suffix: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
        let r = self
            .http
            .post(format!("{}/device/api{suffix}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST /device/api");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    /// Posts a body and reads the protocol response (HTTP 200 required).
    pub async fn post_body(&self, suffix: &str, body: impl Into<reqwest::Body>) -> Response {
        let (status, text) = self.post_raw(suffix, body).await;
        assert_eq!(status, 200, "protocol answers are HTTP 200: {text}");
        Response::from_http_body(text.as_bytes()).expect("a protocol response body")
    }

    pub async fn call(&self, req: &Request) -> Response {
        self.post_body("", req.to_http_json()).await
    }

    pub async fn auth(&mut self) -> String {
        let resp = self.call(&self.id.signed(ApiCode::Auth, None)).await;
        let text = self.id.ok(&resp, ApiCode::Auth).expect("auth response");
        let token = params::parse::<AuthResponse>(&text).expect("token").token;
        self.id.token = token.clone();
        token
    }

    pub async fn heartbeat(&self) -> Vec<String> {
        let req = self.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));
        let resp = self.call(&req).await;
        let text = self
            .id
            .ok(&resp, ApiCode::Heartbeat)
            .expect("heartbeat response");
        params::parse::<HeartbeatResponse>(&text)
            .expect("heartbeat response")
            .taskids
    }

    pub async fn sign_in(&self, param: &Value) -> SignInResponse {
        let req = self.id.signed(ApiCode::SignIn, Some(&param.to_string()));
        let resp = self.call(&req).await;
        let text = self
            .id
            .ok(&resp, ApiCode::SignIn)
            .expect("sign-in response");
        params::parse(&text).expect("sign-in response")
    }

    /// T_GET_TASKS.
    pub async fn get_tasks(&self, taskids: &[String]) -> params::GetTasksResponse {
        let param = json!({ "taskids": taskids }).to_string();
        let resp = self
            .call(&self.id.signed(ApiCode::GetTasks, Some(&param)))
            .await;
        let text = self.id.ok(&resp, ApiCode::GetTasks).expect("tasks");
        params::parse(&text).expect("T_GET_TASKS response")
    }

    /// A task interface called with a taskid.
    pub async fn task(&self, api: ApiCode, taskid: &str, param: Option<&str>) -> Response {
        self.call(&self.id.task_request(api, taskid, param)).await
    }

    /// One page of T_SEND_PERSON / T_UPDATE_DEVICE_PERSON.
    pub async fn page(
        &self,
        api: ApiCode,
        taskid: &str,
        page: u32,
        size: Option<u32>,
    ) -> params::PersonPage {
        let mut p = json!({ "currentPage": page });
        if let Some(size) = size {
            p["size"] = size.into();
        }
        let resp = self.task(api, taskid, Some(&p.to_string())).await;
        let text = self.id.ok(&resp, api).expect("a page");
        params::parse(&text).expect("a person page")
    }

    /// T_UPDATE_TASKS_STATUS that must be acknowledged.
    pub async fn update_status(&self, param: &Value) {
        let req = self
            .id
            .signed(ApiCode::UpdateTasksStatus, Some(&param.to_string()));
        let resp = self.call(&req).await;
        assert_eq!(
            self.id.ok(&resp, ApiCode::UpdateTasksStatus),
            None,
            "an acknowledgement"
        );
    }
}

/// A `multipart/form-data` body of `(name, filename, bytes)` parts (filename `None` for a
/// plain field): the content type and the body.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "rollcall-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let disposition = match filename {
            Some(f) => format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            ),
            None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"),
        };
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl TestApp {
    /// Posts a multipart form to the admin API with the root token.
    pub async fn post_multipart(
        &self,
        path: &str,
        parts: &[(&str, Option<&str>, &[u8])],
    ) -> ApiResponse {
        let (content_type, body) = multipart(parts);
        let r = self
            .client()
            .send_bytes(Method::POST, path, &content_type, body)
            .await
            .expect("multipart post");
        ApiResponse {
            status: r.status,
            body: r.body,
        }
    }

    /// A GET with the root token, as raw bytes.
    pub async fn download(&self, path: &str) -> (u16, Vec<u8>) {
        self.client().download(path).await.expect("download")
    }

    /// The admin API with the root token, typed.
    fn client(&self) -> AdminClient {
        self.admin().0
    }
}
