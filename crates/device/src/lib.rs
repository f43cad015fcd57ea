//! # rollcall-device — the device SDK (reference attendance terminal)
//!
//! The device side of the protocol, for vendors to embed and for Rollcall's simulator and
//! benchmarks. It will own the session state machine (auth, heartbeat, re-auth), command
//! handling, task execution, the local person store and the durable offline record queue;
//! the wire itself (framing, signatures, params) comes from `rollcall-protocol`, exactly as
//! the platform uses it.
//!
//! Status: the crate marks the boundary of the workspace's architecture; its contents arrive
//! with the device SDK issue. Nothing here is exported yet.
