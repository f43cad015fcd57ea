//! # rollcall-protocol
//!
//! The device protocol of the Zhejiang real-name attendance standard, as resolved in
//! `PROTOCOL.md`, with **no I/O**: no sockets, no files, no async runtime, and no clock reads
//! in any of its rules — they take "now" as an input. The one clock read it offers is
//! [`time::now_ms`], for callers only (no function of the crate calls it), so that the platform,
//! the device SDK and the tools share one definition of "now".
//! The platform and the device SDK both stand on this crate, so every rule of the wire
//! (framing, sign recipes, error codes and their Chinese messages, lenient JSON, photo formats,
//! task params, the `400_05` detail) exists once.
//!
//! ## Layout
//! - [`packet`]: the protobuf `Packet` (`proto/packet.proto`).
//! - [`frame`]: varint length framing; an incremental decoder that tells "need more bytes"
//!   from "corrupt" and refuses oversize frames before buffering them.
//! - [`apicode`]: the interface identifiers and what each requires.
//! - [`code`]: error codes, their standard messages, their precedence; [`code::ProtocolError`].
//! - [`json`]: the lenient JSON of ZJ-JSON-01 — a tokenizer, JSON5 → strict JSON, the img cut.
//! - [`envelope`]: a request or response independent of transport (TCP packet or HTTP body).
//! - [`wire`]: the gateway's path through the packet: a request body straight into a
//!   [`envelope::Request`], an answer straight into its frame, the bytes prost's make.
//! - [`params`]: typed params and responses of every interface, read leniently (ZJ-JSON-02).
//! - [`sign`]: the signature recipes (ZJ-SIGN-05, ZJ-SIGN-09) and constant-time verification.
//! - [`time`]: Beijing-time `yyyyMMddHHmmss`, the clock-skew check and its `400_05` detail,
//!   Beijing dates, and [`time::now_ms`].
//! - [`photo`]: JPEG or PNG, from the magic bytes (ZJ-SIGNIN-04).
//! - [`jwe`]: JWE compact RSA-OAEP-256 + A256GCM (ZJ-JWE-02).
//! - [`ids`]: [`ids::Secret`], for tokens and secrets.

pub mod apicode;
pub mod code;
pub mod envelope;
pub mod frame;
pub mod ids;
pub mod json;
pub mod jwe;
pub mod packet;
pub mod params;
pub mod photo;
pub mod sign;
pub mod time;
pub mod wire;

pub use apicode::ApiCode;
pub use code::{ErrorCode, ProtocolError};
pub use packet::Packet;

/// The protocol version this crate speaks and writes into packets it creates.
pub const PROTOCOL_VERSION: &str = "v1.0.0";
