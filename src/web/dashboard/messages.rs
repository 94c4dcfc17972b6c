//! Messages: filter by contact, type, direction and day; search in text (the
//! conversation with one contact is `conversation.rs`).
//!
//! Inbound messages are walked newest first on the time, contact or type index;
//! a text search looks at no more than `SEARCH_BUDGET` index entries per page and
//! offers to go on from where it stopped. Outbound messages are the outbox
//! (messages sent through wagate), newest first.

use askama::Template;

use super::page::{self, Chrome};
use super::{render, respond, Ctx, Response};
use crate::events::model::MessageContent;
use crate::httpkit::error::ApiError;
use crate::outbox::record::OutboxEntry;
use crate::store::{self, MessageFilter, StoredMessage};

pub(super) const PAGE: usize = 50;
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
        C::CallPermissionReply {
            response,
            expiration_timestamp,
            is_permanent,
            ..
        } => {
            let until = match (is_permanent, expiration_timestamp) {
                (Some(true), _) => " (permanent)".to_string(),
                (_, Some(t)) => format!(
                    " until {}",
                    crate::util::time::rfc3339_secs(*t).unwrap_or_else(|| t.to_string())
                ),
                _ => String::new(),
            };
            format!(
                "[call permission] {}{until}",
                response.as_deref().unwrap_or("?")
            )
        }
        C::Unsupported { unsupported_type } => {
            format!("[unsupported] {}", join(&[unsupported_type]))
        }
        C::Unknown {} => "[unknown type]".into(),
    }
}

/// A line for an outbound request (the Graph message object as sent).
pub(super) fn outbound_summary(e: &OutboxEntry) -> (String, String) {
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
        at: page::item_time(m.message.timestamp, m.message.timestamp_raw),
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
