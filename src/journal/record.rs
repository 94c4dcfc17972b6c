//! Record framing: `u32 body_len | u32 crc32c(body) | body`, where
//! `body = u64 seq | u8 kind | i64 unix_micros | payload` (all little-endian).
//!
//! A record is valid only when it is complete and its CRC matches, which is how a
//! torn tail (a crash in the middle of a write) is told apart from data.

pub const FRAME_HEADER: usize = 8;
const BODY_FIXED: usize = 8 + 1 + 8;
/// Larger than any record wagate writes (the body limit is capped at 64 MiB).
pub const MAX_BODY: usize = 80 * 1024 * 1024;

/// What a record holds. New kinds are added at the end; unknown kinds are skipped by readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A webhook POST, accepted or rejected (see `crate::delivery`).
    Delivery = 1,
    /// A send request accepted by the outbox (see `crate::outbox::record`).
    SendRequest = 2,
    /// An outbox update: attempt started or ended, pause, resume.
    SendUpdate = 3,
    /// A media job's progress: failed attempt, stored file, final failure, deletion
    /// (see `crate::media::record`).
    MediaUpdate = 4,
    /// A forwarding outcome or request: delivered to a target, dead-lettered, target
    /// disabled or enabled, replay (see `crate::forward::record`).
    ForwardUpdate = 5,
}

impl Kind {
    pub fn from_u8(v: u8) -> Option<Kind> {
        match v {
            1 => Some(Kind::Delivery),
            2 => Some(Kind::SendRequest),
            3 => Some(Kind::SendUpdate),
            4 => Some(Kind::MediaUpdate),
            5 => Some(Kind::ForwardUpdate),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub kind: u8,
    pub unix_micros: i64,
    pub payload: Vec<u8>,
}

/// Appends the framed record to `out`; returns its encoded length.
pub fn encode(out: &mut Vec<u8>, seq: u64, kind: u8, unix_micros: i64, payload: &[u8]) -> usize {
    let body_len = BODY_FIXED + payload.len();
    let start = out.len();
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&unix_micros.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out[start + FRAME_HEADER..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    out.len() - start
}

/// The outcome of decoding at the start of `buf`.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A valid record and its total framed length.
    Record(Record, usize),
    /// `buf` ends before the record does: read more, or (at the tail) it is torn.
    Incomplete,
    /// The bytes are not a valid record (bad length or CRC).
    Corrupt,
}

pub fn decode(buf: &[u8]) -> Decoded {
    if buf.len() < FRAME_HEADER {
        return Decoded::Incomplete;
    }
    let body_len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if !(BODY_FIXED..=MAX_BODY).contains(&body_len) {
        return Decoded::Corrupt;
    }
    let total = FRAME_HEADER + body_len;
    if buf.len() < total {
        return Decoded::Incomplete;
    }
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let body = &buf[FRAME_HEADER..total];
    if crc32c::crc32c(body) != crc {
        return Decoded::Corrupt;
    }
    let seq = u64::from_le_bytes(body[0..8].try_into().expect("8 bytes"));
    let kind = body[8];
    let unix_micros = i64::from_le_bytes(body[9..17].try_into().expect("8 bytes"));
    Decoded::Record(
        Record {
            seq,
            kind,
            unix_micros,
            payload: body[BODY_FIXED..].to_vec(),
        },
        total,
    )
}

/// The framed length of the record starting at `buf`, from its header alone.
pub fn framed_len(header: &[u8; FRAME_HEADER]) -> Option<usize> {
    let body_len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    (BODY_FIXED..=MAX_BODY)
        .contains(&body_len)
        .then_some(FRAME_HEADER + body_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_truncation_is_detected() {
        let mut buf = Vec::new();
        let n = encode(&mut buf, 42, 1, 1_700_000_000_000_000, b"hello world");
        assert_eq!(n, buf.len());
        match decode(&buf) {
            Decoded::Record(r, len) => {
                assert_eq!((r.seq, r.kind, len), (42, 1, n));
                assert_eq!(r.payload, b"hello world");
            }
            other => panic!("{other:?}"),
        }
        for cut in 0..buf.len() {
            assert_eq!(decode(&buf[..cut]), Decoded::Incomplete, "cut at {cut}");
        }
        for i in FRAME_HEADER..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert_eq!(decode(&bad), Decoded::Corrupt, "flip at {i}");
        }
    }
}
