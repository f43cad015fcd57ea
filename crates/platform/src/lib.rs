//! # rollcall-platform
//!
//! The platform every attendance device connects to: [`app::Platform::build`] opens storage,
//! [`app::Platform::run`] serves the TCP gateway and the HTTP surface on listeners the caller
//! has bound, until a shutdown future completes.
//!
//! ## Layout (one module per resource or interface)
//! - [`app`]: startup, run loop, graceful shutdown, background write-behind.
//! - [`config`]: typed settings and their defaults.
//! - [`state`]: the explicit state every handler gets.
//! - [`gateway`]: the TCP gateway — one task per connection, pipelined, push.
//! - [`http`]: the HTTP router — device API, signed files; [`admin`]: the admin REST API;
//!   [`console`]: the web console.
//! - [`dispatch`]: the request pipeline shared by TCP and HTTP, one module per interface.
//! - [`error`]: device-layer errors and their one mapping onto wire codes.
//! - [`services`]: business rules (tasks, devices, workers, vendors, attendance, reconcile).
//! - [`store`]: storage behind a trait; one portable SQL implementation, migrations per backend.
//! - [`ingest`]: durable attendance ingest with group commit.
//! - [`directory`]: a short-lived cache of the rows the authentication path reads.
//! - [`presence`], [`tokens`], [`ratelimit`], [`registry`]: in-memory state of devices.
//! - [`blobs`]: photo storage — segments for attendance photos, files for faces.
//! - [`signed_url`], [`geo`], [`idcard`], [`photo`]: small domain rules.
//! - [`metrics`]: Prometheus metrics of one instance.
//! - [`cluster`]: cross-node push over PostgreSQL LISTEN/NOTIFY.

pub mod accounts;
pub mod admin;
pub mod app;
pub mod blobs;
pub mod cluster;
pub mod config;
pub mod console;
pub mod directory;
pub mod dispatch;
pub mod error;
pub mod face;
pub mod gateway;
pub mod geo;
pub mod http;
pub mod idcard;
pub mod ingest;
pub mod metrics;
pub mod photo;
pub mod presence;
pub mod ratelimit;
pub mod registry;
pub mod reports;
pub mod roster_import;
pub mod services;
pub mod signed_url;
pub mod state;
pub mod store;
pub mod tokens;
pub mod util;
pub mod validate;

pub use app::{Listeners, Platform, StartupError};
pub use config::Settings;
