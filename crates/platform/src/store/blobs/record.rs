//! The record format shared by local segment files and batch objects in an object store:
//! a 12-byte header (magic `RCB1`, length, CRC-32) before every blob, so that a reference
//! that does not point at the blob it names is detected, never answered with other bytes.
//! The CRC-32 is IEEE 802.3's (zlib's), computed by `crc32fast` (SIMD where the CPU has it).

use std::io;

use bytes::Bytes;

use crc32fast::hash as crc32;

/// Magic bytes at the start of every record header.
const RECORD_MAGIC: [u8; 4] = *b"RCB1";
/// Size of the record header that precedes every blob.
pub(super) const HEADER_LEN: usize = 12;

/// The header of `blob`'s record. Callers have checked that the length fits in a u32.
pub(super) fn header(blob: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&RECORD_MAGIC);
    h[4..8].copy_from_slice(&(blob.len() as u32).to_le_bytes());
    h[8..12].copy_from_slice(&crc32(blob).to_le_bytes());
    h
}

/// Checks a whole record read back (header and blob) against the length its reference names
/// and answers the blob; `InvalidData` names `key` and what did not match.
pub(super) fn open(record: Bytes, len: u32, key: &str) -> io::Result<Bytes> {
    let invalid =
        |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("blob {key}: {what}"));
    if record.len() != HEADER_LEN + len as usize {
        return Err(invalid("record shorter than its reference"));
    }
    let (header, payload) = record.split_at(HEADER_LEN);
    if header[0..4] != RECORD_MAGIC {
        return Err(invalid("no record header at this offset"));
    }
    if le_u32(&header[4..8]) != len {
        return Err(invalid("length does not match the record header"));
    }
    if le_u32(&header[8..12]) != crc32(payload) {
        return Err(invalid("checksum mismatch (corrupted data)"));
    }
    Ok(record.slice(HEADER_LEN..))
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

/// Parses a non-empty run of ASCII digits (no sign, no spaces).
pub(super) fn parse_digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Segments written before `crc32fast` replaced the hand-written checksum stay readable:
    /// the header holds zlib's CRC-32 (the standard check value of "123456789").
    #[test]
    fn the_header_checksum_is_zlibs_crc32() {
        let h = header(b"123456789");
        assert_eq!(le_u32(&h[8..12]), 0xCBF4_3926);
        assert_eq!(le_u32(&header(b"")[8..12]), 0);
    }

    #[test]
    fn a_record_opens_only_with_its_own_length_and_intact_bytes() {
        let blob = b"a face".as_slice();
        let mut rec = header(blob).to_vec();
        rec.extend_from_slice(blob);
        let rec = Bytes::from(rec);
        assert_eq!(open(rec.clone(), 6, "k").unwrap(), blob);
        assert_eq!(
            open(rec.clone(), 5, "k").unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let mut bad = rec.to_vec();
        bad[HEADER_LEN] ^= 1;
        assert_eq!(
            open(Bytes::from(bad), 6, "k").unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let mut bad = rec.to_vec();
        bad[0] = b'X';
        assert!(
            open(Bytes::from(bad), 6, "k")
                .unwrap_err()
                .to_string()
                .contains("no record header")
        );
    }
}
