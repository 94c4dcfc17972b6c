//! HTTP: `POST /api/messages`, `GET /api/outbox[/{id}]`, `POST /api/outbox/resume`
//! (mounted under `/api`), and the Graph-compatible `POST /{version}/{phone_number_id}/messages`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

use std::sync::Arc;

use super::record::{OutboxEntry, Pause, SendRequest};
use super::Outbox;
use crate::config::Secret;
use crate::httpkit::error::ApiError;
use crate::httpkit::params::{query, Limit, Position};
use crate::httpkit::{authorized, json_or_error};
use crate::store::Store;

/// What the outbox's routes use: the outbox, the store (the window check and
/// status joins), and the phone number id to send from when a request names none.
#[derive(Clone)]
pub struct Handles {
    pub outbox: Arc<Outbox>,
    pub store: Store,
    pub default_phone: Option<String>,
}

const MAX_REQUEST: u64 = 1 << 20;

#[derive(Serialize)]
struct Accepted {
    id: u64,
    state: &'static str,
    duplicate: bool,
}

#[derive(Serialize)]
pub struct EntryView {
    #[serde(flatten)]
    pub entry: OutboxEntry,
    pub current_status: Option<String>,
    pub sent_overdue: bool,
}

#[derive(Serialize)]
struct OutboxList {
    paused: Option<Pause>,
    entries: Vec<EntryView>,
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<Limit>,
    before: Option<Position>,
}

/// The routes under `/api` (the caller checks the token).
pub fn api_routes(state: Handles) -> BoxedFilter<(warp::reply::Response,)> {
    let s = state.clone();
    let post = warp::post()
        .and(warp::path("messages"))
        .and(warp::path::end())
        .and(warp::header::optional::<String>("idempotency-key"))
        .and(warp::body::content_length_limit(MAX_REQUEST))
        .and(warp::body::bytes())
        .then(move |key, body| {
            let s = s.clone();
            async move {
                match submit(&s, body, None, key).await {
                    Ok((id, new)) => warp::reply::with_status(
                        warp::reply::json(&Accepted {
                            id,
                            state: "queued",
                            duplicate: !new,
                        }),
                        http::StatusCode::ACCEPTED,
                    )
                    .into_response(),
                    Err(e) => e.into_response(),
                }
            }
        });
    let s = state.clone();
    let list = warp::get()
        .and(warp::path("outbox"))
        .and(warp::path::end())
        .and(query::<ListQuery>())
        .then(move |q| {
            let s = s.clone();
            async move { json_or_error(list(s, q).await) }
        });
    let s = state.clone();
    let one = warp::get()
        .and(warp::path!("outbox" / u64))
        .then(move |id| {
            let s = s.clone();
            async move { json_or_error(one(s, id).await) }
        });
    let resume = warp::post()
        .and(warp::path!("outbox" / "resume"))
        .then(move || {
            let s = state.clone();
            async move {
                let r = s.outbox.resume("resumed by the operator").await;
                json_or_error(
                    r.map(|was| serde_json::json!({"resumed": was, "paused": false}))
                        .map_err(|e| ApiError::Internal(e.to_string())),
                )
            }
        });
    post.or(list)
        .unify()
        .or(one)
        .unify()
        .or(resume)
        .unify()
        .boxed()
}

/// `POST /{version}/{phone_number_id}/messages`: queue, wait, answer as Meta did.
pub fn graph_routes(state: Handles, token: Secret) -> BoxedFilter<(warp::reply::Response,)> {
    warp::post()
        .and(warp::path!(String / String / "messages"))
        .and_then(|version: String, phone: String| async move {
            if version.starts_with('v') && phone.bytes().all(|b| b.is_ascii_digit()) {
                Ok(phone)
            } else {
                Err(warp::reject::not_found())
            }
        })
        .and(authorized(token))
        .and(warp::header::optional::<String>("idempotency-key"))
        .and(warp::body::content_length_limit(MAX_REQUEST))
        .and(warp::body::bytes())
        .then(move |phone: String, key, body| {
            let s = state.clone();
            async move { graph_send(s, phone, key, body).await }
        })
        .boxed()
}

async fn graph_send(
    s: Handles,
    phone: String,
    key: Option<String>,
    body: Bytes,
) -> warp::reply::Response {
    let (status, body, id) = match submit(&s, body, Some(phone), key).await {
        Ok((id, _)) => match s.outbox.wait(id).await {
            Ok(a) => (a.status, a.body, Some(id)),
            Err(e) => (500, super::graph_error(&e.to_string(), id), Some(id)),
        },
        Err(ApiError::Conflict(reason)) => (
            400,
            serde_json::json!({"error": {"message": "(#131047) Re-engagement message",
                "type": "OAuthException", "code": 131047,
                "error_data": {"messaging_product": "whatsapp", "details": format!("wagate: {reason}")}}}),
            None,
        ),
        Err(e) => return e.into_response(),
    };
    let code = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    let mut resp = warp::reply::with_status(warp::reply::json(&body), code).into_response();
    if let Some(id) = id.and_then(|i| http::HeaderValue::from_str(&i.to_string()).ok()) {
        resp.headers_mut().insert("x-wagate-id", id);
    }
    resp
}

/// Validates, checks the window, journals. `(id, newly created)`.
async fn submit(
    s: &Handles,
    body: Bytes,
    path_phone: Option<String>,
    key: Option<String>,
) -> Result<(u64, bool), ApiError> {
    if !s.outbox.upstream().has_token() {
        return Err(ApiError::Unavailable(
            "WHATSAPP_TOKEN is not configured: wagate cannot send".into(),
        ));
    }
    let graph = path_phone.is_some();
    let default_phone = s.default_phone.clone();
    let req = parse_request(&body, path_phone.or(default_phone), key, graph)?;
    let (force, recipient, msg) = (req.force, req.recipient.clone(), req.message.clone());
    if !force && needs_window(&msg) && !recipient.is_empty() {
        window_check(s, recipient).await?;
    }
    s.outbox
        .submit(req)
        .await
        .map_err(|e| ApiError::Unavailable(format!("could not journal the request: {e}")))
}

fn parse_request(
    body: &[u8],
    default_phone: Option<String>,
    key: Option<String>,
    graph: bool,
) -> Result<SendRequest, ApiError> {
    let bad = |m: &str| ApiError::BadRequest(m.to_string());
    let mut msg: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not a JSON object: {e}")))?;
    let own_phone = match msg.remove("phone_number_id") {
        Some(Value::String(p)) => Some(p),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(bad("phone_number_id must be a string")),
        None => None,
    };
    let force = match msg.remove("force") {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => return Err(bad("force must be true or false")),
    };
    let phone = (if graph {
        default_phone.clone()
    } else {
        own_phone
    })
    .or(default_phone)
    .ok_or_else(|| bad("no phone_number_id: pass one or set WAGATE_PHONE_NUMBER_ID"))?;
    if phone.is_empty() || !phone.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("phone_number_id must be digits"));
    }
    let recipient = ["to", "recipient"]
        .iter()
        .find_map(|k| msg.get(*k).and_then(Value::as_str))
        .unwrap_or("")
        .trim()
        .to_string();
    if recipient.is_empty() && !graph {
        return Err(bad("the message needs a \"to\" (or \"recipient\")"));
    }
    if key.as_ref().is_some_and(|k| k.is_empty() || k.len() > 256) {
        return Err(bad("Idempotency-Key must be 1 to 256 characters"));
    }
    msg.entry("messaging_product")
        .or_insert_with(|| Value::String("whatsapp".into()));
    Ok(SendRequest {
        idempotency_key: key,
        phone_number_id: phone,
        recipient,
        message: Value::Object(msg),
        force,
        graph_compatible: graph,
    })
}

/// Free-form messages need an open window; templates and read receipts do not.
fn needs_window(msg: &Value) -> bool {
    msg.get("status").is_none() && msg.get("type").and_then(Value::as_str) != Some("template")
}

async fn window_check(s: &Handles, recipient: String) -> Result<(), ApiError> {
    let st = s.store.clone();
    let who = recipient.clone();
    let contact = crate::store::blocking(move || {
        let digits: String = who.chars().filter(char::is_ascii_digit).collect();
        match st.contact(&who)? {
            Some(c) => Ok(Some(c)),
            None if !digits.is_empty() => st.contact(&digits),
            None => Ok(None),
        }
    })
    .await?;
    let contact = contact.unwrap_or_default();
    let now = s.outbox.clock().now_secs();
    if contact.window_open(now) {
        return Ok(());
    }
    Err(ApiError::Conflict(match contact.window_closes_at() {
        Some(closed) => format!(
            "the 24-hour customer service window with {recipient} closed at {} (last message from them + 24 h); send a template, or set \"force\": true",
            crate::util::time::rfc3339(crate::util::time::secs_to_micros(closed))
        ),
        None => format!(
            "{recipient} has never written to this number, so no customer service window is open; send a template, or set \"force\": true"
        ),
    }))
}

pub async fn view(s: &Handles, entry: OutboxEntry) -> Result<EntryView, ApiError> {
    let st = s.store.clone();
    let wamid = entry.wamid.clone();
    let current = crate::store::blocking(move || match wamid {
        Some(w) => st.current_status(&w),
        None => Ok(None),
    })
    .await?;
    Ok(EntryView {
        sent_overdue: s.outbox.sent_overdue(&entry, current.is_some()),
        current_status: current,
        entry,
    })
}

async fn list(s: Handles, q: ListQuery) -> Result<OutboxList, ApiError> {
    let st = s.store.clone();
    let (limit, before) = (Limit::or(q.limit, 50), q.before.map(|p| p.0));
    let entries = crate::store::blocking(move || st.outbox_list(before, limit)).await?;
    let mut views = Vec::new();
    for e in entries {
        views.push(view(&s, e).await?);
    }
    Ok(OutboxList {
        paused: s.outbox.paused(),
        entries: views,
    })
}

async fn one(s: Handles, id: u64) -> Result<EntryView, ApiError> {
    let entry = s
        .outbox
        .entry_when_applied(id)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or(ApiError::NotFound)?;
    view(&s, entry).await
}
