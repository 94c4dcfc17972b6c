//! Media download settings (`WAGATE_MEDIA_*`), read by `config.rs`.

use std::path::PathBuf;
use std::time::Duration;

use super::{bad, count_var, duration_var, ConfigError};

/// Meta's media download hosts.
pub const DEFAULT_MEDIA_HOSTS: &[&str] = &["lookaside.fbsbx.com"];

#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Hosts media may be downloaded from (the bearer token goes nowhere else). An
    /// entry starting with `.` also allows every subdomain.
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
        }
    }
}

fn valid_host(h: &str) -> bool {
    let h = h.strip_prefix('.').unwrap_or(h);
    !h.is_empty()
        && h.len() <= 253
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':')
        && !h.starts_with('.')
        && !h.ends_with('.')
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
        if let Some(h) = hosts.iter().find(|h| !valid_host(h)) {
            return Err(bad(
                "WAGATE_MEDIA_HOSTS",
                format!("'{h}' is not a host name (no scheme, port or path)"),
            ));
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
        for (name, value) in [
            ("WAGATE_MEDIA_HOSTS", "https://x.com"),
            ("WAGATE_MEDIA_HOSTS", "x.com/a"),
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
