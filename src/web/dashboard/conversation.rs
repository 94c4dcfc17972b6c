//! The conversation with one contact: inbound and outbound in time order, status
//! ticks with their timeline, media inline, and the 24-hour window.

use askama::Template;
use http::StatusCode;

use super::messages::{outbound_summary, summary, PAGE};
use super::page::{self, Chrome};
use super::{render, respond, Ctx, Response};
use crate::events::calls::CallView;
use crate::events::model::MessageContent;
use crate::httpkit::error::ApiError;
use crate::media::record::{MediaEntry, MediaState};
use crate::outbox::record::OutboxEntry;
use crate::store::{
    self, ContactRecord, MessageFilter, Store, StoreError, StoredMessage, StoredStatus,
};

/// One bubble of a conversation.
pub struct Bubble {
    pub sort: i64,
    pub outbound: bool,
    pub at: String,
    pub kind: String,
    pub text: String,
    pub id: String,
    /// Outbound: the current status and its timeline ("status at time").
    pub tick: String,
    pub timeline: Vec<String>,
    pub failure: String,
    /// Inbound media stored: its content URL and how to show it.
    pub media_url: Option<String>,
    pub media_kind: &'static str,
    pub media_note: String,
}

#[derive(Template)]
#[template(path = "dash/conversation.html")]
struct Conversation {
    chrome: Chrome,
    contact: String,
    name: String,
    window: String,
    window_open: bool,
    bubbles: Vec<Bubble>,
    older: Option<String>,
    /// The query of `/dashboard/export` for this contact.
    export: String,
}

pub async fn conversation(ctx: Ctx) -> Response {
    respond(conversation_inner(ctx).await)
}

/// `GET /dashboard/export?contact=`: the contact's data as one zip (the same
/// archive as `GET /api/contacts/{id}/export`).
pub async fn export(ctx: Ctx) -> Response {
    let Some(contact) = ctx.req.q("contact").map(str::to_string) else {
        return respond(Err(ApiError::BadRequest(
            "name a contact (?contact=wa_id)".into(),
        )));
    };
    respond(crate::privacy::export_response(ctx.req.state.exporter(), contact).await)
}

/// `POST /dashboard/erase` (`contact`, and `confirm`: the same number typed again):
/// requests the contact's erasure (as `POST /api/contacts/{id}/erase`).
pub async fn erase(ctx: Ctx) -> Response {
    let field = |n: &str| ctx.req.form.get(n).map(|v| v.trim().to_string());
    let (Some(contact), Some(confirm)) = (field("contact"), field("confirm")) else {
        return page::message(StatusCode::BAD_REQUEST, "Bad request", "name a contact");
    };
    if contact.is_empty() || confirm != contact {
        let why = "To erase, type the contact's number exactly as shown.";
        return page::message(StatusCode::BAD_REQUEST, "Not confirmed", why);
    }
    let h = ctx.req.state.erase_handles();
    match crate::privacy::request_erasure(&h, contact, crate::privacy::Requester::Dashboard).await {
        Ok(e) => {
            let text = format!(
                "Erasure {} requested; it runs in the background (GET /api/erasures/{}).",
                e.erasure_id, e.erasure_id
            );
            page::message(StatusCode::ACCEPTED, "Erasure requested", &text)
        }
        Err(e) => respond(Err(e)),
    }
}

fn tick(status: Option<&str>) -> String {
    match status {
        Some("sent") => "✓ sent",
        Some("delivered") => "✓✓ delivered",
        Some("read") => "✓✓ read",
        Some("played") => "✓✓ played",
        Some("failed") => "✗ failed",
        Some(other) => other,
        None => "…",
    }
    .to_string()
}

fn timeline(statuses: &[StoredStatus]) -> (Vec<String>, String) {
    let lines = statuses
        .iter()
        .map(|s| {
            format!(
                "{} at {}",
                s.status.status,
                page::item_time(s.status.timestamp, s.status.timestamp_raw)
            )
        })
        .collect();
    let failure = statuses
        .iter()
        .flat_map(|s| &s.status.errors)
        .map(|e| {
            format!(
                "{} {}: {}",
                e.code.map(|c| c.to_string()).unwrap_or_default(),
                e.title.as_deref().unwrap_or(""),
                super::codes::meaning(e.code).unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    (lines, failure)
}

fn media_view(e: Option<MediaEntry>) -> (Option<String>, &'static str, String) {
    let Some(e) = e else {
        return (None, "", String::new());
    };
    if e.state != MediaState::Stored {
        return (None, "", format!("media {}", e.state.as_str()));
    }
    let url = format!("/dashboard/media/{}/content", page::segment(&e.media_id));
    let mime = e.mime_type.as_deref().unwrap_or("");
    let kind = match e.media_type.as_str() {
        "image" | "sticker" if mime.starts_with("image/") => "image",
        "video" if mime.starts_with("video/") => "video",
        "audio" if mime.starts_with("audio/") => "audio",
        _ => "file",
    };
    (Some(url), kind, page::size(e.size.unwrap_or(0)))
}

/// What one page of a conversation reads from the store.
/// A stored message, its media, and (sent by the business: an echo, history) its
/// statuses and current status.
type Received = (
    StoredMessage,
    Option<MediaEntry>,
    Vec<StoredStatus>,
    Option<String>,
);

struct Loaded {
    record: Option<ContactRecord>,
    inbound: Vec<Received>,
    /// Calls in the same time span.
    calls: Vec<CallView>,
    /// Where the next (older) page starts.
    next: Option<String>,
    /// Outbound entries in the same time span, with their statuses.
    outbound: Vec<(OutboxEntry, Vec<StoredStatus>, Option<String>)>,
}

async fn conversation_inner(ctx: Ctx) -> Result<Response, ApiError> {
    let contact = ctx
        .req
        .q("contact")
        .ok_or_else(|| ApiError::BadRequest("name a contact (?contact=wa_id)".into()))?
        .to_string();
    let before = ctx.req.q("before").map(str::to_string);
    let st = ctx.req.state.store.clone();
    let c = contact.clone();
    let loaded = store::blocking(move || load(&st, &c, before.as_deref())).await?;
    let mut bubbles: Vec<Bubble> = loaded.inbound.into_iter().map(inbound_bubble).collect();
    bubbles.extend(loaded.outbound.into_iter().map(outbound_bubble));
    bubbles.extend(loaded.calls.into_iter().map(call_bubble));
    bubbles.sort_by_key(|b| b.sort);
    let record = loaded.record.unwrap_or_default();
    let now = ctx.req.state.clock.now_secs();
    let (window_open, window) = window_line(&record, now);
    let older = (loaded.next).map(|b| page::query(&[("contact", &contact), ("before", &b)]));
    Ok(render(&Conversation {
        chrome: Chrome::new(&ctx, "messages").await,
        name: match (record.profile_name.or(record.username), record.saved_name) {
            (Some(n), Some(saved)) => format!("{n}, saved as {saved}"),
            (n, saved) => n.or(saved).unwrap_or_default(),
        },
        export: page::query(&[("contact", &contact)]),
        contact,
        window,
        window_open,
        bubbles,
        older,
    }))
}

/// One page of the conversation with `contact`, newest first, from `before`.
fn load(st: &Store, contact: &str, before: Option<&str>) -> Result<Loaded, StoreError> {
    let record = st.contact(contact)?;
    let id = record
        .as_ref()
        .map_or(contact.to_string(), |r| r.contact_id.clone());
    let f = MessageFilter {
        contact: Some(&id),
        ..MessageFilter::default()
    };
    let scan = st.messages_where(&f, before, PAGE, usize::MAX, |_| true)?;
    let mut inbound = Vec::new();
    for m in scan.items {
        let media = match &m.message.content {
            MessageContent::Media { id: Some(mid), .. } => st.media_entry(mid)?,
            _ => None,
        };
        let (statuses, current) = match m.direction == "outbound" || m.message.source.is_some() {
            true => (
                st.statuses(&m.message.id)?,
                st.current_status(&m.message.id)?,
            ),
            false => (Vec::new(), None),
        };
        inbound.push((m, media, statuses, current));
    }
    // Outbound in the same time span (all older ones on the last page).
    let oldest = (scan.next_before.is_some())
        .then(|| inbound.last().map(|(m, ..)| m.message.timestamp))
        .flatten();
    let newest = before.and_then(|b| b.split('_').next()?.parse::<i64>().ok());
    let recipient = record
        .as_ref()
        .and_then(|r| r.wa_id.clone())
        .unwrap_or(contact.to_string());
    let mut outbound = Vec::new();
    for e in st.outbox_for(&recipient, None, 500)? {
        let t = e.created_at_micros / 1_000_000;
        if oldest.is_some_and(|o| t < o) || newest.is_some_and(|n| t >= n) {
            continue;
        }
        let (statuses, current) = match &e.wamid {
            Some(w) => (st.statuses(w)?, st.current_status(w)?),
            None => (Vec::new(), None),
        };
        outbound.push((e, statuses, current));
    }
    let in_span = |t: i64| !(oldest.is_some_and(|o| t < o) || newest.is_some_and(|n| t >= n));
    let calls = (st.calls(Some(&id), None, PAGE)?.calls.into_iter())
        .filter(|c| in_span(c.started_at.unwrap_or(0)))
        .collect();
    Ok(Loaded {
        record,
        inbound,
        calls,
        next: scan.next_before,
        outbound,
    })
}

/// A stored message: inbound, or sent by the business from the app (an echo) or
/// in the history backfill (marked with its source).
fn inbound_bubble((m, media, statuses, current): Received) -> Bubble {
    let (media_url, media_kind, media_note) = media_view(media);
    let (timeline, failure) = timeline(&statuses);
    let kind = match m.message.source.as_deref() {
        Some("business_app") => format!("{} · from the Business app", m.message.msg_type),
        Some(source) => format!("{} · {source}", m.message.msg_type),
        None => m.message.msg_type.clone(),
    };
    Bubble {
        sort: crate::util::time::secs_to_micros(m.message.timestamp),
        outbound: m.direction == "outbound",
        at: page::item_time(m.message.timestamp, m.message.timestamp_raw),
        kind,
        text: summary(&m.message.content),
        id: m.message.id,
        tick: tick(current.as_deref()),
        timeline,
        failure,
        media_url,
        media_kind,
        media_note,
    }
}

fn outbound_bubble(
    (e, statuses, current): (OutboxEntry, Vec<StoredStatus>, Option<String>),
) -> Bubble {
    let (kind, text) = outbound_summary(&e);
    let (timeline, failure) = timeline(&statuses);
    let state = format!("{:?}", e.state).to_lowercase();
    Bubble {
        sort: e.created_at_micros,
        outbound: true,
        at: page::time(e.created_at_micros),
        kind,
        text,
        id: e.wamid.clone().unwrap_or(format!("local {}", e.id)),
        tick: match current.as_deref() {
            Some(s) => tick(Some(s)),
            None => state,
        },
        timeline,
        failure: if failure.is_empty() {
            e.reason.unwrap_or_default()
        } else {
            failure
        },
        media_url: None,
        media_kind: "",
        media_note: String::new(),
    }
}

/// A call, in line: who called, how it ended, how long it lasted.
fn call_bubble(c: CallView) -> Bubble {
    let outbound = c.direction.as_deref() == Some("BUSINESS_INITIATED");
    let who = if outbound {
        "call to the contact"
    } else {
        "call from the contact"
    };
    let lasted = c
        .duration_seconds
        .map(|d| format!(", {}", page::duration(d)))
        .unwrap_or_default();
    let at = c.started_at.unwrap_or(0);
    Bubble {
        sort: crate::util::time::secs_to_micros(at),
        outbound,
        at: page::time_secs(at),
        kind: "call".into(),
        text: format!("[{who}] {}{lasted}", c.state),
        tick: c.state.clone(),
        timeline: (c.events.iter())
            .map(|e| {
                let status = e.status.as_deref().unwrap_or("");
                format!("{} {status} at {}", e.event, page::time_secs(e.timestamp))
            })
            .collect(),
        id: c.id,
        failure: String::new(),
        media_url: None,
        media_kind: "",
        media_note: String::new(),
    }
}

/// The 24-hour window, in words: whether it is open, and until when.
fn window_line(record: &ContactRecord, now: i64) -> (bool, String) {
    match record.window_closes_at() {
        Some(c) if record.window_open(now) => (
            true,
            format!(
                "open: closes in {} ({})",
                page::duration(c - now),
                page::time_secs(c)
            ),
        ),
        Some(c) => (
            false,
            format!("closed since {} (send a template)", page::time_secs(c)),
        ),
        None => (false, "closed: the contact never wrote".into()),
    }
}
