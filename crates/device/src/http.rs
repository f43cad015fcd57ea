//! The HTTP side of a device: signed calls of `POST /device/api` (every T_ task interface,
//! and C_AUTH when the token the TCP session holds is missing or expired), verified answers,
//! and downloads of photos and firmware from the platform's signed URLs.
//!
//! A thin layer: requests are built and signed with the protocol crate's `Request`, answers
//! read with `Response::from_http_body` and checked with `Response::verify`; nothing here
//! knows a sign recipe. Retries follow [`SdkError::is_retryable`]: `401_01` re-authenticates,
//! `400_05` corrects the clock, transient failures back off and try again.
//!
//! HTTPS (rustls) verifies the platform's certificate against the system's trust roots plus
//! the configured extra CA ([`DeviceConfig::ca_cert_pem`]); a certificate that does not verify
//! fails the call before any request is sent.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use rollcall_protocol::envelope::{Request, Response};
use rollcall_protocol::ids::Secret;
use rollcall_protocol::jwe::JweDecrypter;
use rollcall_protocol::params::{self, AuthResponse};
use rollcall_protocol::time::{Timestamp, platform_time_in_detail};
use rollcall_protocol::{ApiCode, ErrorCode, PROTOCOL_VERSION};

use crate::backoff::Rng;
use crate::config::DeviceConfig;
use crate::error::SdkError;

/// The device's HTTP client. Shared (behind an `Arc`) by the task runner and the driver.
pub struct DeviceHttp {
    client: reqwest::Client,
    api_url: String,
    cfg: Arc<DeviceConfig>,
    token: Mutex<Option<Secret>>,
    clock_offset_ms: Arc<AtomicI64>,
    decrypter: Option<Arc<JweDecrypter>>,
    rng: Mutex<Rng>,
}

impl std::fmt::Debug for DeviceHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceHttp")
            .field("api_url", &self.api_url)
            .field("sn", &self.cfg.sn)
            .finish_non_exhaustive()
    }
}

/// The current time on the device's clock, epoch ms: the protocol crate's one clock read,
/// here for the applications and tools that import it from the SDK.
pub use rollcall_protocol::time::now_ms;

impl DeviceHttp {
    pub fn new(
        cfg: Arc<DeviceConfig>,
        clock_offset_ms: Arc<AtomicI64>,
        decrypter: Option<Arc<JweDecrypter>>,
    ) -> Result<Self, SdkError> {
        let roots = extra_roots(cfg.ca_cert_pem.as_deref())?;
        let client = build_client(
            || {
                reqwest::Client::builder()
                    .timeout(cfg.tuning.http_timeout)
                    .connect_timeout(cfg.tuning.connect_timeout)
                    .pool_max_idle_per_host(cfg.tuning.download_concurrency.max(1))
            },
            roots,
        )?;
        Ok(DeviceHttp {
            client,
            api_url: format!("{}/device/api", cfg.http_url),
            cfg,
            token: Mutex::new(None),
            clock_offset_ms,
            decrypter,
            rng: Mutex::new(Rng::from_entropy()),
        })
    }

    /// Installs a token (the TCP session's, after its C_AUTH).
    pub fn set_token(&self, token: Secret) {
        *lock(&self.token) = Some(token);
    }

    fn token(&self) -> Option<Secret> {
        lock(&self.token).clone()
    }

    fn stamp(&self) -> String {
        Timestamp::from_epoch_ms(now_ms() + self.clock_offset_ms.load(Ordering::Relaxed)).to_wire()
    }

    fn request(&self, api: ApiCode, token: &str) -> Request {
        Request {
            version: PROTOCOL_VERSION.to_owned(),
            sn: self.cfg.sn.clone(),
            token: token.to_owned(),
            apicode: api.as_str().to_owned(),
            time_stamp: if api.requires_timestamp() {
                self.stamp()
            } else {
                String::new()
            },
            ..Request::default()
        }
    }

    /// C_AUTH over HTTP; installs and returns the token.
    pub async fn authenticate(&self) -> Result<Secret, SdkError> {
        let mut req = self.request(ApiCode::Auth, "");
        req.access_id = self.cfg.credentials.access_id.clone();
        req.access_key = self.cfg.credentials.access_key.expose().to_owned();
        let text = self.post(req, ApiCode::Auth).await?;
        let token = text
            .as_deref()
            .and_then(|t| params::parse::<AuthResponse>(t).ok())
            .map(|a| a.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| SdkError::BadResponse {
                api: ApiCode::Auth,
                detail: "no token".into(),
            })?;
        let token = Secret::new(token);
        self.set_token(token.clone());
        Ok(token)
    }

    /// Calls an interface (with a taskid for the task interfaces) and returns the verified
    /// response text (`None` for an acknowledgement). Retries what can be retried, up to
    /// `http_attempts` tries.
    pub async fn call(
        &self,
        api: ApiCode,
        taskid: Option<&str>,
        param: Option<&str>,
    ) -> Result<Option<String>, SdkError> {
        let attempts = self.cfg.tuning.http_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = match self.token() {
                Some(t) => t,
                None => match self.authenticate().await {
                    Ok(t) => t,
                    Err(e) if e.is_retryable() && attempt < attempts => {
                        self.pause(attempt).await;
                        continue;
                    }
                    Err(e) => return Err(e),
                },
            };
            let mut req = self.request(api, token.expose());
            req.taskid = taskid.unwrap_or_default().to_owned();
            req.param = param.map(str::to_owned);
            match self.post(req, api).await {
                Ok(text) => return Ok(text),
                Err(e) if attempt >= attempts || !e.is_retryable() => return Err(e),
                Err(e) => match e.code() {
                    Some(ErrorCode::TokenNotFound) => {
                        let mut t = lock(&self.token);
                        if t.as_ref() == Some(&token) {
                            *t = None;
                        }
                    }
                    Some(ErrorCode::TimestampSkew) => {
                        if let SdkError::Refused { error, .. } = &e
                            && let Some(t) =
                                error.detail.as_deref().and_then(platform_time_in_detail)
                        {
                            self.clock_offset_ms
                                .store(t.epoch_ms() + 500 - now_ms(), Ordering::Relaxed);
                        }
                    }
                    _ => {
                        tracing::debug!(sn = %self.cfg.sn, %api, error = %e, attempt, "retrying");
                        self.pause(attempt).await;
                    }
                },
            }
        }
    }

    async fn pause(&self, attempt: u32) {
        let delay = {
            let mut rng = lock(&self.rng);
            self.cfg
                .tuning
                .retry
                .delay(attempt.saturating_sub(1), &mut rng)
        };
        tokio::time::sleep(delay).await;
    }

    /// Signs and posts one request; verifies and opens the answer.
    async fn post(&self, mut req: Request, api: ApiCode) -> Result<Option<String>, SdkError> {
        let secret = self.cfg.credentials.access_secret.expose();
        req.sign_with(api, secret)
            .map_err(|error| SdkError::Refused { api, error })?;
        let resp = self
            .client
            .post(&self.api_url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(req.to_http_json())
            .send()
            .await
            .map_err(|e| transport_error(e, api.as_str()))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| transport_error(e, api.as_str()))?;
        if status != 200 && status != 413 {
            return Err(SdkError::HttpStatus {
                status,
                what: api.as_str().to_owned(),
            });
        }
        let response = Response::from_http_body(&body).map_err(|e| SdkError::BadResponse {
            api,
            detail: e.to_string(),
        })?;
        match &response.outcome {
            Err(error) => Err(SdkError::Refused {
                api,
                error: error.clone(),
            }),
            Ok(text) => {
                if !response.verify(api, secret) {
                    return Err(SdkError::BadSignature { api });
                }
                match text.as_deref() {
                    Some(t) if !matches!(t.trim_start().as_bytes().first(), Some(b'{' | b'[')) => {
                        let d = self.decrypter.as_ref().ok_or_else(|| {
                            SdkError::Decrypt("an encrypted response, and no device key".into())
                        })?;
                        let plain = d.decrypt(t).map_err(|e| SdkError::Decrypt(e.to_string()))?;
                        String::from_utf8(plain)
                            .map(Some)
                            .map_err(|_| SdkError::Decrypt("not UTF-8".into()))
                    }
                    other => Ok(other.map(str::to_owned)),
                }
            }
        }
    }

    /// Downloads a file (a face photo, a firmware package) from a signed URL, refusing more
    /// than `max_bytes`.
    pub async fn download(&self, url: &str, max_bytes: u64) -> Result<Vec<u8>, SdkError> {
        let mut resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| transport_error(e, "a download"))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(SdkError::HttpStatus {
                status,
                what: "a download".into(),
            });
        }
        if resp.content_length().is_some_and(|n| n > max_bytes) {
            return Err(SdkError::Photo(crate::photo::PhotoError::TooLarge {
                len: resp.content_length().unwrap_or(0) as usize,
                limit: max_bytes as usize,
            }));
        }
        let mut out = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| transport_error(e, "a download"))?
        {
            if (out.len() + chunk.len()) as u64 > max_bytes {
                return Err(SdkError::Photo(crate::photo::PhotoError::TooLarge {
                    len: out.len() + chunk.len(),
                    limit: max_bytes as usize,
                }));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

/// The JWE decrypter of the device's RSA key, when it has one (ZJ-JWE-02).
pub(crate) fn decrypter_of(config: &DeviceConfig) -> Result<Option<Arc<JweDecrypter>>, SdkError> {
    match &config.rsa_private_key_pem {
        Some(pem) => Ok(Some(Arc::new(
            JweDecrypter::from_private_key_pem(pem.expose())
                .map_err(|e| SdkError::Config(format!("device RSA key: {e}")))?,
        ))),
        None => Ok(None),
    }
}

/// The certificates of an extra CA (PEM): at least one, or a [`SdkError::Config`].
pub(crate) fn extra_roots(pem: Option<&str>) -> Result<Vec<reqwest::Certificate>, SdkError> {
    let Some(pem) = pem else {
        return Ok(Vec::new());
    };
    let bad = |detail: String| SdkError::Config(format!("extra CA certificate: {detail}"));
    let certs =
        reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| bad(with_sources(&e)))?;
    if certs.is_empty() {
        return Err(bad("no PEM `CERTIFICATE` block in it".into()));
    }
    Ok(certs)
}

/// A client trusting the system's roots and `roots`. On a system without any trust roots (a
/// minimal image) only `roots` are trusted: with none, every HTTPS certificate is refused and
/// plain HTTP still works. Verification is never turned off.
fn build_client(
    builder: impl Fn() -> reqwest::ClientBuilder,
    roots: Vec<reqwest::Certificate>,
) -> Result<reqwest::Client, SdkError> {
    match builder().tls_certs_merge(roots.clone()).build() {
        Ok(client) => Ok(client),
        Err(e) => {
            tracing::warn!(error = %with_sources(&e), "no system trust roots; trusting the configured CA only");
            builder()
                .tls_certs_only(roots)
                .build()
                .map_err(|e| SdkError::Config(format!("HTTP client: {}", with_sources(&e))))
        }
    }
}

fn transport_error(e: reqwest::Error, what: &str) -> SdkError {
    // Never print the URL: a signed URL is a credential for a face photo.
    let e = e.without_url();
    // The sources say why (refused, reset, a certificate that does not verify).
    let why = with_sources(&e);
    if e.is_timeout() {
        SdkError::Timeout(format!("{what}: {why}"))
    } else {
        SdkError::Network(format!("{what}: {why}"))
    }
}

/// An error and its sources, `: `-separated.
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        // hyper and reqwest sometimes repeat their source in their own message.
        if !text.ends_with(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
