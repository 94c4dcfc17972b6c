//! Configuration: defaults, then the environment, validated once at start.
//!
//! Secrets are wrapped in [`Secret`] so that `Debug` output (logs, panics) never
//! shows them.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod media;
mod media_store;
pub use media::{ClamdAddr, MediaConfig, MediaHost, DEFAULT_MEDIA_HOSTS};
pub use media_store::{MediaStoreConfig, StoreKind};
mod forward;
mod nats;
pub use forward::{parse_targets, ForwardConfig, ForwardMode, ForwardTarget, Transport};
pub use nats::{NatsConfig, NATS_TARGET};
mod acme;
pub use acme::{AcmeConfig, DEFAULT_ACME_DIRECTORY};
mod memory;
mod processing;
mod send;
mod server;
pub use memory::{MemoryBudget, DEFAULT_MEMORY};
pub use processing::{ProcessingConfig, DEFAULT_MAX_ITEMS};
pub use send::{GraphConfig, SendConfig, DEFAULT_GRAPH_URL, DEFAULT_GRAPH_VERSION};
pub use server::ServerConfig;
pub mod values;
use values::{count_var, duration_var};
pub use values::{format_duration, format_size, parse_duration, parse_size};

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{name}: {message}")]
pub struct ConfigError {
    pub name: &'static str,
    pub message: String,
}

fn bad(name: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        name,
        message: message.into(),
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Meta app secrets, in rotation order; a delivery matching any is accepted.
    pub app_secrets: Vec<Secret>,
    pub verify_token: Option<Secret>,
    /// `None`: generated on first start and kept in the data directory.
    pub api_token: Option<Secret>,
    /// A second token that may read `/metrics` only (for a Prometheus scraper).
    pub metrics_token: Option<Secret>,
    pub max_body: usize,
    pub quarantine_max: u64,
    pub dedup_ttl: Duration,
    /// Size at which a journal segment is closed and a new one started.
    pub segment_size: u64,
    /// Free space below which wagate warns (metrics, `wagate check`).
    pub min_free: u64,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<crate::util::cidr::Cidr>,
    /// Raw deliveries (journal segments) are deleted after this.
    pub raw_ttl: Duration,
    /// Messages, statuses and account events are deleted after this.
    pub event_ttl: Duration,
    /// HTTPS certificate chain and private key (PEM); both or neither.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Automatic certificates over ACME (TLS-ALPN-01); excludes `tls`.
    pub acme: Option<AcmeConfig>,
    /// Media master key file; `None`: `<data>/media-keys`, created on first start.
    pub media_key_file: Option<PathBuf>,
    /// Outbound calls to Meta's Graph API (sending; later media and forwarding).
    pub graph: GraphConfig,
    pub send: SendConfig,
    /// Media download, limits and retention.
    pub media: MediaConfig,
    /// Forwarding targets, retries and limits.
    pub forward: ForwardConfig,
    /// Dashboard password (`WAGATE_ADMIN_PASSWORD`); `None`: `<data>/admin-password`,
    /// generated on first start.
    pub admin_password: Option<Secret>,
    /// A dashboard session idle this long ends (30 minutes; shorter in tests).
    pub dashboard_idle: Duration,
    /// Timeouts and the connection cap of the HTTP server.
    pub server: ServerConfig,
    /// Items per delivery, and when processing counts as stuck.
    pub processing: ProcessingConfig,
    /// `WAGATE_MEMORY`: sizes sled's cache, the dedup filter, queues and threads.
    pub memory: MemoryBudget,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;
pub const DEFAULT_QUARANTINE_MAX: u64 = 256 * 1024 * 1024;
pub const DEFAULT_DEDUP_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 * 1024 * 1024;
pub const DEFAULT_MIN_FREE: u64 = 512 * 1024 * 1024;
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

impl Config {
    /// Defaults suitable for a run from the checkout (and for tests).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            data_dir: data_dir.into(),
            app_secrets: Vec::new(),
            verify_token: None,
            api_token: None,
            metrics_token: None,
            max_body: DEFAULT_MAX_BODY,
            quarantine_max: DEFAULT_QUARANTINE_MAX,
            dedup_ttl: DEFAULT_DEDUP_TTL,
            segment_size: DEFAULT_SEGMENT_SIZE,
            min_free: DEFAULT_MIN_FREE,
            trusted_proxies: Vec::new(),
            raw_ttl: DEFAULT_RETENTION,
            event_ttl: DEFAULT_RETENTION,
            media_key_file: None,
            tls: None,
            acme: None,
            graph: GraphConfig::default(),
            send: SendConfig::default(),
            media: MediaConfig::default(),
            forward: ForwardConfig::default(),
            admin_password: None,
            dashboard_idle: Duration::from_secs(30 * 60),
            server: ServerConfig::default(),
            processing: ProcessingConfig::default(),
            memory: MemoryBudget::default(),
        }
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut config = Config::new(get("WAGATE_DATA_DIR").unwrap_or_else(|| "./data".into()));
        read_access(&get, &mut config)?;
        read_journal(&get, &mut config)?;
        server::read_server(&get, &mut config.server)?;
        processing::read_processing(&get, &mut config.processing)?;
        memory::read_memory(&get, &mut config.memory)?;
        send::read_graph(&get, &mut config.graph)?;
        send::read_send(&get, &mut config.send)?;
        config.tls = read_tls(&get)?;
        config.acme = acme::read_acme(&get, config.tls.is_some())?;
        media::read_media(&get, &mut config.media)?;
        forward::read_forward(&get, &config.data_dir, &mut config.forward)?;
        if config.forward.max_age > config.raw_ttl {
            // A queued event is read back from its raw delivery when it is sent.
            return Err(bad(
                "WAGATE_FORWARD_MAX_AGE",
                "must not be longer than WAGATE_RAW_TTL",
            ));
        }
        if let Some(v) = get("WAGATE_MEDIA_KEY_FILE") {
            let v = v.trim();
            if v.ends_with('/') {
                return Err(bad(
                    "WAGATE_MEDIA_KEY_FILE",
                    format!("'{v}' names a directory; name the key file"),
                ));
            }
            config.media_key_file = Some(PathBuf::from(v));
        }
        Ok(config)
    }
}

/// Who may do what: the listen address, Meta's secrets, the API, metrics and
/// dashboard credentials.
fn read_access(
    get: &impl Fn(&str) -> Option<String>,
    config: &mut Config,
) -> Result<(), ConfigError> {
    if let Some(v) = get("WAGATE_LISTEN") {
        config.listen = v.trim().parse().map_err(|_| {
            bad(
                "WAGATE_LISTEN",
                format!("'{v}' is not an address like 127.0.0.1:8080"),
            )
        })?;
    }
    if let Some(v) = get("META_APP_SECRET") {
        config.app_secrets = v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Secret::new)
            .collect();
    }
    config.verify_token = get("WHATSAPP_VERIFY_TOKEN").map(Secret::new);
    config.api_token = token_var(get, "WAGATE_API_TOKEN")?;
    config.metrics_token = token_var(get, "WAGATE_METRICS_TOKEN")?;
    if let Some(v) = get("WAGATE_ADMIN_PASSWORD") {
        if v.chars().count() < 8 {
            return Err(bad(
                "WAGATE_ADMIN_PASSWORD",
                "must be at least 8 characters",
            ));
        }
        config.admin_password = Some(Secret::new(v));
    }
    if let Some(v) = get("WAGATE_TRUSTED_PROXIES") {
        config.trusted_proxies = v
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|m| bad("WAGATE_TRUSTED_PROXIES", m))?;
    }
    Ok(())
}

/// A bearer token: at least 16 characters, trimmed.
fn token_var(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<Secret>, ConfigError> {
    match get(name) {
        Some(v) if v.trim().len() < 16 => Err(bad(name, "must be at least 16 characters")),
        Some(v) => Ok(Some(Secret::new(v.trim()))),
        None => Ok(None),
    }
}

/// A size in bytes (`64KiB`, `1MiB`...) of at least `min`.
fn size_var(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    min: u64,
) -> Result<Option<u64>, ConfigError> {
    let Some(v) = get(name) else {
        return Ok(None);
    };
    let n = parse_size(&v).map_err(|m| bad(name, m))?;
    if n < min {
        return Err(bad(
            name,
            format!("must be at least {}", values::format_size(min)),
        ));
    }
    Ok(Some(n))
}

/// What the journal keeps and for how long; what dedup remembers.
fn read_journal(
    get: &impl Fn(&str) -> Option<String>,
    config: &mut Config,
) -> Result<(), ConfigError> {
    if let Some(n) = size_var(get, "WAGATE_MAX_BODY", 0)? {
        if !(1024..=64 * 1024 * 1024).contains(&n) {
            return Err(bad("WAGATE_MAX_BODY", "must be between 1KiB and 64MiB"));
        }
        config.max_body = n as usize;
    }
    if let Some(n) = size_var(get, "WAGATE_QUARANTINE_MAX", 1024 * 1024)? {
        config.quarantine_max = n;
    }
    if let Some(n) = size_var(get, "WAGATE_SEGMENT_SIZE", 64 * 1024)? {
        config.segment_size = n;
    }
    if let Some(n) = size_var(get, "WAGATE_MIN_FREE", 0)? {
        config.min_free = n;
    }
    duration_var(get, "WAGATE_DEDUP_TTL", &mut config.dedup_ttl)?;
    duration_var(get, "WAGATE_RAW_TTL", &mut config.raw_ttl)?;
    duration_var(get, "WAGATE_EVENT_TTL", &mut config.event_ttl)?;
    if config.event_ttl < config.dedup_ttl {
        // A stored message is its own dedup key: it must outlive the dedup window.
        return Err(bad("WAGATE_EVENT_TTL", "must be at least WAGATE_DEDUP_TTL"));
    }
    Ok(())
}

/// `WAGATE_TLS_CERT` and `WAGATE_TLS_KEY`: both or neither.
fn read_tls(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<(PathBuf, PathBuf)>, ConfigError> {
    match (get("WAGATE_TLS_CERT"), get("WAGATE_TLS_KEY")) {
        (Some(c), Some(k)) => Ok(Some((PathBuf::from(c.trim()), PathBuf::from(k.trim())))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(bad(
            "WAGATE_TLS_KEY",
            "WAGATE_TLS_CERT is set: set the key file too",
        )),
        (None, Some(_)) => Err(bad(
            "WAGATE_TLS_CERT",
            "WAGATE_TLS_KEY is set: set the certificate file too",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    pub(super) fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_and_values() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.max_body, 4 << 20);
        let c = cfg(&[("META_APP_SECRET", "a, b"), ("WAGATE_DEDUP_TTL", "15m")]).unwrap();
        assert_eq!(c.app_secrets.len(), 2);
        assert_eq!(c.dedup_ttl, Duration::from_secs(900));
        assert!(!format!("{c:?}").contains("\"a\""));
    }

    #[test]
    fn bad_values_name_the_variable() {
        assert_eq!(
            cfg(&[("WAGATE_LISTEN", "nope")]).unwrap_err().name,
            "WAGATE_LISTEN"
        );
        assert_eq!(
            cfg(&[("WAGATE_MAX_BODY", "4XB")]).unwrap_err().name,
            "WAGATE_MAX_BODY"
        );
        assert_eq!(
            cfg(&[("WAGATE_DEDUP_TTL", "soon")]).unwrap_err().name,
            "WAGATE_DEDUP_TTL"
        );
        for (name, value) in [
            ("WAGATE_GRAPH_URL", "ftp://x"),
            ("WAGATE_GRAPH_VERSION", "23"),
            ("WAGATE_PHONE_NUMBER_ID", "12a"),
            ("WAGATE_SEND_RATE", "0"),
            ("WAGATE_SEND_MAX_ATTEMPTS", "0"),
            ("WAGATE_SEND_BACKOFF_CAP", "1ms"),
            ("WAGATE_FORWARD_CONCURRENCY", "0"),
            ("WAGATE_FORWARD_CONCURRENCY", "65"),
        ] {
            assert_eq!(cfg(&[(name, value)]).unwrap_err().name, name);
        }
        let c = cfg(&[
            ("WHATSAPP_TOKEN", "tok"),
            ("WAGATE_GRAPH_URL", "http://127.0.0.1:9/"),
        ])
        .unwrap();
        assert_eq!(c.graph.url, "http://127.0.0.1:9");
        assert!(!format!("{c:?}").contains("tok\""));
        assert_eq!(
            cfg(&[("WAGATE_MEDIA_KEY_FILE", "/etc/wagate/")])
                .unwrap_err()
                .name,
            "WAGATE_MEDIA_KEY_FILE"
        );
        assert_eq!(
            cfg(&[("WAGATE_MEDIA_KEY_FILE", "/etc/wagate/media-keys")])
                .unwrap()
                .media_key_file,
            Some(PathBuf::from("/etc/wagate/media-keys"))
        );
        assert_eq!(parse_size("4MiB").unwrap(), 4 << 20);
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
    }
}
