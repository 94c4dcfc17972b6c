//! A scripted forwarding target on 127.0.0.1:0: answers from a rule on the body,
//! else from a script (then 200),
//! checks every request's signature on its own (Meta's `X-Hub-Signature-256`, or
//! Standard Webhooks' `webhook-signature`) and records what it got.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Notify;
use warp::{Filter, Reply};

use super::DEADLINE;

#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub delay: Duration,
    /// Answered only once one of the request's message ids is released.
    pub held: bool,
    /// The answer's body (`{}` unless set).
    pub body: String,
}

impl Answer {
    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            retry_after: None,
            delay: Duration::ZERO,
            held: false,
            body: "{}".into(),
        }
    }
    /// Keeps the request in flight until the test calls [`FakeTarget::release`]
    /// with one of its message ids.
    pub fn held(mut self) -> Answer {
        self.held = true;
        self
    }
    pub fn body(mut self, b: &str) -> Answer {
        self.body = b.into();
        self
    }
    pub fn retry_after(mut self, v: &str) -> Answer {
        self.retry_after = Some(v.into());
        self
    }
    pub fn delayed(mut self, d: Duration) -> Answer {
        self.delay = d;
        self
    }
}

#[derive(Debug, Clone)]
pub struct Got {
    pub at: Instant,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
    pub status: u16,
    /// The signature matched the target's secret.
    pub signed: bool,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
    /// Message ids in a Meta-shaped body.
    pub fn message_ids(&self) -> Vec<String> {
        message_ids(&self.body)
    }
}

fn message_ids(body: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let mut out = Vec::new();
    for e in v["entry"].as_array().into_iter().flatten() {
        for c in e["changes"].as_array().into_iter().flatten() {
            for m in c["value"]["messages"].as_array().into_iter().flatten() {
                out.push(m["id"].as_str().unwrap_or("").to_string());
            }
        }
    }
    out
}

/// Picks the answer to a body (`None`: the script's).
type Rule = Arc<dyn Fn(&[u8]) -> Option<Answer> + Send + Sync>;

#[derive(Default)]
struct State {
    rule: Option<Rule>,
    script: VecDeque<Answer>,
    /// Answered when the script is empty (200 unless set).
    fallback: Option<Answer>,
    got: Vec<Got>,
    /// Message ids whose held requests may be answered.
    released: HashSet<String>,
}

#[derive(Clone)]
pub struct FakeTarget {
    pub url: String,
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
    release: Arc<Notify>,
}

/// Waits until one of `ids` is released.
async fn until_released(state: &Mutex<State>, release: &Notify, ids: &[String]) {
    loop {
        let released = release.notified();
        if ids
            .iter()
            .any(|id| state.lock().unwrap().released.contains(id))
        {
            return;
        }
        released.await;
    }
}

/// The key as wagate derives it: `whsec_<base64>` decoded, else the bytes.
fn key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn verify(secret: &str, headers: &http::HeaderMap, body: &[u8]) -> bool {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let key = key(secret);
    if let Some(sig) = h("x-hub-signature-256") {
        return sig == format!("sha256={}", hex::encode(mac(&key, &[body])));
    }
    let (Some(id), Some(ts), Some(sig)) = (
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
    ) else {
        return false;
    };
    let ts_ok = ts
        .parse::<i64>()
        .is_ok_and(|t| (t - wagate::util::clock::now_micros() / 1_000_000).abs() < 300);
    let expected = base64::engine::general_purpose::STANDARD
        .encode(mac(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]));
    ts_ok && sig.split(' ').any(|s| s == format!("v1,{expected}"))
}

impl FakeTarget {
    pub async fn start(secret: &str) -> FakeTarget {
        let state: Arc<Mutex<State>> = Arc::default();
        let notify = Arc::new(Notify::new());
        let release = Arc::new(Notify::new());
        let (st, no, rel) = (state.clone(), notify.clone(), release.clone());
        let secret = secret.to_string();
        let route = warp::post()
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .then(move |headers: http::HeaderMap, body: bytes::Bytes| {
                let (st, no, rel) = (st.clone(), no.clone(), rel.clone());
                let secret = secret.clone();
                async move {
                    let answer = {
                        let mut s = st.lock().unwrap();
                        let ruled = s.rule.as_ref().and_then(|r| r(&body));
                        let a = ruled.or_else(|| s.script.pop_front()).unwrap_or_else(|| {
                            s.fallback.clone().unwrap_or_else(|| Answer::status(200))
                        });
                        let signed = verify(&secret, &headers, &body);
                        s.got.push(Got {
                            at: Instant::now(),
                            headers,
                            body: body.to_vec(),
                            status: a.status,
                            signed,
                        });
                        a
                    };
                    no.notify_waiters();
                    if answer.held {
                        until_released(&st, &rel, &message_ids(&body)).await;
                    }
                    tokio::time::sleep(answer.delay).await;
                    let code = warp::http::StatusCode::from_u16(answer.status).unwrap();
                    let mut resp =
                        warp::reply::with_status(answer.body.clone(), code).into_response();
                    if let Some(r) = &answer.retry_after {
                        resp.headers_mut().insert("retry-after", r.parse().unwrap());
                    }
                    resp
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(warp::serve(route).incoming(listener).run());
        FakeTarget {
            url,
            state,
            notify,
            release,
        }
    }

    /// Lets the held request carrying message `id` be answered.
    pub fn release(&self, id: &str) {
        self.state.lock().unwrap().released.insert(id.to_string());
        self.release.notify_waiters();
    }

    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().script.extend(answers);
    }

    /// Answers `answer` to every body containing `needle` (`None`: no such rule).
    pub fn answer_bodies_with(&self, rule: Option<(&str, Answer)>) {
        self.state.lock().unwrap().rule = rule.map(|(needle, answer)| {
            let needle = needle.as_bytes().to_vec();
            Arc::new(move |body: &[u8]| {
                body.windows(needle.len())
                    .any(|w| w == needle)
                    .then(|| answer.clone())
            }) as Rule
        });
    }

    /// What to answer once the script is used up.
    pub fn fallback(&self, a: Option<Answer>) {
        self.state.lock().unwrap().fallback = a;
    }

    pub fn got(&self) -> Vec<Got> {
        self.state.lock().unwrap().got.clone()
    }

    /// Waits (on a notification, `DEADLINE` at most) until `n` requests arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Got> {
        self.wait_until(&format!("{n} requests"), |got| got.len() >= n)
            .await
    }

    /// Waits (on a notification, `DEADLINE` at most) until what arrived satisfies `ok`.
    pub async fn wait_until(&self, what: &str, ok: impl Fn(&[Got]) -> bool) -> Vec<Got> {
        let wait = async {
            loop {
                let notified = self.notify.notified();
                let got = self.got();
                if ok(&got) {
                    return got;
                }
                notified.await;
            }
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the target did not get {what} in {DEADLINE:?} (got {})",
                    self.got().len()
                )
            })
    }
}
