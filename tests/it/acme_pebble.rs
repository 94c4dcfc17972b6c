//! ACME end to end against pebble (ignored by default; `.ci/run` installs pebble and
//! runs them): a real order validated over TLS-ALPN-01, made by the binary configured
//! from the environment; a restart that reuses the stored certificate; the renewal
//! of a stored certificate near expiry.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use wagate::acme::{Acme, AcmeStatus};
use wagate::config::AcmeConfig;
use wagate::tls::TlsConfig;

use crate::support::child::{start_with, wagate};
use crate::support::pebble::{free_port, Pebble};
use crate::support::tls::{handshake, TlsServer, DOMAIN, HTTP, OTHER_DOMAIN};
use crate::support::{eventually, post_signed_webhook, API_TOKEN};

/// Waits (on the status channel, no polling) until `done` holds.
async fn wait_status(acme: &Acme, what: &str, done: impl Fn(&AcmeStatus) -> bool) -> AcmeStatus {
    let mut status = acme.status();
    let wait = async {
        loop {
            let s = status.borrow_and_update().clone();
            if done(&s) {
                return s;
            }
            status.changed().await.expect("renewal task alive");
        }
    };
    tokio::time::timeout(Duration::from_secs(90), wait)
        .await
        .unwrap_or_else(|_| panic!("ACME: {what} within 90 s; status {:?}", status.borrow()))
}

fn acme_config(pebble: &Pebble, domains: &[&str]) -> AcmeConfig {
    AcmeConfig {
        domains: domains.iter().map(|d| d.to_string()).collect(),
        email: Some("ops@wagate.test".into()),
        directory: pebble.directory.clone(),
        ca_root: Some(pebble.ca_pem.clone()),
    }
}

fn stored_certificate(data: &Path, pebble: &Pebble) -> std::path::PathBuf {
    let ca = wagate::acme::files::ca_dir_name(&pebble.directory);
    data.join("acme").join(ca).join("certificate.pem")
}

fn leaf_of(pem_file: &Path) -> Vec<u8> {
    let pem = std::fs::read(pem_file).unwrap();
    CertificateDer::pem_slice_iter(&pem)
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

#[tokio::test]
#[ignore = "needs pebble (apt-get install pebble); .ci/run runs it"]
async fn acme_issues_through_pebble_and_a_restart_reuses_the_certificate() {
    let port = free_port();
    let pebble = Pebble::start(port).await;
    let data = tempfile::tempdir().unwrap();
    // The binary, configured from the environment as on a VPS.
    let server = start_with(
        data.path(),
        &[
            ("WAGATE_LISTEN", &format!("127.0.0.1:{port}")),
            ("WAGATE_ACME_DOMAIN", &format!("{DOMAIN}, {OTHER_DOMAIN}")),
            ("WAGATE_ACME_EMAIL", "ops@wagate.test"),
            ("WAGATE_ACME_DIRECTORY", &pebble.directory),
            ("WAGATE_ACME_CA_ROOT", pebble.ca_pem.to_str().unwrap()),
        ],
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let root = pebble.issuing_root().await;
    // Until the certificate is issued, handshakes fail.
    let roots: &[&[u8]] = &[&root];
    let (issued, _) = eventually("a certificate from pebble", async || {
        handshake(addr, DOMAIN, HTTP, roots)
            .await
            .map_err(|e| format!("{e}; pebble's log:\n{}", pebble.log()))
    })
    .await;
    // One certificate names both domains, chains to pebble's root.
    let info = wagate::acme::cert::CertInfo::parse(&issued).unwrap();
    assert!(
        info.covers_exactly(&[DOMAIN.into(), OTHER_DOMAIN.into()]),
        "{info:?}"
    );
    assert_eq!(
        handshake(addr, OTHER_DOMAIN, HTTP, &[&root])
            .await
            .unwrap()
            .0,
        issued
    );
    assert_eq!(pebble.issued(), 1);
    // SIGHUP (a certbot-style reload hook) is harmless with ACME.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) };
    // A webhook over that HTTPS, as Meta would send it.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&root).unwrap())
        .resolve(DOMAIN, addr)
        .build()
        .unwrap();
    let status = post_signed_webhook(&client, &format!("https://{DOMAIN}:{port}")).await;
    assert_eq!(status, 200);
    // The certificate and its orders are in the metrics.
    let metrics = client
        .get(format!("https://{DOMAIN}:{port}/metrics"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let expiry = format!(
        "\nwagate_acme_certificate_expiry_timestamp_seconds {}\n",
        info.not_after
    );
    assert!(metrics.contains(&expiry), "{metrics}");
    assert!(
        metrics.contains("\nwagate_acme_issued_total 1\n"),
        "{metrics}"
    );
    // Stored privately: the account and the certificate with its key.
    let cert_file = stored_certificate(data.path(), &pebble);
    assert_eq!(leaf_of(&cert_file), issued);
    for file in [cert_file.clone(), cert_file.with_file_name("account.json")] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }
    drop(server);

    // `wagate check` reports it.
    let out = wagate()
        .env("WAGATE_DATA_DIR", data.path())
        .env("WAGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("WAGATE_ACME_DOMAIN", format!("{OTHER_DOMAIN},{DOMAIN}"))
        .env("WAGATE_ACME_DIRECTORY", &pebble.directory)
        .env("WAGATE_ACME_CA_ROOT", &pebble.ca_pem)
        .arg("check")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ok: ACME: certificate valid until"), "{text}");
    assert!(text.contains("ok: ACME: account registered"), "{text}");

    // A restart serves the stored certificate at once and orders nothing.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let tls = Arc::new(TlsConfig::managed().unwrap());
    let server = TlsServer::start(data.path(), listener, tls.clone()).await;
    let config = acme_config(&pebble, &[OTHER_DOMAIN, DOMAIN]);
    let acme = Acme::start(
        config,
        data.path(),
        tls.clone(),
        wagate::util::clock::Clock::system(),
    )
    .unwrap();
    assert_eq!(
        handshake(addr, DOMAIN, HTTP, &[&root]).await.unwrap().0,
        issued
    );
    let status = wait_status(&acme, "renewal planned", |s| s.next_order_at.is_some()).await;
    let now = wagate::util::clock::now_micros() / 1_000_000;
    assert!(status.next_order_at.unwrap() > now + 86400, "{status:?}");
    assert_eq!((status.orders, status.issued), (0, 0));
    assert_eq!(status.certificate.unwrap().not_after, info.not_after);
    assert_eq!(pebble.issued(), 1);
    drop(acme);
    server.stop().await;
}

/// A certificate for `domain` from a throwaway CA, near the end of its life: issued
/// 80 days ago, expiring in 5 days.
fn near_expiry_pem(domain: &str) -> String {
    let now = time::OffsetDateTime::now_utc();
    let mut params = rcgen::CertificateParams::new(vec![domain.to_string()]).unwrap();
    params.not_before = now - time::Duration::days(80);
    params.not_after = now + time::Duration::days(5);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    format!("{}{}", key.serialize_pem(), cert.pem())
}

#[tokio::test]
#[ignore = "needs pebble (apt-get install pebble); .ci/run runs it"]
async fn acme_renews_a_stored_certificate_near_expiry() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let pebble = Pebble::start(addr.port()).await;
    let root = pebble.issuing_root().await;
    let data = tempfile::tempdir().unwrap();
    let cert_file = stored_certificate(data.path(), &pebble);
    std::fs::create_dir_all(cert_file.parent().unwrap()).unwrap();
    let old_pem = near_expiry_pem(DOMAIN);
    std::fs::write(&cert_file, &old_pem).unwrap();
    let old = leaf_of(&cert_file);

    let tls = Arc::new(TlsConfig::managed().unwrap());
    let server = TlsServer::start(data.path(), listener, tls.clone()).await;
    let acme = Acme::start(
        acme_config(&pebble, &[DOMAIN]),
        data.path(),
        tls.clone(),
        wagate::util::clock::Clock::system(),
    )
    .unwrap();
    // The old certificate is served while the renewal runs in the background.
    assert_eq!(
        acme.status()
            .borrow()
            .certificate
            .as_ref()
            .map(|c| c.names.clone()),
        Some(vec![DOMAIN.to_string()])
    );
    assert_eq!(handshake(addr, DOMAIN, HTTP, &[]).await.unwrap().0, old);

    let status = wait_status(&acme, "renewed", |s| s.issued >= 1 || s.failures > 0).await;
    assert_eq!(
        (status.issued, status.failures),
        (1, 0),
        "{status:?}\n{}",
        pebble.log()
    );
    assert_eq!(status.orders, 1);
    let renewed = handshake(addr, DOMAIN, HTTP, &[&root]).await.unwrap().0;
    assert_ne!(renewed, old);
    assert_eq!(leaf_of(&cert_file), renewed);
    let info = status.certificate.unwrap();
    assert!(
        info.not_after > wagate::util::clock::now_micros() / 1_000_000 + 30 * 86400,
        "{info:?}"
    );
    // The next renewal is planned for later, not now.
    let planned = wait_status(&acme, "next renewal planned", |s| {
        s.next_order_at.is_some_and(|t| t == info.renew_at())
    })
    .await;
    assert_eq!(planned.orders, 1);
    assert_eq!(pebble.issued(), 1);
    drop(acme);
    server.stop().await;
}
