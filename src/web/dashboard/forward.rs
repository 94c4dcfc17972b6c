//! Forwarding: each target's state and counts (what `GET /api/forward/targets`
//! shows), the dead letters, the unrouted items; and the forms that replay (one
//! delivery, one dead letter, a time range) and enable a target a `410` disabled.
//! The forms call the same `Forwarder` methods as `POST /api/forward/replay` and
//! `POST /api/forward/targets/{id}/enable`.

use askama::Template;
use http::StatusCode;

use super::page::{self, Chrome};
use super::{render, respond, Ctx, Response};
use crate::forward::{ForwardError, ReplayRequest, TargetStatus};
use crate::httpkit::error::ApiError;
use crate::store;

const DEAD_LETTERS: usize = 100;
const UNROUTED: usize = 50;

pub struct TargetRow {
    pub id: String,
    pub url: String,
    pub mode: &'static str,
    pub phone_number_ids: String,
    pub fields: String,
    pub state: &'static str,
    pub queued: u64,
    pub delivered: u64,
    pub dead_lettered: u64,
    pub last_success: String,
    pub last_error: String,
    pub last_error_at: String,
    pub next_attempt: String,
    pub attempts: u64,
    pub failures: u64,
    pub disabled: Option<String>,
}

impl TargetRow {
    fn of(s: TargetStatus) -> TargetRow {
        let all = |v: &[String]| match v.is_empty() {
            true => "all".to_string(),
            false => v.join(", "),
        };
        let when = |t: Option<i64>| t.map(page::time).unwrap_or_default();
        TargetRow {
            state: s.state_name(),
            id: s.target.id.clone(),
            url: s.target.display_url(),
            mode: s.target.mode.as_str(),
            phone_number_ids: all(&s.target.phone_number_ids),
            fields: all(&s.target.fields),
            queued: s.state.queued,
            delivered: s.state.delivered,
            dead_lettered: s.state.dead_lettered,
            last_success: when(s.state.last_success_micros),
            last_error: s.live.last_error.unwrap_or_default(),
            last_error_at: when(s.live.last_error_at_micros),
            next_attempt: when(s.live.next_attempt_at_micros),
            attempts: s.live.attempts,
            failures: s.live.failures,
            disabled: s
                .state
                .disabled
                .map(|d| format!("{} ({})", d.reason, page::time(d.at_micros))),
        }
    }
}

pub struct DeadRow {
    pub id: u64,
    pub target: String,
    pub delivery: u64,
    pub items: usize,
    pub enqueued: String,
    pub dead_at: String,
    pub attempts: u32,
    pub error: String,
    pub replayed: String,
}

pub struct UnroutedRow {
    pub delivery: u64,
    pub item: u32,
    pub phone_number_id: String,
    pub field: String,
    pub received: String,
}

#[derive(Template)]
#[template(path = "dash/forward.html")]
struct Forward {
    chrome: Chrome,
    targets: Vec<TargetRow>,
    dead_target: String,
    dead: Vec<DeadRow>,
    unrouted: Vec<UnroutedRow>,
    next: Option<String>,
}

pub async fn page(ctx: Ctx) -> Response {
    respond(inner(ctx).await)
}

async fn inner(ctx: Ctx) -> Result<Response, ApiError> {
    let state = &ctx.req.state;
    let targets: Vec<TargetRow> = state
        .forward
        .statuses()
        .await?
        .into_iter()
        .map(TargetRow::of)
        .collect();
    // Only a configured target's name is used as a filter.
    let dead_target = ctx
        .req
        .q("target")
        .filter(|t| targets.iter().any(|r| r.id == *t))
        .unwrap_or("")
        .to_string();
    let before: Option<u64> = ctx.req.q("before").and_then(|b| b.parse().ok());
    let (st, dt) = (state.store.clone(), dead_target.clone());
    let (dead, (unrouted, next_before)) = store::blocking(move || {
        let filter = Some(dt.as_str()).filter(|t| !t.is_empty());
        Ok((
            st.dead_letters(filter, DEAD_LETTERS)?,
            st.unrouted(before, UNROUTED)?,
        ))
    })
    .await?;
    let dead = dead
        .into_iter()
        .map(|d| DeadRow {
            id: d.id,
            target: d.target,
            delivery: d.delivery,
            items: d.items.len(),
            enqueued: page::time(d.enqueued_at_micros),
            dead_at: page::time(d.dead_at_micros),
            attempts: d.attempts,
            error: d.error,
            replayed: d.replayed_at_micros.map(page::time).unwrap_or_default(),
        })
        .collect();
    let unrouted = unrouted
        .into_iter()
        .map(|u| UnroutedRow {
            delivery: u.delivery,
            item: u.item,
            phone_number_id: u.phone_number_id.unwrap_or_default(),
            field: u.field,
            received: page::time(u.received_at_micros),
        })
        .collect();
    let next =
        next_before.map(|b| page::query(&[("target", &dead_target), ("before", &b.to_string())]));
    Ok(render(&Forward {
        chrome: Chrome::new(&ctx, "forward").await,
        targets,
        dead_target,
        dead,
        unrouted,
        next,
    }))
}

#[derive(Template)]
#[template(path = "dash/forward_replayed.html")]
struct Replayed {
    chrome: Chrome,
    target: String,
    replay_id: u64,
    deliveries: usize,
    items: usize,
    skipped: usize,
}

/// `POST /dashboard/forward/replay`: `target` and one of `delivery`, `dead_letter`,
/// or `from` and `to` (UTC times), as `POST /api/forward/replay`.
pub async fn replay(ctx: Ctx) -> Response {
    let field = |name: &str| {
        ctx.req
            .form
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    let number = |name: &str| match field(name) {
        None => Ok(None),
        Some(v) => v
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("{name}: '{v}' is not a number")),
    };
    let time = |name: &str, end: bool| match field(name) {
        None => Ok(None),
        Some(v) => page::parse_time(v, end)
            .map(Some)
            .ok_or_else(|| format!("{name}: '{v}' is not a time like 2025-06-15 21:45")),
    };
    let req = (|| {
        Ok::<_, String>(ReplayRequest {
            target: field("target").unwrap_or("").to_string(),
            delivery: number("delivery")?,
            dead_letter: number("dead_letter")?,
            from: time("from", false)?,
            to: time("to", true)?,
        })
    })();
    let req = match req {
        Ok(r) => r,
        Err(m) => return page::message(StatusCode::BAD_REQUEST, "Bad request", &m),
    };
    match ctx.req.state.forward.replay(req).await {
        Ok(a) => render(&Replayed {
            chrome: Chrome::new(&ctx, "forward").await,
            target: a.target,
            replay_id: a.replay_id,
            deliveries: a.deliveries,
            items: a.items,
            skipped: a.skipped,
        }),
        Err(e) => forward_error(e),
    }
}

/// `POST /dashboard/forward/targets/{id}/enable`, as the API's: back to the page.
pub async fn enable(ctx: Ctx, id: &str) -> Response {
    match ctx.req.state.forward.enable(id).await {
        Ok(()) => page::redirect("/dashboard/forward"),
        Err(e) => forward_error(e),
    }
}

/// The error as a page that says what went wrong.
fn forward_error(e: ForwardError) -> Response {
    match e {
        ForwardError::NotFound(m) => page::message(StatusCode::NOT_FOUND, "Nothing to replay", &m),
        ForwardError::UnknownTarget(_) | ForwardError::BadRequest(_) => {
            page::message(StatusCode::BAD_REQUEST, "Bad request", &e.to_string())
        }
        other => respond(Err(ApiError::from(other))),
    }
}
