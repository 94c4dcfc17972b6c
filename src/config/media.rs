//! Media download settings (`WAGATE_MEDIA_*`), read by `config.rs`.

use std::path::PathBuf;
use std::time::Duration;

use super::{bad, count_var, duration_var, ConfigError, MediaStoreConfig};

/// Meta's media download hosts.
pub const DEFAULT_MEDIA_HOSTS: &[&str] = &["lookaside.fbsbx.com"];

#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Hosts media may be downloaded from (the bearer token goes nowhere else): see
    /// [`MediaHost`] (`.domain` also allows every subdomain; `host:port` that port
    /// only; a bare host the scheme's default port only).
    pub hosts: Vec<String>,
    /// Stored files are deleted this long after they were stored.
    pub ttl: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Whole-download time limit of one attempt (no data for `graph.timeout`: also cut).
    pub timeout: Duration,
    /// Downloads at once.
    pub concurrency: usize,
    /// How often the TTL and orphan sweep runs.
    pub sweep_every: Duration,
    /// clamd to scan every file with (`WAGATE_CLAMD`); none: no scanning.
    pub clamd: Option<ClamdAddr>,
    /// Longest wait for clamd (connect, each write, the answer).
    pub clamd_timeout: Duration,
    /// While free space is below `WAGATE_MIN_FREE`, downloads wait; checked this often.
    pub disk_check_every: Duration,
    /// `WAGATE_MEDIA_STORE`: a bucket; none: files under `<data>/media/`.
    pub store: Option<MediaStoreConfig>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            hosts: DEFAULT_MEDIA_HOSTS.iter().map(|h| h.to_string()).collect(),
            ttl: Duration::from_secs(30 * 24 * 3600),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(600),
            timeout: Duration::from_secs(600),
            concurrency: 4,
            sweep_every: Duration::from_secs(600),
            clamd: None,
            clamd_timeout: Duration::from_secs(60),
            disk_check_every: Duration::from_secs(10),
            store: None,
        }
    }
}

/// One `WAGATE_MEDIA_HOSTS` entry: a host name or IP address, or `.domain` (the
/// domain and its subdomains), optionally with `:port`; an IPv6 address in brackets
/// when it has a port (`[::1]:8443`). Without a port it allows the scheme's default
/// port only (443 for https).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaHost {
    /// Lower case, no brackets.
    pub host: String,
    pub subdomains: bool,
    pub port: Option<u16>,
}

impl MediaHost {
    pub fn parse(entry: &str) -> Result<MediaHost, String> {
        let e = entry.trim().to_ascii_lowercase();
        let bad = || format!("'{e}' is not a host or host:port (no scheme or path)");
        let (host, port) = if let Some(rest) = e.strip_prefix('[') {
            let (ip, after) = rest.split_once(']').ok_or_else(bad)?;
            ip.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            match after {
                "" => (ip.to_string(), None),
                p => (ip.to_string(), Some(p.strip_prefix(':').ok_or_else(bad)?)),
            }
        } else if e.matches(':').count() > 1 {
            e.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            (e.clone(), None)
        } else {
            match e.split_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (e.clone(), None),
            }
        };
        let port = match port {
            None => None,
            Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?),
        };
        let (name, subdomains) = match host.strip_prefix('.') {
            Some(d) => (d.to_string(), true),
            None => (host, false),
        };
        let ip = name.parse::<std::net::IpAddr>().is_ok();
        let valid_name = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            && !name.starts_with('.')
            && !name.ends_with('.');
        if !(ip && !subdomains || valid_name) {
            return Err(bad());
        }
        Ok(MediaHost {
            host: name,
            subdomains,
            port,
        })
    }

    /// Whether a URL's host (no brackets) and explicit port (`None`: the scheme's
    /// default) are allowed by this entry.
    pub fn allows(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let same = match (
            host.parse::<std::net::IpAddr>(),
            self.host.parse::<std::net::IpAddr>(),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => host.eq_ignore_ascii_case(&self.host),
        };
        let sub = self.subdomains
            && host.len() > self.host.len() + 1
            && host
                .to_ascii_lowercase()
                .ends_with(&format!(".{}", self.host));
        (same || sub) && port == self.port
    }
}

pub(super) fn read_media(
    get: &impl Fn(&str) -> Option<String>,
    m: &mut MediaConfig,
) -> Result<(), ConfigError> {
    if let Some(v) = get("WAGATE_MEDIA_HOSTS") {
        let hosts: Vec<String> = v
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        if let Some(e) = hosts.iter().find_map(|h| MediaHost::parse(h).err()) {
            return Err(bad("WAGATE_MEDIA_HOSTS", e));
        }
        if hosts.is_empty() {
            return Err(bad("WAGATE_MEDIA_HOSTS", "names no host"));
        }
        m.hosts = hosts;
    }
    duration_var(get, "WAGATE_MEDIA_TTL", &mut m.ttl)?;
    duration_var(get, "WAGATE_MEDIA_BACKOFF_BASE", &mut m.backoff_base)?;
    duration_var(get, "WAGATE_MEDIA_BACKOFF_CAP", &mut m.backoff_cap)?;
    if m.backoff_cap < m.backoff_base {
        return Err(bad(
            "WAGATE_MEDIA_BACKOFF_CAP",
            "must not be shorter than WAGATE_MEDIA_BACKOFF_BASE",
        ));
    }
    duration_var(get, "WAGATE_MEDIA_TIMEOUT", &mut m.timeout)?;
    if let Some(v) = get("WAGATE_CLAMD").filter(|v| !v.trim().is_empty()) {
        m.clamd = Some(ClamdAddr::parse(&v).map_err(|e| bad("WAGATE_CLAMD", e))?);
    }
    duration_var(get, "WAGATE_CLAMD_TIMEOUT", &mut m.clamd_timeout)?;
    count_var(get, "WAGATE_MEDIA_CONCURRENCY", 1..=64, &mut m.concurrency)?;
    if let Some(v) = get("WAGATE_MEDIA_STORE") {
        m.store = Some(MediaStoreConfig::parse(&v).map_err(|e| bad("WAGATE_MEDIA_STORE", e))?);
    }
    Ok(())
}

/// Where clamd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddr {
    Unix(PathBuf),
    Tcp(String),
}

impl ClamdAddr {
    /// `unix:/path`, an absolute path, `tcp:host:port` or `host:port`.
    pub fn parse(s: &str) -> Result<ClamdAddr, String> {
        let s = s.trim();
        if let Some(p) = s.strip_prefix("unix:") {
            return Ok(ClamdAddr::Unix(PathBuf::from(p)));
        }
        if s.starts_with('/') {
            return Ok(ClamdAddr::Unix(PathBuf::from(s)));
        }
        let hp = s.strip_prefix("tcp:").unwrap_or(s);
        match hp.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => {
                Ok(ClamdAddr::Tcp(hp.to_string()))
            }
            _ => Err(format!(
                "'{s}' is neither a socket path (unix:/run/clamav/clamd.ctl) nor host:port"
            )),
        }
    }
}

impl std::fmt::Display for ClamdAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClamdAddr::Unix(p) => write!(f, "unix:{}", p.display()),
            ClamdAddr::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_entries_match_host_and_port() {
        let allows = |entry: &str, host: &str, port: Option<u16>| {
            MediaHost::parse(entry).unwrap().allows(host, port)
        };
        // (entry, URL host, explicit port or None for the default, allowed)
        let table: &[(&str, &str, Option<u16>, bool)] = &[
            ("lookaside.fbsbx.com", "lookaside.fbsbx.com", None, true),
            (
                "lookaside.fbsbx.com",
                "lookaside.fbsbx.com",
                Some(8443),
                false,
            ),
            ("lookaside.fbsbx.com", "LOOKASIDE.fbsbx.com", None, true),
            ("lookaside.fbsbx.com", "x.lookaside.fbsbx.com", None, false),
            (".example.org", "a.example.org", None, true),
            (".example.org", "example.org", None, true),
            (".example.org", "badexample.org", None, false),
            (".example.org", "a.example.org", Some(444), false),
            ("127.0.0.1:9", "127.0.0.1", Some(9), true),
            ("127.0.0.1:9", "127.0.0.1", Some(10), false),
            ("127.0.0.1:9", "127.0.0.1", None, false),
            ("127.0.0.1", "127.0.0.1", Some(9), false),
            ("[::1]:9", "[::1]", Some(9), true),
            ("[::1]:9", "::1", Some(9), true),
            ("::1", "[::1]", None, true),
            ("[0:0::1]", "[::1]", None, true),
            ("::1", "[::1]", Some(9), false),
        ];
        for (entry, host, port, want) in table {
            assert_eq!(
                allows(entry, host, *port),
                *want,
                "{entry} vs {host}:{port:?}"
            );
        }
    }

    #[test]
    fn hosts_and_limits() {
        let get = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let mut m = MediaConfig::default();
        read_media(
            &get(&[("WAGATE_MEDIA_HOSTS", "127.0.0.1, .FBSBX.com")]),
            &mut m,
        )
        .unwrap();
        assert_eq!(m.hosts, vec!["127.0.0.1", ".fbsbx.com"]);
        read_media(
            &get(&[("WAGATE_MEDIA_HOSTS", "a.com:8443,[::1]:9")]),
            &mut m,
        )
        .unwrap();
        for (name, value) in [
            ("WAGATE_MEDIA_HOSTS", "https://x.com"),
            ("WAGATE_MEDIA_HOSTS", "x.com/a"),
            ("WAGATE_MEDIA_HOSTS", "x.com:"),
            ("WAGATE_MEDIA_HOSTS", "x.com:0"),
            ("WAGATE_MEDIA_HOSTS", "x.com:99999"),
            ("WAGATE_MEDIA_HOSTS", "x.com:80:80"),
            ("WAGATE_MEDIA_HOSTS", "[::1"),
            ("WAGATE_MEDIA_HOSTS", "[x]:1"),
            ("WAGATE_MEDIA_HOSTS", "x@y.com"),
            ("WAGATE_MEDIA_TTL", "0s"),
            ("WAGATE_MEDIA_CONCURRENCY", "0"),
            ("WAGATE_MEDIA_BACKOFF_CAP", "1ms"),
        ] {
            let pairs: &'static [(&'static str, &'static str)] =
                Box::leak(vec![(name, value)].into_boxed_slice());
            let err = read_media(&get(pairs), &mut MediaConfig::default()).unwrap_err();
            assert_eq!(err.name, name);
        }
    }
}
