//! Broken platforms for the kit to catch: Rollcall's real platform behind a small
//! intercepting proxy, built on the protocol crate, that breaks one behaviour on the wire.
//!
//! Why a proxy and not a switch inside the platform: the platform stays free of test-only
//! fault paths (nothing to leave on by mistake in production), and the kit sees exactly what
//! a third-party platform with that bug would send — it judges the wire, not Rollcall's
//! internals. The proxy knows the test vendor's secret, as a platform would, so what it
//! rewrites it signs properly (unless signing wrongly is the fault).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use bytes::BytesMut;
use rollcall_client::VendorCreated;
use rollcall_protocol::envelope::{Command, Request, Response};
use rollcall_protocol::frame::{self, FrameDecoder};
use rollcall_protocol::{ApiCode, ErrorCode, Packet, ProtocolError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A resent record is stored again: `duplicate:false` and a new recordId.
    SkipDedupe,
    /// Responses and commands signed with the wrong secret.
    WrongSign,
    /// The signature checked before everything else: a bad sign is 400_04 whatever else is wrong.
    IgnorePrecedence,
    /// Tokens never expire: an idle token keeps working.
    NeverExpire,
}

struct State_ {
    fault: Fault,
    vendor: VendorCreated,
    upstream_http: String,
    client: reqwest::Client,
    /// Tokens issued to the test vendor's devices: token → sn.
    issued: HashMap<String, String>,
    /// NeverExpire: an expired token → the fresh one it stands for.
    alias: HashMap<String, String>,
    next_record: u64,
}

type Shared = Arc<Mutex<State_>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, State_> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Proxy {
    pub tcp: SocketAddr,
    pub http: String,
}

pub async fn start(
    upstream_tcp: SocketAddr,
    upstream_http: &str,
    vendor: &VendorCreated,
    fault: Fault,
) -> Proxy {
    let shared: Shared = Arc::new(Mutex::new(State_ {
        fault,
        vendor: vendor.clone(),
        upstream_http: upstream_http.to_owned(),
        client: reqwest::Client::new(),
        issued: HashMap::new(),
        alias: HashMap::new(),
        next_record: 9_000_000,
    }));
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = Proxy {
        tcp: tcp.local_addr().unwrap(),
        http: format!("http://{}", http.local_addr().unwrap()),
    };
    let s = shared.clone();
    tokio::spawn(async move {
        while let Ok((down, _)) = tcp.accept().await {
            if let Ok(up) = TcpStream::connect(upstream_tcp).await {
                tokio::spawn(tcp_conn(s.clone(), down, up));
            }
        }
    });
    let router = Router::new()
        .route("/device/api", post(http_root))
        .route("/device/api/{apicode}", post(http_path))
        .layer(DefaultBodyLimit::disable())
        .with_state(shared);
    tokio::spawn(async move {
        let _ = axum::serve(http, router).await;
    });
    proxy
}

fn secret(s: &Shared) -> String {
    lock(s).vendor.access_secret.clone()
}

/// Whether the proxy knows this request's secret (the test vendor's devices).
fn ours(s: &Shared, req: &Request) -> bool {
    let st = lock(s);
    req.access_id == st.vendor.access_id || st.issued.values().any(|sn| *sn == req.sn)
}

/// Before forwarding: the request to send upstream, or the proxy's own answer.
fn before(s: &Shared, mut req: Request) -> Result<Request, Box<Response>> {
    let fault = lock(s).fault;
    let Ok(api) = req.apicode.parse::<ApiCode>() else {
        return Ok(req);
    };
    match fault {
        Fault::IgnorePrecedence if !req.sign.is_empty() && ours(s, &req) => {
            let secret = secret(s);
            let ok = rollcall_protocol::sign::verify_request(
                api,
                &req.sign_fields(),
                req.param_alt.as_deref(),
                &secret,
                &req.sign,
            )
            .is_ok();
            if !ok {
                let mut r = Response::to(&req, Err(ProtocolError::new(ErrorCode::AuthFailed)));
                r.sign_with(api, &secret);
                return Err(Box::new(r));
            }
            Ok(req)
        }
        Fault::NeverExpire => {
            let fresh = lock(s).alias.get(&req.token).cloned();
            if let Some(fresh) = fresh {
                req.token = fresh;
                let _ = req.sign_with(api, &secret(s));
            }
            Ok(req)
        }
        _ => Ok(req),
    }
}

/// After the upstream answered.
async fn after(s: &Shared, req: &Request, mut resp: Response) -> Response {
    let fault = lock(s).fault;
    let Ok(api) = req.apicode.parse::<ApiCode>() else {
        return resp;
    };
    if api == ApiCode::Auth
        && req.access_id == lock(s).vendor.access_id
        && let Some(t) = resp.response_text().and_then(|t| {
            rollcall_protocol::params::parse::<rollcall_protocol::params::AuthResponse>(t).ok()
        })
    {
        lock(s).issued.insert(t.token, req.sn.clone());
    }
    match fault {
        Fault::SkipDedupe if api == ApiCode::SignIn => {
            let dup = resp
                .response_text()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
                .and_then(|v| v["duplicate"].as_bool());
            if dup == Some(true) {
                let id = {
                    let mut st = lock(s);
                    st.next_record += 1;
                    st.next_record
                };
                resp.outcome = Ok(Some(format!(r#"{{"recordId":"{id}","duplicate":false}}"#)));
                resp.sign_with(api, &secret(s));
            }
            resp
        }
        Fault::WrongSign if !resp.sign.is_empty() => {
            resp.sign_with(api, "not-the-secret");
            resp
        }
        Fault::NeverExpire
            if resp
                .outcome
                .as_ref()
                .err()
                .is_some_and(|e| e.code == ErrorCode::TokenNotFound) =>
        {
            let sn = lock(s).issued.get(&req.token).cloned();
            let Some(sn) = sn.filter(|sn| *sn == req.sn) else {
                return resp;
            };
            // Authenticate again upstream behind the device's back and retry.
            let (id, key, secret) = {
                let st = lock(s);
                (
                    st.vendor.access_id.clone(),
                    st.vendor.access_key.clone(),
                    st.vendor.access_secret.clone(),
                )
            };
            let mut auth = Request {
                version: req.version.clone(),
                sn: sn.clone(),
                apicode: "C_AUTH".into(),
                access_id: id,
                access_key: key,
                time_stamp: rollcall_protocol::time::Timestamp::from_epoch_ms(
                    rollcall_protocol::time::now_ms(),
                )
                .to_wire(),
                ..Request::default()
            };
            let _ = auth.sign_with(ApiCode::Auth, &secret);
            let Some(a) = upstream_http(s, "/device/api", auth.to_http_json().into_bytes())
                .await
                .and_then(|(_, b)| Response::from_http_body(&b).ok())
            else {
                return resp;
            };
            let Some(t) = a.response_text().and_then(|t| {
                rollcall_protocol::params::parse::<rollcall_protocol::params::AuthResponse>(t).ok()
            }) else {
                return resp;
            };
            {
                let mut st = lock(s);
                st.alias.insert(req.token.clone(), t.token.clone());
                st.issued.insert(t.token.clone(), sn);
            }
            let mut retry = req.clone();
            retry.token = t.token;
            let _ = retry.sign_with(api, &secret);
            match upstream_http(s, "/device/api", retry.to_http_json().into_bytes())
                .await
                .and_then(|(_, b)| Response::from_http_body(&b).ok())
            {
                Some(mut r) => {
                    r.seq = req.seq;
                    r
                }
                None => resp,
            }
        }
        _ => resp,
    }
}

fn after_command(s: &Shared, p: Packet) -> Packet {
    if lock(s).fault != Fault::WrongSign {
        return p;
    }
    match Command::from_packet(&p) {
        Some(cmd) => cmd.to_packet("not-the-secret"),
        None => p,
    }
}

async fn upstream_http(s: &Shared, path: &str, body: Vec<u8>) -> Option<(u16, Vec<u8>)> {
    let (client, base) = {
        let st = lock(s);
        (st.client.clone(), st.upstream_http.clone())
    };
    let resp = client
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.bytes().await.ok()?.to_vec()))
}

async fn http_root(State(s): State<Shared>, body: Bytes) -> (StatusCode, Vec<u8>) {
    http_any(s, "/device/api".into(), None, body).await
}

async fn http_path(
    State(s): State<Shared>,
    Path(api): Path<String>,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    http_any(s, format!("/device/api/{api}"), Some(api), body).await
}

async fn http_any(
    s: Shared,
    path: String,
    path_api: Option<String>,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    let parsed = Request::from_http_body(&body).ok().map(|mut r| {
        if let Some(a) = &path_api
            && r.apicode.is_empty()
        {
            r.apicode = a.clone();
        }
        r
    });
    let forward = |b: Vec<u8>| {
        let s = s.clone();
        let path = path.clone();
        async move {
            upstream_http(&s, &path, b)
                .await
                .unwrap_or((502, Vec::new()))
        }
    };
    let Some(req) = parsed else {
        let (st, b) = forward(body.to_vec()).await;
        return (
            StatusCode::from_u16(st).unwrap_or(StatusCode::BAD_GATEWAY),
            b,
        );
    };
    let original = req.clone();
    let sent = match before(&s, req) {
        Err(answer) => return (StatusCode::OK, answer.to_http_json().into_bytes()),
        Ok(r) => r,
    };
    let body = if sent == original {
        body.to_vec()
    } else {
        sent.to_http_json().into_bytes()
    };
    let (st, b) = forward(body).await;
    if st != 200 {
        return (
            StatusCode::from_u16(st).unwrap_or(StatusCode::BAD_GATEWAY),
            b,
        );
    }
    let Ok(resp) = Response::from_http_body(&b) else {
        return (StatusCode::OK, b);
    };
    let out = after(&s, &original, resp.clone()).await;
    if out == resp {
        (StatusCode::OK, b)
    } else {
        (StatusCode::OK, out.to_http_json().into_bytes())
    }
}

fn is_command(p: &Packet) -> bool {
    !p.success && p.error.is_empty() && !p.sn.is_empty() && !p.taskid.is_empty()
}

/// One device connection: requests one at a time (answers stay in order), commands passed
/// on as they come; anything undecodable turns the connection into a plain pipe.
async fn tcp_conn(s: Shared, mut down: TcpStream, mut up: TcpStream) {
    let dec = FrameDecoder::new(frame::DEFAULT_MAX_FRAME_BYTES);
    let mut dbuf = BytesMut::new();
    let mut ubuf = BytesMut::new();
    let mut waiting: VecDeque<Request> = VecDeque::new();
    loop {
        // Requests buffered from the device, while none is upstream.
        while waiting.is_empty() {
            // Kept whole, so a malformed frame can still be passed on as it came.
            let snapshot = dbuf.clone();
            match dec.decode(&mut dbuf) {
                Ok(Some(p)) => {
                    let req = Request::from_packet(p);
                    match before(&s, req.clone()) {
                        Err(answer) => {
                            if down
                                .write_all(&frame::encode_to_vec(&answer.to_packet()))
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                        Ok(sent) => {
                            if up
                                .write_all(&frame::encode_to_vec(&sent.to_packet()))
                                .await
                                .is_err()
                            {
                                return;
                            }
                            waiting.push_back(req);
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    // A malformed frame: pass it and everything after it through untouched.
                    let _ = up.write_all(&snapshot).await;
                    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    return;
                }
            }
        }
        tokio::select! {
            n = down.read_buf(&mut dbuf), if waiting.is_empty() => {
                if !matches!(n, Ok(k) if k > 0) { return; }
            }
            n = up.read_buf(&mut ubuf) => {
                if !matches!(n, Ok(k) if k > 0) { return; }
                while let Ok(Some(p)) = dec.decode(&mut ubuf) {
                    let out = if is_command(&p) {
                        after_command(&s, p)
                    } else {
                        let resp = Response::from_packet(p.clone());
                        match waiting.pop_front() {
                            Some(req) => {
                                let changed = after(&s, &req, resp.clone()).await;
                                if changed == resp { p } else { changed.to_packet() }
                            }
                            None => p,
                        }
                    };
                    if down.write_all(&frame::encode_to_vec(&out)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
