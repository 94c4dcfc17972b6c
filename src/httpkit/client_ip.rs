//! The client's address behind a reverse proxy: `X-Forwarded-For` is believed only
//! when the connection comes from a proxy listed in `WAGATE_TRUSTED_PROXIES`.

use std::net::{IpAddr, SocketAddr};

use crate::util::cidr::Cidr;

/// The client's IP: the peer's, or, when the peer is a trusted proxy, the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: SocketAddr, forwarded_for: Option<&str>, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer.ip()) {
        return peer.ip();
    }
    forwarded_for
        .and_then(|chain| {
            chain
                .split(',')
                .rev()
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .find(|ip| !is_trusted(*ip))
        })
        .unwrap_or(peer.ip())
}

/// The client address to record: the peer, or, when the peer is a trusted proxy, the
/// client it forwarded for ("client (via proxy)").
pub fn client_addr(
    peer: Option<SocketAddr>,
    forwarded_for: Option<&str>,
    trusted: &[Cidr],
) -> Option<String> {
    let peer = peer?;
    let ip = client_ip(peer, forwarded_for, trusted);
    Some(if ip == peer.ip() {
        peer.to_string()
    } else {
        format!("{ip} (via {peer})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_forwarding() {
        let trusted: Vec<Cidr> = ["127.0.0.1", "10.0.0.0/8", "::1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert!(trusted[1].contains("10.2.3.4".parse().unwrap()));
        assert!(!trusted[1].contains("11.0.0.1".parse().unwrap()));
        assert!("0.0.0.0/0"
            .parse::<Cidr>()
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        let proxy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let outsider: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        assert_eq!(
            client_addr(Some(proxy), Some("198.51.100.7, 10.1.1.1"), &trusted).unwrap(),
            "198.51.100.7 (via 127.0.0.1:5000)"
        );
        // Not from a trusted proxy: the header is ignored (anyone can send it).
        assert_eq!(
            client_addr(Some(outsider), Some("1.2.3.4"), &trusted).unwrap(),
            "203.0.113.9:5000"
        );
        assert_eq!(
            client_addr(Some(proxy), Some("junk"), &trusted).unwrap(),
            "127.0.0.1:5000"
        );
    }
}
