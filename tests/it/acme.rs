//! ACME certificates without a CA: the TLS resolver answers TLS-ALPN-01 with the
//! challenge certificate and everything else with the live one; configuration and
//! `wagate check`.

use std::sync::Arc;

use wagate::tls::TlsConfig;

use crate::support::child::wagate;
use crate::support::tls::{handshake, TlsServer, ACME_TLS, DOMAIN, HTTP, OTHER_DOMAIN};

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

#[tokio::test]
async fn tls_alpn_01_is_answered_with_the_challenge_certificate_only() {
    let data = tempfile::tempdir().unwrap();
    let tls = Arc::new(TlsConfig::managed().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = TlsServer::start(data.path(), listener, tls.clone()).await;
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
