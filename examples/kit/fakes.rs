//! In-process fakes on 127.0.0.1:0, counting what wagate asks of them: Meta's Graph
//! API (sends, answered 200 with a fresh wamid; media lookups), Meta's media host
//! (raw HTTP/1.1: headers and half the file, a pause, the rest, so a kill can land
//! mid-download), and a forwarding target (checks `X-Hub-Signature-256`, counts
//! every item and every distinct body it gets).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use warp::Filter;

use super::bodies::{digest, item_keys, media_bytes};
use super::TARGET_SECRET;

/// What the fakes were asked, in total.
#[derive(Default)]
pub struct Counts {
    /// Send requests per text (the drivers' idempotency key is the text).
    pub sends: HashMap<String, u32>,
    pub lookups: u64,
    /// File downloads started, per media id and per wagate process (generation).
    pub downloads: HashMap<(String, u64), u32>,
    pub downloads_total: u64,
    /// Forwarded items (`m:<id>`, `s:<id>:<status>`) and distinct bodies.
    pub forwarded_items: HashMap<String, u32>,
    pub forwarded_bodies: HashMap<[u8; 32], u32>,
    pub forward_requests: u64,
    pub forward_unsigned: u64,
}

/// Longest random pause (ms) before each fake answers.
#[derive(Clone, Copy)]
pub struct Delays {
    pub send_ms: u64,
    pub media_ms: u64,
    pub target_ms: u64,
}

#[derive(Clone)]
pub struct Fakes {
    /// Graph API base URL (sends and media lookups).
    pub graph: String,
    /// Media host base URL (`/media/<id>`).
    pub media: String,
    /// Forwarding target URL.
    pub target: String,
    pub counts: Arc<Mutex<Counts>>,
    /// The wagate process downloads are attributed to (set by the driver).
    pub generation: Arc<AtomicU64>,
}

fn pause(max_ms: u64) -> Duration {
    Duration::from_millis(if max_ms == 0 {
        0
    } else {
        rand::thread_rng().gen_range(0..=max_ms)
    })
}

impl Fakes {
    pub async fn start(delays: Delays) -> Fakes {
        let counts: Arc<Mutex<Counts>> = Arc::default();
        let generation = Arc::new(AtomicU64::new(0));
        let media_l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let media = format!("http://{}", media_l.local_addr().expect("addr"));
        let graph = serve(graph_routes(counts.clone(), media.clone(), delays.send_ms)).await;
        let target = serve(target_route(counts.clone(), delays.target_ms)).await + "/hook";
        let (c, g) = (counts.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((conn, _)) = media_l.accept().await {
                let (c, g) = (c.clone(), g.clone());
                tokio::spawn(async move {
                    let _ = media_file(conn, c, g, delays.media_ms).await;
                });
            }
        });
        Fakes {
            graph,
            media,
            target,
            counts,
            generation,
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn serve<F>(route: F) -> String
where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(warp::serve(route).incoming(listener).run());
    url
}

fn graph_routes(
    counts: Arc<Mutex<Counts>>,
    media: String,
    send_ms: u64,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    use warp::Reply;
    let c = counts.clone();
    let n = Arc::new(AtomicU64::new(0));
    let send = warp::post()
        .and(warp::path!(String / String / "messages"))
        .and(warp::body::json())
        .then(move |_v: String, _phone: String, body: Value| {
            let (c, n) = (c.clone(), n.clone());
            async move {
                let key = body["text"]["body"].as_str().unwrap_or("").to_string();
                *c.lock().unwrap().sends.entry(key).or_default() += 1;
                tokio::time::sleep(pause(send_ms)).await;
                let wamid = format!("wamid.PROOFOUT{:09}", n.fetch_add(1, Ordering::Relaxed));
                warp::reply::json(&json!({"messaging_product": "whatsapp",
                    "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                    "messages": [{"id": wamid}]}))
                .into_response()
            }
        });
    let lookup =
        warp::get()
            .and(warp::path!(String / String))
            .map(move |_v: String, id: String| {
                counts.lock().unwrap().lookups += 1;
                let bytes = media_bytes(&id);
                warp::reply::json(&json!({"url": format!("{media}/media/{id}"),
                "mime_type": "image/jpeg", "sha256": hex::encode(Sha256::digest(&bytes)),
                "file_size": bytes.len(), "id": id, "messaging_product": "whatsapp"}))
                .into_response()
            });
    send.or(lookup).unify()
}

fn target_route(
    counts: Arc<Mutex<Counts>>,
    target_ms: u64,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    use warp::Reply;
    warp::post()
        .and(warp::header::optional::<String>("x-hub-signature-256"))
        .and(warp::body::bytes())
        .then(move |sig: Option<String>, body: bytes::Bytes| {
            let c = counts.clone();
            async move {
                let mut mac = Hmac::<Sha256>::new_from_slice(TARGET_SECRET.as_bytes()).unwrap();
                mac.update(&body);
                let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                {
                    let mut c = c.lock().unwrap();
                    c.forward_requests += 1;
                    if sig.as_deref() != Some(want.as_str()) {
                        c.forward_unsigned += 1;
                    }
                    *c.forwarded_bodies.entry(digest(&body)).or_default() += 1;
                    for k in item_keys(&body) {
                        *c.forwarded_items.entry(k).or_default() += 1;
                    }
                }
                tokio::time::sleep(pause(target_ms)).await;
                warp::reply::with_status("{}", warp::http::StatusCode::OK).into_response()
            }
        })
}

/// `GET /media/<id>`: headers and half the file, a pause, the rest.
async fn media_file(
    mut conn: TcpStream,
    counts: Arc<Mutex<Counts>>,
    generation: Arc<AtomicU64>,
    media_ms: u64,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).await?;
        if n == 0 || head.len() > 16 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let path = text.split(' ').nth(1).unwrap_or("");
    let Some(id) = path.strip_prefix("/media/") else {
        return conn
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
    };
    let id = id.split('?').next().unwrap_or("").to_string();
    let file = media_bytes(&id);
    {
        let mut c = counts.lock().unwrap();
        c.downloads_total += 1;
        *c.downloads
            .entry((id, generation.load(Ordering::SeqCst)))
            .or_default() += 1;
    }
    let head = format!("HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", file.len());
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(&file[..file.len() / 2]).await?;
    tokio::time::sleep(pause(media_ms)).await;
    conn.write_all(&file[file.len() / 2..]).await?;
    conn.shutdown().await
}
