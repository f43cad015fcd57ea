//! The kit's hands as a device: a TCP connection and an HTTP caller that speak the protocol
//! through `rollcall-protocol` (framing, envelopes, sign recipes) and write every frame into
//! the case's evidence. Nothing here judges; the cases do.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::BytesMut;
use rollcall_protocol::envelope::{Request, Response};
use rollcall_protocol::frame::{self, FrameDecoder};
use rollcall_protocol::time::Timestamp;
use rollcall_protocol::{ApiCode, PROTOCOL_VERSION, Packet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::KitError;
use crate::evidence::{Dir, Log};

/// Now as a wire timeStamp (Beijing time).
pub fn now_wire() -> String {
    Timestamp::from_epoch_ms(rollcall_protocol::time::now_ms()).to_wire()
}

/// A device the kit plays: its sn, its vendor's credentials and its current token.
#[derive(Clone)]
pub struct Identity {
    pub sn: String,
    pub access_id: String,
    pub access_key: String,
    pub secret: String,
    pub token: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("sn", &self.sn)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A request of `api` with every field its recipe needs, unsigned.
    pub fn unsigned(&self, api: ApiCode, param: Option<&str>) -> Request {
        let auth = api == ApiCode::Auth;
        Request {
            version: PROTOCOL_VERSION.into(),
            sn: self.sn.clone(),
            token: if auth {
                String::new()
            } else {
                self.token.clone()
            },
            apicode: api.as_str().into(),
            time_stamp: now_wire(),
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
            param: param.map(str::to_owned),
            ..Request::default()
        }
    }

    /// The same, signed with the vendor's secret.
    pub fn request(&self, api: ApiCode, param: Option<&str>) -> Request {
        let mut req = self.unsigned(api, param);
        self.sign(&mut req);
        req
    }

    /// Signs `req` in place by the recipe of its apicode (an unknown apicode: by C_HEARTBEAT's).
    pub fn sign(&self, req: &mut Request) {
        let api = req.apicode.parse().unwrap_or(ApiCode::Heartbeat);
        if req.sign_with(api, &self.secret).is_err() {
            // An untokenizable param cannot be cut, so no sign is right: the case wanted it so.
            req.sign = "0".repeat(32);
        }
    }

    /// A heartbeat param.
    pub fn heartbeat_param() -> &'static str {
        r#"{"deviceVersion":"conformance-1.0","deviceIp":"192.0.2.10"}"#
    }
}

/// True for a platform's command (a pushed task), false for a response.
pub fn is_command(p: &Packet) -> bool {
    !p.success && p.error.is_empty() && !p.sn.is_empty() && !p.taskid.is_empty()
}

/// One TCP connection to the platform under test.
pub struct Tcp {
    stream: TcpStream,
    buf: BytesMut,
    log: Log,
    name: String,
    commands: VecDeque<Packet>,
    timeout: Duration,
    closed: bool,
}

impl Tcp {
    pub async fn connect(
        addr: &str,
        log: Log,
        name: String,
        timeout: Duration,
    ) -> Result<Tcp, KitError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| KitError::Connect(format!("{addr}: timed out")))?
            .map_err(|e| KitError::Connect(format!("{addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        log.note(format!("{name} connected to {addr}"));
        Ok(Tcp {
            stream,
            buf: BytesMut::new(),
            log,
            name,
            commands: VecDeque::new(),
            timeout,
            closed: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn send(&mut self, req: &Request) -> Result<(), KitError> {
        self.send_packet(&req.to_packet()).await
    }

    pub async fn send_packet(&mut self, p: &Packet) -> Result<(), KitError> {
        self.log.packet(Dir::Sent, &self.name, p);
        self.write_raw(&frame::encode_to_vec(p), None).await
    }

    /// Writes bytes as they are; `note` describes them in the evidence when they are not a
    /// packet sent through [`Tcp::send_packet`].
    pub async fn write_raw(&mut self, bytes: &[u8], note: Option<&str>) -> Result<(), KitError> {
        if let Some(n) = note {
            self.log.push(Dir::Sent, &self.name, n.to_owned());
        }
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| KitError::Io(format!("{}: write: {e}", self.name)))
    }

    /// The next packet within `within`; `Ok(None)` when the platform closed the connection.
    pub async fn read_packet(&mut self, within: Duration) -> Result<Option<Packet>, KitError> {
        let dec = FrameDecoder::new(frame::DEFAULT_MAX_FRAME_BYTES * 4);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match dec.decode(&mut self.buf) {
                Ok(Some(p)) => {
                    self.log.packet(Dir::Received, &self.name, &p);
                    return Ok(Some(p));
                }
                Ok(None) => {}
                Err(e) => {
                    self.log.note(format!(
                        "{}: undecodable bytes from the platform: {e}",
                        self.name
                    ));
                    return Err(KitError::Protocol(format!(
                        "undecodable frame from the platform: {e}"
                    )));
                }
            }
            if self.closed {
                return Ok(None);
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await;
            match read {
                Err(_) => {
                    return Err(KitError::Timeout(format!(
                        "{}: no packet within {within:?}",
                        self.name
                    )));
                }
                Ok(Ok(0)) | Ok(Err(_)) => {
                    self.log
                        .note(format!("{}: closed by the platform", self.name));
                    self.closed = true;
                }
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The next response, queueing commands that arrive first.
    pub async fn response(&mut self) -> Result<Response, KitError> {
        loop {
            match self.read_packet(self.timeout).await? {
                None => return Err(KitError::Closed(self.name.clone())),
                Some(p) if is_command(&p) => self.commands.push_back(p),
                Some(p) => return Ok(Response::from_packet(p)),
            }
        }
    }

    /// Sends `req` and reads its response.
    pub async fn call(&mut self, req: &Request) -> Result<Response, KitError> {
        self.send(req).await?;
        self.response().await
    }

    /// The next command pushed by the platform within `within`, if any.
    pub async fn command(&mut self, within: Duration) -> Result<Option<Packet>, KitError> {
        if let Some(c) = self.commands.pop_front() {
            return Ok(Some(c));
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_packet(left).await {
                Ok(Some(p)) if is_command(&p) => return Ok(Some(p)),
                Ok(Some(_)) => {} // a stray response
                Ok(None) => return Ok(None),
                Err(KitError::Timeout(_)) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until the platform closes the connection; true if it did within `within`.
    /// Packets read meanwhile are returned.
    pub async fn closed_within(&mut self, within: Duration) -> (bool, Vec<Packet>) {
        let deadline = tokio::time::Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_packet(left).await {
                Ok(Some(p)) => seen.push(p),
                Ok(None) => return (true, seen),
                Err(KitError::Timeout(_)) => return (false, seen),
                // Garbage or a reset: the connection is unusable, count it as closed.
                Err(_) => return (true, seen),
            }
        }
    }
}

/// The platform's HTTP device API.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    base: String,
    log: Log,
}

impl Http {
    pub fn new(client: reqwest::Client, base: &str, log: Log) -> Http {
        Http {
            client,
            base: base.trim_end_matches('/').to_owned(),
            log,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `POST /device/api` with the request's strict JSON body; the parsed response.
    pub async fn call(&self, req: &Request) -> Result<Response, KitError> {
        let (status, body) = self
            .post("/device/api", req.to_http_json().into_bytes())
            .await?;
        if status != 200 {
            return Err(KitError::Protocol(format!(
                "HTTP status {status} for a protocol request"
            )));
        }
        Response::from_http_body(&body)
            .map_err(|e| KitError::Protocol(format!("unreadable response body: {e}")))
    }

    /// `POST {path}` with `body` as JSON; the status and the body.
    pub async fn post(&self, path: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>), KitError> {
        let channel = format!("http POST {path}");
        self.log.body(Dir::Sent, &channel, &body);
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| KitError::Connect(format!("{}{path}: {e}", self.base)))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| KitError::Io(format!("{}{path}: {e}", self.base)))?;
        self.log
            .body(Dir::Received, &format!("{channel} → {status}"), &bytes);
        Ok((status, bytes.to_vec()))
    }

    /// `GET url` (a photo or firmware URL): the status and the body's length and first bytes.
    pub async fn get(&self, url: &str) -> Result<(u16, Vec<u8>), KitError> {
        self.log.push(Dir::Sent, "http GET", url.to_owned());
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| KitError::Connect(format!("{url}: {e}")))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| KitError::Io(format!("{url}: {e}")))?;
        self.log.push(
            Dir::Received,
            &format!("http GET → {status}"),
            format!("{} bytes", bytes.len()),
        );
        Ok((status, bytes.to_vec()))
    }
}
