//! wagate read back over its API with the bearer token: stats, waiting for
//! processing to catch up, every accepted delivery's raw bytes, outbox entries and
//! media.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::Value;

use super::bodies::{digest, item_keys, media_ids};
use super::{poll, Res, API_TOKEN};

#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
}

/// What the store holds, read through `/api/deliveries`.
#[derive(Default)]
pub struct Stored {
    /// Accepted deliveries by the SHA-256 of their raw bytes.
    pub bodies: HashMap<[u8; 32], u32>,
    pub deliveries: u64,
    /// Distinct items (`m:<id>`, `s:<id>:<status>`) and media ids in them.
    pub items: HashSet<String>,
    pub media: HashSet<String>,
}

impl Api {
    pub fn new(base: &str) -> Api {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Api {
            client,
            base: base.to_string(),
        }
    }

    pub async fn get(&self, path: &str) -> Res<reqwest::Response> {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))
    }

    pub async fn get_json(&self, path: &str) -> Res<Value> {
        let resp = self.get(path).await?;
        let status = resp.status();
        let v: Value = resp.json().await.map_err(|e| format!("GET {path}: {e}"))?;
        if status != 200 {
            return Err(format!("GET {path}: {status} {v}"));
        }
        Ok(v)
    }

    pub async fn stats(&self) -> Res<Value> {
        self.get_json("/api/stats").await
    }

    /// Waits until everything journaled is applied; the stats then.
    pub async fn caught_up(&self, limit: Duration) -> Res<Value> {
        poll("processing to catch up", limit, || async {
            let s = self.stats().await?;
            if s["applied"] == s["journal_head"] {
                Ok(s)
            } else {
                Err(format!("applied {} of {}", s["applied"], s["journal_head"]))
            }
        })
        .await
    }

    /// Every accepted delivery's id, through the paged list.
    pub async fn accepted_ids(&self) -> Res<Vec<u64>> {
        let mut ids = Vec::new();
        let mut before = String::new();
        loop {
            let page = self
                .get_json(&format!(
                    "/api/deliveries?verdict=accepted&limit=500{before}"
                ))
                .await?;
            for d in page["deliveries"].as_array().into_iter().flatten() {
                ids.push(d["id"].as_u64().ok_or("delivery without id")?);
            }
            match page["next_before"].as_u64() {
                Some(b) => before = format!("&before={b}"),
                None => return Ok(ids),
            }
        }
    }

    /// The raw bytes of every accepted delivery (8 requests at a time), digested.
    pub async fn stored(&self) -> Res<Stored> {
        let ids = self.accepted_ids().await?;
        let mut tasks = Vec::new();
        for part in ids.chunks(ids.len().div_ceil(8).max(1)) {
            let (api, part) = (self.clone(), part.to_vec());
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::with_capacity(part.len());
                for id in part {
                    let resp = api.get(&format!("/api/deliveries/{id}/raw")).await?;
                    if resp.status() != 200 {
                        return Err(format!("delivery {id}: {}", resp.status()));
                    }
                    out.push(resp.bytes().await.map_err(|e| e.to_string())?);
                }
                Ok::<_, String>(out)
            }));
        }
        let mut s = Stored {
            deliveries: ids.len() as u64,
            ..Stored::default()
        };
        for t in tasks {
            for raw in t.await.map_err(|e| e.to_string())?? {
                *s.bodies.entry(digest(&raw)).or_default() += 1;
                s.items.extend(item_keys(&raw));
                s.media.extend(media_ids(&raw));
            }
        }
        Ok(s)
    }

    /// `POST /api/messages` with an idempotency key: the status and the answer.
    pub async fn send(&self, body: &Value, key: &str) -> Res<(u16, Value)> {
        let resp = self
            .client
            .post(format!("{}/api/messages", self.base))
            .bearer_auth(API_TOKEN)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or_default()))
    }
}
