//! Mixed load at a paced rate, and a ledger of what wagate acknowledged: webhook
//! workers (text messages, image messages, statuses, and Meta's retries of bodies
//! already acknowledged) and a sender (`POST /api/messages` with an idempotency key;
//! a send not answered `202` is tried again later with the same key).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::api::Api;
use super::bodies::{self, contact, digest, sign};

/// What a webhook worker posts, in percent (the rest: text messages).
#[derive(Clone, Copy)]
pub struct Mix {
    pub media_pct: u32,
    pub status_pct: u32,
    /// A body acknowledged earlier, posted again byte for byte.
    pub repost_pct: u32,
    /// Messages per text delivery: 1 to this.
    pub max_items: usize,
    /// Text padding per message, bytes.
    pub pad: usize,
    pub contacts: u64,
}

/// What wagate acknowledged.
#[derive(Default)]
pub struct Ledger {
    /// `200`s by the digest of the body (a body posted again counts again).
    pub acked: HashMap<[u8; 32], u32>,
    pub acked_total: u64,
    /// Message ids of acknowledged bodies (a sample is looked up at the end).
    pub acked_messages: Vec<String>,
    /// Recent acknowledged bodies, to post again.
    pub pool: VecDeque<Vec<u8>>,
    pub non_200: u64,
    pub errors: u64,
    /// Idempotency key -> the outbox id a `202` gave it.
    pub sends: HashMap<String, u64>,
    /// Keys posted but not answered `202` yet.
    pub pending_sends: Vec<String>,
    /// A key answered with two different ids.
    pub idempotency_broken: Vec<String>,
    pub send_non_202: u64,
}

pub type Shared = Arc<Mutex<Ledger>>;

static NEXT: AtomicU64 = AtomicU64::new(0);

fn next() -> u64 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Ledger {
    fn ack(&mut self, body: &[u8]) {
        *self.acked.entry(digest(body)).or_default() += 1;
        self.acked_total += 1;
        for k in bodies::item_keys(body) {
            if let Some(id) = k.strip_prefix("m:") {
                if self.acked_messages.len() < 100_000 {
                    self.acked_messages.push(id.to_string());
                }
            }
        }
        if self.pool.len() >= 256 {
            self.pool.pop_front();
        }
        self.pool.push_back(body.to_vec());
    }
}

/// The next body for a worker.
fn body(rng: &mut impl Rng, mix: &Mix, tag: &str, media_host: &str, ledger: &Shared) -> Vec<u8> {
    let roll = rng.gen_range(0..100);
    let from = contact(rng.gen_range(0..mix.contacts.max(1)));
    if roll < mix.repost_pct {
        let l = ledger.lock().unwrap();
        if !l.pool.is_empty() {
            return l.pool[rng.gen_range(0..l.pool.len())].clone();
        }
    }
    let n = next();
    if roll < mix.repost_pct + mix.media_pct {
        let media_id = format!("9{:015}", n);
        return bodies::image(
            &from,
            &format!("wamid.PROOF{tag}I{n}"),
            &media_id,
            media_host,
        );
    }
    if roll < mix.repost_pct + mix.media_pct + mix.status_pct {
        return bodies::status(&format!("wamid.PROOF{tag}S{n}"), &from);
    }
    let k = rng.gen_range(1..=mix.max_items.max(1));
    let ids: Vec<String> = (0..k)
        .map(|j| format!("wamid.PROOF{tag}T{n}x{j}"))
        .collect();
    bodies::texts(&from, &ids, mix.pad)
}

/// Sleeps until the next tick of a paced loop (`interval` apart; a loop that fell
/// more than a second behind starts again from now instead of bursting).
async fn pace(next: &mut Instant, interval: Duration) {
    *next += interval;
    let now = Instant::now();
    if *next + Duration::from_secs(1) < now {
        *next = now;
    }
    tokio::time::sleep_until(*next).await;
}

/// Webhook workers posting `rate` bodies per second in all until `stop`; with
/// `quit_on_error` a worker ends at its first connection error (the server is gone).
#[allow(clippy::too_many_arguments)]
pub fn webhooks(
    base: &str,
    rate: f64,
    workers: usize,
    mix: Mix,
    tag: &str,
    media_host: &str,
    ledger: &Shared,
    stop: &Arc<AtomicBool>,
    quit_on_error: bool,
    seed: u64,
) -> Vec<JoinHandle<()>> {
    let interval = Duration::from_secs_f64(workers as f64 / rate.max(0.001));
    (0..workers)
        .map(|w| {
            let url = format!("{base}/webhook");
            let (tag, host) = (tag.to_string(), media_host.to_string());
            let (ledger, stop) = (ledger.clone(), stop.clone());
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (w as u64) << 32);
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .expect("client");
                let mut tick = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    pace(&mut tick, interval).await;
                    let b = body(&mut rng, &mix, &tag, &host, &ledger);
                    let resp = client
                        .post(&url)
                        .header("x-hub-signature-256", sign(&b))
                        .header("content-type", "application/json")
                        .body(b.clone())
                        .send()
                        .await;
                    let mut l = ledger.lock().unwrap();
                    match resp {
                        Ok(r) if r.status() == 200 => l.ack(&b),
                        Ok(_) => l.non_200 += 1,
                        Err(_) if quit_on_error => return,
                        Err(_) => l.errors += 1,
                    }
                }
            })
        })
        .collect()
}

/// Posts `rate` sends per second until `stop`: first the keys still pending from
/// earlier, then new ones.
pub fn sends(
    api: &Api,
    rate: f64,
    tag: &str,
    ledger: &Shared,
    stop: &Arc<AtomicBool>,
    quit_on_error: bool,
) -> JoinHandle<()> {
    let (api, tag, ledger, stop) = (api.clone(), tag.to_string(), ledger.clone(), stop.clone());
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    tokio::spawn(async move {
        let mut tick = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            pace(&mut tick, interval).await;
            let key = ledger.lock().unwrap().pending_sends.pop();
            let key = key.unwrap_or_else(|| format!("proof-{tag}-send-{}", next()));
            if !send_one(&api, &key, &ledger).await && quit_on_error {
                return;
            }
        }
    })
}

/// One send; false if the server could not be reached.
pub async fn send_one(api: &Api, key: &str, ledger: &Shared) -> bool {
    let n: u64 = key.bytes().map(u64::from).sum();
    let answer = api.send(&bodies::send(&contact(n), key), key).await;
    let mut l = ledger.lock().unwrap();
    match answer {
        Ok((202, v)) => {
            let id = v["id"].as_u64().unwrap_or(0);
            if let Some(old) = l.sends.insert(key.to_string(), id) {
                if old != id {
                    l.idempotency_broken.push(format!("{key}: {old} then {id}"));
                }
            }
            true
        }
        Ok(_) => {
            l.send_non_202 += 1;
            l.pending_sends.push(key.to_string());
            true
        }
        Err(_) => {
            l.pending_sends.push(key.to_string());
            false
        }
    }
}
