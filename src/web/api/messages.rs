//! `GET /api/messages`, `/api/messages/{wamid}`, `/api/contacts/{id}`, `/api/events`.

use serde::{Deserialize, Serialize};
use warp::filters::BoxedFilter;
use warp::Filter;

use super::json_or_error;
use crate::httpkit::error::ApiError;
use crate::httpkit::params::{query, segment, Cursor, Limit};
use crate::store::{self, ContactRecord, StoredEvent, StoredMessage, StoredStatus};
use crate::util::time::{secs_to_micros, JsonTime};
use crate::web::WebState;

#[derive(Debug, Deserialize)]
struct ListQuery {
    contact: Option<String>,
    #[serde(rename = "type")]
    msg_type: Option<String>,
    limit: Option<Limit>,
    before: Option<Cursor>,
}

#[derive(Serialize)]
struct MessageList {
    messages: Vec<StoredMessage>,
    next_before: Option<String>,
}

#[derive(Serialize)]
struct MessageDetail {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<StoredMessage>,
    direction: String,
    current_status: Option<String>,
    statuses: Vec<StoredStatus>,
    /// Sent through wagate: the request, its attempts and local id.
    #[serde(skip_serializing_if = "Option::is_none")]
    outbound: Option<crate::outbox::EntryView>,
    /// An inbound media message: its download job (state, size, digest, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    media: Option<crate::media::MediaView>,
}

#[derive(Serialize)]
struct ContactView {
    #[serde(flatten)]
    contact: ContactRecord,
    window_open: bool,
    window_closes_at: Option<JsonTime>,
}

#[derive(Debug, Deserialize)]
struct EventQuery {
    field: Option<String>,
    limit: Option<Limit>,
}

#[derive(Serialize)]
struct EventList {
    events: Vec<StoredEvent>,
}

pub fn routes(state: WebState) -> BoxedFilter<(warp::reply::Response,)> {
    let s = state.clone();
    let list = warp::get()
        .and(warp::path("messages"))
        .and(warp::path::end())
        .and(query::<ListQuery>())
        .then(move |q| {
            let s = s.clone();
            async move { json_or_error(list(s, q).await) }
        });
    let s = state.clone();
    let one = warp::get()
        .and(warp::path("messages"))
        .and(segment())
        .and(warp::path::end())
        .then(move |id| {
            let s = s.clone();
            async move { json_or_error(message(s, id).await) }
        });
    let s = state.clone();
    let contact = warp::get()
        .and(warp::path("contacts"))
        .and(segment())
        .and(warp::path::end())
        .then(move |id| {
            let s = s.clone();
            async move { json_or_error(contact(s, id).await) }
        });
    let events = warp::get()
        .and(warp::path("events"))
        .and(warp::path::end())
        .and(query::<EventQuery>())
        .then(move |q| {
            let s = state.clone();
            async move { json_or_error(events(s, q).await) }
        });
    list.or(one)
        .unify()
        .or(contact)
        .unify()
        .or(events)
        .unify()
        .boxed()
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

async fn list(state: WebState, q: ListQuery) -> Result<MessageList, ApiError> {
    let limit = Limit::or(q.limit, 50);
    let (contact, msg_type, before) = (
        nonempty(q.contact),
        nonempty(q.msg_type),
        q.before.map(|c| c.0),
    );
    let st = state.store.clone();
    let page = store::blocking(move || {
        // A contact may be named by wa_id or user_id: resolve to its id first.
        let contact = match contact {
            Some(c) => Some(st.contact_id(&c)?.unwrap_or(c)),
            None => None,
        };
        st.messages(
            contact.as_deref(),
            msg_type.as_deref(),
            before.as_deref(),
            limit,
        )
    })
    .await?;
    Ok(MessageList {
        messages: page.messages,
        next_before: page.next_before,
    })
}

async fn message(state: WebState, id: String) -> Result<MessageDetail, ApiError> {
    let st = state.store.clone();
    let wamid = id.clone();
    let (message, statuses, current_status, sent, media) = store::blocking(move || {
        let message = st.message(&id)?;
        let media = match message.as_ref().map(|m| &m.message.content) {
            Some(crate::events::model::MessageContent::Media { id: Some(mid), .. }) => {
                st.media_entry(mid)?
            }
            _ => None,
        };
        Ok((
            message,
            st.statuses(&id)?,
            st.current_status(&id)?,
            st.outbox_by_wamid(&id)?,
            media,
        ))
    })
    .await?;
    if message.is_none() && statuses.is_empty() && sent.is_none() {
        return Err(ApiError::NotFound);
    }
    let mut message = message;
    if let Some(m) = message.as_mut().filter(|m| m.message.raw.is_null()) {
        m.message.raw = raw_from_journal(&state, m.delivery_id, &m.message.id)
            .await
            .unwrap_or(serde_json::Value::Null);
    }
    let outbound = match sent {
        Some(e) => Some(crate::outbox::view(&state.outbox_handles(), e).await?),
        None => None,
    };
    let id = message.as_ref().map_or(wamid, |m| m.message.id.clone());
    Ok(MessageDetail {
        id,
        direction: message
            .as_ref()
            .map_or("outbound".to_string(), |m| m.direction.clone()),
        message,
        current_status,
        statuses,
        outbound,
        media: media.map(crate::media::MediaView::of),
    })
}

async fn contact(state: WebState, id: String) -> Result<ContactView, ApiError> {
    let st = state.store.clone();
    let contact = store::blocking(move || st.contact(&id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let now = state.clock.now_secs();
    Ok(ContactView {
        window_open: contact.window_open(now),
        window_closes_at: contact
            .window_closes_at()
            .map(|c| JsonTime::micros(secs_to_micros(c))),
        contact,
    })
}

async fn events(state: WebState, q: EventQuery) -> Result<EventList, ApiError> {
    let limit = Limit::or(q.limit, 50);
    let field = nonempty(q.field);
    let st = state.store.clone();
    let events = store::blocking(move || st.events(field.as_deref(), limit)).await?;
    Ok(EventList { events })
}

/// The message object exactly as Meta sent it, from the delivery in the journal
/// (`None` once retention has deleted that delivery).
async fn raw_from_journal(
    state: &WebState,
    delivery_id: u64,
    wamid: &str,
) -> Option<serde_json::Value> {
    let (st, journal, wamid) = (
        state.store.clone(),
        state.journal.clone(),
        wamid.to_string(),
    );
    tokio::task::spawn_blocking(move || {
        let meta = st.delivery(delivery_id).ok()??;
        let record = journal.read_at(meta.stream, meta.pos).ok()?;
        let delivery = crate::journal::delivery::Delivery::decode(&record.payload).ok()?;
        // A stored message is among the items applied: none past them is built.
        let parsed = crate::events::parse::parse_capped(&delivery.body, meta.items_applied());
        parsed.ok()?.items.into_iter().find_map(|item| match item {
            crate::events::model::Item::Message { message, .. } if message.id == wamid => {
                Some(message.raw)
            }
            _ => None,
        })
    })
    .await
    .ok()
    .flatten()
}
