//! The platform's socket-level integration suite: a real platform in-process, real TCP and
//! HTTP, every request signed and every response verified as a device would (docs/PROTOCOL.md).
//!
//! One binary, one module per area; the harness is in `helpers`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

mod access;
mod auth;
mod authz;
mod bounds;
mod collect;
mod console;
mod contract;
mod durability;
mod errors;
mod framing;
mod hardening;
mod heartbeat;
mod helpers;
mod http;
mod jwe;
mod login;
mod matrix;
mod persons;
mod photo_store;
mod pipelining;
mod precedence;
mod presence;
mod session;
mod sign_in;
mod tasks;
mod tls;
mod uplink;
mod webhooks;
mod workforce;

#[path = "../support/national.rs"]
mod national;
