//! HTTPS from certificate and key files (`WAGATE_TLS_CERT`, `WAGATE_TLS_KEY`), with
//! reload on SIGHUP: new connections get the new certificate, open ones keep theirs.
//! The same resolver serves ACME certificates (`crate::acme`) and answers the CA's
//! TLS-ALPN-01 validation handshakes with the challenge certificate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate {path}: {message}")]
    Cert { path: String, message: String },
    #[error("cannot read the private key {path}: {message}")]
    Key { path: String, message: String },
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The ALPN protocol of ACME's TLS-ALPN-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The certificate in use, swapped whole on reload or renewal, and the TLS-ALPN-01
/// challenge certificates of an ACME order in progress (by domain).
#[derive(Debug, Default)]
struct Resolver {
    current: RwLock<Option<Arc<CertifiedKey>>>,
    challenges: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let validation = hello
            .alpn()
            .is_some_and(|mut offered| offered.any(|p| p == ACME_TLS_ALPN));
        if validation {
            // The CA's validation connection: only a challenge certificate answers it.
            let name = hello.server_name()?.to_ascii_lowercase();
            return read(&self.challenges).get(&name).cloned();
        }
        read(&self.current).clone()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

pub struct TlsConfig {
    /// The certificate and key files; `None` when ACME manages the certificate.
    files: Option<(PathBuf, PathBuf)>,
    resolver: Arc<Resolver>,
    acceptor: tokio_rustls::TlsAcceptor,
}

/// Reads a PEM certificate chain and private key (files).
pub fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_pem = std::fs::read(cert).map_err(|e| TlsError::Cert {
        path: cert.display().to_string(),
        message: e.to_string(),
    })?;
    let key_pem = std::fs::read(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        message: e.to_string(),
    })?;
    certified_key(
        &cert_pem,
        &key_pem,
        &cert.display().to_string(),
        &key.display().to_string(),
    )
}

/// Builds a certificate rustls can serve from PEM text (a chain, and a private key
/// that may be in the same text); `cert_name`/`key_name` name them in errors.
pub fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_name: &str,
    key_name: &str,
) -> Result<CertifiedKey, TlsError> {
    let cert_err = |message: String| TlsError::Cert {
        path: cert_name.to_string(),
        message,
    };
    let key_err = |message: String| TlsError::Key {
        path: key_name.to_string(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no certificate in the file".into()));
    }
    let key_der = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| key_err(e.to_string()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key_der)
        .map_err(|e| key_err(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    // A key that does not belong to the certificate fails here, not at a handshake.
    certified.keys_match()?;
    Ok(certified)
}

impl TlsConfig {
    /// HTTPS from certificate and key files.
    pub fn new(cert: &Path, key: &Path) -> Result<TlsConfig, TlsError> {
        let loaded = load(cert, key)?;
        let tls = TlsConfig::build(Some((cert.to_path_buf(), key.to_path_buf())))?;
        tls.set_certificate(loaded);
        Ok(tls)
    }

    /// HTTPS with a certificate that ACME provides (`set_certificate`), and
    /// TLS-ALPN-01 validation answered from `set_challenge`. Until a certificate is
    /// set, ordinary handshakes fail.
    pub fn managed() -> Result<TlsConfig, TlsError> {
        TlsConfig::build(None)
    }

    fn build(files: Option<(PathBuf, PathBuf)>) -> Result<TlsConfig, TlsError> {
        let resolver = Arc::new(Resolver::default());
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        if files.is_none() {
            // rustls refuses a client whose ALPN offer it cannot meet.
            config.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
        }
        Ok(TlsConfig {
            files,
            resolver,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }

    pub fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }

    /// Reads the files again. On error the certificate in use stays. A managed
    /// (ACME) certificate has no files: nothing to do.
    pub fn reload(&self) -> Result<(), TlsError> {
        if let Some((cert, key)) = &self.files {
            self.set_certificate(load(cert, key)?);
        }
        Ok(())
    }

    /// Whether ACME provides the certificate (no files to reload).
    pub fn is_managed(&self) -> bool {
        self.files.is_none()
    }

    /// Serves `certified` to new connections; open ones keep theirs.
    pub fn set_certificate(&self, certified: CertifiedKey) {
        *write(&self.resolver.current) = Some(Arc::new(certified));
    }

    /// The certificate served now, if any.
    pub fn certificate(&self) -> Option<Arc<CertifiedKey>> {
        read(&self.resolver.current).clone()
    }

    /// Answers TLS-ALPN-01 validation for `domain` with `challenge` (`None`: stop).
    pub fn set_challenge(&self, domain: &str, challenge: Option<CertifiedKey>) {
        let mut map = write(&self.resolver.challenges);
        match challenge {
            Some(c) => map.insert(domain.to_ascii_lowercase(), Arc::new(c)),
            None => map.remove(&domain.to_ascii_lowercase()),
        };
    }
}
