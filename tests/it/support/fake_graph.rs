//! A fake Graph API on 127.0.0.1:0: answers `POST /{version}/{phone}/messages` from a
//! script (then 200 with a fresh wamid, shaped like Meta's send response), and
//! records every request it receives with its arrival and answer times.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Notify;
use warp::Filter;

use super::{data_path, DEADLINE};

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
    /// Wait this long before answering (a hang when longer than wagate's timeout).
    pub delay: Duration,
    /// For 200: the wamid to answer with.
    pub wamid: Option<String>,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply {
            status: 200,
            body: Value::Null,
            retry_after: None,
            delay: Duration::ZERO,
            wamid: None,
        }
    }
    pub fn ok_wamid(w: &str) -> Reply {
        Reply {
            wamid: Some(w.into()),
            ..Reply::ok()
        }
    }
    /// An error body from the conformance corpus (`tests/data/graph/errors/<file>`).
    pub fn error(status: u16, file: &str) -> Reply {
        let body = std::fs::read(data_path(&format!("graph/errors/{file}"))).expect("error body");
        Reply {
            status,
            body: serde_json::from_slice(&body).expect("JSON"),
            ..Reply::ok()
        }
    }
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            body: json!({}),
            ..Reply::ok()
        }
    }
    pub fn retry_after(mut self, v: &str) -> Reply {
        self.retry_after = Some(v.into());
        self
    }
    pub fn delayed(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
}

#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub answered: Option<Instant>,
    pub path: String,
    pub authorization: Option<String>,
    pub user_agent: Option<String>,
    pub body: Value,
    pub status: u16,
}

impl Received {
    pub fn to(&self) -> &str {
        self.body["to"].as_str().unwrap_or("")
    }
    pub fn text(&self) -> &str {
        self.body["text"]["body"].as_str().unwrap_or("")
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    default_delay: Duration,
    received: Vec<Received>,
    n: u64,
}

#[derive(Clone)]
pub struct FakeGraph {
    pub url: String,
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
}

impl FakeGraph {
    pub async fn start() -> FakeGraph {
        let state: Arc<Mutex<State>> = Arc::default();
        let notify = Arc::new(Notify::new());
        let (st, no) = (state.clone(), notify.clone());
        let route = warp::post()
            .and(warp::path::full())
            .and(warp::header::optional::<String>("authorization"))
            .and(warp::header::optional::<String>("user-agent"))
            .and(warp::body::json())
            .then(move |path: warp::path::FullPath, auth, ua, body: Value| {
                let (st, no) = (st.clone(), no.clone());
                async move { answer(st, no, path.as_str().to_string(), auth, ua, body).await }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(warp::serve(route).incoming(listener).run());
        FakeGraph { url, state, notify }
    }

    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    pub fn set_default_delay(&self, d: Duration) {
        self.state.lock().unwrap().default_delay = d;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Waits (on a notification, `DEADLINE` at most) until `n` requests have been answered
    /// or at least received when `answered` is false.
    pub async fn wait_for(&self, n: usize, answered: bool) -> Vec<Received> {
        let wait = async {
            loop {
                let notified = self.notify.notified();
                let r = self.received();
                if r.iter()
                    .filter(|x| !answered || x.answered.is_some())
                    .count()
                    >= n
                {
                    return r;
                }
                notified.await;
            }
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .unwrap_or_else(|_| panic!("fake Graph: {n} requests in {DEADLINE:?}"))
    }
}

async fn answer(
    st: Arc<Mutex<State>>,
    notify: Arc<Notify>,
    path: String,
    authorization: Option<String>,
    user_agent: Option<String>,
    body: Value,
) -> warp::reply::Response {
    use warp::Reply as _;
    let (reply, index, n) = {
        let mut s = st.lock().unwrap();
        s.n += 1;
        let reply = s
            .script
            .pop_front()
            .unwrap_or_else(|| Reply::ok().delayed(s.default_delay));
        s.received.push(Received {
            at: Instant::now(),
            answered: None,
            path,
            authorization,
            user_agent,
            body: body.clone(),
            status: reply.status,
        });
        (reply, s.received.len() - 1, s.n)
    };
    notify.notify_waiters();
    tokio::time::sleep(reply.delay).await;
    let out = if reply.status == 200 {
        // Shaped like send_message_response_text.json.
        let wamid = reply
            .wamid
            .clone()
            .unwrap_or_else(|| format!("wamid.FAKE{n:06}"));
        json!({"messaging_product": "whatsapp",
            "contacts": [{"input": body["to"], "wa_id": body["to"].as_str().map(|t| t.trim_start_matches('+'))}],
            "messages": [{"id": wamid}]})
    } else {
        reply.body.clone()
    };
    let code = http::StatusCode::from_u16(reply.status).unwrap();
    let mut resp = warp::reply::with_status(warp::reply::json(&out), code).into_response();
    if let Some(ra) = &reply.retry_after {
        resp.headers_mut()
            .insert("retry-after", ra.parse().unwrap());
    }
    st.lock().unwrap().received[index].answered = Some(Instant::now());
    notify.notify_waiters();
    resp
}
