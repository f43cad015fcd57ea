//! A typed client of Rollcall's admin REST API (`/api/v1`), the one `rollcall bench`,
//! `rollcall simulate` and the test harnesses use.
//!
//! It is a client of the HTTP contract only (RC-PROD-08, RC-PROD-09): JSON in and out,
//! `Authorization: Bearer <token>` (the admin token or a personal `rcp_` token), ids as
//! decimal strings, times as epoch milliseconds, errors as `{"error": {"code", "message", …}}`.
//!
//! ```no_run
//! # async fn f() -> Result<(), rollcall_client::ClientError> {
//! use rollcall_client::{AdminClient, NewVendor};
//! let admin = AdminClient::new("http://127.0.0.1:8080", "admin-token");
//! let vendor = admin.create_vendor(&NewVendor { name: "厂商".into(), ..Default::default() }).await?;
//! # Ok(()) }
//! ```
//!
//! HTTPS servers are verified against the system's trust roots; a server whose certificate
//! comes from a private CA is reached with [`AdminClient::with_extra_ca`] (or a client from
//! [`http_client`]). Verification cannot be turned off.
//!
//! Each typed call expects its documented success status (201 for a creation, 204 for a
//! removal, 200 otherwise); any other answer is [`ClientError::Api`] with the status and the
//! error's `code`. Negative tests that need the raw answer, or calls this client has no
//! method for, use [`AdminClient::send`], which returns any status as a [`RawResponse`].

mod error;
mod types;

pub use error::ClientError;
pub use reqwest::Method;
pub use types::*;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The admin API of one server, with one bearer token.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    /// `{base_url}/api/v1`.
    api: String,
    token: String,
}

/// Any answer: its status and body (JSON, or the text as a JSON string when it is not
/// JSON; `null` when empty).
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub body: Value,
}

/// An HTTP client for [`AdminClient::with_http`] that verifies HTTPS certificates against
/// the system's trust roots plus the certificates of `extra_ca_pem` (a private CA). On a
/// system without trust roots (a minimal image) only the extra CA is trusted; without one,
/// every HTTPS certificate is refused and plain HTTP still works.
pub fn http_client(extra_ca_pem: Option<&[u8]>) -> Result<reqwest::Client, ClientError> {
    let roots = match extra_ca_pem {
        None => Vec::new(),
        Some(pem) => {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::Config(format!("extra CA certificate: {e}")))?;
            if certs.is_empty() {
                return Err(ClientError::Config(
                    "extra CA certificate: no PEM `CERTIFICATE` block in it".into(),
                ));
            }
            certs
        }
    };
    reqwest::Client::builder()
        .tls_certs_merge(roots.clone())
        .build()
        .or_else(|_| reqwest::Client::builder().tls_certs_only(roots).build())
        .map_err(|e| ClientError::Config(format!("HTTP client: {}", error::with_sources(&e))))
}

impl AdminClient {
    /// A client of the server at `base_url` (`http://host:port` or `https://…`, without
    /// `/api/v1`).
    pub fn new(base_url: &str, token: &str) -> Self {
        // Only a TLS library that cannot start fails here; reqwest's own client panics then
        // too.
        let http = http_client(None).unwrap_or_default();
        Self::with_http(http, base_url, token)
    }

    /// [`AdminClient::new`] for a server whose HTTPS certificate is issued by a private CA:
    /// `ca_pem` holds its certificate(s), trusted besides the system's roots.
    pub fn with_extra_ca(base_url: &str, token: &str, ca_pem: &[u8]) -> Result<Self, ClientError> {
        Ok(Self::with_http(http_client(Some(ca_pem))?, base_url, token))
    }

    /// [`AdminClient::new`] sharing an HTTP client (its connection pool).
    pub fn with_http(http: reqwest::Client, base_url: &str, token: &str) -> Self {
        AdminClient {
            http,
            api: format!("{}/api/v1", base_url.trim_end_matches('/')),
            token: token.to_owned(),
        }
    }

    /// The same server with another bearer token.
    pub fn with_token(&self, token: &str) -> Self {
        AdminClient {
            token: token.to_owned(),
            ..self.clone()
        }
    }

    // --- raw -------------------------------------------------------------------------------

    /// Any call under `/api/v1` (`path` with its query string), any status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<RawResponse, ClientError> {
        let mut req = self.request(method.clone(), path);
        if let Some(b) = body {
            req = req.json(b);
        }
        self.raw(req, &method, path).await
    }

    /// A call with a body of another type than JSON (`multipart/form-data`, CSV…).
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<RawResponse, ClientError> {
        let req = self
            .request(method.clone(), path)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        self.raw(req, &method, path).await
    }

    /// A `GET` whose answer is not JSON (a spreadsheet, a photo): status and bytes.
    pub async fn download(&self, path: &str) -> Result<(u16, Vec<u8>), ClientError> {
        let resp = self
            .request(Method::GET, path)
            .send()
            .await
            .map_err(|e| transport(&Method::GET, path, e))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport(&Method::GET, path, e))?;
        Ok((status, bytes.to_vec()))
    }

    // --- vendors ---------------------------------------------------------------------------

    /// `POST /vendors`: a vendor and its credentials.
    pub async fn create_vendor(&self, body: &NewVendor) -> Result<VendorCreated, ClientError> {
        self.call(Method::POST, "/vendors", Some(body), 201).await
    }

    /// `GET /vendors`.
    pub async fn list_vendors(&self) -> Result<Vec<Vendor>, ClientError> {
        let list: VendorList = self.call(Method::GET, "/vendors", NO_BODY, 200).await?;
        Ok(list.vendors)
    }

    /// `POST /vendors/{id}/rotate-credentials`: new credentials; the old ones stop working.
    pub async fn rotate_vendor_credentials(
        &self,
        vendor_id: &str,
    ) -> Result<VendorCredentials, ClientError> {
        let path = format!("/vendors/{vendor_id}/rotate-credentials");
        self.call(
            Method::POST,
            &path,
            Some(&Value::Object(Default::default())),
            200,
        )
        .await
    }

    // --- projects --------------------------------------------------------------------------

    /// `POST /projects`.
    pub async fn create_project(&self, body: &NewProject) -> Result<Project, ClientError> {
        self.call(Method::POST, "/projects", Some(body), 201).await
    }

    /// `POST /projects/{id}/workers`: workers join the project's roster (every device of the
    /// project gets an update task).
    pub async fn join_project(
        &self,
        project_id: &str,
        person_ids: &[String],
    ) -> Result<Joined, ClientError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Join<'a> {
            person_ids: &'a [String],
        }
        let path = format!("/projects/{project_id}/workers");
        self.call(Method::POST, &path, Some(&Join { person_ids }), 200)
            .await
    }

    /// `DELETE /projects/{id}/workers/{personId}`: a worker leaves the project.
    pub async fn leave_project(
        &self,
        project_id: &str,
        person_id: &str,
    ) -> Result<(), ClientError> {
        let path = format!("/projects/{project_id}/workers/{person_id}");
        self.expect_status(Method::DELETE, &path, NO_BODY, 204)
            .await
            .map(drop)
    }

    // --- devices ---------------------------------------------------------------------------

    /// `POST /devices`: registers a device.
    pub async fn create_device(&self, body: &NewDevice) -> Result<Device, ClientError> {
        self.call(Method::POST, "/devices", Some(body), 201).await
    }

    /// `PATCH /devices/{sn}`: binds, unbinds, enables, renames….
    pub async fn patch_device(&self, sn: &str, body: &DevicePatch) -> Result<Device, ClientError> {
        self.call(Method::PATCH, &format!("/devices/{sn}"), Some(body), 200)
            .await
    }

    /// `GET /devices/{sn}`.
    pub async fn device(&self, sn: &str) -> Result<Device, ClientError> {
        self.call(Method::GET, &format!("/devices/{sn}"), NO_BODY, 200)
            .await
    }

    /// `GET /devices/{sn}/presence`: online now and the history of transitions.
    pub async fn device_presence(&self, sn: &str) -> Result<Presence, ClientError> {
        let path = format!("/devices/{sn}/presence");
        self.call(Method::GET, &path, NO_BODY, 200).await
    }

    /// `GET /devices/{sn}/tasks?limit=…`: the device's tasks, newest first (`limit` at most
    /// 1000).
    pub async fn device_tasks(&self, sn: &str, limit: u32) -> Result<Vec<Task>, ClientError> {
        let path = format!("/devices/{sn}/tasks?limit={limit}");
        let list: TaskList = self.call(Method::GET, &path, NO_BODY, 200).await?;
        Ok(list.tasks)
    }

    /// `POST /devices/{sn}/tasks`: a task for a device (pushed at once when it is connected).
    pub async fn create_task(&self, sn: &str, body: &NewTask) -> Result<Task, ClientError> {
        let path = format!("/devices/{sn}/tasks");
        self.call(Method::POST, &path, Some(body), 201).await
    }

    // --- workers ---------------------------------------------------------------------------

    /// `POST /workers`: enrols a worker. A worker with the same ID-card number is
    /// `409 worker_exists` ([`ClientError::existing_person_id`] names them).
    pub async fn create_worker(&self, body: &NewWorker) -> Result<Worker, ClientError> {
        self.call(Method::POST, "/workers", Some(body), 201).await
    }

    // --- attendance ------------------------------------------------------------------------

    /// `GET /attendance`: one page of records, newest first.
    pub async fn attendance(&self, q: &AttendanceQuery) -> Result<AttendancePage, ClientError> {
        let path = attendance_path(q);
        self.call(Method::GET, &path, NO_BODY, 200).await
    }

    /// Every record `q` selects (following `nextCursor` from `q.cursor` on), newest first.
    pub async fn attendance_all(
        &self,
        q: &AttendanceQuery,
    ) -> Result<Vec<AttendanceRecord>, ClientError> {
        let mut q = q.clone();
        let mut out = Vec::new();
        loop {
            let page = self.attendance(&q).await?;
            out.extend(page.records);
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    // --- users -----------------------------------------------------------------------------

    /// `POST /users`: a console user.
    pub async fn create_user(&self, body: &NewUser) -> Result<User, ClientError> {
        self.call(Method::POST, "/users", Some(body), 201).await
    }

    /// Signs in as a console user (`POST /login`), then makes them a personal API token
    /// (`POST /me/tokens` with the session cookie and CSRF token): the token, its plain
    /// `rcp_…` text in `token`.
    pub async fn personal_token(
        &self,
        username: &str,
        password: &str,
        name: &str,
    ) -> Result<PersonalToken, ClientError> {
        let session = self.login(username, password).await?;
        let path = "/me/tokens";
        let req = self
            .http
            .post(format!("{}{path}", self.api))
            .header(reqwest::header::COOKIE, &session.cookie)
            .header("x-csrf-token", &session.csrf_token)
            .json(&serde_json::json!({ "name": name }));
        let resp = self.raw(req, &Method::POST, path).await?;
        decode(
            &Method::POST,
            path,
            success(&Method::POST, path, resp, 201)?,
        )
    }

    /// `POST /login` (no bearer token): the session cookie (`name=value`) and CSRF token.
    pub async fn login(&self, username: &str, password: &str) -> Result<Session, ClientError> {
        let path = "/login";
        let resp = self
            .http
            .post(format!("{}{path}", self.api))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .map_err(|e| transport(&Method::POST, path, e))?;
        let cookie = resp
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        let raw = read(resp, &Method::POST, path).await?;
        let answer: LoginAnswer =
            decode(&Method::POST, path, success(&Method::POST, path, raw, 200)?)?;
        Ok(Session {
            cookie: cookie.unwrap_or_default(),
            csrf_token: answer.csrf_token,
        })
    }

    // --- plumbing --------------------------------------------------------------------------

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(&self.token)
    }

    async fn raw(
        &self,
        req: reqwest::RequestBuilder,
        method: &Method,
        path: &str,
    ) -> Result<RawResponse, ClientError> {
        let resp = req.send().await.map_err(|e| transport(method, path, e))?;
        read(resp, method, path).await
    }

    async fn expect_status<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        want: u16,
    ) -> Result<Value, ClientError> {
        let mut req = self.request(method.clone(), path);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = self.raw(req, &method, path).await?;
        success(&method, path, resp, want)
    }

    async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        want: u16,
    ) -> Result<T, ClientError> {
        let v = self.expect_status(method.clone(), path, body, want).await?;
        decode(&method, path, v)
    }
}

/// A console session: the `Cookie` header value and the CSRF token for unsafe calls.
#[derive(Debug, Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf_token: String,
}

const NO_BODY: Option<&Value> = None;

fn transport(method: &Method, path: &str, e: reqwest::Error) -> ClientError {
    ClientError::Transport {
        request: format!("{method} {path}"),
        source: e.without_url(),
    }
}

async fn read(
    resp: reqwest::Response,
    method: &Method,
    path: &str,
) -> Result<RawResponse, ClientError> {
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| transport(method, path, e))?;
    Ok(RawResponse {
        status,
        body: parse_body(text),
    })
}

/// JSON, or the text as a JSON string; `null` when empty.
fn parse_body(text: String) -> Value {
    if text.is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

fn success(
    method: &Method,
    path: &str,
    resp: RawResponse,
    want: u16,
) -> Result<Value, ClientError> {
    if resp.status == want {
        Ok(resp.body)
    } else {
        Err(ClientError::api(
            method.as_str(),
            path,
            resp.status,
            resp.body,
        ))
    }
}

fn decode<T: DeserializeOwned>(method: &Method, path: &str, v: Value) -> Result<T, ClientError> {
    serde_json::from_value(v).map_err(|source| ClientError::Decode {
        request: format!("{method} {path}"),
        source,
    })
}

fn attendance_path(q: &AttendanceQuery) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    let text = [
        ("projectId", &q.project_id),
        ("personId", &q.person_id),
        ("sn", &q.sn),
    ];
    for (k, v) in text {
        if let Some(v) = v {
            pairs.push((k, v.clone()));
        }
    }
    for (k, v) in [("from", q.from), ("to", q.to)] {
        if let Some(v) = v {
            pairs.push((k, v.to_string()));
        }
    }
    if let Some(l) = q.limit {
        pairs.push(("limit", l.to_string()));
    }
    if let Some(c) = &q.cursor {
        pairs.push(("cursor", c.clone()));
    }
    let query: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={}", encode(&v)))
        .collect();
    if query.is_empty() {
        "/attendance".to_owned()
    } else {
        format!("/attendance?{}", query.join("&"))
    }
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved characters).
fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attendance_queries() {
        assert_eq!(attendance_path(&AttendanceQuery::default()), "/attendance");
        let q = AttendanceQuery {
            sn: Some("SN 1/é".into()),
            limit: Some(1000),
            cursor: Some("123".into()),
            from: Some(5),
            ..Default::default()
        };
        assert_eq!(
            attendance_path(&q),
            "/attendance?sn=SN%201%2F%C3%A9&from=5&limit=1000&cursor=123"
        );
    }

    #[test]
    fn bodies_that_are_not_json_are_kept_as_text() {
        assert_eq!(parse_body(String::new()), Value::Null);
        assert_eq!(parse_body("{\"a\":1}".into())["a"], 1);
        assert_eq!(
            parse_body("Bad Gateway".into()),
            Value::String("Bad Gateway".into())
        );
    }

    #[test]
    fn patches_tell_absent_from_null() {
        let unbind = DevicePatch {
            project_id: Some(None),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&unbind).unwrap(),
            serde_json::json!({"projectId": null})
        );
        let enable = DevicePatch {
            enabled: Some(true),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&enable).unwrap(),
            serde_json::json!({"enabled": true})
        );
    }
}
