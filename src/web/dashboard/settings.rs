//! Settings: the configuration in force (secrets shown only as set or not),
//! retention periods, media key ids, and disk use of the data directory.

use askama::Template;

use super::page::{self, Chrome};
use super::{render, Ctx, Response};
use crate::config::{format_duration, format_size, Config, Secret};
use crate::util::cidr::Cidr;

#[derive(Template)]
#[template(path = "dash/settings.html")]
struct Settings {
    chrome: Chrome,
    /// The ACME certificate's status rows, when ACME runs.
    certificate: Option<Vec<(&'static str, String)>>,
    config: Vec<(&'static str, String)>,
    memory: Vec<(&'static str, String)>,
    retention: Vec<(&'static str, String)>,
    keys: Vec<String>,
    primary_key: String,
    key_file: String,
    usage: Vec<(&'static str, String)>,
    free: String,
    low: bool,
}

fn secret(s: &Option<Secret>) -> String {
    match s {
        Some(_) => "set (hidden)".into(),
        None => "not set".into(),
    }
}

/// The configuration rows, durations and sizes written as in the environment.
fn config_rows(c: &Config) -> Vec<(&'static str, String)> {
    vec![
        ("WAGATE_LISTEN", c.listen.to_string()),
        ("WAGATE_DATA_DIR", c.data_dir.display().to_string()),
        (
            "META_APP_SECRET",
            format!("{} secret(s) configured (hidden)", c.app_secrets.len()),
        ),
        ("WHATSAPP_VERIFY_TOKEN", secret(&c.verify_token)),
        (
            "WAGATE_API_TOKEN",
            generated_or_set(c, &c.api_token, "api-token"),
        ),
        ("WAGATE_METRICS_TOKEN", secret(&c.metrics_token)),
        (
            "WAGATE_ADMIN_PASSWORD",
            generated_or_set(c, &c.admin_password, "admin-password"),
        ),
        (
            "WAGATE_TLS_CERT / KEY",
            c.tls
                .as_ref()
                .map(|(a, b)| format!("{} / {}", a.display(), b.display()))
                .unwrap_or("plain HTTP".into()),
        ),
        (
            "WAGATE_ACME_DOMAIN",
            c.acme
                .as_ref()
                .map(|a| format!("{} (CA {})", a.domains.join(", "), a.directory))
                .unwrap_or("not set".into()),
        ),
        ("WAGATE_TRUSTED_PROXIES", proxies(&c.trusted_proxies)),
        ("WAGATE_MAX_BODY", format_size(c.max_body as u64)),
        ("WAGATE_SEGMENT_SIZE", format_size(c.segment_size)),
        ("WAGATE_MIN_FREE", format_size(c.min_free)),
        ("WHATSAPP_TOKEN", secret(&c.graph.token)),
        (
            "WAGATE_PHONE_NUMBER_ID",
            c.graph.phone_number_id.clone().unwrap_or("not set".into()),
        ),
        ("WAGATE_GRAPH_URL", c.graph.url.clone()),
        ("WAGATE_GRAPH_VERSION", c.graph.version.clone()),
        ("WAGATE_GRAPH_TIMEOUT", format_duration(c.graph.timeout)),
        ("WAGATE_SEND_RATE", format!("{}/s", c.send.rate)),
        ("WAGATE_SEND_MAX_ATTEMPTS", c.send.max_attempts.to_string()),
        ("WAGATE_SEND_MAX_AGE", format_duration(c.send.max_age)),
        ("WAGATE_MEDIA_HOSTS", c.media.hosts.join(", ")),
        ("WAGATE_MEDIA_CONCURRENCY", c.media.concurrency.to_string()),
        (
            "WAGATE_CLAMD",
            c.media
                .clamd
                .as_ref()
                .map(|a| a.to_string())
                .unwrap_or("not set (media is not scanned)".into()),
        ),
        (
            "dashboard session idle timeout",
            format_duration(c.dashboard_idle),
        ),
    ]
}

/// `WAGATE_MEMORY`, what it sizes, and what the process takes now.
fn memory_rows(
    c: &Config,
    resident: Option<crate::util::memory::Resident>,
) -> Vec<(&'static str, String)> {
    let mut rows = vec![("WAGATE_MEMORY (budget)", format_size(c.memory.total))];
    rows.extend(c.memory.split());
    rows.push((
        "resident now / peak",
        resident.map_or("unknown".into(), |r| {
            format!("{} / {}", page::size(r.now), page::size(r.peak))
        }),
    ));
    rows
}

fn retention_rows(c: &Config) -> Vec<(&'static str, String)> {
    vec![
        (
            "WAGATE_RAW_TTL (raw deliveries)",
            format_duration(c.raw_ttl),
        ),
        (
            "WAGATE_EVENT_TTL (messages, statuses, events)",
            format_duration(c.event_ttl),
        ),
        (
            "WAGATE_DEDUP_TTL (dedup keys)",
            format_duration(c.dedup_ttl),
        ),
        (
            "WAGATE_MEDIA_TTL (media files)",
            format_duration(c.media.ttl),
        ),
        (
            "WAGATE_QUARANTINE_MAX (rejected deliveries)",
            format_size(c.quarantine_max),
        ),
        (
            "WAGATE_FORWARD_MAX_AGE (forwarding queues)",
            format_duration(c.forward.max_age),
        ),
    ]
}

/// A secret wagate generates when it is not set: where the generated one is kept.
fn generated_or_set(c: &Config, value: &Option<Secret>, file: &str) -> String {
    match value {
        Some(_) => "set (hidden)".into(),
        None => format!("generated in {}", c.data_dir.join(file).display()),
    }
}

fn proxies(ranges: &[Cidr]) -> String {
    if ranges.is_empty() {
        return "not set".into();
    }
    let ranges: Vec<String> = ranges.iter().map(Cidr::to_string).collect();
    ranges.join(", ")
}

pub async fn page(ctx: Ctx) -> Response {
    let state = &ctx.req.state;
    let c = &state.config;
    let (config, retention) = (config_rows(c), retention_rows(c));
    let keys = state.media.keys().current();
    let (dir, state_dir) = (c.data_dir.clone(), state.store.dir());
    let (usage, free) = tokio::task::spawn_blocking(move || {
        // The state in use (after an erasure, `state.g…`).
        let usage = ["journal", "quarantine", "state", "media"].map(|d| {
            let path = if d == "state" {
                state_dir.clone()
            } else {
                dir.join(d)
            };
            (d, crate::web::metrics::dir_bytes(&path))
        });
        (usage, crate::util::disk::free_bytes(&dir).ok())
    })
    .await
    .unwrap_or((
        [
            ("journal", 0),
            ("quarantine", 0),
            ("state", 0),
            ("media", 0),
        ],
        None,
    ));
    let certificate = state.acme.get().map(|rx| acme_rows(&rx.borrow()));
    let view = Settings {
        certificate,
        chrome: Chrome::new(&ctx, "settings").await,
        config,
        memory: memory_rows(c, crate::util::memory::resident()),
        retention,
        keys: keys.ids().map(str::to_string).collect(),
        primary_key: keys.primary().id().to_string(),
        key_file: state.media.keys().path().display().to_string(),
        usage: usage.iter().map(|(d, n)| (*d, page::size(*n))).collect(),
        low: free.is_some_and(|f| f < c.min_free),
        free: free.map(page::size).unwrap_or("unknown".into()),
    };
    render(&view)
}

fn acme_rows(s: &crate::acme::AcmeStatus) -> Vec<(&'static str, String)> {
    let when = |t: i64| crate::util::time::rfc3339(crate::util::time::secs_to_micros(t));
    let mut rows = Vec::new();
    match &s.certificate {
        Some(c) => {
            rows.push(("names", c.names.join(", ")));
            rows.push(("issuer", c.issuer.clone()));
            rows.push(("valid until", when(c.not_after)));
        }
        None => rows.push(("certificate", "none yet (ordering)".into())),
    }
    if let Some(at) = s.next_order_at {
        rows.push(("next order", when(at)));
    }
    rows.push((
        "orders / issued since start",
        format!("{} / {}", s.orders, s.issued),
    ));
    if s.failures > 0 {
        rows.push((
            "failed orders in a row",
            format!(
                "{}: {}",
                s.failures,
                s.last_error.clone().unwrap_or_default()
            ),
        ));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn row<'a>(rows: &'a [(&'static str, String)], name: &str) -> &'a str {
        &rows.iter().find(|(n, _)| n.starts_with(name)).unwrap().1
    }

    #[test]
    fn values_show_as_they_are_written() {
        let mut c = Config::new("/srv/wagate");
        c.raw_ttl = Duration::from_secs(3650 * 86400);
        c.dedup_ttl = Duration::from_secs(90 * 60);
        c.graph.timeout = Duration::from_millis(1500);
        c.max_body = 512 << 10;
        c.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()];
        let (config, retention) = (config_rows(&c), retention_rows(&c));
        assert_eq!(row(&retention, "WAGATE_RAW_TTL"), "3650d");
        assert_eq!(row(&retention, "WAGATE_EVENT_TTL"), "30d");
        assert_eq!(row(&retention, "WAGATE_DEDUP_TTL"), "90m");
        assert_eq!(row(&retention, "WAGATE_QUARANTINE_MAX"), "256MiB");
        assert_eq!(row(&config, "WAGATE_GRAPH_TIMEOUT"), "1500ms");
        assert_eq!(row(&config, "WAGATE_MAX_BODY"), "512KiB");
        assert_eq!(row(&config, "WAGATE_MIN_FREE"), "512MiB");
        assert_eq!(row(&config, "dashboard session"), "30m");
        assert_eq!(
            row(&config, "WAGATE_TRUSTED_PROXIES"),
            "10.0.0.0/8, ::1/128"
        );
        assert_eq!(
            row(&config, "WAGATE_API_TOKEN"),
            "generated in /srv/wagate/api-token"
        );
    }

    #[test]
    fn the_memory_budget_and_its_split() {
        let mut c = Config::new("/srv/wagate");
        c.memory.total = 512 << 20;
        let rows = memory_rows(&c, None);
        assert_eq!(row(&rows, "WAGATE_MEMORY"), "512MiB");
        assert_eq!(row(&rows, "store cache"), "16MiB");
        assert_eq!(row(&rows, "dedup filter"), "699050 keys (about 16 MiB)");
        assert_eq!(row(&rows, "resident"), "unknown");
    }
}
