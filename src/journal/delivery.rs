//! A webhook delivery as kept in the journal: who sent it, every header, the exact
//! body bytes, and the verdict. Encoded in a small versioned binary layout so the
//! body is stored as-is (no base64, no re-serialisation).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Verdict {
    Accepted = 0,
    MissingHeader = 1,
    MalformedHeader = 2,
    Mismatch = 3,
    NoSecretConfigured = 4,
    TooLarge = 5,
    /// The body stopped short: the client went away, or it did not arrive within
    /// `WAGATE_BODY_TIMEOUT`. What arrived is kept.
    Truncated = 6,
}

impl Verdict {
    pub fn from_u8(v: u8) -> Option<Verdict> {
        Some(match v {
            0 => Verdict::Accepted,
            1 => Verdict::MissingHeader,
            2 => Verdict::MalformedHeader,
            3 => Verdict::Mismatch,
            4 => Verdict::NoSecretConfigured,
            5 => Verdict::TooLarge,
            6 => Verdict::Truncated,
            _ => return None,
        })
    }

    pub fn is_accepted(self) -> bool {
        self == Verdict::Accepted
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::MissingHeader => "missing_header",
            Verdict::MalformedHeader => "malformed_header",
            Verdict::Mismatch => "mismatch",
            Verdict::NoSecretConfigured => "no_secret_configured",
            Verdict::TooLarge => "too_large",
            Verdict::Truncated => "truncated",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub peer: Option<String>,
    pub verdict: Verdict,
    /// A human explanation of the verdict (never contains a secret).
    pub reason: String,
    /// Position of the app secret that matched, in `META_APP_SECRET` order.
    pub secret_index: Option<u8>,
    /// The Content-Length the client declared, if any.
    pub declared_length: Option<u64>,
    /// Bytes received; larger than `body.len()` when the body was cut (too large).
    pub received_length: u64,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// Set on an accepted copy of a rejected delivery that re-verification accepted.
    pub reverified_from: Option<u64>,
}

/// Version 2 added `reverified_from`; version 1 records still decode.
const VERSION: u8 = 2;

#[derive(Debug, thiserror::Error)]
#[error("delivery record is malformed: {0}")]
pub struct DecodeError(&'static str);

impl Delivery {
    pub fn body_truncated(&self) -> bool {
        self.received_length > self.body.len() as u64
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    pub fn encode(&self) -> Vec<u8> {
        let header_bytes: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 6)
            .sum();
        let mut out = Vec::with_capacity(64 + header_bytes + self.body.len() + self.reason.len());
        out.push(VERSION);
        out.push(self.verdict as u8);
        out.push(self.secret_index.unwrap_or(u8::MAX));
        out.extend_from_slice(&self.declared_length.map_or(u64::MAX, |n| n).to_le_bytes());
        out.extend_from_slice(&self.received_length.to_le_bytes());
        put_bytes(&mut out, self.peer.as_deref().unwrap_or("").as_bytes());
        put_bytes(&mut out, self.reason.as_bytes());
        out.extend_from_slice(&(self.headers.len() as u32).to_le_bytes());
        for (name, value) in &self.headers {
            put_bytes(&mut out, name.as_bytes());
            put_bytes(&mut out, value);
        }
        put_bytes(&mut out, &self.body);
        out.extend_from_slice(&self.reverified_from.map_or(u64::MAX, |n| n).to_le_bytes());
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Delivery, DecodeError> {
        let mut r = Reader(buf);
        let version = r.u8()?;
        if !(1..=VERSION).contains(&version) {
            return Err(DecodeError("unknown version"));
        }
        let verdict = Verdict::from_u8(r.u8()?).ok_or(DecodeError("unknown verdict"))?;
        let secret_index = Some(r.u8()?).filter(|&i| i != u8::MAX);
        let declared_length = Some(r.u64()?).filter(|&n| n != u64::MAX);
        let received_length = r.u64()?;
        let peer = Some(r.string()?).filter(|p| !p.is_empty());
        let reason = r.string()?;
        let count = r.u32()? as usize;
        let mut headers = Vec::with_capacity(count.min(256));
        for _ in 0..count {
            let name = r.string()?;
            headers.push((name, r.bytes()?.to_vec()));
        }
        let body = r.bytes()?.to_vec();
        let reverified_from = match version {
            1 => None,
            _ => Some(r.u64()?).filter(|&n| n != u64::MAX),
        };
        Ok(Delivery {
            reverified_from,
            peer,
            verdict,
            reason,
            secret_index,
            declared_length,
            received_length,
            headers,
            body,
        })
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// A bounds-checked reader: short input is an error, never a panic.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| DecodeError("not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_short_input_is_an_error() {
        let d = Delivery {
            peer: Some("127.0.0.1:5000".into()),
            verdict: Verdict::Mismatch,
            reason: "no configured secret matches".into(),
            secret_index: None,
            declared_length: Some(3),
            received_length: 3,
            headers: vec![("x-hub-signature-256".into(), b"sha256=00".to_vec())],
            body: vec![0, 159, 255],
            reverified_from: Some(7),
        };
        let bytes = d.encode();
        assert_eq!(Delivery::decode(&bytes).unwrap(), d);
        for cut in 0..bytes.len() {
            assert!(Delivery::decode(&bytes[..cut]).is_err());
        }
    }
}
