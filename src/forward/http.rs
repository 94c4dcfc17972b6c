//! `/api/forward/...` (behind the API token, which the caller checks).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::filters::BoxedFilter;
use warp::Filter;

use super::record::{DeadLetter, Disabled, Unrouted};
use super::{ForwardError, Forwarder, ReplayRequest, TargetStatus};
use crate::config::Transport;
use crate::httpkit::error::ApiError;
use crate::httpkit::json_or_error;
use crate::httpkit::params::{json_body, query, segment, Limit, Position};
use crate::store::{self, Store};
use crate::util::time::JsonTime;

impl From<ForwardError> for ApiError {
    fn from(e: ForwardError) -> Self {
        match e {
            ForwardError::UnknownTarget(_) | ForwardError::BadRequest(_) => {
                ApiError::BadRequest(e.to_string())
            }
            ForwardError::NotFound(_) => ApiError::NotFound,
            ForwardError::Journal(e) => ApiError::Unavailable(e.to_string()),
            ForwardError::Store(e) => ApiError::Store(e),
        }
    }
}

#[derive(Serialize)]
struct TargetView {
    id: String,
    url: String,
    mode: &'static str,
    /// `http` or `nats`.
    transport: &'static str,
    phone_number_ids: Vec<String>,
    fields: Vec<String>,
    /// `active`, `retrying`, `paused`, `failed` or `disabled`.
    state: &'static str,
    queued: u64,
    delivered: u64,
    dead_lettered: u64,
    last_success: Option<JsonTime>,
    disabled: Option<Disabled>,
    /// Since this process started.
    attempts: u64,
    failures: u64,
    /// Bus publishes JetStream acknowledged as duplicates.
    duplicates: u64,
    consecutive_failures: u32,
    entry_failures: u64,
    worker_restarts: u64,
    last_error: Option<String>,
    last_error_at: Option<JsonTime>,
    failing_since: Option<JsonTime>,
    next_attempt_at: Option<JsonTime>,
}

fn view(s: TargetStatus) -> TargetView {
    let state = s.state_name();
    let TargetStatus {
        target: t,
        state: s,
        live: l,
    } = s;
    TargetView {
        id: t.id.clone(),
        url: t.display_url(),
        mode: t.mode.as_str(),
        transport: match t.transport {
            Transport::Http => "http",
            Transport::Nats => "nats",
        },
        phone_number_ids: t.phone_number_ids,
        fields: t.fields,
        state,
        queued: s.queued,
        delivered: s.delivered,
        dead_lettered: s.dead_lettered,
        last_success: s.last_success_micros.map(JsonTime::micros),
        disabled: s.disabled,
        attempts: l.attempts,
        failures: l.failures,
        duplicates: l.duplicates,
        consecutive_failures: l.consecutive_failures,
        entry_failures: l.entry_failures,
        worker_restarts: l.worker_restarts,
        last_error: l.last_error,
        last_error_at: l.last_error_at_micros.map(JsonTime::micros),
        failing_since: l.failing_since_micros.map(JsonTime::micros),
        next_attempt_at: l.next_attempt_at_micros.map(JsonTime::micros),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    target: Option<String>,
    limit: Option<Limit>,
    before: Option<Position>,
}

#[derive(Serialize)]
struct DeadLetterView {
    #[serde(flatten)]
    dead: DeadLetter,
    enqueued_at: JsonTime,
    dead_at: JsonTime,
}

#[derive(Serialize)]
struct UnroutedView {
    #[serde(flatten)]
    item: Unrouted,
    received_at: JsonTime,
}

/// What the forwarding routes use: the forwarder (targets, replays, enabling)
/// and the store (dead letters, unrouted items).
#[derive(Clone)]
pub struct Handles {
    pub forward: Arc<Forwarder>,
    pub store: Store,
}

pub fn routes(state: Handles) -> BoxedFilter<(warp::reply::Response,)> {
    let s = state.clone();
    let list = warp::get()
        .and(warp::path!("forward" / "targets"))
        .then(move || list_targets(s.clone()));
    let s = state.clone();
    let enable = warp::post()
        .and(warp::path("forward"))
        .and(warp::path("targets"))
        .and(segment())
        .and(warp::path("enable"))
        .and(warp::path::end())
        .then(move |id: String| enable_target(s.clone(), id));
    let s = state.clone();
    let replay = warp::post()
        .and(warp::path!("forward" / "replay"))
        .and(json_body(64 * 1024))
        .then(move |req: ReplayRequest| {
            let s = s.clone();
            async move { json_or_error(s.forward.replay(req).await.map_err(ApiError::from)) }
        });
    let s = state.clone();
    let dead = warp::get()
        .and(warp::path!("forward" / "dead_letters"))
        .and(query::<ListQuery>())
        .then(move |q: ListQuery| dead_letters(s.clone(), q));
    let s = state;
    let unrouted = warp::get()
        .and(warp::path!("forward" / "unrouted"))
        .and(query::<ListQuery>())
        .then(move |q: ListQuery| unrouted(s.clone(), q));
    list.or(enable)
        .unify()
        .or(replay)
        .unify()
        .or(dead)
        .unify()
        .or(unrouted)
        .unify()
        .boxed()
}

async fn list_targets(s: Handles) -> warp::reply::Response {
    json_or_error(
        s.forward
            .statuses()
            .await
            .map_err(ApiError::from)
            .map(|all| {
                let views: Vec<TargetView> = all.into_iter().map(view).collect();
                serde_json::json!({ "targets": views })
            }),
    )
}

async fn enable_target(s: Handles, id: String) -> warp::reply::Response {
    let r = s.forward.enable(&id).await;
    json_or_error(
        r.map(|_| serde_json::json!({"enabled": id}))
            .map_err(ApiError::from),
    )
}

async fn dead_letters(s: Handles, q: ListQuery) -> warp::reply::Response {
    let st = s.store.clone();
    let limit = Limit::or(q.limit, 50);
    let r = store::blocking(move || st.dead_letters(q.target.as_deref(), limit)).await;
    json_or_error(r.map_err(ApiError::from).map(|all| {
        let views: Vec<DeadLetterView> = all
            .into_iter()
            .map(|d| DeadLetterView {
                enqueued_at: JsonTime::micros(d.enqueued_at_micros),
                dead_at: JsonTime::micros(d.dead_at_micros),
                dead: d,
            })
            .collect();
        serde_json::json!({ "dead_letters": views })
    }))
}

async fn unrouted(s: Handles, q: ListQuery) -> warp::reply::Response {
    let st = s.store.clone();
    let (limit, before) = (Limit::or(q.limit, 50), q.before.map(|p| p.0));
    let r = store::blocking(move || st.unrouted(before, limit)).await;
    json_or_error(r.map_err(ApiError::from).map(|(all, next_before)| {
        let views: Vec<UnroutedView> = all
            .into_iter()
            .map(|u| UnroutedView {
                received_at: JsonTime::micros(u.received_at_micros),
                item: u,
            })
            .collect();
        serde_json::json!({ "unrouted": views, "next_before": next_before })
    }))
}
