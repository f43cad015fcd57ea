//! Serving the HTTP surface ([`super::router`]) with bounds no client can push past: hyper's
//! HTTP/1 connection driver (axum's `serve` sets no timer, so no header timeout) with
//!
//! - a **header read timeout** (`http_header_timeout_secs`): a connection that has not sent a
//!   whole request header by then — silent, or a header dribbled byte by byte — is closed;
//! - a **request timeout** (`http_request_timeout_secs`): a request, its body included (the
//!   handlers read bodies streamed against their limits), not answered by then gets 408 and
//!   its body's memory goes;
//! - a **cap on connections** (`max_http_connections`): beyond it, connections wait in the
//!   listen queue and hold no descriptor of the process, so idle HTTP clients can never starve
//!   the device TCP listener of file descriptors;
//! - a **cap per source address** (`max_http_connections_per_addr`): beyond it a connection
//!   is closed at once, so one address cannot take every slot;
//! - a **bounded drain** at shutdown: connections get `shutdown_grace_secs` to finish, then
//!   are dropped;
//! - with `tls_cert` / `tls_key`, **HTTPS only** ([`super::tls`]): the TLS handshake runs in
//!   the connection's own task (the accept loop never waits on a client), holding the
//!   connection's slot, and must complete within the header timeout; a connection that does
//!   not (silent, or not speaking TLS) is closed. The header timeout then starts afresh for
//!   the first request.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower_service::Service as _;

use crate::state::AppState;

/// Serves `router` on `listener` until `shutdown` turns true, then lets every connection
/// finish within the shutdown grace and drops the rest.
pub async fn serve(
    app: AppState,
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let settings = &app.settings;
    let slots = Arc::new(Semaphore::new(settings.max_http_connections.max(1)));
    let per_addr = Arc::new(PerAddr {
        counts: Mutex::new(HashMap::new()),
        limit: settings.max_http_connections_per_addr.max(1),
    });
    let bounds = Bounds {
        header: Duration::from_secs(settings.http_header_timeout_secs.max(1)),
        request: Duration::from_secs(settings.http_request_timeout_secs.max(1)),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    loop {
        let (slot, stream, peer) = tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => break,
            // Finished connections are reaped as they end.
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            // Cancel-safe: a slot not yet used goes back; an accept not completed stays queued.
            accepted = accept(&slots, &listener) => accepted,
        };
        let Some(at_addr) = PerAddr::enter(&per_addr, peer.ip()) else {
            tracing::debug!(ip = %peer.ip(), "too many HTTP connections from one address");
            drop(stream);
            continue;
        };
        let router = router.clone();
        let mut stop = stop_rx.clone();
        let tls = tls.clone();
        conns.spawn(async move {
            // The slot and the address's place are held through the handshake too.
            let _held = (slot, at_addr);
            let Some(tls) = tls else {
                return connection(stream, router, peer, &bounds, stop).await;
            };
            let handshake = tokio::select! {
                done = tokio::time::timeout(bounds.header, tls.accept(stream)) => done,
                // Nothing in flight yet: nothing to drain.
                _ = stop.wait_for(|s| *s) => return,
            };
            match handshake {
                Ok(Ok(stream)) => connection(stream, router, peer, &bounds, stop).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let grace = Duration::from_secs(app.settings.shutdown_grace_secs);
    let drained =
        tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!("shutdown grace over: dropping the HTTP connections left");
        conns.shutdown().await;
    }
}

/// The timeouts every connection is served with.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    /// For the whole request header; with TLS, for the handshake as well (each in turn).
    header: Duration,
    /// For a request and its body.
    request: Duration,
}

/// Serves one connection (plain TCP or TLS) until it closes, or until `stop` turns true and
/// the request in flight is answered.
async fn connection<S>(
    stream: S,
    router: Router,
    peer: SocketAddr,
    bounds: &Bounds,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let request_timeout = bounds.request;
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let call = router.clone().call(req);
        async move {
            Ok::<Response, Infallible>(match tokio::time::timeout(request_timeout, call).await {
                Ok(Ok(resp)) => resp,
                Ok(Err(never)) => match never {},
                Err(_) => timed_out(),
            })
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(bounds.header);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}

/// A connection slot, then a connection.
async fn accept(
    slots: &Arc<Semaphore>,
    listener: &TcpListener,
) -> (OwnedSemaphorePermit, TcpStream, SocketAddr) {
    loop {
        let Ok(slot) = Arc::clone(slots).acquire_owned().await else {
            // The slots are never closed.
            std::future::pending::<()>().await;
            continue;
        };
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => return (slot, stream, peer),
                Err(e) => {
                    // EMFILE and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// 408 for a request not answered within `http_request_timeout_secs`, in the admin API's
/// error shape.
fn timed_out() -> Response {
    (
        StatusCode::REQUEST_TIMEOUT,
        axum::Json(serde_json::json!({
            "error": { "code": "request_timeout", "message": "请求超时" }
        })),
    )
        .into_response()
}

/// Open HTTP connections per source address.
#[derive(Debug)]
struct PerAddr {
    counts: Mutex<HashMap<IpAddr, usize>>,
    limit: usize,
}

/// One connection's place in its address's count; given back on drop.
struct AtAddr {
    per_addr: Arc<PerAddr>,
    ip: IpAddr,
}

impl PerAddr {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one more connection from `ip`, unless it has `limit` already.
    fn enter(this: &Arc<Self>, ip: IpAddr) -> Option<AtAddr> {
        let mut counts = this.lock();
        let n = counts.entry(ip).or_insert(0);
        if *n >= this.limit {
            return None;
        }
        *n += 1;
        Some(AtAddr {
            per_addr: Arc::clone(this),
            ip,
        })
    }
}

impl Drop for AtAddr {
    fn drop(&mut self) {
        let mut counts = self.per_addr.lock();
        if let Some(n) = counts.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}
