//! Connection limits of the HTTP server (`WAGATE_HEADER_TIMEOUT`,
//! `WAGATE_BODY_TIMEOUT`, `WAGATE_IDLE_TIMEOUT`, `WAGATE_MAX_CONNECTIONS`), read by
//! `config/mod.rs`. They keep a slow or idle client from holding a connection (and
//! its file descriptor) for long.

use std::time::Duration;

use super::{bad, count_var, duration_var, ConfigError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// A request's head (request line and headers) must arrive within this.
    pub header_timeout: Duration,
    /// A request's body must arrive within this, counted from its head.
    pub body_timeout: Duration,
    /// A connection that moves no byte either way for this long is closed
    /// (before its first request, between requests, a stalled body or download).
    pub idle_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 512,
        }
    }
}

pub(super) fn read_server(
    get: &impl Fn(&str) -> Option<String>,
    c: &mut ServerConfig,
) -> Result<(), ConfigError> {
    duration_var(get, "WAGATE_HEADER_TIMEOUT", &mut c.header_timeout)?;
    duration_var(get, "WAGATE_BODY_TIMEOUT", &mut c.body_timeout)?;
    duration_var(get, "WAGATE_IDLE_TIMEOUT", &mut c.idle_timeout)?;
    count_var(
        get,
        "WAGATE_MAX_CONNECTIONS",
        1..=1_000_000,
        &mut c.max_connections,
    )?;
    for (name, d) in [
        ("WAGATE_HEADER_TIMEOUT", c.header_timeout),
        ("WAGATE_BODY_TIMEOUT", c.body_timeout),
        ("WAGATE_IDLE_TIMEOUT", c.idle_timeout),
    ] {
        if d < Duration::from_millis(100) {
            return Err(bad(name, "must be at least 100ms"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
        let get = |n: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        };
        let mut c = ServerConfig::default();
        read_server(&get, &mut c).map(|()| c)
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(read(&[]).unwrap(), ServerConfig::default());
        let c = read(&[
            ("WAGATE_HEADER_TIMEOUT", "5s"),
            ("WAGATE_BODY_TIMEOUT", "1m"),
            ("WAGATE_IDLE_TIMEOUT", "2m"),
            ("WAGATE_MAX_CONNECTIONS", "64"),
        ])
        .unwrap();
        assert_eq!(c.header_timeout, Duration::from_secs(5));
        assert_eq!(c.body_timeout, Duration::from_secs(60));
        assert_eq!(c.idle_timeout, Duration::from_secs(120));
        assert_eq!(c.max_connections, 64);
    }

    #[test]
    fn nonsense_is_refused_with_its_name() {
        for (name, v) in [
            ("WAGATE_HEADER_TIMEOUT", "1ms"),
            ("WAGATE_BODY_TIMEOUT", "soon"),
            ("WAGATE_MAX_CONNECTIONS", "0"),
        ] {
            assert_eq!(read(&[(name, v)]).unwrap_err().name, name);
        }
    }
}
