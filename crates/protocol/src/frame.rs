//! Varint length framing of the TCP transport (ZJ-FRAME-01).
//!
//! `frame = varint(len(body)) ‖ body`, `body` a protobuf [`Packet`]. The decoder is
//! incremental and pure: it looks at the front of a buffer and says "a packet", "need more
//! bytes" (and how many) or "corrupt". The length is checked against the limit **before**
//! any body is buffered, so a peer cannot make us reserve memory it never sends; a varint
//! longer than 5 bytes is corrupt. The async connection code around it is a thin loop.

use std::ops::Deref;

use bytes::{Buf, BytesMut};
use prost::Message;

use crate::code::ErrorCode;
use crate::envelope::{Request, RequestView};
use crate::packet::Packet;

/// Default limit on one frame's body (`max_frame_bytes`, 2 MiB; ZJ-FRAME-03).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 2 * 1024 * 1024;
/// A length varint may not be longer than this (5 bytes carry 35 bits; ZJ-FRAME-03).
pub const MAX_VARINT_BYTES: usize = 5;

/// Why a byte stream is not a valid frame sequence (ZJ-FRAME-03). Every variant ends the
/// connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("length varint longer than {MAX_VARINT_BYTES} bytes")]
    VarintTooLong,
    #[error("frame of {len} bytes exceeds the {limit}-byte limit")]
    Oversize { len: u64, limit: usize },
    #[error("frame body is not a valid Packet: {0}")]
    Body(String),
}

impl FrameError {
    /// The code of the one error packet sent before closing (ZJ-FRAME-04).
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::Oversize { .. } => ErrorCode::TooLarge,
            FrameError::VarintTooLong | FrameError::Body(_) => ErrorCode::ParamInvalid,
        }
    }
}

/// What the front of a buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// The length varint is not complete yet.
    NeedHeader,
    /// A complete header: `header_len` bytes of varint announcing `body_len` bytes of body.
    Frame { header_len: usize, body_len: usize },
}

impl Head {
    /// Total bytes the buffer must hold before the next frame can be decoded, if known.
    pub fn frame_len(self) -> Option<usize> {
        match self {
            Head::NeedHeader => None,
            Head::Frame {
                header_len,
                body_len,
            } => Some(header_len + body_len),
        }
    }
}

/// Reads the length varint at the front of `buf` and checks it against `max_frame_bytes`.
///
/// At most [`MAX_VARINT_BYTES`] are looked at, so the verdict (and the refusal of an
/// oversize length) comes before a single body byte is buffered (ZJ-FRAME-03).
pub fn read_head(buf: &[u8], max_frame_bytes: usize) -> Result<Head, FrameError> {
    let mut len: u64 = 0;
    for (i, &byte) in buf.iter().take(MAX_VARINT_BYTES).enumerate() {
        len |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if len > max_frame_bytes as u64 {
                return Err(FrameError::Oversize {
                    len,
                    limit: max_frame_bytes,
                });
            }
            return Ok(Head::Frame {
                header_len: i + 1,
                // Bounded by max_frame_bytes, which is a usize.
                body_len: len as usize,
            });
        }
    }
    if buf.len() >= MAX_VARINT_BYTES {
        Err(FrameError::VarintTooLong)
    } else {
        Ok(Head::NeedHeader)
    }
}

/// An incremental frame decoder with a size limit.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES)
    }
}

impl FrameDecoder {
    pub fn new(max_frame_bytes: usize) -> Self {
        FrameDecoder { max_frame_bytes }
    }

    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// Decodes one packet from the front of `buf`, consuming its bytes; a partial frame stays
    /// in `buf` until it is complete (ZJ-FRAME-02).
    ///
    /// `Ok(None)`: need more bytes (`buf` untouched; see [`FrameDecoder::needed`]).
    /// `Err`: the stream is corrupt and the connection must end.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Packet>, FrameError> {
        self.decode_with(buf, |body| {
            Packet::decode(body).map_err(|e| FrameError::Body(e.to_string()))
        })
    }

    /// [`FrameDecoder::decode`] straight into the [`Request`] the packet carries, without a
    /// `Packet` in between ([`crate::wire`]): the platform's gateway reads requests so. `buf`
    /// is a `BytesMut` or a `&[u8]` (a read on the stack), advanced past the frame.
    pub fn decode_request<B: Buf + Deref<Target = [u8]>>(
        &self,
        buf: &mut B,
    ) -> Result<Option<Request>, FrameError> {
        self.decode_request_view(buf, |view| view.to_request())
    }

    /// The next whole frame's request, borrowed from the buffer and given to `use_it`
    /// ([`wire::decode_request_view`](crate::wire::decode_request_view)); the frame is
    /// consumed. What [`Self::decode_request`] does without copying the fields first.
    pub fn decode_request_view<T, B: Buf + Deref<Target = [u8]>>(
        &self,
        buf: &mut B,
        use_it: impl FnOnce(RequestView<'_>) -> T,
    ) -> Result<Option<T>, FrameError> {
        self.decode_with(buf, |body| {
            crate::wire::decode_request_view(body)
                .map(use_it)
                .map_err(|e| FrameError::Body(e.to_string()))
        })
    }

    /// The next whole frame's body, given to `decode` in place and consumed: decoders copy
    /// what they keep, and splitting the body off first cost an allocation per frame.
    fn decode_with<T, B: Buf + Deref<Target = [u8]>>(
        &self,
        buf: &mut B,
        decode: impl FnOnce(&[u8]) -> Result<T, FrameError>,
    ) -> Result<Option<T>, FrameError> {
        let Head::Frame {
            header_len,
            body_len,
        } = self.head(buf)?
        else {
            return Ok(None);
        };
        let total = header_len + body_len;
        if buf.len() < total {
            return Ok(None);
        }
        let decoded = decode(&buf[header_len..total]);
        buf.advance(total);
        decoded.map(Some)
    }

    /// The head of `buf`, checked against this decoder's limit.
    pub fn head(&self, buf: &[u8]) -> Result<Head, FrameError> {
        read_head(buf, self.max_frame_bytes)
    }

    /// How many more bytes `buf` needs before the next frame is complete: exact once the
    /// header is known, else 1. Lets a connection size its buffer to need.
    pub fn needed(&self, buf: &[u8]) -> Result<usize, FrameError> {
        Ok(match self.head(buf)?.frame_len() {
            Some(total) => total.saturating_sub(buf.len()),
            None => 1,
        })
    }
}

/// Appends one frame holding `packet` to `dst`.
pub fn encode(packet: &Packet, dst: &mut BytesMut) {
    let len = packet.encoded_len();
    dst.reserve(prost::length_delimiter_len(len) + len);
    // Encoding into a BytesMut with reserved capacity cannot fail (it grows on demand).
    let _ = packet.encode_length_delimited(dst);
}

/// One frame holding `packet`, as a fresh vector.
pub fn encode_to_vec(packet: &Packet) -> Vec<u8> {
    packet.encode_length_delimited_to_vec()
}
