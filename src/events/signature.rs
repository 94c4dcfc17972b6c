//! `X-Hub-Signature-256` verification: HMAC-SHA256 over the exact body bytes,
//! compared in constant time after hex-decoding.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;
use crate::journal::delivery::Verdict;

type HmacSha256 = Hmac<Sha256>;

/// Keyed HMAC states, one per configured app secret, built once.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<HmacSha256>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub secret_index: Option<u8>,
    pub reason: String,
}

impl Outcome {
    fn reject(verdict: Verdict, reason: impl Into<String>) -> Self {
        Outcome {
            verdict,
            secret_index: None,
            reason: reason.into(),
        }
    }
}

impl Verifier {
    pub fn new(secrets: &[Secret]) -> Self {
        let keys = secrets
            .iter()
            .map(|s| {
                HmacSha256::new_from_slice(s.expose().as_bytes())
                    .expect("HMAC takes any key length")
            })
            .collect();
        Verifier { keys }
    }

    pub fn has_secrets(&self) -> bool {
        !self.keys.is_empty()
    }

    pub fn verify(&self, header: Option<&[u8]>, body: &[u8]) -> Outcome {
        if self.keys.is_empty() {
            return Outcome::reject(
                Verdict::NoSecretConfigured,
                "no app secret configured (set META_APP_SECRET)",
            );
        }
        let Some(header) = header else {
            return Outcome::reject(Verdict::MissingHeader, "no X-Hub-Signature-256 header");
        };
        let Some(hex_part) = header.strip_prefix(b"sha256=") else {
            return Outcome::reject(
                Verdict::MalformedHeader,
                "X-Hub-Signature-256 does not start with 'sha256='",
            );
        };
        let mut expected = [0u8; 32];
        if hex::decode_to_slice(hex_part.trim_ascii(), &mut expected).is_err() {
            return Outcome::reject(
                Verdict::MalformedHeader,
                "X-Hub-Signature-256 is not 'sha256=' followed by 64 hex digits",
            );
        }
        for (i, key) in self.keys.iter().enumerate() {
            let mut mac = key.clone();
            mac.update(body);
            if mac.verify_slice(&expected).is_ok() {
                return Outcome {
                    verdict: Verdict::Accepted,
                    secret_index: Some(i.min(254) as u8),
                    reason: String::new(),
                };
            }
        }
        Outcome::reject(
            Verdict::Mismatch,
            format!(
                "signature matches none of the {} configured app secret(s)",
                self.keys.len()
            ),
        )
    }
}

/// `sha256=<hex>` for `body` under `secret` (for tests, tools and forwarding).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let v = Verifier::new(&[Secret::new("old"), Secret::new("new")]);
        let body = b"{\"a\":1}";
        let good = sign(b"new", body);
        assert_eq!(v.verify(Some(good.as_bytes()), body).secret_index, Some(1));
        assert_eq!(
            v.verify(
                Some(good.to_uppercase().replace("SHA256", "sha256").as_bytes()),
                body
            )
            .verdict,
            Verdict::Accepted
        );
        assert_eq!(v.verify(None, body).verdict, Verdict::MissingHeader);
        assert_eq!(
            v.verify(Some(b"md5=00"), body).verdict,
            Verdict::MalformedHeader
        );
        assert_eq!(
            v.verify(Some(b"sha256=zz"), body).verdict,
            Verdict::MalformedHeader
        );
        assert_eq!(
            v.verify(Some(sign(b"x", body).as_bytes()), body).verdict,
            Verdict::Mismatch
        );
        assert_eq!(
            Verifier::new(&[]).verify(None, body).verdict,
            Verdict::NoSecretConfigured
        );
    }
}
