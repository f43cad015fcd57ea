//! Crash safety of `rollcall serve`, from the outside: spawn the real binary, pipeline
//! sign-ins over TCP as a device would, SIGKILL the process mid-ingest, restart it on the
//! same data dir, and check that every record it acknowledged is stored exactly once.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::BytesMut;
use rollcall_protocol::envelope::{Request, Response};
use rollcall_protocol::frame::{self, FrameDecoder};
use rollcall_protocol::params::{self, AuthResponse, SignInResponse};
use rollcall_protocol::time::Timestamp;
use rollcall_protocol::{ApiCode, PROTOCOL_VERSION};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADMIN: &str = "crash-test-admin-token";
/// A 1×1 JPEG, so every record also writes a photo to the segment store.
const JPEG: &str = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDA0NDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q==";

struct Server {
    child: Child,
    http: String,
    tcp: String,
}

/// Starts the binary on free ports and reads the addresses it prints.
fn start(data_dir: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .args(["serve", "--data-dir"])
        .arg(data_dir)
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--tcp-addr",
            "127.0.0.1:0",
            "--admin-token",
            ADMIN,
            "--rate-limit",
            "off",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn rollcall");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut http, mut tcp) = (None, None);
    while http.is_none() || tcp.is_none() {
        let line = lines
            .next()
            .expect("rollcall exited before printing its addresses")
            .expect("read stdout");
        if let Some(rest) = line.split("device TCP:").nth(1) {
            tcp = Some(rest.trim().to_owned());
        }
        if let Some(rest) = line.split("device HTTP:").nth(1) {
            http = Some(rest.trim().trim_end_matches("/device/api").to_owned());
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        http: http.unwrap_or_default(),
        tcp: tcp.unwrap_or_default(),
    }
}

struct Device {
    sn: String,
    secret: String,
    token: String,
    stream: TcpStream,
    buf: BytesMut,
    seq: u64,
}

impl Device {
    async fn connect(addr: &str, sn: &str, vendor: &Value) -> Device {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut d = Device {
            sn: sn.to_owned(),
            secret: vendor["accessSecret"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            token: String::new(),
            stream,
            buf: BytesMut::new(),
            seq: 0,
        };
        let mut auth = Request {
            version: PROTOCOL_VERSION.into(),
            sn: sn.into(),
            apicode: ApiCode::Auth.as_str().into(),
            access_id: vendor["accessId"].as_str().unwrap_or_default().into(),
            access_key: vendor["accessKey"].as_str().unwrap_or_default().into(),
            time_stamp: now_wire(),
            ..Request::default()
        };
        auth.sign_with(ApiCode::Auth, &d.secret).unwrap();
        d.send(auth).await.unwrap();
        let resp = d.recv().await.expect("auth response");
        assert!(
            resp.verify(ApiCode::Auth, &d.secret),
            "auth response signed"
        );
        let token: AuthResponse = params::parse(resp.response_text().expect("token")).unwrap();
        d.token = token.token;
        d
    }

    fn sign_in(&mut self, person: u64, record_time: i64) -> Request {
        let param = json!({
            "personId": person.to_string(),
            "type": 1,
            "recordTime": record_time,
            "img": JPEG,
        })
        .to_string();
        self.seq += 1;
        let mut req = Request {
            version: PROTOCOL_VERSION.into(),
            sn: self.sn.clone(),
            token: self.token.clone(),
            apicode: ApiCode::SignIn.as_str().into(),
            time_stamp: now_wire(),
            param: Some(param),
            seq: self.seq,
            ..Request::default()
        };
        req.sign_with(ApiCode::SignIn, &self.secret).unwrap();
        req
    }

    async fn send(&mut self, req: Request) -> std::io::Result<()> {
        self.stream
            .write_all(&frame::encode_to_vec(&req.to_packet()))
            .await
    }

    /// The next response; `None` when the connection is gone.
    async fn recv(&mut self) -> Option<Response> {
        let dec = FrameDecoder::default();
        loop {
            if let Ok(Some(p)) = dec.decode(&mut self.buf) {
                return Some(Response::from_packet(p));
            }
            let n =
                tokio::time::timeout(Duration::from_secs(10), self.stream.read_buf(&mut self.buf))
                    .await
                    .ok()?
                    .ok()?;
            if n == 0 {
                return None;
            }
        }
    }
}

fn now_wire() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    Timestamp::from_epoch_ms(ms).to_wire()
}

async fn admin_post(http: &str, path: &str, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{http}/api/v1{path}"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .expect("admin request");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.expect("admin json")
}

/// Every stored record of `sn`, keyed by (personId, recordTime) → recordIds.
async fn stored(http: &str, sn: &str) -> HashMap<(String, i64), Vec<String>> {
    let client = reqwest::Client::new();
    let mut out: HashMap<(String, i64), Vec<String>> = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{http}/api/v1/attendance?sn={sn}&limit=1000");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = client
            .get(url)
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("attendance")
            .json()
            .await
            .expect("attendance json");
        for r in page["records"].as_array().expect("records") {
            let key = (
                r["personId"].as_str().unwrap_or_default().to_owned(),
                r["recordTime"].as_i64().unwrap_or_default(),
            );
            out.entry(key)
                .or_default()
                .push(r["recordId"].as_str().unwrap_or_default().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_record_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let vendor = admin_post(&server.http, "/vendors", json!({"name": "crash"})).await;
    let mut device = Device::connect(&server.tcp, "CRASH-1", &vendor).await;

    // Pipeline sign-ins in windows of 32 and kill the server while a window is in flight.
    let base = 1_700_000_000_000_i64 + (std::process::id() as i64) * 1000;
    let mut acked: HashMap<(String, i64), String> = HashMap::new();
    let mut sent = 0u64;
    let kill_after = 400;
    'outer: loop {
        let window: Vec<Request> = (0..32)
            .map(|i| device.sign_in(1000 + (sent + i) % 50, base + (sent + i) as i64))
            .collect();
        let keys: Vec<(String, i64)> = window
            .iter()
            .map(|r| {
                let v: Value = serde_json::from_str(r.param.as_deref().unwrap()).unwrap();
                (
                    v["personId"].as_str().unwrap().to_owned(),
                    v["recordTime"].as_i64().unwrap(),
                )
            })
            .collect();
        for r in window {
            if device.send(r).await.is_err() {
                break 'outer;
            }
        }
        sent += 32;
        if acked.len() >= kill_after {
            server.child.kill().expect("SIGKILL");
        }
        for key in keys {
            match device.recv().await {
                Some(resp) if resp.success() => {
                    let r: SignInResponse = params::parse(resp.response_text().unwrap()).unwrap();
                    acked.insert(key, r.record_id);
                }
                Some(resp) => panic!("sign-in refused: {:?}", resp.outcome),
                None => break 'outer,
            }
        }
    }
    let _ = server.child.wait();
    assert!(
        acked.len() >= kill_after,
        "acknowledged {} before the kill",
        acked.len()
    );

    // Restart on the same data dir: every acknowledged record is there, once, same id.
    let mut server = start(dir.path());
    let stored = stored(&server.http, "CRASH-1").await;
    for (key, record_id) in &acked {
        let ids = stored
            .get(key)
            .unwrap_or_else(|| panic!("acknowledged record {key:?} lost"));
        assert_eq!(ids, &vec![record_id.clone()], "record {key:?} stored once");
    }
    assert!(
        stored.values().all(|ids| ids.len() == 1),
        "nothing stored twice"
    );

    // Resending what was acknowledged stores nothing new.
    let mut device = Device::connect(&server.tcp, "CRASH-1", &vendor).await;
    let resend: Vec<((String, i64), String)> = acked
        .iter()
        .take(50)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for ((person, time), _) in &resend {
        let req = device.sign_in(person.parse().unwrap(), *time);
        device.send(req).await.unwrap();
    }
    for (_, record_id) in &resend {
        let resp = device.recv().await.expect("resend answer");
        let r: SignInResponse = params::parse(resp.response_text().unwrap()).unwrap();
        assert!(r.duplicate);
        assert_eq!(&r.record_id, record_id);
    }
    assert_eq!(stored_len(&server.http).await, stored.len());
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

async fn stored_len(http: &str) -> usize {
    stored(http, "CRASH-1").await.len()
}
