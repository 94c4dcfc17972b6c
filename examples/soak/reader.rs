//! The soak's reader: logs in to the dashboard and reads its pages and the JSON API
//! in turn, at a paced rate, counting answers that are not `200`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::kit::{API_TOKEN, PASSWORD};

#[derive(Default)]
pub struct Reads {
    pub ok: AtomicU64,
    pub errors: AtomicU64,
}

/// Pages (session) and API paths (bearer), read in turn.
const PAGES: &[&str] = &[
    "/",
    "/dashboard/deliveries",
    "/dashboard/messages",
    "/dashboard/conversation?contact=16505550007",
    "/dashboard/statuses",
    "/dashboard/media",
    "/dashboard/forward",
];
const API: &[&str] = &[
    "/api/stats",
    "/api/messages?limit=50",
    "/api/deliveries?limit=50",
    "/api/outbox?limit=20",
    "/api/forward/targets",
    "/metrics",
];

async fn login(client: &reqwest::Client, base: &str) -> Option<String> {
    let resp = client
        .post(format!("{base}/login"))
        .form(&[("password", PASSWORD)])
        .send()
        .await
        .ok()?;
    let cookie = resp.headers().get("set-cookie")?.to_str().ok()?;
    Some(cookie.split(';').next()?.to_string())
}

pub fn spawn(base: &str, rate: f64, reads: Arc<Reads>, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    let base = base.to_string();
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let mut cookie = None;
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for i in 0usize.. {
            ticker.tick().await;
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if cookie.is_none() {
                cookie = login(&client, &base).await;
            }
            let req = if i % 2 == 0 {
                let page = PAGES[(i / 2) % PAGES.len()];
                client
                    .get(format!("{base}{page}"))
                    .header("cookie", cookie.clone().unwrap_or_default())
            } else {
                let path = API[(i / 2) % API.len()];
                client.get(format!("{base}{path}")).bearer_auth(API_TOKEN)
            };
            let ok = match req.send().await {
                Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
                _ => false,
            };
            let counter = if ok { &reads.ok } else { &reads.errors };
            counter.fetch_add(1, Ordering::Relaxed);
            if !ok {
                cookie = None;
            }
        }
    })
}
