//! Settings: the configuration in force (secrets shown only as set or not),
//! retention periods, media key ids, and disk use of the data directory.

use askama::Template;

use super::page::{self, Chrome};
use super::{render, Ctx, Response};
use crate::config::Secret;

#[derive(Template)]
#[template(path = "dash/settings.html")]
struct Settings {
    chrome: Chrome,
    /// The ACME certificate's status rows, when ACME runs.
    certificate: Option<Vec<(&'static str, String)>>,
    config: Vec<(&'static str, String)>,
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

fn dur(d: std::time::Duration) -> String {
    humantime::format_duration(d).to_string()
}

pub async fn page(ctx: Ctx) -> Response {
    let state = &ctx.req.state;
    let c = &state.config;
    let config = vec![
        ("WAGATE_LISTEN", c.listen.to_string()),
        ("WAGATE_DATA_DIR", c.data_dir.display().to_string()),
        (
            "META_APP_SECRET",
            format!("{} secret(s) configured (hidden)", c.app_secrets.len()),
        ),
        ("WHATSAPP_VERIFY_TOKEN", secret(&c.verify_token)),
        (
            "WAGATE_API_TOKEN",
            if c.api_token.is_some() {
                "set (hidden)".into()
            } else {
                format!("generated in {}", c.data_dir.join("api-token").display())
            },
        ),
        ("WAGATE_METRICS_TOKEN", secret(&c.metrics_token)),
        (
            "WAGATE_ADMIN_PASSWORD",
            if c.admin_password.is_some() {
                "set (hidden)".into()
            } else {
                format!(
                    "generated in {}",
                    c.data_dir.join("admin-password").display()
                )
            },
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
        ("WAGATE_TRUSTED_PROXIES", format!("{:?}", c.trusted_proxies)),
        ("WAGATE_MAX_BODY", page::size(c.max_body as u64)),
        ("WAGATE_SEGMENT_SIZE", page::size(c.segment_size)),
        ("WAGATE_MIN_FREE", page::size(c.min_free)),
        ("WHATSAPP_TOKEN", secret(&c.graph.token)),
        (
            "WAGATE_PHONE_NUMBER_ID",
            c.graph.phone_number_id.clone().unwrap_or("not set".into()),
        ),
        ("WAGATE_GRAPH_URL", c.graph.url.clone()),
        ("WAGATE_GRAPH_VERSION", c.graph.version.clone()),
        ("WAGATE_GRAPH_TIMEOUT", dur(c.graph.timeout)),
        ("WAGATE_SEND_RATE", format!("{}/s", c.send.rate)),
        ("WAGATE_SEND_MAX_ATTEMPTS", c.send.max_attempts.to_string()),
        ("WAGATE_SEND_MAX_AGE", dur(c.send.max_age)),
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
        ("dashboard session idle timeout", dur(c.dashboard_idle)),
    ];
    let retention = vec![
        ("WAGATE_RAW_TTL (raw deliveries)", dur(c.raw_ttl)),
        (
            "WAGATE_EVENT_TTL (messages, statuses, events)",
            dur(c.event_ttl),
        ),
        ("WAGATE_DEDUP_TTL (dedup keys)", dur(c.dedup_ttl)),
        ("WAGATE_MEDIA_TTL (media files)", dur(c.media.ttl)),
        (
            "WAGATE_QUARANTINE_MAX (rejected deliveries)",
            page::size(c.quarantine_max),
        ),
    ];
    let keys = state.media.keys().current();
    let dir = c.data_dir.clone();
    let (usage, free) = tokio::task::spawn_blocking(move || {
        let usage = ["journal", "quarantine", "state", "media"]
            .map(|d| (d, crate::web::metrics::dir_bytes(&dir.join(d))));
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
    let when = |t: i64| crate::util::time::rfc3339(t.saturating_mul(1_000_000));
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
