//! Let's Encrypt's `pebble` ACME test server (Debian package `pebble`) as a child
//! process, for the ACME tests.
//!
//! - Ports: pebble's ACME and management ports are picked by binding 127.0.0.1:0 and
//!   releasing; its `tlsPort` (where it validates TLS-ALPN-01) is wagate's port.
//! - Names: pebble resolves the test domains through `-dnsserver`, a tiny DNS
//!   responder here that answers every A query with 127.0.0.1 (and AAAA with no
//!   address), so no /etc/hosts entry is needed and any name works.
//! - Its HTTPS certificate is made here (a throwaway CA, `ca_pem`), which wagate
//!   trusts through `WAGATE_ACME_CA_ROOT`.
//! - `PEBBLE_VA_NOSLEEP=1` (no random validation delay) and
//!   `PEBBLE_WFE_NONCEREJECT=0` (no random bad-nonce answers); challenges are really
//!   validated (`PEBBLE_VA_ALWAYS_VALID` is not set).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tempfile::TempDir;

use super::eventually;

pub struct Pebble {
    child: Child,
    /// Holds the config, certificates and pebble's log (`pebble.log`).
    pub dir: TempDir,
    /// `https://127.0.0.1:PORT/dir`
    pub directory: String,
    /// The CA of pebble's own HTTPS certificate (PEM file).
    pub ca_pem: PathBuf,
    management: String,
    dns: tokio::task::JoinHandle<()>,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dns.abort();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// The pebble binary on `PATH` (Debian: /usr/bin/pebble), or a panic that says how
/// to get it.
pub fn binary() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("pebble"))
        .find(|p| p.is_file())
        .expect("pebble is not installed: apt-get install pebble (or run .ci/run)")
}

/// A CA and a certificate for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem).
fn https_certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "wagate test: pebble's HTTPS CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, leaf.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

impl Pebble {
    /// Starts pebble validating TLS-ALPN-01 on 127.0.0.1:`tls_port`; waits until its
    /// directory answers.
    pub async fn start(tls_port: u16) -> Pebble {
        let bin = binary();
        let dir = tempfile::tempdir().unwrap();
        let (ca_pem, cert, key) = https_certificate(dir.path());
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let dns_addr = socket.local_addr().unwrap();
        let dns = tokio::spawn(answer_dns(socket));
        let (acme_port, management_port) = (free_port(), free_port());
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": cert,
            "privateKey": key,
            "httpPort": free_port(),
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        let config_path = dir.path().join("pebble-config.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let log = std::fs::File::create(dir.path().join("pebble.log")).unwrap();
        let child = Command::new(bin)
            .arg("-config")
            .arg(&config_path)
            .arg("-dnsserver")
            .arg(dns_addr.to_string())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env_remove("PEBBLE_VA_ALWAYS_VALID")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn pebble");
        let pebble = Pebble {
            child,
            directory: format!("https://127.0.0.1:{acme_port}/dir"),
            management: format!("https://127.0.0.1:{management_port}"),
            ca_pem,
            dir,
            dns,
        };
        let client = pebble.client();
        eventually("pebble's directory to answer", async || {
            let answer = client.get(&pebble.directory).send().await;
            match answer.map(|r| r.status()) {
                Ok(status) if status.is_success() => Ok(()),
                Ok(status) => Err(format!("{status}; pebble's log:\n{}", pebble.log())),
                Err(e) => Err(format!("{e}; pebble's log:\n{}", pebble.log())),
            }
        })
        .await;
        pebble
    }

    /// A client that trusts pebble's HTTPS certificate.
    fn client(&self) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&self.ca_pem).unwrap()).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .unwrap()
    }

    /// The root that pebble issues certificates under (PEM), from its management API.
    pub async fn issuing_root(&self) -> Vec<u8> {
        let resp = self
            .client()
            .get(format!("{}/roots/0", self.management))
            .send()
            .await
            .expect("pebble management API");
        assert!(resp.status().is_success());
        resp.bytes().await.unwrap().to_vec()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// How many certificates pebble has issued (its log says so once each).
    pub fn issued(&self) -> usize {
        self.log().matches("Issued certificate serial").count()
    }
}

/// Answers every A query with 127.0.0.1 and everything else with no record.
async fn answer_dns(socket: tokio::net::UdpSocket) {
    let mut buf = [0u8; 1500];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            return;
        };
        if let Some(answer) = dns_answer(&buf[..n]) {
            let _ = socket.send_to(&answer, from).await;
        }
    }
}

fn dns_answer(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[4..6] != [0, 1] {
        return None;
    }
    // The question's name: length-prefixed labels up to a zero byte.
    let mut i = 12;
    loop {
        let len = *query.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        if len & 0xC0 != 0 {
            return None;
        }
        i += len;
    }
    let end = i + 4;
    let qtype = u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]);
    if end > query.len() {
        return None;
    }
    let is_a = qtype == 1;
    let mut r = Vec::with_capacity(end + 16);
    r.extend_from_slice(&query[0..2]); // id
    r.push(0x84 | (query[2] & 0x01)); // response, authoritative, recursion desired copied
    r.push(0x80); // recursion available, no error
    r.extend_from_slice(&[0, 1, 0, is_a as u8, 0, 0, 0, 0]);
    r.extend_from_slice(&query[12..end]);
    if is_a {
        // Name (pointer to the question), A, IN, TTL 60, 4 bytes: 127.0.0.1.
        r.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    Some(r)
}
