//! The physical floor of the heartbeat comparison: a bare tokio server that reads frames with
//! the same varint framing as the platform (`frame::read_head`, the body is skipped, not
//! decoded) and answers each with a fixed ack frame the size of the platform's heartbeat
//! answer. It runs as its own process (`rollcall bench floor-server`, hidden) so its CPU time
//! is measured the way the platform's is. Whatever the platform spends above this is the
//! cost of being a platform: decoding, checks, signatures, state.

use bytes::{Buf, BytesMut};
use rollcall_protocol::ApiCode;
use rollcall_protocol::envelope::{Request, Response};
use rollcall_protocol::frame::{self, DEFAULT_MAX_FRAME_BYTES, Head};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The label the floor server prints before its address.
pub const LABEL: &str = "floor TCP:";

/// The ack: a signed heartbeat answer, as the platform would write one.
pub fn ack_frame() -> Vec<u8> {
    let req = Request {
        version: rollcall_protocol::PROTOCOL_VERSION.into(),
        apicode: ApiCode::Heartbeat.as_str().into(),
        seq: 1,
        ..Request::default()
    };
    let mut resp = Response::to(&req, Ok(Some(r#"{"taskids":[]}"#.to_owned())));
    resp.sign_with(ApiCode::Heartbeat, "floor-server-secret-0123456789abcdef");
    frame::encode_to_vec(&resp.to_packet())
}

/// Serves until the process is killed.
pub async fn serve(addr: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("{LABEL} {}", listener.local_addr()?);
    let ack: &'static [u8] = Box::leak(ack_frame().into_boxed_slice());
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = connection(stream, ack).await;
        });
    }
}

async fn connection(mut stream: TcpStream, ack: &[u8]) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(4096);
    let mut out = Vec::with_capacity(4096);
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        loop {
            match frame::read_head(&buf, DEFAULT_MAX_FRAME_BYTES) {
                Ok(Head::Frame {
                    header_len,
                    body_len,
                }) if buf.len() >= header_len + body_len => {
                    buf.advance(header_len + body_len);
                    out.extend_from_slice(ack);
                }
                Ok(_) => break,
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
    }
}
