//! The request pipeline shared by the TCP gateway and the HTTP device API.
//!
//! Every request goes through the same checks in the precedence order of ZJ-ERR-04 (docs/PROTOCOL.md):
//! envelope (`Request::check`: 400_01, 402_0x, 404_01, 400_05) → device (400_06) →
//! credentials (401_02) → token (401_01) → signature (400_04, or 400_02 for a param the
//! image cut cannot tokenize) → rate limit (429_01) → the interface's handler (400_02,
//! 405_01, 403_0x). The answer is signed with the device's secret whenever it is known, and
//! a success is JWE-encrypted for vendors with a registered key (ZJ-JWE-02).

mod auth;
mod collect;
pub mod error;
mod heartbeat;
pub mod order;
mod persons;
pub mod session;
mod sign_in;
mod tasks;

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rollcall_protocol::envelope::{Request, RequestView, Response, Transport};
use rollcall_protocol::jwe::JweEncrypter;
use rollcall_protocol::sign::{self, SignError};
use rollcall_protocol::time::Timestamp;
use rollcall_protocol::{ApiCode, params};
use serde::Serialize;

use crate::pipeline::error::DeviceError;
use crate::runtime::auth_cache::{CachedVendor, DeviceFacts};
use crate::runtime::device_tokens::TokenCheck;
use crate::runtime::registry::{Binding, ConnHandle};
use crate::runtime::util::now_ms;
use crate::state::App;
pub use heartbeat::answer_at_once;
use session::Session;

/// What a TCP connection knows about itself, for the binding rules (ZJ-CONN-01 to ZJ-CONN-03).
///
/// It lives in the connection's task for the connection's whole life, idle most of it, so it
/// is kept small (BENCHMARKS.md, "idle"): the sn is shared with the registry, the turnstile
/// exists only while requests are in flight, what it knows of itself are bits of one byte,
/// and a copy of its device's rows ([`session`]) only while its requests come close together.
#[derive(Debug)]
pub struct ConnCtx {
    pub handle: ConnHandle,
    state: Mutex<CtxState>,
    /// [`BOUND_NOW`], [`BOUND`], [`AUTHED`], [`BUSY`].
    flags: AtomicU8,
}

/// A binding request succeeded: the connection should push the device's due tasks after
/// writing the response.
const BOUND_NOW: u8 = 1;
/// Bound to a device (readable without the lock, on every request).
const BOUND: u8 = 2;
/// A request has been authenticated on the binding (C_AUTH aside).
const AUTHED: u8 = 4;
/// The latest frame came within [`session::BUSY_MS`] of the one before.
const BUSY: u8 = 8;

#[derive(Debug, Default)]
struct CtxState {
    /// Arrival order of the connection's requests; made by the first request after a quiet
    /// spell and dropped by [`ConnCtx::rest`] once none is in flight.
    order: Option<Arc<order::Turnstile>>,
    binding: Option<Binding>,
    /// What the connection remembers of its bound device while busy ([`session`]).
    session: Option<Arc<Session>>,
}

impl ConnCtx {
    pub fn new(handle: ConnHandle) -> Self {
        ConnCtx {
            handle,
            state: Mutex::default(),
            flags: AtomicU8::new(0),
        }
    }

    /// A whole frame arrived at `now` (the gateway's clock, ms): the connection's activity,
    /// and whether it is busy.
    pub fn frame_arrived(&self, now: u64) {
        let before = self.handle.outbox.touch(now);
        let flags = self.flags.load(Ordering::Relaxed);
        let busy = now.saturating_sub(before) < session::BUSY_MS;
        // A store only when it changes: a busy connection's frames write nothing here.
        if busy != (flags & BUSY != 0) {
            if busy {
                self.flags.fetch_or(BUSY, Ordering::Relaxed);
            } else {
                self.flags.fetch_and(!BUSY, Ordering::Relaxed);
            }
        }
    }

    /// The copy of the device's rows for `req`, with the bound sn, if the connection has one
    /// that still holds (see [`session`]); one that no longer does is dropped.
    fn session_for(
        &self,
        req: &RequestView<'_>,
        now: i64,
        epoch: u64,
        ttl_ms: i64,
    ) -> Option<(Arc<Session>, Arc<str>)> {
        let mut state = lock(&self.state);
        let s = state.session.as_ref()?;
        if !s.current(now, epoch, ttl_ms) {
            state.session = None;
            return None;
        }
        let sn = state.binding.as_ref()?.sn();
        (**sn == *req.sn && s.presented(req.token)).then(|| (Arc::clone(s), Arc::clone(sn)))
    }

    /// A request was authenticated the whole way: a busy connection bound to its device keeps
    /// a copy of what was found (see [`session`]).
    fn authenticated(&self, make: impl FnOnce() -> Option<Session>) {
        let flags = self.flags.fetch_or(AUTHED, Ordering::Relaxed);
        if flags & (AUTHED | BUSY) != AUTHED | BUSY {
            return;
        }
        let session = make().map(Arc::new);
        lock(&self.state).session = session;
    }

    /// The sn this connection is bound to.
    pub fn bound_sn(&self) -> Option<Arc<str>> {
        lock(&self.state)
            .binding
            .as_ref()
            .map(|b| Arc::clone(b.sn()))
    }

    /// Whether this connection is bound to a device (no lock, no copy of the sn).
    pub fn is_bound(&self) -> bool {
        self.flags.load(Ordering::Acquire) & BOUND != 0
    }

    /// Takes the "just bound" mark (set when a binding request succeeds): the sn just bound.
    pub fn take_bound_now(&self) -> Option<Arc<str>> {
        if self.flags.load(Ordering::Relaxed) & BOUND_NOW == 0 {
            return None;
        }
        if self.flags.fetch_and(!BOUND_NOW, Ordering::AcqRel) & BOUND_NOW != 0 {
            self.bound_sn()
        } else {
            None
        }
    }

    /// The next request's place in the connection's order.
    fn ticket(&self) -> order::Ticket {
        lock(&self.state)
            .order
            .get_or_insert_with(Default::default)
            .ticket()
    }

    /// No request of the connection is in flight (every ticket is gone): the turnstile's
    /// memory goes until the next one.
    pub fn rest(&self) {
        lock(&self.state).order = None;
    }

    /// The binding rule alone (400_04 when bound to another device, ZJ-CONN-02), for checking
    /// before a request changes anything.
    fn check_binding(&self, sn: &str) -> Result<(), DeviceError> {
        match lock(&self.state).binding.as_ref() {
            Some(b) if &**b.sn() != sn => Err(DeviceError::AuthFailed(
                "connection bound to another device",
            )),
            _ => Ok(()),
        }
    }

    /// Checks the binding rule and binds if unbound. A connection bound to another device
    /// refuses the request (400_04, ZJ-CONN-02). The sn is the token owner's, so the registry
    /// shares it.
    fn bind(&self, app: &App, sn: &Arc<str>) -> Result<(), DeviceError> {
        let mut state = lock(&self.state);
        match state.binding.as_ref() {
            Some(b) if b.sn() == sn => Ok(()),
            Some(_) => Err(DeviceError::AuthFailed(
                "connection bound to another device",
            )),
            None => {
                state.binding = Some(app.registry.bind(Arc::clone(sn), self.handle.clone()));
                self.flags.fetch_or(BOUND | BOUND_NOW, Ordering::Release);
                Ok(())
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An authenticated request: who sent it.
pub(crate) struct Authed {
    /// Shared with the directory's cache (a hit copies nothing).
    pub device: Arc<DeviceFacts>,
    /// The device's sn as the token cache holds it: what per-device state kept in memory
    /// (presence, task hints) keys on, so a device's sn is held once.
    pub sn: Arc<str>,
    /// The id reserved when the request arrived (a sign-in's record id).
    pub arrival_id: i64,
    pub now: i64,
}

/// How to sign (and maybe encrypt) the answer.
#[derive(Default)]
struct Signer {
    /// The authenticated device's vendor: its secret signs the answer and its key, if it
    /// registered one, encrypts it. Shared with the directory, so nothing is copied.
    vendor: Option<VendorRef>,
    /// A secret known otherwise (C_AUTH's credential, an error's lookup).
    secret: Option<String>,
    rsa_public_key: Option<String>,
    /// Refused by a source address's budget: answered without looking up a secret to sign
    /// with, so a flood costs no database work.
    no_lookup: bool,
}

/// The vendor's row, as the directory gave it or through the connection's copy. Through the
/// copy, no count changes on the row's `Arc`, which every device of the vendor shares (a
/// cache line passed between the cores, BENCHMARKS.md session 15).
enum VendorRef {
    Row(Arc<CachedVendor>),
    Session(Arc<Session>),
}

impl std::ops::Deref for VendorRef {
    type Target = CachedVendor;

    fn deref(&self) -> &CachedVendor {
        match self {
            VendorRef::Row(v) => v,
            VendorRef::Session(s) => &s.vendor,
        }
    }
}

impl Signer {
    fn secret(&self) -> Option<&str> {
        match &self.vendor {
            Some(v) => Some(v.row.access_secret.expose()),
            None => self.secret.as_deref(),
        }
    }

    fn rsa_public_key(&self) -> Option<&str> {
        match &self.vendor {
            Some(v) => v.row.rsa_public_key.as_deref(),
            None => self.rsa_public_key.as_deref(),
        }
    }
}

/// Handles one request and returns its signed answer.
///
/// The receive time and the arrival id are taken here, synchronously, before the returned
/// future first runs: the sign-ins a device pipelines on one connection get record ids in the
/// order they arrived, whatever order their handling finishes in.
pub fn handle<'a>(
    app: &'a App,
    req: Request,
    transport: Transport,
    conn: Option<&'a ConnCtx>,
    peer: Option<IpAddr>,
) -> impl std::future::Future<Output = Response> + Send + 'a {
    // Only a sign-in stores a record under its arrival id and waits for its turn; other
    // requests take neither (an id and a ticket showed in every heartbeat's profile).
    let sign_in = req.apicode == ApiCode::SignIn.as_str();
    let arrival = Arrival {
        now: now_ms(),
        id: if sign_in { app.ids.next() } else { 0 },
        peer,
        ticket: conn.filter(|_| sign_in).map(ConnCtx::ticket),
    };
    handle_arrived(app, req, transport, conn, arrival)
}

/// When a request arrived and, for a sign-in, the id reserved for its record.
#[derive(Debug)]
struct Arrival {
    /// Its place in the connection's order (TCP only).
    ticket: Option<order::Ticket>,
    now: i64,
    id: i64,
    /// The source address, for the per-address budget of unauthenticated requests.
    peer: Option<IpAddr>,
}

/// A plain `fn` returning an `async move` block rather than an `async fn` (here and in
/// [`process`]): an `async fn` moves its arguments into locals and its state keeps room for
/// both, the request twice in every request's future. The gateway boxes that future for
/// every request; sized so, it was past the allocator's per-thread cache (BENCHMARKS.md,
/// session 14).
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would keep the request twice in every request's future"
)]
fn handle_arrived<'a>(
    app: &'a App,
    req: Request,
    transport: Transport,
    conn: Option<&'a ConnCtx>,
    arrival: Arrival,
) -> impl std::future::Future<Output = Response> + Send + 'a {
    async move {
        let started = Instant::now();
        let mut signer = Signer::default();
        let mut api = None;
        let result = process(app, &req, transport, conn, arrival, &mut signer, &mut api).await;

        let code = match &result {
            Ok(_) => crate::runtime::metrics::OK,
            Err(e) => e.to_wire().code.as_str(),
        };
        // Only a success is encrypted; errors stay in clear (ZJ-JWE-04).
        let outcome = match result {
            Ok(text) => encrypt(&signer, text).map_err(|e| e.to_wire()),
            Err(e) => {
                if e.is_internal() {
                    tracing::error!(sn = %req.sn, apicode = %req.apicode, error = %e, "request failed");
                } else {
                    tracing::debug!(sn = %req.sn, apicode = %req.apicode, error = %e, "request refused");
                }
                Err(e.to_wire())
            }
        };
        if signer.secret().is_none() && !signer.no_lookup && outcome.is_err() {
            // Boxed for the reason the handlers are (see `process`): only refusals get here.
            let lookup = Box::pin(error_secret(app, &req, api));
            signer.secret = lookup.await;
        }
        // The echoed fields move from the request into the answer.
        let mut response = Response::answering(req, outcome);
        match (&signer.vendor, api) {
            // The vendor's row keeps the sign of its usual heartbeat answer.
            (Some(vendor), Some(ApiCode::Heartbeat)) => response.sign_with_memo(
                ApiCode::Heartbeat,
                vendor.row.access_secret.expose(),
                &vendor.heartbeat_sign,
            ),
            // An unknown apicode is signed like the C_ interfaces (version+success+response).
            _ => {
                if let Some(secret) = signer.secret() {
                    response.sign_with(api.unwrap_or(ApiCode::Heartbeat), secret);
                }
            }
        }
        app.metrics.request(api, transport, code, started.elapsed());
        response
    }
}

/// JWE-encrypts a success response for vendors with a key (ZJ-JWE-02, ZJ-JWE-03).
fn encrypt(signer: &Signer, text: Option<String>) -> Result<Option<String>, DeviceError> {
    match (signer.rsa_public_key(), text) {
        (Some(pem), Some(text)) => {
            let jwe = JweEncrypter::from_public_key_pem(pem)
                .and_then(|k| k.encrypt(text.as_bytes()))
                .map_err(|e| DeviceError::Internal(format!("jwe: {e}")))?;
            Ok(Some(jwe))
        }
        (_, text) => Ok(text),
    }
}

/// The secret to sign an error with, when the platform knows the device's (ZJ-SIGN-11): the
/// registered sn's vendor; for C_AUTH, the presented credential's when it is valid.
async fn error_secret(app: &App, req: &Request, api: Option<ApiCode>) -> Option<String> {
    if api == Some(ApiCode::Auth) {
        let cred = app
            .directory
            .credential(app.store.as_ref(), &req.access_id, now_ms())
            .await
            .ok()??;
        let valid = cred.revoked_at.is_none()
            && crate::accounts::secret_eq(cred.access_key.expose(), &req.access_key);
        return valid.then(|| cred.access_secret.expose().to_owned());
    }
    if req.sn.is_empty() {
        return None;
    }
    crate::services::tasks::device_secret(app, &req.sn)
        .await
        .ok()
        .flatten()
}

/// See [`handle_arrived`] for why this is not an `async fn`.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would keep its arguments twice in every request's future"
)]
fn process<'a>(
    app: &'a App,
    req: &'a Request,
    transport: Transport,
    conn: Option<&'a ConnCtx>,
    arrival: Arrival,
    signer: &'a mut Signer,
    api_out: &'a mut Option<ApiCode>,
) -> impl std::future::Future<Output = Result<Option<String>, DeviceError>> + Send + 'a {
    async move {
        let now = arrival.now;
        let checked = req.check(
            transport,
            Timestamp::from_epoch_ms(now),
            app.settings.clock_skew_secs,
        );
        // Remember the apicode for the response recipe even when a later check fails.
        *api_out = req.apicode.parse().ok();
        let checked = checked?;
        let api = checked.api;

        if api == ApiCode::Auth {
            // A C_AUTH flood is refused per source address before any lookup (so for a source
            // over its budget 429_01 comes before 400_04); a device's own budget is never spent
            // (ZJ-ERR-07).
            if let Some(ip) = arrival.peer
                && !app.addr_limiter.allow(&ip.to_string(), now)
            {
                signer.no_lookup = true;
                return Err(DeviceError::RateLimited);
            }
            // Boxed in a statement of its own, like the handlers below.
            let auth: Handler<'_> = Box::pin(auth::handle(app, req, conn, now, signer));
            return auth.await;
        }
        // ZJ-ERR-07: a request not on a bound connection (HTTP, or TCP before its binding) is
        // unauthenticated until its token checks out. Its source address's failure budget is
        // looked at before any lookup (an exhausted address gets 429_01 at no database cost) and
        // spent by every refusal of the checks below (401_01, 401_02, 400_04, 400_06…); a
        // success spends nothing, so devices sharing an address are not limited by each other's
        // traffic, and a device's own budget is never spent by anyone else's failures.
        let source = arrival
            .peer
            .filter(|_| conn.is_none_or(|c| !c.is_bound()))
            .map(|ip| ip.to_string());
        if let Some(source) = &source
            && !app.failure_limiter.has_budget(source, now)
        {
            signer.no_lookup = true;
            return Err(DeviceError::RateLimited);
        }
        let mut authed = match authenticate(app, req, api, conn, now, signer).await {
            Ok(authed) => authed,
            Err(e) => {
                if let Some(source) = &source
                    && !e.is_internal()
                    && !matches!(e, DeviceError::RateLimited)
                {
                    app.failure_limiter.allow(source, now);
                }
                return Err(e);
            }
        };
        authed.arrival_id = arrival.id;
        // Every interface but the heartbeat is awaited through a box of its own. A request's
        // future is as large as the largest state any of its handlers may reach (a sign-in's
        // group commit, a person page's queries: kilobytes), and the gateway moves every
        // request's future into a box when it arrives: sized so, the heartbeat, answered from
        // memory at the first poll, paid for copying and allocating all of it (BENCHMARKS.md,
        // "sixth machine"). One more allocation is nothing next to the work of the others.
        // The box is made in a statement of its own and awaited after it: a handler's future
        // made inside the awaited expression is a temporary of that statement, and the state
        // kept room for it across the await all the same, in every request's future
        // (BENCHMARKS.md, session 13).
        let handler: Handler<'_> = match api {
            ApiCode::Auth => unreachable!("handled above"),
            ApiCode::Heartbeat => return heartbeat::handle(app, req, &authed).await,
            ApiCode::SignIn => Box::pin(sign_in::handle(app, req, &authed, arrival.ticket)),
            ApiCode::GetTasks => Box::pin(tasks::get_tasks(app, req, &authed)),
            ApiCode::UpdateTasksStatus => Box::pin(tasks::update_status(app, req, &authed)),
            ApiCode::SendPerson | ApiCode::UpdateDevicePerson => {
                Box::pin(persons::page(app, req, api, &authed))
            }
            ApiCode::DelDevicePerson => Box::pin(persons::delete(app, req, &authed)),
            ApiCode::ClearDevicePerson => Box::pin(persons::clear(app, req, &authed)),
            ApiCode::UpdateDeviceVersion => Box::pin(persons::firmware(app, req, &authed)),
            ApiCode::PostDevicePerson => Box::pin(persons::reconcile(app, req, &authed)),
            ApiCode::CollectPerson => Box::pin(collect::handle(app, req, &authed)),
        };
        handler.await
    }
}

/// An interface's handler, boxed (see the end of [`process`]).
type Handler<'a> =
    Pin<Box<dyn std::future::Future<Output = Result<Option<String>, DeviceError>> + Send + 'a>>;

/// Device (400_06) → credentials (401_02) → token (401_01) → owner and sign (400_04) →
/// connection binding (400_04) → rate limit (429_01).
async fn authenticate(
    app: &App,
    req: &Request,
    api: ApiCode,
    conn: Option<&ConnCtx>,
    now: i64,
    signer: &mut Signer,
) -> Result<Authed, DeviceError> {
    // Read before any row (see `session`): a row forgotten after this read moves it.
    let epoch = app.directory.epoch();
    if let Some(conn) = conn
        && let Some((session, sn)) = by_session(app, &req.view(), conn, now, epoch)
    {
        let device = Arc::clone(&session.device);
        let vendor = signer.vendor.insert(VendorRef::Session(session));
        verify_sign(api, &req.view(), vendor.row.access_secret.expose())?;
        if !within_budget(app, api, &req.sn, now) {
            return Err(DeviceError::RateLimited);
        }
        return Ok(Authed {
            device,
            sn,
            arrival_id: 0,
            now,
        });
    }
    let device = app
        .directory
        .device(app.store.as_ref(), &req.sn, now)
        .await?;
    match &device {
        None if !app.settings.auto_register => return Err(DeviceError::DeviceUnavailable),
        Some(d) if !d.enabled => return Err(DeviceError::DeviceUnavailable),
        _ => {}
    }
    let owner = match app
        .tokens
        .validate(app.store.as_ref(), &req.token, now)
        .await?
    {
        TokenCheck::Valid(owner) => owner,
        TokenCheck::Unknown => return Err(DeviceError::TokenNotFound),
        // ZJ-CRED-03 precedes ZJ-TOKEN-02: an expired token of since-revoked credentials
        // answers 401_02, the code that tells the device to fetch new credentials.
        TokenCheck::Expired { access_id } => {
            let cred = app
                .directory
                .credential(app.store.as_ref(), &access_id, now)
                .await?;
            return Err(if cred.is_none_or(|c| c.revoked_at.is_some()) {
                DeviceError::CredentialsRevoked
            } else {
                DeviceError::TokenNotFound
            });
        }
    };
    let cred = app
        .directory
        .credential(app.store.as_ref(), &owner.access_id, now)
        .await?;
    // ZJ-CRED-03: a token issued under credentials since rotated gets 401_02.
    if cred.as_ref().is_none_or(|c| c.revoked_at.is_some()) {
        return Err(DeviceError::CredentialsRevoked);
    }
    // ZJ-TOKEN-04: a token presented with another device's sn gets 400_04.
    if *owner.sn != *req.sn {
        return Err(DeviceError::AuthFailed("token of another device"));
    }
    let device = device.ok_or(DeviceError::AuthFailed("token for an unknown device"))?;
    let vendor = app
        .directory
        .vendor(app.store.as_ref(), device.vendor_id, now)
        .await?
        .ok_or(DeviceError::AuthFailed("device of an unknown vendor"))?;
    // From here on every answer, a refusal too, is signed with the vendor's secret (ZJ-SIGN-11).
    // Moved, not cloned: every device of a vendor shares this `Arc`, so each reference-count
    // change is a cache line passed between the cores.
    let vendor = signer.vendor.insert(VendorRef::Row(vendor));
    verify_sign(api, &req.view(), vendor.row.access_secret.expose())?;
    if let Some(conn) = conn {
        conn.bind(app, &owner.sn)?;
    }
    if !within_budget(app, api, &req.sn, now) {
        return Err(DeviceError::RateLimited);
    }
    if let Some(conn) = conn
        && let VendorRef::Row(vendor) = vendor
    {
        conn.authenticated(|| {
            let since =
                app.directory
                    .rows_since(&owner.sn, &owner.access_id, device.vendor_id, now)?;
            Session::new(
                &req.token,
                Arc::clone(&device),
                Arc::clone(vendor),
                since,
                epoch,
            )
        });
    }
    Ok(Authed {
        device,
        sn: owner.sn,
        arrival_id: 0,
        now,
    })
}

/// The connection's copy of its device's rows, with the bound sn, when it holds for `req`
/// (see [`session`]) and the token it was found for is still valid, its idle expiry slid
/// (ZJ-TOKEN-02). Then the device is enabled and its credential not revoked (they were, and
/// the rows have not changed), and the connection is bound to the request's sn; the sign and
/// the rate limit are still to check.
fn by_session(
    app: &App,
    req: &RequestView<'_>,
    conn: &ConnCtx,
    now: i64,
    epoch: u64,
) -> Option<(Arc<Session>, Arc<str>)> {
    conn.session_for(req, now, epoch, app.directory.ttl_ms())
        .filter(|(session, _)| app.tokens.touch(session.token(), now))
}

/// ZJ-ERR-07: the device's budget, checked after the token; never spent by C_SIGN_IN. A
/// refusal spends nothing, so asking twice refuses twice.
fn within_budget(app: &App, api: ApiCode, sn: &str, now: i64) -> bool {
    api == ApiCode::SignIn || app.limiter.allow(sn, now)
}

/// The request signature (400_04), or 400_02 when the image cut cannot tokenize the param.
fn verify_sign(api: ApiCode, req: &RequestView<'_>, secret: &str) -> Result<(), DeviceError> {
    sign::verify_request(api, &req.sign_fields(), req.param_alt, secret, req.sign).map_err(|e| {
        match e {
            SignError::Untokenizable(j) => DeviceError::param(j.to_string()),
            SignError::Mismatch => DeviceError::AuthFailed("sign"),
        }
    })
}

/// Parses the request's param as `T` (400_02 naming the member).
fn param<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, DeviceError> {
    Ok(params::parse(req.param.as_deref().unwrap_or("{}"))?)
}

/// A success response carrying `value` as strict JSON.
fn reply<T: Serialize>(value: &T) -> Result<Option<String>, DeviceError> {
    Ok(Some(params::to_json(value)))
}

/// The request's taskid as a number; anything else names no task (405_01).
fn taskid(req: &Request) -> Result<i64, DeviceError> {
    req.taskid
        .parse::<u64>()
        .ok()
        .and_then(|t| i64::try_from(t).ok())
        .ok_or_else(|| DeviceError::TaskNotFound(req.taskid.clone()))
}

/// Answers a request refused before the pipeline (e.g. a path apicode that contradicts the
/// body), signed like any other error.
pub async fn refuse(app: &App, req: &Request, error: rollcall_protocol::ProtocolError) -> Response {
    let api = req.apicode.parse().ok();
    let mut response = Response::to(req, Err(error));
    if let Some(secret) = error_secret(app, req, api).await {
        response.sign_with(api.unwrap_or(ApiCode::Heartbeat), &secret);
    }
    response
}
