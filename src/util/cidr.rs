//! Address ranges (`WAGATE_TRUSTED_PROXIES`), over `ipnet`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// An address range, `10.0.0.0/8`, `::1/128` or a single address (`/32`, `/128`).
/// An IPv4 range also holds the IPv4-mapped IPv6 form of its addresses
/// (`::ffff:10.1.2.3`), which a dual-stack listener reports for IPv4 peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(IpNet);

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
        let Some(prefix) = prefix else {
            return Ok(Cidr(IpNet::from(addr)));
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        prefix
            .parse::<u8>()
            .ok()
            .and_then(|p| IpNet::new(addr, p).ok())
            .map(Cidr)
            .ok_or_else(|| format!("'{s}': prefix must be 0..={max}"))
    }
}

impl fmt::Display for Cidr {
    /// `10.0.0.0/8`; a single address shows its full prefix (`127.0.0.1/32`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.0, ip) {
            (IpNet::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            _ => ip,
        };
        self.0.contains(&ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_and_single_addresses() {
        for (range, inside, outside) in [
            ("10.0.0.0/8", "10.255.0.1", "11.0.0.1"),
            ("10.1.2.3/8", "10.9.9.9", "9.255.255.255"),
            ("127.0.0.1", "127.0.0.1", "127.0.0.2"),
            ("0.0.0.0/0", "8.8.8.8", "::1"),
            ("::1", "::1", "::2"),
            ("fd00::/8", "fd12::1", "fe80::1"),
            ("::/0", "2001:db8::1", "10.0.0.1"),
        ] {
            assert!(cidr(range).contains(ip(inside)), "{range} holds {inside}");
            assert!(!cidr(range).contains(ip(outside)), "{range} not {outside}");
        }
    }

    #[test]
    fn an_ipv4_range_holds_ipv4_mapped_peers() {
        let range = cidr("10.0.0.0/8");
        assert!(range.contains(ip("::ffff:10.1.2.3")));
        assert!(!range.contains(ip("::ffff:11.1.2.3")));
        assert!(cidr("127.0.0.1").contains(ip("::ffff:127.0.0.1")));
        // Only the mapped form: an IPv6 range does not hold plain IPv4 peers.
        assert!(!cidr("::ffff:0:0/96").contains(ip("10.1.2.3")));
    }

    #[test]
    fn bad_ranges_say_why() {
        for (text, message) in [
            ("10.0.0.0/33", "'10.0.0.0/33': prefix must be 0..=32"),
            ("::/129", "'::/129': prefix must be 0..=128"),
            ("10.0.0.0/x", "'10.0.0.0/x': prefix must be 0..=32"),
            ("10.0.0/8", "'10.0.0/8' is not an address or CIDR range"),
            ("proxy", "'proxy' is not an address or CIDR range"),
        ] {
            assert_eq!(text.parse::<Cidr>().unwrap_err(), message);
        }
    }

    #[test]
    fn prints_as_a_range() {
        assert_eq!(cidr(" 10.0.0.0/8 ").to_string(), "10.0.0.0/8");
        assert_eq!(cidr("127.0.0.1").to_string(), "127.0.0.1/32");
        assert_eq!(cidr("::1").to_string(), "::1/128");
    }
}
