//! `GET /api/deliveries`, `GET /api/deliveries/{id}`, `GET /api/deliveries/{id}/raw`.

use base64::Engine;
use serde::{Deserialize, Serialize};
use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

use super::json_or_error;
use crate::httpkit::error::ApiError;
use crate::httpkit::params::{query, Limit, Position};
use crate::journal::delivery::{Delivery, Verdict};
use crate::store::{self, DeliveryMeta, VerdictFilter};
use crate::util::time::JsonTime;
use crate::web::WebState;

#[derive(Debug, Deserialize)]
struct ListQuery {
    verdict: Option<String>,
    limit: Option<Limit>,
    before: Option<Position>,
}

#[derive(Serialize)]
struct Summary {
    id: u64,
    received_at: JsonTime,
    verdict: Verdict,
    reason: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    items: Option<u32>,
    /// Items past `WAGATE_MAX_ITEMS`, not applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    items_skipped: Option<u32>,
}

#[derive(Serialize)]
struct ListResponse {
    deliveries: Vec<Summary>,
    next_before: Option<u64>,
}

#[derive(Serialize)]
struct Header {
    name: String,
    value: String,
}

#[derive(Serialize)]
struct Detail {
    #[serde(flatten)]
    meta: DeliveryMeta,
    received_at: JsonTime,
    /// Headers as received (values lossily decoded for display).
    headers: Vec<Header>,
    declared_length: Option<u64>,
    body_truncated: bool,
    /// The body as text when it is UTF-8, else base64 (see `body_base64`).
    body: Option<String>,
    body_base64: bool,
    /// False when the raw record is no longer kept (quarantine budget, retention).
    body_available: bool,
    /// For a rejected delivery: why, re-checked with the secrets configured now.
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnosis: Option<crate::webhook::diagnosis::Diagnosis>,
}

pub fn routes(state: WebState) -> BoxedFilter<(warp::reply::Response,)> {
    let s = state.clone();
    let list = warp::get()
        .and(warp::path("deliveries"))
        .and(warp::path::end())
        .and(query::<ListQuery>())
        .then(move |q| list(s.clone(), q));
    let s = state.clone();
    let detail = warp::get()
        .and(warp::path!("deliveries" / u64))
        .then(move |id| detail(s.clone(), id));
    let s = state.clone();
    let raw = warp::get()
        .and(warp::path!("deliveries" / u64 / "raw"))
        .then(move |id| raw(s.clone(), id));
    let reverify = warp::post()
        .and(warp::path!("deliveries" / "reverify"))
        .then(move || {
            let s = state.clone();
            async move { json_or_error(reverify(s).await) }
        });
    list.or(detail)
        .unify()
        .or(raw)
        .unify()
        .or(reverify)
        .unify()
        .boxed()
}

async fn list(state: WebState, q: ListQuery) -> warp::reply::Response {
    json_or_error(list_inner(state, q).await)
}

/// `accepted`, `rejected`, or all (none, empty, `all`).
pub(crate) fn verdict_filter(v: Option<&str>) -> Result<Option<VerdictFilter>, ApiError> {
    Ok(match v {
        None | Some("") | Some("all") => None,
        Some("accepted") => Some(VerdictFilter::Accepted),
        Some("rejected") => Some(VerdictFilter::Rejected),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "verdict must be 'accepted' or 'rejected', not '{other}'"
            )))
        }
    })
}

async fn list_inner(state: WebState, q: ListQuery) -> Result<ListResponse, ApiError> {
    let verdict = verdict_filter(q.verdict.as_deref())?;
    let limit = Limit::or(q.limit, 50);
    let before = q.before.map(|p| p.0);
    let st = state.store.clone();
    let page = store::blocking(move || st.deliveries(verdict, before, limit)).await?;
    Ok(ListResponse {
        deliveries: page
            .items
            .into_iter()
            .map(|m| Summary {
                id: m.id,
                received_at: JsonTime::micros(m.received_at_micros),
                verdict: m.verdict,
                reason: m.reason,
                size: m.size,
                items: m.items,
                items_skipped: m.items_skipped,
            })
            .collect(),
        next_before: page.next_before,
    })
}

/// The metadata and, when still kept, the decoded journal record.
pub(crate) async fn load(
    state: &WebState,
    id: u64,
) -> Result<(DeliveryMeta, Option<Delivery>), ApiError> {
    let st = state.store.clone();
    let meta = store::blocking(move || st.delivery(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let journal = state.journal.clone();
    let (stream, pos) = (meta.stream, meta.pos);
    let record = tokio::task::spawn_blocking(move || journal.read_at(stream, pos))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let delivery = match record {
        Ok(r) if r.seq == id => {
            Some(Delivery::decode(&r.payload).map_err(|e| ApiError::Internal(e.to_string()))?)
        }
        Ok(_) => {
            return Err(ApiError::Internal(format!(
                "journal index for {id} points at another record"
            )))
        }
        Err(e) => {
            tracing::debug!(id, error = %e, "raw delivery no longer available");
            None
        }
    };
    Ok((meta, delivery))
}

async fn detail(state: WebState, id: u64) -> warp::reply::Response {
    let result = load(&state, id).await.map(|(meta, delivery)| {
        let (headers, body, body_base64, declared_length, body_truncated) = match &delivery {
            Some(d) => {
                let headers = d
                    .headers
                    .iter()
                    .map(|(n, v)| Header {
                        name: n.clone(),
                        value: String::from_utf8_lossy(v).into_owned(),
                    })
                    .collect();
                let (body, b64) = match std::str::from_utf8(&d.body) {
                    Ok(text) => (text.to_string(), false),
                    Err(_) => (
                        base64::engine::general_purpose::STANDARD.encode(&d.body),
                        true,
                    ),
                };
                (
                    headers,
                    Some(body),
                    b64,
                    d.declared_length,
                    d.body_truncated(),
                )
            }
            None => (Vec::new(), None, false, None, false),
        };
        let diagnosis = diagnosis_of(&state, &meta, delivery.as_ref());
        Detail {
            diagnosis,
            received_at: JsonTime::micros(meta.received_at_micros),
            meta,
            headers,
            declared_length,
            body_truncated,
            body_available: body.is_some(),
            body,
            body_base64,
        }
    });
    json_or_error(result)
}

/// For a rejected delivery still kept: why, re-checked with the secrets configured now.
pub(crate) fn diagnosis_of(
    state: &WebState,
    meta: &DeliveryMeta,
    delivery: Option<&Delivery>,
) -> Option<crate::webhook::diagnosis::Diagnosis> {
    delivery.filter(|_| !meta.verdict.is_accepted()).map(|d| {
        crate::webhook::diagnosis::diagnose(
            &state.webhook.verifier,
            d.header("x-hub-signature-256"),
            &d.body,
            d.declared_length,
            d.received_length,
        )
    })
}

async fn raw(state: WebState, id: u64) -> warp::reply::Response {
    match load(&state, id).await {
        Ok((_, Some(d))) => {
            let content_type = d
                .header("content-type")
                .and_then(|v| std::str::from_utf8(v).ok())
                .unwrap_or("application/octet-stream")
                .to_string();
            let mut resp = warp::reply::Response::new(d.body.into());
            if let Ok(v) = http::HeaderValue::from_str(&content_type) {
                resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
            }
            resp
        }
        Ok((_, None)) => ApiError::NotFound.into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Serialize)]
pub(crate) struct Reverified {
    pub original: u64,
    pub id: u64,
}

#[derive(Serialize)]
pub(crate) struct ReverifyResult {
    pub checked: u64,
    pub accepted: Vec<Reverified>,
    pub still_rejected: u64,
}

/// Checks every kept rejected delivery again with the secrets configured now (after
/// a secret was fixed) and journals an accepted copy of each that matches, so that
/// nothing Meta sent is lost. Each original is accepted at most once.
pub(crate) async fn reverify(state: WebState) -> Result<ReverifyResult, ApiError> {
    let mut result = ReverifyResult {
        checked: 0,
        accepted: Vec::new(),
        still_rejected: 0,
    };
    let mut before = None;
    loop {
        let st = state.store.clone();
        let page =
            store::blocking(move || st.deliveries(Some(VerdictFilter::Rejected), before, 200))
                .await?;
        for meta in &page.items {
            if meta.reverified_as.is_some() || meta.verdict == Verdict::TooLarge {
                continue;
            }
            let Ok((_, Some(d))) = load(&state, meta.id).await else {
                continue;
            };
            result.checked += 1;
            let outcome = state
                .webhook
                .verifier
                .verify(d.header("x-hub-signature-256"), &d.body);
            if !outcome.verdict.is_accepted() {
                result.still_rejected += 1;
                continue;
            }
            let copy = Delivery {
                verdict: Verdict::Accepted,
                secret_index: outcome.secret_index,
                reason: format!("re-verified from rejected delivery {}", meta.id),
                reverified_from: Some(meta.id),
                ..d
            };
            let appended = state
                .journal
                .append(
                    crate::journal::Stream::Main,
                    crate::journal::Kind::Delivery,
                    state.clock.now_micros(),
                    copy.encode(),
                )
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            tracing::info!(
                original = meta.id,
                id = appended.seq,
                "rejected delivery re-verified and accepted"
            );
            result.accepted.push(Reverified {
                original: meta.id,
                id: appended.seq,
            });
        }
        match page.next_before {
            Some(b) => before = Some(b),
            None => return Ok(result),
        }
    }
}
