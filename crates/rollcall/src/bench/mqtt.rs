//! Just enough MQTT 3.1.1 for the heartbeat comparison against Mosquitto: CONNECT/CONNACK,
//! PUBLISH at QoS 1 and its PUBACK (about sixty lines, so no client crate and none of its
//! own queueing in the measurement). Each PUBLISH carries a payload the size of a heartbeat
//! request frame.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::load::BenchResult;

fn remaining_length(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            return;
        }
    }
}

fn utf8(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Connects with a clean session and waits for a successful CONNACK.
pub async fn connect(addr: &str, client_id: &str) -> BenchResult<TcpStream> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("MQTT connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut body = Vec::new();
    utf8("MQTT", &mut body);
    body.extend_from_slice(&[4, 0x02, 0, 60]); // level 4, clean session, keep-alive 60 s
    utf8(client_id, &mut body);
    let mut pkt = vec![0x10];
    remaining_length(body.len(), &mut pkt);
    pkt.extend_from_slice(&body);
    stream
        .write_all(&pkt)
        .await
        .map_err(|e| format!("MQTT CONNECT: {e}"))?;
    let mut ack = [0u8; 4];
    stream
        .read_exact(&mut ack)
        .await
        .map_err(|e| format!("MQTT CONNACK: {e}"))?;
    if ack[0] != 0x20 || ack[3] != 0 {
        return Err(format!("MQTT CONNACK refused: {ack:?}"));
    }
    Ok(stream)
}

/// A PUBLISH at QoS 1 with packet id `id` (never 0).
pub fn publish(topic: &str, id: u16, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(topic.len() + payload.len() + 4);
    utf8(topic, &mut body);
    body.extend_from_slice(&id.max(1).to_be_bytes());
    body.extend_from_slice(payload);
    let mut pkt = vec![0x32];
    remaining_length(body.len(), &mut pkt);
    pkt.extend_from_slice(&body);
    pkt
}

/// Reads one PUBACK from the front of `buf` (other packets are skipped).
pub fn parse_puback(buf: &mut BytesMut) -> BenchResult<Option<bool>> {
    loop {
        if buf.len() < 2 {
            return Ok(None);
        }
        let (mut len, mut mult, mut i) = (0usize, 1usize, 1usize);
        loop {
            let Some(&b) = buf.get(i) else {
                return Ok(None);
            };
            len += usize::from(b & 0x7f) * mult;
            mult *= 128;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            if i > 4 {
                return Err("MQTT: malformed remaining length".into());
            }
        }
        if buf.len() < i + len {
            return Ok(None);
        }
        let kind = buf[0] >> 4;
        buf.advance(i + len);
        if kind == 4 {
            return Ok(Some(true));
        }
    }
}
