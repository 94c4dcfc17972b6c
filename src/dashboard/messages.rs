//! Messages (filter by contact, type, direction and day; search in text) and the
//! conversation with one contact (inbound and outbound in order, status ticks with
//! their timeline, media inline, the 24-hour window).
//!
//! Inbound messages are walked newest first on the time, contact or type index;
//! a text search looks at no more than `SEARCH_BUDGET` index entries per page and
//! offers to go on from where it stopped. Outbound messages are the outbox
//! (messages sent through wagate), newest first.

use askama::Template;

use super::page::{self, Chrome};
use super::{render, respond, Ctx, Response};
use crate::events::model::MessageContent;
use crate::media::record::{MediaEntry, MediaState};
use crate::outbox::record::OutboxEntry;
use crate::store::{self, MessageFilter, StoredMessage, StoredStatus};
use crate::web::error::ApiError;

const PAGE: usize = 50;
/// Index entries a text search looks at per page (about 10 ms of scanning).
pub const SEARCH_BUDGET: usize = 2_000;

/// A line of text for a message's content (display and search).
pub fn summary(c: &MessageContent) -> String {
    use MessageContent as C;
    let join = |parts: &[&Option<String>]| {
        parts
            .iter()
            .filter_map(|p| p.as_deref())
            .collect::<Vec<_>>()
            .join(" · ")
    };
    match c {
        C::Text { body } => body.clone(),
        C::Media {
            media_type,
            caption,
            filename,
            ..
        } => format!("[{media_type}] {}", join(&[filename, caption])),
        C::Location { name, address, .. } => format!("[location] {}", join(&[name, address])),
        C::Interactive {
            reply_type,
            title,
            description,
            body,
            ..
        } => format!(
            "[{}] {}",
            reply_type.as_deref().unwrap_or("interactive"),
            join(&[title, description, body])
        ),
        C::Button { text, payload } => format!("[button] {}", join(&[text, payload])),
        C::Reaction { emoji, .. } => match emoji {
            Some(e) => format!("[reaction] {e}"),
            None => "[reaction removed]".into(),
        },
        C::Contacts { .. } => "[contacts]".into(),
        C::Order { text, .. } => format!("[order] {}", join(&[text])),
        C::System { body, .. } => format!("[system] {}", join(&[body])),
        C::Edit { content, .. } => format!("[edited] {}", summary(content)),
        C::Revoke { .. } => "[deleted a message]".into(),
        C::Unsupported { unsupported_type } => {
            format!("[unsupported] {}", join(&[unsupported_type]))
        }
        C::Unknown {} => "[unknown type]".into(),
    }
}

/// A line for an outbound request (the Graph message object as sent).
fn outbound_summary(e: &OutboxEntry) -> (String, String) {
    let m = &e.request.message;
    let kind = m["type"].as_str().unwrap_or("text").to_string();
    let text = m["text"]["body"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            m["template"]["name"]
                .as_str()
                .map(|n| format!("[template] {n}"))
        })
        .or_else(|| m[kind.as_str()]["caption"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("[{kind}]"));
    (kind, text)
}

pub struct Row {
    pub at: String,
    pub outbound: bool,
    pub contact: String,
    pub contact_link: String,
    pub kind: String,
    pub text: String,
    pub status: String,
    pub delivery: Option<u64>,
}

#[derive(Template)]
#[template(path = "dash/messages.html")]
struct List {
    chrome: Chrome,
    contact: String,
    kind: String,
    direction: String,
    day: String,
    search: String,
    rows: Vec<Row>,
    next: Option<String>,
    stopped: bool,
}

fn search_key(s: &str) -> String {
    s.to_lowercase()
}

pub async fn list(ctx: Ctx) -> Response {
    respond(list_inner(ctx).await)
}

fn day_cursor(day: &str) -> Result<Option<String>, ApiError> {
    match day {
        "" => Ok(None),
        d => page::parse_day(d)
            .map(|s| Some(format!("{}_", s + 86_400)))
            .ok_or_else(|| ApiError::BadRequest(format!("'{d}' is not a date like 2025-06-15"))),
    }
}

async fn list_inner(ctx: Ctx) -> Result<Response, ApiError> {
    let r = &ctx.req;
    let text = |k: &str| r.q(k).unwrap_or("").to_string();
    let (contact, kind, direction, day, search) = (
        text("contact"),
        text("type"),
        text("direction"),
        text("day"),
        text("q"),
    );
    let before = match r.q("before") {
        Some(b) => Some(b.to_string()),
        None => day_cursor(&day)?,
    };
    let st = r.state.store.clone();
    let (c, k, q) = (contact.clone(), kind.clone(), search_key(&search));
    let (rows, next, stopped) = if direction == "outbound" {
        let before_id = before.as_deref().and_then(|b| b.parse().ok());
        let (entries, next) =
            store::blocking(move || outbound_page(&st, &c, &k, &q, before_id)).await?;
        let rows = entries.into_iter().map(outbound_row).collect();
        (rows, next.map(|n| n.to_string()), false)
    } else {
        let scan = store::blocking(move || {
            let contact_id = match c.as_str() {
                "" => None,
                c => Some(st.contact_id(c)?.unwrap_or(c.to_string())),
            };
            let f = MessageFilter {
                contact: contact_id.as_deref(),
                msg_type: Some(k.as_str()).filter(|k| !k.is_empty()),
                since_secs: None,
            };
            let budget = if q.is_empty() {
                usize::MAX
            } else {
                SEARCH_BUDGET
            };
            st.messages_where(&f, before.as_deref(), PAGE, budget, |m| {
                q.is_empty() || search_key(&summary(&m.message.content)).contains(&q)
            })
        })
        .await?;
        let rows = scan.items.into_iter().map(inbound_row).collect();
        (rows, scan.next_before, scan.budget_spent)
    };
    let next = next.map(|b| {
        page::query(&[
            ("contact", &contact),
            ("type", &kind),
            ("direction", &direction),
            ("q", &search),
            ("before", &b),
        ])
    });
    Ok(render(&List {
        chrome: Chrome::new(&ctx, "messages").await,
        contact,
        kind,
        direction,
        day,
        search,
        rows,
        next,
        stopped,
    }))
}

/// Outbound entries newest first, filtered, looking at `SEARCH_BUDGET` at most.
fn outbound_page(
    st: &crate::store::Store,
    contact: &str,
    kind: &str,
    q: &str,
    mut before: Option<u64>,
) -> Result<(Vec<OutboxEntry>, Option<u64>), crate::store::StoreError> {
    let mut out = Vec::new();
    let mut seen = 0;
    while seen < SEARCH_BUDGET {
        let batch = match contact {
            "" => st.outbox_list(before, 200)?,
            c => st.outbox_for(c, before, 200)?,
        };
        let Some(last) = batch.last().map(|e| e.id) else {
            return Ok((out, None));
        };
        for e in batch {
            seen += 1;
            let (k, text) = outbound_summary(&e);
            if (kind.is_empty() || k == kind) && (q.is_empty() || search_key(&text).contains(q)) {
                let id = e.id;
                out.push(e);
                if out.len() == PAGE {
                    return Ok((out, Some(id)));
                }
            }
        }
        before = Some(last);
    }
    Ok((out, before))
}

fn inbound_row(m: StoredMessage) -> Row {
    Row {
        at: page::time_secs(m.message.timestamp),
        outbound: false,
        contact_link: page::query(&[("contact", &m.message.contact_id)]),
        contact: m.message.contact_id.clone(),
        kind: m.message.msg_type.clone(),
        text: summary(&m.message.content),
        status: String::new(),
        delivery: Some(m.delivery_id),
    }
}

fn outbound_row(e: OutboxEntry) -> Row {
    let (kind, text) = outbound_summary(&e);
    Row {
        at: page::time(e.created_at_micros),
        outbound: true,
        contact_link: page::query(&[("contact", &e.request.recipient)]),
        contact: e.request.recipient.clone(),
        kind,
        text,
        status: format!("{:?}", e.state).to_lowercase(),
        delivery: None,
    }
}

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
}

pub async fn conversation(ctx: Ctx) -> Response {
    respond(conversation_inner(ctx).await)
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
                page::time_secs(s.status.timestamp)
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
    let url = format!("/dashboard/media/{}/content", e.media_id);
    let mime = e.mime_type.as_deref().unwrap_or("");
    let kind = match e.media_type.as_str() {
        "image" | "sticker" if mime.starts_with("image/") => "image",
        "video" if mime.starts_with("video/") => "video",
        "audio" if mime.starts_with("audio/") => "audio",
        _ => "file",
    };
    (Some(url), kind, page::size(e.size.unwrap_or(0)))
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
    let (record, inbound, outbound) = store::blocking(move || {
        let record = st.contact(&c)?;
        let id = record.as_ref().map_or(c.clone(), |r| r.contact_id.clone());
        let f = MessageFilter {
            contact: Some(&id),
            ..MessageFilter::default()
        };
        let scan = st.messages_where(&f, before.as_deref(), PAGE, usize::MAX, |_| true)?;
        let mut inbound = Vec::new();
        for m in scan.items {
            let media = match &m.message.content {
                MessageContent::Media { id: Some(mid), .. } => st.media_entry(mid)?,
                _ => None,
            };
            inbound.push((m, media));
        }
        // Outbound in the same time span (all older ones on the last page).
        let oldest = (scan.next_before.is_some())
            .then(|| inbound.last().map(|(m, _)| m.message.timestamp))
            .flatten();
        let newest = before
            .as_deref()
            .and_then(|b| b.split('_').next()?.parse::<i64>().ok());
        let recipient = record.as_ref().and_then(|r| r.wa_id.clone()).unwrap_or(c);
        let mut outbound = Vec::new();
        for e in st.outbox_for(&recipient, None, 500)? {
            let t = e.created_at_micros / 1_000_000;
            if oldest.is_some_and(|o| t < o) || newest.is_some_and(|n| t >= n) {
                continue;
            }
            let statuses = match &e.wamid {
                Some(w) => st.statuses(w)?,
                None => Vec::new(),
            };
            let current = match &e.wamid {
                Some(w) => st.current_status(w)?,
                None => None,
            };
            outbound.push((e, statuses, current));
        }
        Ok((record, (inbound, scan.next_before), outbound))
    })
    .await?;
    let (inbound, next) = inbound;
    let mut bubbles: Vec<Bubble> = inbound
        .into_iter()
        .map(|(m, media)| {
            let (media_url, media_kind, media_note) = media_view(media);
            Bubble {
                sort: m.message.timestamp * 1_000_000,
                outbound: false,
                at: page::time_secs(m.message.timestamp),
                kind: m.message.msg_type.clone(),
                text: summary(&m.message.content),
                id: m.message.id,
                tick: String::new(),
                timeline: Vec::new(),
                failure: String::new(),
                media_url,
                media_kind,
                media_note,
            }
        })
        .collect();
    for (e, statuses, current) in outbound {
        let (kind, text) = outbound_summary(&e);
        let (timeline, failure) = timeline(&statuses);
        let state = format!("{:?}", e.state).to_lowercase();
        bubbles.push(Bubble {
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
        });
    }
    bubbles.sort_by_key(|b| b.sort);
    let now = crate::now_micros() / 1_000_000;
    let closes = record
        .as_ref()
        .and_then(|r| r.last_inbound_at)
        .map(|t| t + crate::api::SERVICE_WINDOW_SECS);
    let (window_open, window) = match closes {
        Some(c) if c > now => (
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
    };
    let older = next.map(|b| page::query(&[("contact", &contact), ("before", &b)]));
    Ok(render(&Conversation {
        chrome: Chrome::new(&ctx, "messages").await,
        name: record
            .as_ref()
            .and_then(|r| r.profile_name.clone().or(r.username.clone()))
            .unwrap_or_default(),
        contact,
        window,
        window_open,
        bubbles,
        older,
    }))
}
