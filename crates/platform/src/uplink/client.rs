//! The HTTP side of the national API: one signed form POST per call, the answer read with a
//! size bound and classified by what it means for the outbox:
//!
//! - [`CallError::Unavailable`]: the request was certainly not processed (no connection, an
//!   HTTP error status such as 503) — send again after a backoff;
//! - [`CallError::InDoubt`]: it may have been processed (a timeout after sending, a cut or
//!   unreadable answer) — never sent again blindly, the platform is asked first;
//! - [`CallError::Refused`]: the platform answered `code != 0`.

use std::time::Duration;

use rollcall_protocol::ids::Secret;
use serde_json::Value;

use super::codec::{self, Envelope, Refusal};

/// The largest answer read (a page of query rows is far smaller).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CallError {
    #[error("national platform unavailable: {0}")]
    Unavailable(String),
    #[error("no usable answer from the national platform: {0}")]
    InDoubt(String),
    #[error("refused by the national platform: {} {}", .0.code, .0.message)]
    Refused(Refusal),
}

impl CallError {
    /// The metric label of the outcome.
    pub fn label(&self) -> &'static str {
        match self {
            CallError::Unavailable(_) => "unavailable",
            CallError::InDoubt(_) => "in_doubt",
            CallError::Refused(_) => "refused",
        }
    }
}

/// Where and as whom a project calls.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub endpoint: &'a str,
    pub appid: &'a str,
    pub appsecret: &'a Secret,
}

/// The national API client: a connection pool and a per-request timeout.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
}

impl Client {
    pub fn new(timeout: Duration) -> Result<Client, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Client { http })
    }

    /// Calls `method` with `data`; `Ok(data)` of a `code == 0` answer.
    pub async fn call(
        &self,
        target: &Target<'_>,
        method: &str,
        data: &Value,
        nonce: &str,
        now_ms: i64,
    ) -> Result<Value, CallError> {
        let envelope = Envelope {
            appid: target.appid.to_owned(),
            data: data.to_string(),
            method: method.to_owned(),
            nonce: nonce.to_owned(),
            timestamp: codec::wire_timestamp(now_ms),
        };
        let form = envelope.form(target.appsecret);
        let sent = self.http.post(target.endpoint).form(&form).send().await;
        let mut response = match sent {
            Ok(r) => r,
            // Not connected: the platform saw nothing.
            Err(e) if e.is_connect() => return Err(CallError::Unavailable(e.to_string())),
            Err(e) if e.is_builder() => return Err(CallError::Unavailable(e.to_string())),
            Err(e) => return Err(CallError::InDoubt(e.to_string())),
        };
        let status = response.status();
        if !status.is_success() {
            // A gateway's 503 / 502 / 429: the API itself did not take the request.
            return Err(CallError::Unavailable(format!("HTTP {}", status.as_u16())));
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                        return Err(CallError::InDoubt("answer too large".to_owned()));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(CallError::InDoubt(e.to_string())),
            }
        }
        match codec::parse_answer(&body) {
            Ok(Ok(data)) => Ok(data),
            Ok(Err(refusal)) => Err(CallError::Refused(refusal)),
            Err(e) => Err(CallError::InDoubt(e.to_string())),
        }
    }
}
