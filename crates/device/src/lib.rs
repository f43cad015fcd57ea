//! # rollcall-device — the device SDK (reference attendance terminal)
//!
//! The device side of the Zhejiang attendance protocol (`PROTOCOL.md`), for vendors to embed
//! in their terminals (RC-DEV-22) and for Rollcall's simulator, benchmarks and tests. The wire
//! itself — framing, signatures, params, error codes — comes from `rollcall-protocol`, exactly
//! as the platform uses it: nothing of the protocol is written twice.
//!
//! ## Layout
//! - [`session`]: the TCP session and offline queue as a **state machine without I/O**
//!   (events in, actions out): auth, heartbeat, re-auth, reconnect with jittered backoff, a
//!   window of pipelined sign-ins, hand-back of in-flight records on reconnect, commands.
//! - [`device`]: the thin network layer that drives the session ([`Device::run`]), and the
//!   [`DeviceHandle`] an application uses (enqueue records, dead letters, counts).
//! - [`tasks`]: every task apicode, executed over HTTP and reported.
//! - [`http`]: signed HTTP calls, verified answers, downloads.
//! - [`store`]: the SQLite store (persons, faces, the durable queue, dead letters, task log)
//!   on its own thread, with group commit.
//! - [`record`]: attendance records (one typed constructor per method: face, iris, mobile
//!   with its coordinate, QR with its code info), queued records, dead letters.
//! - [`kind`]: the kinds of terminal (face, iris, mobile, QR, gate in/out, collector) and
//!   how the platform is told a device's kind and a gate's direction.
//! - [`collect`]: the collection device — enrol a worker with `X_COLLECT_PERSON`.
//! - [`photo`]: what a usable photo is; sample pictures.
//! - [`config`], [`error`], [`backoff`]: configuration (the device's and the session's),
//!   errors that know whether a retry can help, jittered backoff.
//! - [`codes`]: the device's own errCodes for failed persons and faces.
//!
//! `docs/VENDOR_GUIDE.md` (English and Chinese) explains how to embed it.

pub mod backoff;
pub mod codes;
pub mod collect;
pub mod config;
pub mod device;
pub mod error;
mod event;
pub mod http;
pub mod kind;
pub mod photo;
pub mod record;
pub mod session;
pub mod store;
pub mod tasks;

pub use collect::{CollectedPerson, Collector};
pub use config::{Credentials, DeviceConfig, Tuning};
pub use device::{Device, DeviceEvent, DeviceHandle, DeviceStats};
pub use error::{CollectError, RecordError, SdkError};
pub use kind::{GateDirection, TerminalKind};
pub use record::{AttendanceRecord, DeadLetter, QueuedRecord};
pub use session::{Action, Event, Session, SessionConfig, SessionState, Timer};
pub use store::{StoreError, StoreHandle};
