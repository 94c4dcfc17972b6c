//! The client's address behind a reverse proxy: `X-Forwarded-For` is believed only
//! when the connection comes from a proxy listed in `WAGATE_TRUSTED_PROXIES`.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// An address range, `10.0.0.0/8`, `::1/128` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{s}' is not an address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("'{s}': prefix must be 0..={max}"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            _ => ip,
        };
        let (a, b, bits) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            _ => return false,
        };
        let shift = bits - u32::from(self.prefix);
        shift >= bits || (a >> shift) == (b >> shift)
    }
}

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
