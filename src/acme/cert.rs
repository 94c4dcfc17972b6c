//! Certificates as ACME needs them: what a stored certificate covers and when it
//! should be renewed, the CSR for an order, and TLS-ALPN-01 challenge certificates.

use std::time::Duration;

use rcgen::{CertificateParams, CustomExtension, DistinguishedName, KeyPair};
use rustls::sign::CertifiedKey;

use super::AcmeError;

/// Renew when less than a third of the lifetime is left, and at the latest 30 days
/// before expiry (a 90-day certificate: 30 days before; a 6-day one: 2 days before).
pub const RENEW_AT_MOST_BEFORE: Duration = Duration::from_secs(30 * 86400);

/// What a served certificate is and when it is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// DNS names in the subject alternative names, lower case.
    pub names: Vec<String>,
    pub issuer: String,
    pub serial: String,
}

impl CertInfo {
    /// Reads the leaf certificate (DER).
    pub fn parse(der: &[u8]) -> Result<CertInfo, AcmeError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| AcmeError::Certificate(format!("cannot parse: {e}")))?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let x509_parser::extensions::GeneralName::DNSName(d) = name {
                    names.push(d.to_ascii_lowercase());
                }
            }
        }
        Ok(CertInfo {
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            names,
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial_as_string(),
        })
    }

    /// Unix seconds at which a renewal is due.
    pub fn renew_at(&self) -> i64 {
        let lifetime = (self.not_after - self.not_before).max(0);
        let before = (lifetime / 3).min(RENEW_AT_MOST_BEFORE.as_secs() as i64);
        self.not_after - before
    }

    /// Whether it names exactly `domains` (in any order).
    pub fn covers_exactly(&self, domains: &[String]) -> bool {
        let mut have = self.names.clone();
        let mut want = domains.to_vec();
        have.sort();
        have.dedup();
        want.sort();
        want.dedup();
        have == want
    }
}

/// A stored certificate file (private key and chain) made servable, with its facts.
pub fn load_stored(pem: &[u8], name: &str) -> Result<(CertifiedKey, CertInfo), AcmeError> {
    let certified = crate::tls::certified_key(pem, pem, name, name)
        .map_err(|e| AcmeError::Certificate(e.to_string()))?;
    let leaf = certified
        .cert
        .first()
        .ok_or_else(|| AcmeError::Certificate("empty chain".into()))?;
    let info = CertInfo::parse(leaf)?;
    Ok((certified, info))
}

fn rcgen_err(e: rcgen::Error) -> AcmeError {
    AcmeError::Certificate(e.to_string())
}

/// A fresh ECDSA P-256 key and a CSR naming `domains`: (key PEM, CSR DER).
pub fn key_and_csr(domains: &[String]) -> Result<(String, Vec<u8>), AcmeError> {
    let key = KeyPair::generate().map_err(rcgen_err)?;
    let mut params = CertificateParams::new(domains.to_vec()).map_err(rcgen_err)?;
    params.distinguished_name = DistinguishedName::new();
    let csr = params.serialize_request(&key).map_err(rcgen_err)?;
    Ok((key.serialize_pem(), csr.der().to_vec()))
}

/// The TLS-ALPN-01 answer for `domain` (RFC 8737): a self-signed certificate naming
/// only `domain`, with the critical acmeIdentifier extension holding the SHA-256 of
/// the key authorization.
pub fn challenge_certificate(domain: &str, digest: &[u8]) -> Result<CertifiedKey, AcmeError> {
    let key = KeyPair::generate().map_err(rcgen_err)?;
    let mut params = CertificateParams::new(vec![domain.to_string()]).map_err(rcgen_err)?;
    params.distinguished_name = DistinguishedName::new();
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key).map_err(rcgen_err)?;
    // Not through `certified_key`: rustls's key check parses the certificate with
    // webpki, which refuses the (critical, unknown to it) acmeIdentifier extension.
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
    let signing = rustls::crypto::ring::sign::any_supported_type(&der.into())
        .map_err(|e| AcmeError::Certificate(e.to_string()))?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_at_two_thirds_or_thirty_days_before() {
        let day = 86400;
        let info = |lifetime_days: i64| CertInfo {
            not_before: 0,
            not_after: lifetime_days * day,
            names: vec![],
            issuer: String::new(),
            serial: String::new(),
        };
        assert_eq!(info(90).renew_at(), 60 * day);
        assert_eq!(info(6).renew_at(), 4 * day);
        assert_eq!(info(5 * 365).renew_at(), (5 * 365 - 30) * day);
    }

    #[test]
    fn challenge_certificate_names_the_domain_and_parses() {
        let c = challenge_certificate("hooks.example.com", &[7u8; 32]).unwrap();
        let info = CertInfo::parse(&c.cert[0]).unwrap();
        assert_eq!(info.names, ["hooks.example.com"]);
        assert!(info.covers_exactly(&["hooks.example.com".to_string()]));
        let (key, csr) = key_and_csr(&["a.example".into(), "b.example".into()]).unwrap();
        assert!(key.contains("PRIVATE KEY") && !csr.is_empty());
    }
}
