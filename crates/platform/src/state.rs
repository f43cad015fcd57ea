//! The explicit state every handler receives: no globals, so two platforms can run in one
//! test process.

use std::sync::Arc;

use rollcall_protocol::ids::Secret;

use crate::config::Settings;
use crate::runtime::auth_cache::Directory;
use crate::runtime::device_tokens::Tokens;
use crate::runtime::ingest::Ingest;
use crate::runtime::metrics::Metrics;
use crate::runtime::presence::Presence;
use crate::runtime::ratelimit::RateLimiter;
use crate::runtime::registry::Registry;
use crate::runtime::util::IdGen;
use crate::store::Store;
use crate::store::blobs::BlobStore;
use rollcall_rules::signed_url::UrlSigner;

/// Shared by every connection, request and background task of one platform instance.
pub type AppState = Arc<App>;

#[derive(Debug)]
pub struct App {
    pub settings: Settings,
    /// This process's name among the nodes sharing the database: `{node_id}-{8 random hex}`
    /// (`n-…` without a node id). A restarted node is a new instance: whatever the old one
    /// held is not its own.
    pub node: Arc<str>,
    pub store: Arc<dyn Store>,
    /// Attendance photos (a batch at a time), faces, firmware and import reports: this
    /// node's disk or an S3-compatible store shared by every node.
    pub blobs: Arc<dyn BlobStore>,
    /// The face detector of the enrolment photo rules; `None` when `face_rules` is off.
    pub faces: Option<Arc<rollcall_rules::face::FaceChecker>>,
    pub signer: UrlSigner,
    pub registry: Arc<Registry>,
    /// Device, credential and vendor rows of the authentication path, cached briefly.
    pub directory: Directory,
    pub presence: Presence,
    pub tokens: Tokens,
    /// Per-device budgets (429_01), spent after the token checks out.
    pub limiter: RateLimiter,
    /// Per-source-address budgets for C_AUTH, so unauthenticated floods never spend a
    /// device's budget.
    pub addr_limiter: RateLimiter,
    /// Per-source-address budgets of unauthenticated requests' failures (bad token, bad sign,
    /// unknown device…): looked at before their lookups, spent only by their refusals.
    pub failure_limiter: RateLimiter,
    pub ingest: Ingest,
    pub ids: IdGen,
    pub metrics: Arc<Metrics>,
    pub admin_token: Secret,
    /// Password hashing, at most `max_password_hashes` at once.
    pub hasher: crate::runtime::password::Hasher,
    /// Failed sign-ins per username and per address.
    pub login_throttle: crate::runtime::login_throttle::LoginThrottle,
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.backend())
    }
}

impl App {
    /// The signed, expiring absolute URL of a stored file (`/files/{key}`).
    pub fn file_url(&self, key: &str, now_ms: i64) -> String {
        self.signer
            .sign(&format!("/files/{key}"), (now_ms / 1000).max(0) as u64)
    }
}
