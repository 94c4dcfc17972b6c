//! Account events: template status, quality and category, number quality, account
//! updates, user preferences, coexistence and the rest, newest first, optionally
//! one field; and the progress of the coexistence history backfill.

use askama::Template;

use super::page::{self, Chrome};
use super::{render, respond, Ctx, Response};
use crate::httpkit::error::ApiError;
use crate::store;

const PAGE: usize = 100;

/// The fields worth a filter button.
const FIELDS: &[&str] = &[
    "message_template_status_update",
    "message_template_quality_update",
    "template_category_update",
    "phone_number_quality_update",
    "account_update",
    "user_preferences",
    "history",
    "smb_app_state_sync",
    "account_alerts",
    "messages",
];

pub struct Event {
    pub at: String,
    pub field: String,
    pub summary: String,
    pub value: String,
    pub delivery: u64,
}

#[derive(Template)]
#[template(path = "dash/events.html")]
struct Events {
    chrome: Chrome,
    field: String,
    fields: &'static [&'static str],
    events: Vec<Event>,
    /// The coexistence history backfill, per phone number id.
    history: Vec<History>,
}

/// One phone number's history backfill, in words.
pub struct History {
    pub phone_number_id: String,
    pub phases: String,
    pub chunks: u64,
    pub progress: String,
    pub imported: u64,
    pub received: u64,
    pub state: String,
}

pub async fn page(ctx: Ctx) -> Response {
    respond(inner(ctx).await)
}

async fn inner(ctx: Ctx) -> Result<Response, ApiError> {
    let field = ctx.req.q("field").unwrap_or("").to_string();
    let st = ctx.req.state.store.clone();
    let f = field.clone();
    let (events, history) = store::blocking(move || {
        let events = st.events(Some(f.as_str()).filter(|f| !f.is_empty()), PAGE)?;
        Ok((events, st.history()?))
    })
    .await?;
    let history = history
        .into_iter()
        .map(|h| History {
            phases: (h.phases.iter().map(i64::to_string))
                .collect::<Vec<_>>()
                .join(", "),
            chunks: h.chunks,
            progress: h.progress.map(|p| format!("{p}%")).unwrap_or_default(),
            imported: h.messages_imported,
            received: h.messages_received,
            state: match (h.declined, h.error) {
                (true, Some(e)) => format!("declined or failed: {e}"),
                _ if h.progress >= Some(100) => "complete".into(),
                _ => "in progress".into(),
            },
            phone_number_id: h.phone_number_id,
        })
        .collect();
    let events = events
        .into_iter()
        .map(|e| Event {
            at: e
                .event
                .timestamp
                .map(|t| page::item_time(t, e.event.timestamp_raw))
                .unwrap_or_default(),
            field: e.event.field,
            summary: e.event.summary.unwrap_or_default(),
            value: serde_json::to_string_pretty(&e.event.value).unwrap_or_default(),
            delivery: e.delivery_id,
        })
        .collect();
    Ok(render(&Events {
        chrome: Chrome::new(&ctx, "events").await,
        field,
        fields: FIELDS,
        events,
        history,
    }))
}
