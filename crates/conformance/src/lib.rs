//! # rollcall-conformance — the conformance kit
//!
//! Certifies a vendor's terminal or a third-party platform against `docs/PROTOCOL.md`, rule
//! by rule, on the model of OCPP's compliance test tool (either side of the protocol, one case
//! per requirement), Eclipse IoT-Testware (cases tied to clause ids, selected by declared
//! features) and the LwM2M test fests (five defined verdicts).
//!
//! ## Layout
//! - [`catalogue`]: the cases, each naming the `ZJ-…` rules it checks; the rules no case can
//!   check, with reasons.
//! - [`features`]: what the system under test declares (apicodes, device kinds, JWE).
//! - [`verdict`]: pass, fail, inconclusive, not applicable, error — each defined.
//! - [`evidence`]: the frames sent and received, with times, credentials masked.
//! - [`report`]: results; JSON, self-contained HTML and JUnit XML.
//! - [`probe`]: the kit as a device (TCP and HTTP through `rollcall-protocol`).
//! - [`platform`]: platform mode — the cases run against a platform.
//! - [`device`]: device mode — the kit plays the platform for a terminal.
//!
//! The wire — framing, sign recipes, error codes, params — comes from `rollcall-protocol`:
//! the kit re-implements none of it, so what it checks is what the platform and the SDK
//! implement, and a disagreement between them is a bug in one of the three.

pub mod catalogue;
pub mod device;
pub mod evidence;
pub mod features;
pub mod platform;
pub mod probe;
pub mod report;
pub mod verdict;

pub use catalogue::{CASES, Case, Side, UNTESTABLE};
pub use features::{Features, Kind};
pub use report::{CaseResult, Report};
pub use verdict::Verdict;

/// What stops a case before it can judge: an environment or kit failure (verdict `error`),
/// unless the case turns it into a check.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KitError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("I/O: {0}")]
    Io(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("connection {0} closed by the peer")]
    Closed(String),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("set-up through the admin API failed: {0}")]
    Admin(String),
    #[error("{0}")]
    Setup(String),
}

impl From<rollcall_client::ClientError> for KitError {
    fn from(e: rollcall_client::ClientError) -> Self {
        KitError::Admin(e.to_string())
    }
}
