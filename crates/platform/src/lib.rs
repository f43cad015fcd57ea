//! # rollcall-platform
//!
//! The platform every attendance device connects to: [`Platform::build`] opens storage,
//! [`Platform::run`] serves the TCP gateway and the HTTP surface on listeners the caller
//! has bound, until a shutdown future completes.
//!
//! ## Layout: layers, top to bottom (a module imports only from the layers below it)
//! | layer | owns |
//! |---|---|
//! | `app`, [`config`], [`state`] | startup, run loop, shutdown; typed settings; the explicit state every handler gets |
//! | `transport` | TCP gateway, HTTP device API, signed files, registry of connections, cross-node push |
//! | `web` | admin REST API (+ OpenAPI) and the console: thin mappings onto services |
//! | `pipeline` | the device request pipeline shared by TCP and HTTP, one module per interface; device errors → wire codes |
//! | `services` | every business rule and every scoped read: the one place that decides who sees and changes what |
//! | `accounts` | principals, roles, sessions, personal tokens, audit |
//! | `runtime` | in-memory state written behind: auth cache, device tokens, presence, rate limits, ingest, metrics |
//! | [`rules`] | pure rules without I/O: fences, ID cards, fields, photos, faces, signed URLs, reports, roster files (the `rollcall-rules` crate, re-exported) |
//! | [`store`] | storage: one trait per aggregate, the SQL backend, photo blobs, database-to-database copy |
//!
//! The wire protocol itself (framing, signatures, error codes, params) is not here: it lives
//! once in `rollcall-protocol`, which the device SDK uses too.

mod accounts;
mod app;
pub mod config;
mod pipeline;
mod runtime;
mod services;
pub mod state;
pub mod store;
mod transport;
pub mod uplink;
mod web;

pub use app::{Listeners, Platform, StartupError};
pub use config::Settings;
pub use rollcall_rules as rules;
pub use runtime::util;
pub use transport::tls::TlsError;
