//! In-memory state of one node, written behind to the store: what the hot device path reads
//! and updates without a database round trip on every request.
//!
//! - [`auth_cache`]: the device, credential and vendor rows of the authentication path,
//!   cached briefly.
//! - [`device_tokens`]: device tokens with sliding idle expiry.
//! - [`presence`]: online/offline state from heartbeats, flushed behind.
//! - [`ratelimit`]: token buckets per device and per source address.
//! - [`registry`]: the devices connected to this node, for push; newest connection wins.
//! - [`ingest`]: durable attendance ingest with group commit.
//! - [`login_throttle`]: failed sign-ins per username and source address, with lockouts.
//! - [`password`]: argon2id password hashing, bounded to a few at a time ([`password::Hasher`]).
//! - [`metrics`]: Prometheus metrics of this instance.
//! - [`memory`]: freed memory given back to the system after a burst.
//! - [`util`]: interning, random secrets, id generation.

pub(crate) mod auth_cache;
pub(crate) mod device_tokens;
pub(crate) mod ingest;
pub(crate) mod login_throttle;
pub(crate) mod memory;
pub(crate) mod metrics;
pub(crate) mod password;
pub(crate) mod presence;
pub(crate) mod ratelimit;
pub(crate) mod registry;
pub mod util;
