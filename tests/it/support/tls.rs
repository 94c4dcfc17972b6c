//! TLS for tests: wagate in-process over HTTPS (`TlsServer`), and a client
//! handshake that tells which certificate and protocol the server chose.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::sync::oneshot;
use wagate::tls::TlsConfig;

use super::test_config;

/// The ACME tests' names (pebble's DNS answers 127.0.0.1 for any name).
pub const DOMAIN: &str = "wagate.test";
pub const OTHER_DOMAIN: &str = "www.wagate.test";

/// Accepts any server certificate: these tests look at *which* certificate is sent.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    // Not checked either: webpki would refuse the challenge certificate's critical
    // acmeIdentifier extension before looking at the signature.
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Handshakes with `addr` as `name`, offering `alpn`; trusts `roots` (PEM), or
/// anything when `roots` is empty. The leaf certificate and the protocol agreed.
pub async fn handshake(
    addr: SocketAddr,
    name: &str,
    alpn: &[&[u8]],
    roots: &[&[u8]],
) -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let mut config = if roots.is_empty() {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider())))
            .with_no_client_auth()
    } else {
        let mut store = rustls::RootCertStore::empty();
        for pem in roots {
            for der in CertificateDer::pem_slice_iter(pem) {
                store.add(der.unwrap()).unwrap();
            }
        }
        builder.with_root_certificates(store).with_no_client_auth()
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let server_name = ServerName::try_from(name.to_string()).unwrap();
    let tls = connector
        .connect(server_name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let conn = tls.get_ref().1;
    let leaf = conn.peer_certificates().ok_or("no certificate")?[0].to_vec();
    Ok((leaf, conn.alpn_protocol().map(<[u8]>::to_vec)))
}

/// ALPN offers: an ordinary HTTPS client's, and an ACME validator's.
pub const HTTP: &[&[u8]] = &[b"h2", b"http/1.1"];
pub const ACME_TLS: &[&[u8]] = &[b"acme-tls/1"];

/// wagate in-process over `tls` on a listener of the caller's.
pub struct TlsServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<Result<(), wagate::ServeError>>,
}

impl TlsServer {
    /// Starts on `dir` with the test configuration.
    pub async fn start(
        dir: &Path,
        listener: tokio::net::TcpListener,
        tls: Arc<TlsConfig>,
    ) -> TlsServer {
        let addr = listener.local_addr().unwrap();
        let app = wagate::App::start(test_config(dir)).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(wagate::serve_with_tls(listener, app, Some(tls), async {
            let _ = stopped.await;
        }));
        TlsServer {
            addr,
            stop: Some(stop),
            server,
        }
    }

    /// Graceful shutdown.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.server.await.unwrap().unwrap();
    }
}
