//! A small scripted terminal built on the protocol crate alone, with switchable faults: the
//! broken devices the kit must catch. With no fault it is a conforming (if minimal) terminal,
//! so a failure the kit reports against it comes from the fault switched on.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use bytes::BytesMut;
use rollcall_protocol::envelope::{Command, Request, Response};
use rollcall_protocol::frame::{self, FrameDecoder};
use rollcall_protocol::params::{self, GetTasksResponse, PersonPage};
use rollcall_protocol::time::Timestamp;
use rollcall_protocol::{ApiCode, ErrorCode, PROTOCOL_VERSION};
use serde_json::json;
use sha2::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Sends every acknowledged record once more.
    pub resend_duplicates: bool,
    /// Runs tasks newest first.
    pub reverse_tasks: bool,
    /// Keeps using its token after 401_01 and never authenticates again.
    pub ignore_401: bool,
    /// Leaves faces it could not take out of its status reports.
    pub hide_failed_faces: bool,
    /// Installs firmware without checking its sha256.
    pub skip_sha256: bool,
    /// Heartbeats three times slower than it is configured to.
    pub slow_heartbeat: bool,
    /// Throws away records taken while it has no authenticated connection.
    pub drop_offline: bool,
    /// Sends its mobile records without their coordinate.
    pub mobile_without_coordinate: bool,
}

/// The scripted terminal's configured heartbeat period.
pub const HEARTBEAT: Duration = Duration::from_millis(400);

pub struct Scripted {
    pub sn: String,
    pub access_id: String,
    pub access_key: String,
    pub secret: String,
    pub tcp: String,
    pub http: String,
    pub faults: Faults,
    /// Platform time − local time, learnt from a 400_05 (ZJ-TIME-03).
    pub clock_offset_ms: std::sync::atomic::AtomicI64,
}

async fn send(s: &mut TcpStream, r: Request) -> std::io::Result<()> {
    s.write_all(&frame::encode_to_vec(&r.to_packet())).await
}

impl Scripted {
    fn request(&self, token: &str, api: ApiCode, taskid: &str, param: Option<String>) -> Request {
        let auth = api == ApiCode::Auth;
        let mut r = Request {
            version: PROTOCOL_VERSION.into(),
            sn: self.sn.clone(),
            token: if auth {
                String::new()
            } else {
                token.to_owned()
            },
            apicode: api.as_str().into(),
            taskid: taskid.to_owned(),
            time_stamp: Timestamp::from_epoch_ms(
                rollcall_protocol::time::now_ms()
                    + self
                        .clock_offset_ms
                        .load(std::sync::atomic::Ordering::Relaxed),
            )
            .to_wire(),
            access_id: if auth {
                self.access_id.clone()
            } else {
                String::new()
            },
            access_key: if auth {
                self.access_key.clone()
            } else {
                String::new()
            },
            param,
            ..Request::default()
        };
        r.sign_with(api, &self.secret).expect("signable");
        r
    }

    async fn http_call(&self, client: &reqwest::Client, req: &Request) -> Option<Response> {
        let body = client
            .post(format!("{}/device/api", self.http))
            .header("content-type", "application/json")
            .body(req.to_http_json())
            .send()
            .await
            .ok()?
            .bytes()
            .await
            .ok()?;
        Response::from_http_body(&body).ok()
    }

    /// Runs the terminal until `records` closes and everything is sent, or forever.
    pub async fn run(self, mut records: mpsc::UnboundedReceiver<u32>) {
        let client = reqwest::Client::new();
        let mut token = String::new();
        let mut queue: VecDeque<String> = VecDeque::new();
        let mut persons: BTreeSet<String> = BTreeSet::new();
        let mut pending: BTreeSet<String> = BTreeSet::new();
        let mut done: BTreeSet<String> = BTreeSet::new();
        let mut next_record: i64 = rollcall_protocol::time::now_ms() - 10_000;
        loop {
            let Ok(mut stream) = TcpStream::connect(&self.tcp).await else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let mut buf = BytesMut::new();
            let dec = FrameDecoder::default();
            if (token.is_empty() || !self.faults.ignore_401)
                && send(&mut stream, self.request("", ApiCode::Auth, "", None))
                    .await
                    .is_err()
            {
                continue;
            }
            let mut in_flight: Option<String> = None;
            let mut online = false;
            let period = if self.faults.slow_heartbeat {
                HEARTBEAT * 3
            } else {
                HEARTBEAT
            };
            let mut beat = tokio::time::interval(period);
            'conn: loop {
                // Send the next record when none is in flight.
                if in_flight.is_none()
                    && !token.is_empty()
                    && let Some(p) = queue.front().cloned()
                {
                    if send(
                        &mut stream,
                        self.request(&token, ApiCode::SignIn, "", Some(p.clone())),
                    )
                    .await
                    .is_err()
                    {
                        break 'conn;
                    }
                    in_flight = Some(p);
                }
                // Run what is pending, in taskid order (or not).
                if !pending.is_empty() && !token.is_empty() {
                    let mut ids: Vec<String> = pending.iter().cloned().collect();
                    pending.clear();
                    let get = self.request(
                        &token,
                        ApiCode::GetTasks,
                        "",
                        Some(json!({"taskids": ids}).to_string()),
                    );
                    let tasks: Vec<_> = self
                        .http_call(&client, &get)
                        .await
                        .and_then(|r| {
                            r.response_text()
                                .and_then(|t| params::parse::<GetTasksResponse>(t).ok())
                        })
                        .map(|g| g.tasks)
                        .unwrap_or_default();
                    ids.sort();
                    if self.faults.reverse_tasks {
                        ids.reverse();
                    }
                    for id in ids {
                        let Some(task) = tasks.iter().find(|t| t.taskid == id) else {
                            continue;
                        };
                        let api: ApiCode =
                            task.apicode.parse().unwrap_or(ApiCode::ClearDevicePerson);
                        let mut failed_faces = Vec::new();
                        let mut status = 1;
                        match api {
                            ApiCode::SendPerson => {
                                persons.clear();
                                let mut page = 1;
                                loop {
                                    let r = self.request(
                                        &token,
                                        api,
                                        &id,
                                        Some(json!({"currentPage": page}).to_string()),
                                    );
                                    let Some(p) = self.http_call(&client, &r).await.and_then(|r| {
                                        r.response_text()
                                            .and_then(|t| params::parse::<PersonPage>(t).ok())
                                    }) else {
                                        break;
                                    };
                                    persons.extend(p.data.iter().map(|e| e.person_id.clone()));
                                    for e in &p.data {
                                        for url in &e.img_urls {
                                            if !face_ok(&client, url).await {
                                                failed_faces.push(json!({"personId": e.person_id, "errCode": "404_1"}));
                                            }
                                        }
                                    }
                                    if page >= p.total_page {
                                        break;
                                    }
                                    page += 1;
                                }
                            }
                            ApiCode::DelDevicePerson => {
                                let r = self.request(&token, api, &id, Some("{}".into()));
                                if let Some(d) = self.http_call(&client, &r).await.and_then(|r| {
                                    r.response_text().and_then(|t| {
                                        params::parse::<params::DelPersonResponse>(t).ok()
                                    })
                                }) {
                                    for p in d.person_ids {
                                        persons.remove(&p);
                                    }
                                }
                            }
                            ApiCode::PostDevicePerson => {
                                let rows: Vec<_> = persons
                                    .iter()
                                    .map(|p| json!({"personId": p, "name": "x", "hasImg": true}))
                                    .collect();
                                let page = json!({"currentPage": 1, "totalPage": 1, "data": rows})
                                    .to_string();
                                let _ = self
                                    .http_call(&client, &self.request(&token, api, &id, Some(page)))
                                    .await;
                            }
                            ApiCode::UpdateDeviceVersion => {
                                let r = self.request(&token, api, &id, None);
                                let _ = self.http_call(&client, &r).await;
                                status = match params::parse::<params::FirmwareInfo>(&task.param) {
                                    Ok(info) => match client.get(&info.download_url).send().await {
                                        Ok(resp) => {
                                            let bytes = resp.bytes().await.unwrap_or_default();
                                            let digest: [u8; 32] =
                                                sha2::Sha256::digest(&bytes).into();
                                            if self.faults.skip_sha256
                                                || info.matches(bytes.len() as u64, &digest)
                                            {
                                                1
                                            } else {
                                                2
                                            }
                                        }
                                        Err(_) => 2,
                                    },
                                    Err(_) => 2,
                                };
                            }
                            _ => {}
                        }
                        if self.faults.hide_failed_faces {
                            failed_faces.clear();
                        }
                        let status = json!({"task": [{"taskid": id, "status": status, "failedFaces": failed_faces}], "personCount": persons.len(), "faceCount": persons.len()}).to_string();
                        let _ = self
                            .http_call(
                                &client,
                                &self.request(&token, ApiCode::UpdateTasksStatus, "", Some(status)),
                            )
                            .await;
                        done.insert(id);
                    }
                }
                tokio::select! {
                    n = stream.read_buf(&mut buf) => {
                        if !matches!(n, Ok(k) if k > 0) {
                            break 'conn;
                        }
                        while let Ok(Some(p)) = dec.decode(&mut buf) {
                            if let Some(cmd) = Command::from_packet(&p).filter(|_| !p.success && p.error.is_empty()) {
                                if !done.contains(&cmd.taskid) {
                                    pending.insert(cmd.taskid);
                                }
                                continue;
                            }
                            let r = Response::from_packet(p);
                            match r.apicode.as_str() {
                                "C_AUTH" => {
                                    if let Some(t) = r.response_text().and_then(|t| params::parse::<params::AuthResponse>(t).ok()) {
                                        online = true;
                                        token = t.token;
                                    }
                                }
                                "C_HEARTBEAT" => {
                                    if let Some(platform) = r.outcome.as_ref().err().filter(|e| e.code == ErrorCode::TimestampSkew).and_then(|e| e.detail.as_deref()).and_then(rollcall_protocol::time::platform_time_in_detail) {
                                        self.clock_offset_ms.store(platform.epoch_ms() - rollcall_protocol::time::now_ms(), std::sync::atomic::Ordering::Relaxed);
                                    } else if r.outcome.as_ref().err().is_some_and(|e| e.code == ErrorCode::TokenNotFound) {
                                        if !self.faults.ignore_401 {
                                            token.clear();
                                            if send(&mut stream, self.request("", ApiCode::Auth, "", None)).await.is_err() {
                                                break 'conn;
                                            }
                                        }
                                    } else if let Some(h) = r.response_text().and_then(|t| params::parse::<params::HeartbeatResponse>(t).ok()) {
                                        pending.extend(h.taskids.into_iter().filter(|t| !done.contains(t)));
                                    }
                                }
                                "C_SIGN_IN" => {
                                    if let Some(p) = in_flight.take()
                                        && r.success() {
                                            queue.pop_front();
                                            if self.faults.resend_duplicates {
                                                let _ = send(&mut stream, self.request(&token, ApiCode::SignIn, "", Some(p))).await;
                                            }
                                        }
                                }
                                _ => {}
                            }
                        }
                    }
                    _ = beat.tick() => {
                        if !token.is_empty() {
                            let hb = self.request(&token, ApiCode::Heartbeat, "", Some(r#"{"deviceVersion":"scripted-1","deviceIp":"192.0.2.20"}"#.into()));
                            if send(&mut stream, hb).await.is_err() {
                                break 'conn;
                            }
                        }
                    }
                    n = records.recv() => {
                        match n {
                            Some(_) if self.faults.drop_offline && !online => {}
                            // 1000 + a type bit: one record of that kind (D-KIND-*).
                            Some(n) if n >= 1000 => {
                                next_record += 1000;
                                let mut r = json!({"personId": "9101", "type": n - 1000, "recordTime": next_record});
                                match n - 1000 {
                                    32 => r["irisInfo"] = json!("scripted-iris-template"),
                                    64 if !self.faults.mobile_without_coordinate => r["coordinate"] = json!({"longitude": 120.1551, "latitude": 30.2741}),
                                    16 => r["qrCodeInfo"] = json!({"type": 1, "codeColor": "green", "codeValue": "scripted-code", "cityCode": "330100"}),
                                    _ => {}
                                }
                                queue.push_back(r.to_string());
                            }
                            Some(n) => for _ in 0..n {
                                next_record += 1000;
                                queue.push_back(json!({"personId": "9101", "type": 1, "recordTime": next_record}).to_string());
                            },
                            None => return,
                        }
                    }
                }
            }
            // Reconnect after a cut; what was in flight is sent again.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Whether the face at `url` downloads and is a JPEG or PNG.
async fn face_ok(client: &reqwest::Client, url: &str) -> bool {
    let Ok(resp) = client.get(url).send().await else {
        return false;
    };
    if !resp.status().is_success() {
        return false;
    }
    let bytes = resp.bytes().await.unwrap_or_default();
    bytes.starts_with(&[0xff, 0xd8]) || bytes.starts_with(b"\x89PNG")
}
