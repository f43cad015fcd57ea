//! Reporting to the national (and provincial) real-name platform — docs/UPLINK.md.
//!
//! One module per concern:
//! - [`codec`]: the wire format as pure functions (envelope, SHA-256 signature, AES-256-CBC
//!   ID numbers, answers, async statuses) with UPLINK.md's known-answer vectors as tests;
//! - [`client`]: the HTTP call, classifying failures as unavailable / in doubt / refused;
//! - [`photo`]: head images re-encoded to ≤ 50 KB JPEG;
//! - [`dictionaries`]: work types, politics types, nations, and why a worker would be refused;
//! - [`items`]: what each outbox item becomes on the wire, or why it waits or is refused;
//! - [`sender`]: the background loop that moves each project's outbox, one node per
//!   project (a lease), in queue order;
//! - [`webhooks`]: the outbox's second profile, signed webhooks delivered to integrators.
//!
//! The outbox itself is storage ([`crate::store::UplinkStore`], `store/sql/uplink.rs`): rows
//! are written in the same transaction as the team, membership or attendance record they
//! report. The admin API is `web/admin/uplink.rs`.

pub mod client;
pub mod codec;
pub mod dictionaries;
pub mod items;
pub mod photo;
pub mod sender;
pub mod webhooks;
