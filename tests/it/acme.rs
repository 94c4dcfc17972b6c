//! ACME certificates without a CA: the TLS resolver answers TLS-ALPN-01 with the
//! challenge certificate and everything else with the live one; configuration and
//! `wagate check`. The helpers here also serve `acme_pebble.rs`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::sync::oneshot;
use wagate::tls::TlsConfig;

use crate::support::test_config;

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

pub const HTTP: &[&[u8]] = &[b"h2", b"http/1.1"];
const ACME_TLS: &[&[u8]] = &[b"acme-tls/1"];

fn self_signed(domain: &str) -> (String, rustls::sign::CertifiedKey) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![domain.to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let pem = format!("{}{}", key.serialize_pem(), cert.pem());
    let certified = wagate::tls::certified_key(pem.as_bytes(), pem.as_bytes(), "c", "k").unwrap();
    (pem, certified)
}

/// wagate in-process over `tls` on `listener`.
pub struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn start(
        dir: &Path,
        listener: tokio::net::TcpListener,
        tls: Arc<TlsConfig>,
    ) -> Running {
        let addr = listener.local_addr().unwrap();
        let app = wagate::App::start(test_config(dir)).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(wagate::serve_with_tls(listener, app, Some(tls), async {
            let _ = stopped.await;
        }));
        Running {
            addr,
            stop: Some(stop),
            server,
        }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.server.await.unwrap();
    }
}

#[tokio::test]
async fn tls_alpn_01_is_answered_with_the_challenge_certificate_only() {
    let data = tempfile::tempdir().unwrap();
    let tls = Arc::new(TlsConfig::managed().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Running::start(data.path(), listener, tls.clone()).await;
    let addr = server.addr;

    // No certificate yet: ordinary clients are refused, validation has no answer.
    assert!(handshake(addr, DOMAIN, HTTP, &[]).await.is_err());
    assert!(handshake(addr, DOMAIN, ACME_TLS, &[]).await.is_err());

    let challenge = wagate::acme::cert::challenge_certificate(DOMAIN, &[9u8; 32]).unwrap();
    let challenge_der = challenge.cert[0].to_vec();
    tls.set_challenge(DOMAIN, Some(challenge));
    let (leaf, alpn) = handshake(addr, DOMAIN, ACME_TLS, &[]).await.unwrap();
    assert_eq!(leaf, challenge_der);
    assert_eq!(alpn.as_deref(), Some(&b"acme-tls/1"[..]));
    // RFC 8737: the acmeIdentifier extension (critical) holds the digest.
    let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    let ext = parsed
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
        .expect("acmeIdentifier extension");
    assert!(ext.critical);
    assert_eq!(&ext.value[2..], &[9u8; 32]);
    // Another name gets nothing; ordinary clients still get no challenge certificate.
    assert!(handshake(addr, OTHER_DOMAIN, ACME_TLS, &[]).await.is_err());
    assert!(handshake(addr, DOMAIN, HTTP, &[]).await.is_err());

    let (live_pem, live) = self_signed(DOMAIN);
    let live_der = live.cert[0].to_vec();
    tls.set_certificate(live);
    let (leaf, _) = handshake(addr, DOMAIN, HTTP, &[live_pem.as_bytes()])
        .await
        .unwrap();
    assert_eq!(leaf, live_der);
    assert_eq!(
        handshake(addr, DOMAIN, ACME_TLS, &[]).await.unwrap().0,
        challenge_der
    );
    // Served over HTTPS to a client that trusts it.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(live_pem.as_bytes()).unwrap())
        .resolve(DOMAIN, addr)
        .build()
        .unwrap();
    let ok = client
        .get(format!("https://{DOMAIN}:{}/healthz", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    tls.set_challenge(DOMAIN, None);
    assert!(handshake(addr, DOMAIN, ACME_TLS, &[]).await.is_err());
    server.stop().await;
}

pub fn wagate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wagate"));
    c.env_remove("RUST_LOG");
    c
}

#[test]
fn acme_configuration_is_validated_and_checked() {
    let out = wagate()
        .env("WAGATE_ACME_DOMAIN", DOMAIN)
        .env("WAGATE_TLS_CERT", "/nonexistent/c.pem")
        .env("WAGATE_TLS_KEY", "/nonexistent/k.pem")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("WAGATE_ACME_DOMAIN"));

    let dir = tempfile::tempdir().unwrap();
    let out = wagate()
        .env("WAGATE_DATA_DIR", dir.path())
        .env("WAGATE_ACME_DOMAIN", format!("{DOMAIN},{OTHER_DOMAIN}"))
        .env("WAGATE_ACME_EMAIL", "ops@wagate.test")
        .arg("check")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for expected in [
        "ok: ACME: certificates for wagate.test, www.wagate.test from https://acme-v02.api.letsencrypt.org/directory",
        "warning: ACME: WAGATE_LISTEN is 127.0.0.1:8080",
        "ok: ACME: no certificate yet",
        "ok: ACME: no account yet",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    let out = wagate()
        .env("WAGATE_DATA_DIR", dir.path())
        .env("WAGATE_ACME_DOMAIN", DOMAIN)
        .env("WAGATE_ACME_CA_ROOT", dir.path().join("missing.pem"))
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("problem: WAGATE_ACME_CA_ROOT"));
}
