//! What the binary's tests share: starting `rollcall serve` as a child process and reading
//! the addresses it prints, a TCP device speaking the protocol through the protocol crate, and
//! the admin API through `rollcall-client`.
#![allow(dead_code)] // each test binary uses its own subset

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::BytesMut;
use rollcall_client::{AdminClient, AttendanceQuery, NewVendor, VendorCreated};
use rollcall_protocol::envelope::{Request, Response};
use rollcall_protocol::frame::{self, FrameDecoder};
use rollcall_protocol::params::{self, AuthResponse};
use rollcall_protocol::time::Timestamp;
use rollcall_protocol::{ApiCode, PROTOCOL_VERSION};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const ADMIN: &str = "crash-test-admin-token";
/// A 1×1 JPEG, so every record also writes a photo to the segment store.
pub const JPEG: &str = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDA0NDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q==";

pub struct Server {
    pub child: Child,
    pub http: String,
    pub tcp: String,
}

/// Starts the binary on free ports and reads the addresses it prints.
pub fn start(data_dir: &Path) -> Server {
    start_with(data_dir, &[], &[])
}

/// [`start`] with extra flags and environment variables.
pub fn start_with(data_dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
    start_at(data_dir, "127.0.0.1:0", "127.0.0.1:0", args, envs)
}

/// [`start_with`] on given addresses (a node behind a load balancer keeps its ports across
/// restarts).
pub fn start_at(
    data_dir: &Path,
    http_addr: &str,
    tcp_addr: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .args(["serve", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .envs(envs.iter().copied())
        .args([
            "--http-addr",
            http_addr,
            "--tcp-addr",
            tcp_addr,
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

pub struct Device {
    pub sn: String,
    pub secret: String,
    pub token: String,
    pub stream: TcpStream,
    buf: BytesMut,
    seq: u64,
}

impl Device {
    pub async fn connect(addr: &str, sn: &str, vendor: &VendorCreated) -> Device {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut d = Device {
            sn: sn.to_owned(),
            secret: vendor.access_secret.clone(),
            token: String::new(),
            stream,
            buf: BytesMut::new(),
            seq: 0,
        };
        let mut auth = Request {
            version: PROTOCOL_VERSION.into(),
            sn: sn.into(),
            apicode: ApiCode::Auth.as_str().into(),
            access_id: vendor.access_id.clone(),
            access_key: vendor.access_key.clone(),
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

    pub fn sign_in(&mut self, person: u64, record_time: i64) -> Request {
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

    /// A signed C_HEARTBEAT.
    pub fn heartbeat(&mut self) -> Request {
        let param = json!({"deviceVersion": "FW-1.0", "deviceIp": "10.0.0.9"}).to_string();
        self.seq += 1;
        let mut req = Request {
            version: PROTOCOL_VERSION.into(),
            sn: self.sn.clone(),
            token: self.token.clone(),
            apicode: ApiCode::Heartbeat.as_str().into(),
            time_stamp: now_wire(),
            param: Some(param),
            seq: self.seq,
            ..Request::default()
        };
        req.sign_with(ApiCode::Heartbeat, &self.secret).unwrap();
        req
    }

    pub async fn send(&mut self, req: Request) -> std::io::Result<()> {
        self.stream
            .write_all(&frame::encode_to_vec(&req.to_packet()))
            .await
    }

    /// The next response; `None` when the connection is gone.
    pub async fn recv(&mut self) -> Option<Response> {
        self.recv_packet().await.map(Response::from_packet)
    }

    /// The next packet (a response or a command); `None` when the connection is gone.
    pub async fn recv_packet(&mut self) -> Option<rollcall_protocol::Packet> {
        let dec = FrameDecoder::default();
        loop {
            if let Ok(Some(p)) = dec.decode(&mut self.buf) {
                return Some(p);
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

pub fn now_wire() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    Timestamp::from_epoch_ms(ms).to_wire()
}

/// The admin API of a server started by [`start`].
pub fn admin(http: &str) -> AdminClient {
    AdminClient::new(http, ADMIN)
}

/// A new vendor (`POST /vendors`).
pub async fn vendor(http: &str, name: &str) -> VendorCreated {
    admin(http)
        .create_vendor(&NewVendor {
            name: name.to_owned(),
            ..NewVendor::default()
        })
        .await
        .expect("create a vendor")
}

/// Every stored record of `sn`, keyed by (personId, recordTime) → recordIds.
pub async fn stored(http: &str, sn: &str) -> HashMap<(String, i64), Vec<String>> {
    let query = AttendanceQuery {
        sn: Some(sn.to_owned()),
        limit: Some(1000),
        ..AttendanceQuery::default()
    };
    let records = admin(http)
        .attendance_all(&query)
        .await
        .expect("attendance");
    let mut out: HashMap<(String, i64), Vec<String>> = HashMap::new();
    for r in records {
        out.entry((r.person_id, r.record_time))
            .or_default()
            .push(r.record_id);
    }
    out
}
