//! Failed statuses: newest first (the failures index), each with Meta's error codes
//! and what they mean.

use askama::Template;

use super::page::{self, Chrome};
use super::{render, respond, Ctx, Response};
use crate::httpkit::error::ApiError;
use crate::store;

const PAGE: usize = 50;

pub struct Failure {
    pub at: String,
    pub id: String,
    pub recipient: String,
    pub recipient_link: String,
    pub errors: Vec<ErrorLine>,
}

pub struct ErrorLine {
    pub code: String,
    pub title: String,
    pub details: String,
    pub meaning: String,
}

#[derive(Template)]
#[template(path = "dash/statuses.html")]
struct Statuses {
    chrome: Chrome,
    failures: Vec<Failure>,
    next: Option<String>,
}

pub async fn page(ctx: Ctx) -> Response {
    respond(inner(ctx).await)
}

async fn inner(ctx: Ctx) -> Result<Response, ApiError> {
    let before = ctx.req.q("before").map(str::to_string);
    let st = ctx.req.state.store.clone();
    let scan = store::blocking(move || st.failed_statuses(before.as_deref(), PAGE)).await?;
    let failures = scan
        .items
        .into_iter()
        .map(|s| {
            let s = s.status;
            let recipient = s
                .recipient_id
                .clone()
                .or(s.recipient_user_id.clone())
                .unwrap_or_default();
            Failure {
                at: page::item_time(s.timestamp, s.timestamp_raw),
                recipient_link: page::query(&[("contact", &recipient)]),
                recipient,
                errors: s
                    .errors
                    .iter()
                    .map(|e| ErrorLine {
                        code: e.code.map(|c| c.to_string()).unwrap_or("-".into()),
                        title: e.title.clone().or(e.message.clone()).unwrap_or_default(),
                        details: e.details.clone().unwrap_or_default(),
                        meaning: super::codes::meaning(e.code)
                            .unwrap_or("not in wagate's table: see Meta's error-codes page")
                            .to_string(),
                    })
                    .collect(),
                id: s.id,
            }
        })
        .collect();
    Ok(render(&Statuses {
        chrome: Chrome::new(&ctx, "statuses").await,
        failures,
        next: scan.next_before.map(|b| page::query(&[("before", &b)])),
    }))
}
