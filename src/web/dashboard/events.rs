//! Account events: template status, quality and category, number quality, account
//! updates, user preferences, newest first, optionally one field.

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
}

pub async fn page(ctx: Ctx) -> Response {
    respond(inner(ctx).await)
}

async fn inner(ctx: Ctx) -> Result<Response, ApiError> {
    let field = ctx.req.q("field").unwrap_or("").to_string();
    let st = ctx.req.state.store.clone();
    let f = field.clone();
    let events =
        store::blocking(move || st.events(Some(f.as_str()).filter(|f| !f.is_empty()), PAGE))
            .await?;
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
    }))
}
