//! Media: every job newest first (state, size, type, expiry) and the decrypted
//! content behind the session (the same answer as `/api/media/{id}/content`).

use askama::Template;

use super::page::{self, Chrome};
use super::{render, respond, Ctx, Response};
use crate::httpkit::error::ApiError;
use crate::store;

const PAGE: usize = 50;

pub struct Row {
    pub media_id: String,
    pub message_id: String,
    pub media_type: String,
    pub mime: String,
    pub state: &'static str,
    pub bad: bool,
    pub size: String,
    pub created: String,
    pub expires: String,
    pub error: String,
    pub stored: bool,
    pub filename: String,
}

#[derive(Template)]
#[template(path = "dash/media.html")]
struct Media {
    chrome: Chrome,
    rows: Vec<Row>,
    next: Option<String>,
}

pub async fn list(ctx: Ctx) -> Response {
    respond(inner(ctx).await)
}

async fn inner(ctx: Ctx) -> Result<Response, ApiError> {
    let before = ctx.req.q("before").and_then(|b| b.parse().ok());
    let st = ctx.req.state.store.clone();
    let scan = store::blocking(move || st.media_newest(before, PAGE)).await?;
    use crate::media::record::MediaState as S;
    let rows = scan
        .items
        .into_iter()
        .map(|e| Row {
            stored: e.state == S::Stored,
            bad: matches!(e.state, S::Failed | S::Quarantined | S::Expired),
            state: e.state.as_str(),
            size: e
                .size
                .or(e.declared_size)
                .map(page::size)
                .unwrap_or_default(),
            created: page::time(e.created_at_micros),
            expires: match (e.state, e.expires_at_micros) {
                (S::Stored, Some(t)) => format!("file deleted after {}", page::time(t)),
                (S::Pending, _) => {
                    format!("media id expires {}", page::time(e.id_expires_at_micros))
                }
                (_, _) => e
                    .deleted_at_micros
                    .map(|t| format!("deleted {}", page::time(t)))
                    .unwrap_or_default(),
            },
            error: e.last_error.unwrap_or_default(),
            mime: e.mime_type.unwrap_or_default(),
            filename: e.filename.unwrap_or_default(),
            media_id: e.media_id,
            message_id: e.message_id,
            media_type: e.media_type,
        })
        .collect();
    Ok(render(&Media {
        chrome: Chrome::new(&ctx, "media").await,
        rows,
        next: scan.next_before.map(|b| page::query(&[("before", &b)])),
    }))
}

/// The decrypted bytes (authenticated first), as the API serves them.
pub async fn content(ctx: Ctx, id: String) -> Response {
    let s = &ctx.req.state;
    match crate::media::content(&s.store, s.media.clone(), id).await {
        Ok(r) => r,
        Err(e) => respond(Err(e)),
    }
}
