//! HTTPS from certificate files: a client that trusts the certificate completes a
//! webhook POST; a reload serves the new certificate to new connections.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use wagate::tls::TlsConfig;

use crate::support::child::wagate;
use crate::support::post_signed_webhook;
use crate::support::tls::TlsServer;

fn make_cert(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
        ])
        .args([
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success());
    (cert, key)
}

async fn peer_cert_der(addr: std::net::SocketAddr, roots: &[&Path]) -> Vec<u8> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        let pem = std::fs::read(r).unwrap();
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(&pem).unwrap();
        store.add(der).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
    let tls = connector.connect(name, tcp).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn der_of(pem_path: &Path) -> Vec<u8> {
    let pem = std::fs::read(pem_path).unwrap();
    let der: rustls_pki_types::CertificateDer =
        rustls_pki_types::pem::PemObject::from_pem_slice(&pem).unwrap();
    der.to_vec()
}

#[tokio::test]
async fn https_serves_webhooks_and_reloads_its_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert(certs.path(), "first");
    let tls = Arc::new(TlsConfig::new(&cert, &key).unwrap());

    let data = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = TlsServer::start(data.path(), listener, tls.clone()).await;
    let addr = server.addr;

    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let status = post_signed_webhook(&client, &format!("https://{addr}")).await;
    assert_eq!(status, 200);
    // Plain HTTP on the HTTPS port is not served.
    assert!(reqwest::get(format!("http://{addr}/healthz"))
        .await
        .is_err());

    // New files in place, then a reload (what SIGHUP does): new connections get them.
    let (cert2, key2) = make_cert(certs.path(), "second");
    assert_eq!(peer_cert_der(addr, &[&cert, &cert2]).await, der_of(&cert));
    std::fs::rename(&cert2, &cert).unwrap();
    std::fs::rename(&key2, &key).unwrap();
    tls.reload().unwrap();
    assert_eq!(peer_cert_der(addr, &[&cert]).await, der_of(&cert));
    // A broken file keeps the certificate in use.
    std::fs::write(&key, "not a key").unwrap();
    assert!(tls.reload().is_err());
    assert_eq!(peer_cert_der(addr, &[&cert]).await, der_of(&cert));

    server.stop().await;
}

#[test]
fn a_key_that_does_not_match_is_refused_at_start() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, _) = make_cert(certs.path(), "a");
    let (_, other_key) = make_cert(certs.path(), "b");
    let err = TlsConfig::new(&cert, &other_key)
        .err()
        .expect("mismatch refused");
    assert!(
        err.to_string().contains("TLS") || err.to_string().contains("key"),
        "{err}"
    );
}

#[test]
fn check_loads_the_certificate_files() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert(certs.path(), "c");
    let check = |cert: &Path, key: &Path| {
        wagate()
            .env("WAGATE_DATA_DIR", certs.path().join("data"))
            .env("WAGATE_TLS_CERT", cert)
            .env("WAGATE_TLS_KEY", key)
            .arg("check")
            .output()
            .unwrap()
    };
    let ok = check(&cert, &key);
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ok: HTTPS from"));
    let bad = check(&cert, &certs.path().join("missing.key"));
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("problem: cannot read the private key"));
}
