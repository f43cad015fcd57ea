//! The gateway's hot path through the protobuf `Packet` (ZJ-PKT-01, ZJ-PKT-04): a request
//! body decoded straight into a [`Request`] (or borrowed as a [`RequestView`]), an answer
//! encoded straight from a [`Response`] (or from a borrowed [`Success`]).
//!
//! Both go through `Packet` and prost everywhere else (the SDK, the conformance kit, the
//! bench). Here, where every heartbeat passes, decoding and framing through a `Packet` were a
//! quarter of the platform's own work per request: prost grows each string field through its
//! generic buffer path, the request's fields are moved out of a fourteen-field struct and the
//! rest of it dropped, and the answer is moved into another to be measured and encoded
//! (BENCHMARKS.md, "sixth machine"). This module reads and writes the same bytes directly.
//!
//! **Same bytes, same verdicts as prost.** [`decode_request`] accepts exactly the bodies
//! `Packet::decode` accepts and gives the request `Request::from_packet` would: the last of
//! repeated fields wins, unknown fields of every wire type are skipped (groups nested at most
//! 100 deep), a known field with another wire type, a truncated field, an over-long varint or
//! a string that is not UTF-8 refuse the body. [`encode_response`] writes the frame of
//! `Response::into_packet`. The tests hold both to prost over arbitrary packets and bytes.

use bytes::{BufMut, BytesMut};

use crate::envelope::{Request, RequestView, Response, Success};

/// How deep unknown groups may nest before a body is refused (prost's recursion limit).
const GROUP_DEPTH: u32 = 100;

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// Why a body is not a `Packet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("invalid varint")]
    Varint,
    #[error("invalid key")]
    Key,
    #[error("invalid wire type {wire} for field {tag}")]
    WireType { tag: u32, wire: u8 },
    #[error("buffer underflow")]
    Underflow,
    #[error("a string field is not UTF-8")]
    Utf8,
    #[error("unexpected end group tag")]
    EndGroup,
    #[error("groups nested too deep")]
    Depth,
}

/// A cursor over a body.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// A base-128 varint of at most 10 bytes whose value fits 64 bits.
    fn varint(&mut self) -> Result<u64, WireError> {
        // Keys and short lengths: one byte.
        if let Some((&b, rest)) = self.0.split_first()
            && b < 0x80
        {
            self.0 = rest;
            return Ok(u64::from(b));
        }
        let mut value = 0u64;
        for (i, &b) in self.0.iter().take(10).enumerate() {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                // The tenth byte carries the 64th bit only.
                if i == 9 && b > 1 {
                    return Err(WireError::Varint);
                }
                self.0 = &self.0[i + 1..];
                return Ok(value);
            }
        }
        Err(WireError::Varint)
    }

    /// A field's key: its tag and wire type.
    fn key(&mut self) -> Result<(u32, u8), WireError> {
        let key = u32::try_from(self.varint()?).map_err(|_| WireError::Key)?;
        let wire = (key & 7) as u8;
        let tag = key >> 3;
        if wire > FIXED32 || tag == 0 {
            return Err(WireError::Key);
        }
        Ok((tag, wire))
    }

    /// `n` bytes.
    fn take(&mut self, n: u64) -> Result<&'a [u8], WireError> {
        let n = usize::try_from(n).map_err(|_| WireError::Underflow)?;
        if n > self.0.len() {
            return Err(WireError::Underflow);
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(taken)
    }

    /// A length-delimited field's bytes.
    fn delimited(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.varint()?;
        self.take(n)
    }

    /// Skips an unknown field's value (a group down to its end, `depth` levels left).
    fn skip(&mut self, tag: u32, wire: u8, depth: u32) -> Result<(), WireError> {
        if depth == 0 {
            return Err(WireError::Depth);
        }
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            FIXED32 => self.take(4).map(drop),
            LEN => self.delimited().map(drop),
            START_GROUP => loop {
                match self.key()? {
                    (inner, END_GROUP) if inner == tag => return Ok(()),
                    (_, END_GROUP) => return Err(WireError::EndGroup),
                    (inner, w) => self.skip(inner, w, depth - 1)?,
                }
            },
            _ => Err(WireError::EndGroup),
        }
    }
}

/// Decodes a frame's body (without its length prefix) into the request it carries.
pub fn decode_request(body: &[u8]) -> Result<Request, WireError> {
    decode_request_view(body).map(|view| view.to_request())
}

/// [`decode_request`] without copying: the request's fields borrowed from `body`.
pub fn decode_request_view(body: &[u8]) -> Result<RequestView<'_>, WireError> {
    // The byte range of the last occurrence of each string field, by tag (1..=13); an
    // occurrence a later one replaces is checked for UTF-8 on the spot.
    let mut spans = [(0usize, 0usize); 14];
    let seq = fields(body, |tag, start, end| {
        match std::mem::replace(&mut spans[tag as usize], (start, end)) {
            (old_start, old_end) if old_end > old_start => {
                utf8(body, old_start, old_end, None).map(drop)
            }
            _ => Ok(()),
        }
    })?;
    // Checking each short field on its own cost more than reading the rest of the body, so
    // the bytes up to the last string field's end are checked once, and a field of a valid
    // prefix is UTF-8 exactly when it starts and ends on one of its character boundaries.
    // (Up to the strings' end: a request's trailing `seq` varint is rarely UTF-8.)
    let strings_end = spans.iter().map(|&(_, end)| end).max().unwrap_or(0);
    let whole = body
        .get(..strings_end)
        .and_then(|b| std::str::from_utf8(b).ok());
    let mut text: [&str; 14] = [""; 14];
    for (tag, &(start, end)) in spans.iter().enumerate() {
        text[tag] = utf8(body, start, end, whole)?;
    }
    Ok(RequestView {
        version: text[1],
        sn: text[2],
        token: text[3],
        apicode: text[4],
        time_stamp: text[5],
        param: (!text[6].is_empty()).then_some(text[6]),
        sign: text[7],
        access_id: text[8],
        access_key: text[9],
        taskid: text[13],
        param_alt: None,
        seq,
    })
}

/// `body[start..end]` as text: a slice of `whole` (all of `body` up to at least `end`, known
/// to be UTF-8) when given, else checked on its own.
fn utf8<'a>(
    body: &'a [u8],
    start: usize,
    end: usize,
    whole: Option<&'a str>,
) -> Result<&'a str, WireError> {
    let text = match whole {
        Some(whole) => whole.get(start..end),
        None => body
            .get(start..end)
            .and_then(|b| std::str::from_utf8(b).ok()),
    };
    text.ok_or(WireError::Utf8)
}

/// Reads the fields of `body`: each string field's tag (1..=13) and byte range go to
/// `string`, unknown fields are skipped; the last `seq`.
fn fields(
    body: &[u8],
    mut string: impl FnMut(u32, usize, usize) -> Result<(), WireError>,
) -> Result<u64, WireError> {
    let mut seq = 0u64;
    let mut r = Reader(body);
    while !r.0.is_empty() {
        let (tag, wire) = r.key()?;
        match tag {
            1..=9 | 11..=13 => {
                if wire != LEN {
                    return Err(WireError::WireType { tag, wire });
                }
                let len = r.delimited()?.len();
                let end = body.len() - r.0.len();
                string(tag, end - len, end)?;
            }
            // `success` (only answers carry it) and `seq`.
            10 | 14 => {
                if wire != VARINT {
                    return Err(WireError::WireType { tag, wire });
                }
                let v = r.varint()?;
                if tag == 14 {
                    seq = v;
                }
            }
            _ => r.skip(tag, wire, GROUP_DEPTH)?,
        }
    }
    Ok(seq)
}

/// Appends the frame of `resp` (what `frame::encode(&resp.into_packet(), dst)` appends):
/// `version` 1, `apicode` 4, `sign` 7, `success` 10, `error` 11, `response` 12, `seq` 14, in
/// tag order, each left out when empty, false or zero.
pub fn encode_response(resp: &Response, dst: &mut BytesMut) {
    let error = error_text(resp);
    let frame = ResponseFrame::new(resp, error.as_deref());
    dst.reserve(frame.len());
    frame.write(dst);
}

/// Writes the frame of `resp` ([`encode_response`]'s bytes) at the start of `dst` when it
/// fits: its length, or `None` with nothing written. Lets a server answer from a buffer on
/// its stack instead of allocating one per answer.
pub fn encode_response_into(resp: &Response, dst: &mut [u8]) -> Option<usize> {
    let error = error_text(resp);
    let frame = ResponseFrame::new(resp, error.as_deref());
    let len = frame.len();
    let mut window = dst.get_mut(..len)?;
    frame.write(&mut window);
    Some(len)
}

/// [`encode_response_into`] for a success borrowed from its request, signed with `sign`:
/// the bytes of the [`Response`] that `Response::answering` would make of the same request
/// and success, signed alike.
pub fn encode_success_into(success: &Success<'_>, sign: &str, dst: &mut [u8]) -> Option<usize> {
    let frame = ResponseFrame::success(success, sign);
    let len = frame.len();
    let mut window = dst.get_mut(..len)?;
    frame.write(&mut window);
    Some(len)
}

/// [`encode_response`] for a success borrowed from its request ([`encode_success_into`]).
pub fn encode_success(success: &Success<'_>, sign: &str, dst: &mut BytesMut) {
    let frame = ResponseFrame::success(success, sign);
    dst.reserve(frame.len());
    frame.write(dst);
}

fn error_text(resp: &Response) -> Option<String> {
    resp.outcome.as_ref().err().map(|e| e.to_json())
}

/// A response's fields in frame order, with the body's length.
struct ResponseFrame<'a> {
    strings: [(u8, &'a str); 5],
    success: bool,
    seq: u64,
    body: usize,
}

impl<'a> ResponseFrame<'a> {
    fn new(resp: &'a Response, error: Option<&'a str>) -> Self {
        Self::of(
            [
                (1, &resp.version),
                (4, &resp.apicode),
                (7, &resp.sign),
                (11, error.unwrap_or("")),
                (12, resp.response_text().unwrap_or("")),
            ],
            resp.success(),
            resp.seq,
        )
    }

    fn success(success: &Success<'a>, sign: &'a str) -> Self {
        Self::of(
            [
                (1, success.version),
                (4, success.apicode),
                (7, sign),
                (11, ""),
                (12, success.response.unwrap_or("")),
            ],
            true,
            success.seq,
        )
    }

    fn of(strings: [(u8, &'a str); 5], success: bool, seq: u64) -> Self {
        let field = |s: &str| 1 + varint_len(s.len() as u64) + s.len();
        let mut body: usize = strings
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(_, s)| field(s))
            .sum();
        if success {
            body += 2;
        }
        if seq != 0 {
            body += 1 + varint_len(seq);
        }
        ResponseFrame {
            strings,
            success,
            seq,
            body,
        }
    }

    /// The whole frame: the length prefix and the body.
    fn len(&self) -> usize {
        varint_len(self.body as u64) + self.body
    }

    /// Writes the frame; `dst` has room for [`Self::len`] bytes.
    fn write(&self, dst: &mut impl BufMut) {
        put_varint(dst, self.body as u64);
        for (i, (tag, s)) in self.strings.iter().enumerate() {
            // `success` (10) goes between `sign` (7) and `error` (11).
            if i == 3 && self.success {
                dst.put_slice(&[(10 << 3) | VARINT, 1]);
            }
            if !s.is_empty() {
                dst.put_u8((tag << 3) | LEN);
                put_varint(dst, s.len() as u64);
                dst.put_slice(s.as_bytes());
            }
        }
        if self.seq != 0 {
            dst.put_u8((14 << 3) | VARINT);
            put_varint(dst, self.seq);
        }
    }
}

// prost's public varint helpers (`length_delimiter_len`, `encode_length_delimiter`) take a
// `usize` length and can fail; `seq` is a `u64`, so these two write any field's varint.
fn varint_len(v: u64) -> usize {
    // 7 bits a byte, at least one byte.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(dst: &mut impl BufMut, mut v: u64) {
    while v >= 0x80 {
        dst.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    dst.put_u8(v as u8);
}
