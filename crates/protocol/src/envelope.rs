//! Requests, responses and commands independent of their transport (ZJ-PKT-02, ZJ-HTTP-01,
//! ZJ-HTTP-03).
//!
//! A TCP [`Packet`] and an HTTP JSON body carry the same envelope; both become a [`Request`]
//! here, so the platform handles one type, and [`Response`] writes itself as either. The
//! envelope checks whose order ZJ-ERR-04 fixes and that need no state (apicode, missing fields,
//! timeStamp format and skew) are [`Request::check`]; the platform continues from there
//! with device, credential, token and signature checks.
//!
//! A [`RequestView`] is the same request borrowed from the bytes it came in: what a server
//! answering on the spot reads without copying its fields, checked by the same
//! [`RequestView::check`] that [`Request::check`] runs.

use std::fmt;

use crate::apicode::ApiCode;
use crate::code::{ErrorCode, ProtocolError};
use crate::json::{Doc, Node, TokenKind};
use crate::packet::Packet;
use crate::sign::{self, SignFields};
use crate::time::{Timestamp, check_skew};

/// Which transport a request came over; some apicodes are refused on TCP (ZJ-CONN-04).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Http,
}

/// A device's request, as received. Empty strings are absent fields (ZJ-PKT-03).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub version: String,
    pub sn: String,
    pub token: String,
    pub apicode: String,
    pub taskid: String,
    pub time_stamp: String,
    pub access_id: String,
    pub access_key: String,
    /// The param text as sent: a string param's value, or an object param's raw text.
    pub param: Option<String>,
    /// For an object param in a JSON5 envelope: the same object written compactly as strict
    /// JSON, members in order — a second accepted signature form (ZJ-SIGN-04).
    pub param_alt: Option<String>,
    pub sign: String,
    /// (ext) Echoed in the response; 0 = absent. TCP only.
    pub seq: u64,
}

impl fmt::Debug for Request {
    /// Tokens and keys are redacted; the param (which may hold a face) is shown by size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.view().debug_as("Request", f)
    }
}

fn redacted(s: &str) -> &'static str {
    if s.is_empty() { "" } else { "***" }
}

/// What [`Request::check`] established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub api: ApiCode,
    /// The parsed timeStamp, when one was sent.
    pub time: Option<Timestamp>,
}

impl Request {
    /// A request carried by a TCP packet.
    pub fn from_packet(p: Packet) -> Self {
        Request {
            version: p.version,
            sn: p.sn,
            token: p.token,
            apicode: p.apicode,
            taskid: p.taskid,
            time_stamp: p.time_stamp,
            access_id: p.access_id,
            access_key: p.access_key,
            param: (!p.param.is_empty()).then_some(p.param),
            param_alt: None,
            sign: p.sign,
            seq: p.seq,
        }
    }

    /// The packet a device sends for this request.
    pub fn to_packet(&self) -> Packet {
        Packet {
            version: self.version.clone(),
            sn: self.sn.clone(),
            token: self.token.clone(),
            apicode: self.apicode.clone(),
            time_stamp: self.time_stamp.clone(),
            param: self.param.clone().unwrap_or_default(),
            sign: self.sign.clone(),
            access_id: self.access_id.clone(),
            access_key: self.access_key.clone(),
            taskid: self.taskid.clone(),
            seq: self.seq,
            ..Packet::default()
        }
    }

    /// A request carried by an HTTP body (ZJ-HTTP-01), read leniently (ZJ-JSON-01): unquoted
    /// keys, numbers for strings; `param` as a JSON string or an object/array kept as raw text
    /// (ZJ-HTTP-02, ZJ-SIGN-03). Anything that is not a JSON object: `400_02` (ZJ-TRANS-03).
    pub fn from_http_body(body: &[u8]) -> Result<Self, ProtocolError> {
        let bad = |d: String| ProtocolError::with_detail(ErrorCode::ParamInvalid, d);
        let text = std::str::from_utf8(body).map_err(|_| bad("请求体不是 UTF-8 文本".into()))?;
        let doc = Doc::parse(text).map_err(|e| bad(format!("请求体不是 JSON: {e}")))?;
        let members = doc
            .root_members()
            .ok_or_else(|| bad("请求体不是 JSON 对象".into()))?;
        let strict = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
        let mut req = Request::default();
        for m in members {
            if m.key == "param" {
                match &m.value {
                    Node::Object { .. } | Node::Array { .. } => {
                        req.param = Some(doc.text_of(&m.value).to_owned());
                        if !strict {
                            req.param_alt = Some(doc.compact_strict(&m.value));
                        }
                    }
                    scalar => req.param = scalar_text(&doc, scalar, "param")?,
                }
                continue;
            }
            let slot = match m.key.as_ref() {
                "version" => &mut req.version,
                "sn" => &mut req.sn,
                "token" => &mut req.token,
                "apicode" => &mut req.apicode,
                "taskid" => &mut req.taskid,
                "timeStamp" => &mut req.time_stamp,
                "accessId" => &mut req.access_id,
                "accessKey" => &mut req.access_key,
                "sign" => &mut req.sign,
                _ => continue, // unknown members are ignored
            };
            *slot = scalar_text(&doc, &m.value, &m.key)?.unwrap_or_default();
        }
        Ok(req)
    }

    /// The HTTP body a device sends for this request (strict JSON; param as a string).
    pub fn to_http_json(&self) -> String {
        let mut map = serde_json::Map::new();
        for (k, v) in [
            ("version", &self.version),
            ("sn", &self.sn),
            ("token", &self.token),
            ("apicode", &self.apicode),
            ("taskid", &self.taskid),
            ("timeStamp", &self.time_stamp),
            ("accessId", &self.access_id),
            ("accessKey", &self.access_key),
        ] {
            if !v.is_empty() {
                map.insert(k.into(), v.clone().into());
            }
        }
        if let Some(p) = &self.param {
            map.insert("param".into(), p.clone().into());
        }
        map.insert("sign".into(), self.sign.clone().into());
        serde_json::Value::Object(map).to_string()
    }

    /// For `POST /device/api/{apicode}`: the path's apicode fills in a body without one; a
    /// body whose apicode differs gets `400_01` (ZJ-TRANS-02).
    pub fn apply_path_apicode(&mut self, path_apicode: &str) -> Result<(), ProtocolError> {
        if self.apicode.is_empty() {
            self.apicode = path_apicode.to_owned();
            Ok(())
        } else if self.apicode == path_apicode {
            Ok(())
        } else {
            Err(ProtocolError::with_detail(
                ErrorCode::ApiCodeInvalid,
                format!("路径为 {path_apicode}，请求体为 {}", self.apicode),
            ))
        }
    }

    /// The signature inputs of this request.
    pub fn sign_fields(&self) -> SignFields<'_> {
        self.view().sign_fields()
    }

    /// This request, borrowed.
    pub fn view(&self) -> RequestView<'_> {
        RequestView {
            version: &self.version,
            sn: &self.sn,
            token: &self.token,
            apicode: &self.apicode,
            taskid: &self.taskid,
            time_stamp: &self.time_stamp,
            access_id: &self.access_id,
            access_key: &self.access_key,
            param: self.param.as_deref(),
            param_alt: self.param_alt.as_deref(),
            sign: &self.sign,
            seq: self.seq,
        }
    }

    /// Signs this request in place (device side), as [`sign::sign_request`] does.
    pub fn sign_with(&mut self, api: ApiCode, secret: &str) -> Result<(), ProtocolError> {
        self.sign = sign::sign_request(api, &self.sign_fields(), secret)
            .map_err(|e| ProtocolError::with_detail(ErrorCode::ParamInvalid, e.to_string()))?;
        Ok(())
    }

    /// The stateless envelope checks, in the precedence order of ZJ-ERR-04:
    /// `400_01` → `402_01..07`, `402_08` → `404_01` → `400_05` ([`RequestView::check`]).
    pub fn check(
        &self,
        transport: Transport,
        now: Timestamp,
        max_skew_secs: u64,
    ) -> Result<Checked, ProtocolError> {
        self.view().check(transport, now, max_skew_secs)
    }
}

/// A [`Request`] borrowed from the bytes it came in (`wire::decode_request_view`); the same
/// fields, the same meaning of empty.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestView<'a> {
    pub version: &'a str,
    pub sn: &'a str,
    pub token: &'a str,
    pub apicode: &'a str,
    pub taskid: &'a str,
    pub time_stamp: &'a str,
    pub access_id: &'a str,
    pub access_key: &'a str,
    pub param: Option<&'a str>,
    pub param_alt: Option<&'a str>,
    pub sign: &'a str,
    pub seq: u64,
}

impl fmt::Debug for RequestView<'_> {
    /// As [`Request`]'s: tokens and keys redacted, the param by size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.debug_as("RequestView", f)
    }
}

impl<'a> RequestView<'a> {
    /// The `Debug` of a request and of its view, under `name`.
    fn debug_as(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("version", &self.version)
            .field("sn", &self.sn)
            .field("apicode", &self.apicode)
            .field("taskid", &self.taskid)
            .field("time_stamp", &self.time_stamp)
            .field("token", &redacted(self.token))
            .field("access_id", &self.access_id)
            .field("access_key", &redacted(self.access_key))
            .field("param_bytes", &self.param.map(str::len))
            .field("seq", &self.seq)
            .finish()
    }

    /// The owned request.
    pub fn to_request(&self) -> Request {
        Request {
            version: self.version.to_owned(),
            sn: self.sn.to_owned(),
            token: self.token.to_owned(),
            apicode: self.apicode.to_owned(),
            taskid: self.taskid.to_owned(),
            time_stamp: self.time_stamp.to_owned(),
            access_id: self.access_id.to_owned(),
            access_key: self.access_key.to_owned(),
            param: self.param.map(str::to_owned),
            param_alt: self.param_alt.map(str::to_owned),
            sign: self.sign.to_owned(),
            seq: self.seq,
        }
    }

    /// The signature inputs of this request.
    pub fn sign_fields(&self) -> SignFields<'a> {
        SignFields {
            version: self.version,
            sn: self.sn,
            token: self.token,
            apicode: self.apicode,
            taskid: self.taskid,
            time_stamp: self.time_stamp,
            access_id: self.access_id,
            access_key: self.access_key,
            param: self.param,
            success: None,
            response: None,
        }
    }

    /// The stateless envelope checks, in the precedence order of ZJ-ERR-04:
    /// `400_01` → `402_01..07`, `402_08` → `404_01` → `400_05`.
    pub fn check(
        &self,
        transport: Transport,
        now: Timestamp,
        max_skew_secs: u64,
    ) -> Result<Checked, ProtocolError> {
        let invalid_api = |d: String| ProtocolError::with_detail(ErrorCode::ApiCodeInvalid, d);
        // ZJ-ERR-03: a missing apicode is 400_01, never 402_04.
        if self.apicode.is_empty() {
            return Err(ProtocolError::new(ErrorCode::ApiCodeInvalid));
        }
        let api: ApiCode = self
            .apicode
            .parse()
            .map_err(|_| invalid_api(format!("未知接口 {}", self.apicode)))?;
        // ZJ-CONN-04: over TCP a device sends only C_ apicodes.
        if transport == Transport::Tcp && !api.is_connection() {
            return Err(invalid_api(format!("{api} 只能通过 HTTP 调用")));
        }
        let missing = [
            (self.version.is_empty(), ErrorCode::VersionMissing),
            (self.sn.is_empty(), ErrorCode::SnMissing),
            (
                api.requires_token() && self.token.is_empty(),
                ErrorCode::TokenMissing,
            ),
            (
                api.requires_timestamp() && self.time_stamp.is_empty(),
                ErrorCode::TimestampMissing,
            ),
            (
                api.requires_param() && self.param.is_none_or(str::is_empty),
                ErrorCode::ParamMissing,
            ),
            (self.sign.is_empty(), ErrorCode::SignMissing),
            (
                api.requires_taskid() && self.taskid.is_empty(),
                ErrorCode::TaskIdMissing,
            ),
        ];
        if let Some((_, code)) = missing.iter().find(|(absent, _)| *absent) {
            return Err(ProtocolError::new(*code));
        }
        let time = if self.time_stamp.is_empty() {
            None
        } else {
            let t = Timestamp::parse_wire(self.time_stamp).map_err(|_| {
                ProtocolError::with_detail(ErrorCode::TimestampMalformed, self.time_stamp)
            })?;
            check_skew(t, now, max_skew_secs)
                .map_err(|e| ProtocolError::with_detail(ErrorCode::TimestampSkew, e.detail()))?;
            Some(t)
        };
        Ok(Checked { api, time })
    }
}

/// The text of a scalar envelope member: a string's value, a number's or boolean's text;
/// `null` is absent. An object or array where a scalar belongs: `400_02` naming the member.
fn scalar_text(
    doc: &Doc<'_>,
    node: &Node<'_>,
    name: &str,
) -> Result<Option<String>, ProtocolError> {
    let bad =
        || ProtocolError::with_detail(ErrorCode::ParamInvalid, format!("字段 {name} 类型错误"));
    let Some(kind) = doc.scalar_kind(node) else {
        return Err(bad());
    };
    let raw = doc.text_of(node);
    match kind {
        TokenKind::Str | TokenKind::SingleStr => {
            let strict = crate::json::to_strict(raw).map_err(|_| bad())?;
            serde_json::from_str::<String>(&strict)
                .map(Some)
                .map_err(|_| bad())
        }
        TokenKind::Ident if raw == "null" => Ok(None),
        _ => Ok(Some(raw.strip_prefix('+').unwrap_or(raw).to_owned())),
    }
}

/// The platform's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Echoed from the request ([`crate::PROTOCOL_VERSION`] if it had none).
    pub version: String,
    pub apicode: String,
    pub taskid: String,
    pub seq: u64,
    /// Success with a response text (JSON, or a JWE string) or an acknowledgement (`None`);
    /// or an error.
    pub outcome: Result<Option<String>, ProtocolError>,
    /// Empty when the platform does not know the device's secret.
    pub sign: String,
}

impl Response {
    /// An unsigned response to `req`.
    pub fn to(req: &Request, outcome: Result<Option<String>, ProtocolError>) -> Self {
        let echoed = Request {
            version: req.version.clone(),
            apicode: req.apicode.clone(),
            taskid: req.taskid.clone(),
            seq: req.seq,
            ..Request::default()
        };
        Response::answering(echoed, outcome)
    }

    /// [`Response::to`], taking the echoed fields from `req` instead of copying them.
    pub fn answering(req: Request, outcome: Result<Option<String>, ProtocolError>) -> Self {
        Response {
            version: if req.version.is_empty() {
                crate::PROTOCOL_VERSION.to_owned()
            } else {
                req.version
            },
            apicode: req.apicode,
            taskid: req.taskid,
            seq: req.seq,
            outcome,
            sign: String::new(),
        }
    }

    pub fn success(&self) -> bool {
        self.outcome.is_ok()
    }

    /// The response text, if any.
    pub fn response_text(&self) -> Option<&str> {
        self.outcome.as_ref().ok().and_then(|r| r.as_deref())
    }

    fn sign_fields(&self) -> SignFields<'_> {
        answer_sign_fields(
            &self.version,
            &self.taskid,
            self.success(),
            self.response_text(),
        )
    }

    /// Signs the response with the response recipe of `api` (ZJ-SIGN-09).
    pub fn sign_with(&mut self, api: ApiCode, secret: &str) {
        self.sign = sign::sign_response(api, &self.sign_fields(), secret);
    }

    /// [`Response::sign_with`] through `memo`, which must be the one kept with `secret`
    /// ([`sign::SignMemo`]).
    pub fn sign_with_memo(&mut self, api: ApiCode, secret: &str, memo: &sign::SignMemo) {
        self.sign = memo.sign_response(api, &self.sign_fields(), secret);
    }

    /// Checks the sign (device side).
    pub fn verify(&self, api: ApiCode, secret: &str) -> bool {
        sign::verify_response(api, &self.sign_fields(), secret, &self.sign)
    }

    /// The TCP packet: `{version, apicode, success, error | response, sign, seq}` (ZJ-CONN-05).
    pub fn to_packet(&self) -> Packet {
        self.clone().into_packet()
    }

    /// [`Response::to_packet`], moving the strings instead of copying them.
    pub fn into_packet(self) -> Packet {
        let success = self.success();
        let (error, response) = match self.outcome {
            Ok(r) => (String::new(), r.unwrap_or_default()),
            Err(e) => (e.to_json(), String::new()),
        };
        Packet {
            version: self.version,
            apicode: self.apicode,
            success,
            error,
            response,
            sign: self.sign,
            seq: self.seq,
            ..Packet::default()
        }
    }

    /// Reads a response packet (device side). An `error` that is not an error object keeps
    /// its text as the message.
    pub fn from_packet(p: Packet) -> Self {
        let outcome = if p.success {
            Ok((!p.response.is_empty()).then_some(p.response))
        } else {
            Err(parse_error(&p.error))
        };
        Response {
            version: p.version,
            apicode: p.apicode,
            taskid: p.taskid,
            seq: p.seq,
            outcome,
            sign: p.sign,
        }
    }

    /// The HTTP body: `{version, success, apicode, taskid?, error?, response?, sign}` with
    /// `error` and a JSON `response` written as objects, a JWE `response` as a string
    /// (ZJ-HTTP-03).
    pub fn to_http_json(&self) -> String {
        let mut out = String::with_capacity(128 + self.response_text().map_or(0, str::len));
        out.push_str("{\"version\":");
        push_json_str(&mut out, &self.version);
        out.push_str(",\"success\":");
        out.push_str(if self.success() { "true" } else { "false" });
        out.push_str(",\"apicode\":");
        push_json_str(&mut out, &self.apicode);
        if !self.taskid.is_empty() {
            out.push_str(",\"taskid\":");
            push_json_str(&mut out, &self.taskid);
        }
        match &self.outcome {
            Err(e) => {
                out.push_str(",\"error\":");
                out.push_str(&e.to_json());
            }
            Ok(Some(text)) => {
                out.push_str(",\"response\":");
                if is_json_container(text) {
                    out.push_str(text);
                } else {
                    push_json_str(&mut out, text);
                }
            }
            // An acknowledgement: no `response` member (ZJ-HTTP-04).
            Ok(None) => {}
        }
        out.push_str(",\"sign\":");
        push_json_str(&mut out, &self.sign);
        out.push('}');
        out
    }

    /// Reads an HTTP response body (device side); `response` keeps its exact text.
    pub fn from_http_body(body: &[u8]) -> Result<Self, ProtocolError> {
        let mut req_like = Request::from_http_body(body)?;
        // Reuse the envelope reader for the scalar members, then pick the rest by span.
        let text = std::str::from_utf8(body).unwrap_or_default();
        let doc = Doc::parse(text)
            .map_err(|e| ProtocolError::with_detail(ErrorCode::ParamInvalid, e.to_string()))?;
        let mut success = false;
        let mut response = None;
        let mut error = None;
        for m in doc.root_members().unwrap_or_default() {
            match m.key.as_ref() {
                "success" => success = doc.text_of(&m.value) == "true",
                "response" => {
                    response = match &m.value {
                        Node::Object { .. } | Node::Array { .. } => {
                            Some(doc.text_of(&m.value).to_owned())
                        }
                        v => scalar_text(&doc, v, "response")?,
                    }
                }
                "error" => error = Some(doc.text_of(&m.value).to_owned()),
                _ => {}
            }
        }
        let outcome = if success {
            Ok(response)
        } else {
            Err(parse_error(error.as_deref().unwrap_or("")))
        };
        Ok(Response {
            version: std::mem::take(&mut req_like.version),
            apicode: std::mem::take(&mut req_like.apicode),
            taskid: std::mem::take(&mut req_like.taskid),
            seq: 0,
            outcome,
            sign: std::mem::take(&mut req_like.sign),
        })
    }
}

/// The version an answer echoes: the request's, or [`crate::PROTOCOL_VERSION`] if it had none.
fn echoed_version(version: &str) -> &str {
    if version.is_empty() {
        crate::PROTOCOL_VERSION
    } else {
        version
    }
}

/// What an answer's sign covers (ZJ-SIGN-09; the recipe picks among them).
fn answer_sign_fields<'a>(
    version: &'a str,
    taskid: &'a str,
    success: bool,
    response: Option<&'a str>,
) -> SignFields<'a> {
    SignFields {
        version,
        taskid,
        success: Some(success),
        response,
        ..SignFields::default()
    }
}

/// A successful answer borrowed from the request it answers: what a server answering on the
/// spot signs and frames (`wire::encode_success_into`) without building a [`Response`]. The
/// same fields, sign and bytes as [`Response::answering`] with `Ok(response)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Success<'a> {
    pub version: &'a str,
    pub apicode: &'a str,
    pub taskid: &'a str,
    pub seq: u64,
    pub response: Option<&'a str>,
}

impl<'a> Success<'a> {
    /// The success answering `req` with `response`.
    pub fn answering(req: &RequestView<'a>, response: Option<&'a str>) -> Self {
        Success {
            version: echoed_version(req.version),
            apicode: req.apicode,
            taskid: req.taskid,
            seq: req.seq,
            response,
        }
    }

    /// What its sign covers.
    pub fn sign_fields(&self) -> SignFields<'a> {
        answer_sign_fields(self.version, self.taskid, true, self.response)
    }
}

fn parse_error(text: &str) -> ProtocolError {
    match ProtocolError::from_json(text) {
        Some((Some(code), msg)) => {
            // Keep only the detail after the standard's message, if any.
            let detail = msg
                .strip_prefix(code.message())
                .and_then(|d| d.strip_prefix(": "))
                .map(str::to_owned);
            ProtocolError { code, detail }
        }
        Some((None, msg)) => ProtocolError::with_detail(ErrorCode::Internal, msg),
        None => ProtocolError::with_detail(ErrorCode::Internal, text.to_owned()),
    }
}

fn is_json_container(text: &str) -> bool {
    matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['))
}

fn push_json_str(out: &mut String, s: &str) {
    // Serialising a &str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// A task pushed to a device over its TCP connection (ZJ-CONN-07, ZJ-CONN-08).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub version: String,
    pub sn: String,
    pub apicode: ApiCode,
    pub taskid: String,
    pub time_stamp: String,
    /// The task param (JSON text).
    pub param: String,
}

impl Command {
    fn sign_fields(&self) -> SignFields<'_> {
        SignFields {
            version: &self.version,
            sn: &self.sn,
            apicode: self.apicode.as_str(),
            taskid: &self.taskid,
            time_stamp: &self.time_stamp,
            param: Some(&self.param),
            ..SignFields::default()
        }
    }

    /// The signed command packet.
    pub fn to_packet(&self, secret: &str) -> Packet {
        Packet {
            version: self.version.clone(),
            sn: self.sn.clone(),
            apicode: self.apicode.as_str().to_owned(),
            taskid: self.taskid.clone(),
            time_stamp: self.time_stamp.clone(),
            param: self.param.clone(),
            sign: sign::sign_command(&self.sign_fields(), secret),
            ..Packet::default()
        }
    }

    /// Reads a command packet (device side). `None` if it is not a command: no task apicode
    /// or no taskid.
    pub fn from_packet(p: &Packet) -> Option<Self> {
        let apicode: ApiCode = p.apicode.parse().ok()?;
        if !apicode.is_task() || p.taskid.is_empty() {
            return None;
        }
        Some(Command {
            version: p.version.clone(),
            sn: p.sn.clone(),
            apicode,
            taskid: p.taskid.clone(),
            time_stamp: p.time_stamp.clone(),
            param: p.param.clone(),
        })
    }

    /// Checks a received command's sign against the device's secret.
    pub fn verify(&self, secret: &str, presented: &str) -> bool {
        sign::verify_command(&self.sign_fields(), secret, presented)
    }
}
