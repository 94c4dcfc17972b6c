//! Deliveries: the list (by verdict and time, newest first), one delivery (headers,
//! body pretty-printed and raw, its items, and for a rejected one the diagnosis),
//! the raw bytes, and re-verification of rejected deliveries.

use askama::Template;
use http::HeaderValue;

use super::page::{self, Chrome};
use super::{render, respond, Ctx, Response};
use crate::events::model::Item;
use crate::httpkit::error::ApiError;
use crate::store;
use crate::web::api::deliveries::{diagnosis_of, load, reverify as reverify_all, verdict_filter};

const PAGE: usize = 50;

pub struct Row {
    pub id: u64,
    pub at: String,
    pub accepted: bool,
    pub verdict: &'static str,
    pub reason: String,
    pub size: String,
    pub items: String,
    pub peer: String,
}

#[derive(Template)]
#[template(path = "dash/deliveries.html")]
struct List {
    chrome: Chrome,
    verdict: String,
    day: String,
    rows: Vec<Row>,
    next: Option<String>,
}

pub async fn list(ctx: Ctx) -> Response {
    respond(list_inner(ctx).await)
}

async fn list_inner(ctx: Ctx) -> Result<Response, ApiError> {
    let verdict_text = ctx.req.q("verdict").unwrap_or("").to_string();
    let verdict = verdict_filter(Some(&verdict_text))?;
    let day = ctx.req.q("day").unwrap_or("").to_string();
    let mut before: Option<u64> = ctx.req.q("before").and_then(|b| b.parse().ok());
    let st = ctx.req.state.store.clone();
    let day_end = match day.as_str() {
        "" => None,
        d => Some(
            page::parse_day(d).ok_or_else(|| {
                ApiError::BadRequest(format!("'{d}' is not a date like 2025-06-15"))
            })? + 86_400,
        ),
    };
    let page = store::blocking(move || {
        if let (None, Some(end)) = (before, day_end) {
            // Received on or before that day: everything below the first id after it.
            before = Some(
                st.delivery_id_at(crate::util::time::secs_to_micros(end))?
                    .unwrap_or(u64::MAX),
            );
        }
        st.deliveries(verdict, before, PAGE)
    })
    .await?;
    let rows = page
        .items
        .into_iter()
        .map(|m| Row {
            id: m.id,
            at: page::time(m.received_at_micros),
            accepted: m.verdict.is_accepted(),
            verdict: m.verdict.as_str(),
            reason: m.reason,
            size: page::size(m.size),
            items: m.items.map(|n| n.to_string()).unwrap_or_default(),
            peer: m.peer.unwrap_or_default(),
        })
        .collect();
    let next = page
        .next_before
        .map(|b| page::query(&[("verdict", &verdict_text), ("before", &b.to_string())]));
    Ok(render(&List {
        chrome: Chrome::new(&ctx, "deliveries").await,
        verdict: verdict_text,
        day,
        rows,
        next,
    }))
}

pub struct Header {
    pub name: String,
    pub value: String,
}

pub struct Finding {
    pub ok: bool,
    pub code: &'static str,
    pub message: String,
}

#[derive(Template)]
#[template(path = "dash/delivery.html")]
struct Detail {
    chrome: Chrome,
    id: u64,
    at: String,
    accepted: bool,
    verdict: &'static str,
    reason: String,
    peer: String,
    size: u64,
    declared_length: String,
    secret_index: String,
    parse_error: String,
    reverified_as: Option<u64>,
    reverified_from: Option<u64>,
    available: bool,
    truncated: bool,
    headers: Vec<Header>,
    pretty: Option<String>,
    raw: String,
    items: Vec<(String, String, String)>,
    findings: Vec<Finding>,
    /// Forwarding targets it can be replayed to (an accepted delivery only).
    forward_targets: Vec<String>,
}

pub async fn detail(ctx: Ctx, id: u64) -> Response {
    respond(detail_inner(ctx, id).await)
}

/// Bodies pretty-printed on a delivery's page at most (larger: shown raw).
const PRETTY_MAX: usize = 1 << 20;

/// Items a delivery's page lists at most.
const ITEMS_SHOWN: usize = 1000;

/// One line per item: kind, id, what (the first `ITEMS_SHOWN`).
fn items_of(body: &[u8]) -> Vec<(String, String, String)> {
    let Ok(parsed) = crate::events::parse::parse_capped(body, ITEMS_SHOWN) else {
        return Vec::new();
    };
    parsed
        .items
        .into_iter()
        .map(|item| match item {
            Item::Message { message, .. } => (
                "message".to_string(),
                message.id.clone(),
                format!(
                    "{} {} {}: {}",
                    message.msg_type,
                    if message.outbound { "to" } else { "from" },
                    message.contact_id,
                    super::messages::summary(&message.content)
                ),
            ),
            Item::Status { status, .. } => (
                "status".into(),
                status.id.clone(),
                format!(
                    "{} to {}",
                    status.status,
                    status
                        .recipient_id
                        .or(status.recipient_user_id)
                        .unwrap_or_default()
                ),
            ),
            Item::Contact { contact, .. } => (
                "contact".into(),
                contact.contact_id.clone(),
                contact.profile_name.unwrap_or_default(),
            ),
            Item::Call { call, .. } => (
                "call".into(),
                call.id.clone(),
                format!(
                    "{} {} with {}",
                    call.event,
                    call.status.unwrap_or_default(),
                    call.contact_id
                ),
            ),
            Item::Change { meta, event } => (
                "event".into(),
                meta.field.clone(),
                event.summary.unwrap_or_default(),
            ),
        })
        .collect()
}

async fn detail_inner(ctx: Ctx, id: u64) -> Result<Response, ApiError> {
    let state = &ctx.req.state;
    let (meta, delivery) = match load(state, id).await {
        Err(ApiError::NotFound) => return Ok(page::not_found()),
        r => r?,
    };
    let diagnosis = diagnosis_of(state, &meta, delivery.as_ref());
    let findings = diagnosis
        .map(|d| {
            d.findings
                .into_iter()
                .map(|f| Finding {
                    ok: f.code == "valid_now",
                    code: f.code,
                    message: f.message,
                })
                .collect()
        })
        .unwrap_or_default();
    let (headers, pretty, raw, items, declared, truncated) = match &delivery {
        Some(d) => (
            d.headers
                .iter()
                .map(|(n, v)| Header {
                    name: n.clone(),
                    value: String::from_utf8_lossy(v).into_owned(),
                })
                .collect(),
            // Past a size a tree of the body costs more than it shows: raw only.
            (d.body.len() <= PRETTY_MAX)
                .then(|| serde_json::from_slice::<serde_json::Value>(&d.body).ok())
                .flatten()
                .and_then(|v| serde_json::to_string_pretty(&v).ok()),
            String::from_utf8_lossy(&d.body).into_owned(),
            if meta.verdict.is_accepted() {
                items_of(&d.body)
            } else {
                Vec::new()
            },
            d.declared_length,
            d.body_truncated(),
        ),
        None => (Vec::new(), None, String::new(), Vec::new(), None, false),
    };
    let view = Detail {
        chrome: Chrome::new(&ctx, "deliveries").await,
        id,
        at: page::time(meta.received_at_micros),
        accepted: meta.verdict.is_accepted(),
        verdict: meta.verdict.as_str(),
        reason: meta.reason,
        peer: meta.peer.unwrap_or_default(),
        size: meta.size,
        declared_length: declared.map(|n| n.to_string()).unwrap_or("-".into()),
        secret_index: meta
            .secret_index
            .map(|i| format!("#{i}"))
            .unwrap_or("-".into()),
        parse_error: meta.parse_error.unwrap_or_default(),
        reverified_as: meta.reverified_as,
        reverified_from: meta.reverified_from,
        available: delivery.is_some(),
        truncated,
        headers,
        pretty,
        raw,
        items,
        findings,
        forward_targets: match meta.verdict.is_accepted() {
            true => state
                .forward
                .targets()
                .iter()
                .map(|t| t.id.clone())
                .collect(),
            false => Vec::new(),
        },
    };
    Ok(render(&view))
}

/// The exact bytes, as a download (never rendered by the browser).
pub async fn raw(ctx: Ctx, id: u64) -> Response {
    match load(&ctx.req.state, id).await {
        Ok((_, Some(d))) => {
            let mut resp = warp::reply::Response::new(d.body.into());
            let h = resp.headers_mut();
            h.insert(
                "content-type",
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Ok(v) =
                HeaderValue::from_str(&format!("attachment; filename=\"delivery-{id}.json\""))
            {
                h.insert("content-disposition", v);
            }
            resp
        }
        Ok((_, None)) | Err(ApiError::NotFound) => page::not_found(),
        Err(e) => super::respond(Err(e)),
    }
}

#[derive(Template)]
#[template(path = "dash/reverified.html")]
struct Reverified {
    chrome: Chrome,
    checked: u64,
    accepted: Vec<(u64, u64)>,
    still_rejected: u64,
}

pub async fn reverify(ctx: Ctx) -> Response {
    let result = reverify_all(ctx.req.state.clone()).await;
    respond(match result {
        Ok(r) => Ok(render(&Reverified {
            chrome: Chrome::new(&ctx, "deliveries").await,
            checked: r.checked,
            accepted: r.accepted.iter().map(|a| (a.original, a.id)).collect(),
            still_rejected: r.still_rejected,
        })),
        Err(e) => Err(e),
    })
}
