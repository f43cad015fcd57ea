//! A mock of the national real-name platform's OpenAPI (UPLINK.md), started by the tests on
//! `127.0.0.1:0` and spoken to over real HTTP. Shared by the platform's API suite and the
//! binary's crash test (`#[path]`-included).
//!
//! It checks what the real one is known to check: every request's `sign` (SHA-256 over the
//! lowercased sorted fields and the project's secret), the `appid`, ID numbers that decrypt
//! with the project's secret (AES-256-CBC), a `teamSysNo` it issued, head images of at most
//! 50 KB in JPEG or PNG, and the order (a worker before their entry, an entry before
//! attendance; an update of a worker it has). Adds and `ProjectWorker.Update` are
//! asynchronous: they answer a `requestSerialCode`, and
//! `AsyncHandleResult.Query` answers `"20"` (or `"10"` when a failure was injected).
//! `*.Query` lists what was accepted. Everything accepted is recorded with ID numbers in
//! clear, in arrival order, so a test can check "exactly once, in order".
//!
//! Failures are injected per method, for the next matching calls: HTTP 503, `code != 0`
//! with a message, async status `"10"`, or a slow answer (the request is processed, then the
//! answer waits — the client's timeout makes it in doubt).

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use rollcall_platform::uplink::codec;
use rollcall_protocol::ids::Secret;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A failure to inject.
#[derive(Debug, Clone)]
pub enum Fault {
    /// HTTP 503, nothing processed.
    Unavailable,
    /// `{"code": code, "message": message}`, nothing processed.
    Refuse(i64, String),
    /// Processed as refused: the async result is `"10"` with this result text.
    AsyncFailed(String),
    /// Processed, then the answer comes after this long.
    Slow(Duration),
}

/// One accepted row (an item of a list, with its request's `teamSysNo`).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub method: String,
    /// The item with `idCardNumber` decrypted.
    pub item: Value,
    pub team_sys_no: Option<i64>,
}

#[derive(Default)]
struct Inner {
    secrets: HashMap<String, String>,
    /// Accepted rows, in arrival order.
    rows: Vec<Row>,
    /// Every call: (method, data), in arrival order.
    calls: Vec<(String, Value)>,
    /// requestSerialCode → (status, result).
    jobs: HashMap<String, (String, Value)>,
    faults: VecDeque<(String, Fault)>,
    teams: HashMap<i64, String>,
    next_serial: u64,
    next_team: i64,
}

/// The mock, running until dropped.
pub struct National {
    /// `http://127.0.0.1:{port}/open.api`.
    pub endpoint: String,
    inner: Arc<Mutex<Inner>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for National {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl National {
    pub async fn start() -> National {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind mock");
        let addr = listener.local_addr().expect("mock addr");
        let inner = Arc::new(Mutex::new(Inner {
            next_team: 1001,
            ..Inner::default()
        }));
        let router = Router::new()
            .route("/open.api", post(handle))
            .with_state(Arc::clone(&inner));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        National {
            endpoint: format!("http://{addr}/open.api"),
            inner,
            server,
        }
    }

    /// Accepts requests of `appid` signed with `secret`.
    pub fn project(&self, appid: &str, secret: &str) {
        self.lock().secrets.insert(appid.into(), secret.into());
    }

    /// Makes the next call of `method` fail with `fault` (queued, in order).
    pub fn inject(&self, method: &str, fault: Fault) {
        self.lock().faults.push_back((method.into(), fault));
    }

    /// Faults not used yet.
    pub fn faults_left(&self) -> usize {
        self.lock().faults.len()
    }

    pub fn rows(&self, method: &str) -> Vec<Row> {
        self.lock()
            .rows
            .iter()
            .filter(|r| r.method == method)
            .cloned()
            .collect()
    }

    pub fn all_rows(&self) -> Vec<Row> {
        self.lock().rows.clone()
    }

    pub fn calls(&self, method: &str) -> usize {
        self.lock().calls.iter().filter(|c| c.0 == method).count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn answer(code: i64, message: &str, data: Value) -> Response {
    Json(json!({"code": code, "message": message, "data": data})).into_response()
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (result, slow) = {
        let mut st = inner.lock().unwrap_or_else(|e| e.into_inner());
        process(&mut st, &form)
    };
    if let Some(wait) = slow {
        tokio::time::sleep(wait).await;
    }
    result
}

fn process(st: &mut Inner, form: &HashMap<String, String>) -> (Response, Option<Duration>) {
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    for k in [
        "appid",
        "data",
        "format",
        "method",
        "nonce",
        "timestamp",
        "version",
        "sign",
    ] {
        if !form.contains_key(k) {
            return (
                answer(1, &format!("请求参数无效:{k}不能为空!"), Value::Null),
                None,
            );
        }
    }
    let Some(secret) = st.secrets.get(&field("appid")).cloned() else {
        return (answer(1, "请求参数无效:appid无效!", Value::Null), None);
    };
    let secret = Secret::new(secret);
    let fields: Vec<(&str, &str)> = form
        .iter()
        .filter(|(k, _)| k.as_str() != "sign")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if codec::sign(&fields, &secret) != field("sign") {
        return (answer(1, "请求参数无效:sign签名错误!", Value::Null), None);
    }
    let method = field("method");
    let Ok(data) = serde_json::from_str::<Value>(&field("data")) else {
        return (answer(1, "请求参数无效:data格式错误!", Value::Null), None);
    };
    st.calls.push((method.clone(), data.clone()));
    if method != "AsyncHandleResult.Query"
        && data["projectCode"].as_str() != Some(field("appid").as_str())
    {
        return (
            answer(1, "[projectCode]值超出范围或无效", Value::Null),
            None,
        );
    }
    let fault = st
        .faults
        .iter()
        .position(|(m, _)| *m == method)
        .and_then(|i| st.faults.remove(i))
        .map(|(_, f)| f);
    let mut slow = None;
    let mut async_failed = None;
    match fault {
        Some(Fault::Unavailable) => {
            return (
                (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response(),
                None,
            );
        }
        Some(Fault::Refuse(code, message)) => {
            return (answer(code, &message, Value::Null), None);
        }
        Some(Fault::Slow(d)) => slow = Some(d),
        Some(Fault::AsyncFailed(m)) => async_failed = Some(m),
        None => {}
    }
    let result = match method.as_str() {
        "AsyncHandleResult.Query" => {
            let serial = data["requestSerialCode"].as_str().unwrap_or_default();
            match st.jobs.get(serial) {
                Some((status, result)) => {
                    answer(0, "success", json!({"status": status, "result": result}))
                }
                None => answer(1, "[requestSerialCode]值超出范围或无效", Value::Null),
            }
        }
        m if m.ends_with(".Query") => {
            let add = m.replace(".Query", ".Add");
            let rows = query(st, &add, &data, &secret);
            answer(0, "success", json!({"rows": rows}))
        }
        m if m.ends_with(".Add") || m == "ProjectWorker.Update" => {
            match add(st, m, &data, &secret, async_failed) {
                Ok(serial) => answer(0, "success", json!({"requestSerialCode": serial})),
                Err(message) => answer(1, &message, Value::Null),
            }
        }
        _ => answer(1, "请求参数无效:method无效!", Value::Null),
    };
    (result, slow)
}

fn plain_id(secret: &Secret, item: &Value) -> Result<Value, String> {
    let mut item = item.clone();
    if let Some(enc) = item["idCardNumber"].as_str() {
        let plain =
            codec::decrypt_id(secret, enc).map_err(|_| "[idCardNumber]解密失败".to_owned())?;
        item["idCardNumber"] = json!(plain);
    }
    Ok(item)
}

fn query(st: &Inner, add: &str, data: &Value, secret: &Secret) -> Vec<Value> {
    let Ok(filter) = plain_id(secret, data) else {
        return Vec::new();
    };
    st.rows
        .iter()
        .filter(|r| r.method == add)
        .filter(|r| {
            filter.as_object().into_iter().flatten().all(|(k, v)| {
                matches!(k.as_str(), "projectCode" | "pageIndex" | "pageSize") || r.item[k] == *v
            })
        })
        .map(|r| {
            let mut row = r.item.clone();
            if let Some(n) = r.team_sys_no {
                row["teamSysNo"] = json!(n);
            }
            row
        })
        .collect()
}

fn has_worker(st: &Inner, id: &Value) -> bool {
    st.rows
        .iter()
        .any(|r| r.method == "ProjectWorker.Add" && r.item["idCardNumber"] == *id)
}

fn has_entry(st: &Inner, id: &Value) -> bool {
    st.rows.iter().any(|r| {
        r.method == "WorkerEntryExit.Add" && r.item["idCardNumber"] == *id && r.item["type"] == 1
    })
}

/// Checks and applies an Add; `Ok(serial)`.
fn add(
    st: &mut Inner,
    method: &str,
    data: &Value,
    secret: &Secret,
    async_failed: Option<String>,
) -> Result<String, String> {
    let list_key = match method {
        "Team.Add" => None,
        "ProjectWorker.Add" | "ProjectWorker.Update" | "WorkerEntryExit.Add" => Some("workerList"),
        "WorkerAttendance.Add" => Some("dataList"),
        _ => return Err("请求参数无效:method无效!".into()),
    };
    let team_sys_no = match list_key {
        None => None,
        Some(_) => {
            let n = data["teamSysNo"].as_i64();
            match n {
                Some(n) if st.teams.contains_key(&n) => Some(n),
                _ => return Err("[teamSysNo]值超出范围或无效".into()),
            }
        }
    };
    let items: Vec<Value> = match list_key {
        None => {
            if data["teamName"].as_str().is_none_or(str::is_empty) {
                return Err("[teamName]不能为空".into());
            }
            vec![json!({"teamName": data["teamName"], "corpCode": data["corpCode"]})]
        }
        Some(key) => {
            let list = data[key].as_array().cloned().unwrap_or_default();
            if list.is_empty() || list.len() > 50 {
                return Err(format!("[{key}]数量应为1-50"));
            }
            list.iter()
                .map(|i| plain_id(secret, i))
                .collect::<Result<_, _>>()?
        }
    };
    for item in &items {
        let id = &item["idCardNumber"];
        match method {
            "ProjectWorker.Update" if !has_worker(st, id) => {
                return Err("[idCardNumber]工人未在项目中登记".into());
            }
            "ProjectWorker.Add" | "ProjectWorker.Update" => {
                let head = item["headImage"].as_str().unwrap_or_default();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(head)
                    .map_err(|_| "[headImage]格式无效,目前仅支持:jpg,jpeg,png".to_owned())?;
                if bytes.len() > 50 * 1024 {
                    return Err("[headImage]大小超过限制50KB!".into());
                }
                if !(bytes.starts_with(&[0xFF, 0xD8]) || bytes.starts_with(b"\x89PNG")) {
                    return Err("[headImage]格式无效,目前仅支持:jpg,jpeg,png".into());
                }
                if item["workType"].as_str().is_none_or(|t| t.len() != 3) {
                    return Err("[workType]值超出范围或无效".into());
                }
            }
            "WorkerEntryExit.Add" if !has_worker(st, id) => {
                return Err("[idCardNumber]工人未在项目中登记".into());
            }
            "WorkerAttendance.Add" if !has_entry(st, id) => {
                return Err("[idCardNumber]工人未进场".into());
            }
            _ => {}
        }
    }
    st.next_serial += 1;
    let serial = format!("SN{:08}", st.next_serial);
    if let Some(message) = async_failed {
        st.jobs
            .insert(serial.clone(), ("10".into(), json!(message)));
        return Ok(serial);
    }
    let mut result = Value::Null;
    let team_sys_no = if method == "Team.Add" {
        let n = st.next_team;
        st.next_team += 1;
        st.teams
            .insert(n, data["teamName"].as_str().unwrap_or_default().to_owned());
        result = json!({"teamSysNo": n});
        Some(n)
    } else {
        team_sys_no
    };
    for item in items {
        st.rows.push(Row {
            method: method.to_owned(),
            item,
            team_sys_no,
        });
    }
    st.jobs.insert(serial.clone(), ("20".into(), result));
    Ok(serial)
}
